"""The Tablestore record store, through its hand-written protocol client (store/ots_wire.py), against a
loopback stand-in of the API (the official SDK only sets tables up, as tools/tablestore_setup.py does)."""

import base64
import hashlib
import http.client
import io
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tablestore_standin import TablestoreStandIn, canonical, decode_rows, encode_row

from ossdirect.oss.credentials import Credentials
from ossdirect.store import RECORD_FIELDS, RecordStoreError
from ossdirect.store.chain import ChainStore
from ossdirect.store.sls import SlsStore
from ossdirect.store.sqlite import SqliteStore
from ossdirect.store.tablestore import TablestoreStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools.tablestore_setup import setup_table  # noqa: E402

A = Credentials("STS.ak-a", "secret-a", "token-a")
B = Credentials("STS.ak-b", "secret-b", "token-b")
PLAIN = Credentials("LTAIplain", "plain-secret", None)


def new_standin(**kwargs):
    return TablestoreStandIn(credentials={c.access_key_id: (c.access_key_secret, c.security_token)
                                          for c in (A, B, PLAIN)}, **kwargs)


@pytest.fixture
def standin():
    server = new_standin()
    yield server
    server.close()


def make_store(server, region="cn-hangzhou", table="records", setup=True):
    store = TablestoreStore("ossd", table, server.endpoint, region=region, timeout=2)
    if setup:
        setup_table(store, A)
    return store


def record(upload_id, **extra):
    base = {"upload_id": upload_id, "record_id": f"rec_{upload_id}", "bucket": "photo-bucket",
            "key": f"uploads/{upload_id}.png", "size": 2048, "etag": "E1", "content_type": "image/png",
            "filename": "é 相片.png", "created_at": "2026-03-01T10:00:00.000000Z", "source": "callback",
            "status": "pending", "user": "alice"}
    base.update(extra)
    return base


# ---------------------------------------------------------------- first writer wins

def test_first_writer_wins_and_later_writers_get_it_back(standin):
    store = make_store(standin)
    first, created = store.put(record("u1", image_width=None), A)
    assert created and first["size"] == 2048 and first["filename"] == "é 相片.png"
    again, created = store.put(record("u1", record_id="rec_other", source="event", size=1), A)
    assert not created and again == first
    assert store.get("u1", A) == first and store.get("missing", A) is None
    row = standin.rows("records")["u1"]
    assert "image_width" not in row and "upload_id" not in row  # None columns are omitted; the id is the key
    assert row["size"] == 2048 and isinstance(row["size"], int)
    assert set(first) == set(RECORD_FIELDS)
    assert standin.problems == []


def test_conditional_put_fails_with_the_services_error_code(standin):
    store = make_store(standin)
    import tablestore as ts

    client = store.client(A)
    row = ts.Row([("upload_id", "raw")], [("status", "pending")])
    client.put_row("records", row, ts.Condition(ts.RowExistenceExpectation.EXPECT_NOT_EXIST))
    with pytest.raises(ts.OTSServiceError) as info:
        client.put_row("records", row, ts.Condition(ts.RowExistenceExpectation.EXPECT_NOT_EXIST))
    assert (info.value.get_http_status(), info.value.get_error_code(), info.value.get_error_message()) == (
        403, "OTSConditionCheckFail", "Condition check failed.")
    with pytest.raises(ts.OTSServiceError) as info:
        client.update_row("records", ts.Row([("upload_id", "absent")], {"PUT": [("status", "x")]}),
                          ts.Condition(ts.RowExistenceExpectation.EXPECT_EXIST))
    assert info.value.get_error_code() == "OTSConditionCheckFail"


def test_own_retried_put_counts_as_created(standin):
    """A PutRow whose answer was lost and that is sent again meets its own row: still ours."""
    store = make_store(standin)
    store.put(record("u-retry"), A)
    stored, created = store.put(record("u-retry"), A)  # same record_id
    assert created and stored["record_id"] == "rec_u-retry"


# ---------------------------------------------------------------- same semantics as SQLite

