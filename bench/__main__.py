"""Benchmarks, each figure next to a reference measured in the same run. Prints a table, writes results.json.

    python -m bench            # full run (~3-5 min on 2 cores)
    python -m bench --quick    # smaller counts, 256 MiB instead of 1 GiB
"""

import argparse
import base64
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")

STS = types.SimpleNamespace(credentials=types.SimpleNamespace(
    access_key_id="STS.benchkeyid", access_key_secret="bench-secret", security_token="bench-token-" + "x" * 400))
SIG_ENV = {"OSSDIRECT_BUCKET": "bench-bucket", "OSSDIRECT_REGION": "cn-hangzhou",
           "OSSDIRECT_CALLBACK_URL": "https://cb.example.com/oss-callback"}
DOC_EVENT = {"version": "v1", "rawPath": "/index.php", "queryParameters": {"id": "1", "index": "2"},
             "headers": {"authorization": "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA==",
                         "x-oss-pub-key-url": "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ==",
                         "content-type": "application/x-www-form-urlencoded"},
             "body": "bucket=yonghu-test", "isBase64Encoded": False,
             "requestContext": {"http": {"method": "POST", "path": "/index.php"}, "requestId": "1-bench"}}


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed_loop(fn, n):
    lat = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    return {"per_s": n / total, "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "_lat": lat}


def compare(ours, peer, n, rounds=5):
    """Alternate rounds of both (a shared machine drifts); best round's rate, percentiles over all calls."""
    results = {"ours": [], "peer": []}
    for _ in range(rounds):
        for name, fn in (("ours", ours), ("peer", peer)):
            results[name].append(timed_loop(fn, max(1, n // rounds)))
    out = {}
    for name, runs in results.items():
        lat = [x for r in runs for x in r["_lat"]]
        out[name] = {"per_s": max(r["per_s"] for r in runs), "p50_ms": pct(lat, 50) * 1000,
                     "p99_ms": pct(lat, 99) * 1000, "rounds": [round(r["per_s"]) for r in runs]}
    out["ratio"] = out["ours"]["per_s"] / out["peer"]["per_s"]
    return out


# --- 1. signature handler vs boto3 ---------------------------------------------------------------
def bench_signature(n):
    from ossdirect.handlers import SignatureApp

    app = SignatureApp(dict(SIG_ENV))
    event = json.dumps({"version": "v1", "rawPath": "/", "headers": {"Origin": ""},
                        "queryParameters": {"filename": "photo.jpg", "size": "123456", "content_type": "image/jpeg"},
                        "body": "", "isBase64Encoded": False,
                        "requestContext": {"http": {"method": "GET", "path": "/"}}}).encode()
    assert app(event, STS)["statusCode"] == 200

    import boto3

    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret",
                      aws_session_token="bench-token-" + "x" * 400)

    def presign():
        s3.generate_presigned_post(
            "bench-bucket", "uploads/abc.jpg",
            Fields={"Content-Type": "image/jpeg", "x-amz-meta-upload-id": "u"},
            Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 123456, 123456],
                        {"x-amz-meta-upload-id": "u"}],
            ExpiresIn=300)

    presign()
    out = compare(lambda: app(event, STS), presign, n)
    out["boto3"] = out.pop("peer")
    return out


# --- 2. cold start -------------------------------------------------------------------------------
COLD = r"""
import sys, json, types
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import index
ctx = types.SimpleNamespace(credentials=types.SimpleNamespace(access_key_id="a", access_key_secret="b", security_token="c"))
r = index.handler(sys.argv[3].encode(), ctx)
print(r["statusCode"])
"""


def run_ms(args, env, reps):
    times, out = [], ""
    for _ in range(reps):
        t = time.perf_counter()
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout.strip()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def bench_cold(reps):
    py = sys.executable
    env = {"PATH": os.environ.get("PATH", ""), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
           "PYTHONDONTWRITEBYTECODE": "1"}
    bare, _ = run_ms([py, "-c", "pass"], env, reps)
    boto, _ = run_ms([py, "-c", "import boto3"], env, reps)
    sig_event = json.dumps({"rawPath": "/", "queryParameters": {"filename": "a.jpg", "size": "10",
                                                                "content_type": "image/jpeg"},
                            "requestContext": {"http": {"method": "GET"}}})
    sig_env = dict(env, **SIG_ENV)
    sig, sig_out = run_ms([py, "-c", COLD, str(ROOT / "functions/signature"), str(ROOT / "shared"), sig_event],
                          sig_env, reps)
    with tempfile.TemporaryDirectory() as tmp:
        cb_env = dict(env, OSSDIRECT_BUCKET="yonghu-test", OSSDIRECT_PREFIX="",
                      OSSDIRECT_RECORDS=f"sqlite:///{tmp}/r.sqlite3")
        cb, cb_out = run_ms([py, "-c", COLD, str(ROOT / "functions/callback"), str(ROOT / "shared"),
                             json.dumps(DOC_EVENT)], cb_env, reps)
    return {"bare_ms": bare, "boto3_import_ms": boto, "signature_ms": sig, "callback_ms": cb,
            "signature_above_bare_ms": sig - bare, "callback_above_bare_ms": cb - bare,
            "signature_status": sig_out, "callback_status": cb_out}


# --- 3. callback signature verification ----------------------------------------------------------
def bench_verify(n):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    from ossdirect.callback_auth import OSS_CALLBACK_PUBLIC_KEY_PEM, KeyCache, verify_callback

    headers = DOC_EVENT["headers"]
    cache = KeyCache()
    key = serialization.load_pem_public_key(OSS_CALLBACK_PUBLIC_KEY_PEM)
    sig = base64.b64decode(headers["authorization"])
    msg = b"/index.php?id=1&index=2\nbucket=yonghu-test"
    out = compare(lambda: verify_callback(headers, "/index.php", "id=1&index=2", b"bucket=yonghu-test", cache=cache),
                  lambda: key.verify(sig, msg, padding.PKCS1v15(), hashes.MD5()), n)
    out["raw"] = out.pop("peer")
    return out


# --- 4. callback handler end to end --------------------------------------------------------------
def bench_callback(n):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from ossdirect.handlers import CallbackApp

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    class KeyHandler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(pem)))
            self.end_headers()
            self.wfile.write(pem)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prefix = f"http://127.0.0.1:{server.server_address[1]}/_emulator/"
    key_url = base64.b64encode((prefix + "k.pem").encode()).decode()

    def events(tag):
        out = []
        for i in range(n):
            body = urlencode({"bucket": "bench-bucket", "object": f"uploads/{tag}{i}.jpg", "etag": "E", "size": "10",
                              "mimeType": "image/jpeg", "upload_id": f"{tag}{i}"}).encode()
            sig = base64.b64encode(key.sign(b"/cb\n" + body, padding.PKCS1v15(), hashes.MD5())).decode()
            out.append(json.dumps({"rawPath": "/cb", "body": body.decode(), "headers": {
                "authorization": sig, "x-oss-pub-key-url": key_url,
                "content-type": "application/x-www-form-urlencoded"},
                "requestContext": {"http": {"method": "POST"}}}).encode())
        return out

    class NoStore:
        needs_credentials = False

        def put(self, record, credentials=None):
            return record, True

    with tempfile.TemporaryDirectory() as tmp:
        env = {"OSSDIRECT_BUCKET": "bench-bucket", "OSSDIRECT_TRUSTED_KEY_PREFIXES": prefix,
               "OSSDIRECT_RECORDS": f"sqlite:///{tmp}/r.sqlite3"}
        with_store, without = CallbackApp(env), CallbackApp(env, store=NoStore())
        with_store(events("warm")[0], None)
        without(events("warm")[0], None)
        store_events, plain_events = iter(events("s")), iter(events("n"))
        results = compare(lambda: with_store(next(store_events), None), lambda: without(next(plain_events), None), n)
        results["sqlite"], results["no_store"] = results.pop("ours"), results.pop("peer")
        import sqlite3

        with sqlite3.connect(f"{tmp}/r.sqlite3") as conn:
            results["records_written"] = conn.execute("SELECT count(*) FROM uploads").fetchone()[0] - 1
    server.shutdown()
    return results


