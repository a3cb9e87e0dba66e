"""The emulator's upload callback (rendering, OSS-style signature, failure modes) and the ali-oss golden vectors."""

import base64
import calendar
import hashlib
import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from conftest import BUCKET, make_form, multipart
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from emulator import EmulatorConfig, serve

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "post_signatures.json"
PNG_1x1 = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAYAAACddGYaAAAAEElEQVR42mNkYPhfz8DAwMAAEfwCAfyhsbEAAAAASUVORK5CYII=")


class CallbackServer:
    """A loopback callback receiver that verifies the emulator's signature with its published key."""

    def __init__(self, mode="ok"):
        self.mode, self.requests = mode, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, dict(self.headers), body))
                mode = outer.mode
                if mode == "slow":
                    time.sleep(1.5)
                if mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "redirect":
                    self.send_response(301)
                    self.send_header("Location", "http://127.0.0.1:1/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                payload = b"not json" if mode == "notjson" else json.dumps({"Status": "OK", "echo": len(body)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if mode != "nolength":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if mode == "nolength":
                    self.close_connection = True

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = CallbackServer()
    yield server
    server.close()


def callback_field(url, body, body_type=None, host=None):
    conf = {"callbackUrl": url, "callbackBody": body}
    if body_type:
        conf["callbackBodyType"] = body_type
    if host:
        conf["callbackHost"] = host
    return ("callback", base64.b64encode(json.dumps(conf).encode()).decode())


def post(emulator, fields, data=b"hello", file_type="text/plain"):
    body, ctype = multipart(fields, data, "a.txt", file_type)
    return requests.post(emulator.bucket_url + "/", data=body, headers={"Content-Type": ctype}, timeout=15)


def verify(emulator, path_and_query, headers, body):
    key_url = base64.b64decode(headers["x-oss-pub-key-url"]).decode()
    assert key_url == emulator.pubkey_url
    pem = requests.get(key_url, timeout=5).content
    key = serialization.load_pem_public_key(pem)
    path, _, query = path_and_query.partition("?")
    message = unquote(path).encode() + (b"?" + query.encode() if query else b"") + b"\n" + body
    key.verify(base64.b64decode(headers["Authorization"]), message, padding.PKCS1v15(), hashes.MD5())


def test_form_callback_rendered_signed_and_relayed(emulator, receiver):
    template = ("bucket=${bucket}&object=${object}&etag=${etag}&size=${size}&mimeType=${mimeType}"
                "&h=${imageInfo.height}&w=${imageInfo.width}&f=${imageInfo.format}&crc=${crc64}&md5=${contentMd5}"
                "&op=${operation}&id=${x:upload_id}&missing=${x:nothing}&lit=${unknown}")
    fields = make_form(key="uploads/dir/p ic.png", extra_fields=[
        callback_field(receiver.url + "/cb/p%20ath?a=1&b=2", template, host="cb.example.com"),
        ("x:upload_id", "u-1/2")])
    r = post(emulator, fields, PNG_1x1, "image/png")
    assert r.status_code == 200, r.text
    assert r.json() == {"Status": "OK", "echo": len(receiver.requests[0][2])}
    assert r.headers["Content-Type"] == "application/json" and r.headers["ETag"]
    path, headers, body = receiver.requests[0]
    verify(emulator, path, headers, body)
    assert headers["Host"] == "cb.example.com" and headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Content-MD5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    text = body.decode()
    assert f"bucket={BUCKET}&object=uploads%2Fdir%2Fp%20ic.png&etag={hashlib.md5(PNG_1x1).hexdigest().upper()}" in text
    assert f"&size={len(PNG_1x1)}&mimeType=image%2Fpng&h=2&w=3&f=png&" in text
    assert "&op=PostObject&id=u-1%2F2&missing=&lit=${unknown}" in text


def test_json_callback_types(emulator, receiver):
    template = '{"object":${object},"size":${size},"mime":${mimeType},"id":${x:upload_id}}'
    fields = make_form(key="uploads/j.txt", extra_fields=[
        callback_field(receiver.url + "/cb", template, "application/json"), ("x:upload_id", 'q"x')])
    r = post(emulator, fields)
    assert r.status_code == 200
    path, headers, body = receiver.requests[0]
    verify(emulator, path, headers, body)
    assert json.loads(body) == {"object": "uploads/j.txt", "size": 5, "mime": "text/plain", "id": 'q"x'}


@pytest.mark.parametrize("mode,message", [
    ("500", "Error status : 500."),
    ("redirect", "Error status : 301."),
    ("notjson", "Response body is not valid json format."),
    ("nolength", "missing content-length"),
    ("slow", "reply timeout"),
])
def test_callback_failures_are_203_and_object_kept(tmp_path, mode, message):
    receiver = CallbackServer(mode)
    config = EmulatorConfig(data_dir=str(tmp_path), buckets=[BUCKET], accounts={"AKIDEMULATOR": ("emulator-secret", None)},
                            callback_timeout=0.5)
    try:
        with serve(config) as emu:
            emu.bucket_url = f"{emu.url}/{BUCKET}"
            fields = make_form(extra_fields=[callback_field(receiver.url + "/cb", "o=${object}")])
            r = post(emu, fields)
            assert r.status_code == 203 and "<Code>CallbackFailed</Code>" in r.text and message in r.text, r.text
            assert r.headers["ETag"]
            assert requests.get(f"{emu.bucket_url}/uploads/a.txt", timeout=5).content == b"hello"
    finally:
        receiver.close()


def test_unreachable_callback_then_second_url(emulator, receiver):
    fields = make_form(extra_fields=[callback_field(f"http://127.0.0.1:1/cb;{receiver.url}/second", "o=${object}")])
    r = post(emulator, fields)
    assert r.status_code == 200 and receiver.requests[0][0] == "/second"


@pytest.mark.parametrize("conf,fragment", [
    ("%%%", "not base64 encoded"),
    (base64.b64encode(b"{not json").decode(), "not json format"),
    (base64.b64encode(json.dumps({"callbackUrl": "http://127.0.0.1:9/x"}).encode()).decode(), "body is empty"),
    (base64.b64encode(json.dumps({"callbackUrl": "http://127.0.0.1:9/x", "callbackBody": "a",
                                  "callbackBodyType": "text/xml"}).encode()).decode(), "callbackBodyType"),
    (base64.b64encode(json.dumps({"callbackUrl": ";".join(["http://127.0.0.1:9/x"] * 6),
                                  "callbackBody": "a"}).encode()).decode(), "exceed max value"),
])
def test_bad_callback_parameter_is_400_and_nothing_stored(emulator, conf, fragment):
    r = post(emulator, make_form(extra_fields=[("callback", conf)]))
    assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text and fragment in r.text
    assert requests.get(f"{emulator.bucket_url}/uploads/a.txt", timeout=5).status_code == 404


# --- golden vectors made with ali-oss ----------------------------------------------------------------
GOLDEN = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]


