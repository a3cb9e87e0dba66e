"""The signature function's logic: issue one signed PostObject form.

Everything the server sets is also a policy condition, because OSS accepts
form fields that the policy does not mention: the key (or its prefix), size
range, content type, no-overwrite, success status, the callback and the
upload id all travel as pinned fields.
"""

import base64
import json
from json.encoder import encode_basestring as _q  # JSON string, non-ASCII kept (what ali-oss signs)
import os
import re
import time
import unicodedata
from datetime import datetime, timedelta, timezone

from .config import JSON_BODY_TYPE
from .http import ApiError
from .policy import format_expiration
from .signing import V4_ALGORITHM, v1_signature, v4_credential, v4_signature

UPLOAD_ID_FIELD = "x:upload_id"
FILENAME_FIELD = "x:filename"
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


def default_callback_body(body_type, with_filename):
    custom = [("upload_id", "${x:upload_id}")] + ([("filename", "${x:filename}")] if with_filename else [])
    if body_type == JSON_BODY_TYPE:
        pairs = [(n, f"${{{n}}}") for n in _JSON_VARS] + custom
        return "{" + ",".join(f'"{n}":{v}' for n, v in pairs) + "}"
    return "&".join(f"{n}={v}" for n, v in list(_FORM_VARS) + custom)


def new_upload_id():
    # 128 random bits from the OS CSPRNG (what secrets.token_hex does, without importing random)
    return os.urandom(16).hex()


