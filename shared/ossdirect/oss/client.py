"""A small OSS client for the functions: V4 header signing, HEAD, ranged GET, copy, delete.

Signing (``sign_v4_request``) is the OSS V4 header scheme (``OSS4-HMAC-SHA256``) exactly as the
official Python SDK ``alibabacloud-oss-v2`` builds it (golden vectors in
``tests/vectors/oss_header_signatures.json``, made by ``tools/golden/oss_header_vectors.py``, also
cross-checked with ``oss2``):

    canonical request = METHOD \\n quote("/<bucket>/<key>", safe="/") \\n sorted query \\n
                        signed headers (x-oss-*, content-type, content-md5, additional) \\n
                        additional header names \\n UNSIGNED-PAYLOAD
    string to sign    = OSS4-HMAC-SHA256 \\n <x-oss-date> \\n <yyyymmdd>/<region>/oss/aliyun_v4_request \\n
                        hex(sha256(canonical request))

The derived key comes from :func:`ossdirect.signing.v4_signing_key` (cached), so a request costs one
SHA-256 and one HMAC.

``OssClient`` talks HTTP/1.1 through ``http.client`` (imported on first use: it costs ~30 ms to
import, which the functions that never call OSS should not pay) with one persistent connection per
(thread, scheme, host), so a call is one round trip. A reused keep-alive connection that the server
closed meanwhile is re-opened once; nothing else is retried (OSS gives the callback 5 s in all).
Every failure other than "not found" for ``head_object`` raises :class:`OssError`, whose text never
holds a secret or token.
"""

import hashlib
import hmac
import threading
import time
from collections import namedtuple
from urllib.parse import quote

from .signer import V4_ALGORITHM, V4_TERMINATOR, normalize_region, v4_signing_key
from ..errors import OssdirectError

__all__ = ["OssClient", "OssError", "ObjectInfo", "PartInfo", "sign_v4_request", "presign_v4_query", "canonical_query",
           "UNSIGNED_PAYLOAD"]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_MD5 = "1B2M2Y8AsgTpgAmY7PhCfg=="  # base64 MD5 of b"": the SDK sends it on copy and delete
USER_AGENT = "ossdirect/0.1"

# Headers this module sets when signing; a caller's header of the same name (any case) is replaced.
_SIGNER_HEADERS = frozenset(("x-oss-date", "date", "x-oss-content-sha256", "x-oss-security-token", "authorization"))
_DEFAULT_SIGNED = frozenset(("content-type", "content-md5"))

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_stamp_cache = (None, None, None, None)  # (epoch second, x-oss-date, Date, yyyymmdd)


def _stamp(now):
    """``now`` (None, epoch seconds, or a datetime; naive means UTC) -> (x-oss-date, Date, yyyymmdd)."""
    global _stamp_cache
    if now is None:
        secs = int(time.time())
    elif isinstance(now, (int, float)):
        secs = int(now)
    else:  # datetime
        if now.tzinfo is None:
            from datetime import timezone

            now = now.replace(tzinfo=timezone.utc)
        secs = int(now.timestamp())
    cached = _stamp_cache
    if cached[0] == secs:
        return cached[1], cached[2], cached[3]
    t = time.gmtime(secs)
    day = "%04d%02d%02d" % (t.tm_year, t.tm_mon, t.tm_mday)
    iso = "%sT%02d%02d%02dZ" % (day, t.tm_hour, t.tm_min, t.tm_sec)
    http_date = "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)
    _stamp_cache = (secs, iso, http_date, day)
    return iso, http_date, day


def _query_items(query):
    if not query:
        return ()
    return query.items() if hasattr(query, "items") else query


def canonical_query(query):
    """Sorted ``name=value`` pairs, both percent-encoded (``/`` too); an empty value gives ``name``."""
    if not query:
        return ""
    pairs = sorted((quote(str(k), safe=""), "" if v is None else quote(str(v), safe=""))
                   for k, v in _query_items(query))
    return "&".join(f"{k}={v}" if v else k for k, v in pairs)


def _url_query(query):
    """The query as the SDK puts it on the wire (``urlencode(..., quote_via=quote)``); '' if none."""
    items = _query_items(query)
    if not items:
        return ""
    return "?" + "&".join(
        quote(str(k), safe="") if v is None else f"{quote(str(k), safe='')}={quote(str(v), safe='')}"
        for k, v in items)


