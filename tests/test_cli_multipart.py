"""`ossdirect upload` of large files through the signature function's /multipart routes, against the local
stack (emulator + the real signature and callback handlers on loopback): parallel parts, the same record
as a form upload, a process killed mid-upload (SIGKILL) then `--resume` sending only the missing parts, the
stored object's MD5 equal to the file's; folders (--recursive), globs, --state-dir; the library with file
objects and bytes."""

import hashlib
import io
import json
import os
import subprocess
import time

import pytest
import requests

from devstack import LocalStack
from test_cli import MiB, OSSDIRECT, ROOT, TREE_ENV, md5_of, run_cli

TYPES = "text/plain,application/octet-stream,image/*"
PART = 8 * MiB  # the service's part size for files up to 78 GiB (multipart.plan)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # the default local stack keeps records in SQLite: /limits publishes multipart_threshold (64 MiB)
    env = {"OSSDIRECT_MAX_BYTES": str(1024 * MiB), "OSSDIRECT_CONTENT_TYPES": TYPES}
    with LocalStack(tmp_path_factory.mktemp("cli-mp"), env=env, process=False) as s:
        yield s


def write_file(path, size):
    """``size`` bytes, every MiB different, written in 1 MiB blocks (never held whole)."""
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            chunk = (hashlib.sha256(written.to_bytes(8, "big")).digest() + block[32:])[:size - written]
            f.write(chunk)
            written += len(chunk)
    return path


def multipart_etag(path, part=PART):
    """OSS's ETag of a multipart object: MD5 of the parts' MD5s, then -<number of parts>."""
    digests = []
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(part), b""):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest().upper()}-{len(digests)}"


def stored_md5(stack, key):
    got = hashlib.md5()
    with requests.get(f"{stack.bucket_url}/{key}", stream=True, timeout=60) as r:
        assert r.status_code == 200
        for chunk in r.iter_content(MiB):
            got.update(chunk)
    return got.hexdigest().upper()


def held_parts(stack, state):
    r = requests.get(f"{stack.signature_url}multipart/{state['uploadId']}",
                     params={"key": state["key"], "upload_id": state["upload_id"]}, timeout=30)
    assert r.status_code == 200, r.text
    return sorted(p["PartNumber"] for p in r.json())


def test_large_file_goes_in_parts_and_ends_with_the_same_record_as_a_form(stack, tmp_path):
    big = write_file(tmp_path / "big.bin", 100 * MiB + 7)  # 13 parts, the last of 4 MiB + 7 bytes
    small = tmp_path / "small.txt"
    small.write_text("small and sent as one form\n")
    code, out, err = run_cli("upload", str(big), str(small), "--signature-url", stack.signature_url, "--json")
    assert code == 0, out + err
    report = json.loads(out)
    entry, form_entry = report["files"]
    assert entry["multipart"]["part_count"] == 13 and entry["multipart"]["parts_sent"] == 13
    assert entry["multipart"]["resumed"] is False and "multipart" not in form_entry
    records = {r["upload_id"]: r for r in stack.records()}
    for e, path in ((entry, big), (form_entry, small)):  # the same shape either way
        assert e["state"] == "done" and e["size"] == path.stat().st_size
        assert set(e["record"]) >= {"ok", "record_id", "upload_id", "key", "size", "etag", "url", "filename"}
        assert e["record"]["filename"] == path.name and e["url"] == e["record"]["url"] and e["url"].endswith(e["key"])
        assert records[e["upload_id"]]["status"] == "recorded"
    assert records[entry["upload_id"]]["source"] == "multipart"
    assert entry["record"]["etag"] == multipart_etag(big)
    assert stored_md5(stack, entry["key"]) == md5_of(big)
    assert not list(tmp_path.glob(".ossdirect-*"))  # the state file goes once complete
    # the text output: the same line as a form upload, with the parts
    other = write_file(tmp_path / "other.bin", 70 * MiB)
    code, out, err = run_cli("upload", str(other), "--signature-url", stack.signature_url, "--no-progress")
    assert code == 0, err
    assert out.startswith(f"uploaded  {other} -> uploads/") and "(70.0 MiB, 9 parts, record rec" in out