def test_update_semantics_match_the_sqlite_reference(standin, tmp_path):
    cloud, reference = make_store(standin), SqliteStore(str(tmp_path / "ref.sqlite3"))
    steps = [
        ("put", record("u1", status="pending")),
        ("put", record("u2", user=None, status=None)),
        ("update", "u1", {"status": "pending"}, {"status": "quarantined", "status_reason": "virus"}),
        ("update", "u1", {"status": "pending"}, {"status": "accepted"}),  # lost the race
        ("update", "u1", {"status": "quarantined", "payload": None}, {"payload": '{"hook":200}'}),
        ("update", "u1", {"payload": None}, {"payload": "again"}),  # the hook result lands once
        ("update", "u2", {"status": None}, {"status": "accepted"}),  # expected unset
        ("update", "u2", {"status": None}, {"status": "x"}),
        ("update", "u2", {"size": 2048, "etag": "E1"}, {"status_reason": "two facts"}),
        ("update", "u2", {"size": 9}, {"status_reason": "wrong size"}),
        ("update", "u2", {}, {"status_reason": None}),  # None deletes the column
        ("update", "u2", {"status_reason": None, "image_width": None}, {"image_width": 640}),
        ("update", "u2", {"image_width": None}, {"image_width": 1}),
        ("update", "missing", {}, {"status": "accepted"}),
        ("get", "u1"), ("get", "u2"), ("get", "missing"),
    ]
    for step in steps:
        op, args = step[0], step[1:]
        got = getattr(cloud, op)(*args, credentials=A)
        want = getattr(reference, op)(*args)
        assert got == want, step
    for bad in ({"nope": 1}, {"upload_id": "x"}, {}):
        with pytest.raises(ValueError):
            cloud.update("u1", {}, bad, A)


# ---------------------------------------------------------------- exactly once across processes

def _deliver(args):
    endpoint, proc, uploads = args
    store = TablestoreStore("ossd", "records", endpoint, region="cn-hangzhou", timeout=5)
    rng = random.Random(proc)
    out = []
    for delivery in range(3):
        order = list(range(uploads))
        rng.shuffle(order)
        for i in order:
            upload_id = f"up-{i:03d}"
            path = "callback" if (i + proc + delivery) % 2 else "event"  # both paths, interleaved
            mine = record(upload_id, record_id=f"rec_{upload_id}_p{proc}_d{delivery}", source=path,
                          client_ip=f"10.0.{proc}.{delivery}", created_at=f"2026-03-01T10:{i % 60:02d}:00.{proc}Z")
            stored, created = store.put(mine, A)
            _, checked = store.update(upload_id, {"status": "pending"},
                                      {"status": "accepted", "status_reason": mine["record_id"]}, A)
            _, hooked = store.update(upload_id, {"status": "accepted", "payload": None},
                                     {"payload": json.dumps({"hook": mine["record_id"]})}, A)
            out.append((upload_id, mine["record_id"], stored["record_id"], created, checked, hooked))
    return out


def test_eight_processes_three_deliveries_exactly_once(standin):
    make_store(standin)
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        results = [r for chunk in pool.map(_deliver, [(standin.endpoint, p, 100) for p in range(8)]) for r in chunk]
    assert len(results) == 8 * 3 * 100 and standin.problems == []
    rows = standin.rows("records")
    assert len(rows) == 100
    for upload_id, row in rows.items():
        mine = [r for r in results if r[0] == upload_id]
        creators = [r[1] for r in mine if r[3]]
        assert creators == [row["record_id"]]  # one first writer, and the row holds its facts
        assert {r[2] for r in mine} == {row["record_id"]}  # every delivery was answered with them
        assert row["source"] in ("callback", "event") and row["client_ip"].startswith("10.0.")
        checkers = [r[1] for r in mine if r[4]]
        hookers = [r[1] for r in mine if r[5]]
        assert len(checkers) == 1 and row["status"] == "accepted" and row["status_reason"] == checkers[0]
        assert len(hookers) == 1 and json.loads(row["payload"]) == {"hook": hookers[0]}


# ---------------------------------------------------------------- listing

