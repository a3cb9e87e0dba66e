"""Tablestore (OTS) record store: one row per upload id, shared by every function instance.

    OSSDIRECT_RECORDS=tablestore://<instance>/<table>?endpoint=https://<instance>.<region>.ots.aliyuncs.com
                      [&region=<region>][&timeout=2]

- **First writer wins**: ``PutRow`` with ``RowExistenceExpectation.EXPECT_NOT_EXIST``; the service
  answers ``OTSConditionCheckFail`` when the row exists, and the loser reads the stored record back
  (``replayed``). If the conflicting row carries *our* ``record_id``, our own earlier attempt landed
  (a retry after a lost answer), so we still created it.
- **Updates only on what the writer read**: ``UpdateRow`` with ``EXPECT_EXIST`` plus one column
  condition per expected field (``col == value``, and "still unset" as
  ``col == x pass-if-missing AND col != x pass-if-missing``, which only a missing column passes:
  it needs no newer comparator). So two instances never overwrite each other's facts.
- **Listing by user and by time** cannot use ``GetRange`` on the table (its key is the upload id, in
  no useful order), so the table has two *global secondary indexes* that the service maintains
  atomically from each row write (a second table written by us would be a second, non-atomic write):
  ``<table>_by_user`` keyed (user, created_at, upload_id) and ``<table>_by_time`` keyed
  (created_at, upload_id). They carry keys only; the records are then read from the table itself
  with ``BatchGetRow`` (≤ 100 per call), so a listing shows the latest status. GSIs are
  eventually consistent (milliseconds): a record written a moment ago may be missing from a
  listing, never from ``get``. Records without a user are listed by time only.
- The calls go through :mod:`.ots_wire`, the protocol written by hand (stdlib only, proven
  byte-equal to the official SDK on golden vectors): ``import tablestore`` would cost 0.4–0.8 s of
  cold start (``bench/tablestore.py``); the SDK is imported only by the setup tools (:meth:`client`).
- Credentials arrive per request; one protocol client (one connection pool) is kept, holding only
  the latest keys, swapped when STS rotates them.

The table and indexes are created once by ``python -m tools.tablestore_setup``.
"""

import base64
import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

from . import RECORD_FIELDS, RecordStore, RecordStoreError, StoreError, ots_wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple, Type

    from ..oss.credentials import Credentials
    from . import Record

INTEGER_FIELDS = frozenset({"size", "image_width", "image_height"})
ATTRIBUTES = tuple(f for f in RECORD_FIELDS if f != "upload_id")
BY_USER, BY_TIME = "_by_user", "_by_time"
INDEX_KEYS = {BY_USER: ("user", "created_at", "upload_id"), BY_TIME: ("created_at", "upload_id")}
MAX_BATCH_GET = 100
CONDITION_FAILED = ots_wire.CONDITION_FAILED  # a conditional write that did not apply (the row said no)
_REGION = re.compile(r"^[a-z0-9-]+\.([a-z]{2}-[a-z0-9-]+?)(?:\.vpc)?\.(?:ots|tablestore)\.aliyuncs\.com$")


def region_of(endpoint: str) -> "Optional[str]":
    host = urlsplit(endpoint).hostname or ""
    match = _REGION.match(host)
    return match.group(1) if match else None


def parse_url(url: str, error: "Type[StoreError]" = RecordStoreError) -> "Tuple[str, str, str, Optional[str], float]":
    """``tablestore://<instance>/<table>?endpoint=...[&region=...][&timeout=2]`` as
    ``(instance, table, endpoint, region, timeout)``."""
    parts = urlsplit(url)
    instance, table = parts.netloc, parts.path.strip("/")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if not instance or not table or "/" in table or not query.get("endpoint"):
        raise error("tablestore:// URL must be tablestore://<instance>/<table>?endpoint=https://"
                    "<instance>.<region>.ots.aliyuncs.com")
    try:
        timeout = float(query.get("timeout", "2"))
    except ValueError:
        raise error("tablestore:// timeout must be a number of seconds") from None
    return instance, table, query["endpoint"], query.get("region"), timeout


