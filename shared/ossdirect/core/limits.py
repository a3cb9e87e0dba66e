"""Abuse limits: at most N forms and B declared bytes per user (or client IP) per window.

    OSSDIRECT_USER_LIMITS=forms=20,bytes=1073741824,window=3600
    OSSDIRECT_LIMITS_STORE=sqlite:///ossdirect-limits.sqlite3          (local stack, one instance)
    OSSDIRECT_LIMITS_STORE=tablestore://<instance>/<table>?endpoint=https://<instance>.<region>.ots.aliyuncs.com
    OSSDIRECT_ANONYMOUS_LIMITS_BY_IP=true

**Fixed windows**: a window is ``[k * window, (k + 1) * window)`` in epoch seconds with
``k = floor(now / window)``; each (subject, window start) has its own two counters, and they start
from zero at the next boundary. Simple and cheap (one row per active subject per window), at the
known price of fixed windows: a subject can spend up to twice the limit across one boundary
(the end of one window and the start of the next). Instances with skewed clocks pick the row of
the window their clock says, which moves the boundary by the skew, never the count within a row.

**Atomic spends**: :meth:`Limiter.spend` either counts one form *and* its declared bytes, or
nothing. SQLite does the read-check-write in one ``BEGIN IMMEDIATE`` transaction (one writer at a
time across every process on the file); Tablestore with a conditional write on the window row
(``PutRow`` expecting the row absent, or ``UpdateRow`` expecting it present *and* its ``forms``
counter still at the value read), retried from a fresh read on ``OTSConditionCheckFail``. Every
spend raises ``forms`` by exactly one, so it is a version number: two instances that read the same
value cannot both write, and the last unit is spent once.

**Subjects** are any strings (a JWT ``sub`` may hold anything); they are stored only as their
SHA-256 (hex), never as given. :func:`subject_for` builds them: ``user:<sub>`` for a signed-in
user, ``ip:<client ip>`` otherwise (when ``OSSDIRECT_ANONYMOUS_LIMITS_BY_IP`` is on), so a user
named ``ip:…`` cannot spend an address's allowance.

State must be shared by every function instance: SQLite only where they share one disk (the local
stack, a single-instance setup); Tablestore in the cloud. The Tablestore SDK is imported only when
the store names it. Store failures raise :class:`LimitStoreError` (the caller decides whether to
fail closed, 503, or open).
"""

import hashlib
import math
import random
import sqlite3
import threading
import time

from ..settings import DEFAULT_LIMITS_STORE as DEFAULT_STORE
from ..settings import DEFAULT_WINDOW, MAX_COUNT, PREFIX, parse_store_url, section_names
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping

# Every variable load_limit_settings reads, without the prefix (the settings table's limits rows).
LIMIT_ENV_NAMES = section_names("limits")
TTL_MIN = 86400  # the service's smallest table TTL


class LimitStoreError(OssdirectError):
    """The limits store could not be read or written."""


class LimitSettings:
    """Validated limits (see load_limit_settings). ``forms``/``bytes`` None: that budget is unlimited."""

    __slots__ = ("forms", "bytes", "window", "store", "anonymous_by_ip")

    def __init__(self, forms=None, bytes=None, window=DEFAULT_WINDOW, store=DEFAULT_STORE, anonymous_by_ip=True):
        self.forms, self.bytes, self.window = forms, bytes, window
        self.store, self.anonymous_by_ip = store, anonymous_by_ip

    def __repr__(self):
        return (f"LimitSettings(forms={self.forms!r}, bytes={self.bytes!r}, window={self.window!r}, "
                f"store={self.store!r}, anonymous_by_ip={self.anonymous_by_ip!r})")

    def public(self):
        """What a client may know (no store URL)."""
        return {"forms": self.forms, "bytes": self.bytes, "window_seconds": self.window}


def load_limit_settings(env: "Mapping[str, str] | None" = None) -> "LimitSettings | None":
    """The limits from the environment, or None when ``OSSDIRECT_USER_LIMITS`` is unset or empty.

    Raises :class:`ossdirect.settings.ConfigError` naming every bad variable (the settings table's rows)."""
    from ..settings import load_limits_section

    return load_limits_section(env)


def subject_for(settings, user=None, client_ip=None):
    """The subject a request spends from: ``user:<sub>``, else ``ip:<address>`` (when limiting
    anonymous requests by IP), else None (nothing to limit by)."""
    if user:
        return f"user:{user}"
    if settings.anonymous_by_ip and client_ip:
        return f"ip:{ip_subject(client_ip)}"
    return None


