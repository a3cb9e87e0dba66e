"""Where the per-user allowances are counted: two counters (``forms``, ``bytes``) per (subject key,
window start), spent atomically. What is counted, the windows and the subjects are the policy's
(:mod:`ossdirect.core.limits`); this module only stores the counters, on the record stores' plumbing.

Both backends implement one small interface:

- ``spend(key, start, ends, nbytes, decide, credentials, now)``: read the row's ``(forms, bytes)``
  (``(0, 0)`` when absent), ask ``decide(forms, bytes)``; when it answers None, write
  ``(forms + 1, bytes + nbytes)``, all or nothing, and return ``(forms + 1, bytes + nbytes, None)``;
  otherwise write nothing and return ``(forms, bytes, reason)``.
- ``read(key, start, credentials)``: ``(forms, bytes)`` now, spending nothing.

Every spend raises ``forms`` by exactly one, so it is a version number. Failures raise
:class:`AllowanceStoreError`.

The stored-bytes quota (``stored=``) is a set of *holdings* per subject key, one per upload id:
``(bytes, expires_at)``, where ``expires_at`` is 0 for bytes held in the bucket and the form's expiry
for a reservation (a reservation that expired no longer counts, and is deleted on the next write):

- ``reserve(key, upload_id, nbytes, expires_at, limit, credentials, now)``: when held + live reservations
  + ``nbytes`` fit in ``limit``, add the reservation; ``(ok, held, reserved)`` before it, all or nothing.
- ``settle(key, upload_id, nbytes, credentials, now)``: the upload is recorded: hold its real size (the
  reservation, if still there, becomes it). Idempotent: the callback and the event path may both call it.
- ``release(key, upload_id, credentials, now)``: drop the holding (deleted, or a multipart upload aborted).
- ``usage(key, credentials, now)``: ``(held, reserved)``.
"""

import json

import random
import sqlite3
import threading
import time

from . import StoreError, ots_wire
from .sqlite import open_file
from .tablestore import CONDITION_FAILED, TablestoreBackend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple, TypeVar

    from ..oss.credentials import Credentials

    T = TypeVar("T")
    Decide = Callable[[int, int], Optional[str]]  # (forms, bytes) used -> None when the spend fits, else why not
    Spent = Tuple[int, int, Optional[str]]


class AllowanceStoreError(StoreError):
    """The allowance counters could not be read or written."""


# ------------------------------------------------------------------ SQLite

