"""The OSS client: every OSS operation ossdirect uses, on one bucket.

Objects: ``head_object``, ``get_range``, ``put_object``, ``copy_object``, ``delete_object``,
``put_object_acl``; the bucket: ``list_objects`` (ListObjectsV2, one page) and ``iter_objects``;
multipart: ``initiate_multipart_upload``, ``list_parts``, ``complete_multipart_upload``,
``abort_multipart_upload``; and ``presign_v4_url`` (UploadPart URLs for the browser).

The layers are those of ``alibabacloud-oss-python-sdk-v2``: :mod:`.signer` (pure signing),
:mod:`.transport` (the connection pool, the request function, the error parser), :mod:`.errors`
(:class:`OssError`) and this client, which turns operations into requests and answers into
values. Every failure other than "not found" for ``head_object`` and "no such upload" for
``abort_multipart_upload`` raises :class:`OssError`, whose text never holds a secret or token.
Importing this module costs no ``socket``, ``ssl`` or XML parser: they load on first use.
"""

from __future__ import annotations

from collections import namedtuple
from urllib.parse import quote

from .errors import BAD_RESPONSE, OssError
from .signer import normalize_region, presign_v4_query
from .transport import Transport, error_from, xml_field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Any, NamedTuple, Optional

    from .credentials import Credentials
    from .signer import Query, When
    from .transport import Response

    class ObjectInfo(NamedTuple):
        size: int
        etag: str
        content_type: Optional[str]
        last_modified: Optional[str]
        metadata: dict[str, str]
        headers: dict[str, str]

    class PartInfo(NamedTuple):
        number: int
        size: int
        etag: str

    class MultipartAnswer(NamedTuple):
        status: int
        headers: dict[str, str]
        body: bytes

    class ListedObject(NamedTuple):
        key: str
        size: int
        etag: str
        last_modified: Optional[str]

    class ListPage(NamedTuple):
        objects: list[ListedObject]
        next_token: Optional[str]
else:
    ObjectInfo = namedtuple("ObjectInfo", "size etag content_type last_modified metadata headers")
    PartInfo = namedtuple("PartInfo", "number size etag")
    MultipartAnswer = namedtuple("MultipartAnswer", "status headers body")
    ListedObject = namedtuple("ListedObject", "key size etag last_modified")
    ListPage = namedtuple("ListPage", "objects next_token")
    ObjectInfo.__doc__ = """``head_object``'s answer: ``size`` (int), ``etag`` (no quotes), ``content_type``,
``last_modified`` (the HTTP date text OSS sent), ``metadata`` (``x-oss-meta-*`` by lower-case name
without the prefix, values decoded as UTF-8) and every response header by lower-case name."""
    PartInfo.__doc__ = """One uploaded part (``list_parts``): ``number``, ``size`` (int), ``etag`` (no quotes)."""
    MultipartAnswer.__doc__ = """``complete_multipart_upload``'s answer as OSS sent it: ``status`` (200, or 203
when the upload callback failed: the object is stored but the callback's server did not answer),
lower-case ``headers`` and the ``body`` bytes (the callback's JSON with a callback, else OSS's XML)."""
    ListedObject.__doc__ = """One listed object (``list_objects``): ``key`` (decoded), ``size`` (int),
``etag`` (no quotes), ``last_modified`` (OSS's ISO 8601 text)."""
    ListPage.__doc__ = """One ListObjectsV2 page: ``objects`` ([ListedObject]) and ``next_token`` (None on the last)."""

__all__ = ["OssClient", "OssError", "ObjectInfo", "PartInfo", "MultipartAnswer", "ListedObject", "ListPage"]

EMPTY_MD5 = "1B2M2Y8AsgTpgAmY7PhCfg=="  # base64 MD5 of b"": the SDK sends it on copy and delete


