"""A 1 GiB file (256 MiB with --quick) through the local stack's multipart routes, 4 parts at a time, next to
the same bytes as one PostObject through the same stack and a loopback socket copy, in the same run.

The stack: the emulator as a subprocess (so its memory is its own: RSS sampled every 50 ms) and both
real handlers (signature, callback) behind the WSGI adapter in this process, wired as ``devstack`` wires
them. Multipart is the whole browser path: POST /multipart, part URLs signed in batches
(GET /multipart/<id>/parts), 4 PUT streams at a time to the presigned URLs, POST complete (the emulator
joins the parts, calls back, the callback records). The PostObject is a signed form from the same
function, streamed as one multipart/form-data body, callback and record included. The bytes are
generated as they are sent (no file on disk, nothing held): the same pattern for all three.
Rounds alternate, and so does which of the two uploads goes first (a shared VM drifts); each upload starts
from a fresh page cache (see bench.common.fresh_page_cache); the best round of each counts.
"""

import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from bench.common import ROOT, Benchmark, fresh_page_cache, met
from bench.emulator import _free_port, _reference_copy, _rss_kib, _send_stream

BUCKET = "ossdirect-local"
KEY_ID, SECRET, TOKEN = "STS.BenchKeyId", "bench-secret-not-a-key", "bench-token"
CHUNK = bytes(range(256)) * 4096  # 1 MiB, the pattern every sender streams


class _Stack:
    """Emulator subprocess + the real signature and callback handlers on loopback."""

    def __init__(self, data_dir, size):
        from devstack import _FunctionServer
        from ossdirect.app.handlers import CallbackApp, SignatureApp

        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--port", str(self.port), "--data-dir", f"{data_dir}/oss",
             "--bucket", BUCKET, "--account", f"{KEY_ID}:{SECRET}:{TOKEN}", "--quiet"],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.proc.stdout.readline()  # its banner: listening
        emulator = f"http://127.0.0.1:{self.port}"
        self.bucket_url = f"{emulator}/{BUCKET}"
        creds = types.SimpleNamespace(access_key_id=KEY_ID, access_key_secret=SECRET, security_token=TOKEN)
        env = {"OSSDIRECT_BUCKET": BUCKET, "OSSDIRECT_REGION": "cn-hangzhou", "OSSDIRECT_UPLOAD_HOST": self.bucket_url,
               "OSSDIRECT_PUBLIC_BASE_URL": self.bucket_url, "OSSDIRECT_OSS_ENDPOINT": self.bucket_url,
               "OSSDIRECT_RECORDS": f"sqlite:///{data_dir}/records.sqlite3", "OSSDIRECT_CONTENT_TYPES": "*",
               "OSSDIRECT_MAX_BYTES": str(max(size, 1 << 20)), "OSSDIRECT_EXPIRES_SECONDS": "900",
               "OSSDIRECT_TRUSTED_KEY_PREFIXES": f"{emulator}/_emulator/"}
        self.callback = _FunctionServer(CallbackApp(env), "127.0.0.1", 0, "callback", creds)
        self.signature = _FunctionServer(SignatureApp(dict(env, OSSDIRECT_CALLBACK_URL=self.callback.url + "/oss-callback")),
                                         "127.0.0.1", 0, "signature", creds)
        self.signature_url = self.signature.url + "/"
        self.base_rss = _rss_kib(self.proc.pid, "VmRSS:")
        self.peak = self.base_rss
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self):
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_kib(self.proc.pid, "VmRSS:"))
            time.sleep(0.05)

    def close(self):
        self._done.set()
        self._sampler.join()
        self.signature.stop()
        self.callback.stop()
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def delete(self, key):
        import oss2

        oss2.Bucket(oss2.StsAuth(KEY_ID, SECRET, TOKEN), f"http://127.0.0.1:{self.port}", BUCKET).delete_object(key)


