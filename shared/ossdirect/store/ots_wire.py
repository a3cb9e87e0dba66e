"""The Tablestore (OTS) HTTP protocol for the calls the stores make, by hand, stdlib only.

``import tablestore`` costs 0.4–0.8 s of cold start (aiohttp, asyncio, protobuf, numpy); this
module costs a few milliseconds. It speaks exactly what the record and allowance stores use:
``PutRow`` / ``UpdateRow`` (row-existence expectation plus a column condition), ``GetRow``,
``GetRange`` and ``BatchGetRow``, and is proven byte-equal to the official SDK 6.x on golden
vectors (``tests/test_ots_wire.py``): the protobuf bodies, the PlainBuffer rows with their CRC-8
checksums, and the signed ``x-ots-*`` headers (V4 when the region is known, else V2). The SDK's
semantics the stores depend on are kept: answers are checked (``x-ots-contentmd5``, the
``Authorization`` signature of the service, the date), errors come back as :class:`OtsError` with
the service's code (``OTSConditionCheckFail`` for a condition that did not hold), and the same short
retry policy applies (throttling-type errors for every call, server faults for reads only).

Protocol notes (from the SDK and the service docs):

- request: ``POST /<Api>``, protobuf body; headers ``x-ots-date``, ``x-ots-apiversion: 2015-12-31``,
  ``x-ots-accesskeyid``, ``x-ots-instancename``, ``x-ots-contentmd5`` (base64 MD5 of the body),
  ``x-ots-ststoken`` for STS keys; signed over ``/<Api>\\nPOST\\n\\n<sorted x-ots-* name:value lines>\\n``.
- PlainBuffer: a u32 header 0x75, then per row tag ROW_PK, cells (name, typed little-endian value,
  CRC-8 cell checksum), optional ROW_DATA cells, and a row checksum (CRC-8 over the cell checksums
  and the delete marker byte). The CRC is CRC-8 with polynomial 0x07.
"""

import base64
import hashlib
import hmac
import struct
import threading
import time
from functools import lru_cache
from urllib.parse import urlsplit

from ..http1 import Connection as _Connection, connect, host_header, request_head

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Tuple

    Pk = Sequence[Tuple[str, Any]]
    Row = Tuple[List[Tuple[str, Any]], List[Tuple[str, Any, Optional[int]]]]

API_VERSION = "2015-12-31"
USER_AGENT = "ossdirect-ots/0.1"
IGNORE, EXPECT_EXIST, EXPECT_NOT_EXIST = 0, 1, 2  # RowExistenceExpectation
EQUAL, NOT_EQUAL, GREATER_THAN, GREATER_EQUAL, LESS_THAN, LESS_EQUAL = 1, 2, 3, 4, 5, 6  # ComparatorType
NOT, AND, OR = 1, 2, 3  # LogicalOperator
FORWARD, BACKWARD = 0, 1  # Direction
CONDITION_FAILED = "OTSConditionCheckFail"
# Errors after which the service did not apply the write: safe to send again (any call).
NOT_APPLIED = frozenset({"OTSServerBusy", "OTSRowOperationConflict", "OTSNotEnoughCapacityUnit", "OTSQuotaExhausted",
                         "OTSCapacityUnitExhausted", "OTSTooFrequentReservedThroughputAdjustment",
                         "OTSPartitionUnavailable"})
READS = frozenset({"GetRow", "BatchGetRow", "GetRange", "DescribeTable", "ListTable"})


class _Inf:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


INF_MIN, INF_MAX = _Inf("INF_MIN"), _Inf("INF_MAX")


class OtsError(Exception):
    """A failed call. ``status`` and ``code`` are the service's answer (``service`` True); a call that
    got no valid answer has ``service`` False, ``code`` None and ``status`` 0 or the HTTP status."""

    def __init__(self, status: int, code: "Optional[str]", message: str, service: bool = True) -> None:
        super().__init__(f"{status} {code}: {message}" if service else message)
        self.status, self.code, self.message, self.service = status, code, message, service


