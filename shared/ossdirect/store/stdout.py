"""Append-only stores (stdout here; SLS in :mod:`.sls`): they cannot look records up.

Duplicates are suppressed within one instance; across instances, dedupe downstream by
``upload_id`` (every entry has it), or use a store that can read (SQLite, Tablestore).
"""

import json
import sys
import threading
from collections import OrderedDict

from . import RECORD_FIELDS, RecordStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Dict, List, Optional, Tuple

    from ..oss.credentials import Credentials
    from . import Record


class AppendOnlyStore(RecordStore):
    can_read = False

    def __init__(self, remember: int = 4096) -> None:
        self._seen: "OrderedDict[Optional[str], Record]" = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()

    def put(self, record: "Record", credentials: "Optional[Credentials]" = None) -> "Tuple[Record, bool]":
        upload_id = record.get("upload_id")
        with self._lock:
            first = self._seen.get(upload_id)
            if first is not None:
                return first, False
        self.append(record, credentials)  # raises RecordStoreError: nothing remembered
        self._remember_record(record)
        return record, True

    def get(self, upload_id: str, credentials: "Optional[Credentials]" = None) -> "Optional[Record]":
        with self._lock:
            return self._seen.get(upload_id)

    def update(self, upload_id: str, expected: "Record", changes: "Record",
               credentials: "Optional[Credentials]" = None) -> "Tuple[Optional[Record], bool]":
        """Append the changed record (a later line supersedes an earlier one downstream)."""
        current = self.get(upload_id) or {"upload_id": upload_id}
        if any(current.get(k) != v for k, v in expected.items()):
            return current, False
        record = dict(current, **changes)
        self.append(record, credentials)
        self._remember_record(record)
        return record, True

    def _remember_record(self, record: "Record") -> None:
        with self._lock:
            self._seen[record.get("upload_id")] = record
            self._seen.move_to_end(record.get("upload_id"))
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)

    def append(self, record: "Record", credentials: "Optional[Credentials]") -> None:
        raise NotImplementedError


class StdoutStore(AppendOnlyStore):
    """One JSON line per record on stdout, for FC's logConfig to ship."""

    def __init__(self, stream: "Optional[IO[str]]" = None) -> None:
        super().__init__()
        self.stream = stream

    def append(self, record: "Record", credentials: "Optional[Credentials]") -> None:
        line = json.dumps({"ossdirect_record": {f: record.get(f) for f in RECORD_FIELDS}},
                          separators=(",", ":"), ensure_ascii=False)
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()
