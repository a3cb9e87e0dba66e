"""The hand-written Tablestore protocol (store/ots_wire.py) against the official SDK, on golden vectors.

The SDK (``tablestore``, installed for tests) encodes the same calls through its own client with its
transport replaced by a capture: request bodies and signed ``x-ots-*`` headers must be byte-equal to
ours at the same instant. Responses are built with the SDK's PlainBuffer builder and protobuf classes
and must decode to the same values in both. Then ots_wire talks to the loopback stand-in.
"""

import base64
import datetime
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading

import pytest
from tablestore_standin import TablestoreStandIn, b64hmac

from ossdirect.store import ots_wire as w

ts = pytest.importorskip("tablestore")
from tablestore.plainbuffer.plain_buffer_builder import PlainBufferBuilder  # noqa: E402
from tablestore.protobuf import table_store_pb2 as pb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = 1796300000.0  # 2026-12-04T...Z, fixed for both signers
STS = ("STS.key-id", "s3cr3t/+=", "tok+en/==")
PLAIN = ("LTAIkey", "plain-secret", None)
SDK_OK = {"x-ots-contenttype": "protocol buffer", "x-ots-requestid": "req-1"}


class Capture:
    """The SDK client's transport: keeps what it would send, answers ``response``."""

    def __init__(self, key, body=b"", status=200, api=None, code=None):
        self.key, self.body, self.status, self.sent = key, body, status, []

    def send_receive(self, url, headers, body):
        self.sent.append((url, dict(headers), bytes(body)))
        payload = self.body
        out = dict(SDK_OK, **{"x-ots-contentmd5": base64.b64encode(hashlib.md5(payload).digest()).decode(),
                              "x-ots-date": datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc).strftime(
                                  "%Y-%m-%dT%H:%M:%S.000Z")})
        text = "\n".join(sorted(f"{k}:{v.strip()}" for k, v in out.items())) + "\n" + url
        out["Authorization"] = f"OTS {headers['x-ots-accesskeyid']}:{b64hmac(self.key, text, hashlib.sha1)}"
        return self.status, "OK", out, payload


def sdk_client(creds, region, monkeypatch, response=b""):
    fixed = datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc)
    monkeypatch.setattr(ts.utils, "get_now_utc_datetime", lambda: fixed)
    kwargs = {"region": region} if region else {}
    client = ts.OTSClient("https://inst.cn-hangzhou.ots.aliyuncs.com", creds[0], creds[1], "inst", sts_token=creds[2],
                          logger_name="ots-wire-test", **kwargs)
    key = w.v4_signing_key(creds[1], fixed.strftime("%Y%m%d"), region) if region else creds[1]
    client.connection = Capture(key, response)
    return client


def ours(api, body, creds, region):
    headers, _ = w.sign_request(api, body, "inst", creds[0], creds[1], creds[2], region, now=NOW)
    return headers


def sdk_ots_headers(headers):
    return {k: v for k, v in headers.items() if k.startswith("x-ots-")}


CONDITIONS = {
    "none": (None, None),
    "equal-str": (ts.SingleColumnCondition("status", "pending", ts.ComparatorType.EQUAL, False),
                  w.single_condition("status", "pending", w.EQUAL, False)),
    "equal-int": (ts.SingleColumnCondition("forms", -3, ts.ComparatorType.EQUAL, False),
                  w.single_condition("forms", -3, w.EQUAL, False)),
    "unset": (None, None),  # filled below: col == x pass-if-missing AND col != x pass-if-missing
}
_both = ts.CompositeColumnCondition(ts.LogicalOperator.AND)
_both.add_sub_condition(ts.SingleColumnCondition("payload", "", ts.ComparatorType.EQUAL, True))
_both.add_sub_condition(ts.SingleColumnCondition("payload", "", ts.ComparatorType.NOT_EQUAL, True))
_unset = w.composite_condition(w.AND, [w.single_condition("payload", "", w.EQUAL, True),
                                       w.single_condition("payload", "", w.NOT_EQUAL, True)])
