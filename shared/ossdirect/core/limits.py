"""Abuse limits: at most N forms and B declared bytes per user (or client IP) per window, and at most
S bytes held in the bucket per signed-in user (``stored=``, no window).

    OSSDIRECT_USER_LIMITS=forms=20,bytes=1073741824,window=3600,stored=10737418240
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

**Stored bytes** (``stored=N``): what a signed-in user may hold in the bucket at once, no window.
Signing a form *reserves* its declared maximum (until the form expires, plus a grace for an upload
still in flight), refused when held + reserved + size would pass ``N``; recording the upload (the
callback or the event path, whichever creates the record: records are exactly-once) turns the
reservation into the object's real size from OSS (HeadObject); deleting the file releases it; an
aborted (or swept) multipart upload releases its reservation. A quota store failing at record time
is logged (``quota_not_settled``) and that upload is not counted: the upload itself never fails for it.
Quarantined and corrupt objects still count until deleted (they occupy storage). Only users count:
an anonymous caller (``ip:…``) holds no storage it could ever delete.

This module is the policy (what is counted, the windows, the subjects); the counters live in
:mod:`ossdirect.store.allowances`. State must be shared by every function instance: SQLite only where
they share one disk (the local stack, a single-instance setup); Tablestore in the cloud (through
the store's own protocol client; the SDK is for the setup tool only). Store failures raise :class:`LimitStoreError`
(the caller decides whether to fail closed, 503, or open).
"""

import hashlib
import math
import time

from ..settings import DEFAULT_LIMITS_STORE as DEFAULT_STORE
from ..settings import DEFAULT_WINDOW, MAX_COUNT, PREFIX, LimitSettings, parse_store_url, section_names
from ..errors import OssdirectError
from ..store import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional, Tuple, Union

    from ..oss.credentials import Credentials
    from ..store.allowances import SqliteAllowances, TablestoreAllowances

# Every variable load_limit_settings reads, without the prefix (the settings table's limits rows).
LIMIT_ENV_NAMES = section_names("limits")
TTL_MIN = 86400  # the service's smallest table TTL


class LimitStoreError(OssdirectError):
    """The limits store could not be read or written."""


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


RESERVE_GRACE = 600  # seconds a reservation outlives its form: an upload started at the last moment


class Quota:
    """The stored-bytes quota of one user: ``held`` (recorded objects), ``reserved`` (signed forms
    not yet recorded), ``limit``; ``ok`` False when a reservation was refused."""

    __slots__ = ("ok", "held", "reserved", "limit")

    def __init__(self, ok: bool, held: int, reserved: int, limit: int) -> None:
        self.ok, self.held, self.reserved, self.limit = ok, held, reserved, limit

    def __repr__(self) -> str:
        return f"Quota(ok={self.ok!r}, held={self.held!r}, reserved={self.reserved!r}, limit={self.limit!r})"

    def as_dict(self) -> "dict[str, int]":
        return {"used": self.held, "reserved": self.reserved, "limit": self.limit,
                "remaining": max(0, self.limit - self.held - self.reserved)}


