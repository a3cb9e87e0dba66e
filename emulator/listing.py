"""ListObjectsV2 and bucket lifecycle rules, written from the OSS API reference ("ListObjectsV2
(GetBucketV2)", "PutBucketLifecycle", "GetBucketLifecycle", "DeleteBucketLifecycle").

ListObjectsV2: ``GET /<bucket>?list-type=2`` with ``prefix``, ``delimiter``, ``max-keys`` (1..1000,
default 100), ``start-after``, ``continuation-token``, ``fetch-owner`` and ``encoding-type=url``.
Keys are listed in UTF-8 byte order; with a delimiter, keys sharing the part of their name up to the
first delimiter after the prefix are rolled up into one ``CommonPrefixes`` entry, which counts as one
key against ``max-keys`` and in ``KeyCount``. A truncated page carries an opaque
``NextContinuationToken`` (here: URL-safe base64 of where the page stopped, so it survives URL
encoding unchanged) that resumes after the last entry, skipping the rest of a common prefix.

Lifecycle: the rules are validated (the structure OSS accepts: each ``Rule`` has a ``Status`` of
``Enabled``/``Disabled``, at least one action, positive whole ``Days``, IDs unique and at most 255
characters; a rule without an ID gets one) and stored; the emulator does not act on them.
"""

import base64
import binascii
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import quote
from xml.sax.saxutils import escape

from .errors import MALFORMED_XML, OSSError, parse_xml


# --- ListObjectsV2 ---------------------------------------------------------------------------------
def encode_token(kind, name):
    """kind "k": resume after this key; "p": resume after every key under this common prefix."""
    return base64.urlsafe_b64encode(f"{kind}{name}".encode("utf-8")).decode("ascii").rstrip("=")


