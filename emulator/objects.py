"""Object calls: GetObject/HeadObject/GetObjectMeta, PutObject, DeleteObject, CopyObject, object ACL."""

import base64
import email.utils
import hashlib
import re
import shutil
import threading
import time
from typing import Any, Dict, Iterator
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, unquote, urlencode
from xml.sax.saxutils import escape as _esc

from flask import Response, request

from . import multipart
from .common import (HEADER_CASE, acl_response, MALFORMED_XML, META_NAME, STORED_HEADERS, acl_of, callback_params,
                     check_acl_and_class, check_key, exists, header_safe, http_date, iso, key_xml, receive_body,
                     require, run_callback, size_of, sse_headers, url_encoded, xml)
from .errors import OSSError, parse_xml
from .storage import Exists


def effective_acl(emu, bucket, meta):
    """The object's own ACL, or the bucket's when it is "default" (or there is no object yet)."""
    own = acl_of(meta)
    return emu.acl.get(bucket, "private") if own == "default" else own


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
    return acl_response(acl_of(found[0]))


def object_headers(meta):
    headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
               "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(meta["last_modified"])),
               "x-oss-object-type": meta.get("object_type", "Normal"), "x-oss-storage-class": "Standard"}
    if meta.get("content_md5"):  # a multipart object has none (its ETag is not an MD5 either)
        headers["Content-MD5"] = meta["content_md5"]
    for name, value in meta.get("headers", {}).items():
        if name == "x-oss-tagging":  # the tags themselves only via ?tagging
            if value:
                headers["x-oss-tagging-count"] = str(len(parse_qsl(value, keep_blank_values=True)))
            continue
        headers[HEADER_CASE.get(name, name)] = header_safe(value)
    return headers


# GetObject's query overrides of the answer's headers (signed or presigned requests)
RESPONSE_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
                      "response-expires": "Expires", "response-cache-control": "Cache-Control",
                      "response-content-disposition": "Content-Disposition",
                      "response-content-encoding": "Content-Encoding"}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(value, size, standard):
    """(start, end) inclusive, or None for the whole object. As OSS: only the first of several ranges
    counts; a malformed or out-of-range one is ignored (200, whole object) unless
    ``x-oss-range-behavior: standard``, where the end is clipped and a start past the end is a 416."""
    if value is None:
        return None
    match = _RANGE.fullmatch(value.strip().split(",")[0].strip())
    if not match or not (match[1] or match[2]):
        return None
    if match[1]:
        start, end = int(match[1]), int(match[2]) if match[2] else size - 1
        if match[2] and end < start:
            return None
    else:  # the last N bytes
        start, end = size - int(match[2]), size - 1
        if start < 0:
            if not standard:
                return None
            start = 0
    if start >= size:
        if standard:
            raise OSSError(416, "InvalidRange", "The requested range cannot be satisfied", "0003-00000010",
                           RangeRequested=value, ActualObjectSize=str(size))
        return None
    if end >= size:
        if not standard:
            return None
        end = size - 1
    return start, end


def check_conditions(meta):
    """If-Match / If-Unmodified-Since (412) then If-None-Match / If-Modified-Since (304), as OSS's GetObject;
    a date that does not parse is ignored, as HTTP says."""
    etag, modified = meta["etag"], int(meta["last_modified"])
    headers = request.headers

    def when(name):
        try:
            return email.utils.parsedate_to_datetime(headers[name]).timestamp()
        except (KeyError, TypeError, ValueError, IndexError):
            return None

    def tags(name):
        return [v.strip().strip('"').upper() for v in headers[name].split(",")] if name in headers else None

    match = tags("If-Match")
    if match is not None and etag not in match and "*" not in match:
        raise OSSError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                       "0003-00000108", Condition="If-Match")
    since = when("If-Unmodified-Since")
    if match is None and since is not None and modified > since:
        raise OSSError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                       "0003-00000108", Condition="If-Unmodified-Since")
    none_match = tags("If-None-Match")
    if none_match is not None:
        return etag in none_match or "*" in none_match  # True: 304
    since = when("If-Modified-Since")
    return since is not None and modified <= since


