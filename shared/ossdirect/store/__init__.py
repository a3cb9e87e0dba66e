"""Where uploads are recorded: exactly once per upload id, whichever writer comes first.

One small interface, one module per backend (picked by ``OSSDIRECT_RECORDS``):

- ``sqlite:///path`` (:mod:`.sqlite`): the embedded default, safe with concurrent writers on one disk;
- ``stdout`` (:mod:`.stdout`): JSON lines for Function Compute's log config;
- ``sls://project/logstore?endpoint=...`` (:mod:`.sls`): Simple Log Service, append-only;
- ``tablestore://instance/table?endpoint=...`` (:mod:`.tablestore`): shared by every instance, with
  conditional writes: the recommended cloud store. ``OSSDIRECT_RECORD_LOG=sls://...`` then appends
  each record to SLS after the table (:mod:`.chain`).

``put(record)`` returns ``(stored_record, created)``: a later writer for the same upload id gets
the first record back and writes nothing. ``update(upload_id, expected, changes)`` changes a record
only while it still holds the ``expected`` values, so two writers never overwrite each other's facts.
"""

import os
import time
from ..errors import OssdirectError

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


class RecordStoreError(OssdirectError):
    """The record could not be written or read (the callback answers 503)."""


class RecordStore:
    """The interface every backend implements."""

    needs_credentials = False
    can_read = True  # append-only logs cannot look a record up

    def put(self, record, credentials=None):
        """Write ``record`` unless its upload id is recorded; return ``(stored, created)``."""
        raise NotImplementedError

    def get(self, upload_id, credentials=None):
        """The record for ``upload_id``, or None."""
        raise NotImplementedError

    def update(self, upload_id, expected, changes, credentials=None):
        """Apply ``changes`` only if every field in ``expected`` still has that value.

        Returns ``(record, applied)``: the record as stored after the attempt."""
        raise NotImplementedError

    def close(self):
        pass


def open_store(url):
    """Open the record store named by ``OSSDIRECT_RECORDS`` (each backend imported only when named)."""
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
        from .tablestore import TablestoreStore  # the SDK costs ~0.5 s to import: only when named

        return TablestoreStore.from_url(url)
    raise RecordStoreError(f"unknown record store {url!r}")


def new_record_id():
    # Sortable by time, unique enough for one bucket: ms timestamp + 48 random bits.
    return f"rec_{int(time.time() * 1000):013x}{os.urandom(6).hex()}"
