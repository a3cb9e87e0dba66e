"""Multipart upload: Initiate, UploadPart, ListParts, CompleteMultipartUpload, Abort (storage in uploads.py)."""

import xml.etree.ElementTree as ET
from urllib.parse import quote
from xml.sax.saxutils import escape as _esc

from flask import Response, request

from . import multipart, objects, storage

from .common import (MALFORMED_XML, META_NAME, STORED_HEADERS, callback_params, check_acl_and_class, check_key,
                     exists, int_arg, iso, key_xml, receive_body, run_callback, size_of, sse_headers, url_encoded,
                     xml)
from .errors import OSSError, parse_xml
from .storage import Exists
from .uploads import MAX_PART, MAX_PART_NUMBER, MIN_PART, part_path

MAX_COMPLETE_BODY = 2 * 1024 * 1024  # 10000 parts of ~100 bytes each fit


def multipart_call(emu, bucket, key, method):
    args = request.args
    if "uploads" in args:
        if method != "POST":
            raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        return _initiate_upload(emu, bucket, key)
    upload_id = args.get("uploadId", "")
    if method == "PUT":
        if "x-oss-copy-source" in request.headers:
            return _upload_part_copy(emu, bucket, key, upload_id)
        return _upload_part(emu, bucket, key, upload_id)
    if method == "GET":
        return _list_parts(emu, bucket, key, upload_id)
    if method == "POST":
        return _complete_upload(emu, bucket, key, upload_id)
    if method == "DELETE":
        emu.uploads.abort(bucket, upload_id, key)
        return Response(status=204)
    raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")


def _initiate_upload(emu, bucket, key):
    check_key(key)
    encoded = url_encoded()
    headers = {k.lower(): v for k, v in request.headers.items()}
    check_acl_and_class(headers)
    for name in headers:
        if name.startswith("x-oss-meta-") and not META_NAME.fullmatch(name):
            raise OSSError(400, "InvalidArgument", "Invalid user metadata name.", ArgumentName=name)
    objects.tags_from_header(headers.get("x-oss-tagging", ""))
    forbid = headers.get("x-oss-forbid-overwrite", "").lower() == "true"
    if forbid and emu.store.exists(bucket, key):
        raise exists()
    meta = {"content_type": headers.get("content-type") or "application/octet-stream",
            "headers": {k: v for k, v in headers.items() if k in STORED_HEADERS or k.startswith("x-oss-meta-")}}
    info = emu.uploads.initiate(bucket, key, meta, forbid)
    inner = (f"<Bucket>{_esc(bucket)}</Bucket><Key>{key_xml(key, encoded)}</Key>"
             f"<UploadId>{info['upload_id']}</UploadId>")
    if encoded:
        inner += "<EncodingType>url</EncodingType>"
    response = xml("InitiateMultipartUploadResult", inner)
    response.headers.update(sse_headers(meta["headers"]))
    return response


def _part_number(value):
    if value is None or not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PART_NUMBER:
        raise OSSError(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.",
                       "0017-00000220", ArgumentName="partNumber", ArgumentValue=value or "")
    return int(value)


def _upload_part(emu, bucket, key, upload_id):
    number = _part_number(request.args.get("partNumber"))
    emu.uploads.info(bucket, upload_id, key)  # before reading the body: unknown upload, nothing is read
    if request.content_length is not None and request.content_length > MAX_PART:
        raise OSSError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
    headers = {k.lower(): v for k, v in request.headers.items()}
    sink = emu.uploads.part_sink(bucket, upload_id, key, number, request.content_length)
    staged = receive_body(emu, bucket, headers, sink)
    if staged["size"] > MAX_PART:
        storage.discard(staged)
        raise OSSError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
    part = emu.uploads.put_part(bucket, upload_id, key, number, staged)
    return Response(status=200, headers={"ETag": f'"{part["etag"]}"', "x-oss-hash-crc64ecma": part["crc64"],
                                         "Content-MD5": part["content_md5"]})


