"""The route tables (ossdirect.app.routes): every entry reaches its route function, and a path or
method no entry takes answers the same JSON error as before the tables (byte for byte).

OSS is the emulator on loopback (``photo_bucket``); the record store is SQLite; sign-in is HS256."""

import json
import time

import jwt
import pytest
from support import fc_event

from ossdirect.app.handlers import CallbackApp, SignatureApp
from ossdirect.app.routes import CALLBACK_ROUTES, SIGNATURE_ROUTES

SECRET = "routes-test-hmac-secret-0123456789abcdef"
ISSUER, AUDIENCE = "https://id.example.com/", "ossdirect-test"
ORIGIN = "https://app.example.com"


def token(sub="alice"):
    now = int(time.time())
    return jwt.encode({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now}, SECRET,
                      algorithm="HS256")


@pytest.fixture
def env(tmp_path, photo_bucket):
    return {"OSSDIRECT_BUCKET": photo_bucket.bucket, "OSSDIRECT_REGION": "cn-hangzhou",
            "OSSDIRECT_OSS_ENDPOINT": photo_bucket.bucket_url, "OSSDIRECT_UPLOAD_HOST": photo_bucket.bucket_url,
            "OSSDIRECT_RECORDS": f"sqlite:///{tmp_path}/records.sqlite3", "OSSDIRECT_ALLOWED_ORIGINS": ORIGIN,
            "OSSDIRECT_AUTH": "jwt", "OSSDIRECT_JWT_SECRET": SECRET, "OSSDIRECT_JWT_ISSUER": ISSUER,
            "OSSDIRECT_JWT_AUDIENCE": AUDIENCE, "OSSDIRECT_CONTENT_TYPES": "*/*"}


@pytest.fixture
def call(env, photo_bucket):
    app = SignatureApp(env)

    def call(method, path, query=None, body=None, signed_in=True):
        headers = {"Origin": ORIGIN}
        if signed_in:
            headers["Authorization"] = f"Bearer {token()}"
        raw = b"" if body is None else json.dumps(body).encode()
        r = app(fc_event(method, path, query or {}, headers, raw), photo_bucket.context)
        assert r["headers"]["Access-Control-Allow-Origin"] == ORIGIN  # CORS on every answer, errors too
        return r["statusCode"], r["body"]

    return call


def test_every_signature_route_answers_from_its_function(call):
    status, body = call("POST", "/multipart", body={"filename": "a.bin", "size": 300_000,
                                                   "content_type": "application/octet-stream"})
    assert status == 201, body
    up = json.loads(body)
    ids = {"key": up["key"], "upload_id": up["upload_id"]}
    oss_id = up["uploadId"]
    # route name -> (method, path, query, body, expected status, expected code or a key of the JSON answer)
    expect = {
        "multipart_sign_parts": ("GET", f"/multipart/{oss_id}/parts", dict(ids, partNumbers="1"), None, 200,
                                 "presignedUrls"),
        "multipart_sign_part": ("GET", f"/multipart/{oss_id}/1", ids, None, 200, "url"),
        "multipart_list_parts": ("GET", f"/multipart/{oss_id}", ids, None, 200, None),
        "multipart_complete": ("POST", f"/multipart/{oss_id}/complete", ids, {"parts": "no"}, 400, "MalformedParts"),
        "multipart_abort": ("DELETE", f"/multipart/{oss_id}", ids, None, 200, "aborted"),
        "files_list": ("GET", "/files", {}, None, 200, "files"),
        "files_url": ("GET", "/files/nosuchupload/url", {}, None, 404, "FileNotFound"),
        "files_delete": ("DELETE", "/files/nosuchupload", {}, None, 404, "FileNotFound"),
        "limits_route": ("GET", "/limits", {}, None, 200, "max_bytes"),
        "record_route": ("GET", "/records/nosuchupload", {}, None, 404, "RecordNotFound"),
        "form": ("GET", "/", {"filename": "a.txt", "size": "3", "content_type": "text/plain"}, None, 200,
                 "field_list"),
    }
    names = [route.name for _, route in SIGNATURE_ROUTES.routes()]
    assert sorted(names) == sorted(list(expect) + ["multipart_create"])  # every entry has a case here
    for name, (method, path, query, body, want_status, want) in expect.items():
        status, text = call(method, path, query, body)
        answer = json.loads(text)
        assert status == want_status, (name, text)
        if isinstance(answer, dict) and "code" in answer and status >= 400:
            assert answer["code"] == want, (name, text)
        elif want is not None:
            assert want in answer, (name, text)
        else:
            assert answer == [], (name, text)  # listParts: nothing uploaded yet


