"""The `ossdirect` command against the local stack: uploads (20 files, one of 200 MB, records checked, peak
memory), --json, a network failure mid-file retried, refusals and their exit codes, explain, check-config,
verify-callback, completion."""

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devstack import LocalStack
from ossdirect.client.cli import main

ROOT = Path(__file__).resolve().parent.parent
OSSDIRECT = shutil.which("ossdirect", path=os.path.dirname(sys.executable)) or "ossdirect"
TYPES = "image/*,text/plain,application/octet-stream"
BIG = 200 * 1024 * 1024
MiB = 1024 * 1024
# the console script runs this tree's package, whichever checkout it was installed from
TREE_ENV = {"PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)])}


def run_cli(*args, env=None, timeout=300):
    """The console script as a user runs it; returns (exit code, stdout, stderr, peak RSS in bytes)."""
    full_env = dict(os.environ, **TREE_ENV, **(env or {}))
    proc = subprocess.Popen([OSSDIRECT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                            cwd=ROOT)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def run_cli_measured(*args, timeout=600):
    """Run the console script; (exit code, stdout, its peak RSS in bytes). The peak is the process's own
    VmHWM, polled from /proc (getrusage's maxrss of a child also counts the forking parent's pages)."""
    import time

    proc = subprocess.Popen([OSSDIRECT, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
                            env=dict(os.environ, **TREE_ENV))
    peak, chunks = 0, []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.01)
    proc.wait(timeout=5)
    reader.join(5)
    return proc.returncode, chunks[0].decode() if chunks else "", peak


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {"OSSDIRECT_MAX_BYTES": str(300 * MiB), "OSSDIRECT_CONTENT_TYPES": TYPES}
    with LocalStack(tmp_path_factory.mktemp("cli-stack"), env=env) as s:
        yield s


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """20 files of mixed sizes and types, one of 200 MB (written in 1 MiB blocks, never held whole)."""
    d = tmp_path_factory.mktemp("cli-files")
    sizes = [1, 10, 100, 1000, 4096, 65536, 100_000, 1 * MiB, 3 * MiB + 7, 5 * MiB, 12345, 777, 2, 50_000,
             8 * MiB, 300_000, 9, 2 * MiB + 1, 123_456, BIG]
    exts = [".txt", ".png", ".bin", ".jpg"]
    paths = []
    for i, size in enumerate(sizes):
        p = d / f"file-{i:02d}{exts[i % len(exts)]}"
        block = os.urandom(min(size, MiB))
        with open(p, "wb") as f:
            left = size
            while left:
                f.write(block[:left])
                left -= min(left, len(block))
        paths.append(p)
    return paths


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest().upper()


def multipart_etag(path, part=8 * MiB):
    """OSS's ETag of a multipart object: MD5 of the parts' MD5s, then -<number of parts>."""
    digests = []
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(part), b""):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest().upper()}-{len(digests)}"


def test_upload_20_files_one_of_200_mb_recorded_json_output_and_peak_memory(stack, files):
    code, out, peak = run_cli_measured("upload", *map(str, files), "--signature-url", stack.signature_url,
                                       "--json", "--progress", "--parallel", "4")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] is True and report["exit_code"] == 0
    assert report["summary"]["files"] == 20 and report["summary"]["done"] == 20
    by_upload_id = {r["upload_id"]: r for r in stack.records()}
    for path, entry in zip(files, report["files"]):  # in the order given
        assert entry["path"] == str(path) and entry["state"] == "done", entry
        assert entry["size"] == path.stat().st_size
        record = by_upload_id[entry["upload_id"]]  # recorded once, by the callback function
        assert record["key"] == entry["key"] == entry["record"]["key"]
        # the 200 MB file is above the service's multipart threshold (64 MiB): it went in 8 MiB parts
        etag = md5_of(path) if path.stat().st_size <= 64 * MiB else multipart_etag(path)
        assert ("multipart" in entry) == (path.stat().st_size > 64 * MiB)
        assert record["size"] == path.stat().st_size and record["etag"] == etag
        assert record["filename"] == path.name
    assert len({e["upload_id"] for e in report["files"]}) == 20
    # streaming: the whole process (interpreter, requests, rich, 4 threads) stays small for 200 MB
    assert peak < 60 * MiB, f"peak RSS {peak / MiB:.1f} MiB"
    print(f"peak RSS while uploading 20 files incl. 200 MB: {peak / MiB:.1f} MiB")


