"""Security round 3 (issue 18): each attack performed for real, over HTTP against the local stack
(emulator + the real handlers on loopback, records in SQLite) or through the handlers with FC3
events, asserting the refusal and that nothing was stored or recorded under a false name."""

import base64
import json
import sqlite3
import time

import pytest
import requests
from fixtures import base_env
from support import fc_event

from devstack import LocalStack
from ossdirect.core.events import content_verdict, sniffs_as_markup
from ossdirect.app.handlers import CallbackApp, SignatureApp
from ossdirect.core.limits import ip_subject

HTML_AS_TEXT = b"<p><script>document.title='pwned'</script>"
ANON = base_env()
CONTEXT = type("Ctx", (), {"credentials": type("C", (), {"access_key_id": "STS.k", "access_key_secret": "s3cret-x",
                                                           "security_token": "tok"})()})()


def get_form(stack, token=None, **query):
    headers = {"Origin": stack.page_origin}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = requests.get(stack.signature_url, params=query, headers=headers, timeout=10)
    return r.status_code, r.json()


def post(host, fields, data, filename="f.bin", content_type="application/octet-stream"):
    return requests.post(host, data=fields, files={"file": (filename, data, content_type)}, timeout=15)


# --- 1. Types a browser sniffs into a document ----------------------------------------------------------
@pytest.mark.parametrize("configured", ["*", "application/*", "*/*"])
@pytest.mark.parametrize("declared", ["unknown/unknown", "application/unknown", "application/x-unknown-content-type",
                                      "UNKNOWN/UNKNOWN", "text/x-html-fragment"])
def test_no_wildcard_admits_a_type_the_browser_sniffs(tmp_path_factory, configured, declared):
    app = SignatureApp(dict(ANON, OSSDIRECT_CONTENT_TYPES=configured))
    r = app(fc_event("GET", "/", {"filename": "a.bin", "size": "10", "content_type": declared}), CONTEXT)
    body = json.loads(r["body"])
    assert (r["statusCode"], body["code"]) in ((415, "UnsupportedContentType"), (400, "InvalidContentType")), body
    assert "policy" not in body


def test_naming_a_sniffed_type_exactly_is_the_only_way_in():
    app = SignatureApp(dict(ANON, OSSDIRECT_CONTENT_TYPES="unknown/unknown"))
    r = app(fc_event("GET", "/", {"filename": "a.bin", "size": "10", "content_type": "unknown/unknown"}), CONTEXT)
    assert r["statusCode"] == 200


@pytest.mark.parametrize("head", [
    b"<b>x</b>", b"<SCRIPT>alert(1)</SCRIPT>", b"<HTML>", b"<p>", b"<iframe src=x>", b"<style>", b"<title>t",
    b"  \n\t\r\x0c<b>x", b"\xef\xbb\xbf<p>x", b"<!-- c -->", b"<a href=x>", b"<br>", b"<h1>", b"<font>", b"<table>",
    b"<div>", b"<body>", b"<head>", b"<!DOCTYPE html>", b"<?xml version='1.0'?>", b"<Table\n>", b"<b/>",
])
@pytest.mark.parametrize("declared", ["text/plain", "text/csv", "image/png", "application/pdf", "audio/aac",
                                      "application/octet-stream"])
def test_bytes_a_browser_sniffs_as_html_are_a_mismatch_for_any_declared_type(head, declared):
    assert sniffs_as_markup(head)
    ok, detected, reason = content_verdict(declared, head + b" more text")
    assert not ok and detected == "text/html" and "markup" in reason


@pytest.mark.parametrize("head", [b"hello <b>x</b>", b"<bogus>", b"<break>", b"<pre", b"plain text", b"<abbr>"])
def test_text_that_merely_contains_markup_later_is_kept(head):
    assert not sniffs_as_markup(head)
    assert content_verdict("text/plain", head)[0]


def test_named_html_is_not_a_mismatch_with_itself():
    assert content_verdict("text/html", b"<p>hi</p>")[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("round3"), env={"OSSDIRECT_MAX_BYTES": "65536"}) as s:
        yield s


def test_html_uploaded_as_text_plain_is_quarantined_by_the_event_path(stack):
    status, form = get_form(stack, filename="notes.txt", size=len(HTML_AS_TEXT), content_type="text/plain")
    assert status == 200
    up = post(form["url"], form["field_list"], HTML_AS_TEXT, "notes.txt", "text/plain")
    assert up.status_code == 200, up.text
    record = stack.wait_for_record(form["upload_id"], timeout=20, where=lambda r: r["status"] != "recorded")
    assert record is not None and record["status"] == "quarantined", record
    assert "content is text/html" in record["status_reason"]