# ---------------------------------------------------------------- protobuf (the few messages we use)

def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # negative int32/int64 go out as ten bytes, as protobuf does
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: "Any") -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _strings(field: int, values: "Sequence[str]") -> bytes:
    return b"".join(_bytes(field, v) for v in values)


def parse_message(data: bytes) -> "Dict[int, List[Any]]":
    """A protobuf message as {field number: [values]}: ints for varints, bytes for length-delimited."""
    out: "Dict[int, List[Any]]" = {}
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        value: "Any"
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise ValueError("truncated protobuf field")
            value, pos = data[pos:pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.setdefault(field, []).append(value)
    if pos != end:
        raise ValueError("truncated protobuf message")
    return out


def _read_varint(data: bytes, pos: int) -> "Tuple[int, int]":
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad protobuf varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


# ---------------------------------------------------------------- PlainBuffer rows

HEADER = 0x75
TAG_ROW_PK, TAG_ROW_DATA, TAG_CELL, TAG_CELL_NAME, TAG_CELL_VALUE = 1, 2, 3, 4, 5
TAG_CELL_TYPE, TAG_CELL_TIMESTAMP, TAG_DELETE_ROW_MARKER, TAG_ROW_CHECKSUM, TAG_CELL_CHECKSUM = 6, 7, 8, 9, 10
VT_INTEGER, VT_DOUBLE, VT_BOOLEAN, VT_STRING, VT_BLOB, VT_INF_MIN, VT_INF_MAX = 0, 1, 2, 3, 7, 9, 10
DELETE_ALL_VERSION = 1


def _crc_table() -> "List[int]":
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


_CRC8 = _crc_table()


def crc8(crc: int, data: "Any") -> int:
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def _variant(value: "Any") -> bytes:
    """A value as the type byte plus its payload (a filter's column value; cells add a u32 length)."""
    if value is INF_MIN or value is INF_MAX:
        return bytes([VT_INF_MIN if value is INF_MIN else VT_INF_MAX])
    if isinstance(value, bool):
        return bytes([VT_BOOLEAN, 1 if value else 0])
    if isinstance(value, int):
        return bytes([VT_INTEGER]) + struct.pack("<q", value)
    if isinstance(value, float):
        return bytes([VT_DOUBLE]) + struct.pack("<d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return bytes([VT_STRING]) + struct.pack("<I", len(raw)) + raw
    raise TypeError(f"unsupported Tablestore value type {type(value).__name__}")


def _cell(name: str, value: "Any" = None, op: "Optional[int]" = None) -> "Tuple[bytes, int]":
    """One cell (name, optional value, optional op type) and its checksum."""
    raw = name.encode("utf-8")
    out = bytes([TAG_CELL, TAG_CELL_NAME]) + struct.pack("<I", len(raw)) + raw
    c = crc8(0, raw)
    if value is not None:
        vb = _variant(value)
        out += bytes([TAG_CELL_VALUE]) + struct.pack("<I", len(vb)) + vb
        c = crc8(c, vb)
    if op is not None:
        out += bytes([TAG_CELL_TYPE, op])
        c = _CRC8[c ^ op]
    return out + bytes([TAG_CELL_CHECKSUM, c]), c


def encode_row(pk: "Pk", cells: "Sequence[Tuple[str, Any, Optional[int]]]" = ()) -> bytes:
    """PlainBuffer of one row: ``pk`` [(name, value)], ``cells`` [(name, value or None, op or None)]."""
    out = [struct.pack("<I", HEADER), bytes([TAG_ROW_PK])]
    row_c = 0
    for name, value in pk:
        cell, c = _cell(name, value)
        out.append(cell)
        row_c = _CRC8[row_c ^ c]
    if cells:
        out.append(bytes([TAG_ROW_DATA]))
        for name, value, op in cells:
            cell, c = _cell(name, value, op)
            out.append(cell)
            row_c = _CRC8[row_c ^ c]
    row_c = _CRC8[row_c ^ 0]  # no delete marker
    out.append(bytes([TAG_ROW_CHECKSUM, row_c]))
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("truncated PlainBuffer")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated PlainBuffer")
        self.pos += n
        return self.data[self.pos - n:self.pos]


def _read_cell(r: _Reader) -> "Tuple[str, Any, Optional[int], int]":
    """A cell after its TAG_CELL: (name, value, timestamp, checksum), the checksum verified."""
    if r.byte() != TAG_CELL_NAME:
        raise ValueError("PlainBuffer: expected a cell name")
    raw = r.take(struct.unpack("<I", r.take(4))[0])
    c = crc8(0, raw)
    value = timestamp = op = None
    tag = r.byte()
    if tag == TAG_CELL_VALUE:
        r.take(4)  # the value's length, implied by its type
        vtype = r.byte()
        c = _CRC8[c ^ vtype]
        if vtype == VT_INTEGER:
            payload = r.take(8)
            value = struct.unpack("<q", payload)[0]
        elif vtype in (VT_STRING, VT_BLOB):
            size = r.take(4)
            data = r.take(struct.unpack("<I", size)[0])
            payload = size + data
            value = data.decode("utf-8") if vtype == VT_STRING else bytearray(data)
        elif vtype == VT_BOOLEAN:
            payload = r.take(1)
            value = bool(payload[0])
        elif vtype == VT_DOUBLE:
            payload = r.take(8)
            value = struct.unpack("<d", payload)[0]
        elif vtype in (VT_INF_MIN, VT_INF_MAX):
            payload, value = b"", INF_MIN if vtype == VT_INF_MIN else INF_MAX
        else:
            raise ValueError(f"PlainBuffer: unsupported value type {vtype}")
        c = crc8(c, payload)
        tag = r.byte()
    if tag == TAG_CELL_TYPE:
        op = r.byte()
        tag = r.byte()
    if tag == TAG_CELL_TIMESTAMP:
        raw_ts = r.take(8)
        timestamp = struct.unpack("<q", raw_ts)[0]
        c = crc8(c, raw_ts)
        tag = r.byte()
    if op is not None:
        c = _CRC8[c ^ op]  # the op type is summed after the timestamp
    if tag != TAG_CELL_CHECKSUM:
        raise ValueError("PlainBuffer: expected a cell checksum")
    if r.byte() != c:
        raise ValueError("PlainBuffer: cell checksum mismatch")
    return raw.decode("utf-8"), value, timestamp, c


def decode_rows(data: bytes) -> "List[Row]":
    """PlainBuffer rows as [(primary key [(name, value)], attributes [(name, value, timestamp)])],
    the shapes of the SDK's ``Row.primary_key`` / ``Row.attribute_columns``; checksums verified."""
    r = _Reader(bytes(data))
    if struct.unpack("<I", r.take(4))[0] != HEADER:
        raise ValueError("PlainBuffer: bad header")
    rows: "List[Row]" = []
    while r.pos < len(r.data):
        if r.byte() != TAG_ROW_PK:
            raise ValueError("PlainBuffer: expected a primary key")
        pk: "List[Tuple[str, Any]]" = []
        attributes: "List[Tuple[str, Any, Optional[int]]]" = []
        row_c, tag = 0, r.byte()
        while tag == TAG_CELL:
            name, value, _, c = _read_cell(r)
            pk.append((name, value))
            row_c, tag = _CRC8[row_c ^ c], r.byte()
        if tag == TAG_ROW_DATA:
            tag = r.byte()
            while tag == TAG_CELL:
                name, value, timestamp, c = _read_cell(r)
                attributes.append((name, value, timestamp))
                row_c, tag = _CRC8[row_c ^ c], r.byte()
        marker = 0
        if tag == TAG_DELETE_ROW_MARKER:
            marker, tag = 1, r.byte()
        if tag != TAG_ROW_CHECKSUM or r.byte() != _CRC8[row_c ^ marker]:
            raise ValueError("PlainBuffer: row checksum mismatch")
        rows.append((pk, attributes))
    return rows


# ---------------------------------------------------------------- requests

def single_condition(column: str, value: "Any", comparator: int = EQUAL, pass_if_missing: bool = False,
                     latest_version_only: bool = True) -> bytes:
    """A ``SingleColumnCondition`` as the serialized ``Filter`` the service reads."""
    f = (_int(1, comparator) + _bytes(2, column) + _bytes(3, _variant(value)) + _int(4, not pass_if_missing)
         + _int(5, latest_version_only))
    return _int(1, 1) + _bytes(2, f)  # FT_SINGLE_COLUMN_VALUE


def composite_condition(operator: int, conditions: "Sequence[bytes]") -> bytes:
    """A ``CompositeColumnCondition`` (AND / OR / NOT) over conditions from this module."""
    f = _int(1, operator) + b"".join(_bytes(2, c) for c in conditions)
    return _int(1, 2) + _bytes(2, f)  # FT_COMPOSITE_COLUMN_VALUE


def _condition(expectation: int, column_condition: "Optional[bytes]") -> bytes:
    return _int(1, expectation) + (_bytes(2, column_condition) if column_condition is not None else b"")


def put_row_body(table: str, pk: "Pk", columns: "Sequence[Tuple[str, Any]]", expectation: int = IGNORE,
                 condition: "Optional[bytes]" = None) -> bytes:
    row = encode_row(pk, [(n, v, None) for n, v in columns])
    return _bytes(1, table) + _bytes(2, row) + _bytes(3, _condition(expectation, condition))


def update_row_body(table: str, pk: "Pk", puts: "Sequence[Tuple[str, Any]]" = (), deletes: "Sequence[str]" = (),
                    expectation: int = IGNORE, condition: "Optional[bytes]" = None) -> bytes:
    """``puts`` set columns, ``deletes`` remove every version of a column (the SDK's ``PUT`` and
    ``DELETE_ALL``, in that order)."""
    cells = [(n, v, None) for n, v in puts] + [(n, None, DELETE_ALL_VERSION) for n in deletes]
    row = encode_row(pk, cells)
    return _bytes(1, table) + _bytes(2, row) + _bytes(3, _condition(expectation, condition))


def get_row_body(table: str, pk: "Pk", columns_to_get: "Sequence[str]" = (), max_versions: int = 1) -> bytes:
    return _bytes(1, table) + _bytes(2, encode_row(pk)) + _strings(3, columns_to_get) + _int(5, max_versions)


def get_range_body(table: str, direction: int, start: "Pk", end: "Pk", columns_to_get: "Sequence[str]" = (),
                   limit: "Optional[int]" = None, max_versions: int = 1) -> bytes:
    return (_bytes(1, table) + _int(2, direction) + _strings(3, columns_to_get) + _int(5, max_versions)
            + (_int(6, limit) if limit is not None else b"")
            + _bytes(7, encode_row(start)) + _bytes(8, encode_row(end)))


def batch_get_row_body(table: str, pks: "Sequence[Pk]", columns_to_get: "Sequence[str]" = (),
                       max_versions: int = 1) -> bytes:
    item = (_bytes(1, table) + b"".join(_bytes(2, encode_row(pk)) for pk in pks) + _strings(4, columns_to_get)
            + _int(6, max_versions))
    return _bytes(1, item)


# ---------------------------------------------------------------- responses

def _one_row(data: bytes) -> "Optional[Row]":
    if not data:
        return None
    rows = decode_rows(data)
    if len(rows) != 1:
        raise ValueError("PlainBuffer: expected one row")
    return rows[0]


def parse_get_row(body: bytes) -> "Optional[Row]":
    """A ``GetRowResponse``: the row, or None when there is none."""
    return _one_row(parse_message(body).get(2, [b""])[-1])


def parse_get_range(body: bytes) -> "Tuple[Optional[List[Tuple[str, Any]]], List[Row]]":
    """A ``GetRangeResponse``: (next start primary key or None, rows)."""
    fields = parse_message(body)
    data = fields.get(2, [b""])[-1]
    rows = decode_rows(data) if data else []
    following = _one_row(fields.get(3, [b""])[-1])
    return (following[0] if following else None), rows


def parse_batch_get_row(body: bytes) -> "Dict[str, List[Tuple[bool, Optional[str], Optional[str], Optional[Row]]]]":
    """A ``BatchGetRowResponse``: {table: [(is_ok, error code, error message, row or None)]}, in request order."""
    out = {}
    for raw_table in parse_message(body).get(1, []):
        table = parse_message(raw_table)
        name = table[1][-1].decode("utf-8")
        items: "List[Tuple[bool, Optional[str], Optional[str], Optional[Row]]]" = []
        for raw_row in table.get(2, []):
            row = parse_message(raw_row)
            if row.get(1, [0])[-1]:
                items.append((True, None, None, _one_row(row.get(4, [b""])[-1])))
            else:
                error = parse_message(row.get(2, [b""])[-1])
                items.append((False, error.get(1, [b""])[-1].decode("utf-8", "replace"),
                              error.get(2, [b""])[-1].decode("utf-8", "replace"), None))
        out[name] = items
    return out


# ---------------------------------------------------------------- signing

@lru_cache(maxsize=16)
def v4_signing_key(secret: str, date: str, region: str) -> bytes:
    key = ("aliyun_v4" + secret).encode("utf-8")
    for part in (date, region, "ots", "aliyun_v4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(key)


def _b64hmac(key: "Any", text: str, algorithm: "Any") -> str:
    key = key if isinstance(key, bytes) else key.encode("utf-8")
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), algorithm).digest()).decode("ascii")


