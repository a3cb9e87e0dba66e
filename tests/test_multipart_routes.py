"""Multipart uploads through the signature function's /multipart routes, driven with FC3 events.

OSS is the emulator (``photo_bucket``, a real HTTP server on loopback): the handler calls Initiate,
ListParts, Complete and Abort on it with the function's credentials; parts go to it through the
presigned URLs the handler hands out, exactly as a browser would send them. The callback function
runs over HTTP on loopback (the emulator only calls loopback callbacks) and records into the same
SQLite store the signature function keeps its sessions in.
"""

import base64
import hashlib
import json
import time
import types

import jwt
import pytest
import requests
from fixtures import emulated_env
from support import fc_event

from devstack import _FunctionServer
from ossdirect.core import multipart
from ossdirect.app.handlers import CallbackApp, SignatureApp
from ossdirect.core.multipart import MAX_PARTS, MiB, part_length, plan
from ossdirect.store.sqlite import SqliteStore

SECRET = "multipart-test-hmac-secret-0123456789abcdef"
ISSUER, AUDIENCE = "https://id.example.com/", "ossdirect-test"
ORIGIN = "https://app.example.com"


def data_for(size, seed=0):
    block = hashlib.sha256(f"{seed}".encode()).digest() * 4096  # 128 KiB, cheap to repeat
    return (block * (size // len(block) + 1))[:size]


class Stack:
    def __init__(self, tmp_path, bucket, callback=True, **env):
        self.bucket = bucket
        self.records_path = tmp_path / "records.sqlite3"
        base = emulated_env(bucket, self.records_path, bucket, UPLOAD_HOST=bucket.bucket_url, ALLOWED_ORIGINS=ORIGIN,
                            MAX_BYTES=str(64 * MiB), KEY_NAMING="random,original")
        base.update(env)
        self.callback = None
        if callback:
            self.callback = _FunctionServer(CallbackApp(base), "127.0.0.1", 0, "callback",
                                            bucket.context.credentials)
            base["OSSDIRECT_CALLBACK_URL"] = self.callback.url + "/oss-callback"
        elif callback is None:  # a callback URL nobody answers: OSS answers 203
            base["OSSDIRECT_CALLBACK_URL"] = "http://127.0.0.1:9/oss-callback"
        self.env = base
        self.app = SignatureApp(base)

    def call(self, method, path, query=None, body=None, token=None, headers=None):
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        raw = b"" if body is None else json.dumps(body).encode()
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        r = self.app(fc_event(method, path, query or {}, hdrs, raw), self.bucket.context)
        return r["statusCode"], r["headers"], json.loads(r["body"]) if r["body"] else None

    def create(self, size, filename="movie.mp4", content_type="video/mp4", token=None, **more):
        status, _, body = self.call("POST", "/multipart", body=dict(filename=filename, size=size,
                                                                    content_type=content_type, **more), token=token)
        assert status == 201, body
        return body

    @staticmethod
    def ids(up):
        return {"key": up["key"], "upload_id": up["upload_id"]}

    def sign(self, up, numbers, token=None):
        return self.call("GET", f"/multipart/{up['uploadId']}/parts",
                         dict(self.ids(up), partNumbers=",".join(map(str, numbers))), token=token)

    def put_parts(self, up, data, numbers=None, token=None):
        count = up["part_count"]
        numbers = numbers or range(1, count + 1)
        status, _, signed = self.sign(up, numbers, token)
        assert status == 200, signed
        etags = {}
        for n in numbers:
            start = (n - 1) * up["part_size"]
            r = requests.put(signed["presignedUrls"][str(n)], data=data[start:start + up["part_size"]], timeout=30)
            assert r.status_code == 200, r.text
            etags[n] = r.headers["ETag"]
        return etags

    def complete(self, up, etags, token=None):
        parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(etags.items())]
        return self.call("POST", f"/multipart/{up['uploadId']}/complete", self.ids(up), {"parts": parts}, token)

    def session(self, upload_id):
        store = SqliteStore(str(self.records_path))
        try:
            return store.get(upload_id)
        finally:
            store.close()

    def records(self):
        store = SqliteStore(str(self.records_path))
        try:
            return store.all()
        finally:
            store.close()

    def oss_uploads(self):
        return [u.upload_id for u in self.bucket.sdk.list_multipart_uploads().upload_list]

    def close(self):
        if self.callback:
            self.callback.stop()


@pytest.fixture
def stack(tmp_path, photo_bucket):
    s = Stack(tmp_path, photo_bucket)
    yield s
    s.close()


def token(sub="alice"):
    now = int(time.time())
    return jwt.encode({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now}, SECRET,
                      algorithm="HS256")


@pytest.fixture
def jwt_stack(tmp_path, photo_bucket):
    s = Stack(tmp_path, photo_bucket, OSSDIRECT_AUTH="jwt", OSSDIRECT_JWT_SECRET=SECRET, OSSDIRECT_JWT_ISSUER=ISSUER,
              OSSDIRECT_JWT_AUDIENCE=AUDIENCE, OSSDIRECT_PREFIX="uploads/{sub}/")
    yield s
    s.close()


# -- the plan ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size,part,count,parallel", [
    (1, 1 * 8 * MiB, 1, 1), (8 * MiB, 8 * MiB, 1, 1), (8 * MiB + 1, 8 * MiB, 2, 2),
    (300 * 10**6, 8 * MiB, 36, 4), (5 * 1024**3, 8 * MiB, 640, 6),
    (10000 * 8 * MiB + 1, 9 * MiB, 8889, 6), (MAX_PARTS * 5 * 1024**3, 5 * 1024**3, 10000, 6),
])
def test_plan_stays_within_oss_limits(size, part, count, parallel):
    assert plan(size) == (part, count, parallel)
    assert sum(part_length(size, n) for n in range(1, count + 1)) == size
    assert all(multipart.MIN_PART <= part_length(size, n) <= multipart.MAX_PART for n in range(1, count))
    assert 1 <= part_length(size, count) <= multipart.MAX_PART and count <= MAX_PARTS


