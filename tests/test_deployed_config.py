"""Deployed = local (issue 20, the core's part): what the functions do at cold start on Function Compute
when the configuration cannot work there, and that configuration mistakes reach the person."""

import json
import logging

from fixtures import base_env
from support import fc_event

from ossdirect.settings import config_warnings, load_config
from ossdirect.app.handlers import CallbackApp, ProcessApp, SignatureApp

BASE = base_env(ALLOWED_ORIGINS="https://app.example.com", CALLBACK_URL="https://cb.example.com/")
ON_FC = {"FC_FUNCTION_NAME": "ossdirect-signature", "FC_INSTANCE_ID": "c-1234"}  # what FC's runtime sets
CONTEXT = type("Ctx", (), {"credentials": type("C", (), {"access_key_id": "STS.k", "access_key_secret": "s3cret-x",
                                                           "security_token": "tok"})()})()
ORIGIN = {"origin": "https://app.example.com"}


def call(app, method="GET", path="/", query=None, body=b"", headers=ORIGIN):
    r = app(fc_event(method, path, query if query is not None else {}, dict(headers), body), CONTEXT)
    return r["statusCode"], r["headers"], json.loads(r["body"]) if r["body"] else None


def test_on_fc_a_sqlite_record_store_refuses_the_routes_that_need_a_shared_one(tmp_path):
    app = SignatureApp(dict(BASE, **ON_FC, OSSDIRECT_RECORDS=f"sqlite:///{tmp_path / 'r.sqlite3'}"))
    status, _, body = call(app, query={"filename": "a.png", "size": "10", "content_type": "image/png"})
    assert status == 200 and body["policy"]  # forms need no store
    status, headers, body = call(app, path="/records/abc123")
    assert (status, body["code"]) == (503, "SharedStoreRequired") and "tablestore://" in body["message"]
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    status, _, body = call(app, "POST", "/multipart", body=json.dumps(
        {"filename": "big.mp4", "size": 300 << 20, "content_type": "video/mp4"}).encode())
    assert (status, body["code"]) == (503, "SharedStoreRequired")
    _, _, limits = call(app, path="/limits")
    assert limits["multipart_threshold"] is None  # the page never sends a large file down that path
    assert not (tmp_path / "r.sqlite3").exists()  # never a silent per-instance file


def test_off_fc_the_same_sqlite_file_is_shared_and_allowed(tmp_path):
    app = SignatureApp(dict(BASE, OSSDIRECT_RECORDS=f"sqlite:///{tmp_path / 'r.sqlite3'}"))
    assert call(app, path="/limits")[2]["multipart_threshold"] == 64 << 20
    assert call(app, path="/records/abc123")[2]["code"] == "RecordNotFound"


def test_on_fc_the_callback_and_process_function_refuse_a_sqlite_store_at_cold_start(tmp_path):
    env = dict(BASE, **ON_FC, OSSDIRECT_RECORDS=f"sqlite:///{tmp_path / 'r.sqlite3'}")
    status, _, body = call(CallbackApp(env), "POST", "/", body=b"x")
    assert (status, body["code"]) == (503, "ConfigInvalid") and "OSSDIRECT_RECORDS" in body["message"]
    assert ProcessApp(env).config_error and "SQLite" in ProcessApp(env).config_error
    assert CallbackApp(dict(env, OSSDIRECT_RECORDS="stdout")).config_error is None  # a log is fine


def test_a_misconfigured_signature_function_still_answers_the_page_with_cors():
    app = SignatureApp(dict(BASE, OSSDIRECT_MAX_BYTES="lots"))
    status, headers, body = call(app, query={"filename": "a.png", "size": "10", "content_type": "image/png"})
    assert (status, body["code"]) == (503, "ConfigInvalid")
    assert "OSSDIRECT_MAX_BYTES must be an integer" in body["message"]
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    # an origin that is not listed still gets nothing it could read
    _, headers, _ = call(app, headers={"origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers


def test_cold_start_names_misspelt_settings_regions_and_empty_essentials(caplog):
    env = dict(BASE, OSSDIRECT_MAX_BYTE="10", OSSDIRECT_REGION="cn-hangzou", OSSDIRECT_CALLBACK_URL="",
               OSSDIRECT_ALLOWED_ORIGINS="")
    with caplog.at_level(logging.WARNING, logger="ossdirect"):
        SignatureApp(env)
    text = caplog.text
    assert "OSSDIRECT_MAX_BYTE is not a setting and is ignored (did you mean OSSDIRECT_MAX_BYTES?)" in text
    assert "OSSDIRECT_REGION=cn-hangzou is not a region OSS lists (did you mean cn-hangzhou?)" in text
    assert "OSSDIRECT_CALLBACK_URL is empty" in text and "OSSDIRECT_ALLOWED_ORIGINS is empty" in text
    assert config_warnings(BASE, load_config(BASE), "signature") == []
