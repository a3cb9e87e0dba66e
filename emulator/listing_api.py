"""Listing calls: ListObjectsV2 and ListMultipartUploads (the page logic is in listing.py)."""

from xml.sax.saxutils import escape as _esc

from flask import Response, request

from . import listing
from .common import int_arg, iso, key_xml, url_encoded, xml
from .errors import OSSError


def list_objects_v2(emu, bucket):
    """ListObjectsV2 (GetBucketV2): see listing.py."""
    args = request.args
    if args.get("list-type") != "2":
        raise OSSError(400, "InvalidArgument", "list-type must be 2 (ListObjectsV2).", ArgumentName="list-type",
                       ArgumentValue=args.get("list-type", ""))
    encoded = url_encoded()
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    start_after, token = args.get("start-after", ""), args.get("continuation-token", "")
    for name, value in (("prefix", prefix), ("delimiter", delimiter), ("start-after", start_after)):
        if len(value.encode("utf-8")) > 1023:
            raise OSSError(400, "InvalidArgument", f"{name} is longer than 1023 bytes.", ArgumentName=name)
    max_keys = int_arg("max-keys", 100, 1, 1000)
    fetch_owner = args.get("fetch-owner", "false").lower()
    if fetch_owner not in ("true", "false", ""):
        raise OSSError(400, "InvalidArgument", "fetch-owner must be true or false.", ArgumentName="fetch-owner",
                       ArgumentValue=args.get("fetch-owner"))
    entries, next_token = listing.list_page(emu.store.metas(bucket), prefix, delimiter, start_after, token or None,
                                            max_keys)
    body = listing.list_xml(bucket, entries, next_token, prefix=prefix, delimiter=delimiter,
                            start_after=start_after, token=token, max_keys=max_keys, encoded=encoded,
                            fetch_owner=fetch_owner == "true", owner_id=emu.config.account_id)
    return Response(body, 200, content_type="application/xml")


def list_uploads(emu, bucket):
    encoded = url_encoded()
    args = request.args
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    key_marker, id_marker = args.get("key-marker", ""), args.get("upload-id-marker", "")
    max_uploads = int_arg("max-uploads", 1000, 1, 1000)
    entries, prefixes = [], []
    for info in emu.uploads.list(bucket):
        key = info["key"]
        if not key.startswith(prefix):
            continue
        if key_marker:
            kb, mb = key.encode("utf-8"), key_marker.encode("utf-8")
            if kb < mb or (kb == mb and (not id_marker or info["upload_id"] <= id_marker)):
                continue  # after the marker: later keys, or (with upload-id-marker) later uploads of that key
            if delimiter and key_marker.endswith(delimiter) and key.startswith(key_marker):
                continue  # the marker is a common prefix already listed: every key under it is behind
        if delimiter and delimiter in key[len(prefix):]:
            common = key[:len(prefix) + key[len(prefix):].index(delimiter) + len(delimiter)]
            if common not in prefixes:
                prefixes.append(common)
                entries.append(("prefix", common, info))
            continue
        entries.append(("upload", key, info))
    shown, truncated = entries[:max_uploads], len(entries) > max_uploads
    next_key = next_id = ""
    if truncated and shown:
        kind, name, info = shown[-1]
        next_key, next_id = name, (info["upload_id"] if kind == "upload" else "")
    e = (lambda text: key_xml(text, encoded))
    inner = (f"<Bucket>{_esc(bucket)}</Bucket><KeyMarker>{e(key_marker)}</KeyMarker>"
             f"<UploadIdMarker>{_esc(id_marker)}</UploadIdMarker><NextKeyMarker>{e(next_key)}</NextKeyMarker>"
             f"<NextUploadIdMarker>{next_id}</NextUploadIdMarker><Delimiter>{e(delimiter)}</Delimiter>"
             f"<Prefix>{e(prefix)}</Prefix><MaxUploads>{max_uploads}</MaxUploads>"
             f"<IsTruncated>{str(truncated).lower()}</IsTruncated>")
    if encoded:
        inner = "<EncodingType>url</EncodingType>" + inner
    for kind, name, info in shown:
        if kind == "upload":
            inner += (f"<Upload><Key>{e(name)}</Key><UploadId>{info['upload_id']}</UploadId>"
                      f"<Initiated>{iso(info['initiated'])}</Initiated></Upload>")
        else:
            inner += f"<CommonPrefixes><Prefix>{e(name)}</Prefix></CommonPrefixes>"
    return xml("ListMultipartUploadsResult", inner)


LISTING_PARAMS = ("prefix", "marker", "delimiter", "max-keys", "encoding-type")


def list_objects_v1(emu, bucket):
    """ListObjects (GetBucket): ``prefix``, ``marker``, ``delimiter``, ``max-keys`` (1..1000, default 100),
    ``encoding-type=url``; a truncated page names its last key or common prefix as ``NextMarker``."""
    args = request.args
    encoded = url_encoded()
    prefix, delimiter, marker = args.get("prefix", ""), args.get("delimiter", ""), args.get("marker", "")
    for name, value in (("prefix", prefix), ("delimiter", delimiter), ("marker", marker)):
        if len(value.encode("utf-8")) > 1023:
            raise OSSError(400, "InvalidArgument", f"{name} is longer than 1023 bytes.", ArgumentName=name)
    max_keys = int_arg("max-keys", 100, 1, 1000)
    token = None
    if delimiter and marker.startswith(prefix) and marker.endswith(delimiter) and len(marker) > len(prefix):
        token = listing.encode_token("p", marker)  # a common prefix: resume after every key under it
    entries, next_token = listing.list_page(emu.store.metas(bucket), prefix, delimiter,
                                            "" if token else marker, token, max_keys)
    next_marker = ""
    if next_token:
        last = entries[-1]
        next_marker = last[1] if last[0] == "prefix" else last[1]["key"]
    e = (lambda text: key_xml(text, encoded))
    owner = emu.config.account_id
    inner = (f"<Name>{_esc(bucket)}</Name><Prefix>{e(prefix)}</Prefix><Marker>{e(marker)}</Marker>"
             f"<MaxKeys>{max_keys}</MaxKeys><Delimiter>{e(delimiter)}</Delimiter>")
    if encoded:
        inner += "<EncodingType>url</EncodingType>"
    inner += f"<IsTruncated>{'true' if next_token else 'false'}</IsTruncated>"
    if next_token:
        inner += f"<NextMarker>{e(next_marker)}</NextMarker>"
    for kind, item in entries:
        if kind == "key":
            storage = item.get("headers", {}).get("x-oss-storage-class", "Standard")
            inner += (f"<Contents><Key>{e(item['key'])}</Key><LastModified>{iso(item['last_modified'])}</LastModified>"
                      f"<ETag>\"{item['etag']}\"</ETag><Type>{item.get('object_type', 'Normal')}</Type>"
                      f"<Size>{item['size']}</Size><StorageClass>{_esc(storage)}</StorageClass>"
                      f"<Owner><ID>{owner}</ID><DisplayName>{owner}</DisplayName></Owner></Contents>")
    for kind, item in entries:
        if kind == "prefix":
            inner += f"<CommonPrefixes><Prefix>{e(item)}</Prefix></CommonPrefixes>"
    return xml("ListBucketResult", inner)
