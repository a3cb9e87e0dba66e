"""`python -m ossdirect reconcile` against the emulator (its ListObjectsV2) and a real SQLite record
store: 1,000 objects, 10 unrecorded, 5 records whose objects were deleted."""

import json
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from fixtures import emulated_env
from test_events import png_bytes

from ossdirect.oss.credentials import Credentials
from ossdirect.core.events import open_processor
from ossdirect.oss.extra import list_objects
from ossdirect.core.reconcile import reconcile
from ossdirect.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def emulator_calls(photo_bucket):
    """("ListObjectsV2", query) for every listing the emulator answered, read from its request log
    (``emulator GET /<bucket>?list-type=2&... <status> ...``)."""
    calls = []

    class Calls(logging.Handler):
        def emit(self, record):
            method, full_path = record.args[:2]
            parts = urlsplit(full_path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            if method == "GET" and parts.path.strip("/") == photo_bucket.bucket and query.get("list-type") == "2":
                calls.append(("ListObjectsV2", query))

    logger, handler = logging.getLogger("emulator"), Calls()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield calls
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def env(tmp_path, photo_bucket):
    return emulated_env(photo_bucket, tmp_path / "records.sqlite3", PREFIX="uploads/")


def creds_of(bucket):
    return Credentials(bucket.AK, bucket.SK, bucket.TOKEN, "test")


def record(key, upload_id):
    return {"record_id": "rec_" + upload_id, "upload_id": upload_id, "bucket": "photo-bucket", "key": key,
            "size": 1, "etag": "E", "created_at": f"2025-01-01T00:00:00.{int(upload_id[1:]) % 1000000:06d}Z",
            "source": "callback", "status": "recorded"}


@pytest.fixture
def bucket_of_1000(env, photo_bucket):
    """1,005 uploads stored; 995 recorded (10 never were); 5 of the recorded then deleted from OSS."""
    data = png_bytes((8, 8))
    keys = [f"uploads/o{i:04d}.png" for i in range(1005)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: photo_bucket.put(keys[i], data, upload_id=f"u{i:04d}"), range(1005)))
    unrecorded = set(keys[100:1000:90])  # 10 keys
    assert len(unrecorded) == 10
    store = SqliteStore(env["OSSDIRECT_RECORDS"][len("sqlite:///"):])
    for i, key in enumerate(keys):
        if key not in unrecorded:
            store.put(record(key, f"u{i:04d}"))
    deleted = set(keys[1000:])
    for key in deleted:
        photo_bucket.sdk.delete_object(key)
    store.close()
    return unrecorded, deleted


def test_reconcile_reports_exactly_the_15_and_fix_records_the_10(env, photo_bucket, emulator_calls, bucket_of_1000):
    unrecorded, deleted = bucket_of_1000
    processor = open_processor(env)
    creds = creds_of(photo_bucket)
    findings = []
    summary = reconcile(processor, creds, page_size=100, report=findings.append)
    assert {f["key"] for f in findings if f["finding"] == "unrecorded"} == unrecorded
    assert {f["key"] for f in findings if f["finding"] == "missing"} == deleted
    assert len(findings) == 15
    assert summary == {"objects": 1000, "records": 995, "unrecorded": 10, "missing": 5, "quarantined": 0, "fixed": 0}
    lists = [q for name, q in emulator_calls if name == "ListObjectsV2"]
    assert len(lists) == 10 and all(q["max-keys"] == "100" for q in lists)  # paged, 100 keys at a time

    findings.clear()
    summary = reconcile(processor, creds, fix=True, report=findings.append)
    assert summary["fixed"] == 10 and summary["unrecorded"] == 10
    store = processor.store
    for f in findings:
        if f["finding"] == "unrecorded":
            r = store.get("u" + f["key"][len("uploads/o"):-4])
            assert (r["key"], r["source"], r["status"], r["content_type_detected"]) == \
                (f["key"], "event", "recorded", "image/png")
            assert r["size"] == len(png_bytes((8, 8)))  # OSS's size, not the stand-in record's

    findings.clear()
    summary = reconcile(processor, creds, report=findings.append)
    assert [f["finding"] for f in findings] == ["missing"] * 5 and summary["unrecorded"] == 0


def test_reconcile_reports_quarantined(env, photo_bucket):
    from test_events import HTML, oss_event

    from ossdirect.app.handlers import ProcessApp

    photo_bucket.put("uploads/evil.png", HTML, upload_id="evil")
    photo_bucket.put("uploads/fine.png", png_bytes(), upload_id="fine")
    app = ProcessApp(env)
    for key in ("uploads/evil.png", "uploads/fine.png"):
        app(oss_event(key), photo_bucket.context)
    findings = []
    summary = reconcile(open_processor(env), creds_of(photo_bucket), report=findings.append)
    assert findings == [{"finding": "quarantined", "key": "uploads/evil.png", "upload_id": "evil",
                         "where": "quarantine/uploads/evil.png"}]
    assert (summary["unrecorded"], summary["missing"], summary["quarantined"]) == (0, 0, 1)


def test_cli(env, photo_bucket, bucket_of_1000):
    unrecorded, deleted = bucket_of_1000
    run_env = dict(os.environ, **env, ALIBABA_CLOUD_ACCESS_KEY_ID=photo_bucket.AK,
                   ALIBABA_CLOUD_ACCESS_KEY_SECRET=photo_bucket.SK, ALIBABA_CLOUD_SECURITY_TOKEN=photo_bucket.TOKEN)
    r = subprocess.run([sys.executable, "-m", "ossdirect", "reconcile", "--fix"], env=run_env, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 1, r.stderr  # the 5 missing cannot be fixed by recording
    assert {x["key"] for x in lines[:-1] if x["finding"] == "unrecorded" and x["fixed"]["action"] == "created"} == \
        unrecorded
    assert lines[-1]["summary"]["fixed"] == 10 and lines[-1]["summary"]["missing"] == 5


def test_list_objects_decodes_any_key(env, photo_bucket):
    odd = ["uploads/a b+c.png", "uploads/日本語 <&>.png", "uploads/x%41.png"]
    for key in odd:
        photo_bucket.put(key, b"x")
    processor = open_processor(env)
    page = list_objects(processor.oss, "uploads/", creds_of(photo_bucket), max_keys=2)
    assert len(page.objects) == 2 and page.next_token
    rest = list_objects(processor.oss, "uploads/", creds_of(photo_bucket), page.next_token)
    assert sorted(o.key for o in page.objects + rest.objects) == sorted(odd) and rest.next_token is None
    assert all(o.size == 1 and len(o.etag) == 32 for o in rest.objects)


def test_sqlite_list_records_pages(tmp_path):
    store = SqliteStore(str(tmp_path / "r.sqlite3"))
    for i in range(250):
        store.put(record(f"uploads/{i}", f"u{i:04d}"))
    seen, token, pages = [], None, 0
    while True:
        page, token = store.list_records(page_token=token, limit=100)
        seen += [r["upload_id"] for r in page]
        pages += 1
        if not token:
            break
    assert pages == 3 and seen == [f"u{i:04d}" for i in range(250)]
    newest, token = [], None
    while True:
        page, token = store.list_records(page_token=token, limit=100, newest_first=True)
        newest += [r["upload_id"] for r in page]
        if not token:
            break
    assert newest == seen[::-1]
    with pytest.raises(ValueError):
        store.list_records(page_token="bm90IGEgdG9rZW4=")