def test_killed_mid_upload_then_resume_sends_only_the_missing_parts(stack, tmp_path):
    big = write_file(tmp_path / "huge.bin", 200 * MiB + 12345)  # 26 parts
    state_path = tmp_path / ".ossdirect-huge.bin.json"
    proc = subprocess.Popen([OSSDIRECT, "upload", str(big), "--signature-url", stack.signature_url,
                             "--part-parallel", "2", "--no-progress"], cwd=ROOT, env=dict(os.environ, **TREE_ENV),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        state, held = None, []
        while time.monotonic() < deadline and proc.poll() is None:
            if state is None and state_path.exists():
                state = json.loads(state_path.read_text())
            if state is not None:
                held = held_parts(stack, state)
                if len(held) >= 3:
                    break
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no handler runs, nothing is cleaned up
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -9, "the upload finished before it could be killed"
    kept = json.loads(state_path.read_text())  # what the killed process left
    held = held_parts(stack, kept)
    assert 3 <= len(held) < 26
    assert not [r for r in stack.records() if r["upload_id"] == kept["upload_id"] and r["status"] == "recorded"]

    code, out, err = run_cli("upload", str(big), "--signature-url", stack.signature_url, "--resume", "--json")
    assert code == 0, out + err
    entry = json.loads(out)["files"][0]
    assert entry["upload_id"] == kept["upload_id"] and entry["multipart"]["uploadId"] == kept["uploadId"]
    assert entry["multipart"]["resumed"] is True
    # only the parts the bucket lacked: those listed after the kill, and perhaps one the emulator was still
    # storing then (its body had arrived whole before the process died)
    assert len(held) <= entry["multipart"]["parts_held"] <= len(held) + 2
    assert entry["multipart"]["parts_sent"] == 26 - entry["multipart"]["parts_held"]
    assert entry["state"] == "done" and entry["record"]["etag"] == multipart_etag(big)
    assert [r["upload_id"] for r in stack.records()].count(kept["upload_id"]) == 1
    assert stored_md5(stack, entry["key"]) == md5_of(big)
    assert not state_path.exists()
    print(f"resume: {len(held)} of 26 parts held after the kill, {entry['multipart']['parts_sent']} sent again")
    # the resumed run's own count, checked against the bucket: every part it did not send was already there
    assert entry["multipart"]["parts_held"] + entry["multipart"]["parts_sent"] == 26


def test_ctrl_c_keeps_the_state_and_says_how_to_go_on(stack, tmp_path):
    import signal

    big = write_file(tmp_path / "int.bin", 150 * MiB)  # 19 parts
    state_path = tmp_path / ".ossdirect-int.bin.json"
    proc = subprocess.Popen([OSSDIRECT, "upload", str(big), "--signature-url", stack.signature_url,
                             "--part-parallel", "1", "--no-progress"], cwd=ROOT, env=dict(os.environ, **TREE_ENV),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if state_path.exists() and held_parts(stack, json.loads(state_path.read_text())):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.decode().count("\n") == 1 and "--resume" in err.decode() and b"Traceback" not in err
    assert state_path.exists()
    code, out, err = run_cli("upload", str(big), "--signature-url", stack.signature_url, "--resume", "--json")
    assert code == 0, out + err
    entry = json.loads(out)["files"][0]
    assert entry["multipart"]["resumed"] is True and entry["multipart"]["parts_sent"] < 19
    assert stored_md5(stack, entry["key"]) == md5_of(big)


def test_without_resume_a_kept_upload_is_replaced_and_state_dir_holds_the_state(stack, tmp_path):
    from ossdirect.client import state_file

    big = write_file(tmp_path / "again.bin", 72 * MiB)
    states = tmp_path / "states"
    states.mkdir()
    # a kept session, as a killed run leaves it: create through the route, no part sent
    r = requests.post(f"{stack.signature_url}multipart", json={"filename": "again.bin", "size": big.stat().st_size,
                                                               "content_type": "application/octet-stream"}, timeout=30)
    created = r.json()
    st = big.stat()
    kept = dict(created, signature_url=stack.signature_url, path=str(big), size=st.st_size,
                stamp=[st.st_size, st.st_mtime_ns])
    path = state_file(big, states)
    assert os.path.dirname(path) == str(states) and os.path.basename(path).startswith(".ossdirect-again.bin-")
    with open(path, "w") as f:
        json.dump(kept, f)
    code, out, err = run_cli("upload", str(big), "--signature-url", stack.signature_url, "--state-dir", str(states),
                             "--json")
    assert code == 0, out + err
    entry = json.loads(out)["files"][0]
    assert entry["upload_id"] != created["upload_id"] and entry["multipart"]["parts_sent"] == 9
    old = [r for r in stack.records() if r["upload_id"] == created["upload_id"]]
    assert old and old[0]["status"] == "aborted"  # the replaced session was aborted, not left behind
    assert not os.path.exists(path)
    # a file changed since its state was kept is not resumed into the old session
    with open(path, "w") as f:
        json.dump(dict(kept, stamp=[st.st_size, st.st_mtime_ns - 1]), f)
    code, out, err = run_cli("upload", str(big), "--signature-url", stack.signature_url, "--state-dir", str(states),
                             "--naming", "random", "--resume", "--json")
    assert code == 0, out + err
    assert json.loads(out)["files"][0]["multipart"]["resumed"] is False


def test_folders_recursive_and_globs(stack, tmp_path):
    root = tmp_path / "photos"
    (root / "2024" / "june").mkdir(parents=True)
    for rel in ("a.txt", "2024/b.txt", "2024/june/c.txt"):
        (root / rel).write_text(rel)
    (root / ".ossdirect-left.json").write_text("{}")  # a state file is never uploaded
    code, out, err = run_cli("upload", str(root), "--signature-url", stack.signature_url, "--json")
    assert code == 2 and out == "" and "--recursive" in err and err.count("\n") == 1
    code, out, err = run_cli("upload", str(root), "-r", "--folder", "trip", "--naming", "original",
                             "--signature-url", stack.signature_url, "--json")
    assert code == 0, out + err
    keys = {os.path.relpath(e["path"], root): e["key"] for e in json.loads(out)["files"]}
    assert set(keys) == {"a.txt", "2024/b.txt", "2024/june/c.txt"}
    assert keys["a.txt"].endswith("/trip/a.txt") and keys["2024/june/c.txt"].endswith("/trip/2024/june/c.txt")
    # a pattern the shell did not expand (quoted), matching files in two folders
    code, out, err = run_cli("upload", str(root / "**" / "*.txt"), "--signature-url", stack.signature_url, "--json")
    assert code == 0, out + err
    assert len(json.loads(out)["files"]) == 3
    code, out, err = run_cli("upload", str(root / "*.nothing"), "--signature-url", stack.signature_url)
    assert code == 2 and "no file matches" in err and "Traceback" not in err
    code, out, err = run_cli("upload", str(root), "-r", "--state-dir", str(tmp_path / "no-such-dir"),
                             "--signature-url", stack.signature_url)
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err and "--state-dir" in err


def test_library_file_objects_bytes_and_text(stack, tmp_path):
    from ossdirect import Client

    client = Client(stack.signature_url)
    path = write_file(tmp_path / "obj.bin", 3 * MiB + 5)
    seen = []
    with open(path, "rb") as f:  # a file object, in parts (forced): read by offset, 4 parts of 1 part each
        result = client.upload(f, multipart=True, progress=lambda sent, total: seen.append((sent, total)))
    assert result.state == "done" and result.extra["multipart"]["part_count"] == 1
    assert result.path == "obj.bin" and result.record["filename"] == "obj.bin" and result.url.endswith(result.key)
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert stored_md5(stack, result.key) == md5_of(path)
    buf = io.BytesIO(b"skip" + b"x" * 1000)
    buf.seek(4)  # from its position, to its end
    result = client.upload(buf, filename="x.txt")
    assert result.state == "done" and result.size == 1000 and result.content_type == "text/plain"
    result = client.upload(b"raw bytes", filename="b.txt", size=3)  # an int size: the first 3 bytes
    assert result.size == 3 and requests.get(result.url, timeout=10).content == b"raw"
    with pytest.raises(TypeError, match="rb"):
        client.upload(io.StringIO("text"))
    with open(path) as text_file, pytest.raises(TypeError, match="rb"):
        client.upload(text_file)


class _SigningProxy:
    """A loopback proxy in front of the signature function that answers the ``fail_from``-th GET …/parts
    (1-based) and every later one with 403 SignatureRefused; everything else is forwarded as it is."""

    def __init__(self, target, fail_from):
        import http.server
        import threading

        proxy = self
        self.parts_requests, self.fail_from, self.target = [], fail_from, target.rstrip("/")

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "GET" and "/parts" in self.path:
                    proxy.parts_requests.append(self.path)
                    if len(proxy.parts_requests) >= proxy.fail_from:
                        payload = json.dumps({"code": "SignatureRefused", "message": "no more parts today"}).encode()
                        self.send_response(403)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                r = requests.request(self.command, proxy.target + self.path, data=body, headers=headers, timeout=60)
                self.send_response(r.status_code)
                for k in ("Content-Type",):
                    if k in r.headers:
                        self.send_header(k, r.headers[k])
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_parts_are_signed_ahead_in_batches_and_a_refusal_mid_upload_ends_it_with_the_service_error(stack, tmp_path):
    """Part URLs are signed by a signer running ahead of the streams, a batch at a time (not one request per
    part); when the service refuses a later batch, the upload ends with that refusal: no stream waits forever
    for a URL that will not come, and nothing is completed."""
    from concurrent.futures import ThreadPoolExecutor

    from ossdirect import Client, UploadError

    path = write_file(tmp_path / "ahead.bin", 20 * PART + 3)
    proxy = _SigningProxy(stack.signature_url, fail_from=10**6)
    try:
        result = Client(proxy.url).upload(path)
        assert result.state == "done" and result.extra["multipart"]["part_count"] == 21
        assert stored_md5(stack, result.key) == md5_of(path)
        # 21 parts, 4 streams: a first batch of 4, then batches of 8 (4 + 8 + 8 + 1), each with its MD5s
        assert len(proxy.parts_requests) == 4, proxy.parts_requests
        assert all("md5=" in p for p in proxy.parts_requests)
    finally:
        proxy.close()

    proxy = _SigningProxy(stack.signature_url, fail_from=2)
    try:
        with ThreadPoolExecutor(1) as pool:  # a hang would fail here, not stall the suite
            future = pool.submit(Client(proxy.url, retries=0).upload, path)
            with pytest.raises(UploadError) as refused:
                future.result(timeout=120)
        assert refused.value.code == "SignatureRefused" and refused.value.status == 403
        assert refused.value.source == "signature"
    finally:
        proxy.close()