# --- 2. Uploader-chosen user / payload ------------------------------------------------------------------
@pytest.mark.parametrize("how", ["replace", "append"])
def test_an_anonymous_form_pins_an_empty_user_and_payload(stack, how):
    status, form = get_form(stack, filename="me.png", size=8, content_type="image/png")
    assert status == 200
    conditions = json.loads(base64.b64decode(form["policy"]))["conditions"]
    for name in ("x-oss-meta-user", "x:user", "x-oss-meta-payload", "x:payload"):
        assert ["eq", "$" + name, ""] in conditions, name
    forged = {"x-oss-meta-user": "alice", "x:user": "alice",
              "x-oss-meta-payload": base64.urlsafe_b64encode(b'{"plan":"pro"}').decode()}
    if how == "replace":
        fields = [(n, forged.get(n, v)) for n, v in form["field_list"]]
    else:
        fields = list(form["field_list"]) + list(forged.items())
    up = post(form["url"], fields, b"\x89PNG\r\n\x1a\n", "me.png", "image/png")
    assert up.status_code == 403, up.text
    assert requests.head(f"{stack.bucket_url}/{form['key']}", timeout=5).status_code == 404
    assert [r for r in stack.records() if r["upload_id"] == form["upload_id"]] == []


def test_seed_compat_records_no_user_or_payload_whatever_the_metadata_says(tmp_path):
    with LocalStack(tmp_path, env={"OSSDIRECT_COMPAT": "seed"}) as s:
        r = requests.get(s.signature_url, params={"signature_version": "v1"}, timeout=10)
        data = r.json()
        fields = {"key": data["dir"] + "planted.txt", "policy": data["policy"], "OSSAccessKeyId": data["accessid"],
                  "success_action_status": "200", "callback": data["callback"], "signature": data["signature"],
                  "x-oss-security-token": data["security_token"],
                  # what mallory adds: a seed form pins no metadata, so OSS stores it
                  "x-oss-meta-upload-id": data["upload_id"], "x-oss-meta-user": "alice",
                  "x-oss-meta-payload": base64.urlsafe_b64encode(b'{"role":"admin"}').decode()}
        up = requests.post(data["host"], data=fields, files={"file": ("planted.txt", b"hello", "text/plain")},
                           timeout=15)
        assert up.status_code == 200, up.text
        assert up.json()["user"] is None and up.json()["payload"] is None
        record = s.wait_for_record(data["upload_id"], timeout=20, where=lambda r: r.get("content_type_detected"))
        assert record is not None and record["user"] is None and record["payload"] is None


def test_seed_compat_cannot_be_combined_with_sign_in(tmp_path):
    with LocalStack(tmp_path, env={"OSSDIRECT_COMPAT": "seed"}, auth="jwt") as s:
        status, body = get_form(s, token=s.token("mallory"), signature_version="v1")
        assert status == 503 and body["code"] == "ConfigInvalid" and "OSSDIRECT_COMPAT=seed" in body["message"]
        assert "policy" not in body


# --- 3. The authorizer fails closed ----------------------------------------------------------------------
@pytest.mark.parametrize("hook", ["returns_allow_zero", "returns_allow_none", "returns_allow_string", "returns_none",
                                  "returns_string_false", "returns_empty_string", "returns_one",
                                  "dot_segment_prefix", "dotdot_prefix", "percent_prefix", "double_slash_prefix"])
def test_an_authorizer_that_does_not_say_true_gets_no_form_on_any_route(tmp_path, hook):
    with LocalStack(tmp_path, env={"OSSDIRECT_AUTHORIZER": f"authorizers:{hook}"}) as s:
        h = {"Origin": s.page_origin}
        form = requests.get(s.signature_url, params={"filename": "a.png", "size": 10, "content_type": "image/png"},
                            headers=h, timeout=10)
        multipart = requests.post(s.signature_url + "multipart", json={"filename": "a.png", "size": 200 << 20,
                                                                       "content_type": "image/png"},
                                  headers=h, timeout=10)
        limits = requests.get(s.signature_url + "limits", headers=h, timeout=10)
        for r in (form, multipart, limits):
            assert r.status_code in (403, 500), (r.status_code, r.text)
            assert r.json()["code"] in ("UploadDenied", "AuthorizerFailed")
            assert "policy" not in r.json() and "uploadId" not in r.json()


# --- 5. Allowances, multipart sessions, claims, IPv6 -----------------------------------------------------
@pytest.mark.parametrize("env", [{"OSSDIRECT_PREFIX_FORMS": "true"}, {"OSSDIRECT_COMPAT": "seed"}])
def test_prefix_forms_are_refused_while_allowances_are_on(tmp_path, env):
    with LocalStack(tmp_path, env=dict(env, OSSDIRECT_USER_LIMITS="forms=1")) as s:
        r = requests.get(s.signature_url, headers={"Origin": s.page_origin}, timeout=10)
        assert r.status_code == 503 and "OSSDIRECT_USER_LIMITS" in r.json()["message"]


