"""The signature function's logic: turn a request into one signed PostObject form.

What a form pins is written once, as policy conditions, in :func:`form_policy`. OSS stores
form fields that the policy does not mention, so every field the server sets is an exact
condition, and the form's fields are *derived* from those conditions
(:meth:`PostPolicy.pinned_fields`): a field cannot be sent without being pinned.

Per configuration and form shape (V4/V1, STS or not, exact key or prefix, how the type is
bound) the policy and the answer are compiled once into :class:`JsonTemplate` s; a request
only fills the slots (key, size, type, upload id, dates) and signs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import unicodedata
from collections import namedtuple
from functools import lru_cache
from urllib.parse import quote

from ..settings import JSON_BODY_TYPE, MAX_FORM_OBJECT, type_admitted
from .. import errors as E
from ..errors import OssdirectError
from ..oss.policy import EXPIRATION_FORMAT, JsonTemplate, PostPolicy, Slot, json_values
from ..oss.policy import json_string as _escape
from ..oss.signer import V4_ALGORITHM, v1_signature, v4_credential, v4_signature

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any, Callable, Mapping

    from ..oss.credentials import Credentials

    Config = Any  # ossdirect.settings.Config: its attributes are set from the settings table, not declared

UPLOAD_ID_FIELD = "x:upload_id"
FILENAME_FIELD = "x:filename"
# Object metadata HeadObject shows later: how the callback (and the event path) know the object
# came from one of our forms, and which one.
UPLOAD_ID_META = "x-oss-meta-upload-id"
FILENAME_META = "x-oss-meta-filename"  # percent-encoded display name (metadata is ASCII)
USER_FIELD, USER_META = "x:user", "x-oss-meta-user"  # the signed-in user's sub (percent-encoded in metadata)
PAYLOAD_FIELD, PAYLOAD_META = "x:payload", "x-oss-meta-payload"  # the authorizer's JSON (base64url in metadata)
# The CRC-64/ECMA the client computed while reading the file (decimal, as OSS's x-oss-hash-crc64ecma):
# pinned, so the callback and the event path can compare it with what OSS computed from the bytes it got.
CRC64_META = "x-oss-meta-crc64"
MAX_PAYLOAD_BYTES = 1024
MAX_KEY_BYTES = 1023

# Callback variables (spec: OSS upload callback). Form values are URL-encoded by OSS.
_FORM_VARS = (
    ("bucket", "${bucket}"), ("object", "${object}"), ("etag", "${etag}"), ("size", "${size}"),
    ("mimeType", "${mimeType}"), ("crc64", "${crc64}"), ("contentMd5", "${contentMd5}"),
    ("height", "${imageInfo.height}"), ("width", "${imageInfo.width}"), ("format", "${imageInfo.format}"),
    ("clientIp", "${clientIp}"), ("reqId", "${reqId}"),
)
# JSON bodies get only variables whose JSON typing is documented (empty image info would break JSON).
_JSON_VARS = ("bucket", "object", "etag", "size", "mimeType")


def default_callback_body(body_type: str) -> str:
    custom = [("upload_id", "${x:upload_id}")]
    if body_type == JSON_BODY_TYPE:
        pairs = [(n, f"${{{n}}}") for n in _JSON_VARS] + custom
        return "{" + ",".join(f'"{n}":{v}' for n, v in pairs) + "}"
    return "&".join(f"{n}={v}" for n, v in list(_FORM_VARS) + custom)


def new_upload_id() -> str:
    # 128 random bits from the OS CSPRNG (what secrets.token_hex does, without importing random)
    return os.urandom(16).hex()


_UNSAFE_NAME = re.compile(r"[^\w.\- ()]+", re.UNICODE)
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
# control, format (bidi overrides, zero-width), surrogate, private-use, unassigned, line/paragraph separators
_INVISIBLE = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def display_name(filename: str) -> str:
    """The file's name as people should see it: last path segment, NFC, nothing invisible or
    direction-changing (RTL overrides, CR/LF, BEL), whitespace collapsed, at most 255 UTF-8 bytes."""
    name = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
    if not (name.isascii() and name.isprintable()):  # printable ASCII has nothing to remove
        name = unicodedata.normalize("NFC", name)
        name = "".join(c for c in name if c.isspace() or unicodedata.category(c) not in _INVISIBLE)
    name = " ".join(name.split())
    while len(name.encode("utf-8")) > 255:
        name = name[:-1]
    return name


def sanitize_name(name: str) -> str:
    """A file name that is one safe key segment: no slashes, no leading dots, no control chars."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    while len(name.encode("utf-8")) > 200:
        name = name[:-1]
    return name