def _list_parts(emu, bucket, key, upload_id):
    encoded = url_encoded()
    max_parts = int_arg("max-parts", 1000, 1, 1000)
    marker = int_arg("part-number-marker", 0, 0, MAX_PART_NUMBER)
    parts = emu.uploads.parts(bucket, upload_id, key)
    numbers = [n for n in sorted(parts) if n > marker]
    shown, truncated = numbers[:max_parts], len(numbers) > max_parts
    inner = (f"<Bucket>{_esc(bucket)}</Bucket><Key>{key_xml(key, encoded)}</Key><UploadId>{upload_id}</UploadId>"
             f"<PartNumberMarker>{marker}</PartNumberMarker>"
             f"<NextPartNumberMarker>{shown[-1] if shown else marker}</NextPartNumberMarker>"
             f"<MaxParts>{max_parts}</MaxParts><IsTruncated>{str(truncated).lower()}</IsTruncated>")
    if encoded:
        inner = "<EncodingType>url</EncodingType>" + inner
    for n in shown:
        p = parts[n]
        inner += (f"<Part><PartNumber>{n}</PartNumber><LastModified>{iso(p['last_modified'])}</LastModified>"
                  f"<ETag>\"{p['etag']}\"</ETag><HashCrc64ecma>{p['crc64']}</HashCrc64ecma>"
                  f"<Size>{p['size']}</Size></Part>")
    return xml("ListPartsResult", inner)


def _complete_list():
    """[(part number, ETag without quotes)] from the CompleteMultipartUpload XML body."""
    length = request.content_length
    if length is not None and length > MAX_COMPLETE_BODY:
        raise OSSError(400, "InvalidArgument", "The CompleteMultipartUpload body is too large.")
    body = bytearray()
    while len(body) <= MAX_COMPLETE_BODY:
        chunk = request.stream.read(MAX_COMPLETE_BODY + 1 - len(body))
        if not chunk:
            break
        body += chunk
    body = bytes(body)
    if len(body) > MAX_COMPLETE_BODY:
        raise OSSError(400, "InvalidArgument", "The CompleteMultipartUpload body is too large.")
    root = parse_xml(body, "CompleteMultipartUpload")
    out = []
    for node in root.findall("Part"):
        number, etag = (node.findtext("PartNumber") or "").strip(), node.findtext("ETag")
        if not number.isascii() or not number.isdigit() or etag is None:
            raise OSSError(400, "MalformedXML", MALFORMED_XML)
        if not 1 <= int(number) <= MAX_PART_NUMBER:
            raise OSSError(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.",
                           ArgumentName="PartNumber", ArgumentValue=number)
        out.append((int(number), etag.strip().strip('"').upper()))
    if not out:
        raise OSSError(400, "MalformedXML", MALFORMED_XML)
    return out


def _invalid_part(number, etag):
    return OSSError(400, "InvalidPart", "One or more of the specified parts could not be found or the specified "
                    "entity tag might not have matched the part's entity tag.", PartNumber=str(number), ETag=etag)


def _choose_parts(parts, listed):
    """The parts to concatenate, in order, checked as OSS does: ascending numbers, each uploaded with
    that ETag, each but the last at least 100 KiB."""
    previous = 0
    for number, _ in listed:
        if number <= previous:
            raise OSSError(400, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list "
                           "must be specified in order by part number.", "0042-00000209")
        previous = number
    chosen = []
    for number, etag in listed:
        part = parts.get(number)
        if part is None or part["etag"] != etag:
            raise _invalid_part(number, etag)
        chosen.append(part)
    for part in chosen[:-1]:
        if part["size"] < MIN_PART:
            raise OSSError(400, "EntityTooSmall", "Your proposed upload smaller than the minimum allowed size.",
                           "0042-00000213", PartNumber=str(part["number"]), MinSizeAllowed=str(MIN_PART),
                           ProposedSize=str(part["size"]))
    return chosen