_nested = ts.CompositeColumnCondition(ts.LogicalOperator.AND)
_nested.add_sub_condition(_both)
_nested.add_sub_condition(ts.SingleColumnCondition("size", 2048, ts.ComparatorType.EQUAL, False))
CONDITIONS["unset"] = (_both, _unset)
CONDITIONS["nested"] = (_nested, w.composite_condition(w.AND, [_unset, w.single_condition("size", 2048)]))

PK = [("upload_id", "up-é-1")]
PK2 = [("subject", "ab" * 32), ("window_start", 1764800000)]
COLUMNS = [("bucket", "b"), ("size", 2048), ("filename", "é 相片.png"), ("neg", -1), ("big", 2 ** 62)]


@pytest.mark.parametrize("region", ["cn-hangzhou", None])
@pytest.mark.parametrize("creds", [STS, PLAIN], ids=["sts", "plain"])
@pytest.mark.parametrize("cond", sorted(CONDITIONS))
@pytest.mark.parametrize("expect", ["EXPECT_NOT_EXIST", "EXPECT_EXIST", "IGNORE"])
def test_put_row_is_byte_equal_to_the_sdk(region, creds, cond, expect, monkeypatch):
    client = sdk_client(creds, region, monkeypatch, pb.PutRowResponse(
        consumed=pb.ConsumedCapacity(capacity_unit=pb.CapacityUnit(write=1))).SerializeToString())
    sdk_cond, our_cond = CONDITIONS[cond]
    client.put_row("records", ts.Row(PK, COLUMNS), ts.Condition(getattr(ts.RowExistenceExpectation, expect), sdk_cond))
    (url, headers, body), = client.connection.sent
    mine = w.put_row_body("records", PK, COLUMNS, getattr(w, expect), our_cond)
    assert url == "/PutRow" and body == mine
    assert sdk_ots_headers(headers) == ours("PutRow", mine, creds, region)


@pytest.mark.parametrize("region", ["cn-hangzhou", None])
@pytest.mark.parametrize("cond", sorted(CONDITIONS))
@pytest.mark.parametrize("change", ["put", "delete", "both"])
def test_update_row_is_byte_equal_to_the_sdk(region, cond, change, monkeypatch):
    client = sdk_client(STS, region, monkeypatch, pb.UpdateRowResponse(
        consumed=pb.ConsumedCapacity(capacity_unit=pb.CapacityUnit(write=1))).SerializeToString())
    puts = COLUMNS if change != "delete" else []
    deletes = ["status_reason", "image_width"] if change != "put" else []
    update = {}
    if puts:
        update["PUT"] = puts
    if deletes:
        update["DELETE_ALL"] = deletes
    sdk_cond, our_cond = CONDITIONS[cond]
    client.update_row("records", ts.Row(PK2, update), ts.Condition(ts.RowExistenceExpectation.EXPECT_EXIST, sdk_cond))
    (url, headers, body), = client.connection.sent
    mine = w.update_row_body("records", PK2, puts, deletes, w.EXPECT_EXIST, our_cond)
    assert url == "/UpdateRow" and body == mine
    assert sdk_ots_headers(headers) == ours("UpdateRow", mine, STS, region)


def _row_bytes(pk, columns):
    return bytes(PlainBufferBuilder.serialize_for_put_row(pk, columns))


@pytest.mark.parametrize("columns_to_get", [None, ["forms", "bytes"]])
@pytest.mark.parametrize("found", [True, False])
def test_get_row_request_and_answer(columns_to_get, found, monkeypatch):
    stored = [("bucket", "b", 1700000000000), ("size", 2048, 1700000000001), ("f", "相片", 1700000000002),
              ("ok", True, 5), ("ratio", 0.25, 6)]
    row = _row_bytes(PK, stored) if found else b""
    answer = pb.GetRowResponse(consumed=pb.ConsumedCapacity(capacity_unit=pb.CapacityUnit(read=1)),
                               row=row).SerializeToString()
    client = sdk_client(STS, "cn-hangzhou", monkeypatch, answer)
    _, sdk_row, _ = client.get_row("records", PK, columns_to_get=columns_to_get, max_version=1)
    (url, headers, body), = client.connection.sent
    mine = w.get_row_body("records", PK, columns_to_get or [], 1)
    assert url == "/GetRow" and body == mine
    assert sdk_ots_headers(headers) == ours("GetRow", mine, STS, "cn-hangzhou")
    got = w.parse_get_row(answer)
    if not found:
        assert sdk_row is None and got is None
    else:
        assert got == (sdk_row.primary_key, sdk_row.attribute_columns)
        assert got[1] == stored


