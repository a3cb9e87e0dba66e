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