def _vector_emulator(tmp_path, case):
    policy = json.loads(case["policy"])
    expires = calendar.timegm(time.strptime(policy["expiration"][:19], "%Y-%m-%dT%H:%M:%S"))
    # put the emulator's clock 5 minutes before the vector's expiration
    offset = (expires - 300) - time.time()
    region = case["region"] or "cn-hangzhou"
    config = EmulatorConfig(data_dir=str(tmp_path), buckets=["examplebucket"], region=region,
                            accounts={case["access_key_id"]: (case["access_key_secret"], case["security_token"])},
                            clock_offset=offset)
    return serve(config)


def _vector_fields(case, policy_b64=None, signature=None):
    """Form fields satisfying every condition of the vector's policy."""
    policy = json.loads(case["policy"])
    fields = {}
    for cond in policy["conditions"]:
        if isinstance(cond, dict):
            (name, value), = cond.items()
            if name != "bucket":
                fields[name] = value
        elif cond[0] == "eq":
            fields[cond[1][1:]] = cond[2]
        elif cond[0] == "starts-with":
            fields.setdefault(cond[1][1:], cond[2] + "file.txt")
        elif cond[0] == "in":
            fields[cond[1][1:]] = cond[2][0]
        elif cond[0] == "not-in":
            fields[cond[1][1:]] = "max-age=1"
    fields.setdefault("key", "any/file.txt")
    out = [("key", fields.pop("key"))]
    if case["version"] == "v4":
        out += [("policy", policy_b64 or case["policy_b64"]), ("x-oss-signature", signature or case["signature"])]
    else:
        out += [("OSSAccessKeyId", case["access_key_id"]), ("policy", policy_b64 or case["policy_b64"]),
                ("Signature", signature or case["signature"])]
    out += [(k, v) for k, v in fields.items() if k.lower() not in ("policy",)]
    return out


def _size_for(case):
    for cond in json.loads(case["policy"])["conditions"]:
        if isinstance(cond, list) and cond[0] == "content-length-range":
            return max(cond[1], min(cond[2], 5))
    return 5


def _flip(text):
    return text[:10] + ("A" if text[10] != "A" else "B") + text[11:]


@pytest.mark.parametrize("case", GOLDEN, ids=[c["name"] for c in GOLDEN])
def test_golden_vectors_accepted_and_one_byte_rejected(tmp_path, case):
    with _vector_emulator(tmp_path, case) as emu:
        url = f"{emu.url}/examplebucket/"
        data = b"x" * _size_for(case)

        def send(fields):
            body, ctype = multipart(fields, data, "file.txt", "text/plain")
            return requests.post(url, data=body, headers={"Content-Type": ctype}, timeout=10)

        ok = send(_vector_fields(case))
        pinned = dict(_vector_fields(case))
        if "callback" in pinned:
            # signature and policy accepted, object stored; the callback host is not loopback, so the
            # emulator does not call it (it never reaches out) and answers as OSS does for a dead callback
            assert ok.status_code == 203 and "<Code>CallbackFailed</Code>" in ok.text, ok.text
        else:
            expected = {"200": 200, "201": 201}.get(pinned.get("success_action_status"), 204)
            assert ok.status_code == expected, ok.text
        bad_sig = send(_vector_fields(case, signature=_flip(case["signature"])))
        assert bad_sig.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in bad_sig.text
        bad_policy = send(_vector_fields(case, policy_b64=_flip(case["policy_b64"])))
        assert bad_policy.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in bad_policy.text