def sign_v4_request(method, bucket, key, query, headers, creds, region, now=None, *, additional_headers=()):
    """Sign one request with OSS V4 header authentication; return the headers to send.

    ``method``: HTTP verb; ``bucket``/``key``: the object (``key`` None or "" for the bucket itself;
    the canonical resource is always ``/<bucket>/<key>`` whatever the endpoint style); ``query``: a
    mapping or pairs of *unencoded* names and values ('' or None for a bare ``?uploads``);
    ``headers``: the request's own headers (``Range``, ``x-oss-copy-source``, ``Content-Type``...);
    ``creds``: :class:`ossdirect.credentials.Credentials`; ``region``: ``cn-hangzhou`` (an ``oss-``
    prefix is dropped); ``now``: None (the clock), epoch seconds or a datetime (naive = UTC);
    ``additional_headers``: other header names to sign (only those present and non-empty count).

    Returns a new dict: ``headers`` plus ``x-oss-date``, ``Date``, ``x-oss-content-sha256``,
    ``x-oss-security-token`` (STS only) and ``Authorization``. Header values are signed trimmed, as
    OSS reads them.
    """
    secret = creds.access_key_secret
    if not creds.access_key_id or not secret:
        raise ValueError("credentials without an access key id or secret")
    iso, http_date, day = _stamp(now)
    region = normalize_region(region)
    token = creds.security_token

    out = {}
    signed = [("x-oss-content-sha256", UNSIGNED_PAYLOAD), ("x-oss-date", iso)]
    if token:
        signed.append(("x-oss-security-token", token))
    wanted = {h.lower() for h in additional_headers} if additional_headers else ()
    additional = []
    if headers:
        for k, v in headers.items():
            lk = k.lower()
            if lk in _SIGNER_HEADERS:
                continue
            out[k] = v
            if lk.startswith("x-oss-") or lk in _DEFAULT_SIGNED:
                signed.append((lk, str(v).strip()))
            elif lk in wanted:
                v = str(v).strip()
                if v:
                    signed.append((lk, v))
                    additional.append(lk)
    out["x-oss-date"] = iso
    out["Date"] = http_date
    if token:
        out["x-oss-security-token"] = token
    out["x-oss-content-sha256"] = UNSIGNED_PAYLOAD
    signed.sort()
    additional.sort()
    add_names = ";".join(additional)

    canonical = "%s\n%s\n%s\n%s\n%s\n%s" % (
        method, quote(f"/{bucket}/{key or ''}", safe="/"), canonical_query(query) if query else "",
        "".join([f"{k}:{v}\n" for k, v in signed]), add_names, UNSIGNED_PAYLOAD)
    scope = f"{day}/{region}/oss/{V4_TERMINATOR}"
    string_to_sign = f"{V4_ALGORITHM}\n{iso}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.digest(v4_signing_key(secret, day, region), string_to_sign.encode(), "sha256").hex()
    if additional:
        out["Authorization"] = (f"{V4_ALGORITHM} Credential={creds.access_key_id}/{scope},"
                                f"AdditionalHeaders={add_names},Signature={signature}")
    else:
        out["Authorization"] = f"{V4_ALGORITHM} Credential={creds.access_key_id}/{scope},Signature={signature}"
    return out


