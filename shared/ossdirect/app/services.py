"""The signature function's services, built once per App: forms, records, allowances, multipart, files.

Each is opened on first use (a form request never opens the record store nor loads multipart), takes
its dependencies explicitly and raises domain errors (:mod:`ossdirect.errors`), never HTTP answers.
"""

from __future__ import annotations

from .. import errors as E
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from ..core.files import FileService
    from ..core.forms import FormIssuer, Grant
    from ..core.limits import Allowance, Limiter
    from ..core.multipart import Multipart
    from ..oss.credentials import Credentials
    Config = Any  # ossdirect.settings.Config: its attributes are set from the settings table, not declared
    from ..store import RecordStore

RECORD_ANSWER_FIELDS = ("upload_id", "record_id", "key", "size", "etag", "content_type", "filename", "created_at",
                        "source", "status", "status_reason", "user", "payload", "content_type_detected",
                        "hook_status")


class Records:
    """The record store as the signature function reads it: opened on first use, shared, readable."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._store: RecordStore | None = None

    def readable(self) -> RecordStore:
        """The store, or unavailable (cannot be opened, or a per-instance SQLite file) / not implemented
        (append-only)."""
        if not self.config.shared_records() and self.config.records.startswith("sqlite:"):
            raise OssdirectError(
                "SharedStoreRequired",
                "this route needs records every instance shares, and OSSDIRECT_RECORDS is a SQLite file "
                "each Function Compute instance keeps to itself: set tablestore://<instance>/<table>", E.UNAVAILABLE)
        if self._store is None:  # opened on first use: forms never pay for it
            from ..store import RecordStoreError, open_record_store

            try:
                self._store = open_record_store(self.config, log=False)  # sessions and lookups: no log
            except (RecordStoreError, OSError) as exc:
                raise OssdirectError("RecordStoreUnavailable", f"the records cannot be opened ({exc})",
                                     E.UNAVAILABLE) from None
        if not self._store.can_read:
            raise OssdirectError(
                "RecordLookupUnsupported",
                "this record store is append-only (stdout/SLS): use sqlite or tablestore to look records up",
                E.NOT_IMPLEMENTED)
        return self._store

    def lookup(self, upload_id: str, credentials: Callable[[], Credentials]) -> dict[str, Any] | None:
        """The record of ``upload_id`` (None: none, or a multipart session, which is not a record)."""
        if not (upload_id.isascii() and upload_id.replace("-", "").replace(":", "").isalnum()
                and len(upload_id) <= 128):
            raise OssdirectError("InvalidUploadId", "not an upload id", E.INVALID)
        store = self.readable()
        creds = credentials() if store.needs_credentials else None
        from ..store import RecordStoreError, Status

        try:
            found = store.get(upload_id, creds)
        except RecordStoreError as exc:
            raise OssdirectError("RecordStoreUnavailable", f"the records cannot be read ({exc})", E.UNAVAILABLE) \
                from None
        if found is not None and found.get("status") in Status.SESSIONS:
            return None  # a multipart upload in progress (or aborted) is not a record
        return found


class Allowances:
    """The per-user (else per-address) upload allowances (:mod:`ossdirect.core.limits`) as domain errors."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    @property
    def needs_credentials(self) -> bool:
        return bool(self.limiter.needs_credentials)

    def _call(self, method: str, user: str | None, source_ip: str, *args: Any) -> Allowance | None:
        """Run limiter.spend/peek for this caller (signed-in user, else client IP); None if nobody to count."""
        from ..core.limits import LimitStoreError, subject_for

        subject = subject_for(self.limiter.settings, user, source_ip)
        if subject is None:
            return None
        try:
            allowance: Allowance = getattr(self.limiter, method)(subject, *args)
        except LimitStoreError as exc:
            raise OssdirectError("LimitStoreUnavailable", f"the upload allowance cannot be checked ({exc})",
                                 E.UNAVAILABLE) from None
        return allowance

    def spend(self, grant: Grant, nbytes: int, creds: Credentials, source_ip: str, upload_id: str | None = None,
              expires_at: float | None = None) -> None:
        """Take one upload of ``nbytes`` from the caller's allowance, or too many (429, Retry-After); with
        ``stored=``, first reserve ``nbytes`` of a signed-in user's storage for ``upload_id`` until
        ``expires_at``, or 403 StorageQuotaExceeded (the reservation is undone if the window refuses)."""
        reserved = self._reserve(grant.user, upload_id, nbytes, expires_at, creds)
        try:
            allowance = (self._call("spend", grant.user, source_ip, nbytes, creds)
                         if self.limiter.settings.forms is not None or self.limiter.settings.bytes is not None
                         else None)
        except OssdirectError:
            self._undo(grant.user, upload_id, reserved, creds)
            raise
        if allowance is not None and not allowance.ok:
            self._undo(grant.user, upload_id, reserved, creds)
            raise OssdirectError("UserLimitExceeded", "this upload would exceed your allowance" + (
                "" if allowance.reason == "too_large" else f"; try again in {allowance.retry_after} s"),
                E.TOO_MANY, headers=allowance.headers())

    def _quota(self, method: str, *args: Any) -> Any:
        from ..core.limits import LimitStoreError

        try:
            return getattr(self.limiter, method)(*args)
        except LimitStoreError as exc:
            raise OssdirectError("LimitStoreUnavailable", f"the storage quota cannot be checked ({exc})",
                                 E.UNAVAILABLE) from None

    def _reserve(self, user: str | None, upload_id: str | None, nbytes: int, expires_at: float | None,
                 creds: Credentials) -> bool:
        if self.limiter.settings.stored is None or not user or not upload_id or expires_at is None:
            return False  # no quota, or nobody who could ever delete what they hold (anonymous)
        cred = creds if self.needs_credentials else None
        quota = self._quota("reserve", user, upload_id, nbytes, expires_at, cred)
        if not quota.ok:
            raise OssdirectError(
                "StorageQuotaExceeded",
                f"this upload of {nbytes} bytes would pass your storage limit of {quota.limit} bytes: you hold "
                f"{quota.held} bytes and {quota.reserved} more are reserved by forms not yet used (they are "
                "released when those forms expire); delete files to make room", E.FORBIDDEN)
        return True

    def _undo(self, user: str | None, upload_id: str | None, reserved: bool, creds: Credentials) -> None:
        if reserved and user and upload_id:
            self._quota("release", user, upload_id, creds if self.needs_credentials else None)

    def release(self, user: str | None, upload_id: str, creds: Credentials) -> None:
        """``upload_id``'s reservation or holding goes (a multipart upload aborted, a file deleted)."""
        if self.limiter.settings.stored is not None and user:
            self._quota("release", user, upload_id, creds if self.needs_credentials else None)

    def quota(self, user: str | None, creds: Credentials | None) -> Any:
        """The signed-in user's stored bytes (a :class:`ossdirect.core.limits.Quota`), or None."""
        if self.limiter.settings.stored is None or not user:
            return None
        return self._quota("quota", user, creds)

    def peek(self, user: str | None, source_ip: str, creds: Credentials | None) -> Allowance | None:
        return self._call("peek", user, source_ip, creds)


class Services:
    """What the signature function's routes call: built once per App, each service opened on first use."""

    def __init__(self, config: Config, forms: FormIssuer, new_upload_id: Callable[[], str],
                 allowances: Allowances | None = None) -> None:
        self.config, self.forms, self.new_upload_id, self.allowances = config, forms, new_upload_id, allowances
        self.records = Records(config)
        self._multipart: Multipart | None = None
        self._files: FileService | None = None

    @property
    def multipart(self) -> Multipart:
        if self._multipart is None:
            from ..core.multipart import Multipart

            self._multipart = Multipart(self.config, self.records.readable, self.new_upload_id,
                                        callback_b64=self.forms.callback_b64,
                                        spend=self.allowances.spend if self.allowances is not None else None,
                                        release=self.allowances.release if self.allowances is not None else None)
        return self._multipart

    @property
    def files(self) -> FileService:
        if self._files is None:
            from ..core.files import FileService
            from ..oss.client import OssClient

            config = self.config
            self._files = FileService(config, self.records.readable(),
                                      OssClient(config.oss_endpoint, config.bucket, config.region, timeout=5.0),
                                      OssClient(config.upload_host, config.bucket, config.region),
                                      release=self.allowances.release if self.allowances is not None else None)
        return self._files
