"""PostObject form fields become object headers like OSS; repeated conditioned fields; redirects; the
Host check against DNS rebinding; the emulator stays runnable and independent."""

import ast
import base64
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import BUCKET, make_form, multipart, oss2_bucket

ROOT = Path(__file__).resolve().parents[2]


def post(emulator, fields, data=b"hello", file_type="text/plain"):
    body, ctype = multipart(fields, data, "a.txt", file_type)
    return requests.post(emulator.bucket_url + "/", data=body, headers={"Content-Type": ctype}, timeout=10,
                         allow_redirects=False)


def code(response):
    match = re.search(r"<Code>([^<]*)</Code>", response.text)
    return match.group(1) if match else None


def get(emulator, key, **kw):
    return requests.get(f"{emulator.bucket_url}/{key}", timeout=5, **kw)


# --- stored headers ----------------------------------------------------------------------------------------
def test_form_fields_are_stored_and_returned_as_object_headers(emulator):
    extra = [("Content-Disposition", 'attachment; filename="a b.txt"'), ("Cache-Control", "max-age=60, public"),
             ("Content-Encoding", "identity"), ("Expires", "Wed, 21 Oct 2099 07:28:00 GMT"),
             ("x-oss-object-acl", "public-read"), ("x-oss-storage-class", "IA"),
             ("x-oss-meta-team", "blue  green"), ("X-Oss-Meta-City", "Zürich 東京")]
    assert post(emulator, make_form(key="uploads/h.txt", extra_fields=extra)).status_code == 204
    for response in (get(emulator, "uploads/h.txt"), requests.head(f"{emulator.bucket_url}/uploads/h.txt", timeout=5)):
        raw = {k.lower(): v for k, v in response.raw.headers.items()}
        for name, value in extra:
            # header bytes on the wire are the form's UTF-8 bytes (http.client decodes them as latin-1)
            assert raw[name.lower()].encode("latin-1").decode("utf-8") == value, name
    assert oss2_bucket(emulator).head_object("uploads/h.txt").headers["x-oss-meta-team"] == "blue  green"


def test_form_acl_and_storage_class_are_validated(emulator):
    r = post(emulator, make_form(key="uploads/acl.txt", extra_fields=[("x-oss-object-acl", "everyone")]))
    assert (r.status_code, code(r)) == (400, "InvalidArgument")
    r = post(emulator, make_form(key="uploads/sc.txt", extra_fields=[("x-oss-storage-class", "Cheap")]))
    assert (r.status_code, code(r)) == (400, "InvalidArgument")
    r = post(emulator, make_form(key="uploads/meta.txt", extra_fields=[("x-oss-meta-a b", "v")]))
    assert (r.status_code, code(r)) == (400, "InvalidArgument")
    assert get(emulator, "uploads/acl.txt").status_code == 404 and get(emulator, "uploads/sc.txt").status_code == 404


def test_control_characters_in_a_form_value_cannot_inject_headers(emulator):
    extra = [("x-oss-meta-note", "a\r\nSet-Cookie: pwned=1"), ("Cache-Control", "x\nLocation: https://evil.example")]
    assert post(emulator, make_form(key="uploads/inj.txt", extra_fields=extra)).status_code == 204
    r = get(emulator, "uploads/inj.txt")
    assert r.status_code == 200 and "Set-Cookie" not in r.headers and "Location" not in r.headers
    assert r.headers["x-oss-meta-note"] == "a%0D%0ASet-Cookie: pwned=1"


def test_public_read_write_from_a_form_makes_the_object_anonymously_writable(emulator):
    """The attack: a field the policy does not pin (x-oss-object-acl) is accepted, as by real OSS."""
    fields = make_form(key="uploads/victim.txt", extra_fields=[("x-oss-object-acl", "public-read-write")])
    assert post(emulator, fields, b"original").status_code == 204
    assert requests.put(f"{emulator.bucket_url}/uploads/victim.txt", data=b"defaced", timeout=5).status_code == 200
    assert get(emulator, "uploads/victim.txt").content == b"defaced"
    # without the ACL field the same anonymous PUT is refused and nothing changes
    assert post(emulator, make_form(key="uploads/safe.txt"), b"original").status_code == 204
    r = requests.put(f"{emulator.bucket_url}/uploads/safe.txt", data=b"defaced", timeout=5)
    assert (r.status_code, code(r)) == (403, "AccessDenied")
    assert get(emulator, "uploads/safe.txt").content == b"original"
    # and a policy that pins the ACL keeps the attacker out
    pinned = make_form(key="uploads/pinned.txt", conditions=[["eq", "$x-oss-object-acl", "private"]],
                       extra_fields=[("x-oss-object-acl", "public-read-write")])
    r = post(emulator, pinned)
    assert (r.status_code, code(r)) == (403, "AccessDenied") and "x-oss-object-acl" in r.text