# -- the whole path ------------------------------------------------------------------------------


def test_create_sign_list_complete_records_once_with_pinned_headers(stack):
    size = 2 * 8 * MiB + 12345
    data = data_for(size)
    status, headers, up = stack.call("POST", "/multipart", body={"filename": "Ferien 2026.mp4", "size": size,
                                                                 "content_type": "video/mp4"},
                                     headers={"Origin": ORIGIN})
    assert status == 201 and headers["Access-Control-Allow-Origin"] == ORIGIN
    assert set(up) >= {"uploadId", "key", "upload_id", "part_size", "part_count", "concurrency"}
    assert (up["part_size"], up["part_count"], up["concurrency"]) == (8 * MiB, 3, 3)
    assert up["key"] == f"uploads/{up['upload_id']}.mp4" and up["size"] == size
    session = stack.session(up["upload_id"])
    assert (session["status"], session["source"], session["multipart_id"], session["size"], session["key"]) == \
        ("uploading", "multipart", up["uploadId"], size, up["key"])

    # resume: one part first, then what listParts says is missing
    etags = stack.put_parts(up, data, [2])
    status, _, listed = stack.call("GET", f"/multipart/{up['uploadId']}", stack.ids(up))
    assert status == 200 and listed == [{"PartNumber": 2, "Size": 8 * MiB, "ETag": etags[2]}]
    etags.update(stack.put_parts(up, data, [1, 3]))
    # Uppy's signPart shape for one part
    status, _, one = stack.call("GET", f"/multipart/{up['uploadId']}/3", stack.ids(up))
    assert status == 200 and set(one) >= {"url", "headers"} and one["headers"] == {} and one["size"] == 12345

    status, _, answer = stack.complete(up, etags)
    assert status == 200, answer
    assert answer["ok"] is True and answer["replayed"] is False and answer["upload_id"] == up["upload_id"]
    assert answer["key"] == up["key"] and answer["size"] == size and answer["filename"] == "Ferien 2026.mp4"
    assert answer["location"] == f"{stack.bucket.bucket_url}/{up['key']}"
    parts_md5 = b"".join(hashlib.md5(data[i:i + 8 * MiB]).digest() for i in range(0, size, 8 * MiB))
    assert answer["etag"] == hashlib.md5(parts_md5).hexdigest().upper() + "-3"
    obj = stack.bucket.sdk.get_object(up["key"])
    assert obj.read() == data
    h = obj.headers
    assert h["Content-Type"] == "video/mp4" and h["Cache-Control"] == "no-cache"
    assert h["Content-Disposition"] == "inline; filename=\"Ferien 2026.mp4\"; filename*=UTF-8''Ferien%202026.mp4"
    assert h["Content-Encoding"] == "identity" and h["Expires"] == "0"
    assert h["x-oss-meta-upload-id"] == up["upload_id"] and h["x-oss-meta-filename"] == "Ferien%202026.mp4"
    assert h["x-oss-object-type"] == "Multipart" and h["x-oss-storage-class"] == "Standard"
    records = [r for r in stack.records() if r["upload_id"] == up["upload_id"]]
    assert len(records) == 1
    rec = records[0]
    assert (rec["status"], rec["source"], rec["size"], rec["etag"], rec["multipart_id"]) == \
        ("recorded", "multipart", size, answer["etag"], up["uploadId"])
    assert rec["record_id"] == answer["record_id"]
    # complete again (the answer got lost): the record, marked replayed, nothing written
    status, _, again = stack.complete(up, etags)
    assert status == 200 and again["replayed"] is True and again["record_id"] == answer["record_id"]
    assert len(stack.records()) == 1
    # the finished upload cannot be signed or listed any more
    assert stack.sign(up, [1])[0] == 409