# --- 5. emulator 1 GiB vs socket copy + MD5 -------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _send_stream(port, path, head, size, tail, extra_headers=""):
    chunk = bytes(range(256)) * 4096
    with socket.create_connection(("127.0.0.1", port)) as sock:
        total = len(head) + size + len(tail)
        request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {total}\r\n"
                   f"{extra_headers}Connection: close\r\n\r\n").encode()
        sock.sendall(request + head)
        sent = 0
        while sent < size:
            piece = chunk[: min(len(chunk), size - sent)]
            sock.sendall(piece)
            sent += len(piece)
        sock.sendall(tail)
        response = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            response += data
    return response


def bench_emulator(size, data_root=None):
    ref_s = min(_reference_copy(size) for _ in range(2))
    emu_s, peak_growth, status = _emulator_upload(size, data_root)
    mb = size / 1e6
    return {"bytes": size, "data_dir": data_root or tempfile.gettempdir(), "status": status,
            "emulator_MBps": mb / emu_s, "reference_MBps": mb / ref_s, "ratio": ref_s / emu_s,
            "rss_growth_MiB": peak_growth, "note": "best of 2 runs each"}


def _reference_copy(size):
    """Seconds for a loopback socket copy of ``size`` bytes whose receiver MD5s them."""
    ref_port = _free_port()
    listener = socket.socket()
    listener.bind(("127.0.0.1", ref_port))
    listener.listen(1)

    def receive():
        conn, _ = listener.accept()
        md5 = hashlib.md5()
        while True:
            data = conn.recv(1 << 20)
            if not data:
                break
            md5.update(data)
        conn.close()

    t = threading.Thread(target=receive)
    t.start()
    start = time.perf_counter()
    chunk = bytes(range(256)) * 4096
    with socket.create_connection(("127.0.0.1", ref_port)) as sock:
        sent = 0
        while sent < size:
            sock.sendall(chunk)
            sent += len(chunk)
    t.join()
    listener.close()
    return time.perf_counter() - start


