"""The OSS transport: one connection pool, one request function, one error parser.

:class:`Transport` is one endpoint (scheme, host, port and the path prefix of a path-style URL).
:meth:`Transport.request` signs a request (:func:`ossdirect.oss.signer.sign_v4_request`), sends it
over HTTP/1.1 (:mod:`ossdirect.http1`: ``http.client`` would add ~10-25 ms of ``email.*`` imports to the
cold start of the callback and process functions, each of which calls OSS once) and answers a
:class:`Response`.

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

from ..http1 import Connection, connect, host_header, request_head
from .errors import CLIENT_TIMEOUT, CONNECTION_FAILED, OssError
from .signer import query_items, quote_path, sign_v4_request

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
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
        self.host_header = host_header(self.host, self.port, self.https)

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

    def _connection(self, timeout: float) -> tuple[Connection, bool]:
        """This thread's connection to the host (and whether it is a reused one), opened if there is none."""
        conns = getattr(_tls, "conns", None)
        if conns is None:
            conns = _tls.conns = {}
        conn: Optional[Connection] = conns.get(self.pool_key)
        if conn is not None:
            conn.sock.settimeout(timeout)
            return conn, True
        conn = conns[self.pool_key] = connect(self.host, self.port, self.https, timeout)
        return conn, False

    def _drop(self, conn: Optional[Connection]) -> None:
        if conn is None:
            return
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
        message = request_head(method, self.target(key, query), self.host_header, signed,
                               None if body is None else len(body))
        if body:
            message += body
        timeout = self.timeout if timeout is None else timeout

        def body_limit(status: int) -> int:  # an error answer is a small XML document: 64 KiB is plenty
            return limit if limit is not None and status in (200, 206) else 65536

        for attempt in (0, 1):
            conn, reused = None, False
            try:
                conn, reused = self._connection(timeout)
                conn.sock.sendall(message)
                status, resp_headers, data, keep = conn.response(head=method == "HEAD", limit=body_limit)
            except TimeoutError:  # socket.timeout
                self._drop(conn)
                raise OssError(0, CLIENT_TIMEOUT, f"no answer from {self.host} within {timeout} s") from None
            except ConnectionError as exc:
                # ConnectionResetError, BrokenPipeError, RemoteDisconnected...: on a reused keep-alive
                # connection this is the server having closed it while idle: open a new one, once.
                self._drop(conn)
                if not reused or attempt:
                    raise OssError(0, CONNECTION_FAILED, f"{type(exc).__name__} talking to {self.host}") from None
                continue
            except (OSError, ValueError) as exc:  # refused, TLS, a malformed answer
                self._drop(conn)
                raise OssError(0, CONNECTION_FAILED, f"{type(exc).__name__} talking to {self.host}") from None
            if not keep:  # the server closes it, or more body than we wanted remains: not reusable
                self._drop(conn)
            return Response(status, conn.reason, resp_headers, data)
        raise AssertionError("unreachable")