def test_listing_by_user_and_by_time_pages_through_everything():
    server = new_standin(page_cap=7)  # the service also ends pages early (5000 rows / 4 MB)
    try:
        store = make_store(server)
        for i in range(130):
            user = ("alice", "bob", None)[i % 3]
            store.put(record(f"u{i:03d}", user=user, created_at=f"2026-03-01T10:{i // 60:02d}:{i % 60:02d}.000000Z"), A)
        store.update("u000", {"status": "pending"}, {"status": "quarantined"}, A)

        def everything(**kwargs):
            out, token, pages = [], None, 0
            while True:
                page, token = store.list_records(page_token=token, limit=20, credentials=A, **kwargs)
                out += page
                pages += 1
                assert len(page) <= 20
                if token is None:
                    return out, pages

        alice, pages = everything(user="alice")
        assert [r["upload_id"] for r in alice] == [f"u{i:03d}" for i in range(0, 130, 3)] and pages == 3
        assert alice[0]["status"] == "quarantined"  # listings read the table, so updates show
        every, _ = everything()
        assert [r["upload_id"] for r in every] == [f"u{i:03d}" for i in range(130)]
        window, _ = everything(since="2026-03-01T10:00:30.000000Z", until="2026-03-01T10:01:10.000000Z")
        assert [r["upload_id"] for r in window] == [f"u{i:03d}" for i in range(30, 70)]
        bob, _ = everything(user="bob", since="2026-03-01T10:01:00.000000Z")
        assert all(r["user"] == "bob" and r["created_at"] >= "2026-03-01T10:01:00" for r in bob) and len(bob) == 23
        # newest first (a user's files): one BACKWARD range read on the same index, paged the same way
        newest, _ = everything(user="alice", newest_first=True)
        assert [r["upload_id"] for r in newest] == [f"u{i:03d}" for i in range(0, 130, 3)][::-1]
        latest, _ = everything(newest_first=True, since="2026-03-01T10:00:30.000000Z",
                               until="2026-03-01T10:01:10.000000Z")
        assert [r["upload_id"] for r in latest] == [f"u{i:03d}" for i in range(69, 29, -1)]
        _, token = store.list_records(user="alice", limit=5, credentials=A)
        with pytest.raises(ValueError):
            store.list_records(user="bob", page_token=token, credentials=A)
        assert server.problems == []
    finally:
        server.close()


# ---------------------------------------------------------------- authentication

def test_signatures_v4_and_v2_are_verified_independently(standin):
    v4 = make_store(standin)
    v4.put(record("sig-v4"), A)
    api, headers, _ = standin.requests[-1]
    assert api == "PutRow" and "x-ots-signaturev4" in headers and headers["x-ots-signregion"] == "cn-hangzhou"
    assert headers["x-ots-ststoken"] == "token-a"
    v2 = make_store(standin, region=None, setup=False)  # loopback endpoint names no region: V2
    v2.put(record("sig-v2"), PLAIN)
    api, headers, _ = standin.requests[-1]
    assert "x-ots-signature" in headers and "x-ots-signaturev4" not in headers and "x-ots-ststoken" not in headers
    assert standin.problems == []
    with pytest.raises(RecordStoreError, match="OTSAuthFailed"):
        make_store(standin, setup=False).put(record("bad"), Credentials(A.access_key_id, "wrong", A.security_token))
    assert standin.problems == ["v4 signature mismatch"]
    with pytest.raises(RecordStoreError, match="OTSAuthFailed"):
        make_store(standin, setup=False).put(record("bad"), Credentials(A.access_key_id, A.access_key_secret, "stale"))
    assert "u1" not in standin.rows("records") and "bad" not in standin.rows("records")


def test_standin_rejects_a_tampered_request(standin):
    """Replay a good SDK request with one byte of the body changed, then with a fixed-up MD5."""
    store = make_store(standin)
    store.get("u-none", A)
    api, headers, body = standin.requests[-1]
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    for changed_md5 in (False, True):
        h = dict(headers)
        if changed_md5:
            h["x-ots-contentmd5"] = base64.b64encode(hashlib.md5(tampered).digest()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=5)
        conn.request("POST", "/" + api, body=tampered, headers=h)
        response = conn.getresponse()
        assert response.status == 403 and b"OTSAuthFailed" in response.read()
        conn.close()
    assert standin.problems == ["content md5 mismatch", "v4 signature mismatch"]
    # the canonical string is the documented one
    assert canonical("/GetRow", "", {"x-ots-b": " 2 ", "X-OTS-A": "1", "x-ots-signature": "s", "host": "h"}) == \
        "/GetRow\nPOST\n\nx-ots-a:1\nx-ots-b:2\n"


