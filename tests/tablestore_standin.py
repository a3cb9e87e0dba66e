"""A loopback stand-in for the Tablestore (OTS) API, written from the protocol, not from our store.

Real HTTP on 127.0.0.1, ``POST /<Operation>`` with a protobuf body, as the official ``tablestore``
SDK sends it. What it checks and does, independently of the SDK's own code:

- **request authentication**: ``x-ots-date`` within 15 minutes, ``x-ots-apiversion: 2015-12-31``,
  ``x-ots-instancename``, ``x-ots-contentmd5`` = base64 MD5 of the body, ``x-ots-ststoken`` for
  STS keys, and the signature recomputed here from the canonical string
  ``/<Operation>\\nPOST\\n<sorted query>\\n<sorted x-ots-* headers as name:value>\\n`` —
  V2: HMAC-SHA1 with the secret (``x-ots-signature``); V4: ``+ "ots"`` salt, HMAC-SHA256 with the key
  derived ``aliyun_v4<secret> → date → region → "ots" → "aliyun_v4_request"`` (``x-ots-signaturev4``,
  ``x-ots-signdate``, ``x-ots-signregion``). A failure answers 403 ``OTSAuthFailed``, like the service.
- **response signing**: every answer carries ``x-ots-contentmd5``, ``x-ots-requestid``, ``x-ots-date``,
  ``x-ots-contenttype`` and ``Authorization: OTS <id>:<HMAC-SHA1(signing key, headers\\n/<Operation>)>``,
  which the SDK verifies.
- **rows** in PlainBuffer (own codec below: tags, little-endian values, CRC-8 cell and row checksums,
  both verified on requests);
- **semantics**: PutRow/UpdateRow row-existence expectations and column conditions (single and
  composite, ``pass_if_missing``) failing with 403 ``OTSConditionCheckFail`` "Condition check failed.";
  UpdateRow PUT / DELETE_ALL; GetRow; BatchGetRow (per-row results); GetRange over the table or a
  global secondary index with ``limit``, a server-side page cap (``page_cap``, the service's 5000
  rows / 4 MB) and ``next_start_primary_key``; CreateTable (with index metas), CreateIndex,
  DescribeTable, ListTable, with ``OTSObjectAlreadyExist`` / ``OTSObjectNotExist`` / ``OTSParameterInvalid``.
  Index rows exist only for table rows that have every index key column, as in the service (the
  service maintains them asynchronously, within milliseconds; here they are immediate).

Protobuf bodies are decoded with the SDK's generated message classes (``table_store_pb2``,
``table_store_filter_pb2``): only the message schema is shared, never the SDK's logic.
"""

import base64
import datetime
import hashlib
import hmac
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from tablestore.protobuf import table_store_filter_pb2 as fpb
from tablestore.protobuf import table_store_pb2 as pb

# ---------------------------------------------------------------- PlainBuffer (own implementation)

HEADER = 0x75
TAG_ROW_PK, TAG_ROW_DATA, TAG_CELL, TAG_CELL_NAME, TAG_CELL_VALUE = 1, 2, 3, 4, 5
TAG_CELL_TYPE, TAG_CELL_TIMESTAMP, TAG_DELETE_ROW_MARKER, TAG_ROW_CHECKSUM, TAG_CELL_CHECKSUM = 6, 7, 8, 9, 10
VT_INTEGER, VT_DOUBLE, VT_BOOLEAN, VT_STRING, VT_BLOB, VT_INF_MIN, VT_INF_MAX = 0, 1, 2, 3, 7, 9, 10
DELETE_ALL_VERSION, DELETE_ONE_VERSION, INCREMENT = 1, 3, 4


def _crc_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


_CRC = _crc_table()


def crc(c, data):
    for b in data:
        c = _CRC[(c ^ b) & 0xFF]
    return c


class Inf:
    def __init__(self, name, rank):
        self.name, self.rank = name, rank

    def __repr__(self):
        return self.name


INF_MIN, INF_MAX = Inf("INF_MIN", 0), Inf("INF_MAX", 2)


def sort_key(value):
    return (value.rank, 0) if isinstance(value, Inf) else (1, value)


class PlainBufferError(ValueError):
    pass