@pytest.mark.parametrize("direction", ["FORWARD", "BACKWARD"])
@pytest.mark.parametrize("more", [True, False])
def test_get_range_request_and_answer(direction, more, monkeypatch):
    start = [("user", "alice"), ("created_at", ts.INF_MIN), ("upload_id", ts.INF_MIN)]
    end = [("user", "alice"), ("created_at", "2026-03-01T10:01:10.000000Z"), ("upload_id", ts.INF_MAX)]
    rows = b""
    keys = [[("user", "alice"), ("created_at", f"2026-03-01T10:00:{i:02d}Z"), ("upload_id", f"u{i}")] for i in range(3)]
    for i, key in enumerate(keys):
        chunk = _row_bytes(key, [])
        rows += chunk if i == 0 else chunk[4:]  # one header for the whole set, as the service sends
    following = _row_bytes([("user", "alice"), ("created_at", "z"), ("upload_id", "u9")], []) if more else b""
    answer = pb.GetRangeResponse(consumed=pb.ConsumedCapacity(capacity_unit=pb.CapacityUnit(read=3)), rows=rows,
                                 next_start_primary_key=following).SerializeToString()
    client = sdk_client(STS, "cn-hangzhou", monkeypatch, answer)
    _, sdk_next, sdk_rows, _ = client.get_range("records_by_user", getattr(ts.Direction, direction), start, end,
                                                columns_to_get=[], limit=20, max_version=1)
    (url, headers, body), = client.connection.sent
    inf = {id(ts.INF_MIN): w.INF_MIN, id(ts.INF_MAX): w.INF_MAX}
    mine = w.get_range_body("records_by_user", getattr(w, direction), [(n, inf.get(id(v), v)) for n, v in start],
                            [(n, inf.get(id(v), v)) for n, v in end], [], 20, 1)
    assert url == "/GetRange" and body == mine
    assert sdk_ots_headers(headers) == ours("GetRange", mine, STS, "cn-hangzhou")
    next_start, got = w.parse_get_range(answer)
    assert next_start == sdk_next and (next_start is None) == (not more)
    assert got == [(r.primary_key, r.attribute_columns) for r in sdk_rows] and [r[0] for r in got] == keys


def test_batch_get_row_request_and_answer(monkeypatch):
    ids = [f"u{i}" for i in range(5)]
    answer = pb.BatchGetRowResponse()
    table = answer.tables.add(table_name="records")
    for i, upload_id in enumerate(ids):
        item = table.rows.add()
        if i == 3:
            item.is_ok = False
            item.error.code, item.error.message = "OTSServerBusy", "busy"
            continue
        item.is_ok = True
        item.consumed.capacity_unit.read = 1
        item.row = b"" if i == 1 else _row_bytes([("upload_id", upload_id)], [("status", f"s{i}", 7)])
    answer = answer.SerializeToString()
    client = sdk_client(PLAIN, None, monkeypatch, answer)
    request = ts.BatchGetRowRequest()
    request.add(ts.TableInBatchGetRowItem("records", [[("upload_id", u)] for u in ids], max_version=1))
    result = client.batch_get_row(request)
    (url, headers, body), = client.connection.sent
    mine = w.batch_get_row_body("records", [[("upload_id", u)] for u in ids], [], 1)
    assert url == "/BatchGetRow" and body == mine
    assert sdk_ots_headers(headers) == ours("BatchGetRow", mine, PLAIN, None)
    got = w.parse_batch_get_row(answer)["records"]
    sdk_items = result.get_result_by_table("records")
    assert [(g[0], g[1]) for g in got] == [(s.is_ok, s.error_code) for s in sdk_items]
    for g, s in zip(got, sdk_items):
        if s.row is None:
            assert g[3] is None
        else:
            assert g[3] == (s.row.primary_key, s.row.attribute_columns)


