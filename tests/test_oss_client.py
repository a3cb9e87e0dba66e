"""ossdirect.oss.client: V4 header signatures equal the official SDK's, and the client over real loopback HTTP.

Golden vectors: tests/vectors/oss_header_signatures.json, made by tools/golden/oss_header_vectors.py
with alibabacloud-oss-v2 (the SDK's own SignerV4 driven by its own operations) and cross-checked with
oss2. The loopback server below checks every request's signature with oss2's V4 signer (oss2 is a
dev dependency), so the bytes on the wire (path encoding, headers) are proven too, not just the
signer in isolation. Nothing here leaves 127.0.0.1.
"""

import base64
import datetime
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest
from support import ROOT, VECTORS

from ossdirect.oss import transport
from ossdirect.oss.credentials import Credentials
from ossdirect.oss.client import ObjectInfo, OssClient, OssError
from ossdirect.oss.signer import canonical_query, sign_v4_request

GOLDEN = json.loads((VECTORS / "oss_header_signatures.json").read_text(encoding="utf-8"))
CASES = GOLDEN["cases"]


def _creds(case):
    return Credentials(case["access_key_id"], case["access_key_secret"], case["security_token"], "test")


def _when(case):
    return datetime.datetime.strptime(case["signing_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def _sign(case, **change):
    args = dict(method=case["method"], bucket=case["bucket"], key=case["key"], query=case["query"],
                headers=case["request_headers"], creds=_creds(case), region=case["region"], now=_when(case),
                additional_headers=case["additional_headers"])
    args.update(change)
    return sign_v4_request(**args)


# -- golden vectors ----------------------------------------------------------------------------


def test_golden_file_covers_the_brief():
    assert GOLDEN["generator"].startswith("alibabacloud-oss-v2@")
    assert GOLDEN["cross_checked_with"].startswith("oss2@")
    assert len(CASES) >= 10
    assert {c["method"] for c in CASES} >= {"HEAD", "GET", "PUT", "DELETE", "POST"}
    assert any("x-oss-copy-source" in c["request_headers"] for c in CASES)
    assert any("Range" in c["request_headers"] for c in CASES)
    assert any(c["security_token"] for c in CASES) and any(not c["security_token"] for c in CASES)
    assert len({c["region"] for c in CASES}) >= 5
    assert any(any(ord(ch) > 127 for ch in c["key"]) for c in CASES)
    assert any(set(" +~") <= set(c["key"]) for c in CASES)
    assert any(["uploads", ""] in c["query"] for c in CASES)
    assert any(dict(c["query"]).keys() >= {"partNumber", "uploadId"} for c in CASES)
    assert any(c["path_style"] for c in CASES)
    assert any("AdditionalHeaders=" in c["authorization"] for c in CASES)
    for case in CASES:  # the two official SDKs agreed when the file was made
        assert case["oss2_signature"] == case["signature"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_headers_equal_the_sdk_byte_for_byte(case):
    ours = _sign(case)
    expected = dict(case["request_headers"], **case["expected_headers"])
    assert ours == expected
    assert list(ours) == list(expected)  # same names, same case
    assert ours["Authorization"] == case["authorization"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_request_target_equals_the_sdk(case):
    url = urlsplit(case["url"])
    if case["path_style"]:
        endpoint = f"{url.scheme}://{url.netloc}/{case['bucket']}"
    else:
        endpoint = f"{url.scheme}://{url.netloc}"
    client = OssClient(endpoint, case["bucket"], case["region"])
    target = url.path + (f"?{url.query}" if url.query else "")
    assert client.object_path(case["key"], case["query"]) == target


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_one_changed_byte_changes_the_signature(case):
    base = _sign(case)["Authorization"]

    def flip(text):
        return text[:-1] + chr(ord(text[-1]) ^ 1)

    changes = {
        "secret": dict(creds=_creds(case)._replace(access_key_secret=flip(case["access_key_secret"]))),
        "key": dict(key=flip(case["key"])),
        "bucket": dict(bucket=flip(case["bucket"])),
        "method": dict(method=case["method"].lower()),
        "region": dict(region=flip(case["region"])),
        "time": dict(now=_when(case) + datetime.timedelta(seconds=1)),
        "token": dict(creds=_creds(case)._replace(
            security_token=flip(case["security_token"]) if case["security_token"] else "T")),
        "signed header": dict(headers=dict(case["request_headers"], **{"x-oss-meta-a": "b"})),
        "content-type": dict(headers=dict(case["request_headers"], **{"Content-Type": "text/plain"})),
    }
    if case["query"]:
        q = [list(p) for p in case["query"]]
        q[0][1] = flip(q[0][1]) if q[0][1] else "x"
        changes["query value"] = dict(query=q)
    unsigned = {}
    for name, header_value in case["request_headers"].items():
        change = dict(headers=dict(case["request_headers"], **{name: flip(header_value)}))
        lower = name.lower()
        if lower.startswith("x-oss-") or lower in ("content-type", "content-md5") or \
                lower in {h.lower() for h in case["additional_headers"]}:
            changes[f"header {name}"] = change
        else:
            unsigned[f"header {name}"] = change
    for what, change in changes.items():
        assert _sign(case, **change)["Authorization"] != base, what
    # headers OSS does not sign (Range, unless listed in AdditionalHeaders) leave it alone
    unsigned["extra"] = dict(headers=dict(case["request_headers"], **{"User-Agent": "x", "Accept": "*/*"}))
    for what, change in unsigned.items():
        assert _sign(case, **change)["Authorization"] == base, what


def test_region_prefix_times_and_header_case_are_normalised():
    case = CASES[0]
    base = _sign(case)
    assert _sign(case, region="oss-" + case["region"]) == base
    when = _when(case)
    assert _sign(case, now=when.timestamp())["Authorization"] == base["Authorization"]
    assert _sign(case, now=when.replace(tzinfo=None))["Authorization"] == base["Authorization"]
    shanghai = when.astimezone(datetime.timezone(datetime.timedelta(hours=8)))
    assert _sign(case, now=shanghai) == base
    # a caller's own date/auth headers (any case) are replaced, not duplicated
    stale = {"X-OSS-Date": "19700101T000000Z", "authorization": "x", "date": "y"}
    assert _sign(case, headers=stale) == base


def test_canonical_query_encoding():
    assert canonical_query({"uploads": ""}) == "uploads"
    assert canonical_query([("uploadId", "a/b+c=d~e f"), ("partNumber", 1)]) == \
        "partNumber=1&uploadId=a%2Fb%2Bc%3Dd~e%20f"
    assert canonical_query({"b": None, "a": "é"}) == "a=%C3%A9&b"
    assert canonical_query(None) == ""


def test_credentials_without_secret_are_refused():
    with pytest.raises(ValueError):
        sign_v4_request("GET", "b", "k", None, None, Credentials("id", ""), "cn-hangzhou")


def test_import_stays_lean():
    code = ("import sys; import ossdirect.oss.client; "
            "bad = [m for m in ('http.client', 'requests', 'ssl', 'xml.etree.ElementTree', 'email.parser') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "shared"))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- a loopback OSS stand-in -------------------------------------------------------------------

AK = Credentials("AKIDLoopbackKeyID", "loopback-secret/+=", None, "test")
STS = Credentials("STS.LoopbackKeyID", "sts-secret", "CAIS+sts/token==", "test")
BUCKET = "ossdirect-local"


def _xml_error(code, message, request_id="5C3D9175B6FC201293AD4890"):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>{code}</Code>\n'
            f"  <Message>{message}</Message>\n  <RequestId>{request_id}</RequestId>\n"
            f"  <HostId>{BUCKET}.oss-cn-hangzhou.aliyuncs.com</HostId>\n  <EC>0003-00000001</EC>\n"
            "</Error>\n").encode()


def _oss2_signature(method, bucket, key, query, headers, creds, region, x_oss_date, additional):
    import oss2
    import oss2.http

    provider = oss2.credentials.StaticCredentialsProvider(creds.access_key_id, creds.access_key_secret,
                                                           creds.security_token or "")
    auth = oss2.ProviderAuthV4(provider)
    req = oss2.http.Request(method, "http://unused/", params=query, headers=headers, region=region, product="oss")
    return auth._ProviderAuthV4__make_signature(req, bucket, key, additional, provider.get_credentials(),
                                                x_oss_date)


class FakeOss:
    """A real HTTP/1.1 server on 127.0.0.1 answering like OSS, checking V4 signatures with oss2.

    Objects live in ``objects`` (key -> (data, content type, metadata)). Keys under ``deny/`` answer
    403, ``boom`` 500, ``slow`` waits ``slow_seconds`` first. ``close_after_each`` closes every
    connection after its answer *without* saying so (a keep-alive the server dropped while idle);
    ``drop_without_answer`` closes connections as soon as a request arrives; ``ignore_range``
    answers ranged GETs with the whole object (200), as OSS does for a range it cannot apply.
    """

    def __init__(self, path_style=True, region="cn-hangzhou"):
        self.path_style = path_style
        self.region = region
        self.objects = {}
        self.requests = []
        self.connections = 0
        self.close_after_each = False
        self.drop_without_answer = False
        self.ignore_range = False
        self.slow_seconds = 2.0
        self.release = threading.Event()
        self.keys = {c.access_key_id: c for c in (AK, STS)}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # answers go out as headers then body: without this, Nagle + delayed ACK add 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with outer.lock:
                    outer.connections += 1

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                outer.handle(self, "HEAD")

            def do_GET(self):
                outer.handle(self, "GET")

            def do_PUT(self):
                outer.handle(self, "PUT")

            def do_DELETE(self):
                outer.handle(self, "DELETE")

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # resets from the dropped-connection tests are expected

        self.server = Server(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{port}/{BUCKET}" if path_style else f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def client(self, timeout=2.0, region=None):
        return OssClient(self.endpoint, BUCKET, region or self.region, timeout=timeout)

    # -- answering --

    def send(self, h, status, body=b"", headers=(), method="GET"):
        h.send_response(status)
        h.send_header("x-oss-request-id", "5C3D9175B6FC201293AD4890")
        for name, value in headers:
            h.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in headers):
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if method != "HEAD" and body:
            h.wfile.write(body)
        if self.close_after_each:
            h.close_connection = True  # no "Connection: close": the client finds out on reuse

    def error(self, h, method, status, code, message):
        body = _xml_error(code, message)
        headers = [("Content-Type", "application/xml")]
        if method == "HEAD":  # OSS puts HEAD errors in x-oss-err
            headers.append(("x-oss-err", base64.b64encode(body).decode()))
            headers.append(("Content-Length", "0"))
        self.send(h, status, body, headers, method)

    def verify(self, h, method, bucket, key, query):
        authz = h.headers.get("Authorization", "")
        if not authz.startswith("OSS4-HMAC-SHA256 Credential="):
            return "AccessDenied", "no V4 authorization"
        fields = dict(part.split("=", 1) for part in authz[len("OSS4-HMAC-SHA256 "):].split(","))
        key_id, day, region, product, terminator = fields["Credential"].split("/")
        creds = self.keys.get(key_id)
        x_oss_date = h.headers.get("x-oss-date", "")
        if creds is None:
            return "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records."
        if (creds.security_token or None) != h.headers.get("x-oss-security-token"):
            return "InvalidSecurityToken", "The security token you provided is invalid."
        if (day, region, product, terminator) != (x_oss_date[:8], self.region, "oss", "aliyun_v4_request"):
            return "SignatureDoesNotMatch", "bad scope"
        if h.headers.get("x-oss-content-sha256") != "UNSIGNED-PAYLOAD" or not h.headers.get("Date"):
            return "SignatureDoesNotMatch", "missing x-oss-content-sha256 or Date"
        skew = abs(time.time() - datetime.datetime.strptime(x_oss_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp())
        if skew > 900:
            return "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."
        additional = fields["AdditionalHeaders"].split(";") if "AdditionalHeaders" in fields else None
        expected = _oss2_signature(method, bucket, key, query, dict(h.headers.items()), creds, self.region,
                                   x_oss_date, additional)
        if expected != fields.get("Signature"):
            return "SignatureDoesNotMatch", ("The request signature we calculated does not match the signature "
                                             "you provided. Check your key and signing method.")
        return None

    def handle(self, h, method):
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = {}
        for pair in filter(None, parts.query.split("&")):
            k, _, v = pair.partition("=")
            query[unquote(k)] = unquote(v)
        if self.path_style:
            bucket, _, key = path.lstrip("/").partition("/")
        else:
            bucket, key = BUCKET, path.lstrip("/")
        with self.lock:
            self.requests.append({"method": method, "path": h.path, "key": key, "headers": dict(h.headers.items()),
                                  "connection": id(h.connection)})
        if self.drop_without_answer:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        if bucket != BUCKET:
            return self.error(h, method, 404, "NoSuchBucket", "The specified bucket does not exist.")
        problem = self.verify(h, method, bucket, key, query)
        if problem:
            return self.error(h, method, 403, *problem)
        if key.startswith("deny/"):
            return self.error(h, method, 403, "AccessDenied", "You have no right to access this object because of "
                                                              "bucket acl & <policy>.")
        if key == "boom":
            return self.error(h, method, 500, "InternalError", "We encountered an internal error. Please try again.")
        if key == "slow":
            self.release.wait(self.slow_seconds)
        if method == "PUT" and "x-oss-copy-source" in h.headers:
            src = unquote(h.headers["x-oss-copy-source"])
            src_bucket, _, src_key = src.lstrip("/").partition("/")
            if src_bucket != BUCKET or src_key not in self.objects:
                return self.error(h, method, 404, "NoSuchKey", "The specified key does not exist.")
            self.objects[key] = self.objects[src_key]
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult>\n'
                    "  <ETag>&quot;5B3C1A2E053D763E1B002CC607C5A0FE&quot;</ETag>\n"
                    "  <LastModified>2024-05-01T08:00:00.000Z</LastModified>\n</CopyObjectResult>\n").encode()
            return self.send(h, 200, body, [("Content-Type", "application/xml")])
        if method == "DELETE":
            self.objects.pop(key, None)
            return self.send(h, 204)
        if key not in self.objects:
            return self.error(h, method, 404, "NoSuchKey", "The specified key does not exist.")
        data, content_type, meta = self.objects[key]
        headers = [("Content-Type", content_type), ("ETag", '"5B3C1A2E053D763E1B002CC607C5A0FE"'),
                   ("Last-Modified", "Wed, 01 May 2024 08:00:00 GMT"), ("Accept-Ranges", "bytes")]
        for name, value in meta.items():  # raw UTF-8 on the wire, as OSS sends it
            headers.append((f"x-oss-meta-{name}", value.encode("utf-8").decode("latin-1")))
        rng = h.headers.get("Range")
        if method == "GET" and rng and not self.ignore_range:
            first, _, last = rng[len("bytes="):].partition("-")
            first, last = int(first), min(int(last), len(data) - 1)
            if first >= len(data):
                return self.error(h, method, 416, "InvalidRange", "The requested range cannot be satisfied")
            headers.append(("Content-Range", f"bytes {first}-{last}/{len(data)}"))
            return self.send(h, 206, data[first:last + 1], headers)
        if method == "HEAD":
            headers.append(("Content-Length", str(len(data))))
        return self.send(h, 200, data, headers, method)


@pytest.fixture
def fake():
    server = FakeOss()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_connections():
    """Each test starts without pooled connections in this thread."""
    conns = getattr(transport._tls, "conns", None)
    if conns:
        for conn in conns.values():
            conn.close()
        conns.clear()
    yield


KEY = "uploads/照片 a+b~c.png"


def _store(fake, key=KEY, data=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, content_type="image/png", meta=None):
    fake.objects[key] = (data, content_type, meta if meta is not None else {"upload-id": "3f0c", "filename": "照片.png"})
    return data


@pytest.mark.parametrize("creds", [AK, STS], ids=["ak", "sts"])
@pytest.mark.parametrize("path_style", [True, False], ids=["path-style", "host-style"])
def test_head_object_parses_the_answer(creds, path_style):
    server = FakeOss(path_style=path_style)
    try:
        data = _store(server)
        info = server.client().head_object(KEY, creds)
        assert isinstance(info, ObjectInfo)
        assert info.size == len(data)
        assert info.etag == "5B3C1A2E053D763E1B002CC607C5A0FE"
        assert info.content_type == "image/png"
        assert info.last_modified == "Wed, 01 May 2024 08:00:00 GMT"
        assert info.metadata == {"upload-id": "3f0c", "filename": "照片.png"}
        assert info.headers["x-oss-request-id"] == "5C3D9175B6FC201293AD4890"
        assert info.headers["content-length"] == str(len(data))
        (req,) = server.requests
        assert req["key"] == KEY and req["method"] == "HEAD"
        expected_path = ("/" + BUCKET if path_style else "") + "/uploads/%E7%85%A7%E7%89%87%20a%2Bb~c.png"
        assert req["path"] == expected_path
        assert req["headers"]["x-oss-content-sha256"] == "UNSIGNED-PAYLOAD"
        assert req["headers"].get("x-oss-security-token") == creds.security_token
    finally:
        server.close()


def test_head_missing_object_is_none(fake):
    assert fake.client().head_object("uploads/none.png", AK) is None


def test_head_missing_bucket_raises():
    server = FakeOss()
    try:
        client = OssClient(server.endpoint.rsplit("/", 1)[0] + "/other-bucket", "other-bucket", "cn-hangzhou")
        with pytest.raises(OssError) as err:
            client.head_object("uploads/a.png", AK)
        assert (err.value.status, err.value.code) == (404, "NoSuchBucket")
    finally:
        server.close()


def test_head_403_code_comes_from_x_oss_err(fake):
    _store(fake, "deny/a.png")
    with pytest.raises(OssError) as err:
        fake.client().head_object("deny/a.png", AK)
    e = err.value
    assert (e.status, e.code, e.ec, e.request_id) == (403, "AccessDenied", "0003-00000001", "5C3D9175B6FC201293AD4890")
    assert e.message == "You have no right to access this object because of bucket acl & <policy>."


def test_get_403_xml_body(fake):
    _store(fake, "deny/a.png")
    with pytest.raises(OssError) as err:
        fake.client().get_range("deny/a.png", STS, 0, 16)
    assert (err.value.status, err.value.code) == (403, "AccessDenied")
    assert "bucket acl & <policy>" in str(err.value)


def test_wrong_secret_is_signature_does_not_match_and_never_shows_secrets(fake):
    _store(fake)
    wrong = STS._replace(access_key_secret="not-the-secret-XYZ")
    with pytest.raises(OssError) as err:
        fake.client().head_object(KEY, wrong)
    e = err.value
    assert (e.status, e.code) == (403, "SignatureDoesNotMatch")
    text = str(e) + repr(e) + repr(e.args)
    for secret in ("not-the-secret-XYZ", STS.security_token, STS.access_key_secret):
        assert secret not in text


def test_wrong_region_is_refused(fake):
    _store(fake)
    with pytest.raises(OssError) as err:
        fake.client(region="cn-beijing").head_object(KEY, AK)
    assert err.value.code == "SignatureDoesNotMatch"


def test_500_raises_with_code(fake):
    with pytest.raises(OssError) as err:
        fake.client().head_object("boom", AK)
    assert (err.value.status, err.value.code) == (500, "InternalError")
    with pytest.raises(OssError) as err:
        fake.client().delete_object("boom", AK)
    assert (err.value.status, err.value.code, err.value.message) == (
        500, "InternalError", "We encountered an internal error. Please try again.")


def test_get_range(fake):
    data = _store(fake)
    client = fake.client()
    assert client.get_range(KEY, AK, 0, 8) == data[:8]
    assert client.get_range(KEY, STS, 100, 50) == data[100:150]
    assert client.get_range(KEY, AK, len(data) - 4, 100) == data[-4:]  # clipped at the end
    assert client.get_range(KEY, AK, len(data), 10) == b""  # 416
    assert [r["headers"]["Range"] for r in fake.requests[:2]] == ["bytes=0-7", "bytes=100-149"]
    with pytest.raises(OssError) as err:
        client.get_range("uploads/none", AK, 0, 8)
    assert (err.value.status, err.value.code) == (404, "NoSuchKey")
    with pytest.raises(ValueError):
        client.get_range(KEY, AK, 0, 0)
    assert fake.connections == 1


def test_get_range_when_oss_ignores_the_range(fake):
    data = _store(fake, data=os.urandom(300_000))
    fake.ignore_range = True
    client = fake.client()
    assert client.get_range(KEY, AK, 10, 20) == data[10:30]
    # the rest of the object was not read: that connection was dropped, and the next call still works
    assert client.get_range(KEY, AK, 0, 4) == data[:4]
    assert fake.connections == 2


def test_copy_and_delete(fake):
    src = "uploads/源 file+1.png"
    data = _store(fake, key=src)
    client = fake.client()
    assert client.copy_object(src, "records/目标 1.png", STS) == "5B3C1A2E053D763E1B002CC607C5A0FE"
    copy_req = fake.requests[-1]
    assert copy_req["method"] == "PUT"
    assert copy_req["headers"]["x-oss-copy-source"] == f"/{BUCKET}/uploads/%E6%BA%90%20file%2B1.png"
    assert copy_req["headers"]["Content-MD5"] == "1B2M2Y8AsgTpgAmY7PhCfg=="
    assert copy_req["headers"]["Content-Length"] == "0"
    assert client.head_object("records/目标 1.png", STS).size == len(data)
    client.copy_object(src, "records/b.png", AK, headers={"x-oss-forbid-overwrite": "true"})
    assert fake.requests[-1]["headers"]["x-oss-forbid-overwrite"] == "true"
    with pytest.raises(OssError) as err:
        client.copy_object("uploads/none", "records/c.png", AK)
    assert err.value.code == "NoSuchKey"
    client.delete_object(src, AK)
    assert fake.requests[-1]["method"] == "DELETE"
    assert client.head_object(src, AK) is None
    client.delete_object(src, AK)  # deleting again is fine, as on OSS
    assert fake.connections == 1


def test_one_connection_is_reused(fake):
    _store(fake)
    client = fake.client()
    for _ in range(20):
        assert client.head_object(KEY, AK).size > 0
        assert client.get_range(KEY, AK, 0, 4) == b"\x89PNG"
    # a second client for the same host in the same thread shares the connection
    fake.client().head_object(KEY, STS)
    assert fake.connections == 1
    assert len({r["connection"] for r in fake.requests}) == 1
    assert len(fake.requests) == 41


def test_one_connection_per_thread(fake):
    _store(fake)
    client = fake.client()
    errors = []

    def work():
        try:
            for _ in range(10):
                assert client.head_object(KEY, AK).size > 0
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert fake.connections == 4
    assert len(fake.requests) == 40


def test_stale_keep_alive_is_reopened_once(fake):
    _store(fake)
    fake.close_after_each = True
    client = fake.client()
    for i in range(5):
        assert client.head_object(KEY, AK).size > 0
        time.sleep(0.05)  # let the server's FIN arrive: the pooled connection is now stale
    assert fake.connections == 5
    assert len(fake.requests) == 5  # each stale socket failed before OSS saw a request; no request repeated


def test_reconnect_is_tried_only_once(fake):
    _store(fake)
    client = fake.client()
    assert client.head_object(KEY, AK) is not None  # a pooled keep-alive connection
    fake.drop_without_answer = True
    with pytest.raises(OssError) as err:
        client.head_object(KEY, AK)
    assert (err.value.status, err.value.code) == (0, "ConnectionFailed")
    assert fake.connections == 2  # the pooled one and exactly one new one
    fake.drop_without_answer = False
    assert client.head_object(KEY, AK) is not None


def test_timeout_raises_quickly_and_the_next_call_works(fake):
    _store(fake, key="slow")
    _store(fake)
    client = fake.client(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(OssError) as err:
        client.head_object("slow", AK)
    assert time.monotonic() - started < 1.5
    assert (err.value.status, err.value.code) == (0, "ClientTimeout")
    assert client.head_object(KEY, AK) is not None


def test_connection_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = OssClient(f"http://127.0.0.1:{port}/{BUCKET}", BUCKET, "cn-hangzhou", timeout=1.0)
    with pytest.raises(OssError) as err:
        client.head_object(KEY, AK)
    assert (err.value.status, err.value.code) == (0, "ConnectionFailed")


def test_bad_endpoints():
    for endpoint in ("ftp://x/b", "127.0.0.1:9100", "http:///b", "http://h/b?x=1"):
        with pytest.raises(ValueError):
            OssClient(endpoint, BUCKET, "cn-hangzhou")
    client = OssClient("https://b.oss-cn-hangzhou-internal.aliyuncs.com/", "b", "oss-cn-hangzhou")
    assert client.region == "cn-hangzhou"
    assert client.object_path("a b/c") == "/a%20b/c"


# -- presigned URLs (UploadPart) and the multipart calls -----------------------------------------

PRESIGN = json.loads((VECTORS / "oss_presign_urls.json").read_text(encoding="utf-8"))
PRESIGN_CASES = PRESIGN["cases"]


def _presign(case, **change):
    url = urlsplit(case["url"])
    endpoint = f"{url.scheme}://{url.netloc}" + (f"/{case['bucket']}" if case["path_style"] else "")
    client = OssClient(endpoint, change.pop("bucket", case["bucket"]), case["region"])
    args = dict(method=case["method"], key=case["key"], query=case["query"], creds=_creds(case),
                expires=case["expires"], now=_when(case), additional_headers=case["additional_headers"],
                content_md5=case.get("content_md5"))
    args.update(change)
    return client.presign_v4_url(**args)


def test_presign_vectors_cover_the_brief():
    assert PRESIGN["generator"].startswith("alibabacloud-oss-v2@")
    assert any(c["security_token"] for c in PRESIGN_CASES) and any(not c["security_token"] for c in PRESIGN_CASES)
    assert any(c["path_style"] for c in PRESIGN_CASES) and any(not c["path_style"] for c in PRESIGN_CASES)
    assert any("x-oss-additional-headers=content-length&" in c["url"] for c in PRESIGN_CASES)
    assert any(any(ord(ch) > 127 for ch in c["key"]) for c in PRESIGN_CASES)
    assert all(dict(c["query"]).keys() == {"partNumber", "uploadId"} for c in PRESIGN_CASES)
    md5_cases = [c for c in PRESIGN_CASES if c.get("content_md5")]  # issue 24: signed, never named
    assert {c["sdk_operation"] for c in md5_cases} == {"Client.presign(UploadPartRequest)",
                                                       "SignerV4.sign(auth_method_query)"}
    assert all("content-md5" not in c["url"] for c in md5_cases)


@pytest.mark.parametrize("case", PRESIGN_CASES, ids=[c["name"] for c in PRESIGN_CASES])
def test_presigned_urls_equal_the_sdk_byte_for_byte(case):
    assert _presign(case) == case["url"]


@pytest.mark.parametrize("case", PRESIGN_CASES, ids=[c["name"] for c in PRESIGN_CASES])
def test_presign_one_changed_input_changes_the_signature(case):
    def sig(url):
        return url.rsplit("x-oss-signature=", 1)[1]

    base = sig(_presign(case))
    flip = lambda text: text[:-1] + chr(ord(text[-1]) ^ 1)  # noqa: E731
    q = [list(p) for p in case["query"]]
    q[0][1] = str(int(q[0][1]) % 9999 + 1)
    changes = {
        "secret": dict(creds=_creds(case)._replace(access_key_secret=flip(case["access_key_secret"]))),
        "key": dict(key=flip(case["key"])), "bucket": dict(bucket=flip(case["bucket"])),
        "method": dict(method="GET"), "expires": dict(expires=case["expires"] + 1),
        "time": dict(now=_when(case) + datetime.timedelta(seconds=1)), "part number": dict(query=q),
        "content-length": dict(additional_headers={"content-length": "1"}),
        "content-md5": dict(content_md5="XUFAKrxLKna5cZ2REBfFkh=="),
    }
    for what, change in changes.items():
        assert sig(_presign(case, **change)) != base, what


def test_presign_refuses_bad_lifetimes_and_signs_only_additional_headers():
    case = PRESIGN_CASES[0]
    for expires in (0, 7 * 24 * 3600 + 1):
        with pytest.raises(ValueError):
            _presign(case, expires=expires)
    # OSS signs x-oss-*/content-type/content-md5 anyway and an empty header not at all: never named
    plain = _presign(case, additional_headers={})
    assert _presign(case, additional_headers={"Content-Type": "x/y", "x-oss-meta-a": "b", "range": ""}) == plain
    assert "x-oss-additional-headers=content-length%3Brange&" in _presign(
        case, additional_headers={"Range": "bytes=0-1", "Content-Length": "2"})


def test_a_part_url_signed_with_content_md5_takes_only_that_body(photo_bucket):
    """Issue 24: the MD5 is in the signature, so OSS itself refuses another body (InvalidDigest) or
    another digest (SignatureDoesNotMatch), and a PUT without the header."""
    import hashlib

    import requests

    creds = Credentials(photo_bucket.AK, photo_bucket.SK, photo_bucket.TOKEN, "test")
    client = OssClient(photo_bucket.bucket_url, photo_bucket.bucket, "cn-hangzhou")
    key = "uploads/md5 part.bin"
    upload_id = client.initiate_multipart_upload(key, creds)
    good = b"a" * (100 * 1024)
    bad = b"a" * (100 * 1024 - 1) + b"b"
    md5 = lambda data: base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: E731
    url = client.presign_v4_url("PUT", key, [("partNumber", "1"), ("uploadId", upload_id)], creds, 60,
                                additional_headers={"content-length": str(len(good))}, content_md5=md5(good))
    refused = {
        "body flipped, header kept": (bad, {"Content-MD5": md5(good)}, 400, "InvalidDigest"),
        "header changed to the body's": (bad, {"Content-MD5": md5(bad)}, 403, "SignatureDoesNotMatch"),
        "no header": (good, {}, 403, "SignatureDoesNotMatch"),
    }
    for what, (body, headers, status, code) in refused.items():
        r = requests.put(url, data=body, headers=headers, timeout=10)
        assert (r.status_code, f"<Code>{code}</Code>" in r.text) == (status, True), what
    assert client.list_parts(key, upload_id, creds) == []
    r = requests.put(url, data=good, headers={"Content-MD5": md5(good)}, timeout=10)
    assert r.status_code == 200, r.text
    assert [(p.number, p.size) for p in client.list_parts(key, upload_id, creds)] == [(1, len(good))]


def test_multipart_calls_against_the_emulator(photo_bucket):
    creds = Credentials(photo_bucket.AK, photo_bucket.SK, photo_bucket.TOKEN, "test")
    client = OssClient(photo_bucket.bucket_url, photo_bucket.bucket, "cn-hangzhou")
    key = "uploads/多 part+file.bin"
    upload_id = client.initiate_multipart_upload(key, creds, {"Content-Type": "video/mp4", "x-oss-meta-upload-id": "u1",
                                                             "Cache-Control": "no-cache"})
    import requests

    parts = [b"a" * (100 * 1024), b"b" * (100 * 1024), b"c" * 7]
    etags = []
    for n, data in enumerate(parts, 1):
        url = client.presign_v4_url("PUT", key, [("partNumber", str(n)), ("uploadId", upload_id)], creds, 60,
                                    additional_headers={"content-length": str(len(data))})
        r = requests.put(url, data=data, timeout=10)
        assert r.status_code == 200, r.text
        etags.append(r.headers["ETag"].strip('"'))
    listed = client.list_parts(key, upload_id, creds, page_size=1)  # three pages
    assert [(p.number, p.size, p.etag) for p in listed] == [(n, len(d), e) for n, (d, e) in
                                                           enumerate(zip(parts, etags), 1)]
    answer = client.complete_multipart_upload(key, upload_id, [(p.number, p.etag) for p in listed], creds,
                                              {"x-oss-forbid-overwrite": "true"})
    assert answer.status == 200 and b"<CompleteMultipartUploadResult>" in answer.body
    info = client.head_object(key, creds)
    assert info.size == sum(map(len, parts)) and info.content_type == "video/mp4"
    assert info.metadata == {"upload-id": "u1"} and info.headers["cache-control"] == "no-cache"
    with pytest.raises(OssError) as err:
        client.list_parts(key, upload_id, creds)
    assert err.value.code == "NoSuchUpload"
    assert client.abort_multipart_upload(key, upload_id, creds) is False  # gone: not an error
    other = client.initiate_multipart_upload(key + ".2", creds)
    assert client.abort_multipart_upload(key + ".2", other, creds) is True
    with pytest.raises(OssError) as err:  # forbid-overwrite at Complete
        again = client.initiate_multipart_upload(key, creds)
        client.complete_multipart_upload(key, again, [(1, "x")], creds, {"x-oss-forbid-overwrite": "true"})
    assert err.value.status in (400, 409)


# -- the layers: a pure signer, one transport, the operations the process function and reconcile use --


def test_the_signer_and_the_form_path_load_no_transport():
    code = ("import sys; import ossdirect.oss.signer, ossdirect.core.forms; "
            "bad = [m for m in ('ossdirect.oss.transport', 'ossdirect.oss.client', 'http.client', 'requests', 'ssl', "
            "'xml.etree.ElementTree') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "shared"))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (ROOT / "shared/ossdirect/oss/extra.py").exists()  # one transport: no second one beside it


def test_every_operation_shares_one_pooled_connection_and_one_error_parser(fake):
    _store(fake)
    client = fake.client()
    assert client.head_object(KEY, AK).size > 0
    with pytest.raises(OssError) as err:  # PutObjectAcl: the same pool, the same parser as HEAD's
        client.put_object_acl("deny/a.png", "private", AK)
    e = err.value
    assert (e.status, e.code, e.ec, e.request_id) == (403, "AccessDenied", "0003-00000001", "5C3D9175B6FC201293AD4890")
    with pytest.raises(OssError) as err:
        client.put_object("boom", b"data", STS)
    assert (err.value.status, err.value.code) == (500, "InternalError")
    assert fake.connections == 1 and len({r["connection"] for r in fake.requests}) == 1
    acl = fake.requests[1]
    assert acl["method"] == "PUT" and acl["path"].endswith("/deny/a.png?acl") and \
        acl["headers"]["x-oss-object-acl"] == "private"
    assert fake.requests[2]["headers"]["Content-Length"] == "4"


def test_put_acl_list_and_iterate_against_the_emulator(photo_bucket):
    creds = Credentials(photo_bucket.AK, photo_bucket.SK, photo_bucket.TOKEN, "test")
    client = OssClient(photo_bucket.bucket_url, photo_bucket.bucket, "cn-hangzhou")
    keys = ["uploads/a b+c.png", "uploads/日本語 <&>.png", "uploads/x%41.png", "other/z.txt"]
    etags = {key: client.put_object(key, key.encode(), creds, "text/plain", {"x-oss-meta-user": "ann"})
             for key in keys}
    assert all(len(etag) == 32 for etag in etags.values())
    info = client.head_object(keys[1], creds)
    assert (info.size, info.etag, info.content_type, info.metadata) == (
        len(keys[1].encode()), etags[keys[1]], "text/plain", {"user": "ann"})
    client.put_object_acl(keys[0], "private", creds)
    assert photo_bucket.sdk.get_object_acl(keys[0]).acl == "private"
    with pytest.raises(OssError) as err:
        client.put_object_acl("uploads/none.png", "private", creds)
    assert (err.value.status, err.value.code) == (404, "NoSuchKey")
    page = client.list_objects("uploads/", creds, max_keys=2)
    assert len(page.objects) == 2 and page.next_token
    listed = list(client.iter_objects("uploads/", creds, page_size=1))
    assert sorted(o.key for o in listed) == sorted(keys[:3])
    assert {o.key: o.etag for o in listed} == {k: etags[k] for k in keys[:3]}


def test_the_one_error_parser_reads_xml_bodies_x_oss_err_and_plain_answers():
    from ossdirect.oss.transport import error_from

    xml = _xml_error("NoSuchKey", "The specified key &lt;does not&gt; exist.", "RID1")
    e = error_from(404, "Not Found", {}, xml)
    assert (e.status, e.code, e.message, e.request_id, e.ec) == (
        404, "NoSuchKey", "The specified key <does not> exist.", "RID1", "0003-00000001")
    e = error_from(403, "Forbidden", {"x-oss-err": base64.b64encode(xml).decode(), "x-oss-request-id": "R2"}, b"")
    assert (e.code, e.request_id) == ("NoSuchKey", "RID1")  # HEAD: the document comes base64 in a header
    e = error_from(502, "Bad Gateway", {"x-oss-request-id": "R3", "x-oss-ec": "EC3"}, b"<html>proxy</html>")
    assert (e.status, e.code, e.message, e.request_id, e.ec) == (502, "HTTP502", "Bad Gateway", "R3", "EC3")
    assert (error_from(403, "", {}, b"").code, error_from(404, "", {}, b"").code) == ("AccessDenied", "NotFound")
    assert len(error_from(400, "x", {}, _xml_error("InvalidArgument", "m" * 2000)).message) == 500
    assert str(error_from(500, "", {}, b"")) == "OSS 500 HTTP500"
