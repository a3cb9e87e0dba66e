"""The signature function, driven with FC3 events exactly as the runtime delivers them."""

import base64
import json
import types
from datetime import datetime, timezone

import pytest
from fixtures import base_env
from support import fc_event

from ossdirect.core.forms import issue_form
from ossdirect.app.handlers import SignatureApp
from ossdirect.settings import load_config
from ossdirect.oss.credentials import Credentials
from ossdirect.oss.signer import v1_signature, v4_signature

ENV = base_env(PREFIX="uploads/", MAX_BYTES="1048576", CALLBACK_URL="https://cb.example.com/oss-callback",
               ALLOWED_ORIGINS="https://app.example.com", KEY_NAMING="random,original", ALLOW_FOLDERS="true",
               SIGNATURE_VERSIONS="v4,v1")
SECRET = "test-secret-not-real"
STS = types.SimpleNamespace(credentials=types.SimpleNamespace(
    access_key_id="STS.testkeyid", access_key_secret=SECRET, security_token="test-token-value"))


def call(app, method="GET", query=None, headers=None, path="/", context=STS):
    response = app(fc_event(method, path, query, headers), context)
    assert set(response) >= {"statusCode", "headers", "body"}
    body = json.loads(response["body"]) if response["body"] else None
    return response["statusCode"], response["headers"], body


def policy_of(form):
    return json.loads(base64.b64decode(form["policy"]))


def conditions(form):
    return policy_of(form)["conditions"]


@pytest.fixture
def app(monkeypatch):
    return SignatureApp(dict(ENV))


def test_hinted_form_pins_exact_key_size_type_callback_and_upload_id(app):
    status, headers, form = call(app, query={"filename": "holiday photo.JPG", "size": "2048",
                                             "content_type": "image/jpeg"})
    assert status == 200
    assert form["key"].startswith("uploads/") and form["key"].endswith(".jpg")
    assert form["key"] == "uploads/" + form["upload_id"] + ".jpg"
    conds = conditions(form)
    assert {"bucket": "photo-bucket"} in conds
    assert ["eq", "$key", form["key"]] in conds
    assert ["content-length-range", 2048, 2048] in conds
    assert ["eq", "$x-oss-content-type", "image/jpeg"] in conds
    assert ["eq", "$Content-Type", "image/jpeg"] in conds
    assert ["eq", "$x-oss-forbid-overwrite", "true"] in conds
    assert ["eq", "$callback", form["callback"]] in conds
    assert ["eq", "$x:upload_id", form["upload_id"]] in conds
    assert ["eq", "$x:filename", "holiday photo.JPG"] in conds
    assert {"x-oss-security-token": "test-token-value"} in conds
    assert {"x-oss-credential": form["x_oss_credential"]} in conds
    assert {"x-oss-date": form["x_oss_date"]} in conds
    # every field the client sends is pinned (or is the signature material itself)
    fields = dict(form["field_list"])
    unsigned = {"policy", "x-oss-signature"}
    for name, value in form["field_list"]:
        if name in unsigned:
            continue
        assert ["eq", "$" + name, value] in conds or {name: value} in conds, name
    # the signature is right for the policy it carries
    date = form["x_oss_date"][:8]
    assert fields["x-oss-signature"] == v4_signature(SECRET, date, "cn-hangzhou", form["policy"])
    assert form["signature"] == fields["x-oss-signature"]
    # seed-compatible names stay
    for name in ("host", "dir", "policy", "signature", "x_oss_signature_version", "x_oss_credential", "x_oss_date",
                 "security_token", "callback", "expire", "expires_at", "key", "fields"):
        assert name in form
    assert form["host"] == "https://photo-bucket.oss-cn-hangzhou.aliyuncs.com"
    assert form["field_list"][0][0] == "key" and "file" not in fields
    callback = json.loads(base64.b64decode(form["callback"]))
    assert callback["callbackUrl"] == ENV["OSSDIRECT_CALLBACK_URL"]
    assert "upload_id=${x:upload_id}" in callback["callbackBody"]


@pytest.fixture
def prefix_app():
    return SignatureApp(dict(ENV, OSSDIRECT_PREFIX_FORMS="true"))


def test_prefix_forms_are_off_by_default(app):
    status, _, body = call(app, query={"content_type": "image/png"})
    assert (status, body["code"]) == (400, "FilenameRequired")


