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
