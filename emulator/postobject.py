"""PostObject: the browser's form upload, its policy and signature, and its answer (callback, redirect, status)."""

import shutil
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape as _esc

from flask import Response, request

from . import auth, callback, multipart
from .common import META_NAME, STORED_HEADERS, check_acl_and_class, check_key, exists, run_callback, size_of
from .errors import OSSError
from .storage import Exists


def post_object(emu, bucket):
    origin = request.headers.get("Origin")
    allowed = emu.config.post_origins
    if origin is not None and allowed is not None and origin not in allowed:
        # a cross-site form POST needs no CORS: only the page's own origin(s) may send forms here
        raise OSSError(403, "AccessForbidden", f"PostObject from Origin {origin} is refused: this emulator takes "
                       "forms only from the origins it was started with.", "0003-00000001",
                       ArgumentName="Origin", ArgumentValue=origin)
    length = request.content_length
    if length is None:
        raise OSSError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    if length > 5 * 1024**3 + 1024 * 1024:
        raise OSSError(400, "EntityTooLarge", "Post body size must be less than 5G.", "0006-00000003")
    state = {}

    def open_sink(field_list, filename, part_headers):
        every = {}  # lower-case name -> every value sent, in order
        for name, value in field_list:
            every.setdefault(name.lower(), []).append(value)
        fields = {name: values[0] for name, values in every.items()}  # the first one is used
        policy_b64 = auth.check_signature(fields, emu.config.accounts, emu.config.region, emu.now())
        size_range = None
        if policy_b64 is not None:
            doc = auth.decode_policy(policy_b64)
            expires = auth.parse_expiration(doc["expiration"])
            conditions = auth.normalize_conditions(doc["conditions"])
            if emu.now() > expires:
                raise OSSError(403, "AccessDenied", "Invalid according to Policy: Policy expired.", "0006-00000213")
            size_range = auth.check_conditions(conditions, every, bucket)  # every occurrence must pass
        key = fields.get("key")
        if not key:
            raise OSSError(400, "InvalidArgument", "The bucket POST must contain the specified 'key'. If it is "
                           "specified, please check the order of the fields")
        key = key.replace("${filename}", filename.replace("\\", "/").rsplit("/", 1)[-1])
        check_key(key)
        conf = callback.parse_callback(fields["callback"]) if fields.get("callback") else None
        check_acl_and_class(fields)
        for name, value in fields.items():
            if name.startswith("x-oss-meta-") and not META_NAME.fullmatch(name):
                raise OSSError(400, "InvalidArgument", "Invalid user metadata name.", ArgumentName=name)
        forbid = fields.get("x-oss-forbid-overwrite", "").lower() == "true"
        if forbid and emu.store.exists(bucket, key):
            raise exists()
        state.update(fields=fields, key=key, size_range=size_range, callback=conf, forbid=forbid,
                     part_type=part_headers.get("content-type", ""))
        return emu.store.sink(bucket)

    # The raw input stream: read_form never reads past Content-Length itself, and skipping werkzeug's
    # LimitedStream wrapper saves a copy per chunk on 1 GiB uploads.
    fields, file_info = multipart.read_form(request.environ["wsgi.input"], length,
                                            request.headers.get("Content-Type", ""), open_sink)
    if file_info is None:
        raise OSSError(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed "
                       "multipart/form-data: there is no file field.", "0006-00000107")
    filename, _, staged = file_info
    fields, key = state["fields"], state["key"]
    try:
        if state["size_range"] is not None:
            low, high = state["size_range"]
            if staged["size"] < low:
                raise OSSError(400, "EntityTooSmall", "Your proposed upload smaller than the minimum allowed size.",
                               "0006-00000004")
            if staged["size"] > high:
                raise OSSError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.",
                               "0006-00000003")
        content_type = (fields.get("x-oss-content-type") or state["part_type"] or fields.get("content-type")
                        or "application/octet-stream").encode("utf-8").decode("latin-1")  # header text
        # as header text: the form's UTF-8 bytes go back out unchanged
        stored = {k: fields[k].encode("utf-8").decode("latin-1") for k in fields
                  if k in STORED_HEADERS or k.startswith("x-oss-meta-")}
        meta = {"content_type": content_type, "headers": stored}
        previous = size_of(emu, bucket, key)
        meta = emu.store.commit(bucket, key, staged, meta, overwrite=not state["forbid"])
    except Exists:
        raise exists() from None
    except BaseException:
        shutil.rmtree(staged["dir"], ignore_errors=True)  # a refused upload leaves nothing
        raise
    try:
        return _post_answer(emu, bucket, key, meta, fields, state)
    finally:  # after the callback (see put_object)
        emu.object_created("PostObject", bucket, key, meta, previous)


def _post_answer(emu, bucket, key, meta, fields, state):
    result_headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
                      "Content-MD5": meta["content_md5"]}
    if state["callback"]:
        custom = {k: v for k, v in fields.items() if k.startswith("x:")}
        return run_callback(emu, bucket, key, meta, custom, state["callback"], result_headers, "PostObject")
    redirect = fields.get("success_action_redirect")
    if redirect:
        sep = "&" if "?" in redirect else "?"
        location = redirect + sep + urlencode({"bucket": bucket, "key": key, "etag": f'"{meta["etag"]}"'})
        return Response(status=303, headers=dict(result_headers, Location=location))
    status = fields.get("success_action_status")
    if status == "201":
        location = f"{request.host_url.rstrip('/')}/{bucket}/{quote(key)}"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Bucket>{bucket}</Bucket>'
                f"<Location>{_esc(location)}</Location><Key>{_esc(key)}</Key><ETag>{meta['etag']}</ETag>"
                "</PostResponse>")
        return Response(body, 201, headers=result_headers, content_type="application/xml")
    return Response(status=200 if status == "200" else 204, headers=result_headers)