def test_prefix_form_without_hints(prefix_app):
    status, _, form = call(prefix_app, query={"content_type": "image/png"})
    assert status == 200
    assert form["key"] is None
    conds = conditions(form)
    assert ["starts-with", "$key", "uploads/"] in conds
    assert ["content-length-range", 1, 1048576] in conds
    assert dict(form["field_list"])["key"] == "uploads/${filename}"


@pytest.mark.parametrize("types", ["image/*", "image/png,video/*", "*"])
def test_prefix_form_without_type_needs_one_when_types_cannot_be_pinned_exactly(types):
    # never a starts-with on the type: "image/" admits "image/x,text/html"
    app = SignatureApp(dict(ENV, OSSDIRECT_PREFIX_FORMS="true", OSSDIRECT_CONTENT_TYPES=types))
    status, _, body = call(app)
    assert (status, body["code"]) == (400, "ContentTypeRequired")


def test_prefix_form_binds_stored_type_to_an_exact_list():
    app = SignatureApp(dict(ENV, OSSDIRECT_PREFIX_FORMS="true", OSSDIRECT_CONTENT_TYPES="image/png,image/jpeg"))
    status, _, form = call(app)
    assert status == 200
    assert ["in", "$x-oss-content-type", ["image/png", "image/jpeg"]] in conditions(form)
    assert not any(c[0] == "starts-with" and "type" in c[1].lower() for c in conditions(form) if isinstance(c, list))


def test_original_naming_and_folder_stay_inside_prefix(app):
    status, _, form = call(app, query={"filename": "../../etc/pa ss<wd>.txt", "size": "5",
                                       "content_type": "text/plain", "naming": "original",
                                       "folder": "team a//2024/"})
    assert status == 200
    assert form["key"] == "uploads/team a/2024/pa ss_wd_.txt"
    assert form["dir"] == "uploads/team a/2024/"
    for folder in ("../x", "a/../../b", "..", "a/./b"):
        status, _, body = call(app, query={"filename": "a.txt", "content_type": "text/plain", "folder": folder})
        assert (status, body["code"]) == (400, "InvalidFolder"), folder


def test_non_ascii_filename_random_key_and_original(app):
    _, _, form = call(app, query={"filename": "照片 🌅.PNG", "size": "10", "content_type": "image/png"})
    assert form["key"].endswith(".png") and form["key"].isascii()
    _, _, form = call(app, query={"filename": "照片.png", "size": "10", "content_type": "image/png",
                                  "naming": "original"})
    assert form["key"] == "uploads/照片.png"
    assert ["eq", "$x:filename", "照片.png"] in conditions(form)


def test_v1_form_for_old_clients(app):
    status, _, form = call(app, query={"signature_version": "v1", "filename": "a.png", "size": "3",
                                       "content_type": "image/png"})
    assert status == 200
    fields = dict(form["field_list"])
    assert form["accessid"] == fields["OSSAccessKeyId"] == "STS.testkeyid"
    assert fields["Signature"] == form["signature"] == v1_signature(SECRET, form["policy"])
    assert fields["x-oss-security-token"] == "test-token-value"
    assert not any(isinstance(c, dict) and "x-oss-credential" in c for c in conditions(form))


@pytest.mark.parametrize("query,status,code", [
    ({"size": "2000000", "content_type": "image/png", "filename": "a.png"}, 413, "EntityTooLarge"),
    ({"size": "0", "content_type": "image/png", "filename": "a.png"}, 400, "EntityTooSmall"),
    ({"size": "-1", "content_type": "image/png", "filename": "a.png"}, 400, "InvalidParameter"),
    ({"size": "12abc", "content_type": "image/png", "filename": "a.png"}, 400, "InvalidParameter"),
    ({"content_type": "text/html", "filename": "a.html"}, 415, "UnsupportedContentType"),
    ({"content_type": "image/png\r\nX: y", "filename": "a.png"}, 400, "InvalidContentType"),
    ({"content_type": "image/png", "filename": "a" * 1100 + ".png"}, 400, "InvalidFilename"),
    ({"filename": "a.png", "content_type": "image/png", "naming": "mine"}, 400, "InvalidNaming"),
    ({"filename": "///", "content_type": "image/png"}, 400, "InvalidFilename"),
    ({"filename": "a.png", "content_type": "image/png", "signature_version": "v2"}, 400, "UnsupportedSignatureVersion"),
    ({"filename": "a.png", "content_type": "image/png", "folder": "/".join("abcdefghij")}, 400, "InvalidFolder"),
])
def test_bad_inputs_are_clear_errors(app, query, status, code):
    got_status, _, body = call(app, query=query)
    assert (got_status, body["code"]) == (status, code)
    assert body["message"]


