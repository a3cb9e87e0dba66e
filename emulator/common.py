"""What the API modules share: the stored-header rules, request checks, XML answers and the upload callback."""

import base64
import email.utils
import re
import time
from typing import Any, Dict
from urllib.parse import quote
from xml.sax.saxutils import escape as _esc

from flask import Response, g, request

from . import callback, storage
from .errors import MALFORMED_XML, OSSError  # noqa: F401 (MALFORMED_XML: re-exported)

PUBKEY_PATH = "/_emulator/callback_pub_key.pem"
EXPOSE = "ETag, x-oss-request-id, x-oss-hash-crc64ecma, Content-MD5"
# Headers stored with an object and returned on GET/HEAD exactly as received (plus every x-oss-meta-*).
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "expires", "x-oss-object-acl",
                  "x-oss-storage-class", "x-oss-tagging", "x-oss-server-side-encryption",
                  "x-oss-server-side-data-encryption", "x-oss-server-side-encryption-key-id")
SSE_ALGORITHMS = ("AES256", "KMS", "SM4")
HEADER_CASE = {"cache-control": "Cache-Control", "content-disposition": "Content-Disposition",
               "content-encoding": "Content-Encoding", "expires": "Expires"}
ACLS = ("private", "public-read", "public-read-write", "default")
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
META_NAME = re.compile(r"x-oss-meta-[A-Za-z0-9!#$%&'*+.^_`|~-]+")
BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
ANONYMOUS_DENIED = "You have no right to access this object because of bucket acl."


def xml_response(error, host_id, status=None):
    body = error.xml(g.req_id, host_id)
    response = Response(body, status or error.status, content_type="application/xml")
    if error.ec:
        response.headers["x-oss-ec"] = error.ec
    response.headers.update(getattr(error, "headers", {}))
    if request.method == "HEAD":  # no body: OSS sends the error XML base64-encoded in x-oss-err
        response.headers["x-oss-err"] = base64.b64encode(body.encode("utf-8")).decode()
    return response


def signed_headers():
    """Request headers, lower-case names, values as the client's UTF-8 (surrogate-escaped) text."""
    out = {}
    for name, value in request.headers.items():
        out[name.lower()] = value.strip().encode("latin-1").decode("utf-8", "surrogateescape")
    return out


def require(signer):
    if signer is None:
        raise OSSError(403, "AccessDenied", ANONYMOUS_DENIED, "0003-00000001")


def acl_of(meta):
    return (meta or {}).get("headers", {}).get("x-oss-object-acl", "default")


def check_acl_and_class(headers):
    acl = headers.get("x-oss-object-acl")
    if acl is not None and acl not in ACLS:
        raise OSSError(400, "InvalidArgument", "no such object access control exists", "0016-00000902",
                       ArgumentName="x-oss-object-acl", ArgumentValue=acl)
    sse = headers.get("x-oss-server-side-encryption")
    if sse is not None and sse not in SSE_ALGORITHMS:
        raise OSSError(400, "InvalidEncryptionAlgorithmError", "The Encryption request you specified is not valid. "
                       "Supported value: AES256/KMS/SM4", "0005-00000001")
    storage = headers.get("x-oss-storage-class")
    if storage is not None and storage not in STORAGE_CLASSES:
        raise OSSError(400, "InvalidArgument", "Invalid storage class.", ArgumentName="x-oss-storage-class",
                       ArgumentValue=storage)


def sse_headers(stored: Any) -> Dict[str, str]:
    """The server-side-encryption headers an upload stored, echoed in its answer as OSS does (PutObject,
    InitiateMultipartUpload, CompleteMultipartUpload, CopyObject)."""
    return {k: v for k, v in stored.items() if k.startswith("x-oss-server-side-")}


def header_safe(value):
    """A stored value as an HTTP header value: exactly as stored, except that the control characters a
    form field may carry but a header cannot (CR, LF, ...) go out as %XX."""
    return BAD_VALUE.sub(lambda m: "%%%02X" % ord(m.group()), value)


