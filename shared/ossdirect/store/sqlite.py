"""SQLite record store: one row per upload id (the primary key decides who was first).

WAL mode, so concurrent writers on one disk (threads, processes, the local stack's
functions) never lose or duplicate a record. In the cloud, instances share no disk:
use a shared store there.
"""

import os
import sqlite3
import threading
import time

from . import RECORD_FIELDS, RecordStore, RecordStoreError, StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional, Tuple, Type

    from ..oss.credentials import Credentials
    from . import Record

    Setup = Callable[[sqlite3.Connection], None]

_COLUMNS = ",".join(RECORD_FIELDS)
_INTEGER = {"size", "image_width", "image_height"}


def connect_wal(path: str, setup: "Setup") -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode with ``setup(conn)`` (the schema) done. Switching to WAL (once
    per file; it persists) and creating tables can meet SQLITE_BUSY outside the busy handler when many
    instances start at once: retried. Shared by the record store and the allowance counters."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    for attempt in range(100):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            setup(conn)
            return conn
        except sqlite3.OperationalError as exc:
            if attempt == 99 or not ("locked" in str(exc) or "busy" in str(exc)):
                conn.close()
                raise
            time.sleep(0.01 + os.urandom(1)[0] / 255 * 0.04)  # jitter; random's import is 2 ms of cold start
    raise AssertionError("unreachable")  # the last attempt returns or raises


class ThreadConnections:
    """One WAL connection per thread to one file, opened (and set up) on first use, so a bad path fails
    at construction. Shared by the record store and the allowance counters."""

    def __init__(self, path: str, setup: "Setup") -> None:
        self.path, self.setup = path, setup
        self._local = threading.local()
        self.get()

    def get(self) -> sqlite3.Connection:
        conn: "Optional[sqlite3.Connection]" = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect_wal(self.path, self.setup)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def open_file(path: str, setup: "Setup", error: "Type[StoreError]") -> ThreadConnections:
    """:class:`ThreadConnections` to ``path``, the file and ``setup`` done now: a bad path raises ``error``."""
    try:
        return ThreadConnections(path, setup)
    except (sqlite3.Error, OSError) as exc:
        raise error(f"sqlite file {path!r} cannot be opened: {exc}") from None