def test_query_parameters_work_for_create_and_a_one_part_file(stack):
    status, _, up = stack.call("POST", "/multipart", {"filename": "a.png", "size": "5", "content_type": "image/png",
                                                      "naming": "original"})
    assert status == 201 and up["key"] == "uploads/a.png" and up["part_count"] == 1
    etags = stack.put_parts(up, b"hello")
    status, _, answer = stack.complete(up, etags)
    assert status == 200 and answer["size"] == 5 and answer["content_type"] == "image/png"
    # the key exists now, and no-overwrite is pinned at Initiate: a second upload is refused at once
    status, _, err = stack.call("POST", "/multipart", {"filename": "a.png", "size": "5", "content_type": "image/png",
                                                       "naming": "original"})
    assert (status, err["code"]) == (409, "FileAlreadyExists")


@pytest.mark.parametrize("body,status,code", [
    ({"filename": "a.mp4", "content_type": "video/mp4"}, 400, "InvalidParameter"),
    ({"filename": "a.mp4", "size": -1, "content_type": "video/mp4"}, 400, "InvalidParameter"),
    ({"filename": "a.mp4", "size": 0, "content_type": "video/mp4"}, 400, "EntityTooSmall"),
    ({"filename": "a.mp4", "size": 64 * MiB + 1, "content_type": "video/mp4"}, 413, "EntityTooLarge"),
    ({"filename": "a.mp4", "size": 10}, 400, "ContentTypeRequired"),
    ({"filename": "a.html", "size": 10, "content_type": "text/html"}, 415, "UnsupportedContentType"),
    ({"size": 10, "content_type": "video/mp4"}, 400, "FilenameRequired"),
    ({"filename": "a.mp4", "size": 10, "content_type": "video/mp4", "naming": "mine"}, 400, "InvalidNaming"),
    ({"filename": "a.mp4", "size": 10, "content_type": "video/mp4", "folder": "x"}, 400, "FoldersNotAllowed"),
    ({"filename": ["a"], "size": 10, "content_type": "video/mp4"}, 400, "InvalidParameter"),
])
def test_create_refuses_what_a_form_refuses(stack, body, status, code):
    got = stack.call("POST", "/multipart", body=body)
    assert (got[0], got[2]["code"]) == (status, code)
    assert stack.oss_uploads() == [] and stack.records() == []


def test_preflight_allows_post_and_delete_and_other_methods_are_405(stack):
    status, headers, _ = stack.call("OPTIONS", "/multipart", headers={"Origin": ORIGIN})
    assert status == 204 and {"POST", "DELETE", "GET"} <= set(headers["Access-Control-Allow-Methods"].split(", "))
    assert stack.call("GET", "/multipart")[0] == 405
    up = stack.create(10)
    assert stack.call("PUT", f"/multipart/{up['uploadId']}", stack.ids(up))[0] == 405
    assert stack.call("GET", f"/multipart/{up['uploadId']}/complete", stack.ids(up))[0] == 405
    assert stack.call("GET", f"/multipart/{up['uploadId']}/nope", stack.ids(up))[0] == 404
    assert stack.call("POST", "/", {"filename": "a.png"})[0] == 405  # forms stay GET-only


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("numbers", ["0", "10001", "abc", "-1", "1.5", "4", "", "1,,x", ",".join(["1"] * 1) + ",99999"])
def test_bad_part_numbers_are_400(stack, numbers):
    up = stack.create(2 * 8 * MiB + 1)  # 3 parts
    status, _, body = stack.call("GET", f"/multipart/{up['uploadId']}/parts", dict(stack.ids(up), partNumbers=numbers))
    assert (status, body["code"]) == (400, "InvalidPartNumber")
    for single in ("0", "4", "10001"):
        status, _, body = stack.call("GET", f"/multipart/{up['uploadId']}/{single}", stack.ids(up))
        assert (status, body["code"]) == (400, "InvalidPartNumber")


def test_batches_are_bounded(tmp_path, photo_bucket):
    s = Stack(tmp_path, photo_bucket, callback=False, OSSDIRECT_MAX_BYTES=str(5 * 1024**3))
    up = s.create(900 * MiB)  # 113 parts (declared only: nothing is sent)
    status, _, body = s.sign(up, range(1, 101))
    assert status == 200 and sorted(map(int, body["presignedUrls"])) == list(range(1, 101))
    assert body["sizes"] == {str(n): 8 * MiB for n in range(1, 101)} and body["headers"] == {}
    status, _, body = s.sign(up, range(1, 102))
    assert (status, body["code"]) == (400, "TooManyPartNumbers")
    status, _, body = s.sign(up, [113, 113, 112])  # repeats count once; the last part is the rest
    assert status == 200 and body["sizes"] == {"112": 8 * MiB, "113": 900 * MiB - 112 * 8 * MiB}


