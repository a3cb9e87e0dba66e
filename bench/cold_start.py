"""Cold start: a fresh interpreter importing each handler and answering one call, minus a bare interpreter."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.common import ROOT, SIG_ENV, Benchmark, met

COLD = r"""
import sys, json, types
sys.path[:0] = [sys.argv[2], sys.argv[1]]  # shared first: never a stale vendored copy
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
    from bench.signature import signed_in_env

    jwt_env, key = signed_in_env()
    import jwt

    token = jwt.encode({"sub": "u", "iss": "https://id.example/", "aud": "bench", "exp": int(time.time()) + 3600},
                       key, algorithm="RS256")
    jwt_event = json.dumps({"rawPath": "/", "headers": {"Authorization": f"Bearer {token}"},
                            "queryParameters": {"filename": "a.jpg", "size": "10", "content_type": "image/jpeg"},
                            "requestContext": {"http": {"method": "GET"}}})
    sig_jwt, sig_jwt_out = run_ms([py, "-c", COLD, str(ROOT / "functions/signature"), str(ROOT / "shared"), jwt_event],
                                  dict(env, **jwt_env), reps)
    # The callback's whole path on a cold instance: verify, HeadObject on a loopback stand-in for OSS
    # (in its own process), write the record: a fresh upload id per run, so each one really records.
    from bench.callback import oss_stub, signed_events

    with tempfile.TemporaryDirectory() as tmp, oss_stub() as (base, key):
        cb_env = dict(env, OSSDIRECT_BUCKET="bench-bucket", OSSDIRECT_REGION="cn-hangzhou",
                      OSSDIRECT_TRUSTED_KEY_PREFIXES=base + "/_emulator/", OSSDIRECT_OSS_ENDPOINT=base + "/bench-bucket",
                      OSSDIRECT_RECORDS=f"sqlite:///{tmp}/r.sqlite3")
        events = iter(signed_events(key, base, "cold", reps))
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            cb_out = subprocess.run([py, "-c", COLD, str(ROOT / "functions/callback"), str(ROOT / "shared"),
                                     next(events).decode()], env=cb_env, capture_output=True, text=True,
                                    check=True).stdout.strip()
            times.append((time.perf_counter() - t) * 1000)
        cb = statistics.median(times)
    return {"bare_ms": bare, "boto3_import_ms": boto, "signature_ms": sig, "callback_ms": cb,
            "signature_jwt_above_bare_ms": sig_jwt - bare, "signature_jwt_status": sig_jwt_out,
            "signature_above_bare_ms": sig - bare, "callback_above_bare_ms": cb - bare,
            "signature_status": sig_out, "callback_status": cb_out}


def row(c):
    ok = c["signature_above_bare_ms"] <= 50 and c["callback_above_bare_ms"] <= 120
    return (f"| cold start (fresh interpreter, import, first call) | signature +{c['signature_above_bare_ms']:.0f} ms, "
            f"callback (verify + HeadObject + record) +{c['callback_above_bare_ms']:.0f} ms; signature with `OSSDIRECT_AUTH=jwt` "
            f"+{c['signature_jwt_above_bare_ms']:.0f} ms | bare `python -c pass` {c['bare_ms']:.0f} ms; "
            f"`import boto3` {c['boto3_import_ms']:.0f} ms | — | ≤ 50 / ≤ 120 ms | {met(ok)} |")


BUNDLE_COLD = r"""
import sys, json, types
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/python"]  # exactly FC's code directory and PYTHONPATH
import index
ctx = types.SimpleNamespace(credentials=types.SimpleNamespace(access_key_id="a", access_key_secret="b", security_token="c"))
print(index.handler(sys.argv[2].encode(), ctx)["statusCode"])
"""


