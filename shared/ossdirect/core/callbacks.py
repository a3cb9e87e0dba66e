"""The callback function's logic: verify OSS's signature, confirm the object with our own bucket,
record it once.

OSS signs every customer's callbacks with one key, so a valid signature only proves the request
came through OSS, not through *our* bucket: anyone can point their own upload's callback at us
with a body naming our bucket and any key. So the body only says *which* object to look at; every
fact recorded (size, ETag, type, upload id, file name) comes from HeadObject on the configured
bucket, made with the function's own credentials, and the object must carry the upload id the
form pinned as metadata.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, quote, unquote

from .forms import CRC64_META, FILENAME_META, PAYLOAD_META, UPLOAD_ID_META, USER_META, display_name
from .. import errors as E
from ..errors import OssdirectError
from ..oss.client import OssError
from ..store import RecordStoreError, Status, new_record_id, utc_stamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from ..oss.credentials import Credentials

    import logging

    from ..log import LazyLogger

    Logger = logging.Logger | LazyLogger

    from typing import Protocol

    class Request(Protocol):  # what the callback check reads of a request (ossdirect.app.http.Request)
        headers: dict[str, str]
        path: str
        raw_query: str
        body: bytes

        def header(self, name: str, default: str = "") -> str: ...
    from ..oss.client import OssClient
    from ..store import RecordStore

    Config = Any  # ossdirect.settings.Config: its attributes are set from the settings table, not declared

MAX_CALLBACK_BODY = 64 * 1024
_META_UPLOAD_ID = UPLOAD_ID_META[len("x-oss-meta-"):]
_META_FILENAME = FILENAME_META[len("x-oss-meta-"):]
_META_USER = USER_META[len("x-oss-meta-"):]
_META_PAYLOAD = PAYLOAD_META[len("x-oss-meta-"):]
_META_CRC64 = CRC64_META[len("x-oss-meta-"):]
CORRUPT = Status.CORRUPT  # OSS computed another CRC-64 than the client read: never a good upload
_BODY_NAMES = ("bucket", "object", "upload_id", "height", "width", "format", "clientIp", "reqId")


def _reject_constant(value: str) -> None:
    raise ValueError(f"{value} is not a number")


def parse_callback_body(content_type: str, body: bytes) -> dict[str, str | None]:
    """Form-urlencoded or JSON, per the request's Content-Type, into a flat dict of strings.

    Only the names we read are kept; any value that is not a plain string or integer (a nested
    object, ``1e400``, a 5,000-deep array) is malformed, never a 500."""
    if len(body) > MAX_CALLBACK_BODY:
        raise OssdirectError("CallbackBodyTooLarge", "callback body is too large", E.TOO_LARGE)
    try:
        text = body.decode("utf-8")
        if content_type.split(";")[0].strip().lower() == "application/json":
            data = json.loads(text, parse_float=_reject_constant, parse_constant=_reject_constant)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        else:
            data = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True, strict_parsing=bool(text)).items()}
    except (ValueError, RecursionError):
        raise OssdirectError("MalformedCallbackBody", "callback body is not valid for its Content-Type",
                             E.INVALID) from None
    out = {}
    for name in _BODY_NAMES:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
            raise OssdirectError("MalformedCallbackBody", f"{name} must be a string", E.INVALID)
        out[name] = None if value in (None, "") else str(value)
    return out


SEED_REASON = "seed-compat: origin not proven by metadata"


def seed_upload_id(key: str, etag: str) -> str:
    """Seed clients cannot pin our metadata: their objects are recorded by what OSS says (key + ETag),
    so the callback and the event path name the same record."""
    import hashlib

    return "seed:" + hashlib.sha256(f"{key}\n{etag}".encode("utf-8")).hexdigest()[:32]


def _small_int(value: Any) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 9 else None


def object_url(config: Config, key: str) -> str:
    return f"{config.public_base_url}/{quote(key, safe='/')}"


def record_from_object(config: Config, key: str, info: Any, source: str) -> dict[str, Any]:
    """A record from what OSS says about the object (never from what a client or a body says)."""
    meta = info.metadata
    pinned = config.compat != "seed"  # seed forms pin no metadata: whatever it says, the uploader wrote
    record = {
        "record_id": new_record_id(),
        "upload_id": meta.get(_META_UPLOAD_ID) or None,
        "bucket": config.bucket,
        "key": key,
        "size": info.size,
        "etag": info.etag,
        "content_type": info.content_type or None,
        "crc64": info.headers.get("x-oss-hash-crc64ecma"),
        "content_md5": info.headers.get("content-md5"),
        "filename": display_name(unquote(meta.get(_META_FILENAME, ""))) or None,
        "created_at": utc_stamp(),
        "source": source,
        "status": Status.RECORDED,
        # who and the payload only from a form that pinned them (every form but a seed client's)
        "user": unquote(meta[_META_USER]) if pinned and meta.get(_META_USER) else None,
        "payload": _payload(meta.get(_META_PAYLOAD)) if pinned else None,
    }
    mismatch = checksum_mismatch(info)
    if mismatch:
        record.update(status=CORRUPT, status_reason=mismatch)
    return record


def checksum_mismatch(info: Any) -> str | None:
    """Why the stored bytes are not the client's (its pinned CRC-64 against OSS's), or None."""
    declared = info.metadata.get(_META_CRC64)
    stored = info.headers.get("x-oss-hash-crc64ecma")
    if declared and stored and declared.strip() != stored.strip():
        return f"checksum mismatch: the client read CRC-64 {declared.strip()}, OSS stored {stored.strip()}"
    return None


def _payload(b64: str | None) -> str | None:
    """The authorizer's JSON as pinned into the object (base64url), or None."""
    if not b64:
        return None
    try:
        text = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-8")
        json.loads(text)
        return text
    except ValueError:
        return None