def test_sessions_must_match_key_upload_id_and_oss_upload_id(stack):
    up, other = stack.create(10), stack.create(20)
    base = f"/multipart/{up['uploadId']}"
    assert stack.call("GET", base, {"key": up["key"]})[2]["code"] == "InvalidUploadId"
    assert stack.call("GET", base, {"upload_id": up["upload_id"]})[2]["code"] == "InvalidKey"
    for query in ({"key": other["key"], "upload_id": up["upload_id"]},
                  {"key": up["key"], "upload_id": other["upload_id"]},
                  {"key": up["key"], "upload_id": "0" * 32}):
        status, _, body = stack.call("GET", base, query)
        assert (status, body["code"]) == (404, "NoSuchUpload")
    status, _, body = stack.call("GET", f"/multipart/{other['uploadId']}", stack.ids(up))
    assert (status, body["code"]) == (404, "NoSuchUpload")
    # a form's record is not a session
    stack.bucket.put(up["key"] + ".x", b"x", upload_id="f" * 32)
    SqliteStore(str(stack.records_path)).put({"upload_id": "f" * 32, "key": up["key"] + ".x", "status": "recorded",
                                              "source": "callback", "multipart_id": up["uploadId"]})
    status, _, body = stack.call("GET", base, {"key": up["key"] + ".x", "upload_id": "f" * 32})
    assert (status, body["code"]) == (404, "NoSuchUpload")


def test_other_users_upload_ids_are_refused(jwt_stack):
    s = jwt_stack
    alice, bob = token("alice"), token("bob")
    assert s.call("POST", "/multipart", body={"filename": "a.mp4", "size": 10, "content_type": "video/mp4"})[0] == 401
    up = s.create(10, token=alice)
    assert up["key"].startswith("uploads/alice/") and up["user"] == "alice"
    for method, path, body in (("GET", f"/multipart/{up['uploadId']}/parts", None),
                               ("GET", f"/multipart/{up['uploadId']}/1", None),
                               ("GET", f"/multipart/{up['uploadId']}", None),
                               ("POST", f"/multipart/{up['uploadId']}/complete", {"parts": [{"PartNumber": 1,
                                                                                             "ETag": "x"}]}),
                               ("DELETE", f"/multipart/{up['uploadId']}", None)):
        status, headers, got = s.call(method, path, dict(s.ids(up), partNumbers="1"), body, token=bob)
        assert (status, got["code"]) == (403, "UploadNotYours"), (method, path)
        assert s.call(method, path, dict(s.ids(up), partNumbers="1"), body)[0] == 401
    assert s.session(up["upload_id"])["status"] == "uploading" and s.oss_uploads() == [up["uploadId"]]
    # alice finishes it; the record carries her sub, pinned at Initiate
    etags = s.put_parts(up, b"0123456789", token=alice)
    status, _, answer = s.complete(up, etags, token=alice)
    assert status == 200 and answer["user"] == "alice"
    assert s.bucket.sdk.head_object(up["key"]).headers["x-oss-meta-user"] == "alice"


def test_a_remembered_session_never_signs_for_another_user_key_or_upload(jwt_stack):
    s = jwt_stack
    alice, bob = token("alice"), token("bob")
    up, other = s.create(10, token=alice), s.create(20, filename="other.mp4", token=alice)
    for u in (up, other):
        assert s.sign(u, [1], token=alice)[0] == 200
    remembered = s.app.multipart._sessions
    assert up["upload_id"] in remembered and other["upload_id"] in remembered  # signing now reads these copies
    single = f"/multipart/{up['uploadId']}/1"
    for path, query in ((f"/multipart/{up['uploadId']}/parts", dict(s.ids(up), partNumbers="1")),
                        (single, s.ids(up))):
        status, _, got = s.call("GET", path, query, token=bob)
        assert (status, got["code"]) == (403, "UploadNotYours") and "url" not in got and "presignedUrls" not in got
        assert s.call("GET", path, query)[0] == 401
    for query in ({"key": other["key"], "upload_id": up["upload_id"]},  # another upload's key
                  {"key": up["key"], "upload_id": other["upload_id"]}):  # another upload's id
        status, _, got = s.call("GET", single, query, token=alice)
        assert (status, got["code"]) == (404, "NoSuchUpload")
    status, _, got = s.call("GET", f"/multipart/{other['uploadId']}/1", s.ids(up), token=alice)  # another UploadId
    assert (status, got["code"]) == (404, "NoSuchUpload")
    status, _, got = s.call("GET", single, s.ids(up), token=alice)
    assert status == 200 and f"/{up['key']}?" in got["url"] and f"uploadId={up['uploadId']}" in got["url"]


