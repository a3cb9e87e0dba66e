"""The process function (OSS trigger): its cold start (a fresh interpreter importing
functions/process/index.py and handling one event: HeadObject + ranged GET + content check + SQLite
record, against the loopback stand-in for OSS of bench/callback.py) and its per-event time, each next to
the callback function's measured in the same run, the same way."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.callback import oss_stub, signed_events
from bench.common import ROOT, STS, Benchmark, compare, met, source_env

# argv: function dir, shared dir, event (text). Prints what the handler answered, in one word. shared/
# comes first: a function dir may hold a stale vendored ossdirect/ from an earlier packaging (gitignored).
COLD = r"""
import sys, types
sys.path[:0] = [sys.argv[2], sys.argv[1]]
import index
ctx = types.SimpleNamespace(credentials=types.SimpleNamespace(access_key_id="a", access_key_secret="b", security_token="c"))
r = index.handler(sys.argv[3].encode(), ctx)
print(r["statusCode"] if "statusCode" in r else r["results"][0]["action"])
"""


def oss_events(tag, n):
    """n OSS-trigger events as FC hands them to the function, for uploads/<tag><i>.jpg."""
    out = []
    for i in range(n):
        out.append(json.dumps({"events": [{
            "eventName": "ObjectCreated:PostObject", "eventSource": "acs:oss", "eventVersion": "1.0",
            "eventTime": "2025-06-01T06:45:43.000Z", "region": "cn-hangzhou",
            "oss": {"bucket": {"arn": "acs:oss:cn-hangzhou:1000:bench-bucket", "name": "bench-bucket",
                               "ownerIdentity": "1000"},
                    "object": {"deltaSize": 10, "eTag": "E", "key": f"uploads/{tag}{i}.jpg", "size": 10},
                    "ossSchemaVersion": "1.0", "ruleId": "bench"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"}, "responseElements": {"requestId": "R"},
            "userIdentity": {"principalId": "1000"}}]}).encode())
    return out


def _env(base, records):
    return {"OSSDIRECT_BUCKET": "bench-bucket", "OSSDIRECT_REGION": "cn-hangzhou",
            "OSSDIRECT_TRUSTED_KEY_PREFIXES": base + "/_emulator/", "OSSDIRECT_OSS_ENDPOINT": base + "/bench-bucket",
            "OSSDIRECT_RECORDS": records, "OSSDIRECT_PREFIX": "uploads/"}


def bench_cold(reps):
    """Median wall time of a fresh process per run (each run a new upload id, so each really records)."""
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, oss_stub() as (base, key):
        base_env = source_env(os.path.join(tmp, "pycache"))  # the first round writes the bytecode, untimed
        env = dict(base_env, **_env(base, f"sqlite:///{tmp}/r.sqlite3"))
        proc_events, cb_events = oss_events("pcold", reps + 1), signed_events(key, base, "ccold", reps + 1)
        bare, proc, cb = [], [], []
        proc_out = cb_out = None
        for i in range(reps + 1):  # alternate the three, one run each per round (a shared machine drifts)
            bare.append(_one([py, "-c", "pass"], base_env)[0])
            ms, proc_out = _one([py, "-c", COLD, str(ROOT / "functions/process"), str(ROOT / "shared"),
                                 proc_events[i].decode()], env)
            proc.append(ms)
            ms, cb_out = _one([py, "-c", COLD, str(ROOT / "functions/callback"), str(ROOT / "shared"),
                               cb_events[i].decode()], env)
            cb.append(ms)
    bare, proc, cb = bare[1:], proc[1:], cb[1:]  # the first round wrote the bytecode
    bare_ms, proc_ms, cb_ms = statistics.median(bare), statistics.median(proc), statistics.median(cb)
    return {"bare_ms": bare_ms, "process_ms": proc_ms, "callback_ms": cb_ms, "process_above_bare_ms": proc_ms - bare_ms,
            "callback_above_bare_ms": cb_ms - bare_ms, "process_answer": proc_out, "callback_answer": cb_out,
            "runs": reps}


def _one(args, env):
    t = time.perf_counter()
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout.strip()
    return (time.perf_counter() - t) * 1000, out


def bench_warm(n):
    """Per event on a warm instance: the process function (HeadObject + ranged GET + puremagic + SQLite
    record) vs the callback function (verify + HeadObject + SQLite record), alternating rounds."""
    from ossdirect.app.handlers import CallbackApp, ProcessApp
    from ossdirect.store import open_store

    with tempfile.TemporaryDirectory() as tmp, oss_stub() as (base, key):
        env = _env(base, f"sqlite:///{tmp}/r.sqlite3")
        process, callback = ProcessApp(env), CallbackApp(env)
        warm = process(oss_events("pwarm", 1)[0], STS)  # warm up; and make sure the success path is timed
        assert warm["results"][0]["action"] == "created" and warm["results"][0]["status"] == "recorded", warm
        assert callback(signed_events(key, base, "cwarm", 1)[0], STS)["statusCode"] == 200
        proc_events, cb_events = iter(oss_events("p", n)), iter(signed_events(key, base, "c", n))
        out = compare(lambda: process(next(proc_events), STS), lambda: callback(next(cb_events), STS), n)
        out["process"], out["callback"] = out.pop("ours"), out.pop("peer")
        store = open_store(env["OSSDIRECT_RECORDS"])
        try:
            records = store.all()
        finally:
            store.close()
        out["records_written"] = len(records) - 2  # not the warm-ups
        out["event_records"] = sum(1 for r in records if r["source"] == "event") - 1
        out["content_checked"] = sum(1 for r in records if r.get("content_type_detected") == "image/jpeg")
    return out


def bench_process(args):
    reps, n = (5, 500) if args.quick else (15, 3000)
    return {"cold": bench_cold(reps), "warm": bench_warm(n)}


def row(r):
    c, w = r["cold"], r["warm"]
    ok = c["process_above_bare_ms"] <= 200 and w["process"]["per_s"] >= 500
    return (f"| process function (OSS event → HeadObject + ranged GET + content check + SQLite record) | cold start "
            f"(source tree, bytecode cached) +{c['process_above_bare_ms']:.0f} ms; {w['process']['per_s']:,.0f} events/s, p50 "
            f"{w['process']['p50_ms']:.2f} ms, p99 {w['process']['p99_ms']:.2f} ms | callback cold start "
            f"+{c['callback_above_bare_ms']:.0f} ms, {w['callback']['per_s']:,.0f}/s (bare `python -c pass` "
            f"{c['bare_ms']:.0f} ms) | {w['process']['per_s'] / w['callback']['per_s']:.0%} | ≤ 200 ms, ≥ 500/s "
            f"| {met(ok)} |")


BENCHMARKS = [Benchmark("process", bench_process, row)]
