"""The signature function's logic: issue one signed PostObject form.

Everything the server sets is also a policy condition, because OSS accepts
form fields that the policy does not mention: the key (or its prefix), size
range, content type, no-overwrite, success status, the callback and the
upload id all travel as pinned fields.
"""

import base64
import json
import re
import secrets
import unicodedata
from datetime import timedelta

from .config import JSON_BODY_TYPE
from .http import ApiError
from .policy import PostPolicy, format_expiration, utc_now
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
    return secrets.token_hex(16)


_UNSAFE_NAME = re.compile(r"[^\w.\- ()]+", re.UNICODE)
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_EXT = re.compile(r"\.([A-Za-z0-9]{1,10})$")


def sanitize_name(name):
    """A file name that is one safe key segment: no slashes, no leading dots, no control chars."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    while len(name.encode("utf-8")) > 200:
        name = name[:-1]
    return name


def _extension(filename):
    match = _EXT.search(filename or "")
    return "." + match.group(1).lower() if match else ""


def _folder(raw):
    parts = [sanitize_name(p) for p in raw.replace("\\", "/").split("/") if p.strip()]
    if len(parts) > 8 or any(not p for p in parts):
        raise ApiError(400, "InvalidFolder", "folder must be up to 8 plain path segments")
    return "".join(p + "/" for p in parts)


def _int_param(params, name):
    raw = params.get(name, "")
    if not re.fullmatch(r"\d{1,13}", raw):
        raise ApiError(400, "InvalidParameter", f"{name} must be a non-negative integer")
    return int(raw)


def issue_form(config, creds, params, now=None, upload_id=None):
    """Build and sign a form for one upload; ``params`` are the request's query values."""
    now = now or utc_now()
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
    if "filename" in params and not sanitize_name(filename):
        raise ApiError(400, "InvalidFilename", "filename must contain at least one usable character")
    if filename:
        name = sanitize_name(filename) if naming == "original" else upload_id + _extension(filename)
        key = directory + name
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
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

    expires_at = now + timedelta(seconds=config.expires_seconds)
    policy = PostPolicy(format_expiration(expires_at)).exact("bucket", config.bucket)
    fields = []
    if key is not None:
        policy.eq("key", key)
        fields.append(("key", key))
    else:
        policy.starts_with("key", directory)
        fields.append(("key", directory + "${filename}"))

    sign_fields = []
    if version == "v4":
        date = now.strftime("%Y%m%d")
        x_oss_date = now.strftime("%Y%m%dT%H%M%SZ")
        credential = v4_credential(creds.access_key_id, date, config.region)
        policy.exact("x-oss-signature-version", V4_ALGORITHM)
        policy.exact("x-oss-credential", credential)
        policy.exact("x-oss-date", x_oss_date)
        sign_fields = [("x-oss-signature-version", V4_ALGORITHM), ("x-oss-credential", credential),
                       ("x-oss-date", x_oss_date)]
    if creds.security_token:
        policy.exact("x-oss-security-token", creds.security_token)

    policy.content_length_range(min_bytes, max_bytes)
    pinned = []
    if config.success_status:
        pinned.append(("success_action_status", config.success_status))
    if config.forbid_overwrite:
        pinned.append(("x-oss-forbid-overwrite", "true"))
    if content_type:
        # x-oss-content-type outranks the file part's own type, so the stored type is the pinned one.
        pinned += [("Content-Type", content_type), ("x-oss-content-type", content_type)]
    else:
        _restrict_unhinted_type(policy, config)

    callback_b64 = None
    if config.callback_url:
        callback = {"callbackUrl": config.callback_url}
        if config.callback_host:
            callback["callbackHost"] = config.callback_host
        callback["callbackBody"] = config.callback_body or default_callback_body(
            config.callback_body_type, bool(filename))
        callback["callbackBodyType"] = config.callback_body_type
        callback_b64 = base64.b64encode(
            json.dumps(callback, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).decode("ascii")
        pinned.append(("callback", callback_b64))
    pinned.append((UPLOAD_ID_FIELD, upload_id))
    if filename:
        pinned.append((FILENAME_FIELD, filename))
    for name, value in pinned:
        policy.eq(name, value)

    policy_b64 = policy.to_base64()
    if version == "v4":
        signature = v4_signature(creds.access_key_secret, date, config.region, policy_b64)
        fields += [("policy", policy_b64)] + sign_fields + [("x-oss-signature", signature)]
    else:
        signature = v1_signature(creds.access_key_secret, policy_b64)
        fields += [("OSSAccessKeyId", creds.access_key_id), ("policy", policy_b64), ("Signature", signature)]
    if creds.security_token:
        fields.append(("x-oss-security-token", creds.security_token))
    fields += pinned

    result = {
        "version": version,
        "host": config.upload_host,
        "dir": directory,
        "key": key,
        "policy": policy_b64,
        "signature": signature,
        "security_token": creds.security_token,
        "callback": callback_b64,
        "upload_id": upload_id,
        "expire": int(expires_at.timestamp()),
        "expires_at": format_expiration(expires_at),
        "fields": [list(f) for f in fields],
        "limits": config.public_limits(),
    }
    if version == "v4":
        result.update(x_oss_signature_version=V4_ALGORITHM, x_oss_credential=credential, x_oss_date=x_oss_date)
    else:
        result["accessid"] = creds.access_key_id
    return result


def _restrict_unhinted_type(policy, config):
    """Bind the stored type when the client did not declare one, if one condition can say it."""
    types = config.content_types
    if not types:
        return
    wildcards = [t for t in types if t.endswith("/*")]
    if not wildcards:
        policy.in_("x-oss-content-type", types)
    elif len(types) == 1:
        policy.starts_with("x-oss-content-type", types[0][:-1])
    else:
        raise ApiError(400, "ContentTypeRequired",
                       "content_type is required: the accepted types cannot be pinned without it")
