"""The callback function with FC3 events, real RSA signatures, a real key server and a real SQLite file."""

import base64
import json
import sqlite3
import threading
from urllib.parse import urlencode

import pytest
from fixtures import base_env, emulated_env, sqlite_url
from support import fc_event

from ossdirect.app.handlers import CallbackApp
from ossdirect.store.sqlite import SqliteStore

DOC_AUTH = "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA=="
OSS_KEY_URL = "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ=="


@pytest.fixture
def env(tmp_path, key_server, photo_bucket):
    return emulated_env(photo_bucket, tmp_path / "records.sqlite3", key_server, PREFIX="uploads/",
                        PUBLIC_BASE_URL="https://files.example.com")


@pytest.fixture
def app(env):
    return CallbackApp(env)


def body_for(upload_id="u1", key="uploads/u1.png", bucket="photo-bucket", **extra):
    fields = {"bucket": bucket, "object": key, "etag": "D8E8FCA2DC0F896FD7CB4CB0031BA249", "size": "5",
              "mimeType": "image/png", "crc64": "123", "contentMd5": "2Oj8otwPiW/Xy0ywAxuiSQ==", "height": "",
              "width": "", "format": "", "clientIp": "127.0.0.1", "reqId": "ABC", "upload_id": upload_id,
              "filename": "a.png"}
    fields.update(extra)
    return urlencode(fields).encode()


def signed_event(signer, key_server, body, path="/oss-callback", query="", content_type=None, headers=None):
    key_url = base64.b64encode(f"{key_server.url}/_emulator/callback_pub_key.pem".encode()).decode()
    hdrs = {"Authorization": signer.sign(path, query, body), "X-Oss-Pub-Key-Url": key_url,
            "Content-Type": content_type or "application/x-www-form-urlencoded"}
    hdrs.update(headers or {})
    raw_path = path + ("?" + query if query else "")
    event = json.loads(fc_event("POST", raw_path, headers=hdrs, body=body.decode(), base64_body=False))
    return json.dumps(event).encode()


CONTEXT = None  # set per test by the autouse fixture below: the emulated bucket's role credentials


@pytest.fixture(autouse=True)
def _context(request):
    global CONTEXT
    if "photo_bucket" in request.fixturenames or "env" in request.fixturenames:
        CONTEXT = request.getfixturevalue("photo_bucket").context
    yield
    CONTEXT = None


@pytest.fixture
def stored(photo_bucket):
    """The objects the callbacks below talk about, stored as our forms would store them."""
    photo_bucket.put("uploads/u1.png", b"hello", upload_id="u1", filename="a.png")
    photo_bucket.put("uploads/j.png", b"1234567", upload_id="uj", filename="j.png")
    return photo_bucket


def call(app, event, context=None):
    r = app(event, context or CONTEXT)
    return r["statusCode"], json.loads(r["body"])


def rows(env):
    path = env["OSSDIRECT_RECORDS"][len("sqlite:///"):]
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT upload_id, key, size, content_type FROM records ORDER BY rowid").fetchall()


def test_good_callback_is_recorded_and_answered(app, env, rsa_signer, key_server, stored):
    status, body = call(app, signed_event(rsa_signer, key_server, body_for()))
    assert status == 200
    assert body["ok"] is True and body["replayed"] is False
    assert body["key"] == "uploads/u1.png" and body["size"] == 5 and body["upload_id"] == "u1"
    assert body["url"] == "https://files.example.com/uploads/u1.png"
    assert body["record_id"].startswith("rec_")
    # the facts are OSS's (HeadObject), not the body's: md5("hello"), and the name from the object's metadata
    assert body["content_type"] == "image/png" and body["etag"] == "5D41402ABC4B2A76B9719D911017C592"
    assert body["filename"] == "a.png"
    assert rows(env) == [("u1", "uploads/u1.png", 5, "image/png")]


def test_replayed_callback_returns_first_record_and_writes_nothing(app, env, rsa_signer, key_server, stored):
    event = signed_event(rsa_signer, key_server, body_for())
    _, first = call(app, event)
    status, again = call(app, event)
    assert status == 200 and again["replayed"] is True and again["record_id"] == first["record_id"]
    # a fresh instance (restart) still knows it
    status, third = call(CallbackApp(env), event)
    assert third["record_id"] == first["record_id"] and third["replayed"] is True
    assert len(rows(env)) == 1


