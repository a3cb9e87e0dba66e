"""OSS calls the process function and ``python -m ossdirect reconcile`` need beyond :mod:`ossdirect.oss`:
ListObjectsV2 (paged), PutObjectAcl and a small PutObject (for hooks writing beside an upload).

Signed with :func:`ossdirect.oss.sign_v4_request`, exactly as :class:`~ossdirect.oss.OssClient`
signs, against the same client's endpoint; each call opens its own connection (these calls are
rare: one per 1,000 listed keys, one per quarantined object, one per hook output), so nothing here
depends on the client's connection pool. Failures raise :class:`ossdirect.oss.OssError`.
(Kept apart from oss.py, which another engineer owns; the lead may fold these in as methods.)
"""

from collections import namedtuple
from urllib.parse import quote

from .client import OssError, sign_v4_request

USER_AGENT = "ossdirect/0.1"

ListedObject = namedtuple("ListedObject", "key size etag last_modified")
ListPage = namedtuple("ListPage", "objects next_token")


def _request(client, method, key, query, headers, creds, body=b"", limit=4 << 20):
    import http.client

    signed = sign_v4_request(method, client.bucket, key or "", query, headers, creds, client.region)
    signed["User-Agent"] = USER_AGENT
    signed["Content-Length"] = str(len(body))
    qs = ""
    if query:
        qs = "?" + "&".join(quote(str(k), safe="") if v is None else f"{quote(str(k), safe='')}={quote(str(v), safe='')}"
                            for k, v in query.items())
    target = f"{client._prefix}/{quote(key or '')}{qs}"
    cls = http.client.HTTPSConnection if client._https else http.client.HTTPConnection
    conn = cls(client._host, client._port, timeout=client.timeout)
    try:
        conn.request(method, target, body=body or None, headers=signed)
        resp = conn.getresponse()
        data = resp.read(limit)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    except TimeoutError:
        raise OssError(0, "ClientTimeout", f"no answer from {client._host} within {client.timeout} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise OssError(0, "ConnectionFailed", f"{type(exc).__name__} talking to {client._host}") from None
    finally:
        conn.close()


def _fail(status, headers, body):
    from xml.etree import ElementTree

    code, message, request_id = None, "", headers.get("x-oss-request-id")
    try:
        root = ElementTree.fromstring(body)
        code, message = root.findtext("Code"), root.findtext("Message") or ""
        request_id = root.findtext("RequestId") or request_id
    except ElementTree.ParseError:
        pass
    return OssError(status, code or {403: "AccessDenied", 404: "NotFound"}.get(status, f"HTTP{status}"),
                    message[:500], request_id)


def list_objects(client, prefix, creds, continuation_token=None, max_keys=1000):
    """One page of ListObjectsV2 under ``prefix``: ``ListPage(objects, next_token)``; ``next_token``
    is None on the last page. Keys and ETags come back decoded (``encoding-type=url``, so any key,
    control characters included, survives XML)."""
    from urllib.parse import unquote
    from xml.etree import ElementTree

    query = {"list-type": "2", "prefix": prefix, "max-keys": str(max_keys), "encoding-type": "url"}
    if continuation_token:
        query["continuation-token"] = continuation_token
    status, headers, body = _request(client, "GET", "", query, None, creds, limit=16 << 20)
    if status != 200:
        raise _fail(status, headers, body)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise OssError(status, "BadResponse", "ListObjectsV2 answer is not XML") from None
    ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    url_encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
    objects = []
    for item in root.iter(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key") or ""
        objects.append(ListedObject(unquote(key) if url_encoded else key, int(item.findtext(f"{ns}Size") or 0),
                                    (item.findtext(f"{ns}ETag") or "").strip('"'),
                                    item.findtext(f"{ns}LastModified")))
    truncated = (root.findtext(f"{ns}IsTruncated") or "").lower() == "true"
    token = root.findtext(f"{ns}NextContinuationToken") if truncated else None
    if truncated and not token:
        raise OssError(status, "BadResponse", "a truncated listing without NextContinuationToken")
    return ListPage(objects, token)


def iter_objects(client, prefix, creds, page_size=1000):
    """Every object under ``prefix``, one page in memory at a time."""
    token = None
    while True:
        page = list_objects(client, prefix, creds, token, page_size)
        yield from page.objects
        token = page.next_token
        if not token:
            return


def put_object_acl(client, key, acl, creds):
    """PutObjectAcl: ``private``, ``public-read``, ``public-read-write`` or ``default``."""
    status, headers, body = _request(client, "PUT", key, {"acl": None}, {"x-oss-object-acl": acl}, creds)
    if status != 200:
        raise _fail(status, headers, body)


def put_object(client, key, data, creds, content_type="application/octet-stream", headers=None):
    """PutObject of ``data`` (small objects: hook outputs such as thumbnails); returns the ETag."""
    request_headers = {"Content-Type": content_type}
    request_headers.update(headers or {})
    status, resp_headers, body = _request(client, "PUT", key, None, request_headers, creds, body=bytes(data))
    if status != 200:
        raise _fail(status, resp_headers, body)
    return resp_headers.get("etag", "").strip('"')