# --- repeated fields ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditions,field,good,bad", [
    ([["eq", "$x-oss-object-acl", "private"]], "x-oss-object-acl", "private", "public-read-write"),
    ([["starts-with", "$Cache-Control", "max-age="]], "Cache-Control", "max-age=5", "no-store"),
    ([["in", "$content-type", ["text/plain"]]], "Content-Type", "text/plain", "text/html"),
    ([["not-in", "$x-oss-meta-x", ["evil"]]], "x-oss-meta-x", "fine", "evil"),
])
def test_every_occurrence_of_a_conditioned_field_must_pass(emulator, conditions, field, good, bad):
    for i, values in enumerate(([good, bad], [bad, good], [good, good.upper() if field != "x-oss-meta-x" else bad])):
        fields = make_form(key=f"uploads/dup{i}.txt", conditions=conditions,
                           extra_fields=[(field, v) for v in values])
        r = post(emulator, fields)
        assert (r.status_code, code(r)) == (403, "AccessDenied"), values
        assert get(emulator, f"uploads/dup{i}.txt").status_code == 404
    ok = make_form(key="uploads/dup-ok.txt", conditions=conditions, extra_fields=[(field, good), (field, good)])
    assert post(emulator, ok).status_code == 204


def test_a_second_key_field_cannot_escape_the_prefix(emulator):
    fields = make_form(key="uploads/a.txt", conditions=[["starts-with", "$key", "uploads/"]],
                       extra_fields=[("key", "index.html")])
    r = post(emulator, fields)
    assert (r.status_code, code(r)) == (403, "AccessDenied")
    fields = make_form(key="uploads/b.txt", conditions=[{"key": "uploads/b.txt"}], extra_fields=[("KEY", "x.html")])
    assert code(post(emulator, fields)) == "AccessDenied"
    assert get(emulator, "index.html").status_code == 404 and get(emulator, "x.html").status_code == 404


# --- success_action_redirect --------------------------------------------------------------------------------
def test_redirect_when_non_empty_ignored_when_empty(emulator):
    r = post(emulator, make_form(key="uploads/r.txt", extra_fields=[("success_action_redirect",
                                                                     "https://app.example.com/done?x=1")]))
    assert r.status_code == 303 and r.content == b""
    assert r.headers["Location"].startswith("https://app.example.com/done?x=1&bucket=emu-bucket&key=uploads%2Fr.txt")
    assert get(emulator, "uploads/r.txt").content == b"hello"
    r = post(emulator, make_form(key="uploads/e.txt", extra_fields=[("success_action_redirect", ""),
                                                                    ("success_action_status", "201")]))
    assert r.status_code == 201 and "Location" not in r.headers
    r = post(emulator, make_form(key="uploads/e2.txt", extra_fields=[("success_action_redirect", "")]))
    assert r.status_code == 204 and "Location" not in r.headers
    # a refused upload is not redirected
    r = post(emulator, make_form(key="uploads/no.txt", conditions=[["content-length-range", 1, 2]],
                                 extra_fields=[("success_action_redirect", "https://app.example.com/done")]))
    assert r.status_code == 400 and "Location" not in r.headers


# --- Host header (DNS rebinding) ------------------------------------------------------------------------------
def raw_request(emulator, host, path=None, method="GET"):
    sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=5)
    try:
        head = f"{method} {path or '/' + BUCKET + '/pub.txt'} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        sock.sendall(head.encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1].decode("utf-8", "replace")


def test_only_the_emulators_own_loopback_host_is_answered(emulator):
    oss2_bucket(emulator).put_object("pub.txt", b"public data")
    port = emulator.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}",
                 f"{BUCKET}.oss-cn-hangzhou.localhost:{port}"):
        path = "/pub.txt" if host.startswith(BUCKET) else None
        status, body = raw_request(emulator, host, path)
        assert (status, body) == (200, "public data"), host
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1",
                 f"localhost.evil.example:{port}", f"{BUCKET}.evil.example:{port}", f"10.0.0.1:{port}",
                 f"127.0.0.1:{port}:1", f"[::1]x:{port}"):
        status, body = raw_request(emulator, host)
        assert status == 403 and "<Code>AccessDenied</Code>" in body and "public data" not in body, host
        assert "<ArgumentName>Host</ArgumentName>" in body
    # also the public key and PostObject
    status, _ = raw_request(emulator, "evil.example", "/_emulator/callback_pub_key.pem")
    assert status == 403
    body, ctype = multipart(make_form(key="uploads/rebind.txt"), b"x")
    r = requests.post(emulator.bucket_url + "/", data=body, headers={"Content-Type": ctype, "Host": "evil.example"},
                      timeout=5)
    assert r.status_code == 403 and get(emulator, "uploads/rebind.txt").status_code == 404


# --- runnable and independent ---------------------------------------------------------------------------------
def test_python_m_emulator_help_runs():
    out = subprocess.run([sys.executable, "-m", "emulator", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "usage:" in out.stdout and "--account" in out.stdout


def test_emulator_never_imports_ossdirect_or_shared():
    for path in sorted((ROOT / "emulator").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                assert not name.split(".")[0] in ("ossdirect", "shared", "devstack", "tools"), (path.name, name)
    code_ = ("import sys, emulator, emulator.app, emulator.header_auth, emulator.multipart; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ossdirect', 'shared')))")
    out = subprocess.run([sys.executable, "-c", code_], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
