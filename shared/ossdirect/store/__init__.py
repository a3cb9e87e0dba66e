"""Where uploads are recorded (exactly once per upload id, whichever writer comes first), and where
the per-user allowances are counted.

One small interface, one module per backend (picked by ``OSSDIRECT_RECORDS``):

- ``sqlite:///path`` (:mod:`.sqlite`): the embedded default, safe with concurrent writers on one disk;
- ``stdout`` (:mod:`.stdout`): JSON lines for Function Compute's log config;
- ``sls://project/logstore?endpoint=...`` (:mod:`.sls`): Simple Log Service, append-only;
- ``tablestore://instance/table?endpoint=...`` (:mod:`.tablestore`): shared by every instance, with
  conditional writes: the recommended cloud store. ``OSSDIRECT_RECORD_LOG=sls://...`` then appends
  each record to SLS after the table (:mod:`.chain`). :func:`open_record_store` does that assembly.

``put(record)`` returns ``(stored_record, created)``: a later writer for the same upload id gets
the first record back and writes nothing. ``update(upload_id, expected, changes)`` changes a record
only while it still holds the ``expected`` values, so two writers never overwrite each other's facts.

The allowance counters (:mod:`.allowances`, what :mod:`ossdirect.core.limits` counts) sit on the same
plumbing: :func:`.sqlite.connect_wal` / :class:`.sqlite.ThreadConnections` and
:class:`.tablestore.TablestoreBackend`.
"""

import math
import os
import time
from ..errors import OssdirectError

TYPE_CHECKING = False  # typing is not imported at run time (cold start); mypy reads the branch below
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Protocol, Tuple

    from ..oss.credentials import Credentials

    Record = Dict[str, Any]  # one upload's facts: the keys are RECORD_FIELDS, absent facts are None

    class RecordSettings(Protocol):
        """What :func:`open_record_store` reads from the settings (read-only: any settings object fits)."""

        @property
        def records(self) -> str: ...

        @property
        def record_log(self) -> Optional[str]: ...
else:
    Record = dict

RECORD_FIELDS = (
    "record_id", "upload_id", "bucket", "key", "size", "etag", "content_type", "crc64",
    "content_md5", "filename", "client_ip", "oss_request_id", "image_width", "image_height",
    "image_format", "created_at",
    # which path wrote it (callback | event), what the checks decided, and who uploaded
    "source", "status", "status_reason", "user", "payload", "updated_at",
    # the event path (events.py): what the content check found, where a quarantined object went,
    # and the user's hook (claimed once: None/retry -> running -> done | retry | failed)
    "content_type_detected", "quarantined_to", "hook_status", "hook_attempts", "hook_error", "hook_started_at",
    # a multipart upload's session (status "uploading" until the callback records it): OSS's UploadId
    "multipart_id",
)


class Status:
    """Every value of a record's ``status`` (plain strings: stored, logged and compared as such)."""

    RECORDED = "recorded"        # the callback (or the event path) recorded a good upload
    CORRUPT = "corrupt"          # OSS computed another CRC-64 than the client read: never a good upload
    SUSPECT = "suspect"          # the content check disagreed, left in place (quarantine off)
    QUARANTINED = "quarantined"  # the content check disagreed: made private or moved (``quarantined_to``)
    FOREIGN = "foreign"          # in the bucket, but no form of ours wrote it
    DERIVED = "derived"          # written by the user's hook for another record
    UPLOADING = "uploading"      # a multipart session before its object exists
    ABORTED = "aborted"          # a multipart session given up
    DELETED = "deleted"          # deleted by its owner

    SESSIONS = (UPLOADING, ABORTED)  # multipart sessions kept in the record store: not records (yet)


class HookStatus:
    """Every value of a record's ``hook_status`` (None: not claimed yet)."""

    RUNNING = "running"
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"


class StoreError(OssdirectError):
    """A store could not be read or written. ``code``: the service's error code, when it gave one."""

    def __init__(self, message: str, code: "Optional[str]" = None) -> None:
        super().__init__(message)
        if code is not None:  # else the root's default ("InternalError")
            self.code = code


class RecordStoreError(StoreError):
    """The record could not be written or read (the callback answers 503)."""


class RecordStore:
    """The interface every backend implements."""

    needs_credentials = False
    can_read = True  # append-only logs cannot look a record up

    def put(self, record: "Record", credentials: "Optional[Credentials]" = None) -> "Tuple[Record, bool]":
        """Write ``record`` unless its upload id is recorded; return ``(stored, created)``."""
        raise NotImplementedError

    def get(self, upload_id: str, credentials: "Optional[Credentials]" = None) -> "Optional[Record]":
        """The record for ``upload_id``, or None."""
        raise NotImplementedError

    def update(self, upload_id: str, expected: "Record", changes: "Record",
               credentials: "Optional[Credentials]" = None) -> "Tuple[Optional[Record], bool]":
        """Apply ``changes`` only if every field in ``expected`` still has that value.

        Returns ``(record, applied)``: the record as stored after the attempt."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def open_store(url: str) -> RecordStore:
    """Open the one record store ``url`` names (each backend imported only when named)."""
    if url == "stdout":
        from .stdout import StdoutStore

        return StdoutStore()
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteStore

        return SqliteStore(url[len("sqlite:///"):])
    if url.startswith("sls://"):
        from .sls import SlsStore

        return SlsStore.from_url(url)
    if url.startswith("tablestore://"):
        from .tablestore import TablestoreStore  # its protocol client, only when named

        return TablestoreStore.from_url(url)
    raise RecordStoreError(f"unknown record store {url!r}")


def open_record_store(settings: "RecordSettings", log: bool = True) -> RecordStore:
    """The record store the settings name (``OSSDIRECT_RECORDS``), followed by the append-only log
    (``OSSDIRECT_RECORD_LOG``) when one is set and ``log`` is true: the authoritative store first.
    Raises :class:`RecordStoreError` (or OSError) when a store cannot be opened."""
    store = open_store(settings.records)
    if log and settings.record_log:
        from .chain import ChainStore

        store = ChainStore(store, open_store(settings.record_log))
    return store


def utc_stamp(when: float | None = None) -> str:
    """A record's timestamp, ``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC (microseconds, as ``datetime`` writes it),
    from ``time``: importing ``datetime`` costs a cold start ~1.5 ms for this one string."""
    frac, seconds = math.modf(time.time() if when is None else when)
    micros = round(frac * 1e6)  # rounded as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%06dZ" % micros


def new_record_id() -> str:
    # Sortable by time, unique enough for one bucket: ms timestamp + 48 random bits.
    return f"rec_{int(time.time() * 1000):013x}{os.urandom(6).hex()}"