def _xml_escape(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _utf8(value: str) -> str:
    """Header bytes are decoded as latin-1 (as http.client does); OSS sends metadata as raw UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class OssClient:
    """One bucket at ``endpoint``, the bucket's base URL.

    ``endpoint``: virtual-hosted ``https://<bucket>.oss-<region>-internal.aliyuncs.com`` or path-style
    ``http://127.0.0.1:9100/<bucket>`` (the local emulator): the object's URL path is the endpoint's
    path plus ``/<key>``. ``region`` scopes the signature; ``timeout`` (seconds) bounds the connect
    and each read.
    """

    def __init__(self, endpoint: str, bucket: str, region: str, timeout: float = 2.0) -> None:
        self._transport = Transport(endpoint, timeout)
        if not bucket:
            raise ValueError("OSS bucket is required")
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = normalize_region(region)

    @property
    def timeout(self) -> float:
        """Seconds for the connect and each read (a call may give its own)."""
        return self._transport.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._transport.timeout = value

    def __repr__(self) -> str:
        return f"OssClient({self.endpoint!r}, bucket={self.bucket!r}, region={self.region!r})"

    def object_path(self, key: str, query: Query = None) -> str:
        """The request target for ``key`` (path plus query) as this client sends it."""
        return self._transport.target(key, query)

    def close(self) -> None:
        """Close this thread's connection to the endpoint's host."""
        self._transport.close()

    def _call(self, method: str, key: str, creds: Credentials, headers: Optional[Mapping[str, Any]] = None,
              limit: Optional[int] = None, query: Query = None, body: Optional[bytes] = None,
              timeout: Optional[float] = None) -> Response:
        """One signed request on object ``key`` (see :meth:`Transport.request`)."""
        if not key:
            raise ValueError("an object key is required")
        return self._transport.request(method, self.bucket, self.region, key, creds, headers, query, body,
                                       limit, timeout)

    # -- objects ------------------------------------------------------------------------------
    def head_object(self, key: str, creds: Credentials) -> Optional[ObjectInfo]:
        """``ObjectInfo`` for ``key``, or None when OSS answers 404 (no such key)."""
        status, reason, headers, body = self._call("HEAD", key, creds)
        if status == 404:
            err = error_from(status, reason, headers, body)
            if err.code == "NoSuchBucket":  # a configuration error, not a missing object
                raise err
            return None
        if status != 200:
            raise error_from(status, reason, headers, body)
        try:
            size = int(headers.get("content-length", ""))
        except ValueError:
            raise OssError(status, BAD_RESPONSE, "HEAD answer without a Content-Length") from None
        metadata = {name[11:]: _utf8(value) for name, value in headers.items() if name.startswith("x-oss-meta-")}
        return ObjectInfo(size, headers.get("etag", "").strip('"'), headers.get("content-type"),
                          headers.get("last-modified"), metadata, headers)

    def get_range(self, key: str, creds: Credentials, start: int, length: int) -> bytes:
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
        raise error_from(status, reason, headers, body)

    def copy_object(self, src_key: str, dst_key: str, creds: Credentials,
                    headers: Optional[Mapping[str, str]] = None) -> str:
        """Server-side copy within the bucket; returns the new ETag (no quotes).

        ``headers``: extra request headers (``x-oss-forbid-overwrite``, ``x-oss-metadata-directive``...).
        """
        request_headers = {"x-oss-copy-source": f"/{self.bucket}/{quote(src_key)}", "Content-MD5": EMPTY_MD5}
        if headers:
            request_headers.update(headers)
        status, reason, resp_headers, body = self._call("PUT", dst_key, creds, request_headers)
        if status != 200:
            raise error_from(status, reason, resp_headers, body)
        text = body.decode("utf-8", "replace")
        if "<Error" in text:  # a copy can fail after OSS has sent 200
            raise error_from(500, reason, resp_headers, body)
        etag = xml_field(text, "ETag") if "<ETag>" in text else resp_headers.get("etag")
        return (etag or "").strip('"')

    def delete_object(self, key: str, creds: Credentials) -> None:
        """Delete ``key`` (OSS answers 204 whether or not it existed)."""
        status, reason, headers, body = self._call("DELETE", key, creds, {"Content-MD5": EMPTY_MD5})
        if not 200 <= status < 300:
            raise error_from(status, reason, headers, body)

    def put_object(self, key: str, data: bytes, creds: Credentials, content_type: str = "application/octet-stream",
                   headers: Optional[Mapping[str, str]] = None) -> str:
        """PutObject of ``data`` (small objects: hook outputs such as thumbnails); returns the ETag
        (no quotes). ``headers``: other request headers (``x-oss-meta-*``, ``x-oss-object-acl``...)."""
        request_headers = {"Content-Type": content_type}
        request_headers.update(headers or {})
        status, reason, resp_headers, body = self._call("PUT", key, creds, request_headers, body=bytes(data))
        if status != 200:
            raise error_from(status, reason, resp_headers, body)
        return resp_headers.get("etag", "").strip('"')

    def put_object_acl(self, key: str, acl: str, creds: Credentials) -> None:
        """PutObjectAcl: ``private``, ``public-read``, ``public-read-write`` or ``default``."""
        status, reason, headers, body = self._call("PUT", key, creds, {"x-oss-object-acl": acl},
                                                   query=[("acl", None)])
        if status != 200:
            raise error_from(status, reason, headers, body)

    # -- the bucket ---------------------------------------------------------------------------

    def list_objects(self, prefix: str, creds: Credentials, continuation_token: Optional[str] = None,
                     max_keys: int = 1000) -> ListPage:
        """One page of ListObjectsV2 under ``prefix``: ``ListPage(objects, next_token)``; ``next_token``
        is None on the last page. Keys and ETags come back decoded (``encoding-type=url``, so any key,
        control characters included, survives XML)."""
        from urllib.parse import unquote
        from xml.etree import ElementTree

        query = {"list-type": "2", "prefix": prefix, "max-keys": str(max_keys), "encoding-type": "url"}
        if continuation_token:
            query["continuation-token"] = continuation_token
        status, reason, headers, body = self._transport.request("GET", self.bucket, self.region, "", creds,
                                                                query=query, limit=16 << 20)
        if status != 200:
            raise error_from(status, reason, headers, body)
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise OssError(status, BAD_RESPONSE, "ListObjectsV2 answer is not XML") from None
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
            raise OssError(status, BAD_RESPONSE, "a truncated listing without NextContinuationToken")
        return ListPage(objects, token)

    def iter_objects(self, prefix: str, creds: Credentials, page_size: int = 1000) -> Iterator[ListedObject]:
        """Every object under ``prefix``, one page in memory at a time."""
        token = None
        while True:
            page = self.list_objects(prefix, creds, token, page_size)
            yield from page.objects
            token = page.next_token
            if not token:
                return

    # -- multipart upload ---------------------------------------------------------------------

    def initiate_multipart_upload(self, key: str, creds: Credentials,
                                  headers: Optional[Mapping[str, str]] = None) -> str:
        """InitiateMultipartUpload; ``headers`` are applied to the object at Complete (Content-Type,
        x-oss-meta-*, ACL, storage class, Cache-Control...). Returns OSS's UploadId."""
        status, reason, resp_headers, body = self._call("POST", key, creds, headers, query=[("uploads", None)])
        if status != 200:
            raise error_from(status, reason, resp_headers, body)
        upload_id = xml_field(body.decode("utf-8", "replace"), "UploadId")
        if not upload_id:
            raise OssError(status, BAD_RESPONSE, "InitiateMultipartUpload answer without an UploadId")
        return upload_id

    def list_parts(self, key: str, upload_id: str, creds: Credentials, page_size: int = 1000) -> list[PartInfo]:
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
                raise error_from(status, reason, headers, body)
            try:
                root = ET.fromstring(body)
                page = [PartInfo(int(p.findtext("PartNumber") or ""), int(p.findtext("Size") or ""),
                                 (p.findtext("ETag") or "").strip().strip('"'))
                        for p in root.iter("Part")]
                truncated = (root.findtext("IsTruncated") or "").strip().lower() == "true"
                next_marker = int(root.findtext("NextPartNumberMarker") or 0)
            except (ET.ParseError, TypeError, ValueError):
                raise OssError(status, BAD_RESPONSE, "ListParts answer is not the expected XML") from None
            parts.extend(page)
            if not truncated:
                return parts
            if next_marker <= marker:
                raise OssError(status, BAD_RESPONSE, "ListParts paging does not advance")
            marker = next_marker
        raise OssError(200, BAD_RESPONSE, "ListParts paging does not end")

    def complete_multipart_upload(self, key: str, upload_id: str, parts: Iterable[tuple[int, str]],
                                  creds: Credentials, headers: Optional[Mapping[str, str]] = None,
                                  timeout: float = 30.0) -> MultipartAnswer:
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
        raise error_from(status, reason, resp_headers, answer)

    def abort_multipart_upload(self, key: str, upload_id: str, creds: Credentials) -> bool:
        """AbortMultipartUpload (204). An upload already gone (NoSuchUpload, 404) is not an error."""
        status, reason, headers, body = self._call("DELETE", key, creds, query=[("uploadId", upload_id)])
        if status == 404:
            err = error_from(status, reason, headers, body)
            if err.code == "NoSuchUpload":
                return False
            raise err
        if not 200 <= status < 300:
            raise error_from(status, reason, headers, body)
        return True

    def presign_v4_url(self, method: str, key: str, query: Query, creds: Credentials, expires: int,
                       now: When = None, additional_headers: Optional[Mapping[str, Any]] = None,
                       content_md5: Optional[str] = None) -> str:
        """A V4 presigned URL for ``key`` on this client's endpoint (see :func:`presign_v4_query`).

        For the browser, build the client on the *upload* host (``OSSDIRECT_UPLOAD_HOST``): the
        signature covers ``/<bucket>/<key>`` whatever the host, so a custom domain works the same."""
        if not key:
            raise ValueError("an object key is required")
        text = presign_v4_query(method, self.bucket, key, query, creds, self.region, expires, now,
                                additional_headers=additional_headers, content_md5=content_md5)
        return f"{self._transport.url(key)}?{text}"