@pytest.mark.parametrize("method, path, status, body", [
    ("GET", "/multipart", 405, '{"code":"MethodNotAllowed","message":"POST /multipart starts a multipart upload"}'),
    ("GET", "/multipart/u/parts/x", 404, '{"code":"NoSuchRoute","message":"no such multipart route"}'),
    ("GET", "/multipart/u/zzz", 404, '{"code":"NoSuchRoute","message":"no such multipart route"}'),
    ("GET", "/multipart/" + "u" * 257 + "/zzz", 404, '{"code":"NoSuchUpload","message":"not an upload id"}'),
    ("PUT", "/multipart/u", 405, '{"code":"MethodNotAllowed","message":"use GET or DELETE here"}'),
    ("POST", "/multipart/u/parts", 405, '{"code":"MethodNotAllowed","message":"use GET here"}'),
    ("GET", "/multipart/u/complete", 405, '{"code":"MethodNotAllowed","message":"use POST here"}'),
    ("POST", "/files", 405, '{"code":"MethodNotAllowed","message":"use GET here"}'),
    ("GET", "/files/x", 405, '{"code":"MethodNotAllowed","message":"use DELETE here"}'),
    ("GET", "/files/x/y", 404, '{"code":"NoSuchRoute","message":"no such files route"}'),
    ("GET", "/files/x/url/z", 404, '{"code":"NoSuchRoute","message":"no such files route"}'),
    ("PUT", "/", 405, '{"code":"MethodNotAllowed","message":"use GET to request an upload form"}'),
    ("DELETE", "/limits", 405, '{"code":"MethodNotAllowed","message":"use GET to request an upload form"}'),
    ("POST", "/records/abc", 405, '{"code":"MethodNotAllowed","message":"use GET to request an upload form"}'),
])
def test_unknown_route_or_method_answers_as_before(call, method, path, status, body):
    assert call(method, path) == (status, body)
    # behind a prefix (FC's /2016-08-15/proxy/..., a custom domain's path) the same
    assert call(method, "/api/v1" + path) == (status, body)


def test_sign_in_is_checked_before_the_route(call):
    # the multipart and files mounts authenticate first: an unknown route without a token is a 401
    status, body = call("GET", "/multipart/u/parts/x", signed_in=False)
    assert (status, json.loads(body)["code"]) == (401, "TokenMissing")
    status, body = call("GET", "/files/x/y", signed_in=False)
    assert (status, json.loads(body)["code"]) == (401, "TokenMissing")
    # a wrong method on the form mount is answered before any token check
    assert call("PUT", "/", signed_in=False)[0] == 405


def test_callback_route_table(env, photo_bucket):
    assert [(r.method, r.pattern) for _, r in CALLBACK_ROUTES.routes()] == [("POST", "/")]
    app = CallbackApp(env)
    for method in ("GET", "PUT", "DELETE"):
        r = app(fc_event(method, "/oss-callback", {}, {}, b""), photo_bucket.context)
        assert (r["statusCode"], r["body"]) == (405, '{"code":"MethodNotAllowed","message":"OSS callbacks are POST requests"}')
    r = app(fc_event("POST", "/oss-callback", {}, {}, b""), photo_bucket.context)  # reaches handle_callback
    assert (r["statusCode"], json.loads(r["body"])["code"]) == (400, "MalformedCallback")


def test_a_resolved_path_still_checks_sign_in_and_method_every_time(call):
    # the table remembers where a path resolved; the guard and the method still decide on each request
    assert call("GET", "/files")[0] == 200
    assert call("GET", "/files", signed_in=False)[0] == 401  # no token: the guard ran again
    status, body = call("PUT", "/files")
    assert status == 405 and json.loads(body)["code"] == "MethodNotAllowed"
    assert call("GET", "/files")[0] == 200


def test_the_resolved_paths_stay_bounded(env, photo_bucket):
    app = SignatureApp(env)
    table = SIGNATURE_ROUTES
    for n in range(table.CACHE_SIZE * 3):
        app(fc_event("GET", f"/records/u{n}", {}, {"Origin": ORIGIN}, b""), photo_bucket.context)
    assert 0 < len(table._resolved) <= table.CACHE_SIZE