def test_plainbuffer_checksums_are_verified():
    row = bytearray(w.encode_row(PK, [("size", 5, None)]))
    assert w.decode_rows(bytes(row)) == [(PK, [("size", 5, None)])]
    row[-3] ^= 1  # the cell checksum of "size"
    with pytest.raises(ValueError, match="checksum"):
        w.decode_rows(bytes(row))
    row = bytearray(w.encode_row(PK))
    row[-1] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        w.decode_rows(bytes(row))


def test_answers_are_checked_like_the_sdk():
    key_id, key = "id", "secret"
    body = pb.GetRowResponse(consumed=pb.ConsumedCapacity(capacity_unit=pb.CapacityUnit(read=1)),
                             row=b"").SerializeToString()

    def answer(payload, **changes):
        h = {"x-ots-contentmd5": base64.b64encode(hashlib.md5(payload).digest()).decode(), "x-ots-requestid": "r",
             "x-ots-date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
             "x-ots-contenttype": "protocol buffer"}
        h.update(changes)
        text = "\n".join(sorted(f"{k}:{v.strip()}" for k, v in h.items())) + "\n/GetRow"
        h["authorization"] = f"OTS {key_id}:{b64hmac(key, text, hashlib.sha1)}"
        return h

    w.check_response("GetRow", 200, answer(body), body, key_id, key)  # a valid answer passes
    with pytest.raises(w.OtsError, match="MD5 mismatch"):
        w.check_response("GetRow", 200, answer(body), body + b"x", key_id, key)
    forged = answer(body)
    forged["authorization"] = forged["authorization"][:-4] + "AAA="
    with pytest.raises(w.OtsError, match="Invalid signature"):
        w.check_response("GetRow", 200, forged, body, key_id, key)
    forged["authorization"] = "OTS id:\u00e9t\u00e9"  # not even base64 (a header read as latin-1)
    with pytest.raises(w.OtsError, match="Invalid signature"):
        w.check_response("GetRow", 200, forged, body, key_id, key)
    with pytest.raises(w.OtsError, match="more than 15 minutes"):
        w.check_response("GetRow", 200, answer(body, **{"x-ots-date": "2020-01-01T00:00:00.000Z"}), body, key_id, key)
    unsigned = answer(body)
    del unsigned["authorization"]
    with pytest.raises(w.OtsError, match="Authorization"):
        w.check_response("GetRow", 200, unsigned, body, key_id, key)
    error = pb.Error(code="OTSConditionCheckFail", message="Condition check failed.").SerializeToString()
    with pytest.raises(w.OtsError) as info:
        w.check_response("GetRow", 403, answer(error), error, key_id, key)
    assert (info.value.status, info.value.code, info.value.message, info.value.service) == (
        403, "OTSConditionCheckFail", "Condition check failed.", True)
    auth = pb.Error(code="OTSAuthFailed", message="no").SerializeToString()
    plain = answer(auth)
    del plain["authorization"]  # the service cannot sign it
    with pytest.raises(w.OtsError) as info:
        w.check_response("GetRow", 403, plain, auth, key_id, key)
    assert info.value.code == "OTSAuthFailed"
    with pytest.raises(w.OtsError) as info:
        w.check_response("GetRow", 502, {}, b"<html>bad gateway</html>", key_id, key)
    assert not info.value.service and info.value.status == 502


def test_protobuf_varints_match_the_sdk():
    for value in (0, 1, 127, 128, 300, 5000, 2 ** 31 - 1):
        want = pb.GetRangeRequest(table_name="t", direction=pb.FORWARD, limit=value,
                                  inclusive_start_primary_key=b"a", exclusive_end_primary_key=b"b").SerializeToString()
        assert w._bytes(1, "t") + w._int(2, 0) + w._int(6, value) + w._bytes(7, b"a") + w._bytes(8, b"b") == want
    fields = w.parse_message(pb.TableInBatchGetRowResponse(table_name="x" * 200).SerializeToString())
    assert fields == {1: [b"x" * 200]}


