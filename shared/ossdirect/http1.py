"""Just enough HTTP/1.1 for the functions' own calls (OSS, Tablestore): one keep-alive connection and the
framing of its answers. ``http.client`` would cost a cold start ~10-25 ms of imports (``email.*``, which
it loads to parse headers) on a path that otherwise never needs them; ``socket`` (and ``ssl``, for https)
load on the first :func:`connect`.

:class:`Connection` reads answers the way ``http.client`` does: lower-case header names (repeated ones
joined with ", "), ``Content-Length``, chunked or close-delimited bodies, no body for HEAD, 204, 304 or 1xx,
interim 1xx answers skipped, at most 100 headers of at most 64 KiB each. Requests are bytes the caller
builds (:func:`request_head`) and sends with ``sock.sendall``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Callable, Mapping
    from typing import Any, Optional

__all__ = ["Connection", "RemoteDisconnected", "connect", "exchange", "host_header", "request_head"]

_tls_context: Optional[ssl.SSLContext] = None  # one, with the system's CAs and hostname checks


class RemoteDisconnected(ConnectionResetError):
    """The server closed the connection before a whole answer."""


def connect(host: str, port: Optional[int], https: bool, timeout: float,
            tls: Optional[ssl.SSLContext] = None) -> Connection:
    """A new connection to ``host`` (``port`` None: 443 or 80), TLS-wrapped for https (with ``tls``, else
    one default context: the system's CAs, the host name checked)."""
    import socket

    sock = socket.create_connection((host, port or (443 if https else 80)), timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests: no Nagle wait
        if https:
            if tls is None:
                tls = _default_tls()
            sock = tls.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    return Connection(sock)


def _default_tls() -> ssl.SSLContext:
    global _tls_context
    if _tls_context is None:
        import ssl

        _tls_context = ssl.create_default_context()
    return _tls_context


def host_header(host: str, port: Optional[int], https: bool) -> str:
    """``Host`` as ``http.client`` sends it: the port only when it is not the scheme's."""
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return name if port is None or port == (443 if https else 80) else f"{name}:{port}"


def request_head(method: str, target: str, host: str, headers: Mapping[str, Any], body_length: Optional[int]) -> bytes:
    """The request line and headers, as ``http.client`` sends them: ``Host``, ``Accept-Encoding: identity``,
    and ``Content-Length`` for a body (0 for a bodiless POST/PUT)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    if body_length is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {body_length or 0}")
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")  # values are ASCII: ids, signatures, dates


def exchange(host: str, port: Optional[int], https: bool, timeout: float, message: bytes,
             limit: Optional[int] = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a connection of its own (``message``: :func:`request_head` plus the body): the answer's
    status, headers and body (at most ``limit`` bytes); the connection is closed either way."""
    conn = connect(host, port, https, timeout)
    try:
        conn.sock.sendall(message)
        status, headers, body, _ = conn.response(limit=limit)
        return status, headers, body
    finally:
        conn.close()


class Connection:
    """One HTTP/1.1 connection: ``sock`` to send on, :meth:`response` to read each answer."""

    max_line, max_headers = 65536, 100

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.reader = sock, sock.makefile("rb")
        self.reason = ""  # the last answer's reason phrase

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def _line(self) -> bytes:
        line = self.reader.readline(self.max_line + 1)
        if len(line) > self.max_line:
            raise ValueError("HTTP line too long")
        return line

    def _exactly(self, n: int) -> bytes:
        data = self.reader.read(n)
        if len(data) != n:
            raise RemoteDisconnected("short body")
        return data

    def _head(self) -> tuple[bytes, int, dict[str, str]]:
        line = self._line()
        if not line:
            raise RemoteDisconnected("no answer")
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise ValueError("bad HTTP status line")
        self.reason = rest[4:].strip().decode("latin-1")
        headers: dict[str, str] = {}
        for _ in range(self.max_headers):
            raw = self._line()
            if raw in (b"\r\n", b"\n"):
                break
            if not raw:
                raise RemoteDisconnected("headers cut short")
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise ValueError("bad HTTP header")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        else:
            raise ValueError("too many HTTP headers")
        return version, int(code), headers

    def response(self, head: bool = False, limit: Optional[int | Callable[[int], Optional[int]]] = None,
                 ) -> tuple[int, dict[str, str], bytes, bool]:
        """(status, headers, body, keep-alive) of the next answer. ``head``: the answer to a HEAD (no body
        whatever its headers say); ``limit``: read at most this many body bytes (or a function of the status
        giving that), the connection then not reusable if more remain."""
        version, status, headers = self._head()
        while 100 <= status < 200 and status != 101:  # interim (100 Continue, 103 Early Hints): the next one
            version, status, headers = self._head()
        if callable(limit):
            limit = limit(status)
        keep = version == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if head or status in (204, 304) or 100 <= status < 200:
            return status, headers, b"", keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks, got = [], 0
            while True:
                size = int(self._line().split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self._line() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    break
                if limit is not None and got + size > limit:  # more than wanted: keep what fits, stop
                    chunks.append(self._exactly(limit - got))
                    return status, headers, b"".join(chunks), False
                chunks.append(self._exactly(size))
                got += size
                self._line()  # the CRLF after each chunk
            return status, headers, b"".join(chunks), keep
        if "content-length" in headers:
            length = int(headers["content-length"])
            if length < 0:
                raise ValueError("bad Content-Length")
            if limit is not None and length > limit:
                return status, headers, self._exactly(limit), False
            return status, headers, self._exactly(length), keep
        return status, headers, self.reader.read(-1 if limit is None else limit), False  # until the server closes
