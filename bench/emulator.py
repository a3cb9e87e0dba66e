"""The emulator receiving one big PostObject (1 GiB; 256 MiB with --quick), as a subprocess, vs a loopback
socket copy whose receiver MD5s the bytes; and how much the emulator's memory grows meanwhile."""

import hashlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

from bench.common import ROOT, Benchmark, fresh_page_cache, met


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
    import oss2

    from ossdirect.settings import load_config
    from ossdirect.oss.credentials import Credentials
    from ossdirect.core.forms import issue_form

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
            bucket = oss2.Bucket(oss2.Auth("AKIDBENCH", "bench-secret"), f"http://127.0.0.1:{port}", "bench-bucket")
            times = []
            for _ in range(2):
                form = issue_form(config, Credentials("AKIDBENCH", "bench-secret"),
                                  {"filename": "big.bin", "size": str(size), "content_type": "application/octet-stream"})
                head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'.encode()
                                for n, v in form["field_list"])
                head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                         f"Content-Type: application/octet-stream\r\n\r\n").encode()
                fresh_page_cache(tmp, size)
                start = time.perf_counter()
                response = _send_stream(port, "/bench-bucket/", head, size, tail,
                                        f"Content-Type: multipart/form-data; boundary={boundary}\r\n")
                times.append(time.perf_counter() - start)
                # deleted: the next upload's pages are the ones this one freed, as fresh_page_cache leaves them
                bucket.delete_object(form["key"])
            done.set()
            sampler.join()
            status = response.split(b"\r\n", 1)[0].decode()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return min(times), (peak[0] - base_rss) / 1024, status


def row(e):
    ok = e["ratio"] >= 0.5 and e["rss_growth_MiB"] <= 64
    return (f"| emulator PostObject {e['bytes'] / 1024**3:.2f} GiB ({e['status']}, data dir {e['data_dir']}) | "
            f"{e['emulator_MBps']:,.0f} MB/s, RSS +{e['rss_growth_MiB']:.1f} MiB | loopback socket copy + MD5 "
            f"{e['reference_MBps']:,.0f} MB/s | {e['ratio']:.0%} | ≥ 50%, ≤ 64 MiB | {met(ok)} |")


BENCHMARKS = [Benchmark("emulator", lambda args: bench_emulator((256 if args.quick else 1024) * 1024 * 1024,
                                                                args.emulator_data_dir), row)]
