"""Attacks on the local stack itself (issue 9, §6): any local process or a DNS-rebinding page must not be
able to replace the page, change the bucket's CORS/website settings, or stall both functions with a form
that makes the emulator's parser do quadratic work. Over real HTTP against `LocalStack`."""

import http.client
import time

import pytest
import requests

from devstack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("stack-attacks")) as s:
        yield s


def page_bytes(stack):
    return requests.get(stack.page_url, timeout=10).content


@pytest.mark.parametrize("method,path,body", [
    ("PUT", "index.html", b"<script>alert(1)</script>"),
    ("PUT", "config.json", b'{"signatureUrl": "https://evil.example/"}'),
    ("DELETE", "index.html", b""),
    ("PUT", "?cors", b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
                     b"<AllowedMethod>PUT</AllowedMethod></CORSRule></CORSConfiguration>"),
    ("PUT", "?website", b"<WebsiteConfiguration><IndexDocument><Suffix>evil.html</Suffix></IndexDocument>"
                        b"</WebsiteConfiguration>"),
])
def test_anonymous_management_calls_cannot_change_the_site(stack, method, path, body):
    before = page_bytes(stack)
    config_before = requests.get(f"{stack.bucket_url}/config.json", timeout=10).content
    r = requests.request(method, f"{stack.bucket_url}/{path}", data=body, timeout=10)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert page_bytes(stack) == before
    assert requests.get(f"{stack.bucket_url}/config.json", timeout=10).content == config_before
    # forged signatures are refused the same way
    r = requests.request(method, f"{stack.bucket_url}/{path}", data=body, timeout=10,
                         headers={"Authorization": "OSS STS.LocalDevKeyId:bm90IGEgc2lnbmF0dXJl",
                                  "Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())})
    assert r.status_code == 403
    assert page_bytes(stack) == before


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "attacker.localhost.evil"])
def test_dns_rebinding_hosts_are_not_answered(stack, host):
    """A page on another site that rebinds its name to 127.0.0.1 sends its own Host header."""
    port = int(stack.emulator.url.rsplit(":", 1)[1])
    for method, path in (("GET", f"/{stack.bucket_url.rsplit('/', 1)[1]}/index.html"),
                         ("PUT", f"/{stack.bucket_url.rsplit('/', 1)[1]}/index.html")):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(method, path, body=b"x" if method == "PUT" else None, headers={"Host": host})
        response = conn.getresponse()
        text = response.read().decode()
        conn.close()
        assert response.status == 403 and "AccessDenied" in text, (host, method)
    assert b"<script>alert(1)</script>" not in page_bytes(stack)


def test_a_form_of_tiny_fields_is_refused_without_stalling_the_functions(stack):
    """8 MiB of empty fields used to cost ~10 s of CPU before any signature check, in the same process as
    both functions. Now the parser is linear and the cap counts names too: the form is refused, and the
    signature function keeps answering meanwhile (same run, no fixed threshold)."""
    boundary = "b0undary"
    part = f"--{boundary}\r\nContent-Disposition: form-data; name=\"\"\r\n\r\n\r\n".encode()
    body = part * (8 * 1024 * 1024 // len(part) + 10) + f"--{boundary}--\r\n".encode()
    t = time.perf_counter()
    baseline = requests.get(stack.signature_url, params={"filename": "a.png", "size": 5, "content_type": "image/png"},
                            timeout=10)
    baseline_s = time.perf_counter() - t
    assert baseline.status_code == 200
    r = requests.post(stack.bucket_url, data=body, timeout=60,
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 400 and "<Code>" in r.text
    t = time.perf_counter()
    after = requests.get(stack.signature_url, params={"filename": "a.png", "size": 5, "content_type": "image/png"},
                         timeout=10)
    assert after.status_code == 200
    assert time.perf_counter() - t < 50 * baseline_s + 1  # not stalled behind the parser


def test_huge_field_names_count_toward_the_pre_file_cap(stack):
    boundary = "b0undary"
    name = "n" * (7 * 1024)
    parts = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}{i}\"\r\n\r\nv\r\n".encode()
                     for i in range(1300))  # ~9 MiB of names, tiny values
    body = parts + f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n" \
                   f"--{boundary}--\r\n".encode()
    r = requests.post(stack.bucket_url, data=body, timeout=60,
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 400 and "MaxPOSTPreDataLengthExceeded" in r.text


# --- issue 18 item 4: the stack's identity is private, callbacks and forms are pinned ------------------
OLD_PUBLIC_IDENTITY = ("STS.LocalDevKeyId", "local-dev-secret-not-a-real-key", "local-dev-security-token")


def v1_form(identity, key, callback=None, expire_in=600):
    """A PostObject form signed (V1) with ``identity`` (key id, secret, token): what any holder can make."""
    import base64
    import hashlib
    import hmac
    import json

    expiration = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + expire_in))
    policy = base64.b64encode(json.dumps({"expiration": expiration, "conditions": [
        ["content-length-range", 0, 1 << 20]]}).encode()).decode()
    signature = base64.b64encode(hmac.new(identity[1].encode(), policy.encode(), hashlib.sha1).digest()).decode()
    fields = {"key": key, "OSSAccessKeyId": identity[0], "policy": policy, "Signature": signature,
              "x-oss-security-token": identity[2], "success_action_status": "200"}
    if callback:
        fields["callback"] = base64.b64encode(json.dumps(callback).encode()).decode()
    return fields


