"""What the Tablestore record store costs: cold start (our protocol client vs the official SDK), and
put/get latency (loopback stand-in vs SQLite).

    .venv/bin/python bench/tablestore.py [--n 300] [--compare]

Cold start, each in fresh interpreters (median of 7): the import alone (``import tablestore`` vs
``import ossdirect.store.tablestore``, which brings ``store/ots_wire.py``), and spawn to first record:
a new process that imports, builds a client and makes one conditional ``PutRow`` to the stand-in,
through the SDK's ``OTSClient`` or through our store, minus a bare ``python -c pass``.

Nothing leaves 127.0.0.1. ``--compare`` is the one-off request comparison: the same store calls made
by a store aimed at the real endpoint form (``https://<instance>.cn-hangzhou.ots.aliyuncs.com``,
captured at the transport boundary, never sent) and by one aimed at the stand-in; it prints whether
path, every x-ots-* header but the time-dependent ones, and body bytes are identical, and whether the
stand-in's own verifier accepts the real-endpoint request's signature. (Byte equality with the SDK
itself is ``tests/test_ots_wire.py``.)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# run as a script, this file's folder comes first on sys.path and would shadow the SDK's `tablestore`
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path[:0] = [os.path.join(ROOT, "shared"), os.path.join(ROOT, "tests"), ROOT]


def import_time(module, runs=7):
    """Median wall time of ``import <module>`` in a fresh interpreter (ms)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "shared")))
        samples.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return statistics.median(samples)


_FIRST_RECORD = {
    "sdk": ("import tablestore as ts; c = ts.OTSClient({endpoint!r}, {id!r}, {secret!r}, 'ossd', sts_token={token!r}, "
            "region='cn-hangzhou'); c.put_row('records', ts.Row([('upload_id', {uid!r})], [('status', 'pending')]), "
            "ts.Condition(ts.RowExistenceExpectation.EXPECT_NOT_EXIST))"),
    "ours": ("from ossdirect.store import open_store; from ossdirect.oss.credentials import Credentials; "
             "s = open_store('tablestore://ossd/records?endpoint={endpoint}&region=cn-hangzhou'); "
             "s.put({{'upload_id': {uid!r}, 'status': 'pending'}}, Credentials({id!r}, {secret!r}, {token!r}))"),
    "sqlite": ("import tempfile, os; from ossdirect.store import open_store; "
               "d = tempfile.mkdtemp(); s = open_store('sqlite:///' + os.path.join(d, 'r.sqlite3')); "
               "s.put({{'upload_id': {uid!r}, 'status': 'pending'}})"),
}


def spawn_ms(code, runs=7):
    """Median wall time of a fresh interpreter running ``code``, spawn to exit (ms)."""
    samples = []
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "shared"), ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code(len(samples))], check=True, env=env, capture_output=True)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def first_record(server, creds):
    """Spawn to first record, minus a bare interpreter (ms): through the SDK, our store, and SQLite."""
    bare = spawn_ms(lambda i: "pass")
    out = {"bare_python_ms": round(bare, 1)}
    for name, template in _FIRST_RECORD.items():
        ms = spawn_ms(lambda i: template.format(endpoint=server.endpoint, id=creds.access_key_id,
                                                secret=creds.access_key_secret, token=creds.security_token,
                                                uid=f"cold-{name}-{i}-{time.time_ns()}"))
        out[name] = round(ms - bare, 1)
    return out