_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+")  # needs no escaping anywhere: the common case, kept fast


def content_disposition(kind: str, name: str) -> str:
    """``inline`` or ``attachment`` with the display name (RFC 6266: ASCII fallback + UTF-8 form)."""
    if not name:
        return kind
    if _PLAIN_NAME.fullmatch(name):
        return f"{kind}; filename=\"{name}\"; filename*=UTF-8''{name}"
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _extension(filename: str) -> str:
    stem, dot, ext = filename.rpartition(".")
    return "." + ext.lower() if dot and 1 <= len(ext) <= 10 and ext.isascii() and ext.isalnum() else ""


def _folder(raw: str) -> str:
    parts = [sanitize_name(p) for p in raw.replace("\\", "/").split("/") if p.strip()]
    if len(parts) > 8 or any(not p for p in parts):
        raise OssdirectError("InvalidFolder", "folder must be up to 8 plain path segments", E.INVALID)
    return "".join(p + "/" for p in parts)


def _int_param(params: Mapping[str, str], name: str) -> int:
    raw = params.get(name, "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 13):
        raise OssdirectError("InvalidParameter", f"{name} must be a non-negative integer", E.INVALID)
    return int(raw)


class Grant:
    """What one caller may upload: the configuration, narrowed (never widened) by the sign-in
    (per-user folder) and the authorizer hook. ``user``/``payload`` are pinned into the object."""

    __slots__ = ("prefix", "max_bytes", "content_types", "namings", "user", "payload")

    def __init__(self, config: Config, prefix: str | None = None, max_bytes: int | None = None,
                 content_types: Any = None, namings: Any = None, user: str | None = None,
                 payload: str | None = None) -> None:
        self.prefix = config.prefix if prefix is None else prefix
        self.max_bytes = config.max_bytes if max_bytes is None else max_bytes
        self.content_types = config.content_types if content_types is None else tuple(content_types)
        self.namings = config.namings if namings is None else tuple(namings)
        self.user, self.payload = user, payload  # payload: compact JSON text or None

    def content_type_allowed(self, config: Config, content_type: str) -> bool:
        # the configuration's own list (no hook narrowed it) needs one check, not two
        return config.content_type_allowed(content_type) and (
            self.content_types is config.content_types or type_admitted(self.content_types, content_type))


def stored_headers(config: Config, disposition: Any) -> tuple[tuple[str, Any], ...]:
    """How every upload is stored, in order: a form pins each as a policy condition, a multipart
    upload sends each to InitiateMultipartUpload (:func:`initiate_headers`)."""
    return (("x-oss-object-acl", config.object_acl), ("x-oss-storage-class", config.storage_class),
            ("Content-Disposition", disposition), ("Cache-Control", config.cache_control),
            ("Content-Encoding", "identity"),
            ("Expires", "0"))  # RFC 9111: "0" is a time in the past; Cache-Control governs anyway


def filename_meta(shown: str) -> str:
    return shown if _PLAIN_NAME.fullmatch(shown) else quote(shown, safe="")


def user_meta(user: str | None) -> str:
    return quote(user or "", safe="")


def payload_meta(payload: str | None) -> str:
    if not payload:
        return ""  # what base64 of nothing is
    return base64.urlsafe_b64encode((payload or "").encode("utf-8")).decode("ascii")


def resolve_key(config: Config, grant: Grant, params: Mapping[str, str],
                upload_id: str) -> tuple[str, str | None, str]:
    """``(directory, key, shown)`` for a request's ``naming``, ``folder`` and ``filename``: the
    exact key (None without a filename) and the display name. Raises OssdirectError (invalid) for bad values."""
    naming = params.get("naming") or grant.namings[0]
    if naming not in grant.namings:
        raise OssdirectError("InvalidNaming", f"naming must be one of {', '.join(grant.namings)}", E.INVALID)
    folder = ""
    if params.get("folder"):
        if not config.allow_folders:
            raise OssdirectError("FoldersNotAllowed", "this endpoint does not accept a destination folder", E.INVALID)
        folder = _folder(params["folder"])
    directory = grant.prefix + folder

    filename = params.get("filename", "")
    if len(filename) > 1024:
        raise OssdirectError("InvalidFilename", "filename is longer than 1024 characters", E.INVALID)
    shown = display_name(filename)
    if "filename" in params and not (sanitize_name(filename) if naming == "original" else shown.strip(" ./")):
        raise OssdirectError("InvalidFilename", "filename must contain at least one usable character", E.INVALID)
    key = None
    if filename:
        key = directory + (sanitize_name(filename) if naming == "original" else upload_id + _extension(shown))
        if len(key) * 4 > MAX_KEY_BYTES and len(key.encode("utf-8")) > MAX_KEY_BYTES:  # UTF-8: <= 4 bytes/char
            raise OssdirectError("KeyTooLong", "the object key would exceed 1023 bytes", E.INVALID)
    return directory, key, shown


def resolve_content_type(config: Config, grant: Grant, params: Mapping[str, str]) -> str:
    """The declared type, lower-case ('' when none), checked against what this caller may upload."""
    content_type = params.get("content_type", "").strip().lower()
    if not content_type:
        return content_type
    if not _type_well_formed(content_type):
        raise OssdirectError("InvalidContentType", "content_type must look like type/subtype", E.INVALID)
    if not grant.content_type_allowed(config, content_type):
        raise OssdirectError("UnsupportedContentType", f"content type {content_type!r} is not accepted here",
                             E.UNSUPPORTED_TYPE)
    return content_type


@lru_cache(maxsize=256)
def _type_well_formed(content_type: str) -> bool:
    return bool(_CONTENT_TYPE.match(content_type))


def declared_crc64(params: Mapping[str, str]) -> str | None:
    """The ``crc64`` request parameter (the file's CRC-64/ECMA as OSS writes it: unsigned decimal), or None."""
    raw = params.get("crc64")
    if raw is None or raw == "":
        return None
    raw = str(raw)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20 and int(raw) < 1 << 64):
        raise OssdirectError("InvalidChecksum", "crc64 must be the file's CRC-64/ECMA as an unsigned decimal number",
                             E.INVALID)
    return str(int(raw))


