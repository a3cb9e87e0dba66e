"""`make stack` (python -m devstack) as a new user sees it, the page's favicon, and `make test`'s browser check."""

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

import devstack
from devstack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
BANNER_FIRST = "ossdirect local stack is running"
BANNER_LAST = "Open the upload page in a browser. Ctrl-C stops everything."
CHROMIUM = os.environ.get("OSSDIRECT_CHROMIUM", "/usr/bin/chromium")


class StackProcess:
    """`python -m devstack` on free loopback ports with a temp data dir; stdout and stderr as one stream."""

    def __init__(self, data_dir, *args):
        env = dict(os.environ, PYTHONUNBUFFERED="1", ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "--emulator-port", "0", "--signature-port", "0",
             "--callback-port", "0", "--process-port", "0", "--data-dir", str(data_dir), *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.before_banner, self.banner = self._until_banner()
        self.urls = dict(re.findall(r"^  ([a-zA-Z ()]+?):\s+(\S+)", "\n".join(self.banner), re.M))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _next(self, deadline):
        try:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("timed out waiting for output") from None
        if line is None:
            raise AssertionError(f"devstack exited ({self.proc.wait()})")
        return line

    def _until_banner(self, timeout=30):
        deadline, seen = time.monotonic() + timeout, []
        while True:
            seen.append(self._next(deadline))
            if seen[-1] == BANNER_LAST:
                seen.append(self._next(deadline))  # the banner's closing blank line
                first = max(i for i, line in enumerate(seen) if line == BANNER_FIRST)
                start = first - 1 if first and seen[first - 1] == "" else first
                return seen[:start], seen[start:]

    def take(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        return [self._next(deadline) for _ in range(n)]

    def stop(self):
        """SIGTERM, then every remaining line (the stack prints "stopped" last)."""
        self.proc.terminate()
        rest = []
        try:
            self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        while (line := self.lines.get(timeout=5)) is not None:
            rest.append(line)
        return rest


@pytest.fixture
def run_stack(tmp_path):
    stacks = []

    def run(*args):
        stacks.append(StackProcess(tmp_path / f"data{len(stacks)}", *args))
        return stacks[-1]

    yield run
    for stack in stacks:
        if stack.proc.poll() is None:
            stack.proc.kill()
            stack.proc.wait()


def get(url, method="GET", headers=None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def request_status(line):
    """The status code a per-request line reports: `emulator GET /path 200 …` or `ossdirect {json}`."""
    name, _, rest = line.partition(" ")
    if name == "emulator":
        return int(rest.split()[2])
    if name == "ossdirect":
        return json.loads(rest)["status"]
    raise AssertionError(f"not a request line: {line!r}")


# --- make stack's output --------------------------------------------------------------------------
def test_banner_first_then_one_line_per_request(run_stack):
    stack = run_stack()
    assert stack.before_banner == [], "setup noise before the banner"
    assert stack.banner[0] == stack.banner[-1] == "" and stack.banner[1] == BANNER_FIRST
    assert len(stack.banner) == 11  # the parts, one per line, and that sign-in is off
    assert any(line.strip().startswith("sign-in:            off") for line in stack.banner)
    page, signature = stack.urls["upload page"], stack.urls["signature function"]

    assert get(page)[0] == 200
    assert get(signature + "?filename=a.txt&size=3&content_type=text/plain")[0] == 200
    assert get(signature + "limits")[0] == 200
    assert get(stack.urls["OSS emulator"] + "/ossdirect-local/missing.txt")[0] == 404

    lines = stack.take(4)
    assert lines[0].startswith("emulator GET /ossdirect-local/index.html 200 ")
    assert json.loads(lines[1].partition(" ")[2])["fn"] == "signature"
    assert json.loads(lines[2].partition(" ")[2])["path"] == "/limits"
    assert lines[3].startswith("emulator GET /ossdirect-local/missing.txt 404 ")
    time.sleep(0.5)  # a second line for any of them (werkzeug's access log, oss2) would be here by now
    assert stack.stop() == ["stopped"]


def test_verbose_shows_the_details(run_stack):
    stack = run_stack("--verbose")
    setup = "\n".join(stack.before_banner)
    assert "emulator PUT /ossdirect-local/index.html 200" in setup  # the bucket setup's own requests
    assert "oss2.api Exception: {'status': 404" in setup  # oss2's HEAD-before-upload on a fresh bucket
    assert 'werkzeug 127.0.0.1 - - [' in setup

    assert get(stack.urls["upload page"])[0] == 200
    lines = stack.take(2)
    assert lines[0].startswith("emulator GET /ossdirect-local/index.html 200 ")
    assert lines[1].startswith("werkzeug ") and '"GET /ossdirect-local/index.html HTTP/1.1" 200' in lines[1]
    stack.stop()


def test_quiet_drops_request_lines(run_stack):
    stack = run_stack("--quiet")
    assert stack.before_banner == []
    assert get(stack.urls["upload page"])[0] == 200
    time.sleep(0.5)
    assert stack.stop() == ["stopped"]


# --- the favicon ------------------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.icons = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and "icon" in (attrs.get("rel") or "").split():
            self.icons.append(attrs["href"])


def test_page_links_a_favicon_the_bucket_serves(tmp_path):
    with LocalStack(tmp_path) as stack:
        status, _, html = get(stack.page_url)
        assert status == 200
        links = _Links()
        links.feed(html.decode())
        assert links.icons == ["favicon.svg"]
        status, headers, body = get(urllib.parse.urljoin(stack.page_url, links.icons[0]))
        assert status == 200
        assert headers["Content-Type"] == "image/svg+xml"
        assert body.startswith(b"<svg ")


@pytest.mark.browser
def test_page_load_has_no_failed_request(run_stack, browser):
    """Without a linked icon chromium asks the emulator for /favicon.ico (a 404 the page itself never sees)."""
    stack = run_stack()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(stack.urls["upload page"])
        page.wait_for_load_state("networkidle")
        lines = []
        deadline = time.monotonic() + 10
        while not any("favicon" in line for line in lines):
            lines.append(stack._next(deadline))
        time.sleep(0.5)
    finally:
        context.close()
    lines += stack.stop()[:-1]
    assert [line for line in lines if request_status(line) >= 400] == []
    assert any(line.startswith("emulator GET /ossdirect-local/favicon.svg 200 ") for line in lines)


# --- what the stack hands the callback function ------------------------------------------------------
def test_callback_gets_the_oss_endpoint_and_credentials(tmp_path, monkeypatch):
    seen = {}

    class RecordingCallback:
        def __init__(self, environ):
            seen["environ"] = environ

        def __call__(self, event, context):
            seen["credentials"] = context.credentials
            return {"statusCode": 200, "body": "{}"}

    monkeypatch.setattr(devstack, "CallbackApp", RecordingCallback)
    with LocalStack(tmp_path) as stack:
        assert get(stack.callback_url, "POST")[0] == 200
        assert seen["environ"]["OSSDIRECT_OSS_ENDPOINT"] == stack.bucket_url
        assert stack.bucket_url == f"{stack.emulator.url}/ossdirect-local"
        generated = json.loads((tmp_path / "emulator-credentials.json").read_text())
    creds = seen["credentials"]
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == (
        generated["access_key_id"], generated["access_key_secret"], generated["security_token"])


# --- make test on a machine without chromium ---------------------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("make"),
                    reason="needs root (to drop to an unprivileged user), setpriv and make")
def test_make_test_without_chromium_and_not_root_stops_at_once_naming_the_command():
    started = time.monotonic()
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "make", "--no-print-directory", "test"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "OSSDIRECT_CHROMIUM": "/nonexistent/chromium",
             "HOME": "/nonexistent"})
    assert result.returncode != 0
    assert time.monotonic() - started < 5  # at once: no virtualenv, no pytest
    assert "\n    apt-get install -y chromium wabt\n" in result.stderr
    assert "pytest" not in result.stdout + result.stderr
    assert "-m venv" not in result.stdout