def callback_cold(server, creds, reps=7):
    """The callback function's cold start (verify + HeadObject + record, bench/cold_start.py's run) with
    its records in Tablestore (the stand-in) and in SQLite, minus a bare interpreter (ms)."""
    from bench.callback import oss_stub, signed_events
    from bench.cold_start import COLD
    from bench.common import source_env

    bare = spawn_ms(lambda i: "pass", reps)
    server.credentials["a"] = ("b", "c")  # the keys bench/cold_start.py's FC context carries
    out = {}
    with tempfile.TemporaryDirectory() as tmp, oss_stub() as (base, key):
        env = source_env(os.path.join(tmp, "pycache"))  # the first run writes the bytecode, untimed
        for store, records in (("tablestore", f"tablestore://ossd/records?endpoint={server.endpoint}&region=cn-hangzhou"),
                               ("sqlite", f"sqlite:///{tmp}/r.sqlite3")):
            cb_env = dict(env, OSSDIRECT_BUCKET="bench-bucket", OSSDIRECT_REGION="cn-hangzhou", OSSDIRECT_RECORDS=records,
                          OSSDIRECT_TRUSTED_KEY_PREFIXES=base + "/_emulator/", OSSDIRECT_OSS_ENDPOINT=base + "/bench-bucket")
            events = iter(signed_events(key, base, f"cold-{store}", reps + 1))
            samples = []
            for run in range(reps + 1):
                t = time.perf_counter()
                done = subprocess.run([sys.executable, "-c", COLD, os.path.join(ROOT, "functions", "callback"),
                                       os.path.join(ROOT, "shared"), next(events).decode()], env=cb_env,
                                      capture_output=True, text=True)
                if run:  # the first run wrote the bytecode
                    samples.append((time.perf_counter() - t) * 1000)
                if done.returncode or done.stdout.strip() != "200":
                    raise RuntimeError(f"callback cold start failed: {done.stdout} {done.stderr[-600:]}")
            out[store] = round(statistics.median(samples) - bare, 1)
    return out