def initiate_headers(config: Config, content_type: str, shown: str, upload_id: str, grant: Grant,
                     crc64: str | None = None) -> dict[str, str]:
    """What InitiateMultipartUpload must send so the object is stored exactly as an exact-key form
    stores it: the type, the stored headers, no overwrite, and the same metadata (upload id, file
    name, and when signed in the user and the authorizer's payload)."""
    headers = {"Content-Type": content_type}
    headers.update(stored_headers(config, content_disposition(config.content_disposition, shown)))
    if config.forbid_overwrite:
        headers["x-oss-forbid-overwrite"] = "true"
    headers[UPLOAD_ID_META] = upload_id
    headers[FILENAME_META] = filename_meta(shown)
    headers[USER_META] = user_meta(grant.user)  # always: an empty value is "nobody", pinned
    headers[PAYLOAD_META] = payload_meta(grant.payload)
    if crc64 is not None:
        headers[CRC64_META] = crc64
    return headers


def callback_vars(upload_id: str, shown: str, grant: Grant) -> str:
    """The ``x:`` callback variables a form sends as fields, as CompleteMultipartUpload's base64
    ``x-oss-callback-var``."""
    values = {UPLOAD_ID_FIELD: upload_id, FILENAME_FIELD: shown}
    if grant.user is not None or grant.payload is not None:
        values[USER_FIELD] = grant.user or ""
        values[PAYLOAD_FIELD] = grant.payload or ""
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


class RawJson(str):
    """A value that is already JSON text (a template slot takes it as it is)."""


# What decides a form's structure (not its values): one compiled template per shape.
# type_binding: "exact" (the declared type) or "in" (the configured list of exact types).
# seed_compat: the reduced form the seed samples' own clients can send (OSSDIRECT_COMPAT=seed).
# identified: the form pins who uploaded (user) and the authorizer's payload (empty when none).
# declared_crc: the client declared the file's CRC-64 (pinned as metadata).
Shape = namedtuple("Shape", "v4 sts exact_key type_binding has_callback seed_compat identified declared_crc")