class SqliteAllowances:
    """One small table, one ``BEGIN IMMEDIATE`` transaction per spend (one writer at a time across
    every process on the file), per-thread connections (WAL).

    Windows that ended are deleted now and then (about one spend in ``prune_every``)."""

    needs_credentials = False
    _SCHEMA = ("CREATE TABLE IF NOT EXISTS limits (subject TEXT NOT NULL, window_start INTEGER NOT NULL, "
               "ends_at INTEGER NOT NULL, forms INTEGER NOT NULL, bytes INTEGER NOT NULL, "
               "PRIMARY KEY (subject, window_start)) WITHOUT ROWID")
    _INDEX = "CREATE INDEX IF NOT EXISTS limits_ends_at ON limits (ends_at)"
    _HOLDINGS = ("CREATE TABLE IF NOT EXISTS holdings (subject TEXT NOT NULL, upload_id TEXT NOT NULL, "
                 "bytes INTEGER NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (subject, upload_id)) WITHOUT ROWID")
    prune_every = 256

    def __init__(self, path: str) -> None:
        self.path = path
        self._connections = open_file(path, self._setup, AllowanceStoreError)  # a bad path fails at start
        self.connection = self._connections.get  # this thread's connection

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(self._SCHEMA)
        conn.execute(self._INDEX)
        conn.execute(self._HOLDINGS)

    def transaction(self, fn: "Callable[[sqlite3.Connection], T]") -> "T":
        """Run ``fn(conn)`` inside BEGIN IMMEDIATE (the write lock first, so no two processes
        can read the same counters and both write), retrying when the lock stays busy."""
        for attempt in range(20):
            try:
                conn = self.connection()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if attempt == 19 or not _busy(exc):
                    raise AllowanceStoreError(f"sqlite: {exc}") from None
                time.sleep(0.005 + random.random() * 0.02)
                continue
            except sqlite3.Error as exc:
                raise AllowanceStoreError(f"sqlite: {exc.__class__.__name__}") from None
            try:
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException as exc:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.Error):
                    raise AllowanceStoreError(f"sqlite: {exc.__class__.__name__}: {exc}") from None
                raise
        raise AllowanceStoreError("sqlite: the limits file stayed locked")

    def spend(self, key: str, start: int, ends: int, nbytes: int, decide: "Decide",
              credentials: "Optional[Credentials]" = None, now: float = 0.0) -> "Spent":
        def work(conn: sqlite3.Connection) -> "Spent":
            row = conn.execute("SELECT forms, bytes FROM limits WHERE subject=? AND window_start=?",
                               (key, start)).fetchone()
            forms, used = row if row else (0, 0)
            reason = decide(forms, used)
            if reason:
                return forms, used, reason
            conn.execute("INSERT INTO limits (subject, window_start, ends_at, forms, bytes) VALUES (?, ?, ?, 1, ?) "
                         "ON CONFLICT (subject, window_start) DO UPDATE SET forms=forms+1, bytes=bytes+excluded.bytes",
                         (key, start, ends, nbytes))
            if random.randrange(self.prune_every) == 0:
                conn.execute("DELETE FROM limits WHERE ends_at < ?", (int(now) - 60,))
            return forms + 1, used + nbytes, None

        return self.transaction(work)

    def read(self, key: str, start: int, credentials: "Optional[Credentials]" = None) -> "Tuple[int, int]":
        try:
            row = self.connection().execute("SELECT forms, bytes FROM limits WHERE subject=? AND window_start=?",
                                            (key, start)).fetchone()
        except sqlite3.Error as exc:
            raise AllowanceStoreError(f"sqlite: {exc.__class__.__name__}") from None
        return (row[0], row[1]) if row else (0, 0)

    # -- the stored-bytes quota (one row per holding; the write lock makes check-and-insert one step)

    @staticmethod
    def _usage(conn: sqlite3.Connection, key: str, now: float) -> "Tuple[int, int]":
        row = conn.execute("SELECT COALESCE(SUM(CASE WHEN expires_at=0 THEN bytes END), 0), "
                           "COALESCE(SUM(CASE WHEN expires_at>0 THEN bytes END), 0) FROM holdings "
                           "WHERE subject=? AND (expires_at=0 OR expires_at>?)", (key, int(now))).fetchone()
        return row[0], row[1]

    def reserve(self, key: str, upload_id: str, nbytes: int, expires_at: int, limit: int,
                credentials: "Optional[Credentials]" = None, now: float = 0.0) -> "Tuple[bool, int, int]":
        def work(conn: sqlite3.Connection) -> "Tuple[bool, int, int]":
            conn.execute("DELETE FROM holdings WHERE subject=? AND expires_at>0 AND expires_at<=?", (key, int(now)))
            held, reserved = self._usage(conn, key, now)
            if held + reserved + nbytes > limit:
                return False, held, reserved
            conn.execute("INSERT OR REPLACE INTO holdings (subject, upload_id, bytes, expires_at) VALUES (?, ?, ?, ?)",
                         (key, upload_id, nbytes, max(1, int(expires_at))))
            return True, held, reserved

        return self.transaction(work)

    def settle(self, key: str, upload_id: str, nbytes: int, credentials: "Optional[Credentials]" = None,
               now: float = 0.0) -> None:
        self.transaction(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO holdings (subject, upload_id, bytes, expires_at) VALUES (?, ?, ?, 0)",
            (key, upload_id, nbytes)))

    def release(self, key: str, upload_id: str, credentials: "Optional[Credentials]" = None,
                now: float = 0.0) -> None:
        self.transaction(lambda conn: conn.execute("DELETE FROM holdings WHERE subject=? AND upload_id=?",
                                                   (key, upload_id)))

    def usage(self, key: str, credentials: "Optional[Credentials]" = None, now: float = 0.0) -> "Tuple[int, int]":
        try:
            return self._usage(self.connection(), key, now)
        except sqlite3.Error as exc:
            raise AllowanceStoreError(f"sqlite: {exc.__class__.__name__}") from None

    def prune(self, now: float) -> int:
        """Delete every window that ended by ``now``; the number of rows removed."""
        return self.transaction(lambda conn: conn.execute("DELETE FROM limits WHERE ends_at <= ?",
                                                          (int(now),)).rowcount)

    def close(self) -> None:
        self._connections.close()