def answer(config: Config, record: Mapping[str, Any], replayed: bool) -> dict[str, Any]:
    corrupt = record.get("status") == CORRUPT
    out = {
        "ok": not corrupt,
        "record_id": record["record_id"],
        "upload_id": record["upload_id"],
        "bucket": record["bucket"],
        "key": record["key"],
        "size": record["size"],
        "etag": record["etag"],
        "content_type": record["content_type"],
        "filename": record["filename"],
        "url": object_url(config, record["key"]),
        "created_at": record["created_at"],
        "user": record.get("user"),
        "payload": json.loads(record["payload"]) if record.get("payload") else None,
        "replayed": replayed,
    }
    if corrupt:  # OSS relays this to the uploader: say so plainly (the event path quarantines the object)
        out.update(status=CORRUPT, code="ChecksumMismatch", url=None,
                   message="the file arrived changed (its CRC-64 differs from what was read): upload it again")
    return out


def handle_callback(config: Config, store: RecordStore, oss: OssClient, request: Request,
                    credentials: Credentials | Callable[[], Credentials], key_cache: Any = None,
                    log: Logger | None = None, quota: Any = None) -> dict[str, Any]:
    """Verify, confirm, record; return the JSON OSS relays to the uploader. ``credentials`` may be a
    function that returns them: it is called only once OSS's signature has been verified. ``quota``
    (a :class:`ossdirect.core.limits.Limiter` with ``stored=``) is told the object's real size."""
    # here, not at the top: the process function shares this module's recording path, not the RSA check
    from ..oss.callback_auth import CallbackAuthError, verify_callback

    try:
        verify_callback(request.headers, request.path, request.raw_query, request.body,
                        config.trusted_key_prefixes, key_cache)
    except CallbackAuthError as exc:
        if exc.malformed:
            raise OssdirectError("MalformedCallback", str(exc), E.INVALID) from None
        raise OssdirectError("InvalidCallbackSignature", str(exc), E.FORBIDDEN) from None

    body = parse_callback_body(request.header("content-type"), request.body)
    if body["bucket"] != config.bucket:
        raise OssdirectError("WrongBucket", "the callback is for another bucket", E.FORBIDDEN)
    key = body["object"]
    if not key or not key.startswith(config.prefix_static):
        raise OssdirectError("KeyOutsidePrefix", "the object key is outside the configured prefix", E.FORBIDDEN)
    if not body["upload_id"]:
        raise OssdirectError("MissingUploadId", "the callback body has no upload_id", E.INVALID)

    if callable(credentials):  # asked for only now: after OSS's signature and the body's own checks
        credentials = credentials()
    info = lookup_object(oss, key, credentials)
    if info is None:
        raise OssdirectError("ObjectNotFound", "no such object in the bucket: nothing was recorded", E.NOT_FOUND)
    pinned_id = info.metadata.get(_META_UPLOAD_ID)
    seed_client = pinned_id is None and config.compat == "seed"  # seed forms cannot pin metadata
    if pinned_id != body["upload_id"] and not seed_client:
        raise OssdirectError("UploadIdMismatch", "the object was not uploaded with this upload id", E.FORBIDDEN)

    record = record_from_object(config, key, info, "callback")
    if seed_client:
        record.update(upload_id=seed_upload_id(key, info.etag), status_reason=SEED_REASON)
    record.update(image_width=_small_int(body["width"]), image_height=_small_int(body["height"]),
                  image_format=body["format"], client_ip=body["clientIp"], oss_request_id=body["reqId"])
    stored, created = write_record(store, record, credentials, log)
    if created:  # whichever of the callback and the event path records first settles the quota
        settle_quota(quota, stored, credentials, log)
    return answer(config, stored, not created)


