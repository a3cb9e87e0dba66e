"""The process function's logic: FC3 OSS-trigger events -> confirm, record once, check content,
quarantine, run the user's hook once.

OSS calls the upload callback once and never retries it: when the callback function is slow, down or
throttled, OSS answers the browser 203, keeps the object, and nothing is recorded. The OSS trigger
(``oss:ObjectCreated:*`` on the upload prefix) delivers every created object to this function at least
once, with the platform's retries, so the record is written here when the callback did not. Both
writers go through :func:`ossdirect.callbacks.write_record`: the store's ``put`` keeps one record
per upload id whoever comes first; every later change is a conditional ``update``.

Per object (:meth:`Processor.process_object`, also what ``python -m ossdirect reconcile --fix`` runs):

1. HeadObject (:func:`ossdirect.callbacks.lookup_object`, the callback's own lookup): size, ETag,
   type and the pinned metadata come from OSS, never from the event or a client.
2. The upload id and user come from the object's pinned metadata. No upload id: no form of ours
   produced it, so it is *foreign*: ``upload_id = "foreign:" + sha256(key, etag)[:32]``, status
   ``foreign``, and it is quarantined (its origin is unknown) unless ``OSSDIRECT_QUARANTINE=off``.
   Objects a hook wrote beside an upload (:meth:`ObjectHandle.put_beside`) carry
   ``x-oss-meta-derived-from`` naming a recorded upload: status ``derived``, never quarantined for origin.
3. Content check: the first :data:`SNIFF_BYTES` (ranged GET) identified with ``puremagic`` and compared
   with the pinned declared type (:func:`content_verdict`); a mismatch is quarantined
   (``OSSDIRECT_QUARANTINE``: ``move`` = copy to ``OSSDIRECT_QUARANTINE_PREFIX`` as private, then
   delete; ``private`` = PutObjectAcl private; ``off`` = record the verdict only).
4. The hook (``OSSDIRECT_ON_UPLOAD=module:function``), for kept uploads of ours only, exactly once
   across callback + event + replays: claimed with a conditional update (``hook_status`` None/``retry``
   -> ``running``, ``hook_attempts`` + 1), then ``done``; a failure is ``retry`` (and the function
   raises, so the platform redelivers) until ``OSSDIRECT_HOOK_MAX_ATTEMPTS``, then ``failed`` with
   ``hook_error`` (no raise: recorded, never lost silently).
"""

import hashlib
import json
from urllib.parse import unquote

from .callbacks import CORRUPT, checksum_mismatch
from ..settings import QUARANTINE_MODES, ProcessConfigError, ProcessSettings, is_active_content_type, section_names
from .forms import UPLOAD_ID_META
from ..errors import OssdirectError
from ..store import HookStatus, Status, utc_stamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping

from ..log import log

# The variables load_process_settings reads, without the prefix (the settings table's process rows).
PROCESS_ENV_NAMES = section_names("process")
SNIFF_BYTES = 8192
# A hook claim older than this is taken to be dead (its instance was killed mid-hook): the next
# delivery may claim it again. Keep it at or above the process function's timeout (s.yaml).
HOOK_LEASE_SECONDS = 900
HOOK_FIELDS = ("image_width", "image_height", "image_format")  # record fields a hook's returned dict may set

_META_UPLOAD_ID = UPLOAD_ID_META[len("x-oss-meta-"):]
DERIVED_META = "x-oss-meta-derived-from"
_META_DERIVED = DERIVED_META[len("x-oss-meta-"):]

# Event names that leave a complete object (ObjectCreated:* also sends InitiateMultipartUpload and
# UploadPart, which do not).
_NOT_AN_OBJECT = ("InitiateMultipartUpload", "UploadPart", "UploadPartCopy")


class HookBusy(OssdirectError):
    """Another delivery holds the hook claim right now: raise, so the platform redelivers later."""


class HookFailed(OssdirectError):
    """The hook raised; it will be retried (the platform redelivers the event)."""