def test_sts_rotation_keeps_one_client_and_holds_only_the_latest_keys(standin):
    store = make_store(standin)
    store.put(record("rot-1"), A)
    client = store._wire
    store.put(record("rot-2"), B)
    assert store._wire is client and standin.requests[-1][1]["x-ots-accesskeyid"] == B.access_key_id
    del standin.credentials[A.access_key_id]  # A's keys expired at the service
    assert store.get("rot-1", B)["record_id"] == "rec_rot-1"
    held = [v for v in vars(store).values() if isinstance(v, (str, tuple))]
    assert not any(A.access_key_secret in str(v) or B.access_key_secret in str(v) for v in held)
    assert standin.problems == []
    with pytest.raises(RecordStoreError, match="no credentials"):
        store.get("rot-1", None)


# ---------------------------------------------------------------- failures

def test_unreachable_service_is_a_record_store_error_quickly():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    store = TablestoreStore("ossd", "records", f"http://127.0.0.1:{port}", region="cn-hangzhou", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RecordStoreError, match="PutRow failed"):
        store.put(record("u"), A)
    assert time.monotonic() - started < 5


def test_server_faults_on_writes_are_not_retried_blindly():
    server = new_standin(fail_ops={"PutRow"})
    try:
        store = make_store(server)
        with pytest.raises(RecordStoreError, match="503 OTSServerUnavailable"):
            store.put(record("u"), A)
        assert server.calls["PutRow"] == 1
    finally:
        server.close()