class CuttingProxy:
    """A loopback TCP proxy to the emulator that cuts the first ``cuts`` connections carrying a POST after
    ``after`` bytes of request (a connection reset mid-file); later connections pass."""

    def __init__(self, after=2 * MiB, cuts=1):
        self.after, self.cuts, self.cut = after, cuts, 0
        self.target = None
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        upstream = socket.create_connection(self.target)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        sent, first, cut_this = 0, True, False
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if first:
                    first = False
                    with self.lock:
                        if data.startswith(b"POST") and self.cut < self.cuts:
                            self.cut += 1
                            cut_this = True
                # the emulator checks that Host names its own port
                data = data.replace(b"Host: 127.0.0.1:%d\r\n" % self.port, b"Host: 127.0.0.1:%d\r\n" % self.target[1])
                sent += len(data)
                if cut_this and sent > self.after:
                    # RST: the client sees "connection reset" mid-body
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def test_network_failure_mid_file_is_retried_and_recorded_once(tmp_path):
    proxy = CuttingProxy(after=2 * MiB, cuts=1)
    # the forms name the proxy as the upload host; the proxy forwards to the emulator
    env = {"OSSDIRECT_UPLOAD_HOST": f"http://127.0.0.1:{proxy.port}/ossdirect-local",
           "OSSDIRECT_MAX_BYTES": str(64 * MiB), "OSSDIRECT_CONTENT_TYPES": TYPES}
    try:
        with LocalStack(tmp_path / "stack", env=env) as s:
            proxy.target = ("127.0.0.1", int(s.emulator.url.rsplit(":", 1)[1]))
            path = tmp_path / "ten.bin"
            path.write_bytes(os.urandom(10 * MiB))
            code, out, err = run_cli("upload", str(path), "--signature-url", s.signature_url, "--json")
            assert code == 0, out + err
            entry = json.loads(out)["files"][0]
            assert proxy.cut == 1 and entry["attempts"] == 2 and entry["state"] == "done"
            records = [r for r in s.records() if r["upload_id"] == entry["upload_id"]]
            assert len(records) == 1 and records[0]["etag"] == md5_of(path)
            assert s.get_object(entry["key"]) == path.read_bytes()
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("cli-small"), env={"OSSDIRECT_MAX_BYTES": "1000"}) as s:
        yield s


def test_refusals_exit_non_zero_with_the_servers_sentence(small_stack, tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 1001)
    code, out, err = run_cli("upload", str(big), "--signature-url", small_stack.signature_url)
    assert code == 1 and "too large: 1001 bytes; this service accepts up to 1000 bytes" in err
    assert "413 EntityTooLarge" in err
    script = tmp_path / "run.py"
    script.write_text("print(1)\n")
    code, out, err = run_cli("upload", str(script), "--signature-url", small_stack.signature_url, "--json")
    assert code == 1
    error = json.loads(out)["files"][0]["error"]
    assert error == {"kind": "refused", "code": "UnsupportedContentType", "status": 415, "source": "signature",
                     "message": "content type 'text/x-python' is not accepted here", "retry_after": None}
    # OSS's own refusal: the same exact key twice (naming=original), overwrite forbidden
    ok = tmp_path / "same.txt"
    ok.write_text("hello")
    args = ("upload", str(ok), "--signature-url", small_stack.signature_url, "--naming", "original")
    assert run_cli(*args)[0] == 0
    code, out, err = run_cli(*args)
    assert code == 1 and "already exists" in err and "409 FileAlreadyExists" in err
    # two refusals in one run: exit 1, both reported
    code, out, err = run_cli("upload", str(big), str(script), "--signature-url", small_stack.signature_url,
                             "--json")
    assert code == 1 and [f["state"] for f in json.loads(out)["files"]] == ["failed", "failed"]
    # the refused type, with the types this service takes
    code, out, err = run_cli("upload", str(script), "--signature-url", small_stack.signature_url)
    assert code == 1 and "content type 'text/x-python' is not accepted here; allowed: " in err
    assert "image/" in err and "--content-type" in err
    # usage errors: 2, one sentence naming the fix, never a traceback
    code, out, err = run_cli("upload", str(tmp_path / "nope.txt"), "--signature-url", small_stack.signature_url)
    assert code == 2 and err == f"ossdirect upload: no such file: {tmp_path / 'nope.txt'}: check the path.\n"
    code, out, err = run_cli("upload", str(ok), env={"OSSDIRECT_SIGNATURE_URL": ""})
    assert code == 2 and "--signature-url URL" in err and "OSSDIRECT_SIGNATURE_URL" in err and err.count("\n") == 1
    code, out, err = run_cli("upload", str(ok), "--signature-url", "sig.example.com/")
    assert code == 2 and err.count("\n") == 1 and "'https://sig.example.com/'" in err and "Traceback" not in err


