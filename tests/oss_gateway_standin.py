"""A loopback gateway in front of the OSS emulator adding the two calls the emulator lacks today:
ListObjectsV2 (``GET /<bucket>?list-type=2``) and CopyObject (``PUT`` with ``x-oss-copy-source``).

Everything else is forwarded byte for byte to the emulator (which checks every signature). The two
added calls check the V4 signature with the emulator's own verifier, read and write the emulator's
data directory through its own ``Store``, and answer OSS's XML (encoding-type=url keys, continuation
tokens, ``IsTruncated``). Remove once the emulator implements them (asked of the lead).
"""

import base64
import glob
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

import requests


class OssGateway:
    def __init__(self, emulated_bucket, data_dir):
        from emulator import header_auth
        from emulator.storage import Store

        self.target = emulated_bucket.url
        self.bucket = emulated_bucket.bucket
        self.data_dir = os.path.join(str(data_dir), "buckets")  # the emulator's Store root
        self.store = Store(self.data_dir)
        self.accounts = {emulated_bucket.AK: (emulated_bucket.SK, emulated_bucket.TOKEN)}
        self.calls = []
        self.session = requests.Session()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                outer.handle(self, header_auth)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.bucket_url = f"{self.url}/{self.bucket}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- dispatch --
    def handle(self, h, header_auth):
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        bucket, _, key = path.lstrip("/").partition("/")
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in h.headers.items()}
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if bucket == self.bucket and not key and h.command == "GET" and query.get("list-type") == "2":
            self.calls.append(("ListObjectsV2", query))
            return self._checked(h, header_auth, "GET", key, headers, parts.query, lambda: self._list(query))
        if bucket == self.bucket and key and h.command == "PUT" and "x-oss-copy-source" in headers:
            self.calls.append(("CopyObject", key))
            return self._checked(h, header_auth, "PUT", key, headers, parts.query, lambda: self._copy(key, headers))
        self._forward(h, body)

    def _checked(self, h, header_auth, method, key, headers, raw_query, action):
        from emulator.errors import OSSError

        try:
            signer = header_auth.authenticate(method, self.bucket, key, headers, raw_query, self.accounts,
                                              "cn-hangzhou", time.time())
            if signer is None:
                raise OSSError(403, "AccessDenied", "anonymous")
            status, xml = action()
        except OSSError as exc:
            status, xml = exc.status, (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{exc.code}</Code>"
                                       f"<Message>{escape(str(exc.message))}</Message></Error>")
        data = xml.encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _forward(self, h, body):
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "content-length")}
        r = self.session.request(h.command, self.target + h.path, headers=headers, data=body or None,
                                 allow_redirects=False, stream=True)
        data = r.raw.read(decode_content=False) if h.command != "HEAD" else b""
        h.send_response(r.status_code)
        for name, value in r.raw.headers.items():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                h.send_header(name, value)
        h.send_header("Content-Length", r.headers.get("Content-Length", str(len(data))) if h.command == "HEAD"
                      else str(len(data)))
        h.end_headers()
        if data:
            h.wfile.write(data)

    # -- the added calls --
    def _metas(self):
        for path in glob.glob(os.path.join(self.data_dir, self.bucket, "objects", "*", "meta.json")):
            try:
                with open(path, encoding="utf-8") as f:
                    yield json.load(f)
            except (FileNotFoundError, json.JSONDecodeError):
                continue

    def _list(self, query):
        prefix = query.get("prefix", "")
        max_keys = int(query.get("max-keys", "100"))
        after = query.get("continuation-token")
        after = base64.urlsafe_b64decode(after.encode()).decode() if after else query.get("start-after", "")
        keys = sorted((m["key"], m) for m in self._metas() if m["key"].startswith(prefix) and m["key"] > after)
        page, more = keys[:max_keys], len(keys) > max_keys
        url = query.get("encoding-type") == "url"
        enc = (lambda k: quote(k, safe="/")) if url else escape
        items = "".join(f"<Contents><Key>{enc(k)}</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified>"
                        f"<ETag>\"{m['etag']}\"</ETag><Type>Normal</Type><Size>{m['size']}</Size>"
                        f"<StorageClass>Standard</StorageClass></Contents>" for k, m in page)
        token = (f"<NextContinuationToken>{base64.urlsafe_b64encode(page[-1][0].encode()).decode()}"
                 f"</NextContinuationToken>") if more else ""
        return 200, (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>{self.bucket}</Name>"
                     f"<Prefix>{enc(prefix)}</Prefix><MaxKeys>{max_keys}</MaxKeys>"
                     f"{'<EncodingType>url</EncodingType>' if url else ''}<IsTruncated>{'true' if more else 'false'}"
                     f"</IsTruncated><KeyCount>{len(page)}</KeyCount>{items}{token}</ListBucketResult>")

    def _copy(self, key, headers):
        from emulator.errors import OSSError

        src_bucket, _, src_key = unquote(headers["x-oss-copy-source"]).lstrip("/").partition("/")
        found = self.store.get(src_bucket, src_key)
        if found is None:
            raise OSSError(404, "NoSuchKey", "The specified key does not exist.")
        meta, data_path = found
        with open(data_path, "rb") as f:
            data = f.read()
        new_meta = {"content_type": meta["content_type"], "headers": dict(meta.get("headers", {}))}
        if headers.get("x-oss-object-acl"):
            new_meta["headers"]["x-oss-object-acl"] = headers["x-oss-object-acl"]
        stored = self.store.put_bytes(self.bucket, key, data, new_meta)
        return 200, (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><CopyObjectResult><ETag>\"{stored['etag']}\"</ETag>"
                     f"<LastModified>2025-01-01T00:00:00.000Z</LastModified></CopyObjectResult>")