def presign_v4_query(method, bucket, key, query, creds, region, expires, now=None, *, additional_headers=None):
    """The query string (no leading ``?``) of a V4 presigned URL, exactly as ``alibabacloud-oss-v2``'s
    ``presign`` builds it (golden vectors: ``presign`` cases in ``tests/vectors/oss_header_signatures.json``).

    ``query``: the request's own parameters (pairs or a mapping, unencoded, e.g. ``partNumber`` and
    ``uploadId``), kept first and in order; then ``x-oss-signature-version``, ``x-oss-date``,
    ``x-oss-expires``, ``x-oss-credential``, ``x-oss-security-token`` (STS), ``x-oss-additional-headers``
    and last ``x-oss-signature``. Every parameter but the signature is signed (the canonical query is
    all of them, sorted, percent-encoded). ``expires``: seconds the URL stays valid (1..604800, counted
    from ``now``). ``additional_headers``: ``{name: value}`` of other request headers to sign (e.g.
    ``{"content-length": "8388608"}``): named in ``x-oss-additional-headers`` and part of the canonical
    headers, so a request must carry each with exactly that value. Names OSS signs anyway
    (``x-oss-*``, ``content-type``, ``content-md5``) and empty values are left out, as the SDK does.
    """
    secret = creds.access_key_secret
    if not creds.access_key_id or not secret:
        raise ValueError("credentials without an access key id or secret")
    expires = int(expires)
    if not 1 <= expires <= 7 * 24 * 3600:
        raise ValueError("a V4 presigned URL lives 1 s to 7 days")
    iso, _, day = _stamp(now)
    region = normalize_region(region)
    scope = f"{day}/{region}/oss/{V4_TERMINATOR}"
    signed_headers = []
    for name, value in (additional_headers or {}).items():
        name, value = name.lower(), str(value).strip()
        if value and not (name.startswith("x-oss-") or name in _DEFAULT_SIGNED):
            signed_headers.append((name, value))
    signed_headers.sort()
    names = ";".join(n for n, _ in signed_headers)
    pairs = [(str(k), "" if v is None else str(v)) for k, v in _query_items(query)]
    pairs += [("x-oss-signature-version", V4_ALGORITHM), ("x-oss-date", iso), ("x-oss-expires", str(expires)),
              ("x-oss-credential", f"{creds.access_key_id}/{scope}")]
    if creds.security_token:
        pairs.append(("x-oss-security-token", creds.security_token))
    if names:
        pairs.append(("x-oss-additional-headers", names))
    encoded = [(quote(k, safe=""), quote(v, safe="")) for k, v in pairs]
    canonical = "%s\n%s\n%s\n%s\n%s\n%s" % (
        method, quote(f"/{bucket}/{key or ''}", safe="/"),
        "&".join(f"{k}={v}" if v else k for k, v in sorted(encoded)),
        "".join(f"{k}:{v}\n" for k, v in signed_headers), names, UNSIGNED_PAYLOAD)
    string_to_sign = f"{V4_ALGORITHM}\n{iso}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.digest(v4_signing_key(secret, day, region), string_to_sign.encode(), "sha256").hex()
    return "&".join(f"{k}={v}" if v else k for k, v in encoded) + f"&x-oss-signature={signature}"


class OssError(OssdirectError):
    """An OSS call that failed: ``status`` (0 when no HTTP answer), OSS's ``code``, ``message``.

    Client-side codes: ``RequestTimeout`` is OSS's own; ``ClientTimeout`` (no answer in ``timeout``),
    ``ConnectionFailed`` (could not connect, or the connection broke), ``BadResponse``.
    """

    def __init__(self, status, code, message="", request_id=None, ec=None):
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.ec = ec

    def __str__(self):
        text = f"OSS {self.status or '-'} {self.code}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


ObjectInfo = namedtuple("ObjectInfo", "size etag content_type last_modified metadata headers")
ObjectInfo.__doc__ = """``head_object``'s answer: ``size`` (int), ``etag`` (no quotes), ``content_type``,
``last_modified`` (the HTTP date text OSS sent), ``metadata`` (``x-oss-meta-*`` by lower-case name
without the prefix, values decoded as UTF-8) and every response header by lower-case name."""


PartInfo = namedtuple("PartInfo", "number size etag")
PartInfo.__doc__ = """One uploaded part (``list_parts``): ``number``, ``size`` (int), ``etag`` (no quotes)."""

MultipartAnswer = namedtuple("MultipartAnswer", "status headers body")
MultipartAnswer.__doc__ = """``complete_multipart_upload``'s answer as OSS sent it: ``status`` (200, or 203 when the
upload callback failed: the object is stored but the callback's server did not answer), lower-case
``headers`` and the ``body`` bytes (the callback's JSON with a callback, else OSS's XML)."""


def _xml_escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_XML_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def _xml_field(text, name):
    """The text of the first ``<name>`` element of OSS's small flat XML answers (no regex: compiling
    them would cost cold start for an error path)."""
    start = text.find(f"<{name}>")
    if start < 0:
        return None
    start += len(name) + 2
    end = text.find(f"</{name}>", start)
    if end < 0:
        return None
    value = text[start:end]
    for entity, char in _XML_ENTITIES:
        value = value.replace(entity, char)
    return value.strip()