def _emulator_upload(size, data_root):
    """(best seconds of 2 uploads, peak RSS growth MiB, status line) for the emulator as a subprocess."""
    from ossdirect.config import load_config
    from ossdirect.credentials import Credentials
    from ossdirect.forms import issue_form

    with tempfile.TemporaryDirectory(dir=data_root) as tmp:
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "emulator", "--port", str(port), "--data-dir", tmp,
                                 "--bucket", "bench-bucket", "--account", "AKIDBENCH:bench-secret", "--quiet"],
                                cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            proc.stdout.readline()
            base_rss = _rss_kib(proc.pid, "VmRSS:")
            config = load_config({"OSSDIRECT_BUCKET": "bench-bucket", "OSSDIRECT_REGION": "cn-hangzhou",
                                  "OSSDIRECT_MAX_BYTES": str(5 * 1024**3), "OSSDIRECT_CONTENT_TYPES": "*"})
            boundary = "benchboundary0123"
            tail = f"\r\n--{boundary}--\r\n".encode()
            peak = [base_rss]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], _rss_kib(proc.pid, "VmRSS:"))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            times = []
            for _ in range(2):
                form = issue_form(config, Credentials("AKIDBENCH", "bench-secret"),
                                  {"filename": "big.bin", "size": str(size), "content_type": "application/octet-stream"})
                head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'.encode()
                                for n, v in form["fields"])
                head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                         f"Content-Type: application/octet-stream\r\n\r\n").encode()
                start = time.perf_counter()
                response = _send_stream(port, "/bench-bucket/", head, size, tail,
                                        f"Content-Type: multipart/form-data; boundary={boundary}\r\n")
                times.append(time.perf_counter() - start)
            done.set()
            sampler.join()
            status = response.split(b"\r\n", 1)[0].decode()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return min(times), (peak[0] - base_rss) / 1024, status