def decode_token(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raw = ""
    if not raw or raw[0] not in "kp" or not token.isascii():
        raise OSSError(400, "InvalidArgument", "The continuation token provided is incorrect.",
                       ArgumentName="continuation-token", ArgumentValue=token)
    return raw[0], raw[1:]


def list_page(metas, prefix="", delimiter="", start_after="", token=None, max_keys=100):
    """(entries, next token or None): entries are ("key", meta) or ("prefix", common prefix), in order."""
    skip_under = ""
    marker = start_after
    if token:
        kind, marker = decode_token(token)
        if kind == "p":
            skip_under = marker
    candidates = sorted((m["key"], m) for m in metas
                        if m["key"].startswith(prefix) and m["key"] > marker
                        and not (skip_under and m["key"].startswith(skip_under)))
    entries, last_prefix = [], None
    for key, meta in candidates:
        common = None
        if delimiter:
            at = key.find(delimiter, len(prefix))
            if at >= 0:
                common = key[:at + len(delimiter)]
                if common == last_prefix:
                    continue
        if len(entries) == max_keys:  # one more entry exists: this page is truncated
            kind, name = ("p", entries[-1][1]) if entries[-1][0] == "prefix" else ("k", entries[-1][1]["key"])
            return entries, encode_token(kind, name)
        if common is not None:
            entries.append(("prefix", common))
            last_prefix = common
        else:
            entries.append(("key", meta))
    return entries, None


def _iso(ts):
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000Z"  # OSS: whole seconds, as oss2 expects


def list_xml(bucket, entries, next_token, *, prefix, delimiter, start_after, token, max_keys, encoded,
             fetch_owner, owner_id):
    def e(text):
        return escape(quote(text, safe="") if encoded else text)

    parts = [f"<Name>{escape(bucket)}</Name>", f"<Prefix>{e(prefix)}</Prefix>"]
    if token:
        parts.append(f"<ContinuationToken>{e(token)}</ContinuationToken>")
    if start_after:
        parts.append(f"<StartAfter>{e(start_after)}</StartAfter>")
    parts.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    if delimiter:
        parts.append(f"<Delimiter>{e(delimiter)}</Delimiter>")
    if encoded:
        parts.append("<EncodingType>url</EncodingType>")
    parts.append(f"<IsTruncated>{'true' if next_token else 'false'}</IsTruncated>")
    if next_token:
        parts.append(f"<NextContinuationToken>{e(next_token)}</NextContinuationToken>")
    owner = (f"<Owner><ID>{escape(owner_id)}</ID><DisplayName>{escape(owner_id)}</DisplayName></Owner>"
             if fetch_owner else "")
    for kind, item in entries:
        if kind == "key":
            m = item
            storage = m.get("headers", {}).get("x-oss-storage-class", "Standard")
            parts.append(f"<Contents><Key>{e(m['key'])}</Key><LastModified>{_iso(m['last_modified'])}</LastModified>"
                         f"<ETag>\"{m['etag']}\"</ETag><Type>{m.get('object_type', 'Normal')}</Type>"
                         f"<Size>{m['size']}</Size><StorageClass>{escape(storage)}</StorageClass>{owner}</Contents>")
    for kind, item in entries:
        if kind == "prefix":
            parts.append(f"<CommonPrefixes><Prefix>{e(item)}</Prefix></CommonPrefixes>")
    parts.append(f"<KeyCount>{len(entries)}</KeyCount>")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>' + "".join(parts) + "</ListBucketResult>"


# --- lifecycle ---------------------------------------------------------------------------------------
_ACTIONS = ("Expiration", "Transition", "AbortMultipartUpload", "NoncurrentVersionExpiration",
            "NoncurrentVersionTransition")
MAX_RULES = 1000
MAX_BODY = 1024 * 1024


def parse_lifecycle(body):
    """The rules of a PutBucketLifecycle body, each as a normalized XML string (ID, Prefix, Status first)."""
    if len(body) > MAX_BODY:
        raise OSSError(400, "InvalidArgument", "The lifecycle configuration is too large.")
    root = parse_xml(body, "LifecycleConfiguration")
    nodes = root.findall("Rule")
    if not nodes or len(nodes) > MAX_RULES or len(nodes) != len(list(root)):
        raise OSSError(400, "MalformedXML", MALFORMED_XML)
    rules, ids = [], set()
    for node in nodes:
        rule_id = (node.findtext("ID") or "").strip() or uuid.uuid4().hex
        if len(rule_id) > 255:
            raise OSSError(400, "InvalidArgument", "The rule ID is longer than 255 characters.",
                           ArgumentName="ID", ArgumentValue=rule_id[:64])
        if rule_id in ids:
            raise OSSError(400, "InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule.",
                           ArgumentName="ID", ArgumentValue=rule_id)
        ids.add(rule_id)
        status = node.findtext("Status")
        if status not in ("Enabled", "Disabled"):
            raise OSSError(400, "MalformedXML", MALFORMED_XML)
        if not any(node.find(name) is not None for name in _ACTIONS):
            raise OSSError(400, "InvalidArgument", "Rule must have at least one action: Expiration, Transition, "
                           "AbortMultipartUpload or a NoncurrentVersion action.", ArgumentName="Rule",
                           ArgumentValue=rule_id)
        for days in node.iter("Days"):
            text = (days.text or "").strip()
            if not text.isascii() or not text.isdigit() or int(text) < 1:
                raise OSSError(400, "InvalidArgument", "Days must be a positive integer.", ArgumentName="Days",
                               ArgumentValue=text)
        for name in ("Expiration", "AbortMultipartUpload"):
            action = node.find(name)
            if action is not None and len(action) == 0:
                raise OSSError(400, "MalformedXML", MALFORMED_XML)
        out = ET.Element("Rule")
        ET.SubElement(out, "ID").text = rule_id
        ET.SubElement(out, "Prefix").text = node.findtext("Prefix") or ""
        ET.SubElement(out, "Status").text = status
        for child in node:
            if child.tag not in ("ID", "Prefix", "Status"):
                out.append(child)
        rules.append(ET.tostring(out, encoding="unicode"))
    return rules


def lifecycle_xml(rules):
    return '<?xml version="1.0" encoding="UTF-8"?>\n<LifecycleConfiguration>' + "".join(rules) + \
        "</LifecycleConfiguration>"