class _Reader:
    def __init__(self, data):
        self.data, self.pos = bytes(data), 0

    def byte(self):
        if self.pos >= len(self.data):
            raise PlainBufferError("truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n):
        if self.pos + n > len(self.data):
            raise PlainBufferError("truncated")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def i64(self):
        return struct.unpack("<q", self.take(8))[0]

    def peek(self):
        return self.data[self.pos] if self.pos < len(self.data) else None


def _read_value(r, c):
    """A TAG_CELL_VALUE payload: (value, checksum)."""
    r.u32()  # total length, implied by the type
    vtype = r.byte()
    c = crc(c, [vtype])
    if vtype == VT_INTEGER:
        raw = r.take(8)
        return struct.unpack("<q", raw)[0], crc(c, raw)
    if vtype in (VT_STRING, VT_BLOB):
        size = r.take(4)
        raw = r.take(struct.unpack("<I", size)[0])
        c = crc(crc(c, size), raw)
        return (raw.decode("utf-8") if vtype == VT_STRING else bytes(raw)), c
    if vtype == VT_BOOLEAN:
        b = r.byte()
        return bool(b), crc(c, [b])
    if vtype == VT_DOUBLE:
        raw = r.take(8)
        return struct.unpack("<d", raw)[0], crc(c, raw)
    if vtype == VT_INF_MIN:
        return INF_MIN, c
    if vtype == VT_INF_MAX:
        return INF_MAX, c
    raise PlainBufferError(f"unsupported value type {vtype}")


def _read_cell(r):
    """One cell after its TAG_CELL: (name, value, op, timestamp, checksum)."""
    if r.byte() != TAG_CELL_NAME:
        raise PlainBufferError("expected cell name")
    raw_name = r.take(r.u32())
    c = crc(0, raw_name)
    value = op = timestamp = None
    tag = r.byte()
    if tag == TAG_CELL_VALUE:
        value, c = _read_value(r, c)
        tag = r.byte()
    if tag == TAG_CELL_TYPE:
        op = r.byte()
        tag = r.byte()
    if tag == TAG_CELL_TIMESTAMP:
        raw = r.take(8)
        timestamp = struct.unpack("<q", raw)[0]
        c = crc(c, raw)
        tag = r.byte()
    if op is not None:
        c = crc(c, [op])  # the op type is summed after the timestamp
    if tag != TAG_CELL_CHECKSUM:
        raise PlainBufferError("expected cell checksum")
    if r.byte() != c:
        raise PlainBufferError("cell checksum mismatch")
    return raw_name.decode("utf-8"), value, op, timestamp, c


def decode_rows(data):
    """PlainBuffer rows → [(pk [(name, value)], cells [(name, value, op, ts)], delete_marker)]."""
    r = _Reader(data)
    if r.u32() != HEADER:
        raise PlainBufferError("bad header")
    rows = []
    while r.peek() is not None:
        if r.byte() != TAG_ROW_PK:
            raise PlainBufferError("expected row pk")
        row_c, pk, cells, marker = 0, [], [], False
        tag = r.byte()
        while tag == TAG_CELL:
            name, value, _, _, c = _read_cell(r)
            pk.append((name, value))
            row_c = crc(row_c, [c])
            tag = r.byte()
        if tag == TAG_ROW_DATA:
            tag = r.byte()
            while tag == TAG_CELL:
                name, value, op, ts, c = _read_cell(r)
                cells.append((name, value, op, ts))
                row_c = crc(row_c, [c])
                tag = r.byte()
        if tag == TAG_DELETE_ROW_MARKER:
            marker = True
            tag = r.byte()
        row_c = crc(row_c, [1 if marker else 0])
        if tag != TAG_ROW_CHECKSUM:
            raise PlainBufferError("expected row checksum")
        if r.byte() != row_c:
            raise PlainBufferError("row checksum mismatch")
        rows.append((pk, cells, marker))
    return rows


def _value_bytes(value):
    """(type byte + payload) of a value; the wire carries a u32 length before it."""
    if isinstance(value, Inf):
        return bytes([VT_INF_MIN if value is INF_MIN else VT_INF_MAX])
    if isinstance(value, bool):
        return bytes([VT_BOOLEAN, int(value)])
    if isinstance(value, int):
        return bytes([VT_INTEGER]) + struct.pack("<q", value)
    if isinstance(value, float):
        return bytes([VT_DOUBLE]) + struct.pack("<d", value)
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return bytes([VT_STRING if isinstance(value, str) else VT_BLOB]) + struct.pack("<I", len(raw)) + raw


def _write_cell(name, value, timestamp=None):
    raw_name = name.encode("utf-8")
    vb = _value_bytes(value)
    out = bytes([TAG_CELL, TAG_CELL_NAME]) + struct.pack("<I", len(raw_name)) + raw_name
    out += bytes([TAG_CELL_VALUE]) + struct.pack("<I", len(vb)) + vb
    c = crc(crc(0, raw_name), vb)
    if timestamp is not None:
        ts = struct.pack("<q", timestamp)
        out += bytes([TAG_CELL_TIMESTAMP]) + ts
        c = crc(c, ts)
    return out + bytes([TAG_CELL_CHECKSUM, c]), c


def encode_row(pk, columns=(), header=True):
    """pk [(name, value)], columns [(name, value, timestamp)] → PlainBuffer bytes."""
    out = struct.pack("<I", HEADER) if header else b""
    out += bytes([TAG_ROW_PK])
    row_c = 0
    for name, value in pk:
        cell, c = _write_cell(name, value)
        out += cell
        row_c = crc(row_c, [c])
    if columns:
        out += bytes([TAG_ROW_DATA])
        for name, value, ts in columns:
            cell, c = _write_cell(name, value, ts)
            out += cell
            row_c = crc(row_c, [c])
    row_c = crc(row_c, [0])
    return out + bytes([TAG_ROW_CHECKSUM, row_c])


def decode_variant(data):
    """A filter's column value (type byte + payload, no length prefix)."""
    return _read_value(_Reader(struct.pack("<I", len(data)) + bytes(data)), 0)[0]


# ---------------------------------------------------------------- signatures (own implementation)

def canonical(path, query, headers):
    ots = sorted(f"{k.lower()}:{v.strip()}" for k, v in headers.items()
                 if k.lower().startswith("x-ots-") and k.lower() not in ("x-ots-signature", "x-ots-signaturev4"))
    return f"{path}\nPOST\n{urlencode(sorted(parse_qsl(query)))}\n" + "\n".join(ots) + "\n"


def v4_signing_key(secret, date, region):
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, "ots", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return base64.b64encode(key)


def b64hmac(key, text, algo):
    key = key if isinstance(key, bytes) else key.encode()
    return base64.b64encode(hmac.new(key, text.encode(), algo).digest()).decode()


class OtsError(Exception):
    def __init__(self, status, code, message):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def condition_failed():
    return OtsError(403, "OTSConditionCheckFail", "Condition check failed.")


# ---------------------------------------------------------------- the service

_PK_TYPES = {pb.INTEGER: "INTEGER", pb.STRING: "STRING", pb.BINARY: "BINARY"}
_DC_TYPES = {pb.DCT_INTEGER: "INTEGER", pb.DCT_STRING: "STRING", pb.DCT_DOUBLE: "DOUBLE", pb.DCT_BOOLEAN: "BOOLEAN"}
_PY_TYPES = {"INTEGER": int, "STRING": str, "DOUBLE": float, "BOOLEAN": bool, "BINARY": bytes}


class Table:
    def __init__(self, meta, options, indexes):
        self.name = meta.table_name
        self.pk = [(s.name, _PK_TYPES[s.type]) for s in meta.primary_key]
        self.defined = {d.name: _DC_TYPES[d.type] for d in meta.defined_column}
        self.max_versions = options.max_versions if options.HasField("max_versions") else 1
        self.ttl = options.time_to_live if options.HasField("time_to_live") else -1
        self.indexes = {}  # name -> IndexMeta
        self.rows = {}  # pk tuple -> {column: (value, timestamp)}
        self.meta_bytes = meta.SerializeToString()
        for index in indexes:
            self.add_index(index)

    def add_index(self, index):
        if index.name in self.indexes:
            raise OtsError(409, "OTSObjectAlreadyExist", f"Index {index.name} already exists.")
        if self.max_versions != 1 or self.ttl != -1:
            raise OtsError(400, "OTSParameterInvalid", "Table with index must have max_versions 1 and no TTL.")
        pk_names = [n for n, _ in self.pk]
        for col in list(index.primary_key) + list(index.defined_column):
            if col not in pk_names and col not in self.defined:
                raise OtsError(400, "OTSParameterInvalid", f"Index column {col} is neither a primary key nor a defined column.")
        self.indexes[index.name] = index

    def index_key(self, index, pk, columns):
        """The index row's primary key (index keys, then the table's remaining keys), or None."""
        values = dict(pk)
        values.update({k: v for k, (v, _) in columns.items()})
        names = list(index.primary_key) + [n for n, _ in self.pk if n not in index.primary_key]
        if any(n not in values for n in names):
            return None
        return tuple((n, values[n]) for n in names)


class TablestoreStandIn:
    def __init__(self, instance="ossd", region="cn-hangzhou", credentials=None, page_cap=5000, fail_ops=()):
        self.instance, self.region, self.page_cap = instance, region, page_cap
        self.credentials = dict(credentials or {})  # access key id -> (secret, token or None)
        self.fail_ops = set(fail_ops)
        self.tables, self.lock = {}, threading.RLock()
        self.requests, self.problems = [], []  # (api, headers, body) of every request; auth failures
        self.calls = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()  # headers and body go out as two writes: no Nagle delay between them
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, payload, headers = outer.handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -------------------------------------------------------------- transport

    def authenticate(self, path, query, headers, body):
        """The signing key for the response, or raise OtsError(403, OTSAuthFailed)."""
        h = {k.lower(): v for k, v in headers.items()}

        def fail(why):
            self.problems.append(why)
            raise OtsError(403, "OTSAuthFailed", why)

        for name in ("x-ots-date", "x-ots-apiversion", "x-ots-accesskeyid", "x-ots-instancename", "x-ots-contentmd5"):
            if name not in h:
                fail(f"missing {name}")
        if h["x-ots-apiversion"] != "2015-12-31":
            fail("bad api version")
        if h["x-ots-instancename"] != self.instance:
            fail("wrong instance")
        try:
            sent = datetime.datetime.strptime(h["x-ots-date"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            fail("bad x-ots-date")
        if abs((datetime.datetime.now(datetime.timezone.utc) - sent).total_seconds()) > 900:
            fail("x-ots-date skewed")
        if h["x-ots-contentmd5"] != base64.b64encode(hashlib.md5(body).digest()).decode():
            fail("content md5 mismatch")
        if h["x-ots-accesskeyid"] not in self.credentials:
            fail("unknown access key id")
        secret, token = self.credentials[h["x-ots-accesskeyid"]]
        if token is not None and h.get("x-ots-ststoken") != token:
            fail("missing or wrong sts token")
        text = canonical(path, query, h)
        if "x-ots-signaturev4" in h:
            today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
            if h.get("x-ots-signdate") != today or h.get("x-ots-signregion") != self.region:
                fail("v4 sign date or region")
            key = v4_signing_key(secret, today, self.region)
            if not hmac.compare_digest(b64hmac(key, text + "ots", hashlib.sha256), h["x-ots-signaturev4"]):
                fail("v4 signature mismatch")
            return key
        if "x-ots-signature" not in h:
            fail("unsigned")
        if not hmac.compare_digest(b64hmac(secret, text, hashlib.sha1), h["x-ots-signature"]):
            fail("v2 signature mismatch")
        return secret

    def handle(self, raw_path, headers, body):
        parts = urlsplit(raw_path)
        api = parts.path.lstrip("/")
        with self.lock:
            self.requests.append((api, headers, body))
            self.calls[api] = self.calls.get(api, 0) + 1
        key = None
        try:
            key = self.authenticate(parts.path, parts.query, headers, body)
            if api in self.fail_ops:
                raise OtsError(503, "OTSServerUnavailable", "Server is unavailable.")
            method = getattr(self, "op_" + api, None)
            if method is None:
                raise OtsError(400, "OTSUnsupportOperation", f"{api} is not supported here.")
            status, payload = 200, method(body)
        except OtsError as exc:
            status, payload = exc.status, pb.Error(code=exc.code, message=exc.message).SerializeToString()
        except (PlainBufferError, ValueError) as exc:
            status, payload = 400, pb.Error(code="OTSParameterInvalid", message=str(exc)).SerializeToString()
        out = {
            "x-ots-contentmd5": base64.b64encode(hashlib.md5(payload).digest()).decode(),
            "x-ots-requestid": uuid.uuid4().hex,
            "x-ots-date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "x-ots-contenttype": "protocol buffer",
        }
        if key is not None:  # the service signs answers to authenticated requests
            text = "\n".join(sorted(f"{k}:{v.strip()}" for k, v in out.items())) + "\n" + parts.path
            out["Authorization"] = f"OTS {headers.get('x-ots-accesskeyid')}:{b64hmac(key, text, hashlib.sha1)}"
        return status, payload, out

    # -------------------------------------------------------------- helpers

    def _table(self, name):
        table = self.tables.get(name)
        if table is None:
            raise OtsError(404, "OTSObjectNotExist", "Requested table does not exist.")
        return table

    def _source(self, name):
        """A table, or (table, index meta) when ``name`` is a global secondary index."""
        if name in self.tables:
            return self.tables[name], None
        for table in self.tables.values():
            if name in table.indexes:
                return table, table.indexes[name]
        raise OtsError(404, "OTSObjectNotExist", "Requested table does not exist.")

    @staticmethod
    def _check_pk(table, pk, allow_inf=False):
        names = [n for n, _ in table.pk]
        if [n for n, _ in pk] != names:
            raise OtsError(400, "OTSParameterInvalid", "Validate PK name fail.")
        for (n, v), (_, t) in zip(pk, table.pk):
            if isinstance(v, Inf) and allow_inf:
                continue
            if type(v) is not _PY_TYPES[t]:
                raise OtsError(400, "OTSParameterInvalid", f"Validate PK type fail: {n}.")
        return tuple(v for _, v in pk)

    @staticmethod
    def _check_types(table, name, value):
        want = table.defined.get(name)
        if want is not None and type(value) is not _PY_TYPES[want]:
            raise OtsError(400, "OTSParameterInvalid", f"Column {name} must be {want}.")

    def _row_bytes(self, table, key, columns, names=None):
        cols = [(n, v, ts) for n, (v, ts) in sorted(columns.items()) if not names or n in names]
        return encode_row(list(zip([n for n, _ in table.pk], key)), cols)

    @staticmethod
    def _eval(filt, columns):
        if filt.type == fpb.FT_SINGLE_COLUMN_VALUE:
            f = fpb.SingleColumnValueFilter()
            f.ParseFromString(filt.filter)
            if f.column_name not in columns:
                return not f.filter_if_missing
            have, want = columns[f.column_name][0], decode_variant(f.column_value)
            if type(have) is not type(want):
                return f.comparator == fpb.CT_NOT_EQUAL
            return {fpb.CT_EQUAL: have == want, fpb.CT_NOT_EQUAL: have != want, fpb.CT_GREATER_THAN: have > want,
                    fpb.CT_GREATER_EQUAL: have >= want, fpb.CT_LESS_THAN: have < want,
                    fpb.CT_LESS_EQUAL: have <= want}[f.comparator]
        if filt.type == fpb.FT_COMPOSITE_COLUMN_VALUE:
            f = fpb.CompositeColumnValueFilter()
            f.ParseFromString(filt.filter)
            results = [TablestoreStandIn._eval(sub, columns) for sub in f.sub_filters]
            if f.combinator == fpb.LO_NOT:
                if len(results) != 1:
                    raise OtsError(400, "OTSParameterInvalid", "NOT takes one sub condition.")
                return not results[0]
            if len(results) < 2:
                raise OtsError(400, "OTSParameterInvalid", "AND/OR take at least two sub conditions.")
            return all(results) if f.combinator == fpb.LO_AND else any(results)
        raise OtsError(400, "OTSParameterInvalid", "unsupported filter type")

    def _check_condition(self, condition, row):
        if condition.row_existence == pb.EXPECT_EXIST and row is None:
            raise condition_failed()
        if condition.row_existence == pb.EXPECT_NOT_EXIST and row is not None:
            raise condition_failed()
        if condition.HasField("column_condition") and condition.column_condition:
            filt = fpb.Filter()
            filt.ParseFromString(condition.column_condition)
            if row is None or not self._eval(filt, row):
                raise condition_failed()

    @staticmethod
    def _consumed(read=0, write=0):
        return pb.ConsumedCapacity(capacity_unit=pb.CapacityUnit(read=read, write=write))

    # -------------------------------------------------------------- operations

    def op_CreateTable(self, body):
        req = pb.CreateTableRequest()
        req.ParseFromString(body)
        with self.lock:
            if req.table_meta.table_name in self.tables:
                raise OtsError(409, "OTSObjectAlreadyExist", "Requested table already exists.")
            self.tables[req.table_meta.table_name] = Table(req.table_meta, req.table_options, req.index_metas)
        return pb.CreateTableResponse().SerializeToString()

    def op_CreateIndex(self, body):
        req = pb.CreateIndexRequest()
        req.ParseFromString(body)
        with self.lock:
            self._table(req.main_table_name).add_index(req.index_meta)
        return pb.CreateIndexResponse().SerializeToString()

    def op_ListTable(self, body):
        with self.lock:
            return pb.ListTableResponse(table_names=sorted(self.tables)).SerializeToString()

    def op_DescribeTable(self, body):
        req = pb.DescribeTableRequest()
        req.ParseFromString(body)
        with self.lock:
            table = self._table(req.table_name)
            meta = pb.TableMeta()
            meta.ParseFromString(table.meta_bytes)
            resp = pb.DescribeTableResponse(
                table_meta=meta,
                reserved_throughput_details=pb.ReservedThroughputDetails(
                    capacity_unit=pb.CapacityUnit(read=0, write=0), last_increase_time=int(time.time())),
                table_options=pb.TableOptions(time_to_live=table.ttl, max_versions=table.max_versions,
                                              deviation_cell_version_in_sec=86400, allow_update=True),
                index_metas=list(table.indexes.values()))
        return resp.SerializeToString()

    def op_PutRow(self, body):
        req = pb.PutRowRequest()
        req.ParseFromString(body)
        (pk, cells, _), = decode_rows(req.row)
        now = int(time.time() * 1000)
        with self.lock:
            table = self._table(req.table_name)
            key = self._check_pk(table, pk)
            row = table.rows.get(key)
            self._check_condition(req.condition, row)
            columns = {}
            for name, value, op, ts in cells:
                if op is not None or value is None:
                    raise OtsError(400, "OTSParameterInvalid", "PutRow cells carry values only.")
                self._check_types(table, name, value)
                columns[name] = (value, ts if ts is not None else now)
            table.rows[key] = columns
        return pb.PutRowResponse(consumed=self._consumed(write=1)).SerializeToString()

    def op_UpdateRow(self, body):
        req = pb.UpdateRowRequest()
        req.ParseFromString(body)
        (pk, cells, _), = decode_rows(req.row_change)
        now = int(time.time() * 1000)
        with self.lock:
            table = self._table(req.table_name)
            key = self._check_pk(table, pk)
            row = table.rows.get(key)
            self._check_condition(req.condition, row)
            columns = dict(row or {})
            for name, value, op, ts in cells:
                if op is None:
                    self._check_types(table, name, value)
                    columns[name] = (value, ts if ts is not None else now)
                elif op in (DELETE_ALL_VERSION, DELETE_ONE_VERSION):
                    columns.pop(name, None)
                else:
                    raise OtsError(400, "OTSParameterInvalid", "unsupported update type")
            table.rows[key] = columns
        return pb.UpdateRowResponse(consumed=self._consumed(write=1)).SerializeToString()

    def op_GetRow(self, body):
        req = pb.GetRowRequest()
        req.ParseFromString(body)
        (pk, _, _), = decode_rows(req.primary_key)
        with self.lock:
            table = self._table(req.table_name)
            key = self._check_pk(table, pk)
            row = table.rows.get(key)
            data = b"" if row is None else self._row_bytes(table, key, row, set(req.columns_to_get))
        return pb.GetRowResponse(consumed=self._consumed(read=1), row=data).SerializeToString()

    def op_BatchGetRow(self, body):
        req = pb.BatchGetRowRequest()
        req.ParseFromString(body)
        resp = pb.BatchGetRowResponse()
        if sum(len(t.primary_key) for t in req.tables) > 100:
            raise OtsError(400, "OTSParameterInvalid", "Rows count exceeds the upper limit: 100.")
        with self.lock:
            for treq in req.tables:
                tresp = resp.tables.add(table_name=treq.table_name)
                table = self.tables.get(treq.table_name)
                for raw in treq.primary_key:
                    item = tresp.rows.add()
                    if table is None:
                        item.is_ok = False
                        item.error.code, item.error.message = "OTSObjectNotExist", "Requested table does not exist."
                        continue
                    (pk, _, _), = decode_rows(raw)
                    key = self._check_pk(table, pk)
                    row = table.rows.get(key)
                    item.is_ok = True
                    item.consumed.CopyFrom(self._consumed(read=1))
                    item.row = b"" if row is None else self._row_bytes(table, key, row, set(treq.columns_to_get))
        return resp.SerializeToString()

    def op_GetRange(self, body):
        req = pb.GetRangeRequest()
        req.ParseFromString(body)
        (start, _, _), = decode_rows(req.inclusive_start_primary_key)
        (end, _, _), = decode_rows(req.exclusive_end_primary_key)
        with self.lock:
            table, index = self._source(req.table_name)
            if index is None:
                names = [n for n, _ in table.pk]
                rows = [(tuple(zip(names, k)), cols) for k, cols in table.rows.items()]
            else:
                rows = []
                for k, cols in table.rows.items():
                    ikey = table.index_key(index, tuple(zip([n for n, _ in table.pk], k)), cols)
                    if ikey is not None:
                        keep = set(index.defined_column)
                        rows.append((ikey, {n: c for n, c in cols.items() if n in keep}))
            names = [n for n, _ in rows[0][0]] if rows else [n for n, _ in start]
            if [n for n, _ in start] != names or [n for n, _ in end] != names:
                raise OtsError(400, "OTSParameterInvalid", "Validate PK name fail.")
            skey = tuple(sort_key(v) for _, v in start)
            ekey = tuple(sort_key(v) for _, v in end)
            forward = req.direction == pb.FORWARD
            if forward and skey > ekey or not forward and skey < ekey:
                raise OtsError(400, "OTSParameterInvalid", "Begin key must less than end key in FORWARD")
            rows.sort(key=lambda r: tuple(sort_key(v) for _, v in r[0]), reverse=not forward)

            def inside(r):
                k = tuple(sort_key(v) for _, v in r[0])
                return skey <= k < ekey if forward else ekey < k <= skey

            selected = [r for r in rows if inside(r)]
            cap = min(req.limit, self.page_cap) if req.HasField("limit") and req.limit > 0 else self.page_cap
            page, rest = selected[:cap], selected[cap:]
            wanted = set(req.columns_to_get)
            data = b""
            for i, (k, cols) in enumerate(page):
                picked = [(n, v, ts) for n, (v, ts) in sorted(cols.items()) if not wanted or n in wanted]
                data += encode_row(list(k), picked, header=(i == 0))
            resp = pb.GetRangeResponse(consumed=self._consumed(read=max(1, len(page))), rows=data)
            if rest:
                resp.next_start_primary_key = encode_row(list(rest[0][0]))
        return resp.SerializeToString()

    # -------------------------------------------------------------- for tests

    def rows(self, table):
        """{upload id: {column: value}} of a table, as stored."""
        with self.lock:
            return {k[0]: {n: v for n, (v, _) in cols.items()} for k, cols in self._table(table).rows.items()}

    def keyed_rows(self, table):
        """{tuple of primary key values: {column: value}} of a table, as stored (for multi-column keys)."""
        with self.lock:
            return {k: {n: v for n, (v, _) in cols.items()} for k, cols in self._table(table).rows.items()}
