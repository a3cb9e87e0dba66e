"""ossdirect.http1, the functions' own HTTP/1.1 (OSS, Tablestore, SLS, callback keys): requests byte for byte
what http.client sends, answers framed as http.client frames them, on real loopback sockets."""

import http.client
import socket
import threading

import pytest

from ossdirect import http1


class _Capture:
    """A loopback server that reads one request (head + Content-Length body) and answers 200."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self):
        self.sock.close()


CASES = [  # method, target, headers, body
    ("GET", "/bucket/a%20b.txt?uploadId=1&partNumber=2", {"x-oss-date": "20261204T000000Z", "Authorization": "OSS4 x"}, None),
    ("HEAD", "/bucket/key", {"User-Agent": "ossdirect/0.1"}, None),
    ("POST", "/bucket/key?uploads", {"Content-Type": "application/xml"}, b"<x/>"),
    ("POST", "/bucket/key?uploads", {}, None),  # a bodiless POST still says Content-Length: 0
    ("PUT", "/bucket/key", {"Content-MD5": "1B2M2Y8AsgTpgAEY7ZPd8Q=="}, b""),
    ("DELETE", "/bucket/key?uploadId=9", {}, None),
]


@pytest.mark.parametrize("method,target,headers,body", CASES)
def test_requests_are_the_bytes_http_client_sends(method, target, headers, body):
    server = _Capture()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request(method, target, body=body, headers=headers)
        conn.getresponse().read()
        conn.close()
        ours = http1.connect("127.0.0.1", server.port, False, 5)
        ours.sock.sendall(http1.request_head(method, target, http1.host_header("127.0.0.1", server.port, False),
                                             headers, None if body is None else len(body)) + (body or b""))
        assert ours.response()[0] == 200
        ours.close()
    finally:
        server.close()
    theirs_bytes, ours_bytes = server.requests
    assert ours_bytes == theirs_bytes


def test_host_header_is_http_clients():
    for host, port, https in (("oss-cn-hangzhou.aliyuncs.com", None, True), ("a.example", 443, True),
                              ("a.example", 80, False), ("a.example", 8080, True), ("::1", 9000, False)):
        conn = (http.client.HTTPSConnection if https else http.client.HTTPConnection)(host, port)
        sent = []
        conn.send = sent.append  # what putrequest would write, without a network
        conn.putrequest("GET", "/")
        conn.endheaders()
        line = next(x for x in b"".join(sent).split(b"\r\n") if x.startswith(b"Host: "))
        assert line.decode() == "Host: " + http1.host_header(host, port, https)


def answers(raw):
    """A Connection reading ``raw`` as the server's bytes (then EOF)."""
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.close()
    return http1.Connection(ours)


def test_http_answers_are_framed_like_http_client():
    conn = answers(b"HTTP/1.1 200 OK\r\nX-OTS-A: 1\r\nx-ots-a: 2\r\nContent-Length: 3\r\n\r\nabc"
                   b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n"
                   b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert conn.response() == (200, {"x-ots-a": "1, 2", "content-length": "3"}, b"abc", True)
    status, headers, body, keep = conn.response()  # the next answer on the same connection
    assert (status, body, keep) == (403, b"wikipedia", True)
    assert conn.response()[2:] == (b"", False)
    with pytest.raises(http1.RemoteDisconnected):  # the server closed: nothing more
        conn.response()
    conn.close()
    conn = answers(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    assert conn.response() == (200, {}, b"until the end", False)
    for raw, error in ((b"SSH-2.0-OpenSSH\r\n\r\n", ValueError), (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
                                                                   http1.RemoteDisconnected),
                       (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", ValueError), (b"HTTP/1.1 200 OK\r\nA: b\r\n",
                                                                            http1.RemoteDisconnected)):
        conn = answers(raw)
        with pytest.raises(error):
            conn.response()
        conn.close()


def test_a_head_answer_has_no_body_whatever_its_length_and_the_next_answer_follows():
    conn = answers(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"E\"\r\n\r\n"
                   b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnot")
    assert conn.response(head=True) == (200, {"content-length": "5", "etag": '"E"'}, b"", True)
    assert conn.reason == "OK"
    assert conn.response() == (404, {"content-length": "3"}, b"not", True) and conn.reason == "Not Found"
    conn.close()


def test_interim_answers_are_skipped():
    conn = answers(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                   b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert conn.response() == (200, {"content-length": "2"}, b"ok", True)
    conn.close()


def test_a_limit_stops_the_body_and_the_connection_is_then_not_reusable():
    conn = answers(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
    assert conn.response(limit=4) == (200, {"content-length": "10"}, b"0123", False)
    conn.close()
    conn = answers(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    assert conn.response(limit=4)[2:] == (b"abcd", False)
    conn.close()
    conn = answers(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    assert conn.response(limit=6)[2:] == (b"abcdef", True)  # exactly what was wanted: still reusable
    conn.close()
    conn = answers(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nbad")  # a limit by status
    assert conn.response(limit=lambda status: 100 if status == 200 else 2)[2:] == (b"ba", False)
    conn.close()
    conn = answers(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    assert conn.response(limit=5)[2:] == (b"until", False)
    conn.close()


@pytest.mark.parametrize("raw", [b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
                                 b"HTTP/1.1 2xx OK\r\n\r\n"])
def test_malformed_answers_are_value_errors(raw):
    conn = answers(raw)
    with pytest.raises(ValueError):
        conn.response()
    conn.close()
