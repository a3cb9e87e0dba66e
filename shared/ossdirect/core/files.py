"""A signed-in user's own files (``<signature-url>/files``): list, a short-lived download URL, delete.

    GET    /files?limit=50&page_token=…     {"files": [record…], "next_page_token"}   newest first
    GET    /files/<upload_id>/url           {"url", "expires_at", "filename"}          owner only
    DELETE /files/<upload_id>               {"deleted": true, "upload_id", "key"}      owner only

The listing is one indexed read of the record store (SQLite: an ordered query; Tablestore: one GetRange
on the user/time index, BACKWARD), never a scan of the bucket. The download URL is a V4 presigned GET on
the upload host with ``response-content-disposition`` naming the original file, so the bucket itself can
stay private. Deleting removes the object (DeleteObject with the function's role) and marks the record
``deleted`` (kept: it is the audit trail), and gives its bytes back to the owner's stored quota
(``stored=``; quarantined and corrupt files count until deleted too: they occupy storage). Someone else's upload id answers 404, exactly as an unknown one.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from .. import errors as E
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from ..oss.credentials import Credentials

    from ..oss.client import OssClient
    from ..store import RecordStore

    Config = Any  # ossdirect.settings.Config: its attributes are set from the settings table, not declared
from ..store import Status

LISTED = ("upload_id", "key", "size", "content_type", "filename", "created_at", "status", "payload")
GONE = (Status.UPLOADING, Status.ABORTED, Status.DELETED)  # not (or no longer) a file
NOT_DOWNLOADABLE = GONE + (Status.QUARANTINED, Status.FOREIGN, Status.CORRUPT)
MAX_PAGE = 200


def _disposition(filename: str | None) -> str:
    """``attachment`` with the original name: an ASCII fallback and the RFC 5987 UTF-8 form."""
    name = (filename or "download").replace("\r", "").replace("\n", "")
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class FileService:
    """What a signed-in user may do with their own uploads. No HTTP here: domain errors (ossdirect.errors)."""

    def __init__(self, config: Config, store: RecordStore, oss: OssClient, presigner: OssClient,
                 clock: Callable[[], float] = time.time,
                 release: Callable[[str, str, Credentials], None] | None = None) -> None:
        self.config, self.store, self.oss, self.presigner, self.clock = config, store, oss, presigner, clock
        self.release = release  # stored=: a deleted file's bytes go back to its owner's quota

    def _creds(self, creds: Credentials) -> Credentials | None:
        return creds if self.store.needs_credentials else None

    def list(self, user: str, creds: Credentials, page_token: str | None = None,
             limit: int | str = 50) -> dict[str, Any]:
        try:
            limit = max(1, min(int(limit), MAX_PAGE))
        except (TypeError, ValueError):
            raise OssdirectError("InvalidParameter", f"limit must be a number from 1 to {MAX_PAGE}",
                                 E.INVALID) from None
        files: list[dict[str, Any]] = []
        token = page_token or None
        try:
            while len(files) < limit:  # sessions and deleted rows are skipped: read on until the page is full
                page, token = getattr(self.store, "list_records")(user=user, page_token=token, limit=limit - len(files),
                                                                    credentials=self._creds(creds), newest_first=True)
                files += [{f: r.get(f) for f in LISTED} for r in page if r.get("status") not in GONE]
                if token is None:
                    break
        except ValueError:
            raise OssdirectError("InvalidPageToken", "page_token does not belong to this listing", E.INVALID) from None
        return {"files": files, "next_page_token": token}

    def _own(self, upload_id: str, user: str, creds: Credentials) -> dict[str, Any]:
        if not (upload_id.isascii() and upload_id.replace("-", "").replace(":", "").isalnum() and len(upload_id) <= 128):
            raise OssdirectError("InvalidUploadId", "not an upload id", E.INVALID)
        found = self.store.get(upload_id, self._creds(creds))
        if found is None or found.get("user") != user or found.get("status") in GONE:
            raise OssdirectError("FileNotFound", "you have no file with this upload id", E.NOT_FOUND)
        return found

    def download_url(self, upload_id: str, user: str, creds: Credentials) -> dict[str, Any]:
        found = self._own(upload_id, user, creds)
        if found.get("status") in NOT_DOWNLOADABLE:
            raise OssdirectError("FileNotDownloadable", f"this file is {found['status']}: it cannot be downloaded",
                                 E.CONFLICT)
        expires = self.config.expires_seconds
        url = self.presigner.presign_v4_url(
            "GET", found["key"], {"response-content-disposition": _disposition(found.get("filename"))}, creds, expires)
        return {"url": url, "expires_at": int(self.clock()) + expires, "filename": found.get("filename"),
                "upload_id": upload_id}

    def delete(self, upload_id: str, user: str, creds: Credentials) -> dict[str, Any]:
        from ..oss.client import OssError

        found = self._own(upload_id, user, creds)
        if self.release is not None:  # first: a quota store down refuses the delete (503) before anything
            self.release(user, upload_id, creds)  # changes, and a retry after a failed DeleteObject releases again
        try:
            self.oss.delete_object(found["key"], creds)  # OSS answers 204 for a key already gone, too
        except OssError as exc:
            raise OssdirectError("StorageUnavailable", f"the file could not be deleted ({exc.code or exc.status})",
                                 E.UNAVAILABLE) \
                from None
        self.store.update(upload_id, {"status": found.get("status")},
                          {"status": Status.DELETED, "status_reason": "deleted by its owner",
                           "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(self.clock()))},
                          self._creds(creds))
        return {"deleted": True, "upload_id": upload_id, "key": found["key"]}
