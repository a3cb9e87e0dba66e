"""Bucket management: ACL (PutBucketAcl/GetBucketAcl), CORS (PutBucketCors/GetBucketCors/DeleteBucketCors and the preflight), website
(index document) and lifecycle rules; PutBucket/DeleteBucket/ListBuckets."""

import base64
import hashlib
import os
import re
import shutil
import threading
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape as _esc

from flask import Response, request

from . import listing
from .common import acl_response, int_arg, iso, xml
from .errors import OSSError

_BUCKETS_LOCK = threading.Lock()
BUCKET_ACLS = ("private", "public-read", "public-read-write")


def check_bucket_acl(value):
    if value not in BUCKET_ACLS:
        raise OSSError(400, "InvalidArgument", "no such bucket access control exists", "0015-00000204",
                       ArgumentName="x-oss-acl", ArgumentValue=value)
    return value


def bucket_acl(emu, bucket, method):
    """PutBucketAcl (the x-oss-acl header) / GetBucketAcl; both need a signature."""
    if method == "PUT":
        emu.acl[bucket] = check_bucket_acl(request.headers.get("x-oss-acl", ""))
        return Response(status=200)
    if method not in ("GET", "HEAD"):
        raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    return acl_response(emu.acl[bucket])


def match_cors(rules, origin, method, req_headers):
    for rule in rules:
        if not any(o == "*" or o == origin or ("*" in o and _wild(o, origin)) for o in rule["origins"]):
            continue
        if method not in rule["methods"]:
            continue
        allowed = [h.lower() for h in rule["headers"]]
        if all("*" in allowed or h.lower() in allowed for h in req_headers):
            return rule
    return None


def _wild(pattern, value):
    head, tail = pattern.split("*", 1)
    return value.startswith(head) and value.endswith(tail) and len(value) >= len(head) + len(tail)


def preflight(emu, bucket):
    origin = request.headers.get("Origin")
    if not origin:
        raise OSSError(400, "BadRequest", "Insufficient information. Origin request header needed.")
    method = request.headers.get("Access-Control-Request-Method")
    if not method:
        raise OSSError(400, "BadRequest", "Insufficient information. Request Access-Control-Request-Method header "
                       "needed.")
    req_headers = [h.strip() for h in request.headers.get("Access-Control-Request-Headers", "").split(",") if h.strip()]
    rule = match_cors(emu.cors.get(bucket, []), origin, method, req_headers)
    if rule is None:
        raise OSSError(403, "AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually "
                       "because the evalution of Origin, request method / Access-Control-Request-Method or "
                       "Access-Control-Requet-Headers are not whitelisted by the resource's CORS spec.")
    headers = {"Access-Control-Allow-Origin": "*" if "*" in rule["origins"] else origin,
               "Access-Control-Allow-Methods": ", ".join(rule["methods"]),
               "Access-Control-Max-Age": str(rule["max_age"]), "Vary": "Origin"}
    if req_headers:
        headers["Access-Control-Allow-Headers"] = ", ".join(req_headers)
    if rule["expose"]:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule["expose"])
    return Response(status=200, headers=headers)


def bucket_cors(emu, bucket, method):
    if method == "PUT":
        try:
            root = ET.fromstring(request.get_data())
        except ET.ParseError:
            raise OSSError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        rules = []
        for node in root.findall("CORSRule"):
            rules.append({"origins": [e.text or "" for e in node.findall("AllowedOrigin")],
                          "methods": [(e.text or "").upper() for e in node.findall("AllowedMethod")],
                          "headers": [e.text or "" for e in node.findall("AllowedHeader")],
                          "expose": [e.text or "" for e in node.findall("ExposeHeader")],
                          "max_age": int(node.findtext("MaxAgeSeconds") or 0)})
        if not rules or len(rules) > 10:
            raise OSSError(400, "InvalidArgument", "A CORS configuration has 1 to 10 rules.")
        emu.cors[bucket] = rules  # PutBucketCors replaces all rules
        return Response(status=200)
    if method == "DELETE":
        emu.cors[bucket] = []
        return Response(status=204)
    if not emu.cors[bucket]:
        raise OSSError(404, "NoSuchCORSConfiguration", "The CORS configuration does not exist.")
    parts = []
    for r in emu.cors[bucket]:
        inner = "".join(f"<AllowedOrigin>{_esc(o)}</AllowedOrigin>" for o in r["origins"])
        inner += "".join(f"<AllowedMethod>{m}</AllowedMethod>" for m in r["methods"])
        inner += "".join(f"<AllowedHeader>{_esc(h)}</AllowedHeader>" for h in r["headers"])
        inner += "".join(f"<ExposeHeader>{_esc(h)}</ExposeHeader>" for h in r["expose"])
        inner += f"<MaxAgeSeconds>{r['max_age']}</MaxAgeSeconds>"
        parts.append(f"<CORSRule>{inner}</CORSRule>")
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<CORSConfiguration>' + "".join(parts) + "</CORSConfiguration>"
    return Response(body, 200, content_type="application/xml")