def _create(stack, name="big.bin", size=300 << 20):
    return requests.post(stack.signature_url + "multipart", json={"filename": name, "size": size,
                                                                   "content_type": "video/mp4"},
                         headers={"Origin": stack.page_origin}, timeout=10)


def test_anonymous_multipart_sessions_are_bounded_per_caller_and_idle_ones_are_swept(tmp_path):
    from ossdirect.core.multipart import MAX_OPEN_SESSIONS

    with LocalStack(tmp_path, env={"OSSDIRECT_MAX_BYTES": str(1 << 30), "OSSDIRECT_CONTENT_TYPES": "video/mp4"}) as s:
        made = [_create(s, f"v{i}.mp4") for i in range(MAX_OPEN_SESSIONS)]
        assert [r.status_code for r in made] == [201] * MAX_OPEN_SESSIONS
        refused = _create(s, "one-more.mp4")
        assert refused.status_code == 429 and refused.json()["code"] == "TooManyOpenUploads"
        assert int(refused.headers["Retry-After"]) > 0
        # cancelling one frees a place
        first = made[0].json()
        gone = requests.delete(f"{s.signature_url}multipart/{first['uploadId']}",
                               params={"key": first["key"], "upload_id": first["upload_id"]},
                               headers={"Origin": s.page_origin}, timeout=10)
        assert gone.status_code == 200
        assert _create(s, "replacement.mp4").status_code == 201
        assert _create(s, "and-one-more.mp4").status_code == 429
        # time passes with no part signed: the idle sessions are swept by the next create
        old = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 3 * 3600))
        db = sqlite3.connect(s.records_path)
        with db:
            db.execute("UPDATE records SET created_at=?, updated_at=? WHERE status='uploading'", (old, old))
        db.close()
        assert _create(s, "after-a-while.mp4").status_code == 201
        swept = [r for r in s.records() if r["status"] == "aborted" and "expired" in (r["status_reason"] or "")]
        assert len(swept) == MAX_OPEN_SESSIONS  # the 7 left open + the replacement


def test_a_token_whose_sub_is_a_lone_surrogate_is_401_not_500(tmp_path):
    with LocalStack(tmp_path, auth="jwt") as s:
        import jwt

        now = int(time.time())
        claims = {"iss": s.auth.issuer, "aud": s.auth.audience, "sub": "\ud800", "iat": now, "exp": now + 300}
        forged = jwt.encode(claims, s.auth.key, algorithm="RS256", headers={"kid": s.auth.kid})  # JSON: "\\ud800"
        status, body = get_form(s, token=forged, filename="a.png", size=10, content_type="image/png")
        assert (status, body["code"]) == (401, "TokenMalformed")


def test_ipv6_callers_are_counted_by_their_64(tmp_path):
    app = SignatureApp(dict(ANON, OSSDIRECT_USER_LIMITS="forms=2", OSSDIRECT_LIMITS_STORE=f"sqlite:///{tmp_path / 'l.db'}"))

    def from_ip(ip):
        event = json.loads(fc_event("GET", "/", {"filename": "a.png", "size": "10", "content_type": "image/png"}))
        event["requestContext"]["http"]["sourceIp"] = ip
        return app(json.dumps(event).encode(), CONTEXT)["statusCode"]

    statuses = [from_ip(f"2001:db8:1:2::{n:x}") for n in range(1, 4)]
    assert statuses == [200, 200, 429]  # three addresses of one /64: one caller
    assert from_ip("2001:db8:1:3::1") == 200  # another /64: another caller
    assert ip_subject("::ffff:192.0.2.7") == "192.0.2.7" and ip_subject("2001:db8::1") == "2001:db8::/64"


# --- 6. The callback checks OSS's signature before it asks for credentials -------------------------------
def test_a_forged_callback_to_a_function_without_credentials_is_403(monkeypatch):
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", "/nonexistent")
    app = CallbackApp(dict(ANON, OSSDIRECT_RECORDS="stdout"))
    body = b"bucket=photo-bucket&object=uploads%2Fa.png&upload_id=abc"
    headers = {"authorization": base64.b64encode(b"x" * 128).decode(),
               "x-oss-pub-key-url": base64.b64encode(b"https://gosspublic.alicdn.com/callback_pub_key_v1.pem").decode(),
               "content-type": "application/x-www-form-urlencoded"}
    r = app(fc_event("POST", "/", {}, headers, body), None)
    assert r["statusCode"] == 403, r["body"]
    assert json.loads(r["body"])["code"] == "InvalidCallbackSignature"


def test_the_emulator_serves_every_object_with_nosniff(stack):
    status, form = get_form(stack, filename="n.txt", size=5, content_type="text/plain")
    assert post(form["url"], form["field_list"], b"hello", "n.txt", "text/plain").status_code == 200
    for method in (requests.get, requests.head):
        r = method(f"{stack.bucket_url}/{form['key']}", timeout=5)
        assert r.status_code == 200 and r.headers["X-Content-Type-Options"] == "nosniff"