def load_process_settings(env: "Mapping[str, str] | None" = None, upload_prefix: str = "uploads/",
                          import_hook: bool = True) -> "ProcessSettings":
    """Read ``OSSDIRECT_QUARANTINE`` (move|private|off, default move), ``OSSDIRECT_QUARANTINE_PREFIX``
    (default ``quarantine/``; must lie outside the upload prefix, or the copy would be processed again),
    ``OSSDIRECT_ON_UPLOAD`` (``module:function``, imported now so a typo fails at cold start) and
    ``OSSDIRECT_HOOK_MAX_ATTEMPTS`` (1-20, default 3): the settings table's process rows, every
    problem in one ProcessConfigError."""
    from ..settings import ConfigError, load_process_section

    try:
        return load_process_section(env, upload_prefix, import_hook)
    except ConfigError as exc:
        raise ProcessConfigError(problems=exc.problems) from None


# -- events ---------------------------------------------------------------------------------------

def parse_oss_event(event):
    """FC3 OSS-trigger event (bytes, str or dict) -> ``[(event_name, bucket, key, etag, size)]``.

    Format (FC "trigger event formats", OSS): ``{"events": [{"eventName": "ObjectCreated:PutObject",
    "eventSource": "acs:oss", "oss": {"bucket": {"name"}, "object": {"key", "eTag", "size"}}, ...}]}``.
    Events that leave no object (``InitiateMultipartUpload``, ``UploadPart``...) are dropped."""
    if isinstance(event, (bytes, bytearray)):
        event = event.decode("utf-8")
    if isinstance(event, str):
        event = json.loads(event)
    if not isinstance(event, dict) or not isinstance(event.get("events"), list):
        raise ValueError("not an OSS trigger event (no events list)")
    out = []
    for item in event["events"]:
        if not isinstance(item, dict):
            raise ValueError("malformed OSS event")
        name = str(item.get("eventName", ""))
        if name.startswith("oss:"):
            name = name[4:]
        if item.get("eventSource") not in (None, "acs:oss") or not name.startswith("ObjectCreated:"):
            continue
        if name.split(":", 1)[1] in _NOT_AN_OBJECT:
            continue
        oss = item.get("oss") or {}
        obj = oss.get("object") or {}
        key = obj.get("key")
        if not isinstance(key, str) or not key:
            raise ValueError("OSS event without an object key")
        out.append((name, (oss.get("bucket") or {}).get("name"), key, (obj.get("eTag") or "").strip('"'),
                    obj.get("size")))
    return out


# -- content check --------------------------------------------------------------------------------