class SqliteStore(RecordStore):
    _SCHEMA = ("CREATE TABLE IF NOT EXISTS records (upload_id TEXT PRIMARY KEY, "
               + ", ".join(f"{f} {'INTEGER' if f in _INTEGER else 'TEXT'}" for f in RECORD_FIELDS if f != "upload_id")
               + ")")

    def __init__(self, path: str) -> None:
        self.path = path
        self._connections = open_file(path, self._setup, RecordStoreError)  # a bad path fails here
        self._conn = self._connections.get

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(self._SCHEMA)
        self._migrate(conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Bring an older file up to date: columns added since, and files from 0.1, which kept records
        in ``uploads`` keyed by (upload id, key): carried over once (the first record per upload id wins,
        as it would have under today's rule)."""
        have = {row[1] for row in conn.execute("PRAGMA table_info(records)")}
        for f in RECORD_FIELDS:
            if f not in have:
                try:
                    conn.execute(f"ALTER TABLE records ADD COLUMN {f} {'INTEGER' if f in _INTEGER else 'TEXT'}")
                except sqlite3.OperationalError as exc:  # another instance added it first
                    if "duplicate column" not in str(exc):
                        raise
        old = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='uploads'").fetchone()
        if old is None:
            return
        old_columns = {row[1] for row in conn.execute("PRAGMA table_info(uploads)")}
        shared = [f for f in RECORD_FIELDS if f in old_columns]
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='uploads'").fetchone():
                conn.execute(f"INSERT OR IGNORE INTO records ({','.join(shared)}) "
                             f"SELECT {','.join(shared)} FROM uploads ORDER BY rowid")
                conn.execute("ALTER TABLE uploads RENAME TO uploads_v0_1")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def put(self, record: "Record", credentials: "Optional[Credentials]" = None) -> "Tuple[Record, bool]":
        row = [record.get(f) for f in RECORD_FIELDS]
        conn = self._conn()
        try:
            # The primary key decides who was first; the loser reads the winner's record.
            created = conn.execute(f"INSERT OR IGNORE INTO records ({_COLUMNS}) "
                                   f"VALUES ({','.join('?' * len(RECORD_FIELDS))})", row).rowcount == 1
            found = conn.execute(f"SELECT {_COLUMNS} FROM records WHERE upload_id=?",
                                 (record.get("upload_id"),)).fetchone()
        except sqlite3.Error as exc:
            raise RecordStoreError(f"sqlite: {exc.__class__.__name__}") from None
        return dict(zip(RECORD_FIELDS, found)), created

    def get(self, upload_id: str, credentials: "Optional[Credentials]" = None) -> "Optional[Record]":
        try:
            found = self._conn().execute(f"SELECT {_COLUMNS} FROM records WHERE upload_id=?",
                                         (upload_id,)).fetchone()
        except sqlite3.Error as exc:
            raise RecordStoreError(f"sqlite: {exc.__class__.__name__}") from None
        return dict(zip(RECORD_FIELDS, found)) if found else None

    def update(self, upload_id: str, expected: "Record", changes: "Record",
               credentials: "Optional[Credentials]" = None) -> "Tuple[Optional[Record], bool]":
        unknown = (set(expected) | set(changes)) - set(RECORD_FIELDS)
        if unknown or "upload_id" in changes or not changes:
            raise ValueError(f"cannot update {sorted(unknown)}")
        sets = ",".join(f"{f}=?" for f in changes)
        # IS compares NULLs too, so "expected to be unset" works like any other value
        where = "".join(f" AND {f} IS ?" for f in expected)
        try:
            applied = self._conn().execute(f"UPDATE records SET {sets} WHERE upload_id=?{where}",
                                           [*changes.values(), upload_id, *expected.values()]).rowcount == 1
        except sqlite3.Error as exc:
            raise RecordStoreError(f"sqlite: {exc.__class__.__name__}") from None
        return self.get(upload_id), applied

    def list_records(self, user: "Optional[str]" = None, since: "Optional[str]" = None,
                     until: "Optional[str]" = None, page_token: "Optional[str]" = None, limit: int = 100,
                     credentials: "Optional[Credentials]" = None,
                     newest_first: bool = False) -> "Tuple[List[Record], Optional[str]]":
        """Records by creation time (of one user, or all), oldest first (or newest first):
        ``(records, next_token)``, as :meth:`TablestoreStore.list_records`. ``since`` inclusive, ``until``
        exclusive; ``next_token`` is None on the last page. Keyset paging on (created_at, upload_id): one
        page in memory."""
        import base64
        import json

        limit = max(1, min(int(limit), 1000))
        where: "List[str]" = []
        args: "List[Any]" = []
        if user is not None:
            where.append("user IS ?")
            args.append(user)
        if since is not None:
            where.append("created_at >= ?")
            args.append(since)
        if until is not None:
            where.append("created_at < ?")
            args.append(until)
        if page_token:
            try:
                after = json.loads(base64.urlsafe_b64decode(page_token.encode()))
                if not (isinstance(after, list) and len(after) == 2 and all(isinstance(v, str) for v in after)):
                    raise ValueError
            except (ValueError, TypeError):
                raise ValueError("page_token does not belong to this listing") from None
            where.append(f"(IFNULL(created_at, ''), upload_id) {'<' if newest_first else '>'} (?, ?)")
            args.extend(after)
        order = " DESC" if newest_first else ""
        sql = (f"SELECT {_COLUMNS} FROM records" + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY IFNULL(created_at, ''){order}, upload_id{order} LIMIT ?")
        try:
            rows = self._conn().execute(sql, [*args, limit + 1]).fetchall()
        except sqlite3.Error as exc:
            raise RecordStoreError(f"sqlite: {exc.__class__.__name__}") from None
        records = [dict(zip(RECORD_FIELDS, r)) for r in rows[:limit]]
        token = None
        if len(rows) > limit:
            last = records[-1]
            token = base64.urlsafe_b64encode(json.dumps([last["created_at"] or "", last["upload_id"]]).encode()).decode()
        return records, token

    def all(self) -> "List[Record]":
        """Every record, oldest first (for tools and tests)."""
        rows = self._conn().execute(f"SELECT {_COLUMNS} FROM records ORDER BY rowid").fetchall()
        return [dict(zip(RECORD_FIELDS, r)) for r in rows]

    def close(self) -> None:
        self._connections.close()