def settle_quota(quota: Any, stored: Mapping[str, Any], credentials: Credentials | None,
                 log: Logger | None = None) -> None:
    """``stored=``: the upload just recorded holds the object's real size (HeadObject's, never the
    declared one) in its user's quota; its reservation goes. Called by whoever created the record (records
    are exactly-once), so a late replay after a delete cannot count the file again. The upload is stored
    and recorded: a quota store that fails now must not fail it (logged; the reservation expires)."""
    user = stored.get("user")
    if quota is None or not user or stored.get("status") in (Status.DELETED, UPLOADING, Status.ABORTED):
        return  # nothing to hold: no quota, nobody's, or not an object
    from .limits import LimitStoreError

    try:
        quota.settle(user, stored["upload_id"], int(stored["size"]),
                     credentials if quota.needs_credentials else None)
    except LimitStoreError as exc:
        if log:
            log.warning(json.dumps({"quota_not_settled": stored["upload_id"], "error": str(exc)[:200]}))


def lookup_object(oss: OssClient, key: str, credentials: Credentials) -> Any:
    try:
        return oss.head_object(key, credentials)
    except OssError as exc:
        raise OssdirectError("ObjectLookupFailed",
                             f"the bucket could not be asked about the object ({exc.code or exc.status})",
                             E.UNAVAILABLE) from None


UPLOADING = Status.UPLOADING  # a multipart session's record before its object exists (multipart.py)


def write_record(store: RecordStore, record: dict[str, Any], credentials: Credentials | None,
                 log: Logger | None = None) -> tuple[dict[str, Any], bool]:
    """Record once per upload id. A second object under the same upload id is refused; the same
    object uploaded again (overwrite allowed) updates the record from what OSS now holds. A multipart
    session's ``uploading`` record for the same key becomes the record (its first writer wins)."""
    try:
        stored, created = store.put(record, credentials)
        if created:
            return stored, True
        if stored.get("status") == UPLOADING and stored["key"] == record["key"]:
            # a multipart session (multipart.py) waiting for its object: this is its first record, not a
            # replay. Conditional: of two writers only one turns it; the other reads the result below.
            facts = {f: v for f, v in record.items() if f not in ("upload_id", "source", "multipart_id")}
            turned, applied = store.update(record["upload_id"], {"status": UPLOADING}, facts, credentials)
            if applied and turned is not None:
                return turned, True
            stored = turned if turned is not None else stored  # the other writer's result
        if stored["key"] != record["key"]:
            if log:
                log.warning(json.dumps({"refused": "UploadIdAlreadyUsed", "upload_id": record["upload_id"],
                                        "key": record["key"], "recorded_key": stored["key"]}))
            raise OssdirectError("UploadIdAlreadyUsed",
                                 "this upload id already recorded another object; one form records one object",
                                 E.CONFLICT)
        if stored["etag"] != record["etag"]:
            facts = {f: record[f] for f in ("size", "etag", "content_type", "crc64", "content_md5")}
            facts["updated_at"] = record["created_at"]
            updated, _ = store.update(record["upload_id"], {"etag": stored["etag"]}, facts, credentials)
            stored = updated if updated is not None else stored
        return stored, False
    except RecordStoreError as exc:
        raise OssdirectError("RecordStoreUnavailable",
                             f"the upload is stored but could not be recorded ({exc})", E.UNAVAILABLE) from None