def test_json_body_type(app, env, rsa_signer, key_server, stored):
    body = json.dumps({"bucket": "photo-bucket", "object": "uploads/j.png", "etag": "E", "size": 7,
                       "mimeType": "image/png", "upload_id": "uj", "filename": "j.png"}).encode()
    status, result = call(app, signed_event(rsa_signer, key_server, body, content_type="application/json"))
    assert status == 200 and result["size"] == 7
    assert rows(env) == [("uj", "uploads/j.png", 7, "image/png")]


def test_callback_url_with_query_is_signed_over_raw_query(app, env, rsa_signer, key_server, stored):
    status, _ = call(app, signed_event(rsa_signer, key_server, body_for(), path="/cb%20x", query="a=1&b=%2F"))
    assert status == 200


def test_oss_documented_request_with_pinned_key_reaches_body_checks(app):
    event = fc_event("POST", "/index.php?id=1&index=2", headers={
        "authorization": DOC_AUTH, "x-oss-pub-key-url": OSS_KEY_URL,
        "content-type": "application/x-www-form-urlencoded"}, body="bucket=yonghu-test", base64_body=False)
    status, body = call(app, event)
    # signature is OSS's own and verifies; the bucket is not ours
    assert (status, body["code"]) == (403, "WrongBucket")


@pytest.mark.parametrize("mutate,status,code", [
    (lambda e: e.update(body=e["body"] + "&x=1"), 403, "InvalidCallbackSignature"),
    (lambda e: e["headers"].update(Authorization=base64.b64encode(b"\0" * 128).decode()), 403, "InvalidCallbackSignature"),
    (lambda e: e["headers"].update({"X-Oss-Pub-Key-Url": base64.b64encode(
        b"https://gosspublic.alicdn.com.evil.example/k.pem").decode()}), 403, "InvalidCallbackSignature"),
    (lambda e: e["headers"].pop("Authorization"), 400, "MalformedCallback"),
    (lambda e: e["headers"].update(Authorization="***"), 400, "MalformedCallback"),
])
def test_forged_or_malformed_callbacks(app, env, rsa_signer, key_server, mutate, status, code):
    event = json.loads(signed_event(rsa_signer, key_server, body_for()))
    mutate(event)
    got = call(app, json.dumps(event).encode())
    assert (got[0], got[1]["code"]) == (status, code)
    assert rows(env) == []


@pytest.mark.parametrize("body,status,code", [
    (body_for(bucket="other-bucket"), 403, "WrongBucket"),
    (body_for(key="private/u1.png"), 403, "KeyOutsidePrefix"),
    (body_for(upload_id=""), 400, "MissingUploadId"),
    (body_for(width="1e400"), 200, None),  # cosmetic body values that are not numbers are dropped
    (b"%%%=&&==", 400, "MalformedCallbackBody"),
    (body_for(key="uploads/missing.png"), 404, "ObjectNotFound"),
    (body_for(upload_id="someone-elses"), 403, "UploadIdMismatch"),
])
def test_signed_but_unacceptable_bodies(app, env, rsa_signer, key_server, stored, body, status, code):
    got = call(app, signed_event(rsa_signer, key_server, body))
    assert (got[0], got[1].get("code")) == (status, code)
    assert rows(env) == ([] if code else [("u1", "uploads/u1.png", 5, "image/png")])


def test_bad_json_body(app, rsa_signer, key_server):
    got = call(app, signed_event(rsa_signer, key_server, b"{not json", content_type="application/json"))
    assert (got[0], got[1]["code"]) == (400, "MalformedCallbackBody")


def test_get_is_405(app):
    got = call(app, fc_event("GET", "/"))
    assert (got[0], got[1]["code"]) == (405, "MethodNotAllowed")


def test_emulator_key_is_not_trusted_by_default(env, rsa_signer, key_server):
    env = dict(env)
    del env["OSSDIRECT_TRUSTED_KEY_PREFIXES"]
    got = call(CallbackApp(env), signed_event(rsa_signer, key_server, body_for()))
    assert (got[0], got[1]["code"]) == (403, "InvalidCallbackSignature")
    assert key_server.hits == []