def latency(fn, n):
    samples = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {"p50_ms": round(samples[len(samples) // 2], 3), "p95_ms": round(samples[int(len(samples) * 0.95)], 3)}


def records(prefix, n):
    return [{"upload_id": f"{prefix}{i}", "record_id": f"rec_{prefix}{i}", "bucket": "b", "key": f"uploads/{i}.png",
             "size": 2048, "etag": "E", "content_type": "image/png", "filename": "a.png",
             "created_at": "2026-03-01T10:00:00.000000Z", "source": "callback", "status": "pending", "user": "u"}
            for i in range(n)]


def bench(n):
    from tablestore_standin import TablestoreStandIn

    from ossdirect.oss.credentials import Credentials
    from ossdirect.store.sqlite import SqliteStore
    from ossdirect.store.tablestore import TablestoreStore
    from tools.tablestore_setup import setup_table

    creds = Credentials("STS.bench", "bench-secret", "bench-token")
    out = {"import_ms": {"tablestore": round(import_time("tablestore"), 1),
                         "ossdirect.store.tablestore": round(import_time("ossdirect.store.tablestore"), 1),
                         "ossdirect.store.sqlite": round(import_time("ossdirect.store.sqlite"), 1)}}
    server = TablestoreStandIn(credentials={creds.access_key_id: (creds.access_key_secret, creds.security_token)})
    try:
        t = time.perf_counter()
        store = TablestoreStore("ossd", "records", server.endpoint, region="cn-hangzhou")
        out["store_construct_ms_warm_import"] = round((time.perf_counter() - t) * 1000, 2)
        setup_table(store, creds)
        out["spawn_to_first_record_ms"] = first_record(server, creds)
        out["callback_cold_above_bare_ms"] = callback_cold(server, creds)
        fresh = TablestoreStore("ossd", "records", server.endpoint, region="cn-hangzhou")
        t = time.perf_counter()
        fresh.put(records("first", 1)[0], creds)
        out["first_put_ms_new_client"] = round((time.perf_counter() - t) * 1000, 2)
        rs = records("t", n)
        out["tablestore_standin"] = {
            "put_new": latency(lambda i: store.put(rs[i], creds), n),
            "put_replay": latency(lambda i: store.put(dict(rs[i], record_id="x"), creds), n),
            "get": latency(lambda i: store.get(rs[i]["upload_id"], creds), n),
            "update": latency(lambda i: store.update(rs[i]["upload_id"], {"status": "pending"},
                                                     {"status": "accepted"}, creds), n),
        }
    finally:
        server.close()
    with tempfile.TemporaryDirectory() as tmp:
        sq = SqliteStore(os.path.join(tmp, "r.sqlite3"))
        rs = records("s", n)
        out["sqlite"] = {
            "put_new": latency(lambda i: sq.put(rs[i]), n),
            "put_replay": latency(lambda i: sq.put(dict(rs[i], record_id="x")), n),
            "get": latency(lambda i: sq.get(rs[i]["upload_id"]), n),
            "update": latency(lambda i: sq.update(rs[i]["upload_id"], {"status": "pending"}, {"status": "accepted"}), n),
        }
    return out


def compare():
    import hashlib

    from tablestore_standin import TablestoreStandIn, b64hmac, canonical, v4_signing_key

    from ossdirect.oss.credentials import Credentials
    from ossdirect.store.tablestore import TablestoreStore
    from tools.tablestore_setup import setup_table

    creds = Credentials("STS.cmp", "cmp-secret", "cmp-token")
    server = TablestoreStandIn(credentials={creds.access_key_id: (creds.access_key_secret, creds.security_token)})
    real = TablestoreStore.from_url("tablestore://ossd/records?endpoint=https://ossd.cn-hangzhou.ots.aliyuncs.com")
    local = TablestoreStore("ossd", "records", server.endpoint, region="cn-hangzhou")
    setup_table(local, creds)
    captured = []

    class Captured(Exception):
        pass

    def capture(api, body, headers):  # the protocol client's transport boundary: nothing is sent
        wire = real._wire
        captured.append((f"{'https' if wire.https else 'http'}://{wire.host}{wire.prefix}/{api}", dict(headers), body))
        raise Captured()

    real.wire(creds)._send = capture
    calls = [
        ("put", (dict(upload_id="c1", record_id="rec_c1", size=5, filename="é.png", created_at="2026-03-01T10:00:00Z",
                      user="alice", status="pending"), creds)),
        ("put", (dict(upload_id="c1", record_id="rec_other", size=5, created_at="2026-03-01T10:00:00Z"), creds)),
        ("get", ("c1", creds)),
        ("update", ("c1", {"status": "pending", "payload": None}, {"status": "accepted", "status_reason": None}, creds)),
        ("list_records", (), {"user": "alice", "limit": 10, "credentials": creds}),
    ]
    report = []
    for name, args, *kw in calls:
        before = len(server.requests)
        getattr(local, name)(*args, **(kw[0] if kw else {}))
        sent_local = server.requests[before:]
        captured.clear()
        try:
            getattr(real, name)(*args, **(kw[0] if kw else {}))
        except Exception:
            pass
        url, headers, body = captured[0]
        api, lheaders, lbody = sent_local[0]
        volatile = {"x-ots-date", "x-ots-signaturev4", "x-ots-signature", "x-ots-signdate"}
        same_headers = {k: v for k, v in headers.items() if k not in volatile} == \
            {k: v for k, v in lheaders.items() if k.lower().startswith("x-ots-") and k not in volatile
             } | {"User-Agent": headers.get("User-Agent")}
        key = v4_signing_key(creds.access_key_secret, headers["x-ots-signdate"], "cn-hangzhou")
        signature_ok = b64hmac(key, canonical("/" + api, "", headers) + "ots", hashlib.sha256) == headers["x-ots-signaturev4"]
        report.append({"call": name, "api": api, "real_url": url, "same_path": url.endswith("/" + api),
                       "same_headers": same_headers, "same_body": body == lbody, "body_bytes": len(body),
                       "real_request_signature_verifies": signature_ok})
    server.close()
    return report


def row(r):
    t, q, i, f = r["tablestore_standin"], r["sqlite"], r["import_ms"], r["spawn_to_first_record_ms"]
    cb = r["callback_cold_above_bare_ms"]
    return (f"| record store: Tablestore (own protocol client, `store/ots_wire.py`, against the loopback stand-in) | "
            f"import {i['ossdirect.store.tablestore']:.0f} ms, spawn to first record +{f['ours']:.0f} ms, callback cold "
            f"start +{cb['tablestore']:.0f} ms (SQLite records +{cb['sqlite']:.0f} ms); put p50 "
            f"{t['put_new']['p50_ms']:.2f} ms, replay {t['put_replay']['p50_ms']:.2f} ms, get "
            f"{t['get']['p50_ms']:.2f} ms | SDK: `import tablestore` {i['tablestore']:.0f} ms, spawn to first record "
            f"+{f['sdk']:.0f} ms; SQLite put {q['put_new']['p50_ms']:.2f} ms, get {q['get']['p50_ms']:.2f} ms "
            f"(import {i['ossdirect.store.sqlite']:.0f} ms, first record +{f['sqlite']:.0f} ms) | {f['sdk'] / max(f['ours'], 0.1):.0f}× faster cold | "
            f"≤ +70 ms | {'yes' if f['ours'] <= 70 else 'NO'} |")


def _run(args):
    return bench(100 if args.quick else 300)


def _benchmarks():
    from bench.common import Benchmark

    return [Benchmark("tablestore", _run, row)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    print(json.dumps(compare() if args.compare else bench(args.n), indent=2))


if __name__ == "__main__":
    main()
