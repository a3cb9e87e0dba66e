"""Object calls: GetObject/HeadObject/GetObjectMeta, PutObject, DeleteObject, CopyObject, object ACL."""

import time
from urllib.parse import unquote

from flask import Response, request, send_file

from . import multipart
from .common import (HEADER_CASE, META_NAME, STORED_HEADERS, acl_of, callback_params, check_acl_and_class,
                     check_key, exists, header_safe, http_date, iso, receive_body, require, run_callback, size_of)
from .errors import OSSError
from .storage import Exists


def object_acl(emu, bucket, key, method, signer):
    """GetObjectAcl / PutObjectAcl (x-oss-object-acl header); both need a signature."""
    require(signer)
    found = emu.store.get(bucket, key)
    if found is None:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
    if method == "PUT":
        acl = request.headers.get("x-oss-object-acl", "")
        check_acl_and_class({"x-oss-object-acl": acl})
        try:
            emu.store.update_headers(bucket, key, {"x-oss-object-acl": acl})
        except FileNotFoundError:
            raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key) from None
        return Response(status=200)
    if method not in ("GET", "HEAD"):
        raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<AccessControlPolicy><Owner><ID>emulator</ID>'
            '<DisplayName>emulator</DisplayName></Owner><AccessControlList><Grant>'
            f"{acl_of(found[0])}</Grant></AccessControlList></AccessControlPolicy>")
    return Response(body, 200, content_type="application/xml")


def object_headers(meta):
    headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
               "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(meta["last_modified"])),
               "x-oss-object-type": meta.get("object_type", "Normal"), "x-oss-storage-class": "Standard"}
    if meta.get("content_md5"):  # a multipart object has none (its ETag is not an MD5 either)
        headers["Content-MD5"] = meta["content_md5"]
    for name, value in meta.get("headers", {}).items():
        headers[HEADER_CASE.get(name, name)] = header_safe(value)
    return headers


def get_object(emu, bucket, key, head, signer):
    found = emu.store.get(bucket, key)
    if found is None:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
    meta, data_path = found
    if signer is None and acl_of(meta) == "private":
        raise OSSError(403, "AccessDenied", "You have no right to access this object because of object acl.",
                       "0003-00000001")
    if head:
        response = Response(status=200, content_type=header_safe(meta["content_type"]))
        response.headers["Content-Length"] = str(meta["size"])
    else:
        response = send_file(data_path, mimetype=header_safe(meta["content_type"]), conditional=False, etag=False)
    response.headers["Content-Type"] = header_safe(meta["content_type"])
    response.headers.update(object_headers(meta))
    return response


def put_object(emu, bucket, key, signer):
    check_key(key)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if signer is None:
        # Only an object whose own ACL is public-read-write takes anonymous writes (as OSS); the new
        # object gets the default ACL, and an anonymous writer cannot choose another one.
        found = emu.store.get(bucket, key)
        if found is None or acl_of(found[0]) != "public-read-write" or "x-oss-object-acl" in headers:
            require(None)
    check_acl_and_class(headers)
    conf, custom = callback_params(headers)
    meta = {"content_type": headers.get("content-type") or "application/octet-stream",
            "headers": {k: v for k, v in headers.items() if k in STORED_HEADERS or k.startswith("x-oss-meta-")}}
    overwrite = headers.get("x-oss-forbid-overwrite", "").lower() != "true"
    staged = receive_body(emu, bucket, headers)
    previous = size_of(emu, bucket, key)
    try:
        meta = emu.store.commit(bucket, key, staged, meta, overwrite)
    except Exists:
        raise exists() from None
    result_headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
                      "Content-MD5": meta["content_md5"]}
    try:  # the trigger fires once the request is done: after its callback, as OSS notifies asynchronously
        if conf:
            return run_callback(emu, bucket, key, meta, custom, conf, result_headers, "PutObject")
        return Response(status=200, headers=result_headers)
    finally:
        emu.object_created("PutObject", bucket, key, meta, previous)
METADATA_HEADERS = ("cache-control", "content-disposition", "content-encoding", "expires")
MAX_COPY = 5 * 1024**3  # larger objects are copied with UploadPartCopy
_COPY_SOURCE_FORMAT = "Copy Source must mention the source bucket and key: /sourcebucket/sourcekey."


def _copy_source(emu, value):
    """(bucket, key) of ``x-oss-copy-source: /<bucket>/<url-encoded key>[?versionId=...]``."""
    raw, _, query = value.partition("?")
    if query:
        version = dict(p.partition("=")[::2] for p in query.split("&")).get("versionId")
        if version not in (None, "null"):  # this emulator keeps no versions
            raise OSSError(404, "NoSuchVersion", "The specified version does not exist.", VersionId=version)
    try:
        path = unquote(raw, errors="strict") if raw.isascii() else None
    except UnicodeDecodeError:
        path = None
    if path is None or not path.startswith("/"):
        raise OSSError(400, "InvalidArgument", _COPY_SOURCE_FORMAT, ArgumentName="x-oss-copy-source",
                       ArgumentValue=value)
    src_bucket, _, src_key = path[1:].partition("/")
    if not src_bucket or not src_key:
        raise OSSError(400, "InvalidArgument", _COPY_SOURCE_FORMAT, ArgumentName="x-oss-copy-source",
                       ArgumentValue=value)
    if src_bucket not in emu.cors:
        raise OSSError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=src_bucket)
    return src_bucket, src_key


