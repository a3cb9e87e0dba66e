"""Reconcile the bucket's prefix with the record store: ``python -m ossdirect reconcile [--fix]``.

Findings, one per object:

- ``unrecorded``: stored under the prefix, no record (the callback and the event both missed it);
  ``--fix`` records it through :meth:`ossdirect.events.Processor.process_object`, the event path
  itself (HeadObject, record once, content check, quarantine, hook);
- ``missing``: recorded, but the object is gone (deleted outside our path);
- ``quarantined``: recorded as quarantined (moved to the quarantine prefix, or made private).

Memory stays bounded whatever the bucket holds: the records are paged (``store.list_records``) into
a temporary SQLite index on disk (key -> record), then the prefix is paged (ListObjectsV2, 1,000 keys
a call) against it; only one page of each is ever in memory. Every candidate is confirmed before it
is reported (HeadObject + the record by upload id), so an upload landing during the run is not
reported as a problem.
"""

import json
import os
import sqlite3
import tempfile
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from .events import foreign_id
from .forms import UPLOAD_ID_META
from ..store import Status

if TYPE_CHECKING:
    from ..oss.credentials import Credentials
    from .events import Processor

Finding = dict[str, Any]

_META_UPLOAD_ID = UPLOAD_ID_META[len("x-oss-meta-"):]


def _index_records(store: Any, credentials: "Credentials", page_size: int) -> tuple[sqlite3.Connection, str, int]:
    fd, path = tempfile.mkstemp(prefix="ossdirect-reconcile-", suffix=".sqlite3")
    os.close(fd)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE rec (key TEXT, upload_id TEXT, status TEXT, quarantined_to TEXT, seen INTEGER DEFAULT 0)")
    token: str | None = None
    count = 0
    while True:
        records, token = store.list_records(page_token=token, limit=page_size, credentials=credentials)
        db.execute("BEGIN")
        db.executemany("INSERT INTO rec (key, upload_id, status, quarantined_to) VALUES (?, ?, ?, ?)",
                       [(r["key"], r["upload_id"], r.get("status"), r.get("quarantined_to")) for r in records
                        if r.get("status") not in Status.SESSIONS])  # multipart sessions: no object yet
        db.execute("COMMIT")
        count += len(records)
        if not token:
            break
    db.execute("CREATE INDEX rec_key ON rec (key)")
    return db, path, count


def reconcile(processor: "Processor", credentials: "Credentials", fix: bool = False, page_size: int = 1000,
              report: Callable[[Finding], None] | None = None) -> dict[str, int]:
    """Run one reconciliation; ``report(finding_dict)`` is called per finding. Returns the summary."""
    store, oss, prefix = processor.store, processor.oss, processor.config.prefix_static
    if not hasattr(store, "list_records"):
        raise ValueError("this record store cannot list records (use sqlite or tablestore)")
    report = report or (lambda finding: None)
    summary = {"objects": 0, "records": 0, "unrecorded": 0, "missing": 0, "quarantined": 0, "fixed": 0}
    db, path, summary["records"] = _index_records(store, credentials, page_size)
    try:
        for obj in oss.iter_objects(prefix, credentials, page_size):
            summary["objects"] += 1
            rows = db.execute("SELECT rowid, status FROM rec WHERE key=?", (obj.key,)).fetchall()
            if rows:
                db.executemany("UPDATE rec SET seen=1 WHERE rowid=?", [(r[0],) for r in rows])
                if any(status == Status.QUARANTINED for _, status in rows):
                    summary["quarantined"] += 1
                    report({"finding": "quarantined", "key": obj.key, "where": "in place (private)"})
                continue
            if _recorded_now(processor, obj.key, credentials):
                continue  # recorded since the records were read
            summary["unrecorded"] += 1
            finding: Finding = {"finding": "unrecorded", "key": obj.key, "size": obj.size, "etag": obj.etag}
            if fix:
                result = processor.process_object(obj.key, credentials)
                finding["fixed"] = result
                if result.get("action") in ("created", "existing"):
                    summary["fixed"] += 1
            report(finding)
        for key, upload_id, status, moved_to in db.execute(
                "SELECT key, upload_id, status, quarantined_to FROM rec WHERE seen=0 ORDER BY key"):
            if status == Status.QUARANTINED and moved_to:
                summary["quarantined"] += 1
                report({"finding": "quarantined", "key": key, "upload_id": upload_id, "where": moved_to})
                continue
            if key.startswith(prefix) and oss.head_object(key, credentials) is not None:
                continue  # stored since the listing passed it
            summary["missing"] += 1
            report({"finding": "missing", "key": key, "upload_id": upload_id, "status": status})
    finally:
        db.close()
        os.unlink(path)
    return summary


def _recorded_now(processor: "Processor", key: str, credentials: "Credentials") -> bool:
    info = processor.oss.head_object(key, credentials)
    if info is None:
        return True  # gone again: nothing to record
    upload_id = info.metadata.get(_META_UPLOAD_ID) or foreign_id(key, info.etag)
    found = processor.store.get(upload_id, credentials)
    return found is not None and found.get("key") == key


def main(argv: list[str] | None = None) -> NoReturn:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m ossdirect reconcile",
                                     description="Compare the bucket's upload prefix with the records "
                                                 "(configuration: the functions' OSSDIRECT_* variables).")
    parser.add_argument("--fix", action="store_true", help="record what is unrecorded, through the event path")
    parser.add_argument("--page-size", type=int, default=1000, help="keys per ListObjectsV2 call and records per page")
    args = parser.parse_args(argv)

    from ..oss.credentials import resolve_credentials
    from .events import open_processor

    processor = open_processor()
    creds = resolve_credentials(None)

    def report(finding: Finding) -> None:
        print(json.dumps(finding, ensure_ascii=False, default=str), flush=True)

    summary = reconcile(processor, creds, fix=args.fix, page_size=args.page_size, report=report)
    print(json.dumps({"summary": summary}), flush=True)
    left = summary["missing"] + summary["unrecorded"] - summary["fixed"]
    sys.exit(1 if left else 0)