def bucket_website(emu, bucket, method):
    if method == "PUT":
        try:
            root = ET.fromstring(request.get_data())
        except ET.ParseError:
            raise OSSError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        suffix = root.findtext("IndexDocument/Suffix")
        if not suffix:
            raise OSSError(400, "InvalidArgument", "IndexDocument Suffix is required.")
        emu.index[bucket] = suffix
        return Response(status=200)
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<WebsiteConfiguration><IndexDocument><Suffix>'
            f"{_esc(emu.index[bucket])}</Suffix></IndexDocument></WebsiteConfiguration>")
    return Response(body, 200, content_type="application/xml")


def bucket_lifecycle(emu, bucket, method):
    """PutBucketLifecycle (rules replaced), GetBucketLifecycle, DeleteBucketLifecycle."""
    if method == "PUT":
        body = request.stream.read(listing.MAX_BODY + 1)
        md5 = request.headers.get("Content-MD5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            raise OSSError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.", "0002-00000019")
        emu.lifecycle[bucket] = listing.parse_lifecycle(body)
        return Response(status=200)
    if method == "DELETE":
        emu.lifecycle[bucket] = []
        return Response(status=204)
    if method != "GET":
        raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    if not emu.lifecycle[bucket]:
        raise OSSError(404, "NoSuchLifecycle", "No Row found in Lifecycle Table.", BucketName=bucket)
    return Response(listing.lifecycle_xml(emu.lifecycle[bucket]), 200, content_type="application/xml")


# --- buckets themselves: PutBucket, DeleteBucket, ListBuckets (GetService) --------------------------
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def create_bucket(emu: Any, bucket: str) -> Response:
    """PutBucket of a new name: an empty bucket (no CORS rule, the default index document), private
    unless x-oss-acl says otherwise (as OSS)."""
    acl = check_bucket_acl(request.headers.get("x-oss-acl", "private"))
    if not _BUCKET_NAME.fullmatch(bucket):
        raise OSSError(400, "InvalidBucketName", "The specified bucket is not valid.", "0015-00000001",
                       BucketName=bucket)
    with _BUCKETS_LOCK:
        if bucket not in emu.cors:
            emu.created[bucket] = emu.now()
            emu.index[bucket] = emu.config.index_document
            emu.lifecycle[bucket] = []
            emu.acl[bucket] = acl
            emu.cors[bucket] = []  # last: a bucket exists once it has its CORS entry
    return Response(status=200, headers={"Location": f"/{bucket}"})


def delete_bucket(emu: Any, bucket: str) -> Response:
    """DeleteBucket: only an empty one (no object, no multipart upload in progress)."""
    if next(iter(emu.store.metas(bucket)), None) is not None or emu.uploads.list(bucket):
        raise OSSError(409, "BucketNotEmpty", "The bucket you tried to delete is not empty.", "0015-00000301",
                       BucketName=bucket)
    with _BUCKETS_LOCK:
        for table in (emu.cors, emu.index, emu.lifecycle, emu.created, emu.acl):
            table.pop(bucket, None)
    shutil.rmtree(os.path.join(emu.store.root, bucket), ignore_errors=True)
    return Response(status=204)


def list_buckets(emu: Any) -> Response:
    """ListBuckets (GetService): ``prefix``, ``marker``, ``max-keys``; each bucket's endpoint is this
    emulator's own address (an SDK that opens a bucket by its listed endpoint stays on loopback)."""
    args = request.args
    prefix, marker = args.get("prefix", ""), args.get("marker", "")
    max_keys = int_arg("max-keys", 100, 1, 1000)
    names = sorted(n for n in list(emu.cors) if n.startswith(prefix) and n > marker)
    page, truncated = names[:max_keys], len(names) > max_keys
    owner, region, host = emu.config.account_id, emu.config.region, _esc(request.host)
    inner = f"<Owner><ID>{owner}</ID><DisplayName>{owner}</DisplayName></Owner>"
    if prefix or marker or "max-keys" in args:
        inner += f"<Prefix>{_esc(prefix)}</Prefix><Marker>{_esc(marker)}</Marker><MaxKeys>{max_keys}</MaxKeys>"
        inner += f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        if truncated:
            inner += f"<NextMarker>{_esc(page[-1])}</NextMarker>"
    inner += "<Buckets>" + "".join(
        f"<Bucket><CreationDate>{iso(emu.created.get(n, emu.started))}</CreationDate>"
        f"<ExtranetEndpoint>{host}</ExtranetEndpoint><IntranetEndpoint>{host}</IntranetEndpoint>"
        f"<Location>oss-{region}</Location><Name>{_esc(n)}</Name><Region>{region}</Region>"
        f"<StorageClass>Standard</StorageClass></Bucket>" for n in page) + "</Buckets>"
    return xml("ListAllMyBucketsResult", inner)


def list_live_channels(emu: Any, bucket: str) -> Response:
    """ListLiveChannel: always empty, since PutLiveChannel is not implemented (501)."""
    prefix, marker = request.args.get("prefix", ""), request.args.get("marker", "")
    max_keys = int_arg("max-keys", 100, 1, 1000)
    return xml("ListLiveChannelResult", f"<Prefix>{_esc(prefix)}</Prefix><Marker>{_esc(marker)}</Marker>"
               f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>false</IsTruncated><NextMarker></NextMarker>")