def _copy_preconditions(headers, meta):
    """x-oss-copy-source-if-*: 412 PreconditionFailed (match, unmodified-since) or 304 (none-match,
    modified-since), checked in that order as OSS documents."""
    etag, modified = meta["etag"], int(meta["last_modified"])
    match = headers.get("x-oss-copy-source-if-match")
    if match is not None and match.strip().strip('"').upper() != etag:
        raise OSSError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                       Condition="x-oss-copy-source-if-match")
    since = headers.get("x-oss-copy-source-if-unmodified-since")
    if since is not None and modified > http_date(since, "x-oss-copy-source-if-unmodified-since"):
        raise OSSError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                       Condition="x-oss-copy-source-if-unmodified-since")
    none_match = headers.get("x-oss-copy-source-if-none-match")
    if none_match is not None and none_match.strip().strip('"').upper() == etag:
        raise OSSError(304, "NotModified", "The source object was not modified.")
    since = headers.get("x-oss-copy-source-if-modified-since")
    if since is not None and modified <= http_date(since, "x-oss-copy-source-if-modified-since"):
        raise OSSError(304, "NotModified", "The source object was not modified.")


def copy_object(emu, bucket, key):
    """CopyObject: ``PUT /<bucket>/<key>`` with ``x-oss-copy-source``. The data and (``COPY``, the
    default) the source's type and metadata (Cache-Control, Content-Disposition, Content-Encoding,
    Expires, x-oss-meta-*) are copied; ``REPLACE`` takes them from the request instead. The ACL and
    storage class are not copied: the request's ``x-oss-object-acl`` / ``x-oss-storage-class`` or the
    defaults. ``x-oss-forbid-overwrite: true`` refuses an existing target (except the source itself)."""
    check_key(key)
    headers = {k.lower(): v for k, v in request.headers.items()}
    request.stream.read(64 * 1024)  # CopyObject has no body (clients may send Content-MD5 of an empty one)
    src_bucket, src_key = _copy_source(emu, headers["x-oss-copy-source"])
    directive = headers.get("x-oss-metadata-directive", "COPY")
    if directive not in ("COPY", "REPLACE"):
        raise OSSError(400, "InvalidArgument", "Invalid metadata directive.", ArgumentName="x-oss-metadata-directive",
                       ArgumentValue=directive)
    check_acl_and_class(headers)
    if directive == "REPLACE":
        for name in headers:
            if name.startswith("x-oss-meta-") and not META_NAME.fullmatch(name):
                raise OSSError(400, "InvalidArgument", "Invalid user metadata name.", ArgumentName=name)
    found = emu.store.get(src_bucket, src_key)
    if found is None:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=src_key)
    src_meta, data_path = found
    _copy_preconditions(headers, src_meta)
    if src_meta["size"] > MAX_COPY:
        raise OSSError(400, "InvalidArgument", "The source object is larger than 5 GB: copy it with UploadPartCopy.")
    same = (src_bucket, src_key) == (bucket, key)
    forbid = headers.get("x-oss-forbid-overwrite", "").lower() == "true" and not same
    if forbid and emu.store.exists(bucket, key):
        raise exists()
    if directive == "COPY":
        stored = {k: v for k, v in src_meta.get("headers", {}).items()
                  if k in METADATA_HEADERS or k.startswith("x-oss-meta-")}
        meta = {"content_type": src_meta["content_type"], "headers": stored}
    else:
        meta = {"content_type": headers.get("content-type") or "application/octet-stream",
                "headers": {k: v for k, v in headers.items()
                            if k in METADATA_HEADERS or k.startswith("x-oss-meta-")}}
    for name in ("x-oss-object-acl", "x-oss-storage-class"):
        if name in headers:
            meta["headers"][name] = headers[name]
    sink = emu.store.sink(bucket)
    try:
        with open(data_path, "rb") as source:  # an open file survives a concurrent delete of the source
            while chunk := source.read(multipart.CHUNK):
                sink.write(chunk)
        staged = sink.finish()
    except FileNotFoundError:
        sink.abort()
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=src_key) from None
    except BaseException:
        sink.abort()
        raise
    previous = size_of(emu, bucket, key)
    try:
        meta = emu.store.commit(bucket, key, staged, meta, overwrite=not forbid)
    except Exists:
        raise exists() from None
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><ETag>"{meta["etag"]}"</ETag>'
            f"<LastModified>{iso(meta['last_modified'])}</LastModified></CopyObjectResult>")
    try:
        return Response(body, 200, content_type="application/xml",
                        headers={"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"]})
    finally:
        emu.object_created("CopyObject", bucket, key, meta, previous)


def delete_object(emu, bucket, key):
    emu.store.delete(bucket, key)
    return Response(status=204)
