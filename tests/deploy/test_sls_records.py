"""The SLS record store against a loopback stand-in that decodes and checks each PutLogs independently."""

import base64
import hashlib
import hmac
import json
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from fixtures import base_env, emulated_env
from support import fc_event

from ossdirect.app.handlers import CallbackApp

AK, SK, TOKEN = "STS.slstestid", "sls-test-secret", "sls-test-token"


def read_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def decode(buf):
    """Minimal protobuf reader: {field: [values]} (bytes for length-delimited, int for varint)."""
    out, i = {}, 0
    while i < len(buf):
        tag, i = read_varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = read_varint(buf, i)
        elif wire == 2:
            size, i = read_varint(buf, i)
            value, i = buf[i:i + size], i + size
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


class StandIn:
    def __init__(self, mode="ok"):
        self.mode, self.received, self.problems = mode, [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    outer.check(self.path, self.headers, body)
                except AssertionError as exc:
                    outer.problems.append(str(exc))
                if outer.mode == "slow":
                    time.sleep(2)
                status = 500 if outer.mode == "error" or outer.problems else 200
                payload = json.dumps({"errorCode": "InternalServerError"}).encode() if status != 200 else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def check(self, path, headers, body):
        assert path == "/logstores/records/shards/lb", path
        assert headers["Host"] == f"proj.127.0.0.1:{self.port}"
        assert headers["x-log-apiversion"] == "0.6.0" and headers["x-log-signaturemethod"] == "hmac-sha1"
        assert headers["x-acs-security-token"] == TOKEN
        assert headers["Content-MD5"] == hashlib.md5(body).hexdigest().upper()
        assert headers["x-log-bodyrawsize"] == str(len(body))
        signed = {k.lower(): v for k, v in headers.items() if k.lower().startswith(("x-log-", "x-acs-"))}
        text = "POST\n{}\n{}\n{}\n{}{}".format(
            headers["Content-MD5"], headers["Content-Type"], headers["Date"],
            "".join(f"{k}:{signed[k]}\n" for k in sorted(signed)), path)
        expected = base64.b64encode(hmac.new(SK.encode(), text.encode(), hashlib.sha1).digest()).decode()
        assert headers["Authorization"] == f"LOG {AK}:{expected}", "signature mismatch"
        group = decode(body)
        assert group[3] == [b"ossdirect"]
        (log,) = [decode(raw) for raw in group[1]]
        assert abs(log[1][0] - time.time()) < 60
        contents = {}
        for raw in log[2]:
            kv = decode(raw)
            contents[kv[1][0].decode()] = kv[2][0].decode()
        self.received.append(contents)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.close()


CTX = types.SimpleNamespace(credentials=types.SimpleNamespace(access_key_id=AK, access_key_secret=SK,
                                                              security_token=TOKEN))


@pytest.fixture
def bucket(tmp_path):
    """The emulated bucket the callback confirms each object with (HeadObject, same role credentials)."""
    from support import EmulatedBucket

    emulated = EmulatedBucket(tmp_path / "oss", "photo-bucket", account=(AK, SK, TOKEN))
    for upload_id in ("u-sls", "u-fail", "u-nocreds"):
        emulated.put(f"uploads/{upload_id}.png", b"hello", upload_id=upload_id, filename="é.png")
    yield emulated
    emulated.close()


def callback_event(signer, key_server, upload_id):
    body = urlencode({"bucket": "photo-bucket", "object": f"uploads/{upload_id}.png", "etag": "E", "size": "5",
                      "mimeType": "image/png", "upload_id": upload_id, "filename": "é.png"}).encode()
    key_url = base64.b64encode(f"{key_server.url}/_emulator/callback_pub_key.pem".encode()).decode()
    headers = {"Authorization": signer.sign("/cb", "", body), "X-Oss-Pub-Key-Url": key_url,
               "Content-Type": "application/x-www-form-urlencoded"}
    return fc_event("POST", "/cb", headers=headers, body=body.decode(), base64_body=False)


def app_for(port, key_server, bucket, timeout="1"):
    return CallbackApp(emulated_env(bucket, f"sls://proj/records?endpoint=http://127.0.0.1:{port}&timeout={timeout}",
                                    key_server))


def test_record_reaches_sls_signed_and_decodable(stand_in, rsa_signer, key_server, bucket):
    app = app_for(stand_in.port, key_server, bucket)
    response = app(callback_event(rsa_signer, key_server, "u-sls"), CTX)
    assert response["statusCode"] == 200, response["body"]
    assert stand_in.problems == []
    (contents,) = stand_in.received
    assert contents["upload_id"] == "u-sls" and contents["key"] == "uploads/u-sls.png"
    assert contents["filename"] == "é.png" and contents["size"] == "5" and contents["record_id"].startswith("rec_")
    assert contents["etag"] == "5D41402ABC4B2A76B9719D911017C592" and contents["source"] == "callback"  # OSS's facts
    # a replay within the instance is answered from memory, not written twice
    again = app(callback_event(rsa_signer, key_server, "u-sls"), CTX)
    assert json.loads(again["body"])["replayed"] is True and len(stand_in.received) == 1


@pytest.mark.parametrize("mode", ["error", "slow"])
def test_sls_failure_is_503_not_a_crash(rsa_signer, key_server, bucket, mode):
    server = StandIn(mode)
    try:
        app = app_for(server.port, key_server, bucket, timeout="0.5")
        response = app(callback_event(rsa_signer, key_server, "u-fail"), CTX)
        assert response["statusCode"] == 503
        assert json.loads(response["body"])["code"] == "RecordStoreUnavailable"
        assert SK not in response["body"] and TOKEN not in response["body"]
    finally:
        server.close()


def test_missing_credentials_is_503(stand_in, rsa_signer, key_server, bucket):
    response = app_for(stand_in.port, key_server, bucket)(callback_event(rsa_signer, key_server, "u-nocreds"), None)
    assert response["statusCode"] == 503 and json.loads(response["body"])["code"] == "CredentialsUnavailable"
    assert stand_in.received == []


@pytest.mark.parametrize("url", ["sls://", "sls://proj", "sls://proj/store", "sls://proj/a/b?endpoint=x",
                                 "sls://proj/store?endpoint=x&timeout=soon"])
def test_bad_sls_urls_are_config_errors(url, key_server):
    app = CallbackApp(base_env(RECORDS=url))
    response = app(fc_event("POST", "/"), CTX)
    assert response["statusCode"] == 503 and "OSSDIRECT_RECORDS" in json.loads(response["body"])["message"]