class _LogStandIn:
    """A minimal SLS endpoint that notes whether the table already held the record at PutLogs time."""

    def __init__(self, table_server):
        self.seen = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.seen.append(sorted(table_server.rows("records")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_sls_is_written_after_the_table(standin):
    log = _LogStandIn(standin)
    try:
        chain = ChainStore(make_store(standin), SlsStore("proj", "records", f"http://127.0.0.1:{log.port}"))
        assert chain.needs_credentials
        chain.put(record("u-log"), A)
        chain.put(record("u-log", record_id="rec_late"), A)  # a replay appends nothing
        chain.update("u-log", {"status": "pending"}, {"status": "accepted"}, A)
        assert log.seen == [["u-log"], ["u-log"]] and chain.log_failures == 0
    finally:
        log.close()


def test_sls_down_records_still_written_to_the_table(standin):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = sock.getsockname()[1]
    sock.close()
    errors = io.StringIO()
    chain = ChainStore(make_store(standin), SlsStore("proj", "records", f"http://127.0.0.1:{dead}", timeout=0.5),
                       stream=errors)
    for i in range(5):
        stored, created = chain.put(record(f"down-{i}"), A)
        assert created and stored["record_id"] == f"rec_down-{i}"
    assert chain.update("down-0", {"status": "pending"}, {"status": "accepted"}, A)[1]
    assert sorted(standin.rows("records")) == [f"down-{i}" for i in range(5)]
    assert chain.get("down-0", A)["status"] == "accepted"
    lines = [json.loads(line) for line in errors.getvalue().splitlines()]
    assert chain.log_failures == 6 and [line["ossdirect_record_log_failed"]["upload_id"] for line in lines][:5] == \
        [f"down-{i}" for i in range(5)]
    assert A.access_key_secret not in errors.getvalue()


# ---------------------------------------------------------------- setup and configuration

def test_setup_is_idempotent_and_completes_missing_indexes(standin):
    store = make_store(standin, setup=False)
    assert setup_table(store, A) == {"table": "created", "indexes_created": ["records_by_user", "records_by_time"]}
    assert setup_table(store, A) == {"table": "exists", "indexes_created": []}
    assert standin.calls["CreateTable"] == 1 and "CreateIndex" not in standin.calls
    del standin.tables["records"].indexes["records_by_time"]
    assert setup_table(store, A) == {"table": "exists", "indexes_created": ["records_by_time"]}
    import tablestore as ts

    store.client(A).create_table(ts.TableMeta("other", [("id", "INTEGER")]), ts.TableOptions(),
                                 ts.ReservedThroughput(ts.CapacityUnit(0, 0)))
    with pytest.raises(SystemExit, match="primary key"):
        setup_table(make_store(standin, table="other", setup=False), A)


def test_missing_table_is_an_error_not_a_crash(standin):
    store = make_store(standin, setup=False)
    with pytest.raises(RecordStoreError, match="404 OTSObjectNotExist"):
        store.put(record("u"), A)


@pytest.mark.parametrize("url", ["tablestore://", "tablestore://inst", "tablestore://inst/t",
                                 "tablestore://inst/a/b?endpoint=x", "tablestore://inst/t?endpoint=x&timeout=soon"])
def test_bad_urls(url):
    with pytest.raises(RecordStoreError):
        TablestoreStore.from_url(url)


def test_url_and_region():
    store = TablestoreStore.from_url("tablestore://inst/records?endpoint=https://inst.cn-shanghai.ots.aliyuncs.com")
    assert (store.instance, store.table, store.region, store.timeout) == ("inst", "records", "cn-shanghai", 2.0)
    vpc = TablestoreStore.from_url("tablestore://inst/r?endpoint=inst.cn-hangzhou.vpc.tablestore.aliyuncs.com&timeout=1")
    assert vpc.endpoint == "https://inst.cn-hangzhou.vpc.tablestore.aliyuncs.com" and vpc.region == "cn-hangzhou"


def test_sdk_is_imported_only_when_the_backend_is_configured(tmp_path):
    code = ("import sys; from ossdirect.store import open_store; import ossdirect.store.tablestore, "
            "ossdirect.store.chain; open_store('sqlite:///%s/x.sqlite3'); print('tablestore' in sys.modules)"
            % tmp_path)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "shared"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


def test_records_are_kept_without_importing_the_sdk(standin):
    """A fresh process (a cold start) writes, updates, reads and lists records: no ``tablestore``,
    protobuf, urllib3 or even ``http.client`` / ``email`` module is ever imported."""
    make_store(standin)
    code = ("import sys, json; from ossdirect.store import open_store; from ossdirect.oss.credentials import Credentials; "
            f"s = open_store('tablestore://ossd/records?endpoint={standin.endpoint}&region=cn-hangzhou'); "
            f"c = Credentials{tuple(A)!r}; "
            "r = dict.fromkeys(('bucket', 'key', 'created_at', 'record_id', 'status'), 'x'); r['upload_id'] = 'cold'; "
            "r['created_at'] = '2026-03-01T10:00:00Z'; r['user'] = 'cold-user'; "
            "print(json.dumps([s.put(r, c)[1], s.update('cold', {'status': 'x'}, {'status': 'y'}, c)[1], "
            "s.get('cold', c)['status'], [x['upload_id'] for x in s.list_records(user='cold-user', credentials=c)[0]], "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('tablestore', 'google', 'urllib3', 'aiohttp', 'http', 'email'))]))")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "shared"), ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, True, "y", ["cold"], []]
    assert standin.problems == []


def test_plainbuffer_codec_round_trips_with_the_sdk():
    """The stand-in's own codec and the SDK's agree both ways (checksums included)."""
    from tablestore.plainbuffer.plain_buffer_builder import PlainBufferBuilder
    from tablestore.plainbuffer.plain_buffer_coded_stream import PlainBufferCodedInputStream
    from tablestore.plainbuffer.plain_buffer_stream import PlainBufferInputStream

    sdk_bytes = PlainBufferBuilder.serialize_for_put_row([("upload_id", "é")], [("size", -5), ("s", "相片")])
    assert decode_rows(sdk_bytes) == [([("upload_id", "é")], [("size", -5, None, None), ("s", "相片", None, None)], False)]
    ours = encode_row([("upload_id", "é")], [("size", 7, 1700000000000), ("s", "x", 1700000000000)])
    pk, attrs = PlainBufferCodedInputStream(PlainBufferInputStream(ours)).read_row()
    assert pk == [("upload_id", "é")] and attrs == [("size", 7, 1700000000000), ("s", "x", 1700000000000)]