def test_the_client_against_the_standin():
    creds = {STS[0]: (STS[1], STS[2]), PLAIN[0]: (PLAIN[1], PLAIN[2])}
    server = TablestoreStandIn(credentials=creds)
    try:
        server.op_CreateTable(pb.CreateTableRequest(
            table_meta=pb.TableMeta(table_name="t", primary_key=[pb.PrimaryKeySchema(name="upload_id", type=pb.STRING)]),
            reserved_throughput=pb.ReservedThroughput(capacity_unit=pb.CapacityUnit(read=0, write=0)),
            table_options=pb.TableOptions(time_to_live=-1, max_versions=1)).SerializeToString())
        for region in ("cn-hangzhou", None):
            client = w.Client(server.endpoint, "ossd", region=region)
            client.set_credentials(*(STS if region else PLAIN))
            pk = [("upload_id", f"r-{region}")]
            client.put_row("t", pk, [("status", "pending"), ("size", 1)], w.EXPECT_NOT_EXIST)
            with pytest.raises(w.OtsError) as info:
                client.put_row("t", pk, [("status", "x")], w.EXPECT_NOT_EXIST)
            assert (info.value.status, info.value.code) == (403, w.CONDITION_FAILED)
            client.update_row("t", pk, [("status", "accepted")], ["size"], w.EXPECT_EXIST,
                              w.single_condition("status", "pending"))
            got_pk, got_columns = client.get_row("t", pk)
            assert got_pk == pk and [c[:2] for c in got_columns] == [("status", "accepted")]
            assert client.get_row("t", [("upload_id", "none")]) is None
            items = client.batch_get_row("t", [pk, [("upload_id", "none")]])
            assert [(i[0], i[3] and i[3][0]) for i in items] == [(True, pk), (True, None)]
        nxt, rows = client.get_range("t", w.FORWARD, [("upload_id", w.INF_MIN)], [("upload_id", w.INF_MAX)], limit=1)
        assert nxt == [("upload_id", "r-cn-hangzhou")] and [r[0] for r in rows] == [[("upload_id", "r-None")]]
        assert server.problems == []
        client.set_credentials(STS[0], "wrong", STS[2])
        with pytest.raises(w.OtsError) as info:
            client.get_row("t", [("upload_id", "x")])
        assert info.value.code == "OTSAuthFailed"
    finally:
        server.close()


def test_import_is_cheap_and_stdlib_only():
    code = ("import sys; import ossdirect.store.ots_wire; "
            "print(sorted(m for m in ('tablestore', 'google.protobuf', 'urllib3', 'aiohttp', 'http.client', 'ssl') "
            "if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "shared"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []


# ---------------------------------------------------------------- transport: reuse, reconnect, retries

class Proxy:
    """A TCP relay in front of the stand-in that counts client connections; with ``close_after``, it
    closes a client's connection once it has relayed one answer (as a server ending an idle keep-alive)."""

    def __init__(self, upstream_port, close_after=False, tls=None):
        self.upstream, self.close_after, self.connections, self.tls = upstream_port, close_after, 0, tls
        self.closed = threading.Semaphore(0)  # released after each client connection is closed
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _message(f):
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = f.readline()
            if not line:
                return None
            head += line
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
        return head + f.read(length)

    def _serve(self, client):
        if self.tls is not None:
            try:
                client = self.tls.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):  # the client refused our certificate
                client.close()
                return
        up = socket.create_connection(("127.0.0.1", self.upstream))
        cf, uf = client.makefile("rb"), up.makefile("rb")
        try:
            while True:
                request = self._message(cf)
                if request is None:
                    return
                up.sendall(request)
                client.sendall(self._message(uf))
                if self.close_after:
                    return
        finally:
            for f in (cf, uf, client, up):  # the files first: a socket with a file open is not closed
                f.close()
            self.closed.release()

    def close(self):
        self.sock.close()


@pytest.fixture
def table_server():
    server = TablestoreStandIn(credentials={STS[0]: (STS[1], STS[2])})
    server.op_CreateTable(pb.CreateTableRequest(
        table_meta=pb.TableMeta(table_name="t", primary_key=[pb.PrimaryKeySchema(name="upload_id", type=pb.STRING)]),
        reserved_throughput=pb.ReservedThroughput(capacity_unit=pb.CapacityUnit(read=0, write=0)),
        table_options=pb.TableOptions(time_to_live=-1, max_versions=1)).SerializeToString())
    yield server
    server.close()