class Limiter:
    """Fixed-window counters of forms and declared bytes per subject (see the module docstring):
    the policy here, the counters in ``store`` (:mod:`ossdirect.store.allowances`)."""

    needs_credentials = False

    def __init__(self, settings: LimitSettings, store: "Union[SqliteAllowances, TablestoreAllowances]") -> None:
        self.settings = settings
        self.window = settings.window
        self.store = store
        self.needs_credentials = store.needs_credentials

    # -------------------------------------------------------------- shared logic

    def _window(self, now: "Optional[float]") -> "Tuple[float, int, int]":
        now = time.time() if now is None else now
        start = int(math.floor(now / self.window)) * self.window
        return now, start, start + self.window

    @staticmethod
    def _check(subject: str, nbytes: int) -> str:
        key = subject_key(subject)
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 <= nbytes <= MAX_COUNT:
            raise ValueError("nbytes is a non-negative integer (below 2**62)")
        return key

    def _decide(self, used_forms: int, used_bytes: int, nbytes: int) -> "Optional[str]":
        """None when the spend fits, else the reason it does not."""
        s = self.settings
        if s.bytes is not None and nbytes > s.bytes:
            return "too_large"
        if s.forms is not None and used_forms + 1 > s.forms:
            return "forms"
        if s.bytes is not None and used_bytes + nbytes > s.bytes:
            return "bytes"
        return None

    def _allowance(self, ok: bool, used_forms: int, used_bytes: int, now: float, ends: int,
                   reason: "Optional[str]" = None) -> "Allowance":
        s = self.settings
        return Allowance(
            ok=ok,
            remaining_forms=None if s.forms is None else max(0, s.forms - used_forms),
            remaining_bytes=None if s.bytes is None else max(0, s.bytes - used_bytes),
            resets_at=ends,
            retry_after=None if ok else max(1, int(math.ceil(ends - now))),
            reason=reason, limit_forms=s.forms, limit_bytes=s.bytes, window=self.window)

    # -------------------------------------------------------------- interface

    def spend(self, subject: str, nbytes: int, credentials: "Optional[Credentials]" = None,
              now: "Optional[float]" = None) -> "Allowance":
        """Count one form of ``nbytes`` declared bytes for ``subject`` if both fit; an :class:`Allowance`."""
        key = self._check(subject, nbytes)
        now, start, ends = self._window(now)
        try:
            forms, used, reason = self.store.spend(key, start, ends, nbytes,
                                                   lambda f, b: self._decide(f, b, nbytes), credentials, now)
        except StoreError as exc:
            raise LimitStoreError(str(exc)) from None
        return self._allowance(reason is None, forms, used, now, ends, reason)

    def peek(self, subject: str, credentials: "Optional[Credentials]" = None,
             now: "Optional[float]" = None) -> "Allowance":
        """What ``subject`` has left in the current window, spending nothing."""
        key = self._check(subject, 0)
        now, start, ends = self._window(now)
        try:
            forms, used = self.store.read(key, start, credentials)
        except StoreError as exc:
            raise LimitStoreError(str(exc)) from None
        reason = self._decide(forms, used, 0)
        return self._allowance(reason is None, forms, used, now, ends, reason)

    # -------------------------------------------------------------- stored bytes (stored=)

    def _quota_call(self, method: str, user: str, *args: "Any") -> "Any":
        key = subject_key(f"user:{user}")
        try:
            return getattr(self.store, method)(key, *args)
        except StoreError as exc:
            raise LimitStoreError(str(exc)) from None

    def reserve(self, user: str, upload_id: str, nbytes: int, expires_at: float,
                credentials: "Optional[Credentials]" = None, now: "Optional[float]" = None) -> "Quota":
        """Reserve ``nbytes`` of ``user``'s stored allowance for ``upload_id`` until ``expires_at``
        (+ :data:`RESERVE_GRACE`), if it fits; the :class:`Quota` as it was before."""
        limit = self.settings.stored
        assert limit is not None
        self._check(f"user:{user}", nbytes)
        now = time.time() if now is None else now
        ok, held, reserved = self._quota_call("reserve", user, upload_id, nbytes,
                                              int(expires_at) + RESERVE_GRACE, limit, credentials, now)
        return Quota(ok, held, reserved, limit)

    def settle(self, user: str, upload_id: str, nbytes: int, credentials: "Optional[Credentials]" = None,
               now: "Optional[float]" = None) -> None:
        """``upload_id`` is recorded: ``user`` now holds its real size (its reservation, if any, goes)."""
        self._quota_call("settle", user, upload_id, int(nbytes), credentials, time.time() if now is None else now)

    def release(self, user: str, upload_id: str, credentials: "Optional[Credentials]" = None,
                now: "Optional[float]" = None) -> None:
        """``upload_id`` no longer occupies ``user``'s storage (deleted, or its upload aborted)."""
        self._quota_call("release", user, upload_id, credentials, time.time() if now is None else now)

    def quota(self, user: str, credentials: "Optional[Credentials]" = None,
              now: "Optional[float]" = None) -> "Quota":
        """``user``'s stored bytes now, reserving nothing."""
        limit = self.settings.stored
        assert limit is not None
        held, reserved = self._quota_call("usage", user, credentials, time.time() if now is None else now)
        return Quota(held + reserved <= limit, held, reserved, limit)

    def close(self) -> None:
        self.store.close()


class SqliteLimiter(Limiter):
    """The policy on a SQLite file (:class:`ossdirect.store.allowances.SqliteAllowances`): one instance,
    or every process on one disk."""

    store: "SqliteAllowances"

    def __init__(self, settings: LimitSettings, path: str) -> None:
        from ..store.allowances import SqliteAllowances

        try:
            store = SqliteAllowances(path)  # a bad path fails at start
        except StoreError as exc:
            raise LimitStoreError(str(exc)) from None
        super().__init__(settings, store)
        self.path = path
        self._conn = store.connection

    @property
    def prune_every(self) -> int:
        """About one spend in this many deletes the windows that ended (the store's setting)."""
        return self.store.prune_every

    @prune_every.setter
    def prune_every(self, value: int) -> None:
        self.store.prune_every = value

    def prune(self, now: "Optional[float]" = None) -> int:
        """Delete every window that has ended; the number of rows removed."""
        try:
            return self.store.prune(time.time() if now is None else now)
        except StoreError as exc:
            raise LimitStoreError(str(exc)) from None


class TablestoreLimiter(Limiter):
    """The policy on a Tablestore table (:class:`ossdirect.store.allowances.TablestoreAllowances`),
    shared by every instance."""

    store: "TablestoreAllowances"

    def __init__(self, settings: LimitSettings, instance: str, table: str, endpoint: str,
                 region: "Optional[str]" = None, timeout: float = 2.0) -> None:
        from ..store.allowances import TablestoreAllowances  # only when configured (no SDK: store/ots_wire.py)

        try:
            store = TablestoreAllowances(instance, table, endpoint, region, timeout)
        except StoreError as exc:
            raise LimitStoreError(f"{PREFIX}LIMITS_STORE: {exc}") from None
        super().__init__(settings, store)
        self.table = table

    def client(self, credentials: "Optional[Credentials]") -> "Any":
        """The Tablestore SDK's client (for ``tools.limits_setup``; the limiter itself never imports it)."""
        try:
            return self.store.client(credentials)
        except StoreError as exc:
            raise LimitStoreError(str(exc)) from None


def open_limiter(settings: LimitSettings) -> Limiter:
    """The limiter ``settings.store`` names (the Tablestore store is imported only for tablestore://)."""
    kind, where = parse_store_url(settings.store)
    if kind == "sqlite":
        return SqliteLimiter(settings, where)
    instance, table, endpoint, region, timeout = where
    return TablestoreLimiter(settings, instance, table, endpoint, region, timeout)