def test_human_sizes_in_refusals(tmp_path):
    with LocalStack(tmp_path / "stack", env={"OSSDIRECT_MAX_BYTES": str(5 * MiB),
                                             "OSSDIRECT_CONTENT_TYPES": TYPES}) as s:
        f = tmp_path / "six.bin"
        f.write_bytes(b"\0" * (6 * MiB))
        code, out, err = run_cli("upload", str(f), "--signature-url", s.signature_url)
        assert code == 1 and "too large: 6.0 MiB; this service accepts up to 5.0 MiB (the signature function " \
            "answered 413 EntityTooLarge)" in err
        assert "6291456" not in err and err.count("FAILED") == 1


def test_unreachable_service_exits_4_and_unrecorded_exits_3(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    port = socket.create_server(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{port.getsockname()[1]}/"
    port.close()  # nothing listens there now
    code, out, err = run_cli("upload", str(f), "--signature-url", dead, "--retries", "1", "--json")
    assert code == 4 and json.loads(out)["files"][0]["error"]["kind"] == "network"
    with LocalStack(tmp_path / "stack") as s:
        s.stop_callback()
        code, out, err = run_cli("upload", str(f), "--signature-url", s.signature_url, "--json")
        assert code == 3 and json.loads(out)["files"][0]["state"] == "unrecorded"


def test_sign_in_sends_bearer_token_and_401_exits_5(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    with LocalStack(tmp_path / "stack", auth="jwt") as s:
        code, out, err = run_cli("upload", str(f), "--signature-url", s.signature_url)
        assert code == 5 and "TokenMissing" in err
        # seven files, one answer: said once, naming the fix; the other files are not even tried
        seven = []
        for i in range(7):
            seven.append(tmp_path / f"f{i}.txt")
            seven[-1].write_text(str(i))
        code, out, err = run_cli("upload", *map(str, seven), "--signature-url", s.signature_url, "--parallel", "1")
        assert code == 5 and err.count("401") == 1 and err.count("TokenMissing") == 1, err
        assert "7 of 7 files not uploaded" in err and "--token TOKEN" in err and "OSSDIRECT_TOKEN" in err
        code, out, err = run_cli("upload", str(f), "--signature-url", s.signature_url, "--token", "not-a-jwt")
        assert code == 5 and "get a new token" in err and err.count("401") == 1
        code, out, err = run_cli("upload", str(f), "--signature-url", s.signature_url, "--json",
                                 env={"OSSDIRECT_TOKEN": s.token("alice")})
        assert code == 0, err
        entry = json.loads(out)["files"][0]
        assert entry["key"].startswith("uploads/alice/") and entry["record"]["user"] == "alice"


def test_client_library_upload_and_progress(stack, tmp_path):
    from ossdirect import Client

    f = tmp_path / "p.png"
    f.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300_000))
    seen = []
    result = Client(stack.signature_url).upload(f, progress=lambda sent, total: seen.append((sent, total)))
    assert result.state == "done" and result.record["etag"] == md5_of(f) and result.content_type == "image/png"
    assert seen[-1][0] == seen[-1][1] > f.stat().st_size and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))


# --- explain -----------------------------------------------------------------------------------------


def explain(source):
    code, out, err = run_cli("explain", source, "--json")
    return code, json.loads(out) if out else None