@pytest.mark.parametrize("close_after", [False, True])
def test_connections_are_kept_and_a_closed_idle_one_is_replaced(table_server, close_after):
    proxy = Proxy(table_server.port, close_after)
    try:
        client = w.Client(f"http://127.0.0.1:{proxy.port}", "ossd", "cn-hangzhou")
        client.set_credentials(*STS)
        for i in range(5):  # writes too: a peer-closed idle connection is seen before sending, not after
            client.put_row("t", [("upload_id", f"k{i}")], [("n", i)], w.EXPECT_NOT_EXIST)
            assert not close_after or proxy.closed.acquire(timeout=10)  # the next call meets a closed one
            assert client.get_row("t", [("upload_id", f"k{i}")])[1][0][:2] == ("n", i)
            assert not close_after or proxy.closed.acquire(timeout=10)
        assert proxy.connections == (10 if close_after else 1) and len(client._idle) == 1
        assert table_server.problems == []
    finally:
        proxy.close()


def test_https_checks_the_certificate(table_server, tmp_path):
    """TLS with the system's CAs and the host name checked: a self-signed endpoint is refused (a client
    error, no request sent); trusting its certificate, the same calls go through."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    proxy = Proxy(table_server.port, tls=server_tls)
    try:
        client = w.Client(f"https://127.0.0.1:{proxy.port}", "ossd", "cn-hangzhou")
        client.set_credentials(*STS)
        with pytest.raises(w.OtsError) as info:
            client.get_row("t", [("upload_id", "x")])
        assert not info.value.service and info.value.message == "SSLCertVerificationError"
        assert "GetRow" not in table_server.calls
        client._tls = ssl.create_default_context(cafile=str(cert))  # as if the CA were the system's
        client.put_row("t", [("upload_id", "tls")], [("n", 1)], w.EXPECT_NOT_EXIST)
        assert client.get_row("t", [("upload_id", "tls")])[1][0][:2] == ("n", 1)
        assert table_server.problems == []
    finally:
        proxy.close()


def test_retries_follow_the_stores_policy(table_server):
    client = w.Client(table_server.endpoint, "ossd", "cn-hangzhou", retries=2)
    client.set_credentials(*STS)
    table_server.fail_ops = {"GetRow", "PutRow"}  # 503 OTSServerUnavailable
    with pytest.raises(w.OtsError) as info:
        client.get_row("t", [("upload_id", "x")])
    assert (info.value.status, info.value.code) == (503, "OTSServerUnavailable")
    assert table_server.calls["GetRow"] == 3  # a read is sent again after a server fault, twice
    with pytest.raises(w.OtsError):
        client.put_row("t", [("upload_id", "x")], [("n", 1)])
    assert table_server.calls["PutRow"] == 1  # a write may have applied: not sent again


def test_no_answer_is_a_client_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = w.Client(f"http://127.0.0.1:{port}", "ossd", timeout=0.5)
    client.set_credentials(*STS)
    with pytest.raises(w.OtsError) as info:
        client.get_row("t", [("upload_id", "x")])
    assert not info.value.service and info.value.message == "ConnectionRefusedError"
    with pytest.raises(w.OtsError, match="no credentials"):
        w.Client("http://127.0.0.1:1", "ossd").get_row("t", [("upload_id", "x")])


def test_a_silent_server_is_a_timeout_not_a_hang():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # accepts (the kernel does), never answers
    try:
        client = w.Client(f"http://127.0.0.1:{sock.getsockname()[1]}", "ossd", timeout=0.2)
        client.set_credentials(*STS)
        with pytest.raises(w.OtsError) as info:
            client.get_row("t", [("upload_id", "x")])
        assert not info.value.service and info.value.message == "TimeoutError"
    finally:
        sock.close()


def test_answer_dates_are_read_as_utc():
    import calendar

    for year, month, day in ((1970, 1, 1), (2000, 2, 29), (2026, 12, 3), (2100, 3, 1), (1999, 12, 31)):
        assert w._days(year, month, day) * 86400 == calendar.timegm((year, month, day, 0, 0, 0, 0, 0, 0))