def test_sessions_finished_here_or_elsewhere_are_not_signed_from_memory(tmp_path, photo_bucket, monkeypatch):
    s = Stack(tmp_path, photo_bucket)
    elsewhere = SignatureApp(s.env)  # another instance on the same store
    monkeypatch.setattr(multipart, "SESSION_CACHE_SECONDS", 3600)  # no copy ages during the test
    try:
        # this instance's own abort and complete: refused at once
        aborted, completed = s.create(10), s.create(10, filename="done.mp4")
        assert s.sign(aborted, [1])[0] == 200
        assert s.call("DELETE", f"/multipart/{aborted['uploadId']}", s.ids(aborted))[0] == 200
        assert s.sign(aborted, [1])[2]["code"] == "UploadAborted"
        assert s.complete(completed, s.put_parts(completed, b"0123456789"))[0] == 200
        assert s.sign(completed, [1])[2]["code"] == "UploadCompleted"
        # aborted by another instance: the copy here may still sign, and OSS refuses the part...
        up = s.create(10, filename="late.mp4")
        assert s.sign(up, [1])[0] == 200
        r = elsewhere(fc_event("DELETE", f"/multipart/{up['uploadId']}", s.ids(up), {}, b""), photo_bucket.context)
        assert r["statusCode"] == 200 and s.session(up["upload_id"])["status"] == "aborted"
        status, _, signed = s.sign(up, [1])
        assert status == 200
        refused = requests.put(signed["presignedUrls"]["1"], data=b"0123456789", timeout=10)
        assert refused.status_code == 404 and "NoSuchUpload" in refused.text
        # ...until the copy is older than SESSION_CACHE_SECONDS, or the touch reads the store
        monkeypatch.setattr(multipart, "TOUCH_EVERY_SECONDS", 0)
        assert s.sign(up, [1])[2]["code"] == "UploadAborted"
        monkeypatch.setattr(multipart, "TOUCH_EVERY_SECONDS", 60)
        again = s.create(10, filename="again.mp4")
        assert s.sign(again, [1])[0] == 200
        r = elsewhere(fc_event("DELETE", f"/multipart/{again['uploadId']}", s.ids(again), {}, b""),
                      photo_bucket.context)
        assert r["statusCode"] == 200
        monkeypatch.setattr(multipart, "SESSION_CACHE_SECONDS", 0)
        assert s.sign(again, [1])[2]["code"] == "UploadAborted"
    finally:
        s.close()


def test_part_urls_bind_the_part_size(stack):
    up = stack.create(8 * MiB + 100)  # 2 parts: 8 MiB and 100 bytes
    _, _, signed = stack.sign(up, [1, 2])
    url = signed["presignedUrls"]["2"]
    assert "x-oss-additional-headers=content-length" in url
    for wrong in (b"x" * 99, b"x" * 101):
        r = requests.put(url, data=wrong, timeout=10)
        assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    assert requests.put(url, data=b"x" * 100, timeout=10).status_code == 200
    # the URL is for this part of this upload only
    r = requests.put(url.replace("partNumber=2", "partNumber=1"), data=b"x" * 100, timeout=10)
    assert r.status_code == 403


def _md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_part_urls_sign_the_digests_sent_and_oss_refuses_other_bytes(stack):
    """Issue 24: md5=<b64>,... aligned with partNumbers; each URL signs its part's Content-MD5 and the
    answer's headers (per part, Uppy's shape) say what to send."""
    data = data_for(8 * MiB + 100, seed=3)
    parts = {1: data[:8 * MiB], 2: data[8 * MiB:]}
    up = stack.create(len(data))
    status, _, signed = stack.call("GET", f"/multipart/{up['uploadId']}/parts",
                                   dict(stack.ids(up), partNumbers="2,1", md5=f"{_md5(parts[2])},{_md5(parts[1])}"))
    assert status == 200, signed
    assert signed["headers"] == {"1": {"Content-MD5": _md5(parts[1])}, "2": {"Content-MD5": _md5(parts[2])}}
    flipped = parts[2][:50] + bytes([parts[2][50] ^ 1]) + parts[2][51:]
    url = signed["presignedUrls"]["2"]
    r = requests.put(url, data=flipped, headers=signed["headers"]["2"], timeout=10)
    assert (r.status_code, "<Code>InvalidDigest</Code>" in r.text) == (400, True)
    r = requests.put(url, data=flipped, headers={"Content-MD5": _md5(flipped)}, timeout=10)
    assert (r.status_code, "<Code>SignatureDoesNotMatch</Code>" in r.text) == (403, True)
    r = requests.put(url, data=parts[2], timeout=10)  # the header is part of the signature: required
    assert r.status_code == 403
    etags = {}
    for n, body in parts.items():
        r = requests.put(signed["presignedUrls"][str(n)], data=body, headers=signed["headers"][str(n)], timeout=30)
        assert r.status_code == 200, r.text
        etags[n] = r.headers["ETag"]
    # Uppy's signPart: one part, its header
    status, _, one = stack.call("GET", f"/multipart/{up['uploadId']}/1", dict(stack.ids(up), md5=_md5(parts[1])))
    assert status == 200 and one["headers"] == {"Content-MD5": _md5(parts[1])}
    status, _, one = stack.call("GET", f"/multipart/{up['uploadId']}/1", stack.ids(up))
    assert status == 200 and one["headers"] == {} and requests.put(one["url"], data=parts[1], timeout=30).ok
    status, _, answer = stack.complete(up, etags)
    assert status == 200, answer
    assert stack.bucket.sdk.get_object(up["key"]).read() == data


