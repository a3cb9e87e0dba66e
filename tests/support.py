"""Test helpers: FC3 events, an OSS-like callback signer, a loopback static server, a byte-flipping proxy."""

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"


def fc_event(method="GET", path="/", query=None, headers=None, body=b"", base64_body=None):
    """An FC3 HTTP trigger event, as bytes, the way the runtime delivers it."""
    if base64_body is None:
        base64_body = not isinstance(body, str)
    if isinstance(body, str):
        text = body
    else:
        text = base64.b64encode(body).decode() if base64_body else body.decode()
    event = {
        "version": "v1",
        "rawPath": path,
        "body": text,
        "isBase64Encoded": base64_body,
        "headers": headers or {},
        "queryParameters": query or {},
        "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
                           "requestId": "1-test"},
    }
    return json.dumps(event).encode()


class RsaSigner:
    """Signs callbacks the way OSS does, with a test key served on loopback."""

    def __init__(self, bits=1024):
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=bits)

    def public_pem(self):
        from cryptography.hazmat.primitives import serialization

        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, path, query, body):
        from urllib.parse import unquote

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        message = unquote(path).encode() + (("?" + query) if query else "").encode() + b"\n" + body
        return base64.b64encode(self.key.sign(message, padding.PKCS1v15(), hashes.MD5())).decode()


class StaticServer:
    """A real HTTP server on 127.0.0.1 serving fixed bytes per path, counting hits."""

    def __init__(self, routes):
        self.routes = routes
        self.hits = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                data = outer.routes.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


class EmulatedBucket:
    """A real OSS emulator on loopback with one bucket, and oss2 (the official SDK) to put objects."""

    AK, SK, TOKEN = "STS.CallbackTestRole", "callback-test-secret", "callback-test-token"

    def __init__(self, data_dir, bucket, account=None):
        import types

        import oss2

        from emulator import EmulatorConfig, serve

        self.bucket = bucket
        if account:
            self.AK, self.SK, self.TOKEN = account
        self.server = serve(EmulatorConfig(data_dir=str(data_dir), buckets=[bucket], region="cn-hangzhou",
                                           accounts={self.AK: (self.SK, self.TOKEN)}))
        self.url = self.server.url
        self.bucket_url = f"{self.url}/{bucket}"
        self.sdk = oss2.Bucket(oss2.StsAuth(self.AK, self.SK, self.TOKEN), self.url, bucket)
        # what FC's python3.10 runtime hands the function: its role's STS credentials
        self.context = types.SimpleNamespace(credentials=types.SimpleNamespace(
            access_key_id=self.AK, access_key_secret=self.SK, security_token=self.TOKEN))

    def put(self, key, data=b"hello", upload_id=None, content_type="image/png", filename=None):
        headers = {"Content-Type": content_type}
        if upload_id:
            headers["x-oss-meta-upload-id"] = upload_id
        if filename:
            from urllib.parse import quote

            headers["x-oss-meta-filename"] = quote(filename, safe="")
        return self.sdk.put_object(key, data, headers=headers)

    def close(self):
        self.server.shutdown()


class FlippingProxy:
    """Forwards every request to ``target``, flipping one byte of the file on the way (a bad link), each
    ``delay`` seconds late (a slow link; ``times=0`` then changes nothing)."""

    def __init__(self, target, find=b"quick", replace=b"quack", times=None, delay=0.0):
        proxy = self
        self.target, self.times = target, times

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.forward("GET")

            def do_HEAD(self):
                self.forward("HEAD")

            def do_POST(self):
                self.forward("POST")

            def do_PUT(self):
                self.forward("PUT")

            def do_OPTIONS(self):  # a browser's CORS preflight: OSS answers it
                self.forward("OPTIONS")

            def read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                out = b""
                while True:  # a streamed upload (the Python client): chunked transfer coding
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if not size:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            def forward(self, method):
                time.sleep(delay)
                body = self.read_body()
                with proxy.lock:  # parts arrive on parallel threads: `flipped += 0` elsewhere must not lose a flip
                    if (proxy.times is None or proxy.flipped < proxy.times) and find in body:
                        proxy.flipped += 1
                        body = body.replace(find, replace, 1)  # same length: nothing else in the request changes
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "transfer-encoding")}
                r = requests.request(method, proxy.target + self.path, data=body, headers=headers, timeout=30)
                proxy.answers.append((r.status_code, r.text[:300]))
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", r.headers.get("Content-Length", "0") if method == "HEAD"
                                 else str(len(r.content)))  # a HEAD answer tells the object's length, sends nothing
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(r.content)

            def log_message(self, *args):
                pass

        self.flipped, self.answers, self.lock = 0, [], threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