def _ots_lines(headers: "Dict[str, str]") -> str:
    return "\n".join(sorted(f"{k.lower()}:{v.strip()}" for k, v in headers.items() if k.lower().startswith("x-ots-")))


def sign_request(api: str, body: bytes, instance: str, key_id: str, secret: str, token: "Optional[str]",
                 region: "Optional[str]" = None, now: "Optional[float]" = None) -> "Tuple[Dict[str, str], Any]":
    """The ``x-ots-*`` headers of a request, signed (V4 with ``region``, else V2), and the key the
    service's answer is signed with."""
    when = time.gmtime(time.time() if now is None else now)
    headers = {
        "x-ots-date": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", when),
        "x-ots-apiversion": API_VERSION,
        "x-ots-accesskeyid": key_id,
        "x-ots-instancename": instance,
        "x-ots-contentmd5": base64.b64encode(hashlib.md5(body).digest()).decode("ascii"),
    }
    if token is not None:
        headers["x-ots-ststoken"] = token
    if region:
        headers["x-ots-signdate"] = time.strftime("%Y%m%d", when)
        headers["x-ots-signregion"] = region
        key: "Any" = v4_signing_key(secret, headers["x-ots-signdate"], region)
        text = f"/{api}\nPOST\n\n{_ots_lines(headers)}\nots"
        headers["x-ots-signaturev4"] = _b64hmac(key, text, hashlib.sha256)
    else:
        key = secret
        headers["x-ots-signature"] = _b64hmac(key, f"/{api}\nPOST\n\n{_ots_lines(headers)}\n", hashlib.sha1)
    return headers, key