def test_the_stack_identity_is_random_per_data_dir_and_private(tmp_path):
    import json
    import os
    import stat

    from devstack import ROOT, load_credentials

    a, b = load_credentials(tmp_path / "a"), load_credentials(tmp_path / "b")
    assert tuple(a) != tuple(b) and len(a.access_key_secret) >= 30
    assert tuple(load_credentials(tmp_path / "a")) == tuple(a)  # kept for the data dir's life
    path = tmp_path / "a" / "emulator-credentials.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["access_key_secret"] == a.access_key_secret
    source = (ROOT / "devstack" / "__init__.py").read_text()
    assert not any(value in source for value in OLD_PUBLIC_IDENTITY[1:])


def test_the_old_public_identity_cannot_replace_the_page_or_its_config(stack):
    import oss2

    before, config_before = page_bytes(stack), requests.get(f"{stack.bucket_url}/config.json", timeout=10).content
    sdk = oss2.Bucket(oss2.StsAuth(*OLD_PUBLIC_IDENTITY), stack.emulator.url, stack.bucket_url.rsplit("/", 1)[1])
    with pytest.raises(oss2.exceptions.OssError) as refused:
        sdk.put_object("index.html", b"<script>alert(1)</script>")
    assert refused.value.status == 403
    # the cross-site form a web page can send (no CORS needed), signed with the once-public constants
    r = requests.post(stack.bucket_url, data=v1_form(OLD_PUBLIC_IDENTITY, "config.json"),
                      files={"file": ("config.json", b'{"signatureUrl": "https://evil.example/"}')},
                      headers={"Origin": stack.page_origin}, timeout=10)
    assert r.status_code == 403 and "<Code>" in r.text
    assert page_bytes(stack) == before
    assert requests.get(f"{stack.bucket_url}/config.json", timeout=10).content == config_before


class _Listener:
    """A loopback HTTP server that counts the requests it gets (a local service the attacker aims at)."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hits.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("target", ["listener", "callback-function-other-path"])
def test_a_callback_to_a_url_the_stack_did_not_configure_is_never_requested(stack, target):
    """Even a validly signed upload (here with the stack's own identity) cannot make the emulator POST to
    another loopback service: it fails as OSS fails an unreachable callback, without connecting."""
    listener = _Listener()
    try:
        url = listener.url + "/admin/reset" if target == "listener" else stack.callback.url + "/admin"
        callback = {"callbackUrl": url, "callbackBody": "bucket=${bucket}&object=${object}",
                    "callbackBodyType": "application/x-www-form-urlencoded"}
        key = f"uploads/ssrf-{target}.txt"
        r = requests.post(stack.bucket_url, data=v1_form(tuple(stack.credentials), key, callback),
                          files={"file": ("a.txt", b"hello")}, timeout=15)
        assert r.status_code == 203 and "<Code>CallbackFailed</Code>" in r.text, r.text
        assert listener.hits == []
    finally:
        listener.close()


def signed_form(stack):
    return requests.get(stack.signature_url, params={"filename": "a.png", "size": 5, "content_type": "image/png"},
                        headers={"Origin": stack.page_origin}, timeout=10).json()


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
def test_a_form_posted_from_another_origin_is_refused(stack, origin):
    form = signed_form(stack)
    r = requests.post(form["host"], data=form["field_list"], files={"file": ("a.png", b"\x89PNG\r", "image/png")},
                      headers={"Origin": origin}, timeout=15)
    assert r.status_code == 403 and "<Code>AccessForbidden</Code>" in r.text and "Origin" in r.text
    assert requests.head(f"{stack.bucket_url}/{form['key']}", timeout=10).status_code == 404
    # the page's own origin still uploads
    form = signed_form(stack)
    r = requests.post(form["host"], data=form["field_list"], files={"file": ("a.png", b"\x89PNG\r", "image/png")},
                      headers={"Origin": stack.page_origin}, timeout=15)
    assert r.status_code in (200, 204), r.text