def bench_bundle_cold(reps):
    """The signature function's deploy bundle on the runtime's CPython 3.10, read-only as on FC: with the
    bytecode tools/package.py ships, and with it removed (FC then compiles every module at every cold start)."""
    import shutil
    import stat

    from bench.signature import signed_in_env
    from tools import package

    py = package.runtime_python("3.10")
    if py is None:
        return {"skipped": "no CPython 3.10 on this machine"}
    # PYTHONDONTWRITEBYTECODE: as root, read-only bits do not stop the first run writing __pycache__
    env = {"PATH": os.environ.get("PATH", ""), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
           "PYTHONDONTWRITEBYTECODE": "1"}
    event = json.dumps({"rawPath": "/", "queryParameters": {"filename": "a.jpg", "size": "10",
                                                            "content_type": "image/jpeg"},
                        "requestContext": {"http": {"method": "GET"}}})
    jwt_env, key = signed_in_env()
    import jwt

    token = jwt.encode({"sub": "u", "iss": "https://id.example/", "aud": "bench", "exp": int(time.time()) + 3600},
                       key, algorithm="RS256")
    jwt_event = json.dumps({"rawPath": "/", "headers": {"Authorization": f"Bearer {token}"},
                            "queryParameters": {"filename": "a.jpg", "size": "10", "content_type": "image/jpeg"},
                            "requestContext": {"http": {"method": "GET"}}})
    out = {"python": py}
    with tempfile.TemporaryDirectory() as tmp:
        shipped = package.build("signature", os.path.join(tmp, "bytecode", "signature"), "3.10")
        sources = os.path.join(tmp, "sources", "signature")
        shutil.copytree(shipped, sources, ignore=shutil.ignore_patterns("__pycache__"))
        bundles = {"bytecode": str(shipped), "sources": sources}
        for root in bundles.values():
            for dirpath, dirnames, filenames in os.walk(root):
                for name in [*dirnames, *filenames, "."]:
                    path = os.path.join(dirpath, name)
                    os.chmod(path, os.stat(path).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        # interleaved, one run of each per round, so the machine's load falls on both alike
        times = {(label, kind): [] for label in bundles for kind in ("anon", "signed")}
        bare = []
        for _ in range(reps):
            bare.append(run_ms([py, "-c", "pass"], env, 1)[0])
            for label, root in bundles.items():
                times[label, "anon"].append(run_ms([py, "-c", BUNDLE_COLD, root, event], dict(env, **SIG_ENV), 1)[0])
                times[label, "signed"].append(run_ms([py, "-c", BUNDLE_COLD, root, jwt_event],
                                                     dict(env, **jwt_env), 1)[0])
        out["bare_ms"] = statistics.median(bare)
        for label in bundles:
            out[label] = {"signature_above_bare_ms": statistics.median(times[label, "anon"]) - out["bare_ms"],
                          "signed_in_above_bare_ms": statistics.median(times[label, "signed"]) - out["bare_ms"]}
        for root in bundles.values():
            for dirpath, dirnames, filenames in os.walk(root):
                for name in [*dirnames, *filenames, "."]:
                    path = os.path.join(dirpath, name)
                    os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    return out


def bundle_row(c):
    if "skipped" in c:
        return f"| cold start from the deploy bundle | {c['skipped']} | — | — | — | — |"
    b, s = c["bytecode"], c["sources"]
    ok = b["signature_above_bare_ms"] <= 30 and b["signed_in_above_bare_ms"] <= 80
    return (f"| cold start from the deploy bundle (CPython 3.10, read-only code dir) | signature "
            f"+{b['signature_above_bare_ms']:.0f} ms, signed in +{b['signed_in_above_bare_ms']:.0f} ms with the shipped "
            f"bytecode | same bundle without bytecode: +{s['signature_above_bare_ms']:.0f} / "
            f"+{s['signed_in_above_bare_ms']:.0f} ms; bare 3.10 {c['bare_ms']:.0f} ms | — | ≤ 30 / ≤ 80 ms | {met(ok)} |")


BENCHMARKS = [Benchmark("cold", lambda args: bench_cold(5 if args.quick else 15), row),
              Benchmark("cold-bundle", lambda args: bench_bundle_cold(5 if args.quick else 15), bundle_row)]