class TablestoreBackend:
    """The plumbing every Tablestore-backed store shares (records here, allowances in
    :mod:`.allowances`): one hand-written protocol client per backend (:mod:`.ots_wire`: one
    connection pool, the SDK's short retry policy) whose credentials are swapped in place when STS
    rotates them, and :meth:`call`, which turns its failures into ``self.error`` (a
    :class:`StoreError`, with the service's ``code``). The official SDK is imported only by
    :meth:`client`, for the setup tools (``CreateTable``, ``DescribeTable``...)."""

    error: "Type[StoreError]" = StoreError
    needs_credentials = True

    def __init__(self, instance: str, table: str, endpoint: str, region: "Optional[str]" = None,
                 timeout: float = 2.0, retries: int = 2) -> None:
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        self.instance, self.table, self.endpoint = instance, table, endpoint
        self.region = region or region_of(endpoint)  # V4 signatures when known, else V2
        self.timeout, self.retries = timeout, retries
        self._lock = threading.Lock()
        try:
            self._wire = ots_wire.Client(endpoint, instance, self.region, timeout, retries)
        except ValueError as exc:
            raise self.error(f"tablestore: {exc}") from None
        self._client: "Any" = None  # the SDK's, for the setup tools only
        self._provider: "Any" = None

    # -------------------------------------------------------------- the protocol client

    def wire(self, credentials: "Optional[Credentials]") -> "ots_wire.Client":
        """The protocol client, signing with ``credentials`` from this call on."""
        if credentials is None or not credentials.access_key_id or not credentials.access_key_secret:
            raise self.error("tablestore: no credentials")
        # STS rotation: same client and connections, the latest keys from this call on
        self._wire.set_credentials(credentials.access_key_id, credentials.access_key_secret,
                                   credentials.security_token)
        return self._wire

    def call(self, what: str, fn: "Callable[..., Any]", *args: "Any", **kwargs: "Any") -> "Any":
        """``fn(*args, **kwargs)`` (a protocol call named ``what``); every failure as ``self.error``, a
        service answer with its ``code`` (:data:`CONDITION_FAILED` for a condition that did not hold)."""
        try:
            return fn(*args, **kwargs)
        except ots_wire.OtsError as exc:
            if exc.service:
                raise self.error(f"tablestore: {what} answered {exc.status} {exc.code}", exc.code) from None
            raise self.error(f"tablestore: {what} failed ({exc.message[:120]})") from None
        except Exception as exc:  # an answer that does not decode
            raise self.error(f"tablestore: {what} failed ({exc.__class__.__name__})") from None

    def close(self) -> None:
        self._wire.close()
        with self._lock:
            self._client = self._provider = None

    # -------------------------------------------------------------- the SDK, for the setup tools

    @property
    def sdk(self) -> "Any":
        """The official ``tablestore`` SDK module (~0.5 s to import): the setup tools only."""
        import logging

        for name in ("tablestore.encoder", "tablestore.decoder"):  # "native codec not available" noise
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            import tablestore
        except ImportError as exc:
            raise self.error(f"tablestore setup needs the tablestore SDK ({exc})") from None
        # The SDK logs every failed request at ERROR, and formats whole protobufs when its logger
        # level is NOTSET: pin it.
        logging.getLogger("ossdirect.tablestore.sdk").setLevel(logging.CRITICAL)
        return tablestore

    def client(self, credentials: "Optional[Credentials]") -> "Any":
        """An SDK ``OTSClient`` signing with ``credentials`` (table setup: ``create_table``,
        ``describe_table``, ``create_secondary_index``); the stores' own calls use :meth:`wire`."""
        if credentials is None or not credentials.access_key_id or not credentials.access_key_secret:
            raise self.error("tablestore: no credentials")
        ts = self.sdk
        with self._lock:
            if self._client is None:
                class Provider(ts.CredentialsProvider):  # type: ignore[name-defined]
                    creds = None

                    def get_credentials(self) -> "Any":
                        return self.creds

                self._provider = Provider()
                kwargs: "Dict[str, Any]" = dict(credentials_provider=self._provider, instance_name=self.instance,
                                                socket_timeout=max(self.timeout, 10.0),
                                                logger_name="ossdirect.tablestore.sdk")
                if self.region:
                    kwargs["region"] = self.region
                self._client = ts.OTSClient(self.endpoint, **kwargs)
            self._provider.creds = ts.credentials.Credentials(
                credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
            return self._client


class TablestoreStore(TablestoreBackend, RecordStore):
    error = RecordStoreError
    needs_credentials = True
    can_read = True

    @classmethod
    def from_url(cls, url: str) -> "TablestoreStore":
        return cls(*parse_url(url))

    # -------------------------------------------------------------- records <-> rows

    @staticmethod
    def _columns(record: "Record") -> "List[Tuple[str, Any]]":
        out = []
        for f in ATTRIBUTES:
            value = record.get(f)
            if value is None:
                continue  # absent columns are how a row says None
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ValueError(f"record field {f} must be a string or an integer")
            out.append((f, value))
        return out

    @staticmethod
    def _record(upload_id: str, attribute_columns: "List[Any]") -> "Record":
        record = dict.fromkeys(RECORD_FIELDS)
        record["upload_id"] = upload_id
        for column in attribute_columns:
            if column[0] in record:
                record[column[0]] = column[1]
        return record

    # -------------------------------------------------------------- RecordStore

    def put(self, record: "Record", credentials: "Optional[Credentials]" = None) -> "Tuple[Record, bool]":
        client = self.wire(credentials)
        upload_id = record.get("upload_id")
        if not isinstance(upload_id, str) or not upload_id:
            raise ValueError("record has no upload_id")
        columns = self._columns(record)
        try:
            self.call("PutRow", client.put_row, self.table, [("upload_id", upload_id)], columns,
                      ots_wire.EXPECT_NOT_EXIST)
            return self._record(upload_id, columns), True
        except RecordStoreError as exc:
            if exc.code != CONDITION_FAILED:
                raise
        stored = self.get(upload_id, credentials)
        if stored is None:  # deleted between the two calls: not ours to resurrect
            raise RecordStoreError("tablestore: record vanished after a conflicting write")
        return stored, stored.get("record_id") == record.get("record_id") is not None

    def get(self, upload_id: str, credentials: "Optional[Credentials]" = None) -> "Optional[Record]":
        client = self.wire(credentials)
        row = self.call("GetRow", client.get_row, self.table, [("upload_id", upload_id)])
        return None if row is None else self._record(upload_id, row[1])

    def update(self, upload_id: str, expected: "Record", changes: "Record",
               credentials: "Optional[Credentials]" = None) -> "Tuple[Optional[Record], bool]":
        unknown = (set(expected) | set(changes)) - set(RECORD_FIELDS)
        if unknown or "upload_id" in changes or "upload_id" in expected or not changes:
            raise ValueError(f"cannot update {sorted(unknown) or sorted(changes)}")
        client = self.wire(credentials)
        conditions = []
        for field, value in expected.items():
            if value is None:
                probe = 0 if field in INTEGER_FIELDS else ""
                conditions.append(ots_wire.composite_condition(ots_wire.AND, [
                    ots_wire.single_condition(field, probe, ots_wire.EQUAL, True),
                    ots_wire.single_condition(field, probe, ots_wire.NOT_EQUAL, True)]))
            else:
                conditions.append(ots_wire.single_condition(field, value, ots_wire.EQUAL, False))
        column_condition = None
        if len(conditions) == 1:
            column_condition = conditions[0]
        elif conditions:
            column_condition = ots_wire.composite_condition(ots_wire.AND, conditions)
        puts = self._columns(changes)
        deletes = [f for f, v in changes.items() if v is None]  # every version of the column (DELETE_ALL)
        try:
            self.call("UpdateRow", client.update_row, self.table, [("upload_id", upload_id)], puts, deletes,
                      ots_wire.EXPECT_EXIST, column_condition)
            applied = True
        except RecordStoreError as exc:
            if exc.code != CONDITION_FAILED:
                raise
            applied = False
        return self.get(upload_id, credentials), applied

    def list_records(self, user: "Optional[str]" = None, since: "Optional[str]" = None,
                     until: "Optional[str]" = None, page_token: "Optional[str]" = None, limit: int = 100,
                     credentials: "Optional[Credentials]" = None,
                     newest_first: bool = False) -> "Tuple[List[Record], Optional[str]]":
        """Records by creation time (of one user, or all), oldest first or ``newest_first``:
        ``(records, next_token)``.

        ``since`` is inclusive, ``until`` exclusive (``created_at`` strings, ISO-8601 UTC);
        ``next_token`` is None on the last page."""
        limit = max(1, min(int(limit), 1000))
        client = self.wire(credentials)
        index = self.table + (BY_USER if user is not None else BY_TIME)
        prefix = [("user", user)] if user is not None else []
        if page_token:
            try:
                token_start = [tuple(pair) for pair in json.loads(base64.urlsafe_b64decode(page_token.encode()))]
                if [n for n, _ in token_start] != list(INDEX_KEYS[BY_USER if user is not None else BY_TIME]) or \
                        token_start[:len(prefix)] != prefix:
                    raise ValueError
            except (ValueError, TypeError):
                raise ValueError("page_token does not belong to this listing") from None
        low = prefix + [("created_at", since if since is not None else ots_wire.INF_MIN),
                        ("upload_id", ots_wire.INF_MIN)]
        high = prefix + [("created_at", until if until is not None else ots_wire.INF_MAX),
                         ("upload_id", ots_wire.INF_MIN if until is not None else ots_wire.INF_MAX)]
        # one range read on the index either way: BACKWARD starts at the high end (newest first)
        start, end = (high, low) if newest_first else (low, high)
        if page_token:
            start = token_start
        direction = ots_wire.BACKWARD if newest_first else ots_wire.FORWARD
        ids: "List[str]" = []
        next_start = start
        while next_start is not None and len(ids) < limit:
            next_start, rows = self.call("GetRange", client.get_range, index, direction, next_start, end,
                                         limit=limit - len(ids))
            ids.extend(dict(pk)["upload_id"] for pk, _ in rows)
        records = self._batch_get(client, ids)
        token = None
        if next_start is not None:
            token = base64.urlsafe_b64encode(json.dumps(next_start, ensure_ascii=False).encode()).decode()
        return records, token

    def _batch_get(self, client: "ots_wire.Client", ids: "List[str]") -> "List[Record]":
        found = {}
        for i in range(0, len(ids), MAX_BATCH_GET):
            chunk = ids[i:i + MAX_BATCH_GET]
            items = self.call("BatchGetRow", client.batch_get_row, self.table, [[("upload_id", u)] for u in chunk])
            for is_ok, error_code, _, row in items:
                if not is_ok:
                    raise RecordStoreError(f"tablestore: BatchGetRow row failed ({error_code})")
                if row is not None:
                    upload_id = dict(row[0])["upload_id"]
                    found[upload_id] = self._record(upload_id, row[1])
        return [found[u] for u in ids if u in found]  # a row deleted since the index read is skipped

