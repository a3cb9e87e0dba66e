"""What the benchmarks share: fixtures (credentials, config, OSS's documented callback) and the timing loops."""

import os
import time
import types
from typing import Callable, NamedTuple

from bench import ROOT  # noqa: F401  (re-exported for the benchmark modules)


class Benchmark(NamedTuple):
    name: str  # its key in results.json and for --only
    run: Callable  # run(args) -> dict of results (args: the parsed command line, args.quick et al.)
    row: Callable  # row(results) -> its line of the table


STS = types.SimpleNamespace(credentials=types.SimpleNamespace(
    access_key_id="STS.benchkeyid", access_key_secret="bench-secret", security_token="bench-token-" + "x" * 400))
SIG_ENV = {"OSSDIRECT_BUCKET": "bench-bucket", "OSSDIRECT_REGION": "cn-hangzhou",
           "OSSDIRECT_CALLBACK_URL": "https://cb.example.com/oss-callback"}
# The callback example from OSS's documentation, signed by OSS's published key.
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


def source_env(pycache):
    """A fresh process's environment for the source-tree cold starts: no metadata lookups, and bytecode
    written and read under ``pycache`` (an untimed first run writes it), as a developer's machine has it."""
    return {"PATH": os.environ.get("PATH", ""), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "PYTHONPYCACHEPREFIX": pycache}


def met(ok):
    return "yes" if ok else "NO"


def fresh_page_cache(directory, size):
    """Write ``size`` bytes to a scratch file in ``directory`` and delete it, just before a timed upload, so
    every upload's page cache comes from pages this VM freed a moment ago.

    Why: this VM returns free memory to its host (virtio-balloon free page reporting, blocks of 2 MiB and up,
    about 2 s after they are freed), and the first touch of a returned page faults to the host. A GiB written
    into such pages cost the emulator 1.0-2.3 s more CPU than the same GiB into pages freed just before
    (a loopback write test: 1 GiB in 0.2 s after a delete, 1.1-2.3 s with a 4 s pause between); so whichever
    upload followed a pause, or a socket copy that frees no file pages, was measured slower. A machine that
    keeps its memory has no such cost: this measures that machine, the same for every command compared."""
    block = bytearray(1 << 20)
    path = os.path.join(directory, ".bench-scratch")
    with open(path, "wb", buffering=0) as f:
        for _ in range(-(-size // len(block))):
            f.write(block)
    os.unlink(path)
