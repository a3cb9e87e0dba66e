"""`make stack` as a new user meets it (issue 22): ports that move together, a taken port in one sentence,
the banner's token command working exactly as printed, and real HTTP reason phrases from the adapter."""

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devstack.__main__ import TOKEN_COMMAND, main
from ossdirect.app.wsgi import wsgi_app

ROOT = Path(__file__).resolve().parent.parent


def free_block(n=5):
    """A base port with n free ports after it (checked by binding each)."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
        probe.close()
        if base + n >= 65535:
            continue
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise RuntimeError("no free block of ports")


@pytest.mark.parametrize("offset, what, flag", [(0, "OSS emulator", "--emulator-port"),
                                                (1, "signature function", "--signature-port"),
                                                (3, "token issuer", "--token-port")])
def test_a_taken_port_is_one_sentence_naming_it_and_ports_follow_the_emulator(capsys, tmp_path, offset, what, flag):
    base = free_block()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", base + offset))
    blocker.listen()
    try:
        code = main(["--emulator-port", str(base), "--auth", "jwt", "--data-dir", str(tmp_path)])
    finally:
        blocker.close()
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (f"port {base + offset} ({what}) on 127.0.0.1 is already in use: stop what runs there, or choose "
                   f"other ports (--emulator-port N moves them all; {flag} moves this one)")


def test_the_banner_token_command_works_as_printed(tmp_path):
    base = free_block()
    env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "devstack", "--auth", "jwt", "--emulator-port", str(base),
                             "--data-dir", str(tmp_path / "stack"), "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner, deadline = "", time.monotonic() + 60
        while "Ctrl-C" not in banner:
            assert time.monotonic() < deadline and proc.poll() is None, banner
            banner += proc.stdout.readline()
        urls = dict(re.findall(r"^\s+(signature function|token issuer):\s+(\S+)", banner, re.M))
        assert urls["signature function"] == f"http://127.0.0.1:{base + 1}/"
        assert urls["token issuer"] == f"http://127.0.0.1:{base + 3}"  # moved with the emulator's port
        command = re.search(r"token for scripts:\s+(.+?)\s+\(or GET", banner).group(1)
        assert command == TOKEN_COMMAND + " alice --data-dir " + str(tmp_path / "stack")
        argv = shlex.split(command)
        if not (ROOT / argv[0]).exists():  # a checkout whose venv lives elsewhere: the same module, this python
            argv[0] = sys.executable
        token = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert token.returncode == 0, token.stderr
        form = requests.get(urls["signature function"], params={"filename": "a.png", "size": 10,
                                                                "content_type": "image/png"},
                            headers={"Authorization": f"Bearer {token.stdout.strip()}"}, timeout=10)
        assert form.status_code == 200 and form.json()["user"] == "alice"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("status, phrase", [(401, "Unauthorized"), (404, "Not Found"), (409, "Conflict"),
                                            (429, "Too Many Requests"), (501, "Not Implemented"),
                                            (503, "Service Unavailable"), (203, "Non-Authoritative Information")])
def test_the_wsgi_adapter_sends_real_reason_phrases(status, phrase):
    app = wsgi_app(lambda event, ctx: {"statusCode": status, "headers": {}, "body": ""})
    seen = []
    app({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "wsgi.input": __import__("io").BytesIO(b""),
         "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": "80"},
        lambda line, headers: seen.append(line))
    assert seen == [f"{status} {phrase}"]
