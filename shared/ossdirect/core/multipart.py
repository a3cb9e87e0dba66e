"""Multipart uploads through the signature function: files past PostObject's 5 GB, resumable.

The browser never gets credentials: the function itself calls InitiateMultipartUpload,
ListParts, CompleteMultipartUpload and AbortMultipartUpload with its role's credentials, and
hands the browser one V4 presigned ``UploadPart`` URL per part (short-lived, for one part number
of one upload, bound to that part's exact size through ``x-oss-additional-headers=content-length``, and,
when the client sends the part's MD5, to its bytes through a signed ``Content-MD5``).

Routes (under ``<signature-url>/multipart``; same CORS, sign-in and authorizer as forms)::

    POST   /multipart                               create: {uploadId, key, upload_id, part_size, ...}
    GET    /multipart/<uploadId>/parts?partNumbers=1,2,3&key=..&upload_id=..[&md5=<b64>,<b64>,<b64>]
                                                    {"presignedUrls": {"1": url, ...}, "sizes", "headers", "expires_at"}
    GET    /multipart/<uploadId>/<partNumber>?key=..&upload_id=..[&md5=<b64>]
                                                    {"url", "headers": {}, "size", "expires_at"} (Uppy signPart)
    GET    /multipart/<uploadId>?key=..&upload_id=..                 [{PartNumber, Size, ETag}] (listParts)
    POST   /multipart/<uploadId>/complete?key=..&upload_id=..        body {"parts": [{PartNumber, ETag}]}
    DELETE /multipart/<uploadId>?key=..&upload_id=..                 abort

``uploadId`` is OSS's UploadId; ``upload_id`` is ours (pinned as ``x-oss-meta-upload-id`` like a
form's). The session lives in the record store, under our upload id, as a record with status
``uploading``, source ``multipart``, the key, the declared size, the user and OSS's UploadId
(``multipart_id``): every later call must name the same key and UploadId and come from the same
user. The callback's :func:`ossdirect.callbacks.write_record` turns that record into the recorded
one when OSS calls back after Complete; an append-only store (stdout, SLS) cannot hold sessions,
so multipart answers 501 ``MultipartUnavailable`` there.

What is pinned is what an exact-key form pins (:func:`ossdirect.forms.initiate_headers`), sent to
InitiateMultipartUpload; Complete sends the same callback as a form's ``callback`` field with the
``x:`` variables in ``x-oss-callback-var``, and ``x-oss-forbid-overwrite``. Before completing, the
parts OSS holds are checked against the plan (number, size of each, total = the declared size);
anything that does not fit is refused and the upload aborted.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache

from .. import errors as E
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Sequence

    from ..oss.client import OssClient
    from ..oss.credentials import Credentials
    Config = Any  # ossdirect.settings.Config: its attributes are set from the settings table, not declared
    from ..store import RecordStore
    from .forms import Grant

    Record = dict[str, Any]
    Spend = Callable[[Grant, int, Credentials, str, str, float], None]
    Release = Callable[[Any, str, Credentials], None]
from ..store import Status

MiB = 1 << 20
MIN_PART = 100 * 1024  # OSS: every part but the last
MAX_PART = 5 * 1024**3  # OSS: any part
MAX_PARTS = 10000  # OSS: part numbers 1..10000
MAX_OBJECT = MAX_PARTS * MAX_PART
BASE_PART = 8 * MiB
MAX_BATCH = 100  # part URLs per request
MAX_BODY = 2 * MiB  # complete's JSON: 10,000 parts fit
UPLOADING, ABORTED = Status.UPLOADING, Status.ABORTED
# Open sessions per caller (signed-in user, else client address; IPv6 by /64). A session is open until
# completed or aborted, or until it has been idle (no part URL signed) for the URL lifetime plus this
# grace: then the caller's next create sweeps it (OSS abort + "aborted"), so stale ones never count.
MAX_OPEN_SESSIONS = 8
IDLE_GRACE_SECONDS = 600
# stored=: a session's reservation lasts a day (a long upload keeps signing parts); an abort or the
# idle sweep releases it sooner, completing turns it into the object's size (the callback / event)
RESERVE_SECONDS = 86400
TOUCH_EVERY_SECONDS = 60  # a session's updated_at moves at most this often while parts are signed
# Signing a part reuses a session this instance read (or wrote) less than this long ago instead of reading
# the store again: what is checked (key, UploadId, user, size) never changes for an upload id, and a status
# changed meanwhile by another instance (completed, aborted) only lets URLs through that OSS itself refuses
# (NoSuchUpload). This instance's own writes (touch, abort, complete) replace or drop the copy at once.
SESSION_CACHE_SECONDS = 10
SESSION_CACHE_SIZE = 1024  # sessions remembered per instance; a flood of new ones only empties it
SWEEP_SCAN = 1000  # records looked at per create, at most (the listing is paged by creation time)
CREATE_PARAMS = ("filename", "size", "content_type", "naming", "folder", "crc64")


def plan(size: int) -> tuple[int, int, int]:
    """``(part_size, part_count, concurrency)`` for a file of ``size`` bytes (>= 1).

    8 MiB parts, larger in whole MiB when 10,000 parts of 8 MiB would not hold the file
    (``max(8 MiB, ceil(size / 10000 / 1 MiB) MiB)``); a file up to 8 MiB is one part. Parallel
    part uploads: 4, or 6 (a browser's connections per host) from 1 GiB; never more than parts."""
    part_size = max(BASE_PART, -(-size // (MAX_PARTS * MiB)) * MiB)
    count = max(1, -(-size // part_size))
    concurrency = min(count, 4 if size < 1 << 30 else 6)
    return part_size, count, concurrency


def part_length(size: int, number: int, planned: tuple[int, int, int] | None = None) -> int:
    """The exact size of part ``number`` (1-based) of a ``size``-byte file under :func:`plan`
    (``planned``: ``plan(size)`` already computed, when sizing many parts)."""
    part_size, count, _ = planned or plan(size)
    return part_size if number < count else size - (count - 1) * part_size


@lru_cache(maxsize=8)  # every part signed in the same second expires at the same time
def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _now() -> str:
    return str(_stamp(time.time()))


def _epoch(stamp: str | None) -> float | None:
    """A record's ISO-8601 UTC time as epoch seconds, or None."""
    from datetime import datetime, timezone

    if stamp is None:
        return None
    if (type(stamp) is str and len(stamp) == 27 and stamp.isascii() and stamp[4] + stamp[7] + stamp[10] + stamp[13]
            + stamp[16] + stamp[19] + stamp[26] == "--T::.Z"):  # what _stamp writes: fields read without strptime
        y, mo, d, h, mi, s, us = (stamp[0:4], stamp[5:7], stamp[8:10], stamp[11:13], stamp[14:16], stamp[17:19],
                                  stamp[20:26])
        if (y + mo + d + h + mi + s + us).isdigit():
            try:
                return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int(us), timezone.utc).timestamp()
            except ValueError:
                pass  # out of range: strptime below says the same
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        try:
            return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except (TypeError, ValueError):
            return None


def _stamp(epoch: float | None) -> str | None:
    """Epoch seconds as a record's created_at string (None stays None)."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".%06dZ" % (epoch % 1 * 1e6)


class _Remembered:
    """A session as last read (or written) by this instance, with its last activity parsed once."""

    __slots__ = ("session", "read_at", "active_at")

    def __init__(self, session: Record) -> None:
        self.session, self.read_at = session, time.monotonic()
        self.active_at = _epoch(session.get("updated_at") or session.get("created_at"))


def _caller_address(source_ip: str) -> str:
    from .limits import ip_subject  # an anonymous caller is its address (IPv6: its /64), as allowances count

    return ip_subject(source_ip) if source_ip else ""


def _bad(code: str, message: str) -> OssdirectError:
    return OssdirectError(code, message, E.INVALID)


def _part_number(text: object) -> int:
    text = str(text).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and 1 <= int(text) <= MAX_PARTS):
        raise _bad("InvalidPartNumber", f"part numbers are integers from 1 to {MAX_PARTS}")
    return int(text)


def part_digest(text: object) -> str:
    """A part's ``Content-MD5``: base64 of exactly 16 bytes (24 characters), else 400 InvalidPartDigest.
    A space is read as ``+``: base64 has no space, and a ``+`` left unescaped in a query arrives as one."""
    import base64
    import binascii

    text = str(text).strip().replace(" ", "+")
    try:
        raw = base64.b64decode(text, validate=True) if len(text) == 24 and text.isascii() else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16 or base64.b64encode(raw).decode("ascii") != text:
        raise _bad("InvalidPartDigest", "a part digest is the base64 MD5 of the part (16 bytes, 24 characters)")
    return text


def _plain_etag(value: object) -> str:
    return str(value).strip().strip('"').upper()


def _completed() -> OssdirectError:
    return OssdirectError("UploadCompleted", "this upload is already complete", E.CONFLICT)


def _upload_gone() -> OssdirectError:
    return OssdirectError("NoSuchUpload", "OSS no longer has this upload (completed or aborted)", E.NOT_FOUND)


class Multipart:
    """Multipart uploads as a service: every dependency given, no App, no HTTP.

    ``records()`` opens the record store that holds the sessions (raising a domain error when it
    cannot: unavailable, not shared, append-only); ``spend(grant, nbytes, creds, source_ip)`` charges
    the caller's allowance (None: no allowances); ``callback_b64`` is the form's callback
    (:attr:`ossdirect.forms.FormIssuer.callback_b64`). The route functions in :mod:`ossdirect.app`
    read the request and call these methods; ``credentials()`` is asked only when a step needs them."""

    def __init__(self, config: Config, records: Callable[[], RecordStore], new_upload_id: Callable[[], str],
                 callback_b64: str | None = None, spend: Spend | None = None, oss: OssClient | None = None,
                 presigner: OssClient | None = None, clock: Callable[[], float] = time.time,
                 release: Release | None = None) -> None:
        from ..oss.client import OssClient

        self.config = config
        self.records, self.new_upload_id, self.callback_b64, self.spend = records, new_upload_id, callback_b64, spend
        self.release = release  # stored=: an aborted session's reservation goes
        self.clock = clock  # when part URLs are signed (tests move it)
        self.oss = oss or OssClient(config.oss_endpoint, config.bucket, config.region, timeout=5.0)
        # URLs for the browser: on the host it uploads to (the signature covers /<bucket>/<key> anyway)
        self.presigner = presigner or OssClient(config.upload_host, config.bucket, config.region)
        self._sessions: dict[str, _Remembered] = {}  # upload id -> an open session (SESSION_CACHE_SECONDS)

    # -- plumbing ---------------------------------------------------------------------------------

    def _store(self) -> RecordStore:
        try:
            return self.records()
        except OssdirectError as exc:
            if exc.code == "RecordLookupUnsupported":
                raise OssdirectError("MultipartUnavailable",
                                     "multipart uploads keep their session in the record store, and this one is "
                                     "append-only (stdout/SLS): set OSSDIRECT_RECORDS to sqlite:///... or "
                                     "tablestore://...", E.NOT_IMPLEMENTED) from None
            raise

    @staticmethod
    def _store_call(store: RecordStore, method: str, *args: Any) -> Any:
        from ..store import RecordStoreError

        try:
            return getattr(store, method)(*args)
        except RecordStoreError as exc:
            raise OssdirectError("RecordStoreUnavailable", f"the upload session cannot be read or written ({exc})",
                                 E.UNAVAILABLE) from None

    def _oss_call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        from ..oss.client import OssError

        try:
            return getattr(self.oss, method)(*args, **kwargs)
        except OssError as exc:
            if exc.code == "NoSuchUpload":
                raise _upload_gone() from None
            if exc.code == "FileAlreadyExists":
                raise OssdirectError("FileAlreadyExists", "an object already exists at this key", E.CONFLICT) \
                    from None
            raise OssdirectError("StorageUnavailable", f"the bucket could not {what} ({exc.code or exc.status})",
                                 E.UNAVAILABLE) from None

    def session(self, oss_id: str, upload_id: str, key: str, grant: Grant, creds: Credentials,
                recent: bool = False) -> tuple[RecordStore, Record]:
        """The store and the session record for a call naming ``oss_id`` (OSS's UploadId), our
        ``upload_id`` and the ``key``, or invalid / not found / forbidden.

        ``recent``: a copy read less than SESSION_CACHE_SECONDS ago will do (signing parts); the
        key, UploadId and user are checked against it all the same."""
        store = self._store()
        if not (upload_id.isascii() and upload_id.isalnum() and 1 <= len(upload_id) <= 128):
            raise _bad("InvalidUploadId", "upload_id (from create) is required")
        if not key or len(key) > 1023:
            raise _bad("InvalidKey", "key (from create) is required")
        remembered = self._sessions.get(upload_id) if recent else None
        if remembered is not None and time.monotonic() - remembered.read_at < SESSION_CACHE_SECONDS:
            session: Record | None = remembered.session
        else:
            session = self._store_call(store, "get", upload_id, creds if store.needs_credentials else None)
            self._remember(upload_id, session)
        if (session is None or session.get("source") != "multipart" or session.get("multipart_id") != oss_id
                or session.get("key") != key):
            raise OssdirectError("NoSuchUpload", "no multipart upload with this upload id, key and uploadId",
                                 E.NOT_FOUND)
        if session.get("user") != grant.user:
            raise OssdirectError("UploadNotYours", "this upload was started by someone else", E.FORBIDDEN)
        return store, session

    def _remember(self, upload_id: str, session: Record | None) -> None:
        """Keep an open session for the next part requests; forget anything else (gone, finished)."""
        if session is not None and session.get("source") == "multipart" and session.get("status") == UPLOADING:
            if len(self._sessions) >= SESSION_CACHE_SIZE:
                self._sessions.clear()
            self._sessions[upload_id] = _Remembered(session)
        else:
            self._sessions.pop(upload_id, None)

    # -- operations -------------------------------------------------------------------------------

    def create(self, grant: Grant, params: dict[str, str], credentials: Callable[[], Credentials],
               source_ip: str = "") -> dict[str, Any]:
        """Start a multipart upload for ``params`` (CREATE_PARAMS, as strings): the answer's body."""
        from .forms import declared_crc64, initiate_headers, resolve_content_type, resolve_key
        from ..store import new_record_id

        config = self.config
        store = self._store()  # before anything is made: an append-only store cannot hold sessions
        upload_id = self.new_upload_id()
        directory, key, shown = resolve_key(config, grant, params, upload_id)
        if key is None:
            raise _bad("FilenameRequired", "filename is required")
        raw = params.get("size", "")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 16):
            raise _bad("InvalidParameter", "size (the file's exact size in bytes) is required")
        size = int(raw)
        limit = min(grant.max_bytes, MAX_OBJECT)
        if size > limit:
            raise OssdirectError("EntityTooLarge", f"the file is {size} bytes; the limit is {limit}", E.TOO_LARGE)
        if size < max(1, config.min_bytes):
            raise _bad("EntityTooSmall", f"the file is {size} bytes; the minimum is {max(1, config.min_bytes)}")
        content_type = resolve_content_type(config, grant, params)
        if not content_type:
            raise _bad("ContentTypeRequired", "content_type is required: a multipart upload pins one type")
        crc64 = declared_crc64(params)
        creds = credentials()
        caller_ip = None if grant.user is not None else _caller_address(source_ip)
        self._bound_open_sessions(store, grant.user, caller_ip, creds)
        if self.spend is not None:  # after validation: a refused request spends nothing
            self.spend(grant, size, creds, source_ip, upload_id, time.time() + RESERVE_SECONDS)
        oss_id = self._oss_call("start the upload", "initiate_multipart_upload", key, creds,
                                initiate_headers(config, content_type, shown, upload_id, grant, crc64))
        record = {
            "record_id": new_record_id(), "upload_id": upload_id, "bucket": config.bucket, "key": key,
            "size": size, "content_type": content_type, "filename": shown or None, "created_at": _now(),
            "source": "multipart", "status": UPLOADING, "user": grant.user, "payload": grant.payload,
            "multipart_id": oss_id, "client_ip": caller_ip, "updated_at": _now(),
        }
        from ..store import RecordStoreError

        error: object
        try:
            _, created = store.put(record, creds if store.needs_credentials else None)
        except RecordStoreError as exc:
            created, error = False, exc
        else:
            error = None if created else "upload id collision"
        if not created:
            self._abort_quietly(key, oss_id, creds)
            raise OssdirectError("RecordStoreUnavailable", f"the upload session could not be saved ({error})",
                                 E.UNAVAILABLE)
        part_size, count, concurrency = plan(size)
        body: dict[str, Any] = {
            "uploadId": oss_id, "key": key, "upload_id": upload_id, "bucket": config.bucket,
            "size": size, "content_type": content_type, "part_size": part_size, "part_count": count,
            "concurrency": concurrency, "url_lifetime": config.expires_seconds}
        if grant.user is not None or grant.payload is not None:
            body.update(user=grant.user, payload=json.loads(grant.payload) if grant.payload else None)
        return body

    def _bound_open_sessions(self, store: RecordStore, user: str | None, caller_ip: str | None,
                             creds: Credentials) -> None:
        """Refuse a new session (429) while this caller has MAX_OPEN_SESSIONS open; sweep idle ones first.

        Two bounded reads by creation time: the last day before the idle limit (sessions created then and
        idle since are aborted), and the idle period itself (what still counts as open)."""
        if getattr(store, "list_records", None) is None:
            return
        idle_after = self.config.expires_seconds + IDLE_GRACE_SECONDS
        now = time.time()
        older = self._caller_sessions(store, user, caller_ip, creds, since=now - 86400, until=now - idle_after)
        live = []
        for session in older:
            last = _epoch(session.get("updated_at") or session.get("created_at"))
            if last is not None and now - last > idle_after:
                self._abort_quietly(session["key"], session["multipart_id"], creds)
                self._mark_aborted(store, session, creds, "expired: idle past the URL lifetime")
            else:
                live.append(session)  # created earlier, still signing parts
        live += self._caller_sessions(store, user, caller_ip, creds, since=now - idle_after, until=None)
        if len(live) >= MAX_OPEN_SESSIONS:
            raise OssdirectError(
                "TooManyOpenUploads",
                f"you have {len(live)} unfinished multipart uploads (the most is {MAX_OPEN_SESSIONS}): "
                "complete or cancel one, or wait until an idle one expires", E.TOO_MANY,
                headers={"Retry-After": str(idle_after)})

    @staticmethod
    def _caller_sessions(store: RecordStore, user: str | None, caller_ip: str | None, creds: Credentials,
                         since: float, until: float | None) -> list[Record]:
        """This caller's open sessions created in [since, until): a signed-in user's through the store's
        per-user listing, an anonymous caller's by address. At most SWEEP_SCAN records are read."""
        found: list[Record] = []
        token: str | None = None
        seen = 0
        store_creds = creds if store.needs_credentials else None
        while seen < SWEEP_SCAN:
            try:
                page, token = getattr(store, "list_records")(user=user, since=_stamp(since), until=_stamp(until),
                                                 page_token=token, limit=min(500, SWEEP_SCAN - seen),
                                                 credentials=store_creds)
            except Exception:  # noqa: BLE001 - a store that cannot list: no bound rather than no uploads
                return found
            seen += len(page)
            found += [r for r in page if r.get("source") == "multipart" and r.get("status") == UPLOADING
                      and r.get("user") == user and (user is not None or r.get("client_ip") == caller_ip)]
            if token is None:
                break
        return found

    def _touch(self, store: RecordStore, session: Record, creds: Credentials) -> None:
        """Mark the session active (the sweep leaves active sessions alone), at most once a minute.
        The store's answer replaces the remembered copy: a session finished elsewhere is refused here."""
        upload_id = session["upload_id"]
        remembered = self._sessions.get(upload_id)
        if remembered is not None and remembered.session is session:
            last = remembered.active_at  # parsed when read
        else:
            last = _epoch(session.get("updated_at") or session.get("created_at"))
        if last is not None and time.time() - last < TOUCH_EVERY_SECONDS:
            return
        try:
            fresh, applied = store.update(upload_id, {"status": UPLOADING}, {"updated_at": _now()},
                                          creds if store.needs_credentials else None)
        except Exception:  # noqa: BLE001 - a missed touch only makes the session look idle sooner
            return
        self._remember(upload_id, fresh)
        if not applied and fresh is not None:
            self._require_uploading(fresh)  # completed or aborted since it was read

    @staticmethod
    def _require_uploading(session: Record) -> None:
        status = session.get("status")
        if status == ABORTED:
            raise OssdirectError("UploadAborted", "this upload was aborted", E.CONFLICT)
        if status != UPLOADING:
            raise _completed()

    def sign_parts(self, store: RecordStore, session: Record, numbers: Sequence[str],
                   creds: Credentials, digests: Sequence[str] | None = None) -> dict[str, Any]:
        """Presigned UploadPart URLs for ``numbers`` (each bound to its part's exact size).

        ``digests``: base64 MD5s aligned with ``numbers`` (issue 24), or None. Each URL then signs its
        part's ``Content-MD5``, so OSS itself refuses a part whose bytes changed on the way, and the
        answer's ``headers`` (Uppy's per-part shape, ``{}`` without digests) names the header to send:
        ``{"1": {"Content-MD5": "..."}}``."""
        if not numbers:
            raise _bad("InvalidPartNumber", "partNumbers is a comma list of part numbers")
        md5: dict[int, str] = {}
        if digests is not None:
            if len(digests) != len(numbers):
                raise _bad("InvalidPartDigest", f"md5 has {len(digests)} digests for {len(numbers)} part numbers: "
                                                "one per part number, in the same order")
            for text, d in zip(numbers, digests):
                number, digest = _part_number(text), part_digest(d)
                if md5.setdefault(number, digest) != digest:
                    raise _bad("InvalidPartDigest", f"part {number} is given two different digests")
        signed, expires_at = self._signed(store, session, numbers, creds, md5)
        return {"presignedUrls": {str(n): url for n, url, _ in signed},
                "sizes": {str(n): length for n, _, length in signed},
                "headers": {str(n): {"Content-MD5": md5[n]} for n, _, _ in signed if n in md5},
                "expires_at": expires_at}

    def sign_part(self, store: RecordStore, session: Record, number: str, creds: Credentials,
                  digest: str | None = None) -> dict[str, Any]:
        """One part's URL (Uppy's signPart); with ``digest``, ``headers`` is ``{"Content-MD5": digest}``."""
        md5: dict[int, str] = {} if digest is None else {_part_number(number): part_digest(digest)}
        [(n, url, length)], expires_at = self._signed(store, session, [number], creds, md5)
        return {"url": url, "headers": {"Content-MD5": md5[n]} if n in md5 else {}, "size": length,
                "expires_at": expires_at}

    def _signed(self, store: RecordStore, session: Record, numbers: Sequence[str], creds: Credentials,
                md5: dict[int, str]) -> tuple[list[tuple[int, str, int]], str]:
        """``[(part number, URL, size)]`` for ``numbers`` (each once, in order) and when the URLs expire."""
        self._require_uploading(session)
        self._touch(store, session, creds)
        size = int(session["size"])
        planned = plan(size)
        count = planned[1]
        wanted = sorted({_part_number(n) for n in numbers})
        if len(wanted) > MAX_BATCH:
            raise _bad("TooManyPartNumbers", f"ask for at most {MAX_BATCH} part URLs at a time")
        beyond = [n for n in wanted if n > count]
        if beyond:
            raise _bad("InvalidPartNumber", f"this upload has {count} parts; no part {beyond[0]}")
        now = int(self.clock())
        lifetime = self.config.expires_seconds
        key, oss_id = session["key"], session["multipart_id"]
        signed = []
        for n in wanted:
            length = part_length(size, n, planned)
            url = self.presigner.presign_v4_url("PUT", key, [("partNumber", str(n)), ("uploadId", oss_id)], creds,
                                                lifetime, now, additional_headers={"content-length": str(length)},
                                                content_md5=md5.get(n))
            signed.append((n, url, length))
        return signed, _iso(now + lifetime)

    def list_parts(self, session: Record, creds: Credentials) -> list[dict[str, Any]]:
        self._require_uploading(session)
        parts = self._oss_call("list the parts", "list_parts", session["key"], session["multipart_id"], creds)
        return [{"PartNumber": p.number, "Size": p.size, "ETag": f'"{p.etag}"'} for p in parts]

    def abort(self, store: RecordStore, session: Record, creds: Credentials) -> dict[str, Any]:
        if session.get("status") not in (UPLOADING, ABORTED):
            raise _completed()
        self._oss_call("abort the upload", "abort_multipart_upload", session["key"], session["multipart_id"], creds)
        self._mark_aborted(store, session, creds, "aborted by the uploader")
        return {"aborted": True, "upload_id": session["upload_id"], "key": session["key"]}

    def _mark_aborted(self, store: RecordStore, session: Record, creds: Credentials, reason: str) -> None:
        if session.get("status") == UPLOADING:
            self._store_call(store, "update", session["upload_id"], {"status": UPLOADING},
                             {"status": ABORTED, "status_reason": reason, "updated_at": _now()},
                             creds if store.needs_credentials else None)
            self._sessions.pop(session["upload_id"], None)  # after the write: a part request reads "aborted"
            if self.release is not None:
                try:
                    self.release(session.get("user"), session["upload_id"], creds)
                except OssdirectError:
                    pass  # the quota store is down: the reservation expires on its own (RESERVE_SECONDS)

    def _abort_quietly(self, key: str, oss_id: str, creds: Credentials) -> None:
        from ..oss.client import OssError

        try:
            self.oss.abort_multipart_upload(key, oss_id, creds)
        except OssError:
            pass  # the bucket's lifecycle rule for incomplete uploads is the backstop

    def _refuse(self, store: RecordStore, session: Record, creds: Credentials, code: str,
                message: str) -> OssdirectError:
        """Abort the upload (OSS and the session) and answer 400 ``code``."""
        self._abort_quietly(session["key"], session["multipart_id"], creds)
        self._mark_aborted(store, session, creds, f"{code}: {message}")
        return _bad(code, f"{message}; the upload was aborted")

    def complete(self, body: Callable[[], dict[str, Any]], store: RecordStore, session: Record, grant: Grant,
                 creds: Credentials) -> tuple[int, dict[str, Any]]:
        """CompleteMultipartUpload once the parts OSS holds fit the plan: ``(status, body)``.

        ``body()`` is the request's JSON object (``{"parts": [...]}``), read only once the session may
        complete."""
        from .callbacks import answer as record_answer
        from .callbacks import object_url
        from .forms import callback_vars

        config = self.config
        key, oss_id = session["key"], session["multipart_id"]
        status = session.get("status")
        if status not in (UPLOADING, ABORTED):  # completed and recorded before: say so again
            return 200, dict(record_answer(config, session, True), location=object_url(config, key))
        self._require_uploading(session)
        given = body().get("parts")
        if not isinstance(given, list) or not given:
            raise _bad("MalformedParts", 'the body must be {"parts": [{"PartNumber": n, "ETag": "..."}]}')
        asked: dict[int, str] = {}
        for item in given:
            if not isinstance(item, dict) or not isinstance(item.get("ETag"), str) or len(item["ETag"]) > 128:
                raise _bad("MalformedParts", "each part is {\"PartNumber\": n, \"ETag\": \"...\"}")
            number = item.get("PartNumber")
            if isinstance(number, bool) or not isinstance(number, (int, str)):
                raise _bad("MalformedParts", "PartNumber must be an integer")
            number = _part_number(number)
            if number in asked:
                raise _bad("MalformedParts", f"part {number} is listed twice")
            asked[number] = _plain_etag(item["ETag"])

        size = int(session["size"])
        _, count, _ = plan(size)
        extra = sorted(n for n in asked if n > count)
        if extra:
            raise self._refuse(store, session, creds, "TooManyParts",
                               f"this upload has {count} parts; part {extra[0]} is not one of them")
        held = {p.number: p for p in self._oss_call("list the parts", "list_parts", key, oss_id, creds)}
        missing = [n for n in range(1, count + 1) if n not in asked or n not in held]
        if missing:
            raise self._refuse(store, session, creds, "MissingParts",
                               f"part {missing[0]} of {count} is missing ({len(missing)} missing)")
        total = 0
        for n in range(1, count + 1):
            part, want = held[n], part_length(size, n)
            if part.size > want:
                raise self._refuse(store, session, creds, "PartTooLarge",
                                   f"part {n} is {part.size} bytes; it must be {want}")
            if part.size != want:
                raise self._refuse(store, session, creds, "PartSizeMismatch",
                                   f"part {n} is {part.size} bytes; it must be {want}")
            if _plain_etag(part.etag) != asked[n]:
                raise self._refuse(store, session, creds, "PartETagMismatch",
                                   f"part {n} in the bucket is not the part listed (ETag differs)")
            total += part.size
        if total != size or total > min(grant.max_bytes, MAX_OBJECT):
            raise self._refuse(store, session, creds, "SizeMismatch",
                               f"the parts hold {total} bytes; the upload declared {size}")

        headers = {}
        if config.forbid_overwrite:
            headers["x-oss-forbid-overwrite"] = "true"
        if config.callback_url:
            headers["x-oss-callback"] = str(self.callback_b64)
            headers["x-oss-callback-var"] = callback_vars(session["upload_id"], session.get("filename") or "", grant)
        from ..oss.client import OssError

        self._sessions.pop(session["upload_id"], None)  # completing: part requests read the store again
        try:
            answer = self.oss.complete_multipart_upload(key, oss_id, [(n, held[n].etag) for n in range(1, count + 1)],
                                                        creds, headers)
        except OssError as exc:
            if exc.code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "FileAlreadyExists"):
                raise self._refuse(store, session, creds, exc.code, f"OSS refused to complete: {exc.message}") \
                    from None
            if exc.code == "NoSuchUpload":
                raise _upload_gone() from None
            raise OssdirectError("StorageUnavailable", f"the bucket could not complete the upload ({exc.code})",
                                 E.UNAVAILABLE) from None
        location = object_url(config, key)
        common = {"location": location, "key": key, "upload_id": session["upload_id"]}
        if answer.status == 203:  # stored; OSS could not get the callback's answer
            from ..oss.transport import error_from as _error_from

            err = _error_from(203, "", answer.headers, answer.body)
            return 203, dict(common, ok=False, recorded=False, code="CallbackFailed",
                             message=f"stored, but not recorded: {err.message}")
        if not config.callback_url:
            return 200, dict(common, ok=True, recorded=False)
        try:
            relayed = json.loads(answer.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            relayed = None
        if not isinstance(relayed, dict):
            return 200, dict(common, ok=True, recorded=None, message="the callback's answer was not JSON")
        return 200, dict(relayed, location=location)