def test_concurrent_callbacks_no_lost_or_duplicate_record(env, rsa_signer, key_server, photo_bucket):
    # 8 threads, each its own app instance (like separate FC instances) on one SQLite file;
    # 40 distinct uploads, each delivered 3 times.
    for i in range(40):
        photo_bucket.put(f"uploads/u{i}.png", b"x" * i or b"0", upload_id=f"u{i}")
    events = [signed_event(rsa_signer, key_server, body_for(upload_id=f"u{i}", key=f"uploads/u{i}.png"))
              for i in range(40)]
    work = [e for e in events for _ in range(3)]
    results, errors = [], []
    lock = threading.Lock()

    def worker(chunk):
        app = CallbackApp(env)
        for event in chunk:
            status, body = call(app, event)
            with lock:
                (results if status == 200 else errors).append(body)

    threads = [threading.Thread(target=worker, args=(work[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 120
    assert sum(not r["replayed"] for r in results) == 40
    by_upload = {}
    for r in results:
        by_upload.setdefault(r["upload_id"], set()).add(r["record_id"])
    assert all(len(ids) == 1 for ids in by_upload.values()) and len(by_upload) == 40
    assert sorted(r[0] for r in rows(env)) == sorted(f"u{i}" for i in range(40))


def test_unwritable_record_store_is_503_at_every_request(tmp_path, key_server):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    app = CallbackApp(base_env(RECORDS=sqlite_url(blocker / "db.sqlite3")))
    got = call(app, fc_event("POST", "/"))
    assert (got[0], got[1]["code"]) == (503, "ConfigInvalid")
    assert "OSSDIRECT_RECORDS" in got[1]["message"]


def test_sqlite_store_survives_restart(tmp_path):
    path = str(tmp_path / "r.sqlite3")
    store = SqliteStore(path)
    rec = {"record_id": "rec_1", "upload_id": "u", "bucket": "b", "key": "k", "created_at": "t"}
    stored, created = store.put(rec)
    assert created is True and stored["record_id"] == "rec_1" and stored["size"] is None
    store.close()
    again = SqliteStore(path)
    stored, created = again.put(dict(rec, record_id="rec_2"))
    assert created is False and stored["record_id"] == "rec_1"
    assert [r["record_id"] for r in again.all()] == ["rec_1"]
    assert again._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_many_instances_opening_a_fresh_sqlite_file_at_once(tmp_path):
    # Cold starts race to switch the new file to WAL and create the table; none may fail.
    failures = []

    def open_and_write(i, path):
        try:
            SqliteStore(path).put({"record_id": f"r{i}", "upload_id": f"u{i}", "bucket": "b", "key": "k",
                                   "created_at": "t"})
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(repr(exc))

    for round_ in range(10):
        path = str(tmp_path / f"fresh{round_}.sqlite3")
        threads = [threading.Thread(target=open_and_write, args=(i, path)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(SqliteStore(path).all()) == 12
    assert failures == []


def test_a_bucket_slower_than_two_seconds_still_records_within_the_callback_budget(env, rsa_signer, key_server,
                                                                                 stored):
    """OSS waits 5 s for the answer: a HeadObject answered in 2.3 s is inside it, so the upload is recorded
    (a 2 s lookup timeout failed such an upload: stored, answered CallbackFailed, never recorded)."""
    from urllib.parse import urlsplit

    from support import FlippingProxy

    bucket = urlsplit(env["OSSDIRECT_OSS_ENDPOINT"])
    slow = FlippingProxy(f"{bucket.scheme}://{bucket.netloc}", times=0, delay=2.3)  # changes nothing, 2.3 s late
    try:
        app = CallbackApp(dict(env, OSSDIRECT_OSS_ENDPOINT=slow.url + bucket.path))
        assert app.lookup_timeout < 5.0  # and leaves OSS's budget room for the record write
        status, body = call(app, signed_event(rsa_signer, key_server, body_for()))
    finally:
        slow.close()
    assert status == 200 and body["ok"] is True and body["etag"] == "5D41402ABC4B2A76B9719D911017C592"
    assert rows(env) == [("u1", "uploads/u1.png", 5, "image/png")]


def test_a_bucket_that_cannot_be_asked_fails_the_callback_clearly_and_records_nothing(env, rsa_signer, key_server,
                                                                                    stored):
    """Nothing listens at the endpoint: 503 ObjectLookupFailed (OSS tells the browser the callback failed;
    a retry or the process function records it later), never a 500, and no record from the body's claims."""
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = CallbackApp(dict(env, OSSDIRECT_OSS_ENDPOINT=f"http://127.0.0.1:{port}/photo-bucket"))
    status, body = call(app, signed_event(rsa_signer, key_server, body_for()))
    assert (status, body["code"]) == (503, "ObjectLookupFailed"), body
    assert "ConnectionFailed" in body["message"]
    assert rows(env) == []