def receive_body(emu, bucket, headers, sink=None):
    """Stream the request body to a staged file (never held in memory); checks Content-MD5."""
    sink = sink or emu.store.sink(bucket)
    try:
        sink.fill(request.stream)
        staged = sink.finish()
    except BaseException:
        sink.abort()
        raise
    if "content-md5" in headers and headers["content-md5"] != staged["content_md5"]:
        storage.discard(staged)
        raise OSSError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.", "0002-00000019")
    return staged


def size_of(emu, bucket, key):
    found = emu.store.get(bucket, key)
    return found[0]["size"] if found else None


def callback_params(headers):
    """(callback config, custom variables) from x-oss-callback / x-oss-callback-var headers or the
    callback / callback-var query parameters (PutObject, CompleteMultipartUpload); (None, {}) without."""
    def one(header, param):
        in_header, in_query = headers.get(header), request.args.get(param)
        if in_header is not None and in_query is not None:
            raise OSSError(400, "InvalidArgument", f"Specify {param} either in the header or in the query, "
                           "not both.", ArgumentName=param)
        return in_header if in_header is not None else in_query

    cb, var = one("x-oss-callback", "callback"), one("x-oss-callback-var", "callback-var")
    conf = callback.parse_callback(cb) if cb else None
    custom = callback.parse_callback_var(var) if (var and conf) else {}
    return conf, custom


def exists():
    return OSSError(409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")


def check_key(key):
    raw = key.encode("utf-8")
    if not 1 <= len(raw) <= 1023 or key.startswith(("/", "\\")):
        raise OSSError(400, "InvalidObjectName", "The specified object is not valid.")


def run_callback(emu, bucket, key, meta, custom, conf, result_headers, operation):
    found = emu.store.get(bucket, key)
    info = callback.image_info(found[1]) if found else None
    system = {
        "bucket": bucket, "object": key, "etag": meta["etag"], "size": str(meta["size"]),
        "mimeType": meta["content_type"], "crc64": meta["crc64"], "contentMd5": meta["content_md5"],
        "imageInfo.height": str(info[1]) if info else "", "imageInfo.width": str(info[0]) if info else "",
        "imageInfo.format": info[2] if info else "", "clientIp": request.remote_addr or "",
        "reqId": g.req_id, "operation": operation, "vpcId": "",
    }
    body = callback.render(conf["body"], conf["body_type"], system, custom).encode("utf-8")
    pubkey_url = f"{emu.base_url or request.host_url.rstrip('/')}{PUBKEY_PATH}"
    ok, outcome = callback.deliver(conf, body, emu.key, pubkey_url, bucket, g.req_id, emu.config.callback_timeout,
                                   allowed=emu.config.callback_urls)
    if ok:
        return Response(outcome.content, 200, headers=result_headers, content_type="application/json")
    error = OSSError(203, "CallbackFailed", outcome, "0007-00000203")
    response = xml_response(error, request.host)
    response.headers.update(result_headers)
    return response


def url_encoded():
    value = request.args.get("encoding-type")
    if value not in (None, "", "url"):
        raise OSSError(400, "InvalidArgument", "Invalid Encoding Method specified in Request",
                       ArgumentName="encoding-type", ArgumentValue=value)
    return value == "url"


def key_xml(text, encoded):
    return _esc(quote(text, safe="") if encoded else text)


def xml(root, inner):
    return Response(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>', 200,
                    content_type="application/xml")


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000Z"


def int_arg(name, default, low, high):
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise OSSError(400, "InvalidArgument", f"{name} must be an integer from {low} to {high}.",
                       ArgumentName=name, ArgumentValue=value)
    return int(value)


def http_date(value, name):
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        raise OSSError(400, "InvalidArgument", f"{name} is not a valid HTTP date.", ArgumentName=name,
                       ArgumentValue=value) from None


def acl_response(grant: str) -> Response:
    """GetBucketAcl / GetObjectAcl: one AccessControlPolicy document, the grant as OSS names it."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<AccessControlPolicy><Owner><ID>emulator</ID>'
            '<DisplayName>emulator</DisplayName></Owner><AccessControlList><Grant>'
            f"{grant}</Grant></AccessControlList></AccessControlPolicy>")
    return Response(body, 200, content_type="application/xml")