# Declared types puremagic identifies reliably from a signature at the start: for these, bytes the
# library cannot identify are a mismatch (a "PNG" without the PNG signature is not a PNG).
SIGNATURE_TYPES = frozenset((
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/x-icon",
    "image/avif", "image/heic", "image/heif", "application/pdf", "video/mp4", "video/quicktime",
    "video/webm", "video/x-matroska", "audio/mpeg", "audio/ogg", "audio/flac", "audio/wav",
    "application/zip", "application/gzip",
))
# Names for one format (browsers and puremagic do not always agree on the spelling).
_SAME = (
    {"image/jpeg", "image/jpg", "image/pjpeg"},
    {"image/x-icon", "image/vnd.microsoft.icon", "image/ico"},
    {"image/bmp", "image/x-bmp", "image/x-ms-bmp"},
    # ISO base media (ftyp box): the brand, not the signature, tells these apart
    {"video/mp4", "video/quicktime", "video/x-m4v", "video/3gpp", "video/3gpp2", "audio/mp4", "audio/x-m4a",
     "audio/m4a", "image/heic", "image/heif", "image/avif", "application/mp4"},
    {"audio/mpeg", "audio/mp3", "audio/x-mpeg", "audio/mpeg3"},
    {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"},
    {"audio/ogg", "video/ogg", "application/ogg", "audio/opus"},
    {"video/webm", "audio/webm", "video/x-matroska", "audio/x-matroska"},
    {"audio/flac", "audio/x-flac"},
    {"application/gzip", "application/x-gzip"},
    {"application/zip", "application/x-zip-compressed"},
)
_CANON = {}
for _group in _SAME:
    _first = sorted(_group)[0]
    for _t in _group:
        _CANON[_t] = _first


def _canon(content_type):
    ct = (content_type or "").split(";")[0].strip().lower()
    return _CANON.get(ct, ct)


# WHATWG MIME Sniffing, "rules for identifying an unknown MIME type" (scriptable): after whitespace,
# these tags (any case) followed by a tag-terminating byte make a browser render the bytes as HTML.
# Chromium's SniffForHTML uses the same list. Terminators here are a superset (also \t \n \r \f and /):
# flagging a little more than a browser sniffs costs a quarantined text file, flagging less an XSS.
_HTML_TAGS = (b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
              b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p")
_TAG_END = b" >\t\n\r\x0c/"
_SNIFF_WHITESPACE = b" \t\n\r\x0c"


def sniffs_as_markup(head):
    """True when a browser sniffing ``head`` could end at HTML or XML (so script could run)."""
    start = head[3:] if head.startswith(b"\xef\xbb\xbf") else head  # a UTF-8 BOM, as the page decoder skips it
    start = start.lstrip(_SNIFF_WHITESPACE)[:512].lower()
    if start.startswith((b"<!--", b"<?xml", b"<svg", b"<!doctype")):
        return True
    for tag in _HTML_TAGS:
        if start.startswith(tag) and (len(start) == len(tag) or start[len(tag)] in _TAG_END):
            return True
    return False


def _looks_like_text(head):
    """UTF-8 (a character cut at the sniff boundary allowed), no NUL, not markup a browser would sniff
    as HTML/XML: the bar for text/plain."""
    if b"\x00" in head:
        return False, "binary bytes (NUL) in a text upload"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return False, "not UTF-8 text"
    return True, None


def detect_types(head):
    """puremagic's candidates for ``head``: [(mime or '', extension, confidence)], best first."""
    import puremagic  # ~12 ms: only the process function pays, at its first check

    try:
        found = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return []
    return [(m.mime_type or "", m.extension or "", m.confidence) for m in found]


def content_verdict(declared, head):
    """``(ok, detected, reason)`` for bytes ``head`` (the object's first bytes) uploaded as ``declared``.

    Rules (puremagic candidates, any of them may match, names canonicalised by :data:`_SAME`):

    - a candidate equals the declared type: kept;
    - ``text/*`` declared (text/plain, csv, markdown: no signature exists): kept when the bytes are
      UTF-8 without NUL, do not start like HTML/XML, and the library finds no binary format in them;
    - nothing identified: a mismatch for :data:`SIGNATURE_TYPES` (the format has a signature, and it
      is missing), else kept, with ``detected`` None (unverifiable types such as audio/aac are let
      through: only a positive contradiction quarantines them);
    - anything else identified: a mismatch ("declared image/png, content is text/html").
    """
    want = _canon(declared)
    if head and sniffs_as_markup(head) and not is_active_content_type(want or "unknown/unknown"):
        # whatever the declared type, bytes a browser may sniff into a document are not kept under it
        return False, "text/html", (f"declared {declared or 'no type'}, content is text/html "
                                    "(markup a browser may render as a document)")
    # a one-byte signature ("{" for JSON, "(" for pickle; confidence 0.1) matches 1 in 256 files of any kind:
    # it may confirm the declared type, never contradict it (random bytes declared video/mp4 were quarantined
    # as application/json 0.8% of the time)
    found = [f for f in (detect_types(head) if head else []) if f[2] > 0.1 or _canon(f[0]) == want]
    mimes = [_canon(m) for m, _, _ in found if m]
    best = mimes[0] if mimes else (found[0][1].lstrip(".") if found else None)
    if want and want in mimes:
        return True, (declared or "").split(";")[0].strip().lower(), None
    if want.startswith("text/"):
        ok, why = _looks_like_text(head)
        if not ok:
            return False, best or "unknown", why
        binary = [m for m in mimes if not m.startswith("text/") and m not in ("application/json",)]
        if binary:
            return False, binary[0], f"declared {declared}, content is {binary[0]}"
        return True, (declared or "").split(";")[0].strip().lower(), None
    if not found:
        if want in SIGNATURE_TYPES or not head:
            return False, None, f"declared {declared or 'no type'}, content has no {declared or 'known'} signature"
        return True, None, None
    return False, best or "unknown", f"declared {declared or 'no type'}, content is {best or 'unknown'}"


# -- the object a hook gets -----------------------------------------------------------------------

class ObjectHandle:
    """What a hook may do with the upload: read its bytes, write a derived object beside it."""

    def __init__(self, processor, key, size, credentials, upload_id=None):
        self._p, self.key, self.size, self._creds, self.upload_id = processor, key, size, credentials, upload_id
        self.bucket = processor.config.bucket

    def read(self, start=0, length=None):
        """Bytes ``start`` .. ``start + length`` (default: to the end) via ranged GET."""
        length = self.size - start if length is None else length
        if length <= 0:
            return b""
        return self._p.oss.get_range(self.key, self._creds, start, length)

    def put_beside(self, suffix, data, content_type):
        """Write ``<key><suffix>`` (e.g. ``.thumb.jpg``), marked as derived from this upload, so the
        event it raises is recorded as ``derived`` (checked, never run through the hook again)."""
        if "/" in suffix or not suffix:
            raise ValueError("suffix must not contain '/'")
        key = self.key + suffix
        self._p.oss.put_object(key, data, self._creds, content_type,
                               {DERIVED_META: self.upload_id or "", "x-oss-object-acl": "default"})
        return key


# -- the processor --------------------------------------------------------------------------------

def foreign_id(key, etag):
    return "foreign:" + hashlib.sha256(f"{key}\n{etag}".encode("utf-8")).hexdigest()[:32]


class Processor:
    def __init__(self, config, settings, store, oss, log=log):
        self.config, self.settings, self.store, self.oss, self.log = config, settings, store, oss, log
        self.quota = None  # stored=: a Limiter told each recorded upload's real size (callbacks.settle_quota)

    def process_event(self, event, credentials):
        """Every object in one FC OSS-trigger event; raises (for the platform to redeliver) on any
        transient failure or a hook to retry, after handling the rest of the event's objects."""
        results, errors = [], []
        for name, bucket, key, etag, size in parse_oss_event(event):
            if bucket and bucket != self.config.bucket:
                results.append({"key": key, "action": "skipped", "reason": "another bucket"})
                continue
            try:
                results.append(self.process_object(key, credentials, event_etag=etag, event_name=name))
            except Exception as exc:  # noqa: BLE001 - the others still get processed; then re-raise
                errors.append(exc)
                results.append({"key": key, "action": "error", "error": exc.__class__.__name__})
        if errors:
            raise errors[0]
        return results

    def _lookup(self, key, credentials):
        from .callbacks import lookup_object

        info = lookup_object(self.oss, key, credentials)
        if info is None and ("%" in key or "+" in key):
            # The trigger's key is the object's name; should a delivery carry it URL-encoded, try that.
            alt = unquote(key)
            if alt != key:
                found = lookup_object(self.oss, alt, credentials)
                if found is not None:
                    return alt, found
        return key, info

    def process_object(self, key, credentials, event_etag=None, event_name=None, source="event"):
        from .callbacks import record_from_object

        prefix, qprefix = self.config.prefix_static, self.settings.quarantine_prefix
        if not key.startswith(prefix) or key.startswith(qprefix):
            return {"key": key, "action": "skipped", "reason": "outside the upload prefix"}
        key, info = self._lookup(key, credentials)
        if info is None:  # deleted since (or already moved to quarantine by another delivery)
            return {"key": key, "action": "gone"}
        meta = info.metadata
        record = record_from_object(self.config, key, info, source)
        kind = "upload"
        if not record["upload_id"] and self.config.compat == "seed" and not meta.get(_META_DERIVED):
            from .callbacks import SEED_REASON, seed_upload_id  # seed clients send no metadata: named by key+ETag

            record.update(upload_id=seed_upload_id(key, info.etag), status_reason=SEED_REASON)
        if not record["upload_id"]:
            derived = meta.get(_META_DERIVED)
            parent = self.store.get(derived, credentials) if derived else None
            if parent is not None and parent.get("status") not in (Status.QUARANTINED, Status.FOREIGN) \
                    and key.startswith(parent["key"]):
                kind = "derived"
                record.update(upload_id="derived:" + hashlib.sha256(f"{key}\n{info.etag}".encode()).hexdigest()[:32],
                              status=Status.DERIVED, status_reason=f"written by the hook for {derived}")
            else:
                kind = "foreign"
                record.update(upload_id=foreign_id(key, info.etag), status=Status.FOREIGN,
                              status_reason="no upload id metadata: not uploaded with a form of ours")
        stored, created = self._write(record, credentials)
        if stored is None:  # the upload id already recorded another object: treat this one as foreign
            kind = "foreign"
            record.update(upload_id=foreign_id(key, info.etag), status=Status.FOREIGN,
                          status_reason=f"upload id {record['upload_id']} already recorded another object")
            stored, created = self._write(record, credentials)
        if kind == "upload" and created:  # whichever of the callback and this records first settles
            from .callbacks import settle_quota

            settle_quota(self.quota, stored, credentials, self.log)
        result = {"key": key, "upload_id": stored["upload_id"], "action": "created" if created else "existing",
                  "event": event_name}
        stored = self._check(stored, key, info, kind, credentials)
        result["status"] = stored["status"]
        if kind == "upload" and stored["status"] == Status.RECORDED and self.settings.hook is not None:
            stored = self._run_hook(stored, key, info, credentials)
        result["hook_status"] = stored.get("hook_status")
        return result

    def _write(self, record, credentials):
        from .callbacks import write_record

        try:
            return write_record(self.store, record, credentials, self.log)
        except OssdirectError as exc:
            if exc.code == "UploadIdAlreadyUsed":
                return None, False
            raise

    # content check and quarantine
    def _check(self, stored, key, info, kind, credentials):
        if stored["etag"] != info.etag:
            return stored  # the record speaks of another version; that version's own event decides
        if stored.get("content_type_detected") is None:
            head = self.oss.get_range(key, credentials, 0, SNIFF_BYTES) if info.size else b""
            ok, detected, reason = content_verdict(info.content_type, head)
            mismatch = checksum_mismatch(info)
            if mismatch:  # the bytes are not the client's: never kept, whatever their type
                ok, reason = False, mismatch
            changes = {"content_type_detected": detected or "unknown", "updated_at": utc_stamp()}
            if not ok or kind == "foreign":
                if kind == "foreign":
                    reason = stored.get("status_reason") + (f"; {reason}" if reason else "")
                mode = self.settings.quarantine
                held = CORRUPT if mismatch else Status.QUARANTINED  # a corrupt upload is held the same way
                if mode == "move":
                    target = self.settings.quarantine_prefix + key
                    changes.update(status=held, quarantined_to=target, status_reason=f"{reason} (moved to {target})")
                elif mode == "private":
                    changes.update(status=held, status_reason=f"{reason} (made private)")
                elif not ok:  # off: recorded as suspect (or corrupt), left in place
                    changes.update(status=CORRUPT if mismatch else Status.SUSPECT, status_reason=reason)
            # the decision is written first (conditionally: the first delivery decides), then carried
            # out; a delivery that finds the object still in place carries it out again (idempotent)
            stored, applied = self.store.update(stored["upload_id"], {"content_type_detected": None,
                                                                      "status": stored["status"]},
                                                changes, credentials)
            if applied and self.log and changes.get("status") in (Status.QUARANTINED, Status.SUSPECT, CORRUPT):
                self.log.warning(json.dumps({"quarantined": key, "upload_id": stored["upload_id"],
                                             "reason": changes.get("status_reason")}))
        if stored["status"] == Status.QUARANTINED or \
                (stored["status"] == CORRUPT and self.settings.quarantine != "off"):
            self._quarantine(key, stored.get("quarantined_to"), credentials)
        return stored

    def _quarantine(self, key, target, credentials):
        from ..oss.client import OssError

        if not target:
            self.oss.put_object_acl(key, "private", credentials)
            return
        try:  # the copy is private whatever the bucket's ACL; metadata (upload id...) travels with it
            self.oss.copy_object(key, target, credentials, {"x-oss-object-acl": "private"})
        except OssError as exc:
            # NoSuchKey: another delivery moved it meanwhile, unless the source is still there
            if exc.code != "NoSuchKey" or self.oss.head_object(key, credentials) is not None:
                raise
            return
        self.oss.delete_object(key, credentials)

    # the hook, exactly once
    def _run_hook(self, stored, key, info, credentials):
        uid, limit = stored["upload_id"], self.settings.hook_max_attempts
        status, attempts = stored.get("hook_status"), int(stored.get("hook_attempts") or 0)
        if status in (HookStatus.DONE, HookStatus.FAILED):
            return stored
        if status == HookStatus.RUNNING:
            started = stored.get("hook_started_at") or ""
            if not _older_than(started, HOOK_LEASE_SECONDS):
                raise HookBusy(f"the hook for {uid} is running in another delivery")
        if attempts >= limit:  # a dead claim used the last attempt
            new, _ = self.store.update(uid, {"hook_status": status, "hook_attempts": stored.get("hook_attempts")},
                                       {"hook_status": HookStatus.FAILED, "hook_error": (stored.get("hook_error") or
                                                                                "the hook never finished"),
                                        "updated_at": utc_stamp()}, credentials)
            return new
        claim = {"hook_status": HookStatus.RUNNING, "hook_attempts": str(attempts + 1), "hook_started_at": utc_stamp()}
        expected = {"hook_status": status, "hook_attempts": stored.get("hook_attempts")}
        if status == HookStatus.RUNNING:
            expected["hook_started_at"] = stored.get("hook_started_at")
        claimed, applied = self.store.update(uid, expected, claim, credentials)
        if not applied:  # another delivery claimed it first: it owns the run
            if claimed.get("hook_status") == HookStatus.RUNNING:
                raise HookBusy(f"the hook for {uid} is running in another delivery")
            return claimed
        handle = ObjectHandle(self, key, info.size, credentials, uid)
        try:
            returned = self.settings.hook(dict(claimed), handle)
        except Exception as exc:  # noqa: BLE001 - the user's code: any failure is recorded
            error = f"{exc.__class__.__name__}: {exc}"[:500]
            final = attempts + 1 >= limit
            running = {"hook_status": HookStatus.RUNNING, "hook_attempts": claim["hook_attempts"]}
            new, _ = self.store.update(uid, running,
                                       {"hook_status": HookStatus.FAILED if final else HookStatus.RETRY,
                                        "hook_error": error, "updated_at": utc_stamp()}, credentials)
            if self.log:
                self.log.warning(json.dumps({"hook_failed": uid, "attempt": attempts + 1, "of": limit,
                                             "final": final, "error": error}))
            if final:
                return new
            raise HookFailed(f"hook attempt {attempts + 1} of {limit} failed for {uid}: {error}") from exc
        done = {"hook_status": HookStatus.DONE, "hook_error": None, "updated_at": utc_stamp()}
        if isinstance(returned, dict):  # what a hook may add to the record
            done.update({k: v for k, v in returned.items() if k in HOOK_FIELDS})
        new, _ = self.store.update(uid, {"hook_status": HookStatus.RUNNING, "hook_attempts": claim["hook_attempts"]},
                                   done, credentials)
        return new


def _older_than(stamp, seconds):
    from datetime import datetime, timezone  # only when a hook's claim is looked at

    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return True
    return (datetime.now(timezone.utc) - then).total_seconds() > seconds


def open_processor(environ=None, store=None, config=None, settings=None):
    """Config + process settings + store + OSS client from the environment (the function's cold start,
    and ``python -m ossdirect``). Raises ConfigError / ProcessConfigError / RecordStoreError."""
    from ..oss.client import OssClient

    if config is None:
        from ..settings import load_config

        config = load_config(environ)
    if settings is None:
        settings = load_process_settings(environ, config.prefix_static)
    if store is None:
        from ..store import open_record_store

        store = open_record_store(config)  # the authoritative store first, then the log (as the callback does)
    return Processor(config, settings, store, OssClient(config.oss_endpoint, config.bucket, config.region, timeout=5.0))