def _call(url, method="GET", body=None):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, f"{parts.path}?{parts.query}" if parts.query else parts.path, data, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _put_stream(url, length):
    """PUT ``length`` pattern bytes to a presigned part URL; returns the ETag."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        view = memoryview(CHUNK)
        sent = 0
        while sent < length:
            piece = view[: min(len(CHUNK), length - sent)]
            conn.send(piece)
            sent += len(piece)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"part PUT answered {response.status}")
        return response.getheader("ETag")
    finally:
        conn.close()


def multipart_upload(stack, size, parallel=4):
    """Seconds for create → every part (``parallel`` at a time, URLs signed in batches) → complete."""
    start = time.perf_counter()
    status, up = _call(f"{stack.signature_url}multipart", "POST",
                       {"filename": "big.bin", "size": size, "content_type": "application/octet-stream"})
    if status != 201:
        raise RuntimeError(f"create answered {status}: {up}")
    query = f"key={up['key']}&upload_id={up['upload_id']}"
    route = f"{stack.signature_url}multipart/{up['uploadId']}"
    count, part_size = up["part_count"], up["part_size"]
    urls, lock = {}, threading.Lock()

    def url_for(n):
        with lock:
            if n not in urls:  # sign this part and the next ones: one request per 2 × parallel parts
                batch = ",".join(str(m) for m in range(n, min(count, n + 2 * parallel - 1) + 1))
                status, signed = _call(f"{route}/parts?{query}&partNumbers={batch}")
                if status != 200:
                    raise RuntimeError(f"signing answered {status}: {signed}")
                urls.update({int(k): v for k, v in signed["presignedUrls"].items()})
            return urls.pop(n)

    def send(n):
        length = part_size if n < count else size - (count - 1) * part_size
        return {"PartNumber": n, "ETag": _put_stream(url_for(n), length)}

    with ThreadPoolExecutor(parallel) as pool:
        parts = list(pool.map(send, range(1, count + 1)))
    status, answer = _call(f"{route}/complete?{query}", "POST", {"parts": parts})
    elapsed = time.perf_counter() - start
    if status != 200 or not answer.get("ok") or answer.get("size") != size:
        raise RuntimeError(f"complete answered {status}: {answer}")
    return elapsed, up["key"], count


def post_upload(stack, size):
    """Seconds for GET form → one streamed PostObject (callback and record included)."""
    start = time.perf_counter()
    status, form = _call(f"{stack.signature_url}?filename=big.bin&size={size}&content_type=application/octet-stream")
    if status != 200:
        raise RuntimeError(f"form answered {status}: {form}")
    boundary = "benchboundary0123"
    head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'.encode()
                    for n, v in form["field_list"])
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode()
    response = _send_stream(stack.port, f"/{BUCKET}/", head, size, f"\r\n--{boundary}--\r\n".encode(),
                            f"Content-Type: multipart/form-data; boundary={boundary}\r\n")
    elapsed = time.perf_counter() - start
    status_line = response.split(b"\r\n", 1)[0].decode()
    if " 200 " not in status_line + " ":
        raise RuntimeError(f"PostObject answered {status_line}")
    return elapsed, form["key"]


def bench_multipart(size, data_root=None, rounds=4):
    times = {"multipart": [], "post": [], "socket": []}
    with tempfile.TemporaryDirectory(dir=data_root) as tmp:
        stack = _Stack(tmp, size)
        try:
            after = []  # emulator RSS after each round: flat means no growth with the bytes moved
            count = 0
            for n in range(rounds):
                for name in ("multipart", "post") if n % 2 == 0 else ("post", "multipart"):
                    fresh_page_cache(tmp, size)
                    if name == "multipart":
                        seconds, key, count = multipart_upload(stack, size)
                    else:
                        seconds, key = post_upload(stack, size)
                    times[name].append(seconds)
                    stack.delete(key)
                times["socket"].append(_reference_copy(size))
                after.append(_rss_kib(stack.proc.pid, "VmRSS:"))
            records = _count_records(tmp)
        finally:
            stack.close()
        growth = (stack.peak - stack.base_rss) / 1024
    mb = size / 1e6
    best = {name: min(values) for name, values in times.items()}
    return {"bytes": size, "parts": count, "parallel": 4, "rounds": rounds,
            "multipart_MBps": mb / best["multipart"], "post_MBps": mb / best["post"],
            "socket_MBps": mb / best["socket"], "ratio_vs_post": best["post"] / best["multipart"],
            "ratio_vs_socket": best["socket"] / best["multipart"], "rss_growth_MiB": growth,
            "rss_after_rounds_MiB": [round((a - stack.base_rss) / 1024, 1) for a in after],
            "rss_drift_MiB": (after[-1] - after[0]) / 1024,
            "records": records, "data_dir": data_root or tempfile.gettempdir(),
            "rounds_s": {name: [round(v, 3) for v in values] for name, values in times.items()}}


def _count_records(tmp):
    from ossdirect.store.sqlite import SqliteStore

    store = SqliteStore(f"{tmp}/records.sqlite3")
    try:
        rows = store.all()
    finally:
        store.close()
    return {"recorded": sum(r["status"] == "recorded" for r in rows), "total": len(rows)}


def row(m):
    # memory: the peak is 4 streams' buffers (one malloc arena, see emulator.app); flat = no growth per round
    ok = (m["ratio_vs_post"] >= 0.8 and m["rss_growth_MiB"] <= 64 and m["rss_drift_MiB"] <= 16
          and m["records"]["recorded"] == 2 * m["rounds"])
    return (f"| local stack multipart {m['bytes'] / 1024**3:.2f} GiB ({m['parts']} parts, {m['parallel']} at a time: "
            f"sign, PUT, complete + callback) | {m['multipart_MBps']:,.0f} MB/s; emulator RSS peak "
            f"+{m['rss_growth_MiB']:.0f} MiB, {m['rss_drift_MiB']:+.1f} MiB over {m['rounds'] - 1} more rounds | "
            f"same bytes as one PostObject {m['post_MBps']:,.0f} MB/s; loopback socket copy + MD5 "
            f"{m['socket_MBps']:,.0f} MB/s | {m['ratio_vs_post']:.0%} of PostObject, {m['ratio_vs_socket']:.0%} of "
            f"socket | ≥ 80% of PostObject; peak ≤ 64 MiB, drift ≤ 16 MiB | {met(ok)} |")


BENCHMARKS = [Benchmark("multipart", lambda args: bench_multipart((256 if args.quick else 1024) * 1024 * 1024,
                                                                  args.emulator_data_dir), row)]