def ip_subject(address):
    """What an anonymous caller is counted by: an IPv4 address, or an IPv6 address's /64 (one
    subscriber usually holds a whole /64, so per-address counting would give them 2**64 allowances)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def subject_key(subject):
    """How a subject is stored: the hex SHA-256 of its UTF-8 bytes (any string, lone surrogates too)."""
    if not isinstance(subject, str) or not subject:
        raise ValueError("a subject is a non-empty string")
    return hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()


class Allowance:
    """The outcome of a spend (or a peek).

    ``ok``: the form may be issued (for a peek: a form of ``nbytes=0`` would be).
    ``remaining_forms`` / ``remaining_bytes``: left in this window after this spend (None: unlimited).
    ``resets_at``: epoch seconds when the window ends. ``retry_after``: whole seconds until then,
    at least 1, when refused (else None). ``reason``: None, ``"forms"``, ``"bytes"``, or
    ``"too_large"`` (the declared size alone exceeds the whole byte budget: waiting will not help).
    """

    __slots__ = ("ok", "remaining_forms", "remaining_bytes", "resets_at", "retry_after", "reason",
                 "limit_forms", "limit_bytes", "window")

    def __init__(self, ok, remaining_forms, remaining_bytes, resets_at, retry_after, reason, limit_forms,
                 limit_bytes, window):
        self.ok, self.remaining_forms, self.remaining_bytes = ok, remaining_forms, remaining_bytes
        self.resets_at, self.retry_after, self.reason = resets_at, retry_after, reason
        self.limit_forms, self.limit_bytes, self.window = limit_forms, limit_bytes, window

    def __repr__(self):
        return "Allowance(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"

    def headers(self):
        """``Retry-After`` when refused (a 429), nothing otherwise."""
        return {} if self.ok else {"Retry-After": str(self.retry_after)}

    def as_dict(self):
        """For ``GET /limits`` and 429 bodies."""
        return {"ok": self.ok, "forms": self.limit_forms, "bytes": self.limit_bytes, "window_seconds": self.window,
                "remaining_forms": self.remaining_forms, "remaining_bytes": self.remaining_bytes,
                "resets_at": self.resets_at, "retry_after": self.retry_after, "reason": self.reason}


class Limiter:
    """Fixed-window counters of forms and declared bytes per subject (see the module docstring)."""

    needs_credentials = False

    def __init__(self, settings):
        self.settings = settings
        self.window = settings.window

    # -------------------------------------------------------------- shared logic

    def _window(self, now):
        now = time.time() if now is None else now
        start = int(math.floor(now / self.window)) * self.window
        return now, start, start + self.window

    @staticmethod
    def _check(subject, nbytes):
        key = subject_key(subject)
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 <= nbytes <= MAX_COUNT:
            raise ValueError("nbytes is a non-negative integer (below 2**62)")
        return key

    def _decide(self, used_forms, used_bytes, nbytes):
        """None when the spend fits, else the reason it does not."""
        s = self.settings
        if s.bytes is not None and nbytes > s.bytes:
            return "too_large"
        if s.forms is not None and used_forms + 1 > s.forms:
            return "forms"
        if s.bytes is not None and used_bytes + nbytes > s.bytes:
            return "bytes"
        return None

    def _allowance(self, ok, used_forms, used_bytes, now, ends, reason=None):
        s = self.settings
        return Allowance(
            ok=ok,
            remaining_forms=None if s.forms is None else max(0, s.forms - used_forms),
            remaining_bytes=None if s.bytes is None else max(0, s.bytes - used_bytes),
            resets_at=ends,
            retry_after=None if ok else max(1, int(math.ceil(ends - now))),
            reason=reason, limit_forms=s.forms, limit_bytes=s.bytes, window=self.window)

    # -------------------------------------------------------------- interface

    def spend(self, subject, nbytes, credentials=None, now=None):
        """Count one form of ``nbytes`` declared bytes for ``subject`` if both fit; an :class:`Allowance`."""
        raise NotImplementedError

    def peek(self, subject, credentials=None, now=None):
        """What ``subject`` has left in the current window, spending nothing."""
        raise NotImplementedError

    def close(self):
        pass


# ------------------------------------------------------------------ SQLite

class SqliteLimiter(Limiter):
    """One small table, one ``BEGIN IMMEDIATE`` transaction per spend, per-thread connections (WAL).

    Windows that ended are deleted now and then (about one spend in ``prune_every``)."""

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS limits (subject TEXT NOT NULL, window_start INTEGER NOT NULL, "
               "ends_at INTEGER NOT NULL, forms INTEGER NOT NULL, bytes INTEGER NOT NULL, "
               "PRIMARY KEY (subject, window_start)) WITHOUT ROWID")
    _INDEX = "CREATE INDEX IF NOT EXISTS limits_ends_at ON limits (ends_at)"
    prune_every = 256

    def __init__(self, settings, path):
        super().__init__(settings)
        self.path = path
        from ..store.sqlite import ThreadConnections

        try:
            self._connections = ThreadConnections(path, self._setup)  # a bad path fails at start
        except (sqlite3.Error, OSError) as exc:
            raise LimitStoreError(f"sqlite file {path!r} cannot be opened: {exc}") from None
        self._conn = self._connections.get

    def _setup(self, conn):
        conn.execute(self._SCHEMA)
        conn.execute(self._INDEX)

    def _transaction(self, fn):
        """Run ``fn(conn)`` inside BEGIN IMMEDIATE (the write lock first, so no two processes
        can read the same counters and both write), retrying when the lock stays busy."""
        for attempt in range(20):
            try:
                conn = self._conn()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if attempt == 19 or not _busy(exc):
                    raise LimitStoreError(f"sqlite: {exc}") from None
                time.sleep(0.005 + random.random() * 0.02)
                continue
            except sqlite3.Error as exc:
                raise LimitStoreError(f"sqlite: {exc.__class__.__name__}") from None
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
                    raise LimitStoreError(f"sqlite: {exc.__class__.__name__}: {exc}") from None
                raise
        raise LimitStoreError("sqlite: the limits file stayed locked")

    def spend(self, subject, nbytes, credentials=None, now=None):
        key = self._check(subject, nbytes)
        now, start, ends = self._window(now)

        def work(conn):
            row = conn.execute("SELECT forms, bytes FROM limits WHERE subject=? AND window_start=?",
                               (key, start)).fetchone()
            forms, used = row if row else (0, 0)
            reason = self._decide(forms, used, nbytes)
            if reason:
                return self._allowance(False, forms, used, now, ends, reason)
            conn.execute("INSERT INTO limits (subject, window_start, ends_at, forms, bytes) VALUES (?, ?, ?, 1, ?) "
                         "ON CONFLICT (subject, window_start) DO UPDATE SET forms=forms+1, bytes=bytes+excluded.bytes",
                         (key, start, ends, nbytes))
            if random.randrange(self.prune_every) == 0:
                conn.execute("DELETE FROM limits WHERE ends_at < ?", (int(now) - 60,))
            return self._allowance(True, forms + 1, used + nbytes, now, ends)

        return self._transaction(work)

    def peek(self, subject, credentials=None, now=None):
        key = self._check(subject, 0)
        now, start, ends = self._window(now)
        try:
            row = self._conn().execute("SELECT forms, bytes FROM limits WHERE subject=? AND window_start=?",
                                       (key, start)).fetchone()
        except sqlite3.Error as exc:
            raise LimitStoreError(f"sqlite: {exc.__class__.__name__}") from None
        forms, used = row if row else (0, 0)
        reason = self._decide(forms, used, 0)
        return self._allowance(reason is None, forms, used, now, ends, reason)

    def prune(self, now=None):
        """Delete every window that has ended; the number of rows removed."""
        now = time.time() if now is None else now
        return self._transaction(lambda conn: conn.execute("DELETE FROM limits WHERE ends_at <= ?",
                                                           (int(now),)).rowcount)

    def close(self):
        self._connections.close()


def _busy(exc):
    text = str(exc)
    return "locked" in text or "busy" in text


# ------------------------------------------------------------------ Tablestore

class TablestoreLimiter(Limiter):
    """One row per (subject, window start) in a Tablestore table, written only conditionally.

    Primary key ``subject`` (STRING, the subject's SHA-256) + ``window_start`` (INTEGER); columns
    ``forms``, ``bytes``, ``ends_at`` (INTEGER). Old windows are removed by the table's TTL (at least
    a day, and at least the window: ``python -m tools.limits_setup``). The SDK client, its
    credentials provider (swapped in place when STS rotates keys) and its retry policy are the
    record store's (:class:`ossdirect.store.tablestore.TablestoreStore`), reused, not copied.

    A spend reads the row (``GetRow``) and writes it back conditionally; the value this instance
    last saw for a (subject, window) is kept as a guess (a small bounded map), so a subject's next
    spend on the same instance goes straight to the conditional write (one round trip), falling back
    to a read when another instance has moved the counter. A guess can only be *behind* the row
    (counters only grow within a window), so refusing on a guess is always right.
    """

    needs_credentials = True
    PK = (("subject", "STRING"), ("window_start", "INTEGER"))
    max_attempts = 32
    guesses = 4096

    def __init__(self, settings, instance, table, endpoint, region=None, timeout=2.0):
        super().__init__(settings)
        from ..store import RecordStoreError
        from ..store.tablestore import TablestoreStore  # imports the SDK: only when configured

        try:
            self.store = TablestoreStore(instance, table, endpoint, region, timeout)
        except RecordStoreError as exc:
            raise LimitStoreError(f"{PREFIX}LIMITS_STORE: {exc}") from None
        self._RecordStoreError = RecordStoreError
        self._ts = self.store._ts
        self.table = table
        self._guess = {}  # (key, window start) -> (forms, bytes) last seen
        self._guess_lock = threading.Lock()

    def client(self, credentials):
        try:
            return self.store.client(credentials)
        except self._RecordStoreError as exc:
            raise LimitStoreError(str(exc)) from None

    def _call(self, what, fn, *args, **kwargs):
        """The record store's error mapping; a failed condition comes back as False."""
        try:
            return self.store._call(what, fn, *args, **kwargs)
        except self._RecordStoreError as exc:
            if getattr(exc, "code", None) == "OTSConditionCheckFail":
                return False
            raise LimitStoreError(str(exc)) from None

    def _read(self, client, key, start):
        result = self._call("GetRow", client.get_row, self.table, [("subject", key), ("window_start", start)],
                            columns_to_get=["forms", "bytes"], max_version=1)
        row = result[1]
        if row is None:
            return None
        columns = {c[0]: c[1] for c in row.attribute_columns}
        return columns.get("forms", 0), columns.get("bytes", 0)

    def _remember(self, key, start, value):
        with self._guess_lock:
            self._guess.pop((key, start), None)
            if value is not None:
                self._guess[(key, start)] = value
                while len(self._guess) > self.guesses:
                    self._guess.pop(next(iter(self._guess)))

    def spend(self, subject, nbytes, credentials=None, now=None):
        ts = self._ts
        key = self._check(subject, nbytes)
        now, start, ends = self._window(now)
        client = self.client(credentials)
        pk = [("subject", key), ("window_start", start)]
        with self._guess_lock:
            current = self._guess.get((key, start))
        fresh = current is None
        for attempt in range(self.max_attempts):
            if fresh:
                current = self._read(client, key, start)
            forms, used = current if current is not None else (0, 0)
            reason = self._decide(forms, used, nbytes)
            if reason:
                self._remember(key, start, current)
                return self._allowance(False, forms, used, now, ends, reason)
            values = [("forms", forms + 1), ("bytes", used + nbytes), ("ends_at", ends)]
            if current is None:  # the first spend of this window creates the row, once
                done = self._call("PutRow", client.put_row, self.table, ts.Row(pk, values),
                                  ts.Condition(ts.RowExistenceExpectation.EXPECT_NOT_EXIST))
            else:  # only while nobody has spent since we read
                condition = ts.Condition(ts.RowExistenceExpectation.EXPECT_EXIST,
                                         ts.SingleColumnCondition("forms", forms, ts.ComparatorType.EQUAL, False))
                done = self._call("UpdateRow", client.update_row, self.table, ts.Row(pk, {"PUT": values}),
                                  condition)
            if done is not False:
                self._remember(key, start, (forms + 1, used + nbytes))
                return self._allowance(True, forms + 1, used + nbytes, now, ends)
            fresh = True  # another instance spent first: read again
            if attempt:
                time.sleep(random.random() * min(0.05, 0.002 * (2 ** attempt)))
        self._remember(key, start, None)
        raise LimitStoreError(f"tablestore: no spend after {self.max_attempts} conflicting attempts")

    def peek(self, subject, credentials=None, now=None):
        key = self._check(subject, 0)
        now, start, ends = self._window(now)
        current = self._read(self.client(credentials), key, start)
        self._remember(key, start, current)
        forms, used = current if current is not None else (0, 0)
        reason = self._decide(forms, used, 0)
        return self._allowance(reason is None, forms, used, now, ends, reason)

    def close(self):
        self.store.close()


def open_limiter(settings):
    """The limiter ``settings.store`` names (the Tablestore SDK is imported only for tablestore://)."""
    kind, where = parse_store_url(settings.store)
    if kind == "sqlite":
        return SqliteLimiter(settings, where)
    instance, table, endpoint, region, timeout = where
    return TablestoreLimiter(settings, instance, table, endpoint, region, timeout)
