"""The callback function's logic: check what OSS says was stored, record it once."""

import json
from datetime import datetime, timezone
from urllib.parse import parse_qs, quote

from .callback_auth import CallbackAuthError, verify_callback
from .http import ApiError
from .records import RecordStoreError, new_record_id

MAX_CALLBACK_BODY = 64 * 1024

# callback body name -> record field (the default templates in forms.py use these names)
_BODY_FIELDS = {
    "bucket": "bucket", "object": "key", "etag": "etag", "size": "size", "mimeType": "content_type",
    "crc64": "crc64", "contentMd5": "content_md5", "height": "image_height", "width": "image_width",
    "format": "image_format", "clientIp": "client_ip", "reqId": "oss_request_id",
    "upload_id": "upload_id", "filename": "filename",
}


def parse_callback_body(content_type, body):
    """Form-urlencoded or JSON, per the request's Content-Type, into a flat dict of strings/numbers."""
    if len(body) > MAX_CALLBACK_BODY:
        raise ApiError(413, "CallbackBodyTooLarge", "callback body is too large")
    try:
        text = body.decode("utf-8")
        if content_type.split(";")[0].strip().lower() == "application/json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError
            return data
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True, strict_parsing=bool(text)).items()}
    except ValueError:
        raise ApiError(400, "MalformedCallbackBody", "callback body is not valid for its Content-Type") from None


def _int_or_none(value, name):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, "MalformedCallbackBody", f"{name} is not an integer") from None


def object_url(config, key):
    return f"{config.public_base_url}/{quote(key, safe='/')}"


def handle_callback(config, store, request, credentials=None, key_cache=None):
    """Verify, check, record; return the JSON OSS relays to the uploader."""
    try:
        verify_callback(request.headers, request.path, request.raw_query, request.body,
                        config.trusted_key_prefixes, key_cache)
    except CallbackAuthError as exc:
        if exc.malformed:
            raise ApiError(400, "MalformedCallback", str(exc)) from None
        raise ApiError(403, "InvalidCallbackSignature", str(exc)) from None

    data = parse_callback_body(request.header("content-type"), request.body)
    record = {field: data.get(name) for name, field in _BODY_FIELDS.items()}
    for name in ("size", "image_width", "image_height"):
        record[name] = _int_or_none(record[name], name)
    for name, value in record.items():
        if value is not None and not isinstance(value, (str, int)):
            record[name] = json.dumps(value)
        if value == "":
            record[name] = None

    if record["bucket"] != config.bucket:
        raise ApiError(403, "WrongBucket", "the callback is for another bucket")
    key = record["key"]
    if not key or not key.startswith(config.prefix):
        raise ApiError(403, "KeyOutsidePrefix", "the object key is outside the configured prefix")
    if not record["upload_id"]:
        raise ApiError(400, "MissingUploadId", "the callback body has no upload_id")

    record["record_id"] = new_record_id()
    record["created_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        stored, created = store.put(record, credentials)
    except RecordStoreError as exc:
        raise ApiError(503, "RecordStoreUnavailable",
                       f"the upload is stored but could not be recorded ({exc})") from None
    return {
        "ok": True,
        "record_id": stored["record_id"],
        "upload_id": stored["upload_id"],
        "bucket": stored["bucket"],
        "key": stored["key"],
        "size": stored["size"],
        "etag": stored["etag"],
        "content_type": stored["content_type"],
        "filename": stored["filename"],
        "url": object_url(config, stored["key"]),
        "created_at": stored["created_at"],
        "replayed": not created,
    }
