"""The OSS transport: one connection pool, one request function, one error parser.

:class:`Transport` is one endpoint (scheme, host, port and the path prefix of a path-style URL).
:meth:`Transport.request` signs a request (:func:`ossdirect.oss.signer.sign_v4_request`), sends it
over HTTP/1.1 through ``http.client`` and answers a :class:`Response`. ``http.client`` (and ``ssl``)
are imported on first use: they cost ~30 ms to import, which the functions that never call OSS
should not pay.

The pool: one persistent connection per (thread, scheme, host), so a call is one round trip. A
reused keep-alive connection that the server closed meanwhile is re-opened once; nothing else is
retried (OSS gives the callback 5 s in all). A failure to get an answer raises
:class:`~ossdirect.oss.errors.OssError` (``ClientTimeout``, ``ConnectionFailed``); an error answer
becomes one through :func:`error_from`, whose text never holds a secret or token.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from urllib.parse import quote

from .errors import CLIENT_TIMEOUT, CONNECTION_FAILED, OssError
from .signer import query_items, quote_path, sign_v4_request

TYPE_CHECKING = False
if TYPE_CHECKING:
    import http.client
    import ssl
    from collections.abc import Mapping
    from types import ModuleType
    from typing import Any, NamedTuple, Optional

    from .credentials import Credentials
    from .signer import Query

    class Response(NamedTuple):
        status: int
        reason: str
        headers: dict[str, str]
        body: bytes
else:
    Response = namedtuple("Response", "status reason headers body")
    Response.__doc__ = """One answer: ``status``, ``reason``, ``headers`` (lower-case names; repeated headers
joined with ", ") and ``body`` (bytes, at most the request's ``limit``)."""

__all__ = ["Transport", "Response", "error_from", "xml_field", "url_query", "USER_AGENT"]

USER_AGENT = "ossdirect/0.1"

_tls = threading.local()  # the pool: _tls.conns = {(scheme, netloc): connection}, one per thread
_ssl_context: Optional[ssl.SSLContext] = None
_http: Optional[ModuleType] = None  # http.client, imported on first use


def _http_client() -> Any:
    global _http
    if _http is None:
        import http.client

        _http = http.client
    return _http


def _tls_context() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:
        import ssl

        _ssl_context = ssl.create_default_context()
    return _ssl_context


def url_query(query: Query) -> str:
    """The query as the SDK puts it on the wire (``urlencode(..., quote_via=quote)``); '' if none."""
    items = query_items(query)
    if not items:
        return ""
    return "?" + "&".join(
        quote(str(k), safe="") if v is None else f"{quote(str(k), safe='')}={quote(str(v), safe='')}"
        for k, v in items)


# -- the error parser -----------------------------------------------------------------------------

_XML_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def xml_field(text: str, name: str) -> Optional[str]:
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


def error_from(status: int, reason: str, headers: Mapping[str, str], body: bytes) -> OssError:
    """OssError from an error answer: XML body, else the base64 XML in ``x-oss-err`` (HEAD has no body).

    Without an ``<Error>`` document the code is ``AccessDenied`` (403), ``NotFound`` (404) or
    ``HTTP<status>`` and the message is the HTTP reason."""
    text = ""
    if body:
        text = body.decode("utf-8", "replace")
    elif headers.get("x-oss-err"):
        import base64

        try:
            text = base64.b64decode(headers["x-oss-err"]).decode("utf-8", "replace")
        except ValueError:
            text = ""
    code = xml_field(text, "Code") if "<Error" in text else None
    message = xml_field(text, "Message") if code else None
    request_id = (xml_field(text, "RequestId") if code else None) or headers.get("x-oss-request-id")
    ec = (xml_field(text, "EC") if code else None) or headers.get("x-oss-ec")
    if not code:
        code = {403: "AccessDenied", 404: "NotFound"}.get(status, f"HTTP{status}")
        message = reason or ""
    return OssError(status, code, (message or "")[:500], request_id, ec)


# -- the transport --------------------------------------------------------------------------------


class Transport:
    """HTTP to one OSS endpoint (``http(s)://host[:port][/path-prefix]``), pooled per thread.

    ``timeout`` (seconds) bounds the connect and each read unless a request gives its own."""

    def __init__(self, endpoint: str, timeout: float = 2.0) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OSS endpoint must be an http(s) URL, not {endpoint!r}")
        if parts.query or parts.fragment:
            raise ValueError("OSS endpoint must not have a query or fragment")
        self.timeout = timeout
        self.https = parts.scheme == "https"
        self.host: str = parts.hostname
        self.port: Optional[int] = parts.port
        self.pool_key = (parts.scheme, parts.netloc.lower())
        self.prefix = parts.path.rstrip("/")

    def target(self, key: str, query: Query = None) -> str:
        """The request target for ``key`` ("" for the bucket): path plus query, as sent."""
        return f"{self.prefix}/{quote(key)}{url_query(query)}"

    def url(self, key: str) -> str:
        """The absolute URL of ``key`` on this endpoint (no query)."""
        scheme, netloc = self.pool_key
        return f"{scheme}://{netloc}{self.prefix}/{quote_path(key)}"  # quote(key), remembered

    def close(self) -> None:
        """Close this thread's connection to the endpoint's host."""
        conns = getattr(_tls, "conns", None)
        conn = conns.pop(self.pool_key, None) if conns else None
        if conn is not None:
            conn.close()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conns = getattr(_tls, "conns", None)
        if conns is None:
            conns = _tls.conns = {}
        conn: Optional[http.client.HTTPConnection] = conns.get(self.pool_key)
        if conn is None:
            client = _http_client()
            if self.https:
                conn = client.HTTPSConnection(self.host, self.port, timeout=timeout, context=_tls_context())
            else:
                conn = client.HTTPConnection(self.host, self.port, timeout=timeout)
            conns[self.pool_key] = conn
        else:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        conns = getattr(_tls, "conns", None)
        if conns and conns.get(self.pool_key) is conn:
            del conns[self.pool_key]

    def request(self, method: str, bucket: str, region: str, key: str, creds: Credentials,
                headers: Optional[Mapping[str, Any]] = None, query: Query = None, body: Optional[bytes] = None,
                limit: Optional[int] = None, timeout: Optional[float] = None) -> Response:
        """Send one signed request for ``/<bucket>/<key>`` (``key`` "" for the bucket) and answer it.

        ``query``: pairs or a mapping of unencoded names and values; ``body``: bytes to send;
        ``limit``: read at most this many body bytes of a 200/206 answer (64 KiB of any other; the
        connection is dropped if more remain); ``timeout``: this call's instead of the transport's.
        """
        signed = sign_v4_request(method, bucket, key, query, headers, creds, region)
        signed["User-Agent"] = USER_AGENT
        target = self.target(key, query)
        timeout = self.timeout if timeout is None else timeout
        http = _http_client()
        for attempt in (0, 1):
            conn = self._connection(timeout)
            fresh = conn.sock is None
            try:
                conn.request(method, target, body=body, headers=signed)
                resp = conn.getresponse()
                status = resp.status
                resp_headers: dict[str, str] = {}
                for name, value in resp.getheaders():
                    name = name.lower()
                    resp_headers[name] = f"{resp_headers[name]}, {value}" if name in resp_headers else value
                if method == "HEAD":
                    data = resp.read()  # b"": marks the answer complete, keeping the connection
                elif limit is not None and status in (200, 206):
                    data = resp.read(limit)
                else:
                    data = resp.read(65536)
                if not resp.isclosed():  # more than we wanted: the connection cannot be reused
                    self._drop(conn)
                return Response(status, resp.reason, resp_headers, data)
            except TimeoutError:  # socket.timeout
                self._drop(conn)
                raise OssError(0, CLIENT_TIMEOUT, f"no answer from {self.host} within {timeout} s") from None
            except (ConnectionError, http.BadStatusLine) as exc:
                # ConnectionResetError, BrokenPipeError, RemoteDisconnected...: on a reused keep-alive
                # connection this is the server having closed it while idle: open a new one, once.
                self._drop(conn)
                if fresh or attempt:
                    raise OssError(0, CONNECTION_FAILED, f"{type(exc).__name__} talking to {self.host}") from None
            except (OSError, http.HTTPException) as exc:
                self._drop(conn)
                raise OssError(0, CONNECTION_FAILED, f"{type(exc).__name__} talking to {self.host}") from None
        raise AssertionError("unreachable")
