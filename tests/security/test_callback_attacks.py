"""Attacks on the callback function itself, with FC3 events as the runtime delivers them, real RSA
signatures, a real key server and a real emulated bucket behind HeadObject."""

import base64
import gc
import json
import threading
import time
import tracemalloc

import pytest
from fixtures import emulated_env
from support import fc_event

from ossdirect.app.handlers import CallbackApp

PINNED = "https://gosspublic.alicdn.com/callback_pub_key_v1.pem"


@pytest.fixture
def env(tmp_path, key_server, photo_bucket):
    return emulated_env(photo_bucket, tmp_path / "records.sqlite3", key_server)


def event(body, auth, key_url, content_type="application/x-www-form-urlencoded"):
    return fc_event("POST", "/oss-callback", headers={
        "Authorization": auth, "X-Oss-Pub-Key-Url": base64.b64encode(key_url.encode()).decode(),
        "Content-Type": content_type}, body=body, base64_body=True)


def call(app, ev, context):
    r = app(ev, context)
    return r["statusCode"], json.loads(r["body"])


def test_10000_forged_callbacks_with_distinct_key_urls_use_bounded_memory(env, rsa_signer, key_server, photo_bucket):
    app = CallbackApp(env)
    forged = base64.b64encode(b"\1" * 64).decode()
    urls = []
    for i in range(10_000):
        kind = i % 4
        if kind == 0:
            urls.append(f"{PINNED}?{i}")  # the pinned key plus a query: once cached per value
        elif kind == 1:
            urls.append(f"http://gosspublic.alicdn.com/callback_pub_key_v1.pem#{i}")
        elif kind == 2:
            urls.append(f"{key_server.url}/_emulator/k{i}.pem")  # trusted prefix, unknown key: rate-limited
        else:
            urls.append(f"{PINNED}/{'x' * (i % 50)}?{i}")
    events = [event(b"bucket=photo-bucket", forged, u) for u in urls[:200]]
    for ev in events:  # warm up imports and allocator pools
        call(app, ev, photo_bucket.context)
    gc.collect()
    started = time.monotonic()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        statuses = set()
        for u in urls:
            status, body = call(app, event(b"bucket=photo-bucket", forged, u), photo_bucket.context)
            statuses.add((status, body["code"]))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert statuses == {(403, "InvalidCallbackSignature")}
    assert len(app.key_cache.keys) <= 8 and len(app.key_cache.by_header) <= 8
    assert not app.key_cache.by_header  # only what verified is remembered
    assert grown < 512 * 1024, f"memory grew by {grown} bytes"
    # unknown keys under a trusted prefix are fetched at most once a second, whatever the callers send
    assert len(key_server.hits) <= time.monotonic() - started + 2


def test_concurrent_first_callbacks_wait_for_one_key_fetch(env, rsa_signer, key_server, photo_bucket):
    for i in range(16):
        photo_bucket.put(f"uploads/c{i}.png", b"png", upload_id=f"c{i}")
    app = CallbackApp(env)  # a cold instance: the emulator key is not fetched yet
    key_url = f"{key_server.url}/_emulator/callback_pub_key.pem"
    results = []

    def one(i):
        body = f"bucket=photo-bucket&object=uploads%2Fc{i}.png&upload_id=c{i}".encode()
        results.append(call(app, event(body, rsa_signer.sign("/oss-callback", "", body), key_url),
                            photo_bucket.context)[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 16
    assert len(key_server.hits) == 1


@pytest.mark.parametrize("body,content_type", [
    (b'{"bucket":"photo-bucket","object":"uploads/u1.png","upload_id":"u1","size":1e400}', "application/json"),
    (b'{"bucket":"photo-bucket","object":"uploads/u1.png","upload_id":"u1","size":NaN}', "application/json"),
    (b'{"bucket":"photo-bucket","object":' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
    (b"[" * 5000 + b"]" * 5000, "application/json"),
    (b'{"bucket":{"a":1},"object":"uploads/u1.png","upload_id":"u1"}', "application/json"),
    (b'{"bucket":"photo-bucket","object":"uploads/u1.png","upload_id":true}', "application/json"),
    (b"\xff\xfe", "application/x-www-form-urlencoded"),
    (b"bucket=photo-bucket&object=uploads%2Fu1.png&upload_id=u1&width=" + b"9" * 5000,
     "application/x-www-form-urlencoded"),
])
def test_validly_signed_hostile_bodies_never_500(env, rsa_signer, key_server, photo_bucket, body, content_type):
    photo_bucket.put("uploads/u1.png", b"png", upload_id="u1")
    app = CallbackApp(env)
    key_url = f"{key_server.url}/_emulator/callback_pub_key.pem"
    status, answer = call(app, event(body, rsa_signer.sign("/oss-callback", "", body), key_url, content_type),
                          photo_bucket.context)
    assert status < 500, answer
    assert status in (200, 400, 403) and ("code" in answer or answer["ok"] is True)