def _error_from(status, reason, headers, body):
    """OssError from an error answer: XML body, else the base64 XML in ``x-oss-err`` (HEAD has no body)."""
    text = ""
    if body:
        text = body.decode("utf-8", "replace")
    elif headers.get("x-oss-err"):
        import base64

        try:
            text = base64.b64decode(headers["x-oss-err"]).decode("utf-8", "replace")
        except ValueError:
            text = ""
    code = _xml_field(text, "Code") if "<Error" in text else None
    message = _xml_field(text, "Message") if code else None
    request_id = (_xml_field(text, "RequestId") if code else None) or headers.get("x-oss-request-id")
    ec = (_xml_field(text, "EC") if code else None) or headers.get("x-oss-ec")
    if not code:
        code = {403: "AccessDenied", 404: "NotFound"}.get(status, f"HTTP{status}")
        message = reason or ""
    return OssError(status, code, (message or "")[:500], request_id, ec)


def _utf8(value):
    """http.client decodes header bytes as latin-1; OSS sends metadata as raw UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


_tls = threading.local()
_ssl_context = None
_http = None  # http.client, imported on first use


def _http_client():
    global _http
    if _http is None:
        import http.client

        _http = http.client
    return _http


def _tls_context():
    global _ssl_context
    if _ssl_context is None:
        import ssl

        _ssl_context = ssl.create_default_context()
    return _ssl_context


class OssClient:
    """One bucket at ``endpoint``, the bucket's base URL.

    ``endpoint``: virtual-hosted ``https://<bucket>.oss-<region>-internal.aliyuncs.com`` or path-style
    ``http://127.0.0.1:9100/<bucket>`` (the local emulator): the object's URL path is the endpoint's
    path plus ``/<key>``. ``region`` scopes the signature; ``timeout`` (seconds) bounds the connect
    and each read.
    """

    def __init__(self, endpoint, bucket, region, timeout=2.0):
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OSS endpoint must be an http(s) URL, not {endpoint!r}")
        if parts.query or parts.fragment:
            raise ValueError("OSS endpoint must not have a query or fragment")
        if not bucket:
            raise ValueError("OSS bucket is required")
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = normalize_region(region)
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._pool_key = (parts.scheme, parts.netloc.lower())
        self._prefix = parts.path.rstrip("/")

    def __repr__(self):
        return f"OssClient({self.endpoint!r}, bucket={self.bucket!r}, region={self.region!r})"

    def object_path(self, key, query=None):
        """The request target for ``key`` (path plus query) as this client sends it."""
        return f"{self._prefix}/{quote(key)}{_url_query(query)}"

    # -- operations ---------------------------------------------------------------------------

    def head_object(self, key, creds):
        """``ObjectInfo`` for ``key``, or None when OSS answers 404 (no such key)."""
        status, reason, headers, body = self._call("HEAD", key, creds)
        if status == 404:
            err = _error_from(status, reason, headers, body)
            if err.code == "NoSuchBucket":  # a configuration error, not a missing object
                raise err
            return None
        if status != 200:
            raise _error_from(status, reason, headers, body)
        try:
            size = int(headers.get("content-length", ""))
        except ValueError:
            raise OssError(status, "BadResponse", "HEAD answer without a Content-Length") from None
        metadata = {name[11:]: _utf8(value) for name, value in headers.items() if name.startswith("x-oss-meta-")}
        return ObjectInfo(size, headers.get("etag", "").strip('"'), headers.get("content-type"),
                          headers.get("last-modified"), metadata, headers)

    def get_range(self, key, creds, start, length):
        """Up to ``length`` bytes of ``key`` from offset ``start`` (fewer at the end of the object;
        b"" when ``start`` is past the end, OSS's 416). 404 and other failures raise ``OssError``."""
        if start < 0 or length <= 0:
            raise ValueError("get_range needs start >= 0 and length > 0")
        status, reason, headers, body = self._call(
            "GET", key, creds, {"Range": f"bytes={start}-{start + length - 1}"}, limit=start + length)
        if status == 206:
            return body[:length]
        if status == 200:  # OSS ignores a range it cannot apply and sends the object from 0
            return body[start:start + length]
        if status == 416:
            return b""
        raise _error_from(status, reason, headers, body)

    def copy_object(self, src_key, dst_key, creds, headers=None):
        """Server-side copy within the bucket; returns the new ETag (no quotes).

        ``headers``: extra request headers (``x-oss-forbid-overwrite``, ``x-oss-metadata-directive``...).
        """
        request_headers = {"x-oss-copy-source": f"/{self.bucket}/{quote(src_key)}", "Content-MD5": EMPTY_MD5}
        if headers:
            request_headers.update(headers)
        status, reason, resp_headers, body = self._call("PUT", dst_key, creds, request_headers)
        if status != 200:
            raise _error_from(status, reason, resp_headers, body)
        text = body.decode("utf-8", "replace")
        if "<Error" in text:  # a copy can fail after OSS has sent 200
            raise _error_from(500, reason, resp_headers, body)
        etag = _xml_field(text, "ETag") if "<ETag>" in text else resp_headers.get("etag")
        return (etag or "").strip('"')

    def delete_object(self, key, creds):
        """Delete ``key`` (OSS answers 204 whether or not it existed)."""
        status, reason, headers, body = self._call("DELETE", key, creds, {"Content-MD5": EMPTY_MD5})
        if not 200 <= status < 300:
            raise _error_from(status, reason, headers, body)

    # -- multipart upload ---------------------------------------------------------------------

    def initiate_multipart_upload(self, key, creds, headers=None):
        """InitiateMultipartUpload; ``headers`` are applied to the object at Complete (Content-Type,
        x-oss-meta-*, ACL, storage class, Cache-Control...). Returns OSS's UploadId."""
        status, reason, resp_headers, body = self._call("POST", key, creds, headers, query=[("uploads", None)])
        if status != 200:
            raise _error_from(status, reason, resp_headers, body)
        upload_id = _xml_field(body.decode("utf-8", "replace"), "UploadId")
        if not upload_id:
            raise OssError(status, "BadResponse", "InitiateMultipartUpload answer without an UploadId")
        return upload_id

    def list_parts(self, key, upload_id, creds, page_size=1000):
        """Every part uploaded so far, ascending by number: [PartInfo] (pages of ``page_size`` followed).
        NoSuchUpload (aborted, completed, unknown) raises ``OssError``."""
        import xml.etree.ElementTree as ET

        parts, marker = [], 0
        for _ in range(10001):  # at most 10,000 parts: a server that never stops paging is an error
            query = [("max-parts", str(page_size)), ("uploadId", upload_id)]
            if marker:
                query.append(("part-number-marker", str(marker)))
            status, reason, headers, body = self._call("GET", key, creds, query=query, limit=8 << 20)
            if status != 200:
                raise _error_from(status, reason, headers, body)
            try:
                root = ET.fromstring(body)
                page = [PartInfo(int(p.findtext("PartNumber")), int(p.findtext("Size")),
                                 (p.findtext("ETag") or "").strip().strip('"'))
                        for p in root.iter("Part")]
                truncated = (root.findtext("IsTruncated") or "").strip().lower() == "true"
                next_marker = int(root.findtext("NextPartNumberMarker") or 0)
            except (ET.ParseError, TypeError, ValueError):
                raise OssError(status, "BadResponse", "ListParts answer is not the expected XML") from None
            parts.extend(page)
            if not truncated:
                return parts
            if next_marker <= marker:
                raise OssError(status, "BadResponse", "ListParts paging does not advance")
            marker = next_marker
        raise OssError(200, "BadResponse", "ListParts paging does not end")

    def complete_multipart_upload(self, key, upload_id, parts, creds, headers=None, timeout=30.0):
        """CompleteMultipartUpload with ``parts`` = [(number, etag)] (ascending) and ``headers``
        (``x-oss-callback``, ``x-oss-callback-var``, ``x-oss-forbid-overwrite``). Returns
        ``MultipartAnswer``: 200 (the callback's JSON, or OSS's XML without a callback) or 203
        (``CallbackFailed``: stored, the callback failed). Any other answer raises ``OssError``.
        ``timeout``: OSS answers only once the callback has answered (up to 5 s) and the object is made."""
        xml = "".join(f"<Part><PartNumber>{int(n)}</PartNumber><ETag>&quot;{_xml_escape(e)}&quot;</ETag></Part>"
                      for n, e in parts)
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload>{xml}</CompleteMultipartUpload>'
        request_headers = {"Content-Type": "application/xml"}
        request_headers.update(headers or {})
        status, reason, resp_headers, answer = self._call("POST", key, creds, request_headers,
                                                          query=[("uploadId", upload_id)], body=body.encode(),
                                                          limit=2 << 20, timeout=timeout)
        if status in (200, 203):
            return MultipartAnswer(status, resp_headers, answer)
        raise _error_from(status, reason, resp_headers, answer)

    def abort_multipart_upload(self, key, upload_id, creds):
        """AbortMultipartUpload (204). An upload already gone (NoSuchUpload, 404) is not an error."""
        status, reason, headers, body = self._call("DELETE", key, creds, query=[("uploadId", upload_id)])
        if status == 404:
            err = _error_from(status, reason, headers, body)
            if err.code == "NoSuchUpload":
                return False
            raise err
        if not 200 <= status < 300:
            raise _error_from(status, reason, headers, body)
        return True

    def presign_v4_url(self, method, key, query, creds, expires, now=None, additional_headers=None):
        """A V4 presigned URL for ``key`` on this client's endpoint (see :func:`presign_v4_query`).

        For the browser, build the client on the *upload* host (``OSSDIRECT_UPLOAD_HOST``): the
        signature covers ``/<bucket>/<key>`` whatever the host, so a custom domain works the same."""
        if not key:
            raise ValueError("an object key is required")
        text = presign_v4_query(method, self.bucket, key, query, creds, self.region, expires, now,
                                additional_headers=additional_headers)
        scheme, netloc = self._pool_key
        return f"{scheme}://{netloc}{self._prefix}/{quote(key)}?{text}"

    # -- transport ----------------------------------------------------------------------------

    def close(self):
        """Close this thread's connection to the endpoint's host."""
        conns = getattr(_tls, "conns", None)
        conn = conns.pop(self._pool_key, None) if conns else None
        if conn is not None:
            conn.close()

    def _connection(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        conns = getattr(_tls, "conns", None)
        if conns is None:
            conns = _tls.conns = {}
        conn = conns.get(self._pool_key)
        if conn is None:
            http = _http_client()
            if self._https:
                conn = http.HTTPSConnection(self._host, self._port, timeout=timeout, context=_tls_context())
            else:
                conn = http.HTTPConnection(self._host, self._port, timeout=timeout)
            conns[self._pool_key] = conn
        else:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        return conn

    def _drop(self, conn):
        conn.close()
        conns = getattr(_tls, "conns", None)
        if conns and conns.get(self._pool_key) is conn:
            del conns[self._pool_key]

    def _call(self, method, key, creds, headers=None, limit=None, query=None, body=None, timeout=None):
        """Send one signed request; return (status, reason, lower-case headers, body bytes).

        ``limit``: read at most this many body bytes (the connection is dropped if more remain);
        ``query``: pairs of unencoded names and values; ``body``: bytes to send; ``timeout``: this
        call's socket timeout instead of the client's.
        """
        if not key:
            raise ValueError("an object key is required")
        signed = sign_v4_request(method, self.bucket, key, query, headers, creds, self.region)
        signed["User-Agent"] = USER_AGENT
        target = f"{self._prefix}/{quote(key)}{_url_query(query)}"
        timeout = self.timeout if timeout is None else timeout
        http = _http_client()
        for attempt in (0, 1):
            conn = self._connection(timeout)
            fresh = conn.sock is None
            try:
                conn.request(method, target, body=body, headers=signed)
                resp = conn.getresponse()
                status = resp.status
                resp_headers = {}
                for name, value in resp.getheaders():
                    name = name.lower()
                    resp_headers[name] = f"{resp_headers[name]}, {value}" if name in resp_headers else value
                if method == "HEAD":
                    body = resp.read()  # b"": marks the answer complete, keeping the connection
                elif limit is not None and status in (200, 206):
                    body = resp.read(limit)
                else:
                    body = resp.read(65536)
                if not resp.isclosed():  # more than we wanted: the connection cannot be reused
                    self._drop(conn)
                return status, resp.reason, resp_headers, body
            except TimeoutError:  # socket.timeout
                self._drop(conn)
                raise OssError(0, "ClientTimeout", f"no answer from {self._host} within {timeout} s") from None
            except (ConnectionError, http.BadStatusLine) as exc:
                # ConnectionResetError, BrokenPipeError, RemoteDisconnected...: on a reused keep-alive
                # connection this is the server having closed it while idle: open a new one, once.
                self._drop(conn)
                if fresh or attempt:
                    raise OssError(0, "ConnectionFailed", f"{type(exc).__name__} talking to {self._host}") from None
            except (OSError, http.HTTPException) as exc:
                self._drop(conn)
                raise OssError(0, "ConnectionFailed", f"{type(exc).__name__} talking to {self._host}") from None
        raise AssertionError("unreachable")