def _days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's ``days_from_civil``)."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise ValueError("bad date")
    year -= month <= 2
    era, yoe = divmod(year, 400)
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def check_response(api: str, status: int, headers: "Dict[str, str]", body: bytes, key_id: str, key: "Any",
                   now: "Optional[float]" = None) -> None:
    """Raise :class:`OtsError` unless the answer is a valid 2xx (``headers`` with lower-case names):
    the service's error code, or a client-side one for a missing, mismatched or forged answer."""

    def bad(why: str) -> OtsError:
        return OtsError(status, None, f"{why} HTTP status: {status}.", service=False)

    if 200 <= status < 300:
        for name in ("x-ots-contentmd5", "x-ots-requestid", "x-ots-date", "x-ots-contenttype"):
            if name not in headers:
                raise bad(f'"{name}" is missing in response header.')
    if "x-ots-contentmd5" in headers and \
            headers["x-ots-contentmd5"] != base64.b64encode(hashlib.md5(body).digest()).decode("ascii"):
        raise bad("MD5 mismatch in response.")
    if "x-ots-date" in headers:
        date = headers["x-ots-date"]
        try:  # %Y-%m-%dT%H:%M:%S.%fZ, without the imports of time.strptime or calendar
            stamp = (_days(int(date[0:4]), int(date[5:7]), int(date[8:10])) * 86400 + int(date[11:13]) * 3600
                     + int(date[14:16]) * 60 + int(date[17:19]))
            if date[4] + date[7] + date[10] + date[13] + date[16] + date[-1] != "--T::Z":
                raise ValueError
        except (ValueError, IndexError):
            raise bad("Invalid date format in response.") from None
        if abs(stamp - (time.time() if now is None else now)) > 15 * 60:
            raise bad("The difference between date in response and system time is more than 15 minutes.")
    code = message = None
    if not 200 <= status < 300:
        try:
            fields = parse_message(body)
            code = fields[1][-1].decode("utf-8")
            message = fields.get(2, [b""])[-1].decode("utf-8", "replace")
        except (ValueError, KeyError, UnicodeDecodeError):
            raise OtsError(status, None, f"HTTP status: {status}.", service=False) from None
    # the service signs its answers, but not an OTSAuthFailed one (it could not find the key)
    if not (status == 403 and code in (None, "OTSAuthFailed")):
        auth = headers.get("authorization")
        if auth is None:
            if 200 <= status < 300:
                raise bad('"Authorization" is missing in response header.')
        else:
            if not auth.startswith("OTS ") or ":" not in auth:
                raise bad("Invalid Authorization in response.")
            answer_id, signature = auth[4:].split(":", 1)
            if answer_id != key_id:
                raise bad("Invalid access key id in response.")
            expected = _b64hmac(key, f"{_ots_lines(headers)}\n/{api}", hashlib.sha1)
            if not hmac.compare_digest(signature.encode("latin-1"), expected.encode("ascii")):
                raise bad("Invalid signature in response.")
    if code is not None:
        raise OtsError(status, code, message or "")