# --- 6. local stack: 500 uploads, 16 clients ------------------------------------------------------
def bench_stack(total, clients):
    import requests

    from devstack import LocalStack

    errors, lock = [], threading.Lock()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(tmp) as stack:
        counter = iter(range(total))

        def worker():
            session = requests.Session()
            for i in counter:
                data = f"upload {i}\n".encode()
                try:
                    form = session.get(stack.signature_url, params={"filename": f"f{i}.txt", "size": len(data),
                                                                    "content_type": "text/plain"}, timeout=30).json()
                    r = session.post(form["host"], data=form["fields"], files={"file": (f"f{i}.txt", data, "text/plain")},
                                     timeout=30)
                    if r.status_code != 200:
                        raise RuntimeError(f"{r.status_code} {r.text[:100]}")
                except Exception as exc:  # counted, not raised
                    with lock:
                        errors.append(str(exc))

        start = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        records = len(stack.records())
    return {"uploads": total, "clients": clients, "per_s": total / elapsed, "errors": len(errors),
            "first_errors": errors[:3], "records": records}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma list: signature,cold,verify,callback,emulator,stack")
    parser.add_argument("--emulator-data-dir", default=None,
                        help="where the emulator stores the 1 GiB object (default: the system temp dir, on disk)")
    args = parser.parse_args(argv)
    quick = args.quick
    only = set(args.only.split(",")) if args.only else None
    import logging

    logging.disable(logging.CRITICAL)  # per-request log lines would be the benchmark
    results = {"machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()}, "quick": quick}
    plan = [("signature", lambda: bench_signature(2000 if quick else 10000)),
            ("cold", lambda: bench_cold(5 if quick else 15)),
            ("verify", lambda: bench_verify(3000 if quick else 20000)),
            ("callback", lambda: bench_callback(500 if quick else 3000)),
            ("emulator", lambda: bench_emulator((256 if quick else 1024) * 1024 * 1024, args.emulator_data_dir)),
            ("stack", lambda: bench_stack(500, 16))]
    for name, run in plan:
        if only and name not in only:
            continue
        print(f"running {name}…", file=sys.stderr, flush=True)
        results[name] = run()
    rows = table(results)
    print(rows)
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def table(r):
    out = ["| what | ours | reference (same run) | ratio | floor | met |", "|---|---|---|---|---|---|"]
    if "signature" in r:
        s = r["signature"]
        out.append(f"| signature handler (FC3 event → form, hints + callback) | {s['ours']['per_s']:,.0f} req/s, "
                   f"p50 {s['ours']['p50_ms']:.3f} ms, p99 {s['ours']['p99_ms']:.3f} ms | boto3 generate_presigned_post "
                   f"{s['boto3']['per_s']:,.0f} req/s | {s['ratio']:.1f}× | ≥ 5× | {'yes' if s['ratio'] >= 5 else 'NO'} |")
    if "cold" in r:
        c = r["cold"]
        ok = c["signature_above_bare_ms"] <= 50 and c["callback_above_bare_ms"] <= 120
        out.append(f"| cold start (fresh interpreter, import, first call) | signature +{c['signature_above_bare_ms']:.0f} ms, "
                   f"callback +{c['callback_above_bare_ms']:.0f} ms | bare `python -c pass` {c['bare_ms']:.0f} ms; "
                   f"`import boto3` {c['boto3_import_ms']:.0f} ms | — | ≤ 50 / ≤ 120 ms | {'yes' if ok else 'NO'} |")
    if "verify" in r:
        v = r["verify"]
        ok = v["ours"]["per_s"] >= 10000 and v["ratio"] >= 0.8
        out.append(f"| callback signature verification (pinned key) | {v['ours']['per_s']:,.0f}/s | raw cryptography "
                   f"verify {v['raw']['per_s']:,.0f}/s | {v['ratio']:.0%} | ≥ 10,000/s, ≥ 80% | {'yes' if ok else 'NO'} |")
    if "callback" in r:
        c = r["callback"]
        out.append(f"| callback handler end to end + SQLite write | {c['sqlite']['per_s']:,.0f}/s, p99 "
                   f"{c['sqlite']['p99_ms']:.2f} ms | same handler, no store {c['no_store']['per_s']:,.0f}/s | "
                   f"{c['ratio']:.0%} | ≥ 1,000/s | {'yes' if c['sqlite']['per_s'] >= 1000 else 'NO'} |")
    if "emulator" in r:
        e = r["emulator"]
        ok = e["ratio"] >= 0.5 and e["rss_growth_MiB"] <= 64
        out.append(f"| emulator PostObject {e['bytes'] / 1024**3:.2f} GiB ({e['status']}, data dir {e['data_dir']}) | {e['emulator_MBps']:,.0f} MB/s, "
                   f"RSS +{e['rss_growth_MiB']:.1f} MiB | loopback socket copy + MD5 {e['reference_MBps']:,.0f} MB/s | "
                   f"{e['ratio']:.0%} | ≥ 50%, ≤ 64 MiB | {'yes' if ok else 'NO'} |")
    if "stack" in r:
        s = r["stack"]
        ok = s["errors"] == 0 and s["records"] == s["uploads"]
        out.append(f"| local stack: {s['uploads']} uploads, {s['clients']} clients | {s['per_s']:,.0f} uploads/s, "
                   f"{s['errors']} errors, {s['records']} records | — | — | 0 errors, exactly {s['uploads']} | "
                   f"{'yes' if ok else 'NO'} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