# not base64 of 16 bytes (short, padding wrong, non-canonical last character, too long, hex, not base64);
# two digests for one part number
@pytest.mark.parametrize("md5", ["abc", "XUFAKrxLKna5cZ2REBfFkg", "XUFAKrxLKna5cZ2REBfFkg=,",
                                 "XUFAKrxLKna5cZ2REBfFkh==", "XUFAKrxLKna5cZ2REBfFkg==XUFA",
                                 "5d41402abc4b2a76b9719d911017c592", "!!!!KrxLKna5cZ2REBfFkg==",
                                 "XUFAKrxLKna5cZ2REBfFkg==,XUFAKrxLKna5cZ2REBfFkg=="])
def test_bad_part_digests_are_400(stack, md5):
    up = stack.create(2 * 8 * MiB + 1)  # 3 parts
    status, _, body = stack.call("GET", f"/multipart/{up['uploadId']}/parts", dict(stack.ids(up), partNumbers="1",
                                                                                  md5=md5))
    assert (status, body["code"]) == (400, "InvalidPartDigest"), body
    if "," not in md5:
        status, _, body = stack.call("GET", f"/multipart/{up['uploadId']}/1", dict(stack.ids(up), md5=md5))
        assert (status, body["code"]) == (400, "InvalidPartDigest")
    # two digests for one part number (repeats are fine when they agree); a space is a '+' unescaped
    a, b = _md5(b"a"), _md5(b"b")
    status, _, body = stack.call("GET", f"/multipart/{up['uploadId']}/parts",
                                 dict(stack.ids(up), partNumbers="1,1", md5=f"{a},{b}"))
    assert (status, body["code"]) == (400, "InvalidPartDigest")
    plus = next(d for d in (_md5(bytes([i])) for i in range(256)) if "+" in d)
    status, _, body = stack.call("GET", f"/multipart/{up['uploadId']}/parts",
                                 dict(stack.ids(up), partNumbers="1,1", md5=f"{plus},{plus.replace('+', ' ')}"))
    assert status == 200 and body["headers"] == {"1": {"Content-MD5": plus}}


def test_expired_part_urls_are_refused(tmp_path, photo_bucket):
    s = Stack(tmp_path, photo_bucket, OSSDIRECT_EXPIRES_SECONDS="60")
    try:
        up = s.create(10)
        _, _, signed = s.sign(up, [1])
        assert signed["expires_at"] <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 61))
        assert "x-oss-expires=60&" in signed["presignedUrls"]["1"]
        # signed 61 s ago (the function's clock moved back: the emulator checks presigned URLs on the wall clock)
        s.app.multipart.clock = lambda: time.time() - 61
        _, _, old = s.sign(up, [1])
        r = requests.put(old["presignedUrls"]["1"], data=b"0123456789", timeout=10)
        assert r.status_code == 403 and "Request has expired" in r.text
        s.app.multipart.clock = time.time
        _, _, fresh = s.sign(up, [1])  # a new URL for the same part works
        assert requests.put(fresh["presignedUrls"]["1"], data=b"0123456789", timeout=10).status_code == 200
    finally:
        s.close()


def _assert_aborted(stack, up, code, got):
    status, _, body = got
    assert (status, body["code"]) == (400, code), body
    assert "aborted" in body["message"]
    assert up["uploadId"] not in stack.oss_uploads()
    session = stack.session(up["upload_id"])
    assert session["status"] == "aborted" and session["status_reason"].startswith(code)
    assert stack.sign(up, [1])[2]["code"] == "UploadAborted"
    assert stack.app.multipart.oss.head_object(up["key"], photo_creds(stack)) is None


def test_complete_with_missing_parts_is_refused_and_aborted(stack):
    size = 2 * 8 * MiB + 1
    up = stack.create(size)
    etags = stack.put_parts(up, data_for(size), [1, 2])  # part 3 never sent
    _assert_aborted(stack, up, "MissingParts", stack.complete(up, etags))