def test_explain_forms_we_issue_has_no_warnings(stack, tmp_path):
    import requests

    form = requests.get(stack.signature_url, params={"filename": "a.png", "size": 10, "content_type": "image/png"},
                        timeout=10).json()
    path = tmp_path / "form.json"
    path.write_text(json.dumps(form))
    code, report = explain(str(path))
    assert code == 0 and report["warnings"] == []
    assert f"key: exactly {form['key']!r}" in report["allows"] and "size: exactly 10 bytes" in report["allows"]
    assert any(line.startswith("callback (pinned): POST " + stack.callback_url) for line in report["allows"])
    # the base64 policy alone, on the command line, says the same
    assert explain(form["policy"])[1]["warnings"] == []
    code, out, _ = run_cli("explain", str(path))
    assert code == 0 and "No warnings" in out and "Content-Disposition" in out


RISKY = {
    "expiration": "2030-01-01T00:00:00.000Z",
    "conditions": [
        {"bucket": "b"},
        ["starts-with", "$key", "uploads/"],
        ["starts-with", "$Content-Type", "image/"],
        ["eq", "$x-oss-date", "20291201T000000Z"],
    ],
}


def test_explain_risky_policies_warns(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(RISKY))
    code, report = explain(str(path))
    assert code == 1
    text = "\n".join(report["warnings"])
    for expected in ("no size cap", "wildcard type", "long expiry", "ACL not pinned", "Content-Disposition not pinned",
                     "prefix-wide key", "callback not pinned", "stored type not pinned", "overwrite not forbidden"):
        assert expected in text, expected
    # an explicit list with active content, public-read-write, and the whole bucket
    policy = {"expiration": "2030-01-01T00:00:00.000Z", "conditions": [
        ["starts-with", "$key", ""], ["content-length-range", 1, 100],
        ["in", "$x-oss-content-type", ["image/png", "image/svg+xml"]],
        ["eq", "$x-oss-object-acl", "public-read-write"]]}
    b64 = base64.b64encode(json.dumps(policy).encode()).decode()
    code, report = explain(b64)
    text = "\n".join(report["warnings"])
    assert code == 1 and "image/svg+xml" in text and "public-read-write" in text and "any key in the bucket" in text
    assert "no size cap" not in text and "size: 1 to 100 bytes" in report["allows"]
    code, out, err = run_cli("explain", "not a policy")
    assert code == 2 and "not a signed form" in err
    code, out, err = run_cli("explain", str(tmp_path / "missing-form.json"))
    assert code == 2 and "no such file" in err and "not a signed form" not in err and err.count("\n") == 1


# --- check-config --------------------------------------------------------------------------------------


def test_check_config_validates_like_the_cold_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSSDIRECT_")}
    good = dict(env, OSSDIRECT_BUCKET="my-bucket", OSSDIRECT_REGION="cn-hangzhou",
                OSSDIRECT_RECORDS=f"sqlite:///{tmp_path}/r.sqlite3",
                OSSDIRECT_LIMITS_STORE=f"sqlite:///{tmp_path}/l.db")
    code, out, err = run_cli("check-config", env=good)
    assert code == 0, out + err
    assert "signature function: ok" in out and "callback function: ok" in out
    assert "OSSDIRECT_AUTH=none" in out  # the cold-start warning
    assert "upload_host" in out and "https://my-bucket.oss-cn-hangzhou.aliyuncs.com" in out
    assert not (tmp_path / "r.sqlite3").exists()  # the record store is not opened
    bad = dict(good, OSSDIRECT_MAX_BYTES="lots", OSSDIRECT_TYPO="1")
    code, out, err = run_cli("check-config", "--json", env=bad)
    report = json.loads(out)
    assert code == 2 and report["ok"] is False
    # the same sentence the function answers with 503 ConfigInvalid
    from ossdirect.app.handlers import SignatureApp

    assert report["functions"]["signature"] == SignatureApp(bad).config_error
    assert "OSSDIRECT_MAX_BYTES must be an integer" in report["functions"]["signature"]
    assert any("OSSDIRECT_TYPO" in w for w in report["warnings"])
    # nothing set: every problem once (the bucket and the region), each one sentence for the three functions
    code, out, err = run_cli("check-config", env=env)
    invalid = [line for line in out.splitlines() if "INVALID" in line]
    assert code == 2 and len(invalid) == 2, invalid
    assert all("signature, callback and process functions" in line for line in invalid)
    assert "OSSDIRECT_BUCKET" in invalid[0] and "it is not set" in invalid[0]
    assert "OSSDIRECT_REGION" in invalid[1] and "it is not set" in invalid[1]