_UNSAFE_NAME = re.compile(r"[^\w.\- ()]+", re.UNICODE)
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def sanitize_name(name):
    """A file name that is one safe key segment: no slashes, no leading dots, no control chars."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    while len(name.encode("utf-8")) > 200:
        name = name[:-1]
    return name


def _extension(filename):
    stem, dot, ext = filename.rpartition(".")
    return "." + ext.lower() if dot and 1 <= len(ext) <= 10 and ext.isascii() and ext.isalnum() else ""


def _folder(raw):
    parts = [sanitize_name(p) for p in raw.replace("\\", "/").split("/") if p.strip()]
    if len(parts) > 8 or any(not p for p in parts):
        raise ApiError(400, "InvalidFolder", "folder must be up to 8 plain path segments")
    return "".join(p + "/" for p in parts)


def _int_param(params, name):
    raw = params.get(name, "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 13):
        raise ApiError(400, "InvalidParameter", f"{name} must be a non-negative integer")
    return int(raw)


class FormIssuer:
    """Issues signed forms for one configuration.

    The hot path assembles the policy and the response as JSON text from pieces escaped once:
    constants at construction, credential pieces per key/day, time pieces per second. Only the
    per-upload strings (key, file name, type) are escaped per request, and base64/hex values (which
    never need escaping) are inserted as they are. The output is byte-for-byte what
    ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` gives (tests check it).
    """

    def __init__(self, config):
        self.config = config
        self.bucket_cond = '{"bucket":' + _q(config.bucket) + "}"
        self.limits_json = json.dumps(config.public_limits(), separators=(",", ":"), ensure_ascii=False)
        self.host_json = _q(config.upload_host)
        self.prefix_json = _q(config.prefix)
        self.callbacks = {}
        if config.callback_url:
            for with_filename in (False, True):
                callback = {"callbackUrl": config.callback_url}
                if config.callback_host:
                    callback["callbackHost"] = config.callback_host
                callback["callbackBody"] = config.callback_body or default_callback_body(
                    config.callback_body_type, with_filename)
                callback["callbackBodyType"] = config.callback_body_type
                text = json.dumps(callback, separators=(",", ":"), ensure_ascii=False)
                self.callbacks[with_filename] = '"' + base64.b64encode(text.encode("utf-8")).decode("ascii") + '"'

        constant = []
        if config.success_status:
            constant.append(("success_action_status", config.success_status))
        if config.forbid_overwrite:
            constant.append(("x-oss-forbid-overwrite", "true"))
        constant_pinned = [(_q(n), _q(v)) for n, v in constant]
        # ready-made ",cond" / ",field" text for the pins every form of a kind carries
        self.fixed_pins = {}
        for with_filename in (False, True):
            pairs = list(constant_pinned)
            if self.callbacks.get(with_filename):
                pairs.append(('"callback"', self.callbacks[with_filename]))
            self.fixed_pins[with_filename] = ("".join(',["eq","$' + n[1:] + "," + v + "]" for n, v in pairs),
                                              "".join(",[" + n + "," + v + "]" for n, v in pairs))
        self._clock = (None, None)
        self._creds = (None, None)

    def _times(self, now):
        second = int(time.time()) if now is None else int(now.timestamp())
        if self._clock[0] != second:
            now = now or datetime.fromtimestamp(second, timezone.utc)
            expires_at = now + timedelta(seconds=self.config.expires_seconds)
            expiration = format_expiration(expires_at)
            self._clock = (second, (now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ"), expiration,
                                    int(expires_at.timestamp())))
        return self._clock[1]

    def _credential_pieces(self, creds, date, x_oss_date):
        """Escaped pieces that depend only on the credentials and the signing second."""
        ident = (creds.access_key_id, creds.security_token, x_oss_date)
        if self._creds[0] != ident:
            q_credential = _q(v4_credential(creds.access_key_id, date, self.config.region))
            q_token = _q(creds.security_token) if creds.security_token else None
            token_cond = '{"x-oss-security-token":' + q_token + "}," if q_token else ""
            self._creds = (ident, {
                "q_key_id": _q(creds.access_key_id),
                "q_token": q_token or "null",
                "token_field": ',["x-oss-security-token",' + q_token + "]" if q_token else "",
                "v1_conds": token_cond,
                "v4_conds": (f'{{"x-oss-signature-version":"{V4_ALGORITHM}"}},{{"x-oss-credential":{q_credential}}},'
                             f'{{"x-oss-date":"{x_oss_date}"}},{token_cond}'),
                "v4_fields": (f'["x-oss-signature-version","{V4_ALGORITHM}"],["x-oss-credential",{q_credential}],'
                              f'["x-oss-date","{x_oss_date}"],'),
                "v1_answer": ',"accessid":' + _q(creds.access_key_id),
                "v4_answer": (f',"x_oss_signature_version":"{V4_ALGORITHM}","x_oss_credential":{q_credential},'
                              f'"x_oss_date":"{x_oss_date}"'),
            })
        return self._creds[1]

    def issue_json(self, creds, params, now=None, upload_id=None):
        """The signed form as the JSON text the signature function answers."""
        config = self.config
        upload_id = upload_id or new_upload_id()

        version = (params.get("signature_version") or config.signature_versions[0]).lower()
        if version not in config.signature_versions:
            raise ApiError(400, "UnsupportedSignatureVersion",
                           f"signature_version must be one of {', '.join(config.signature_versions)}")
        naming = params.get("naming") or config.namings[0]
        if naming not in config.namings:
            raise ApiError(400, "InvalidNaming", f"naming must be one of {', '.join(config.namings)}")
        folder = ""
        if params.get("folder"):
            if not config.allow_folders:
                raise ApiError(400, "FoldersNotAllowed", "this endpoint does not accept a destination folder")
            folder = _folder(params["folder"])
        directory = config.prefix + folder

        filename = params.get("filename", "")
        if len(filename) > 1024:
            raise ApiError(400, "InvalidFilename", "filename is longer than 1024 characters")
        name = sanitize_name(filename) if naming == "original" else filename.strip(" ./\\")
        if "filename" in params and not name:
            raise ApiError(400, "InvalidFilename", "filename must contain at least one usable character")
        if filename:
            if naming != "original":
                name = upload_id + _extension(filename)
            key = directory + name
            if len(key) * 4 > MAX_KEY_BYTES and len(key.encode("utf-8")) > MAX_KEY_BYTES:  # UTF-8: <= 4 bytes/char
                raise ApiError(400, "KeyTooLong", "the object key would exceed 1023 bytes")
        elif config.prefix_forms:
            key = None
        else:
            raise ApiError(400, "FilenameRequired", "filename is required: this endpoint issues exact-key forms only")

        min_bytes, max_bytes = config.min_bytes, config.max_bytes
        if "size" in params:
            size = _int_param(params, "size")
            if size > config.max_bytes:
                raise ApiError(413, "EntityTooLarge", f"the file is {size} bytes; the limit is {config.max_bytes}")
            if size < config.min_bytes:
                raise ApiError(400, "EntityTooSmall", f"the file is {size} bytes; the minimum is {config.min_bytes}")
            min_bytes = max_bytes = size

        content_type = params.get("content_type", "").strip().lower()
        if content_type and not _CONTENT_TYPE.match(content_type):
            raise ApiError(400, "InvalidContentType", "content_type must look like type/subtype")
        if content_type and not config.content_type_allowed(content_type):
            raise ApiError(415, "UnsupportedContentType", f"content type {content_type!r} is not accepted here")
        type_condition = None if content_type else _unhinted_type_condition(config)

        date, x_oss_date, expiration, expire = self._times(now)
        c = self._credential_pieces(creds, date, x_oss_date)

        if key is not None:
            q_key = _q(key)
            key_cond = '["eq","$key",' + q_key + "]"
        else:
            q_key = _q(directory + "${filename}")
            key_cond = '["starts-with","$key",' + _q(directory) + "]"
        # Pinned fields: each is sent by the client and held by an "eq" condition.
        fixed_conds, fixed_fields = self.fixed_pins[bool(filename)]
        extra_cond = ""
        pinned_conds = pinned_fields = ""
        if content_type:
            q_type = _q(content_type)
            pinned_conds = f',["eq","$Content-Type",{q_type}],["eq","$x-oss-content-type",{q_type}]'
            pinned_fields = f',["Content-Type",{q_type}],["x-oss-content-type",{q_type}]'
        elif type_condition:
            extra_cond = "," + type_condition
        callback = self.callbacks.get(bool(filename))
        pinned_conds = f'{fixed_conds}{pinned_conds},["eq","${UPLOAD_ID_FIELD}","{upload_id}"]'
        pinned_fields = f'{fixed_fields}{pinned_fields},["{UPLOAD_ID_FIELD}","{upload_id}"]'
        if filename:
            q_filename = _q(filename)
            pinned_conds += f',["eq","${FILENAME_FIELD}",{q_filename}]'
            pinned_fields += f',["{FILENAME_FIELD}",{q_filename}]'

        v4 = version == "v4"
        policy_json = (f'{{"expiration":"{expiration}","conditions":[{self.bucket_cond},{key_cond},'
                       f'{c["v4_conds"] if v4 else c["v1_conds"]}["content-length-range",{min_bytes},{max_bytes}]'
                       f'{extra_cond}{pinned_conds}]}}')
        policy_b64 = base64.b64encode(policy_json.encode("utf-8")).decode("ascii")
        if v4:
            signature = v4_signature(creds.access_key_secret, date, config.region, policy_b64)
            sign_fields = f'["policy","{policy_b64}"],{c["v4_fields"]}["x-oss-signature","{signature}"]'
        else:
            signature = v1_signature(creds.access_key_secret, policy_b64)
            sign_fields = f'["OSSAccessKeyId",{c["q_key_id"]}],["policy","{policy_b64}"],["Signature","{signature}"]'
        q_dir = self.prefix_json if not folder else _q(directory)
        return (f'{{"version":"{version}","host":{self.host_json},"dir":{q_dir},'
                f'"key":{q_key if key is not None else "null"},"policy":"{policy_b64}","signature":"{signature}",'
                f'"security_token":{c["q_token"]},"callback":{callback or "null"},"upload_id":"{upload_id}",'
                f'"expire":{expire},"expires_at":"{expiration}",'
                f'"fields":[["key",{q_key}],{sign_fields}{c["token_field"]}{pinned_fields}],'
                f'"limits":{self.limits_json}{c["v4_answer"] if v4 else c["v1_answer"]}}}')


def issue_form(config, creds, params, now=None, upload_id=None):
    """Build and sign a form for one upload; ``params`` are the request's query values. Returns a dict."""
    return json.loads(FormIssuer(config).issue_json(creds, params, now, upload_id))


def _unhinted_type_condition(config):
    """Bind the stored type when the client did not declare one, if one condition can say it."""
    types = config.content_types
    if not types:
        return None
    wildcards = [t for t in types if t.endswith("/*")]
    if not wildcards:
        return '["in","$x-oss-content-type",[' + ",".join(_q(t) for t in types) + "]]"
    if len(types) == 1:
        return '["starts-with","$x-oss-content-type",' + _q(types[0][:-1]) + "]"
    raise ApiError(400, "ContentTypeRequired",
                   "content_type is required: the accepted types cannot be pinned without it")