def test_complete_listing_a_part_never_uploaded_is_refused_and_aborted(stack):
    size = 8 * MiB + 1
    up = stack.create(size)
    etags = stack.put_parts(up, data_for(size), [1])
    etags[2] = '"0123456789ABCDEF0123456789ABCDEF"'
    _assert_aborted(stack, up, "MissingParts", stack.complete(up, etags))


def test_complete_with_extra_parts_is_refused_and_aborted(stack):
    size = 8 * MiB + 1
    data = data_for(size)
    up = stack.create(size)
    etags = stack.put_parts(up, data)
    # part 3 sent around the URLs (the role's own signature): the plan has 2 parts
    extra = stack.bucket.sdk.upload_part(up["key"], up["uploadId"], 3, b"y" * 10)
    etags[3] = f'"{extra.etag}"'
    _assert_aborted(stack, up, "TooManyParts", stack.complete(up, etags))


def test_complete_with_a_too_large_part_is_refused_and_aborted(stack):
    size = 8 * MiB + 100
    up = stack.create(size)
    etags = stack.put_parts(up, data_for(size), [1])
    big = stack.bucket.sdk.upload_part(up["key"], up["uploadId"], 2, b"z" * 5000)  # not through our URL
    etags[2] = f'"{big.etag}"'
    _assert_aborted(stack, up, "PartTooLarge", stack.complete(up, etags))


def test_complete_with_a_different_etag_is_refused_and_aborted(stack):
    size = 8 * MiB + 100
    up = stack.create(size)
    etags = stack.put_parts(up, data_for(size))
    etags[2] = '"00000000000000000000000000000000"'
    _assert_aborted(stack, up, "PartETagMismatch", stack.complete(up, etags))


@pytest.mark.parametrize("body", [{}, {"parts": []}, {"parts": "x"}, {"parts": [{"PartNumber": 1}]},
                                  {"parts": [{"PartNumber": True, "ETag": "x"}]},
                                  {"parts": [{"PartNumber": 1, "ETag": "x"}, {"PartNumber": 1, "ETag": "y"}]}])
def test_malformed_complete_bodies_are_400_and_keep_the_upload(stack, body):
    up = stack.create(10)
    status, _, got = stack.call("POST", f"/multipart/{up['uploadId']}/complete", stack.ids(up), body)
    assert (status, got["code"]) == (400, "MalformedParts")
    assert stack.session(up["upload_id"])["status"] == "uploading" and stack.oss_uploads() == [up["uploadId"]]


def test_abort(stack):
    up = stack.create(10)
    stack.put_parts(up, b"0123456789")
    status, _, body = stack.call("DELETE", f"/multipart/{up['uploadId']}", stack.ids(up))
    assert status == 200 and body["aborted"] is True
    assert stack.oss_uploads() == [] and stack.session(up["upload_id"])["status"] == "aborted"
    assert stack.call("DELETE", f"/multipart/{up['uploadId']}", stack.ids(up))[0] == 200  # again: nothing left
    assert stack.call("GET", f"/multipart/{up['uploadId']}", stack.ids(up))[2]["code"] == "UploadAborted"
    assert stack.complete(up, {1: '"x"'})[2]["code"] == "UploadAborted"


def test_callback_failure_is_relayed_as_203_stored_not_recorded(tmp_path, photo_bucket):
    s = Stack(tmp_path, photo_bucket, callback=None)
    try:
        up = s.create(10)
        status, _, body = s.complete(up, s.put_parts(up, b"0123456789"))
        assert status == 203 and body["code"] == "CallbackFailed" and body["recorded"] is False
        assert body["location"].endswith(up["key"])
        assert photo_bucket.sdk.get_object(up["key"]).read() == b"0123456789"
        assert s.session(up["upload_id"])["status"] == "uploading"  # the event path may still record it
    finally:
        s.close()


def test_the_callback_turns_the_session_into_the_record_once_even_when_replayed(stack, rsa_signer):
    up = stack.create(10)
    status, _, answer = stack.complete(up, stack.put_parts(up, b"0123456789"))
    assert status == 200 and answer["replayed"] is False
    # OSS retrying the same callback: the record, replayed, nothing written
    from ossdirect.core.callbacks import record_from_object, write_record

    store = SqliteStore(str(stack.records_path))
    info = stack.app.multipart.oss.head_object(up["key"], photo_creds(stack))
    stored, created = write_record(store, record_from_object(stack.app.config, up["key"], info, "callback"), None)
    assert created is False and stored["record_id"] == answer["record_id"]
    assert len(store.all()) == 1


def photo_creds(stack):
    from ossdirect.oss.credentials import resolve_credentials

    return resolve_credentials(stack.bucket.context)