def _stream(handle, length):
    try:
        while length > 0:
            chunk = handle.read(min(multipart.CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


GZIP_MIN_SIZE = 1024
_COMPRESSIBLE = re.compile(r"text/[\w.+-]+|application/(json|xml|javascript|x-javascript)")


def _compress(meta: Dict[str, Any], headers: Dict[str, str]) -> bool:
    """GetObject is answered gzip-compressed when the client accepts gzip, the object is at least 1 KB of
    a text type (text/*, JSON, XML, JavaScript) and was not stored already encoded."""
    accepted = [p.split(";")[0].strip().lower() for p in request.headers.get("Accept-Encoding", "").split(",")]
    content_type = meta["content_type"].split(";")[0].strip().lower()
    return ("gzip" in accepted and meta["size"] >= GZIP_MIN_SIZE and "Content-Encoding" not in headers
            and _COMPRESSIBLE.fullmatch(content_type) is not None)


def _gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    import zlib

    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip header and trailer
    for chunk in chunks:
        out = packer.compress(chunk)
        if out:
            yield out
    yield packer.flush()


def get_object(emu, bucket, key, head, signer):
    found = emu.store.get(bucket, key)
    if found is None:
        if signer is None and emu.acl.get(bucket) == "private":  # as OSS: an anonymous caller learns nothing
            raise OSSError(403, "AccessDenied", "You have no right to access this object because of bucket acl.",
                           "0003-00000001")
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
    meta, data_path = found
    if signer is None and effective_acl(emu, bucket, meta) == "private":
        whose = "object" if acl_of(meta) == "private" else "bucket"
        raise OSSError(403, "AccessDenied", f"You have no right to access this object because of {whose} acl.",
                       "0003-00000001")
    headers = dict(object_headers(meta), **{"Content-Type": header_safe(meta["content_type"])})
    if check_conditions(meta):
        return Response(status=304, headers={k: headers[k] for k in ("ETag", "Last-Modified")})
    for param, name in RESPONSE_OVERRIDES.items():
        if param in request.args:
            headers[name] = header_safe(request.args[param])
    size = meta["size"]
    standard = request.headers.get("x-oss-range-behavior", "").lower() == "standard"
    span = byte_range(request.headers.get("Range"), size, standard) if not head else None
    start, end = span or (0, size - 1)
    length = end - start + 1 if size else 0
    if span:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Accept-Ranges"] = "bytes"
    # what a CDN in front of the bucket should add (README "Security model"): no browser sniffs a stored
    # object into a document, whatever type it was given
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Length"] = str(length if not head else size)
    if head:
        return Response(status=200, headers=headers)
    try:
        handle = open(data_path, "rb")  # open now: a concurrent delete cannot take it away mid-answer
    except FileNotFoundError:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key) from None
    handle.seek(start)
    body = _stream(handle, length)
    if span is None and _compress(meta, headers):
        # HTTP compression, as OSS: gzip, sent chunked (no Content-Length); the CRC-64 header stays the
        # stored object's, which is what the client has once it has decoded the body
        del headers["Content-Length"]
        headers["Content-Encoding"] = "gzip"
        body = _gzipped(body)
    response = Response(body, status=206 if span else 200, headers=headers, direct_passthrough=True)
    response.headers["Content-Type"] = headers["Content-Type"]  # exactly as stored (no charset added)
    return response


def put_object(emu, bucket, key, signer):
    check_key(key)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if signer is None:
        # Only a public-read-write object (its own ACL, or the bucket's for "default" and new keys) takes
        # anonymous writes (as OSS); the new object gets the default ACL, and an anonymous writer cannot
        # choose another one.
        found = emu.store.get(bucket, key)
        if effective_acl(emu, bucket, found and found[0]) != "public-read-write" or "x-oss-object-acl" in headers:
            require(None)
    check_acl_and_class(headers)
    tags_from_header(headers.get("x-oss-tagging", ""))
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
    result_headers.update(sse_headers(meta["headers"]))
    try:  # the trigger fires once the request is done: after its callback, as OSS notifies asynchronously
        if conf:
            return run_callback(emu, bucket, key, meta, custom, conf, result_headers, "PutObject")
        return Response(status=200, headers=result_headers)
    finally:
        emu.object_created("PutObject", bucket, key, meta, previous)
METADATA_HEADERS = ("cache-control", "content-disposition", "content-encoding", "expires")
MAX_COPY = 5 * 1024**3  # larger objects are copied with UploadPartCopy
_COPY_SOURCE_FORMAT = "Copy Source must mention the source bucket and key: /sourcebucket/sourcekey."


def copy_source(emu, value):
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


def copy_preconditions(headers, meta):
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
    src_bucket, src_key = copy_source(emu, headers["x-oss-copy-source"])
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
    copy_preconditions(headers, src_meta)
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
    tagging_directive = headers.get("x-oss-tagging-directive", "COPY")
    if tagging_directive not in ("COPY", "REPLACE"):
        raise OSSError(400, "InvalidArgument", "Invalid tagging directive.", ArgumentName="x-oss-tagging-directive",
                       ArgumentValue=tagging_directive)
    tags = (src_meta.get("headers", {}).get("x-oss-tagging", "") if tagging_directive == "COPY"
            else urlencode(tags_from_header(headers.get("x-oss-tagging", ""))))
    if tags:
        meta["headers"]["x-oss-tagging"] = tags
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


# --- DeleteMultipleObjects ------------------------------------------------------------------------
MAX_DELETE = 1000


# Control characters (which XML 1.0 forbids, even as references) in a DeleteMultipleObjects key: the SDKs
# send them raw and OSS takes them, so they are parsed as private-use stand-ins and mapped back.
_CONTROLS = bytes(c for c in range(1, 32) if c not in (9, 10, 13))
_CONTROL_STANDIN = 0xF700


def _xml_body(limit, controls=False):
    """The request's XML body (at most ``limit`` bytes, no DTD), checked against Content-MD5 when sent."""
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise OSSError(400, "InvalidArgument", "The request body is too large.")
    md5 = request.headers.get("Content-MD5")
    if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
        raise OSSError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.", "0002-00000019")
    if controls:
        for c in _CONTROLS:
            body = body.replace(bytes([c]), chr(_CONTROL_STANDIN + c).encode("utf-8"))
    return parse_xml(body, ec="0016-00000801")


def delete_multiple(emu, bucket):
    """DeleteMultipleObjects: ``POST /<bucket>?delete`` with <Delete><Quiet/><Object><Key/></Object>...; the
    Content-MD5 of the body is required. Keys that do not exist are reported deleted too, as OSS does."""
    if "Content-MD5" not in request.headers:
        raise OSSError(400, "MissingArgument", "Missing Some Required Arguments.", "0016-00000702",
                       ArgumentName="Content-MD5")
    encoded = url_encoded()
    root = _xml_body(2 * 1024 * 1024, controls=True)
    if root.tag != "Delete":
        raise OSSError(400, "MalformedXML", MALFORMED_XML, "0016-00000801")
    quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
    back = {_CONTROL_STANDIN + c: c for c in _CONTROLS}
    keys = [(node.findtext("Key") or "").translate(back) for node in root.findall("Object")]
    if not keys or len(keys) > MAX_DELETE or any(not k for k in keys):
        raise OSSError(400, "MalformedXML", MALFORMED_XML, "0016-00000801")
    for key in keys:
        emu.store.delete(bucket, key)
    inner = "<EncodingType>url</EncodingType>" if encoded else ""
    if not quiet:
        inner += "".join(f"<Deleted><Key>{key_xml(k, encoded)}</Key></Deleted>" for k in keys)
    return xml("DeleteResult", inner)


# --- object tagging -------------------------------------------------------------------------------
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 10, 128, 256


# tag keys and values: letters, digits, spaces and + - = . _ : / @ (OSS's object tagging rules)
_TAG_TEXT = re.compile(r"[\w +\-=._:/@]*")


def _check_tags(pairs):
    if len(pairs) > MAX_TAGS or len({k for k, _ in pairs}) != len(pairs):
        raise OSSError(400, "BadRequest", "The tag set has more than 10 tags or repeats a key.", "0012-00000001")
    for k, v in pairs:
        if not 1 <= len(k) <= MAX_TAG_KEY or len(v) > MAX_TAG_VALUE or not _TAG_TEXT.fullmatch(k + v):
            raise OSSError(400, "InvalidTag", "A tag key is 1 to 128 characters, a value at most 256.",
                           "0012-00000002", ArgumentName="Tagging", ArgumentValue=k)
    return pairs


def tags_from_header(value):
    """x-oss-tagging: ``k1=v1&k2=v2`` (URL-encoded) -> [(k, v)]."""
    try:
        pairs = parse_qsl(value, keep_blank_values=True, strict_parsing=True) if value else []
    except ValueError:
        raise OSSError(400, "InvalidArgument", "x-oss-tagging is not a valid query string.",
                       ArgumentName="x-oss-tagging", ArgumentValue=value) from None
    return _check_tags(pairs)


def object_tagging(emu, bucket, key, method):
    """PutObjectTagging (replaces the set), GetObjectTagging, DeleteObjectTagging."""
    found = emu.store.get(bucket, key)
    if found is None:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
    if method == "PUT":
        root = _xml_body(64 * 1024)
        if root.tag != "Tagging":
            raise OSSError(400, "MalformedXML", MALFORMED_XML, "0016-00000801")
        pairs = _check_tags([(t.findtext("Key") or "", t.findtext("Value") or "") for t in root.iter("Tag")])
        emu.store.update_headers(bucket, key, {"x-oss-tagging": urlencode(pairs)})
        return Response(status=200)
    if method == "DELETE":
        emu.store.update_headers(bucket, key, {"x-oss-tagging": ""})
        return Response(status=204)
    if method != "GET":
        raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    pairs = parse_qsl(found[0].get("headers", {}).get("x-oss-tagging", ""), keep_blank_values=True)
    inner = "".join(f"<Tag><Key>{_esc(k)}</Key><Value>{_esc(v)}</Value></Tag>" for k, v in pairs)
    return xml("Tagging", f"<TagSet>{inner}</TagSet>")


# --- AppendObject -----------------------------------------------------------------------------------
_append_lock = threading.Lock()


def append_object(emu, bucket, key):
    """AppendObject: ``POST /<key>?append&position=N``. A new object starts at 0 (Appendable); an existing
    one only grows at its length (409 PositionNotEqualToLength) and only if it is Appendable."""
    check_key(key)
    position = request.args.get("position", "")
    if not position.isascii() or not position.isdigit():
        raise OSSError(400, "InvalidArgument", "position must be a whole number.", None,
                       ArgumentName="position", ArgumentValue=position)
    position = int(position)
    headers = {k.lower(): v for k, v in request.headers.items()}
    check_acl_and_class(headers)
    with _append_lock:
        found = emu.store.get(bucket, key)
        size = found[0]["size"] if found else 0
        if found and found[0].get("object_type", "Normal") != "Appendable":
            raise OSSError(409, "ObjectNotAppendable", "The object is not appendable")
        if position != size:
            error = OSSError(409, "PositionNotEqualToLength", "Position is not equal to file length")
            error.headers = {"x-oss-next-append-position": str(size)}
            raise error
        if found:  # the first append's headers (x-oss-tagging too) stay; later ones are ignored
            meta = {k: found[0][k] for k in ("content_type", "headers")}
        else:
            tags_from_header(headers.get("x-oss-tagging", ""))
            meta = {"content_type": headers.get("content-type") or "application/octet-stream",
                    "headers": {k: v for k, v in headers.items()
                                if k in STORED_HEADERS or k.startswith("x-oss-meta-")}}
        meta["object_type"] = "Appendable"
        sink = emu.store.sink(bucket)
        added = hashlib.md5()
        try:
            if found:
                with open(found[1], "rb") as old:
                    while chunk := old.read(multipart.CHUNK):
                        sink.write(chunk)
            while chunk := request.stream.read(multipart.CHUNK):
                added.update(chunk)
                sink.write(chunk)
            staged = sink.finish()
        except BaseException:
            sink.abort()
            raise
        if "content-md5" in headers and headers["content-md5"] != base64.b64encode(added.digest()).decode():
            shutil.rmtree(staged["dir"], ignore_errors=True)
            raise OSSError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.", "0002-00000019")
        meta = emu.store.commit(bucket, key, staged, meta)
    try:
        return Response(status=200, headers={"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
                                             "x-oss-next-append-position": str(meta["size"])})
    finally:
        emu.object_created("AppendObject", bucket, key, meta, size if found else None)
