"""Where uploads are recorded, exactly once per (upload id, object key).

``put(record)`` returns ``(stored_record, created)``: a replayed callback gets
the first record back and nothing new is written. Backends:
``sqlite:///path`` (embedded default: WAL, survives restarts, safe with
concurrent writers), ``stdout`` (JSON lines for Function Compute's log
config) and ``sls://`` (Simple Log Service, in :mod:`ossdirect.sls`).
"""

import json
import os
import random
import sqlite3
import sys
import threading
import time
from collections import OrderedDict

RECORD_FIELDS = (
    "record_id", "upload_id", "bucket", "key", "size", "etag", "content_type", "crc64",
    "content_md5", "filename", "client_ip", "oss_request_id", "image_width", "image_height",
    "image_format", "created_at",
)


class RecordStoreError(Exception):
    """The record could not be written (the callback answers 503)."""


class RecordStore:
    needs_credentials = False

    def put(self, record, credentials=None):
        raise NotImplementedError

    def close(self):
        pass


class SqliteStore(RecordStore):
    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS uploads (
        record_id TEXT PRIMARY KEY,
        upload_id TEXT NOT NULL,
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        size INTEGER,
        etag TEXT,
        content_type TEXT,
        crc64 TEXT,
        content_md5 TEXT,
        filename TEXT,
        client_ip TEXT,
        oss_request_id TEXT,
        image_width INTEGER,
        image_height INTEGER,
        image_format TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (upload_id, key)
    )"""

    def __init__(self, path):
        self.path = path
        self._local = threading.local()
        try:
            self._conn()  # create the file and schema now, so a bad path fails at start
        except (sqlite3.Error, OSError) as exc:
            raise RecordStoreError(f"sqlite file {path!r} cannot be opened: {exc}") from None

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            # Switching to WAL (once per file; it persists) and creating the table can meet
            # SQLITE_BUSY without the busy handler when many instances start at once: retry.
            for attempt in range(100):
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(self._SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if attempt == 99 or not ("locked" in str(exc) or "busy" in str(exc)):
                        conn.close()
                        raise
                    time.sleep(0.01 + random.random() * 0.04)
            self._local.conn = conn
        return conn

    def put(self, record, credentials=None):
        row = {f: record.get(f) for f in RECORD_FIELDS}
        conn = self._conn()
        try:
            # INSERT OR IGNORE + SELECT is atomic enough: the UNIQUE index decides who was first.
            cur = conn.execute(
                f"INSERT OR IGNORE INTO uploads ({','.join(RECORD_FIELDS)}) "
                f"VALUES ({','.join('?' * len(RECORD_FIELDS))})",
                [row[f] for f in RECORD_FIELDS])
            created = cur.rowcount == 1
            found = conn.execute(
                f"SELECT {','.join(RECORD_FIELDS)} FROM uploads WHERE upload_id=? AND key=?",
                (row["upload_id"], row["key"])).fetchone()
        except sqlite3.Error as exc:
            raise RecordStoreError(f"sqlite: {exc.__class__.__name__}") from None
        return dict(zip(RECORD_FIELDS, found)), created

    def all(self):
        """Every record, oldest first (for tools and tests)."""
        rows = self._conn().execute(f"SELECT {','.join(RECORD_FIELDS)} FROM uploads ORDER BY rowid").fetchall()
        return [dict(zip(RECORD_FIELDS, r)) for r in rows]

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class AppendOnlyStore(RecordStore):
    """A store that cannot look records up (stdout, SLS): duplicates are suppressed within one
    instance; across instances, dedupe downstream by ``upload_id`` + ``key`` (every entry has them)."""

    def __init__(self, remember=4096):
        self._seen = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()

    def put(self, record, credentials=None):
        ident = (record.get("upload_id"), record.get("key"))
        with self._lock:
            first = self._seen.get(ident)
            if first is not None:
                return first, False
        self.append(record, credentials)  # raises RecordStoreError: nothing remembered
        with self._lock:
            self._seen[ident] = record
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        return record, True

    def append(self, record, credentials):
        raise NotImplementedError


class StdoutStore(AppendOnlyStore):
    """One JSON line per record on stdout, for FC's logConfig to ship."""

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream

    def append(self, record, credentials):
        line = json.dumps({"ossdirect_record": {f: record.get(f) for f in RECORD_FIELDS}},
                          separators=(",", ":"), ensure_ascii=False)
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


def open_store(url):
    """Open the record store named by ``OSSDIRECT_RECORDS``."""
    if url == "stdout":
        return StdoutStore()
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///"):])
    if url.startswith("sls://"):
        from .sls import SlsStore  # only the cloud path pays for it

        return SlsStore.from_url(url)
    raise RecordStoreError(f"unknown record store {url!r}")


def new_record_id():
    # Sortable by time, unique enough for one bucket: ms timestamp + 48 random bits.
    return f"rec_{int(time.time() * 1000):013x}{os.urandom(6).hex()}"