def test_append_only_store_makes_multipart_501(tmp_path, photo_bucket):
    s = Stack(tmp_path, photo_bucket, callback=False, OSSDIRECT_RECORDS="stdout")
    status, _, body = s.call("POST", "/multipart", body={"filename": "a.mp4", "size": 10, "content_type": "video/mp4"})
    assert (status, body["code"]) == (501, "MultipartUnavailable")
    assert s.oss_uploads() == []


def test_missing_credentials_are_503(stack):
    r = stack.app(fc_event("POST", "/multipart", {}, {"Content-Type": "application/json"},
                           json.dumps({"filename": "a.mp4", "size": 10, "content_type": "video/mp4"}).encode()),
                  types.SimpleNamespace())
    assert r["statusCode"] == 503 and json.loads(r["body"])["code"] == "CredentialsUnavailable"


def test_callback_var_carries_the_form_variables(stack):
    from ossdirect.core.forms import Grant, callback_vars

    grant = Grant(stack.app.config, user="alice", payload='{"plan":"pro"}')
    values = json.loads(base64.b64decode(callback_vars("abc", "ü.mp4", grant)))
    assert values == {"x:upload_id": "abc", "x:filename": "ü.mp4", "x:user": "alice", "x:payload": '{"plan":"pro"}'}


def test_part_answers_are_the_json_json_dumps_writes():
    """The part-signing answers are written by hand (a URL needs only its quotes): the same text as json.dumps,
    for presigned URLs and for values that do need escaping; another shape goes to json.dumps itself."""
    from ossdirect.app.http import signed_part_json, signed_parts_json

    def dumps(x):
        return json.dumps(x, separators=(",", ":"), ensure_ascii=False)

    urls = ["http://127.0.0.1:9/b/k%20x?partNumber=1&uploadId=U&x-oss-signature=ab", 'http://h/"q"\\é\x01\x7f', ""]
    for url in urls:
        one = {"url": url, "headers": {}, "size": 8, "expires_at": "2030-01-01T00:00:00Z"}
        assert signed_part_json(one) == dumps(one)
    many = {"presignedUrls": {str(i): u for i, u in enumerate(urls, 1)}, "sizes": {"1": 8, "2": 9, "3": 1},
            "headers": {}, "expires_at": "2030-01-01T00:00:00Z"}
    assert signed_parts_json(many) == dumps(many)
    with_md5 = dict(many, headers={"1": {"Content-MD5": "XUFAKrxLKna5cZ2REBfFkg=="}, "3": {"Content-MD5": 'a"\\é'}})
    assert signed_parts_json(with_md5) == dumps(with_md5)  # the digests (issue 24), written by hand too
    one = {"url": urls[0], "headers": {"Content-MD5": "XUFAKrxLKna5cZ2REBfFkg=="}, "size": 8, "expires_at": "t"}
    assert signed_part_json(one) == dumps(one)
    for other in ({"presignedUrls": {"1": urls[0]}, "sizes": {"1": 8.5}, "headers": {}, "expires_at": "t"},
                  {"presignedUrls": {}, "sizes": {}, "headers": {"x": "y"}, "expires_at": "t"}, {"a": 1},
                  {"presignedUrls": {"1": urls[0]}, "sizes": {"1": 8}, "headers": {"1": {"Content-MD5": 1}},
                   "expires_at": "t"},
                  {"presignedUrls": {"1": urls[0]}, "sizes": {"1": 8}, "headers": {"1": {"X": "y", "Content-MD5": "A"}},
                   "expires_at": "t"}):
        assert signed_parts_json(other) == dumps(other)
    for one in ({"url": 1, "headers": {}, "size": 8, "expires_at": "t"},
                {"url": urls[0], "headers": {"Content-MD5": 1}, "size": 8, "expires_at": "t"},
                {"url": urls[0], "headers": {"x": "y"}, "size": 8, "expires_at": "t"}):
        assert signed_part_json(one) == dumps(one)


def test_session_times_read_without_strptime_as_strptime_reads_them():
    from datetime import datetime, timezone

    def reference(stamp):
        for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
            try:
                return datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc).timestamp()
            except (TypeError, ValueError):
                pass
        return None

    stamps = [multipart._stamp(t) for t in (0, 1.5, 1709325000.123456, 4102444799.999999, time.time())]
    stamps += ["2024-02-30T00:00:00.000000Z", "2024-13-01T00:00:00.000000Z", "2024-01-01T24:00:00.000000Z",
               "2024-01-01T23:59:61.000000Z", "2024-01-01T00:00:00Z", "2024-01-01 00:00:00.000000Z",
               "٢٠٢٤-01-01T00:00:00.000000Z", "2024-01-01T00:00:00.00000aZ", "", "x" * 27, None]
    for stamp in stamps:
        assert multipart._epoch(stamp) == reference(stamp), stamp
    assert multipart._epoch("2024-03-01T20:30:00.250000Z") == 1709325000.25