def _complete_upload(emu, bucket, key, upload_id):
    encoded = url_encoded()
    info = emu.uploads.info(bucket, upload_id, key)
    headers = {k.lower(): v for k, v in request.headers.items()}
    conf, custom = callback_params(headers)
    complete_all = headers.get("x-oss-complete-all", "").lower()
    if complete_all not in ("", "yes"):
        raise OSSError(400, "InvalidArgument", "x-oss-complete-all must be yes.", ArgumentName="x-oss-complete-all",
                       ArgumentValue=headers["x-oss-complete-all"])
    if complete_all:
        if request.stream.read(1):
            raise OSSError(400, "InvalidArgument", "Should not specify both the x-oss-complete-all header and a "
                           "part list in the body.")
        listed = None
    else:
        listed = _complete_list()
    forbid = info["forbid_overwrite"] or headers.get("x-oss-forbid-overwrite", "").lower() == "true"
    acl = headers.get("x-oss-object-acl")
    check_acl_and_class({"x-oss-object-acl": acl} if acl is not None else {})
    with emu.uploads.lock:
        info = emu.uploads.info(bucket, upload_id, key)  # still there (not completed or aborted meanwhile)
        parts = emu.uploads.parts_in(emu.uploads.path(bucket, upload_id))
        if listed is None:
            listed = [(n, parts[n]["etag"]) for n in sorted(parts)]
            if not listed:
                raise OSSError(400, "InvalidArgument", "The upload has no parts to complete.")
        chosen = _choose_parts(parts, listed)
        if forbid and emu.store.exists(bucket, key):
            raise OSSError(409, "FileAlreadyExists", "The object you specified already exists and can not be "
                           "overwritten.", "0042-00000214")
        claimed = emu.uploads.claim(bucket, upload_id)
    # the parts now live under ``claimed``
    for part in chosen:
        part["path"] = part_path(claimed, part)
    try:
        staged = emu.uploads.assemble(bucket, upload_id, claimed, chosen)
        meta = dict(info["meta"], object_type="Multipart")
        if acl is not None:  # Complete may set the ACL too; it wins over Initiate's
            meta["headers"] = dict(meta["headers"], **{"x-oss-object-acl": acl})
        previous = size_of(emu, bucket, key)
        meta = emu.store.commit(bucket, key, staged, meta, overwrite=not forbid)
    except Exists:
        emu.uploads.unclaim(bucket, upload_id, claimed)
        raise OSSError(409, "FileAlreadyExists", "The object you specified already exists and can not be "
                       "overwritten.", "0042-00000214") from None
    except BaseException:
        emu.uploads.unclaim(bucket, upload_id, claimed)
        raise
    emu.uploads.discard(claimed)
    try:  # the event after the callback (see put_object)
        return _complete_answer(emu, bucket, key, meta, conf, custom, encoded)
    finally:
        emu.object_created("CompleteMultipartUpload", bucket, key, meta, previous)


def _complete_answer(emu, bucket, key, meta, conf, custom, encoded):
    result_headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
                      **sse_headers(meta.get("headers", {}))}
    if conf:
        return run_callback(emu, bucket, key, meta, custom, conf, result_headers, "CompleteMultipartUpload")
    location = f"{request.host_url.rstrip('/')}/{bucket}/{quote(key)}"
    inner = (f"<Location>{_esc(location)}</Location><Bucket>{_esc(bucket)}</Bucket>"
             f"<Key>{key_xml(key, encoded)}</Key><ETag>\"{meta['etag']}\"</ETag>")
    if encoded:
        inner = "<EncodingType>url</EncodingType>" + inner
    response = xml("CompleteMultipartUploadResult", inner)
    response.headers.update(result_headers)
    return response


def _upload_part_copy(emu, bucket, key, upload_id):
    """UploadPartCopy: a part from (a range of) an existing object: x-oss-copy-source and, optionally,
    x-oss-copy-source-range: bytes=first-last (within the source, else 400 InvalidArgument)."""
    number = _part_number(request.args.get("partNumber"))
    emu.uploads.info(bucket, upload_id, key)
    headers = {k.lower(): v for k, v in request.headers.items()}
    src_bucket, src_key = objects.copy_source(emu, headers["x-oss-copy-source"])
    found = emu.store.get(src_bucket, src_key)
    if found is None:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=src_key)
    src_meta, data_path = found
    objects.copy_preconditions(headers, src_meta)
    size = src_meta["size"]
    start, end = 0, size - 1
    wanted = headers.get("x-oss-copy-source-range")
    if wanted is not None:
        span = objects.byte_range(wanted, size, standard=False)
        if span is None:
            raise OSSError(400, "InvalidArgument", "The x-oss-copy-source-range is not a range within the source "
                           "object.", ArgumentName="x-oss-copy-source-range", ArgumentValue=wanted)
        start, end = span
    if end - start + 1 > MAX_PART:
        raise OSSError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
    sink = emu.store.sink(bucket)
    try:
        with open(data_path, "rb") as source:
            source.seek(start)
            left = end - start + 1
            while left > 0 and (chunk := source.read(min(multipart.CHUNK, left))):
                sink.write(chunk)
                left -= len(chunk)
        staged = sink.finish()
    except FileNotFoundError:
        sink.abort()
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=src_key) from None
    except BaseException:
        sink.abort()
        raise
    part = emu.uploads.put_part(bucket, upload_id, key, number, staged)
    inner = f"<LastModified>{iso(part['last_modified'])}</LastModified><ETag>\"{part['etag']}\"</ETag>"
    response = xml("CopyPartResult", inner)
    response.headers.update({"ETag": f'"{part["etag"]}"', "x-oss-hash-crc64ecma": part["crc64"]})
    return response