# ---------------------------------------------------------------- the client

class Client:
    """One Tablestore instance endpoint: signed calls over a small pool of keep-alive connections
    (:class:`ossdirect.http1.Connection`: ``socket`` and, for https, ``ssl``, imported on first use), thread-safe.
    Credentials are set with :meth:`set_credentials` and used from the next call on (STS rotation)."""

    max_idle = 16

    def __init__(self, endpoint: str, instance: str, region: "Optional[str]" = None, timeout: float = 2.0,
                 retries: int = 2) -> None:
        parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("Tablestore endpoint must be an http(s) URL")
        self.https, self.host, self.port = parts.scheme == "https", parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.instance, self.region, self.timeout, self.retries = instance, region, timeout, retries
        self._credentials: "Optional[Tuple[str, str, Optional[str]]]" = None
        self._idle: "List[_Connection]" = []
        self._lock = threading.Lock()
        self._tls: "Any" = None  # an ssl.SSLContext instead of http1's default one (tests trust their own CA)

    def set_credentials(self, key_id: str, secret: str, token: "Optional[str]") -> None:
        self._credentials = (key_id, secret, token)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- transport

    def _connection(self) -> "Tuple[_Connection, bool]":
        import select

        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            # an idle connection the server has closed reads as ready (EOF): drop it before sending
            if not select.select([conn.sock], [], [], 0)[0]:
                conn.sock.settimeout(self.timeout)
                return conn, True
            conn.close()
        return connect(self.host, self.port, self.https, self.timeout, self._tls), False

    def _send(self, api: str, body: bytes, headers: "Dict[str, str]") -> "Tuple[int, Dict[str, str], bytes]":
        request = request_head("POST", f"{self.prefix}/{api}", host_header(self.host, self.port, self.https), headers,
                               len(body)) + body
        for attempt in (0, 1):
            conn = None
            try:
                conn, reused = self._connection()
                conn.sock.sendall(request)
                status, answer, data, keep = conn.response()
            except TimeoutError:  # socket.timeout
                if conn is not None:
                    conn.close()
                raise OtsError(0, None, "TimeoutError", service=False) from None
            except ConnectionError as exc:
                if conn is not None:
                    conn.close()
                # a reused connection closed under us: only a read is safe to send again
                if conn is None or not reused or attempt or api not in READS:
                    raise OtsError(0, None, type(exc).__name__, service=False) from None
                continue
            except (OSError, ValueError) as exc:  # TLS failures, a malformed answer
                if conn is not None:
                    conn.close()
                raise OtsError(0, None, type(exc).__name__, service=False) from None
            with self._lock:
                if keep and len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()
            return status, answer, data
        raise AssertionError("unreachable")

    def call(self, api: str, body: bytes) -> bytes:
        """One signed call, retried like the stores' SDK policy; the answer's body, or :class:`OtsError`."""
        if self._credentials is None:
            raise OtsError(0, None, "no credentials", service=False)
        key_id, secret, token = self._credentials
        headers, key = sign_request(api, body, self.instance, key_id, secret, token, self.region)
        headers["User-Agent"] = USER_AGENT
        for attempt in range(self.retries + 1):
            status, answer, data = self._send(api, body, headers)
            try:
                check_response(api, status, answer, data, key_id, key)
                return data
            except OtsError as exc:
                retry = exc.service and (exc.code in NOT_APPLIED or api in READS and exc.status >= 500)
                if not retry or attempt >= self.retries:
                    raise
            time.sleep(0.05 * (2 ** attempt))
        raise AssertionError("unreachable")

    # -- the calls the stores make

    def put_row(self, table: str, pk: "Pk", columns: "Sequence[Tuple[str, Any]]", expectation: int = IGNORE,
                condition: "Optional[bytes]" = None) -> None:
        self.call("PutRow", put_row_body(table, pk, columns, expectation, condition))

    def update_row(self, table: str, pk: "Pk", puts: "Sequence[Tuple[str, Any]]" = (),
                   deletes: "Sequence[str]" = (), expectation: int = IGNORE,
                   condition: "Optional[bytes]" = None) -> None:
        self.call("UpdateRow", update_row_body(table, pk, puts, deletes, expectation, condition))

    def get_row(self, table: str, pk: "Pk", columns_to_get: "Sequence[str]" = (),
                max_versions: int = 1) -> "Optional[Row]":
        return parse_get_row(self.call("GetRow", get_row_body(table, pk, columns_to_get, max_versions)))

    def get_range(self, table: str, direction: int, start: "Pk", end: "Pk", columns_to_get: "Sequence[str]" = (),
                  limit: "Optional[int]" = None,
                  max_versions: int = 1) -> "Tuple[Optional[List[Tuple[str, Any]]], List[Row]]":
        return parse_get_range(self.call("GetRange", get_range_body(table, direction, start, end, columns_to_get,
                                                                    limit, max_versions)))

    def batch_get_row(self, table: str, pks: "Sequence[Pk]", columns_to_get: "Sequence[str]" = (),
                      max_versions: int = 1) -> "List[Tuple[bool, Optional[str], Optional[str], Optional[Row]]]":
        body = batch_get_row_body(table, pks, columns_to_get, max_versions)
        return parse_batch_get_row(self.call("BatchGetRow", body)).get(table, [])