def test_ensure_chromium_passes_when_the_browser_is_there(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    result = subprocess.run(["sh", str(ROOT / "devstack/ensure-chromium.sh")], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "OSSDIRECT_CHROMIUM": str(fake)}, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")



# --- a private bucket (issue 24): the default with sign-in on ------------------------------------------
def test_private_bucket_by_default_with_sign_in_files_route_downloads(tmp_path):
    import requests

    with LocalStack(tmp_path, auth="jwt") as stack:
        assert stack.sdk().get_bucket_acl().acl == "private" and stack.bucket_acl == "private"
        # the page's own files stay readable (published public-read), and it knows uploads have no public link
        for name in ("index.html", "app.js", "config.json"):
            assert get(f"{stack.bucket_url}/{name}")[0] == 200, name
        assert json.loads(get(f"{stack.bucket_url}/config.json")[2])["privateFiles"] is True

        def signed_in(user, path, method="GET", **kw):
            headers = {"Origin": stack.page_origin, "Authorization": f"Bearer {stack.token(user)}"}
            return requests.request(method, stack.signature_url + path, headers=headers, timeout=10, **kw)

        data = os.urandom(2048) + "naïve".encode()
        form = signed_in("alice", "", params={"filename": "Q3 résumé.pdf", "size": len(data),
                                              "content_type": "application/pdf"}).json()
        posted = requests.post(form["url"], data=form["field_list"],
                               files={"file": ("Q3 résumé.pdf", data, "application/pdf")}, timeout=15)
        assert posted.status_code == 200, posted.text
        status, _, body = get(f"{stack.bucket_url}/{urllib.parse.quote(form['key'])}")
        assert status == 403 and b"<Code>AccessDenied</Code>" in body  # the plain URL: refused
        assert stack.public_get(form["key"])[0] == 403

        signed = signed_in("alice", f"files/{form['upload_id']}/url").json()
        got = requests.get(signed["url"], timeout=10)
        assert got.status_code == 200 and got.content == data  # the exact bytes
        disposition = got.headers["Content-Disposition"]
        assert disposition.startswith("attachment") and urllib.parse.quote("Q3 résumé.pdf") in disposition
        refused = signed_in("bob", f"files/{form['upload_id']}/url")
        assert (refused.status_code, refused.json()["code"]) == (404, "FileNotFound")  # not bob's
        assert stack.get_object(form["key"]) == data  # the stack's own signed read


def test_bucket_acl_can_be_chosen(tmp_path):
    with LocalStack(tmp_path / "open") as stack:  # no sign-in: public-read, the page links each upload
        assert stack.sdk().get_bucket_acl().acl == "public-read"
        assert "privateFiles" not in json.loads(get(f"{stack.bucket_url}/config.json")[2])
    with LocalStack(tmp_path / "closed", bucket_acl="private") as stack:
        assert stack.sdk().get_bucket_acl().acl == "private"
        stack.sdk().put_object("uploads/x.txt", b"x")
        assert stack.public_get("uploads/x.txt")[0] == 403 and get(stack.page_url)[0] == 200
    with pytest.raises(ValueError):
        LocalStack(tmp_path / "bad", bucket_acl="public-read-write")