def test_reconcile_without_configuration_or_credentials_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSSDIRECT_", "ALIBABA_CLOUD_ACCESS"))}
    code, out, err = run_cli("reconcile", env=env)
    assert code == 2 and err.count("\n") == 1 and "OSSDIRECT_BUCKET" in err and "check-config" in err
    assert "Traceback" not in err
    env.update(OSSDIRECT_BUCKET="my-bucket", OSSDIRECT_REGION="cn-hangzhou",
               OSSDIRECT_RECORDS=f"sqlite:///{tmp_path}/r.sqlite3")
    code, out, err = run_cli("reconcile", env=env)
    assert code == 2 and err.count("\n") == 1 and "ALIBABA_CLOUD_ACCESS_KEY_ID" in err and "Traceback" not in err


# --- verify-callback -----------------------------------------------------------------------------------

# OSS's documented callback example, signed with OSS's published (pinned) key.
DOC_AUTH = "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA=="
DOC_KEY = "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ=="


def raw_request(target="/index.php?id=1&index=2", body=b"bucket=yonghu-test", auth=DOC_AUTH):
    return (f"POST {target} HTTP/1.1\r\nHost: example.com\r\nAuthorization: {auth}\r\n"
            f"x-oss-pub-key-url: {DOC_KEY}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_verify_callback_says_why(tmp_path):
    path = tmp_path / "req.txt"
    path.write_bytes(raw_request())
    code, out, err = run_cli("verify-callback", str(path))
    assert code == 0 and out.startswith("VALID") and "gosspublic.alicdn.com" in out and "bucket: yonghu-test" in out
    path.write_bytes(raw_request(body=b"bucket=yonghu-test2"))
    code, out, err = run_cli("verify-callback", str(path))
    assert code == 1 and "signature does not match" in out
    # a capture that added a newline after the body (no Content-Length to cut it)
    path.write_bytes(raw_request().replace(b"Content-Length: 18\r\n", b"") + b"\n")
    code, out, err = run_cli("verify-callback", str(path))
    assert code == 1 and "it verifies with the trailing newline of the body removed" in out
    event = {"version": "v1", "rawPath": "/index.php", "queryParameters": {"id": "1", "index": "2"},
             "headers": {"authorization": DOC_AUTH, "x-oss-pub-key-url": DOC_KEY}, "body": "bucket=yonghu-test",
             "isBase64Encoded": False, "requestContext": {"http": {"method": "POST", "path": "/index.php"}}}
    path.write_text(json.dumps(event))
    code, out, err = run_cli("verify-callback", str(path), "--json")
    report = json.loads(out)
    assert code == 1 and any("query string rebuilt" in h for h in report["hints"])
    evil = base64.b64encode(b"https://attacker.example/key.pem").decode()
    path.write_bytes(raw_request().replace(DOC_KEY.encode(), evil.encode()))
    code, out, err = run_cli("verify-callback", str(path))
    assert code == 1 and "not trusted" in out and "attacker.example" in out
    path.write_bytes(b"POST /x HTTP/1.1\r\n\r\nbody")
    code, out, err = run_cli("verify-callback", str(path))
    assert code == 1 and "missing Authorization" in out
    code, out, err = run_cli("verify-callback", str(tmp_path / "missing"))
    assert code == 2 and "No such file" in err and "check the path" in err and err.count("\n") == 1


# --- help, completion, dispatch ------------------------------------------------------------------------


def test_help_completion_and_dispatch(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("upload", "explain", "check-config", "verify-callback", "completion"):
        assert command in out
    assert main([]) == 2
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("ossdirect ")
    code, script, _ = run_cli("completion", "bash")
    assert code == 0 and "complete -o filenames -F _ossdirect ossdirect" in script and "--signature-url" in script
    check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr
    completed = subprocess.run(["bash", "-c", script + '\nCOMP_WORDS=(ossdirect up); COMP_CWORD=1; _ossdirect; '
                                'echo "${COMPREPLY[@]}"; COMP_WORDS=(ossdirect upload --sig); COMP_CWORD=2; '
                                '_ossdirect; echo "${COMPREPLY[@]}"'], capture_output=True, text=True)
    assert completed.stdout.split("\n")[:2] == ["upload", "--signature-url"]
    assert run_cli("completion", "zsh")[1].startswith("autoload -U +X bashcompinit")
