"""An authoritative store followed by an append-only log (proposed wiring):

    OSSDIRECT_RECORDS=tablestore://<instance>/<table>?endpoint=...
    OSSDIRECT_RECORD_LOG=sls://<project>/<logstore>?endpoint=...

``put`` and ``update`` go to the authoritative store first; only what it created or applied is then
appended to the log. A failed append never fails the call and never loses the record (the table
has it): it is reported on stderr as one JSON line ``{"ossdirect_record_log_failed": ...}`` so the
log can be backfilled from the table (``list_records`` by time).
"""

import json
import sys

from . import RecordStore, RecordStoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Dict, List, Optional, Tuple

    from ..oss.credentials import Credentials
    from . import Record


class ChainStore(RecordStore):
    can_read = True

    def __init__(self, primary: RecordStore, log: RecordStore, stream: "Optional[IO[str]]" = None) -> None:
        self.primary, self.log, self.stream = primary, log, stream
        self.needs_credentials = primary.needs_credentials or log.needs_credentials
        self.log_failures = 0

    def _append(self, record: "Record", credentials: "Optional[Credentials]") -> None:
        try:
            if hasattr(self.log, "append"):
                self.log.append(record, credentials)
            else:
                self.log.put(record, credentials)
        except (RecordStoreError, OSError) as exc:
            self.log_failures += 1
            line = json.dumps({"ossdirect_record_log_failed": {"upload_id": record.get("upload_id"),
                                                               "record_id": record.get("record_id"),
                                                               "error": str(exc)}})
            stream = self.stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()

    def put(self, record: "Record", credentials: "Optional[Credentials]" = None) -> "Tuple[Record, bool]":
        stored, created = self.primary.put(record, credentials)
        if created:
            self._append(stored, credentials)
        return stored, created

    def get(self, upload_id: str, credentials: "Optional[Credentials]" = None) -> "Optional[Record]":
        return self.primary.get(upload_id, credentials)

    def update(self, upload_id: str, expected: "Record", changes: "Record",
               credentials: "Optional[Credentials]" = None) -> "Tuple[Optional[Record], bool]":
        record, applied = self.primary.update(upload_id, expected, changes, credentials)
        if applied and record is not None:
            self._append(record, credentials)
        return record, applied

    def list_records(self, *args: "Any", **kwargs: "Any") -> "Tuple[List[Record], Optional[str]]":
        found: "Tuple[List[Record], Optional[str]]" = self.primary.list_records(  # type: ignore[attr-defined]
            *args, **kwargs)
        return found

    def close(self) -> None:
        self.primary.close()
        self.log.close()