def form_policy(config: Config, shape: Any) -> PostPolicy:
    """Every condition a form carries, in order: the single statement of what a form pins."""
    if shape.seed_compat:
        return seed_compat_policy(config, shape)
    p = PostPolicy(Slot("expiration"))
    p.exact("bucket", config.bucket)
    if shape.exact_key:
        p.eq("key", Slot("key"))
    else:  # prefix form: any key under the directory, at most one recorded per upload id
        p.starts_with("key", Slot("dir"))
    _signer_conditions(p, shape)
    p.content_length_range(Slot("min_bytes"), Slot("max_bytes"))
    # The stored type: x-oss-content-type outranks the file part's own type; never a prefix match
    # (starts-with "image/" admits "image/x,text/html", which a browser renders as HTML).
    if shape.type_binding == "exact":
        p.eq("Content-Type", Slot("content_type"))
        p.eq("x-oss-content-type", Slot("content_type"))
    else:
        p.in_("x-oss-content-type", Slot("content_types"))
    # Stored headers a client could otherwise set on the object.
    for name, value in stored_headers(config, Slot("content_disposition")):
        p.eq(name, value)
    if config.success_status:
        p.eq("success_action_status", config.success_status)
    p.eq("success_action_redirect", "")  # empty: no redirect (a client's would be an open redirect)
    if config.forbid_overwrite:
        p.eq("x-oss-forbid-overwrite", "true")
    if shape.has_callback:
        p.eq("callback", Slot("callback"))
    p.eq(UPLOAD_ID_FIELD, Slot("upload_id"))
    p.eq(UPLOAD_ID_META, Slot("upload_id"))
    if shape.exact_key:
        p.eq(FILENAME_FIELD, Slot("filename"))
        p.eq(FILENAME_META, Slot("filename_meta"))
    if shape.identified:
        p.eq(USER_FIELD, Slot("user_field"))
        p.eq(USER_META, Slot("user_meta"))
        p.eq(PAYLOAD_FIELD, Slot("payload_text"))
        p.eq(PAYLOAD_META, Slot("payload_meta"))
    if shape.declared_crc:
        p.eq(CRC64_META, Slot("crc64"))
    return p


def _signer_conditions(p: PostPolicy, shape: Any) -> None:
    """Who signed: the V4 fields (map form, as the SDKs write them) and the STS token."""
    if shape.v4:
        p.exact("x-oss-signature-version", V4_ALGORITHM)
        p.exact("x-oss-credential", Slot("credential"))
        p.exact("x-oss-date", Slot("x_oss_date"))
    if shape.sts:
        p.exact("x-oss-security-token", Slot("security_token"))


def seed_compat_policy(config: Config, shape: Any) -> PostPolicy:
    """Only what the seed samples' clients send, unchanged: their key under the directory, the size
    range, ``success_action_status=200``, the signature fields and (V1 samples) the callback. No
    type, stored headers, upload id or file name are pinned: see the README before turning it on."""
    p = PostPolicy(Slot("expiration"))
    p.exact("bucket", config.bucket)
    p.starts_with("key", Slot("dir"))
    _signer_conditions(p, shape)
    p.content_length_range(Slot("min_bytes"), Slot("max_bytes"))
    p.eq("success_action_status", "200")
    if shape.has_callback:
        p.eq("callback", Slot("callback"))
    return p


class _Compiled:
    """The policy and the answer of one shape, as templates."""

    def __init__(self, config: Config, shape: Any, limits: Any) -> None:
        policy = form_policy(config, shape)
        self.policy = JsonTemplate(policy.to_dict())
        signed = ([("policy", Slot("policy")), ("x-oss-signature", Slot("signature"))] if shape.v4 else
                  [("OSSAccessKeyId", Slot("access_key_id")), ("policy", Slot("policy")),
                   ("Signature", Slot("signature"))])
        pinned = [(n, v) for n, v in policy.pinned_fields() if n != "key"]
        field_list = [["key", Slot("key_field")]] + [list(f) for f in signed + pinned]
        answer = {
            # what upload widgets take as is (Uppy AwsS3 getUploadParameters, antd/Element `data`,
            # Plupload multipart_params); `field_list` keeps the order for clients that send it verbatim
            "method": "POST", "url": config.upload_host, "fields": dict(field_list), "field_list": field_list,
            "version": "v4" if shape.v4 else "v1", "host": config.upload_host, "dir": Slot("dir"),
            "key": Slot("key") if shape.exact_key else None, "policy": Slot("policy"),
            "signature": Slot("signature"),
            "security_token": Slot("security_token") if shape.sts else None,
            "callback": Slot("callback") if shape.has_callback else None, "upload_id": Slot("upload_id"),
            "expire": Slot("expire"), "expires_at": Slot("expiration"), "limits": limits,
            "user": Slot("user") if shape.identified else None,
            "payload": Slot("payload") if shape.identified else None,
        }
        if shape.v4:
            answer.update(x_oss_signature_version=V4_ALGORITHM, x_oss_credential=Slot("credential"),
                          x_oss_date=Slot("x_oss_date"))
        else:
            answer["accessid"] = Slot("access_key_id")
        self.answer = JsonTemplate(answer)


