"""Bucket management: CORS (PutBucketCors/GetBucketCors/DeleteBucketCors and the preflight), website
(index document) and lifecycle rules."""

import base64
import hashlib
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as _esc

from flask import Response, request

from . import listing
from .errors import OSSError


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