def _busy(exc: Exception) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


# ------------------------------------------------------------------ Tablestore

class TablestoreAllowances(TablestoreBackend):
    """One row per (subject key, window start) in a Tablestore table, written only conditionally.

    Primary key ``subject`` (STRING, the subject's SHA-256) + ``window_start`` (INTEGER); columns
    ``forms``, ``bytes``, ``ends_at`` (INTEGER). Old windows are removed by the table's TTL (at least
    a day, and at least the window: ``python -m tools.limits_setup``). The protocol client
    (:mod:`.ots_wire`, no SDK import), its credentials (swapped in place when STS rotates keys) and
    its retry policy are the record store's (:class:`.tablestore.TablestoreBackend`), shared, not copied.

    A spend reads the row (``GetRow``) and writes it back conditionally (``PutRow`` expecting the row
    absent, or ``UpdateRow`` expecting it present *and* its ``forms`` still at the value read),
    retried from a fresh read when the condition fails. The value this instance last saw for a
    (subject, window) is kept as a guess (a small bounded map), so a subject's next spend on the same
    instance goes straight to the conditional write (one round trip), falling back to a read when
    another instance has moved the counter. A guess can only be *behind* the row (counters only grow
    within a window), so refusing on a guess is always right.
    """

    error = AllowanceStoreError
    needs_credentials = True
    PK = (("subject", "STRING"), ("window_start", "INTEGER"))
    max_attempts = 32
    guesses = 4096

    def __init__(self, instance: str, table: str, endpoint: str, region: "Optional[str]" = None,
                 timeout: float = 2.0, retries: int = 2) -> None:
        super().__init__(instance, table, endpoint, region, timeout, retries)
        self._guess: "Dict[Tuple[str, int], Tuple[int, int]]" = {}  # (key, window start) -> last seen
        self._guess_lock = threading.Lock()

    def _write(self, what: str, fn: "Callable[..., Any]", *args: "Any") -> bool:
        """A conditional write: False when its condition failed."""
        try:
            self.call(what, fn, *args)
        except AllowanceStoreError as exc:
            if exc.code == CONDITION_FAILED:
                return False
            raise
        return True

    def _read(self, client: "Any", key: str, start: int) -> "Optional[Tuple[int, int]]":
        row = self.call("GetRow", client.get_row, self.table, [("subject", key), ("window_start", start)],
                        ["forms", "bytes"])
        if row is None:
            return None
        columns = {c[0]: c[1] for c in row[1]}
        return columns.get("forms", 0), columns.get("bytes", 0)

    def _remember(self, key: str, start: int, value: "Optional[Tuple[int, int]]") -> None:
        with self._guess_lock:
            self._guess.pop((key, start), None)
            if value is not None:
                self._guess[(key, start)] = value
                while len(self._guess) > self.guesses:
                    self._guess.pop(next(iter(self._guess)))

    def spend(self, key: str, start: int, ends: int, nbytes: int, decide: "Decide",
              credentials: "Optional[Credentials]" = None, now: float = 0.0) -> "Spent":
        client = self.wire(credentials)
        pk = [("subject", key), ("window_start", start)]
        with self._guess_lock:
            current = self._guess.get((key, start))
        fresh = current is None
        for attempt in range(self.max_attempts):
            if fresh:
                current = self._read(client, key, start)
            forms, used = current if current is not None else (0, 0)
            reason = decide(forms, used)
            if reason:
                self._remember(key, start, current)
                return forms, used, reason
            values = [("forms", forms + 1), ("bytes", used + nbytes), ("ends_at", ends)]
            if current is None:  # the first spend of this window creates the row, once
                done = self._write("PutRow", client.put_row, self.table, pk, values, ots_wire.EXPECT_NOT_EXIST)
            else:  # only while nobody has spent since we read
                done = self._write("UpdateRow", client.update_row, self.table, pk, values, (),
                                   ots_wire.EXPECT_EXIST, ots_wire.single_condition("forms", forms))
            if done:
                self._remember(key, start, (forms + 1, used + nbytes))
                return forms + 1, used + nbytes, None
            fresh = True  # another instance spent first: read again
            if attempt:
                time.sleep(random.random() * min(0.05, 0.002 * (2 ** attempt)))
        self._remember(key, start, None)
        raise AllowanceStoreError(f"tablestore: no spend after {self.max_attempts} conflicting attempts")

    def read(self, key: str, start: int, credentials: "Optional[Credentials]" = None) -> "Tuple[int, int]":
        current = self._read(self.wire(credentials), key, start)
        self._remember(key, start, current)
        return current if current is not None else (0, 0)

    # -- the stored-bytes quota: one row per subject in the table ``<table>_held`` (same primary key,
    # window_start HOLDINGS_ROW; no TTL: held bytes must not expire with the windows), ``holdings`` a JSON
    # map upload id -> [bytes, expires_at] and ``version`` raised by every write, written only while
    # ``version`` is still the value read: a read-modify-write, all or nothing. One STRING cell holds at
    # most 2 MB: some 40,000 files per user.

    HOLDINGS_ROW = 0

    @property
    def holdings_table(self) -> str:
        return self.table + "_held"

    def _holdings(self, client: "Any", key: str) -> "Tuple[Optional[int], Dict[str, Any]]":
        row = self.call("GetRow", client.get_row, self.holdings_table,
                        [("subject", key), ("window_start", self.HOLDINGS_ROW)], ["version", "holdings"])
        if row is None:
            return None, {}
        columns = {c[0]: c[1] for c in row[1]}
        return columns.get("version", 0), json.loads(columns.get("holdings") or "{}")

    def _mutate(self, key: str, change: "Callable[[Dict[str, Any]], T]", credentials: "Optional[Credentials]",
                now: float) -> "T":
        """``change(holdings)`` edits the live holdings in place and returns the answer; written back
        conditionally, retried from a fresh read when another writer got there first."""
        client = self.wire(credentials)
        pk = [("subject", key), ("window_start", self.HOLDINGS_ROW)]
        for attempt in range(self.max_attempts):
            version, holdings = self._holdings(client, key)
            before = json.dumps(holdings, sort_keys=True)
            holdings = {u: h for u, h in holdings.items() if h[1] == 0 or h[1] > now}  # expired: gone
            answer = change(holdings)
            text = json.dumps(holdings, sort_keys=True)
            if text == before:
                return answer  # nothing to write
            values = [("version", (version or 0) + 1), ("holdings", text)]
            if version is None:
                done = self._write("PutRow", client.put_row, self.holdings_table, pk, values,
                                   ots_wire.EXPECT_NOT_EXIST)
            else:
                done = self._write("UpdateRow", client.update_row, self.holdings_table, pk, values, (),
                                   ots_wire.EXPECT_EXIST, ots_wire.single_condition("version", version))
            if done:
                return answer
            if attempt:
                time.sleep(random.random() * min(0.05, 0.002 * (2 ** attempt)))
        raise AllowanceStoreError(f"tablestore: no quota write after {self.max_attempts} conflicting attempts")

    @staticmethod
    def _sums(holdings: "Dict[str, Any]") -> "Tuple[int, int]":
        return (sum(b for b, e in holdings.values() if e == 0), sum(b for b, e in holdings.values() if e > 0))

    def reserve(self, key: str, upload_id: str, nbytes: int, expires_at: int, limit: int,
                credentials: "Optional[Credentials]" = None, now: float = 0.0) -> "Tuple[bool, int, int]":
        def change(holdings: "Dict[str, Any]") -> "Tuple[bool, int, int]":
            held, reserved = self._sums(holdings)
            if held + reserved + nbytes > limit:
                return False, held, reserved
            holdings[upload_id] = [nbytes, max(1, int(expires_at))]
            return True, held, reserved

        return self._mutate(key, change, credentials, now)

    def settle(self, key: str, upload_id: str, nbytes: int, credentials: "Optional[Credentials]" = None,
               now: float = 0.0) -> None:
        self._mutate(key, lambda holdings: holdings.__setitem__(upload_id, [nbytes, 0]), credentials, now)

    def release(self, key: str, upload_id: str, credentials: "Optional[Credentials]" = None,
                now: float = 0.0) -> None:
        self._mutate(key, lambda holdings: holdings.pop(upload_id, None), credentials, now)

    def usage(self, key: str, credentials: "Optional[Credentials]" = None, now: float = 0.0) -> "Tuple[int, int]":
        _, holdings = self._holdings(self.wire(credentials), key)
        return self._sums({u: h for u, h in holdings.items() if h[1] == 0 or h[1] > now})
