"""The local stack end to end: 500 uploads (sign, POST, callback, record) from 16 concurrent clients."""

import tempfile
import threading
import time

from bench.common import Benchmark, met


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
                    r = session.post(form["host"], data=form["field_list"], files={"file": (f"f{i}.txt", data, "text/plain")},
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


def row(s):
    ok = s["errors"] == 0 and s["records"] == s["uploads"]
    return (f"| local stack: {s['uploads']} uploads, {s['clients']} clients | {s['per_s']:,.0f} uploads/s, "
            f"{s['errors']} errors, {s['records']} records | — | — | 0 errors, exactly {s['uploads']} | {met(ok)} |")


BENCHMARKS = [Benchmark("stack", lambda args: bench_stack(500, 16), row)]


def bench_load(clients, seconds):
    """The deployed shape under load: ``clients`` concurrent users for ``seconds``, each looping over what a
    page does (limits, a form, the upload with its callback, the record poll). Latency per route, p50/p99."""
    import requests

    from bench.common import pct
    from devstack import LocalStack

    lat = {"limits": [], "form": [], "upload+callback": [], "poll": []}
    errors, lock = [], threading.Lock()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(tmp) as stack:
        deadline = time.perf_counter() + seconds
        seq = iter(range(10**9))

        def timed(route, fn):
            t = time.perf_counter()
            r = fn()
            ms = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"{route}: {r.status_code} {r.text[:400]}")
            with lock:
                lat[route].append(ms)
            return r

        def worker():
            session = requests.Session()
            h = {"Origin": stack.page_origin}
            while time.perf_counter() < deadline:
                i = next(seq)
                data = f"load {i}\n".encode()
                try:
                    timed("limits", lambda: session.get(stack.signature_url + "limits", headers=h, timeout=30))
                    form = timed("form", lambda: session.get(stack.signature_url, headers=h, timeout=30, params={
                        "filename": f"l{i}.txt", "size": len(data), "content_type": "text/plain"})).json()
                    timed("upload+callback", lambda: session.post(form["url"], data=form["field_list"], timeout=30,
                                                                  files={"file": (f"l{i}.txt", data, "text/plain")}))
                    timed("poll", lambda: session.get(f"{stack.signature_url}records/{form['upload_id']}", headers=h,
                                                      timeout=30))
                except Exception as exc:  # counted, not raised
                    with lock:
                        errors.append(str(exc))

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        uploads = len(lat["upload+callback"])
        records = len(stack.records())
    return {"clients": clients, "seconds": seconds, "uploads": uploads, "records": records, "errors": len(errors),
            "first_errors": errors[:3],
            "routes": {k: {"n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99), "max_ms": max(v)}
                       for k, v in lat.items() if v}}


def load_row(s):
    ok = s["errors"] == 0 and s["records"] >= s["uploads"]
    per = "; ".join(f"{k} p50 {v['p50_ms']:.0f} / p99 {v['p99_ms']:.0f} / max {v.get('max_ms', 0):.0f} ms"
                    for k, v in s["routes"].items())
    first = f" (first: {' '.join(s['first_errors'][0].split())[:160]})" if s["errors"] else ""
    return (f"| load: {s['clients']} clients for {s['seconds']} s (limits, form, upload + callback, poll) | "
            f"{s['uploads']:,} uploads, {s['errors']} errors{first}; {per} | — | — | 0 errors | {met(ok)} |")


BENCHMARKS.append(Benchmark("load", lambda args: bench_load(16 if args.quick else 64, 10 if args.quick else 60),
                            load_row))