class FormIssuer:
    """Issues signed forms for one configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.limits = config.public_limits()
        self.callback_b64 = self.callback_param() if config.callback_url else ""
        self.callback_json = RawJson(f'"{self.callback_b64}"')  # base64: no escaping, now or per request
        self._compiled: dict[Any, _Compiled] = {}
        self._clock: tuple[Any, Any] = (None, None)
        self._signer: tuple[Any, dict[str, str]] = (None, {})

    def callback_param(self, upload_id: str | None = None) -> str:
        """The base64 ``callback`` parameter. Seed clients send no ``x:`` fields, so their callback
        body carries the upload id as text (the pinned callback itself cannot be changed)."""
        config = self.config
        callback = {"callbackUrl": config.callback_url}
        if config.callback_host:
            callback["callbackHost"] = config.callback_host
        body = config.callback_body or default_callback_body(config.callback_body_type)
        if upload_id:
            body = body.replace("${x:upload_id}", upload_id)
        callback["callbackBody"] = body
        callback["callbackBodyType"] = config.callback_body_type
        text = json.dumps(callback, separators=(",", ":"), ensure_ascii=False)
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    def _template(self, shape_key: tuple[Any, ...]) -> _Compiled:
        compiled = self._compiled.get(shape_key)
        if compiled is None:
            compiled = self._compiled[shape_key] = _Compiled(self.config, Shape(*shape_key), self.limits)
        return compiled

    def _signer_texts(self, creds: Credentials, date: str, x_oss_date: str, expiration: str,
                      expire: int) -> dict[str, str]:
        """The JSON texts of what a form takes from the clock's second and the credentials (a copy, for this
        request to fill): escaping the ~400-character STS token once a second, not per form."""
        key = (creds.access_key_id, creds.security_token, x_oss_date, expiration)
        cached = self._signer
        if cached[0] != key:
            token = creds.security_token
            cached = self._signer = (key, {
                "expiration": _escape(expiration), "expire": str(expire), "x_oss_date": _escape(x_oss_date),
                "credential": _escape(v4_credential(creds.access_key_id, date, self.config.region)),
                "security_token": _escape(token) if token is not None else "null",
                "access_key_id": _escape(creds.access_key_id)})
        return dict(cached[1])

    def _times(self, now: datetime | None) -> tuple[str, str, str, int]:
        """(yyyymmdd, x-oss-date, policy expiration, expiry epoch) for this second, in UTC. time.gmtime,
        not datetime: importing datetime costs the cold start 2 ms."""
        second = int(time.time()) if now is None else int(now.timestamp())
        if self._clock[0] != second:
            expires = second + self.config.expires_seconds
            utc = time.gmtime(second)
            self._clock = (second, (time.strftime("%Y%m%d", utc), time.strftime("%Y%m%dT%H%M%SZ", utc),
                                    time.strftime(EXPIRATION_FORMAT, time.gmtime(expires)), expires))
        return self._clock[1]

    def issue_json(self, creds: Credentials, params: Mapping[str, str], now: datetime | None = None,
                   upload_id: str | None = None, grant: Grant | None = None) -> str:
        """The signed form as the JSON text the signature function answers."""
        config = self.config
        grant = grant or Grant(config)
        upload_id = upload_id or new_upload_id()

        version = (params.get("signature_version") or config.signature_versions[0]).lower()
        if version not in config.signature_versions:
            raise OssdirectError("UnsupportedSignatureVersion",
                                 f"signature_version must be one of {', '.join(config.signature_versions)}", E.INVALID)
        directory, key, shown = resolve_key(config, grant, params, upload_id)
        if key is None and not (config.prefix_forms or config.compat == "seed"):
            raise OssdirectError("FilenameRequired", "filename is required: this endpoint issues exact-key forms only",
                                 E.INVALID)

        min_bytes, max_bytes = config.min_bytes, grant.max_bytes
        if "size" in params:
            size = _int_param(params, "size")
            if size > max_bytes:
                raise OssdirectError("EntityTooLarge", f"the file is {size} bytes; the limit is {max_bytes}",
                                     E.TOO_LARGE)
            if size > MAX_FORM_OBJECT:
                raise OssdirectError("UseMultipart", f"a form uploads at most {MAX_FORM_OBJECT} bytes: "
                                     "upload this file in parts (POST <signature-url>/multipart)", E.TOO_LARGE)
            if size < config.min_bytes:
                raise OssdirectError("EntityTooSmall", f"the file is {size} bytes; the minimum is {config.min_bytes}",
                                     E.INVALID)
            min_bytes = max_bytes = size
        max_bytes = min(max_bytes, MAX_FORM_OBJECT)

        content_type = resolve_content_type(config, grant, params)
        crc64 = declared_crc64(params)
        seed = config.compat == "seed" and key is None  # a seed client: it sends only the fields it knows
        if not seed and not content_type and any(t == "*" or t.endswith("/*") for t in grant.content_types):
            # one condition cannot say "any image but SVG": the client must declare the type
            raise OssdirectError("ContentTypeRequired",
                                 "content_type is required: the accepted types cannot be pinned without it", E.INVALID)

        date, x_oss_date, expiration, expire = self._times(now)
        # the seed V4 client (fetch + FormData) sends no callback; the V1 (Plupload) samples do
        has_callback = bool(config.callback_url) and not (seed and version == "v4")
        shape_key = (version == "v4", bool(creds.security_token), key is not None,
                     "exact" if content_type else "in", has_callback, seed,
                     not seed,  # every form but a seed client's pins user and payload (empty when none)
                     crc64 is not None)
        compiled = self._compiled.get(shape_key) or self._template(shape_key)
        # each value as JSON text, escaped once for both templates; what only changes with the second or
        # the credentials comes escaped from a one-entry cache
        texts = self._signer_texts(creds, date, x_oss_date, expiration, expire)
        texts.update(
            dir=_escape(directory), key=_escape(key) if key is not None else "null",
            key_field=_escape(key if key is not None else directory + "${filename}"),
            min_bytes=str(min_bytes), max_bytes=str(max_bytes), content_type=_escape(content_type),
            content_disposition=_escape(content_disposition(config.content_disposition, shown if key else "")),
            upload_id=_escape(upload_id), filename=_escape(shown), filename_meta=_escape(filename_meta(shown)),
            callback=_escape(self.callback_param(upload_id)) if seed and has_callback else self.callback_json,
            crc64=_escape(crc64) if crc64 is not None else "null")
        if not content_type:
            texts["content_types"] = json_values({"t": list(grant.content_types)})["t"]
        if not seed:  # identified
            user, payload = grant.user, grant.payload
            texts.update(user=_escape(user) if user is not None else "null", user_field=_escape(user or ""),
                         user_meta=_escape(user_meta(user)), payload=payload or "null",
                         payload_text=_escape(payload or ""), payload_meta=_escape(payload_meta(payload)))
        policy_b64 = base64.b64encode(compiled.policy.render_json(texts).encode("utf-8")).decode()
        signature = (v4_signature(creds.access_key_secret, date, config.region, policy_b64) if version == "v4"
                     else v1_signature(creds.access_key_secret, policy_b64))
        texts["policy"], texts["signature"] = f'"{policy_b64}"', f'"{signature}"'  # base64 and hex need no escaping
        return compiled.answer.render_json(texts)


def issue_form(config: Config, creds: Credentials, params: Mapping[str, str], now: datetime | None = None,
               upload_id: str | None = None, grant: Grant | None = None) -> dict[str, Any]:
    """Build and sign a form for one upload; ``params`` are the request's query values. Returns a dict."""
    return json.loads(FormIssuer(config).issue_json(creds, params, now, upload_id, grant))