def test_folder_refused_unless_allowed():
    app = SignatureApp(dict(ENV, OSSDIRECT_ALLOW_FOLDERS="false"))
    status, _, body = call(app, query={"folder": "x", "filename": "a.png", "content_type": "image/png"})
    assert (status, body["code"]) == (400, "FoldersNotAllowed")


def test_options_preflight_for_allowed_origin_only(app):
    status, headers, _ = call(app, "OPTIONS", headers={"Origin": "https://app.example.com",
                                                       "Access-Control-Request-Method": "GET"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "GET" in headers["Access-Control-Allow-Methods"]
    status, headers, body = call(app, "OPTIONS", headers={"origin": "https://evil.example.com"})
    assert (status, body["code"]) == (403, "OriginNotAllowed")
    assert "Access-Control-Allow-Origin" not in headers


def test_get_from_allowed_origin_carries_cors_and_no_origin_is_fine(app):
    q = {"filename": "a.png", "content_type": "image/png", "size": "1"}
    status, headers, _ = call(app, headers={"ORIGIN": "https://app.example.com"}, query=q)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    status, headers, _ = call(app, query=q)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


def test_other_methods_are_405(app):
    status, _, body = call(app, "POST")
    assert (status, body["code"]) == (405, "MethodNotAllowed")


def test_limits_endpoint(app):
    status, _, body = call(app, path="/limits")
    assert status == 200
    assert body["max_bytes"] == 1048576 and body["naming"] == ["random", "original"] and body["folders"] is True


def test_missing_credentials_is_503_without_crash(app, monkeypatch):
    status, _, body = call(app, query={"filename": "a.png", "content_type": "image/png"}, context=None)
    assert (status, body["code"]) == (503, "CredentialsUnavailable")


def test_python312_context_uses_environment(app, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "envkeyid")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsecret")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "envtoken")
    ctx312 = types.SimpleNamespace(request_id="r", function=types.SimpleNamespace(name="f"))  # no .credentials
    status, _, form = call(app, query={"filename": "a.png", "content_type": "image/png"}, context=ctx312)
    assert status == 200
    assert form["x_oss_credential"].startswith("envkeyid/") and form["security_token"] == "envtoken"


def test_bad_configuration_is_503_naming_the_variable():
    app = SignatureApp(dict(ENV, OSSDIRECT_MAX_BYTES="lots"))
    status, _, body = call(app)
    assert (status, body["code"]) == (503, "ConfigInvalid")
    assert "OSSDIRECT_MAX_BYTES" in body["message"]


def test_garbage_event_is_400_not_500(app):
    for event in (b"not json", b"[1,2]", json.dumps({"body": "%%%", "isBase64Encoded": True}).encode()):
        response = app(event, STS)
        assert response["statusCode"] == 400
        assert json.loads(response["body"])["code"] == "InvalidEvent"


def test_no_secret_in_any_response_or_log(app, caplog):
    caplog.set_level("DEBUG")
    outputs = []
    for query in ({"filename": "a.png", "content_type": "image/png"}, {"size": "x"}, {}):
        outputs.append(json.dumps(app(fc_event("GET", "/", query), STS)))
    outputs.append(caplog.text)
    for text in outputs:
        assert SECRET not in text


def test_utc_date_is_used_even_when_local_date_differs():
    config = load_config(dict(ENV))
    creds = Credentials("ak", "sk")
    # 2024-03-01T20:30Z is already March 2 in Shanghai: the scope must say March 1.
    now = datetime(2024, 3, 1, 20, 30, tzinfo=timezone.utc)
    form = issue_form(config, creds, {"filename": "a.png", "content_type": "image/png"}, now=now)
    assert form["x_oss_date"] == "20240301T203000Z"
    assert form["x_oss_credential"] == "ak/20240301/cn-hangzhou/oss/aliyun_v4_request"
    assert policy_of(form)["expiration"] == "2024-03-01T20:35:00.000Z"
    assert {"x-oss-security-token": None} not in conditions(form)
    assert not any(isinstance(c, dict) and "x-oss-security-token" in c for c in conditions(form))


def test_assembled_json_is_canonical_and_equals_the_policy_builder():
    """The hand-assembled policy and answer are exactly what json.dumps(compact, non-ASCII kept) gives."""
    from ossdirect.core.forms import FormIssuer
    from ossdirect.oss.policy import PostPolicy

    config = load_config(dict(ENV, OSSDIRECT_SUCCESS_STATUS="201", OSSDIRECT_CALLBACK_HOST="cb.example.com",
                              OSSDIRECT_PREFIX_FORMS="true"))
    creds = Credentials("STS.a\"b", "sk", 'tok/+="\\é')
    now = datetime(2024, 3, 1, 20, 30, tzinfo=timezone.utc)
    for params in ({"filename": 'ü "q" \\ 照片.png', "size": "7", "content_type": "image/png", "naming": "original"},
                   {"content_type": "image/png", "signature_version": "v1"}, {"filename": "a.txt", "content_type": "text/plain"}):
        text = FormIssuer(config).issue_json(creds, params, now=now, upload_id="0" * 32)
        form = json.loads(text)
        assert json.dumps(form, separators=(",", ":"), ensure_ascii=False) == text
        policy_text = base64.b64decode(form["policy"]).decode("utf-8")
        doc = json.loads(policy_text)
        rebuilt = PostPolicy(doc["expiration"])
        rebuilt.conditions = doc["conditions"]
        assert rebuilt.to_json() == policy_text
        assert ["eq", "$success_action_status", "201"] in doc["conditions"]


def test_answer_is_ready_for_upload_widgets(app):
    """Uppy AwsS3 getUploadParameters ({method, url, fields}), antd/Element `data`, Plupload multipart_params."""
    status, _, form = call(app, query={"filename": "a.png", "size": "3", "content_type": "image/png"})
    assert status == 200 and form["method"] == "POST" and form["url"] == form["host"]
    assert form["fields"] == dict(form["field_list"]) and len(form["fields"]) == len(form["field_list"])
    assert form["field_list"][0][0] == "key" and "file" not in form["fields"]


def test_form_texts_are_byte_for_byte_those_of_the_reference_build():
    """32 forms (V4/V1, STS or not, exact key or prefix, seed compat, signed in with a payload, declared CRC)
    at a fixed time: the SHA-256 of their texts, taken from the build before the per-request speedups
    (templates by str.join, escaped-once signer texts, cached HMAC pads). A changed byte changes it."""
    import hashlib

    from ossdirect.core.forms import FormIssuer, Grant
    from ossdirect.errors import OssdirectError
    from ossdirect.oss.credentials import Credentials

    env = {"OSSDIRECT_BUCKET": "bench-bucket", "OSSDIRECT_REGION": "cn-hangzhou",
           "OSSDIRECT_CALLBACK_URL": "https://cb.example.com/cb", "OSSDIRECT_PREFIX_FORMS": "true",
           "OSSDIRECT_CONTENT_TYPES": "image/png,image/jpeg,text/plain", "OSSDIRECT_SIGNATURE_VERSIONS": "v4,v1"}
    now = datetime(2024, 3, 1, 20, 30, tzinfo=timezone.utc)
    digests, formed = [], 0
    for environ in (env, dict(env, OSSDIRECT_COMPAT="seed")):
        config = load_config(environ)
        for creds in (Credentials("STS.a\"b", "sk", 'tok/+="\\é'), Credentials("ak", "sk")):
            for grant in (None, Grant(config, user="u-é", payload='{"plan":"pro"}')):
                for params in ({"filename": 'ü "q" \\ 照片.png', "size": "7", "content_type": "image/png",
                                "naming": "original"},
                               {"content_type": "image/png", "signature_version": "v1"}, {},
                               {"filename": "a.txt", "content_type": "text/plain", "crc64": "123"},
                               {"filename": "a.txt", "signature_version": "v1"}):
                    try:
                        text = FormIssuer(config).issue_json(creds, params, now=now, upload_id="0" * 32, grant=grant)
                        formed += 1
                    except OssdirectError as exc:
                        text = "error " + exc.code
                    digests.append(hashlib.sha256(text.encode()).hexdigest()[:16])
    assert formed == 32 and len(digests) == 40
    assert hashlib.sha256(" ".join(digests).encode()).hexdigest() == \
        "2384985f4ac1252e8519ac0b66fc8b10471656e4edffedc8260e28ab895c17bf"
