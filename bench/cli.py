"""The `ossdirect upload` command against the local stack, next to `curl -F` of the same file in the same run.

Both send one file to the emulator through a signed form (the callback records it). The CLI's time is its
whole process (interpreter start, form request, streamed POST, callback); curl's is its POST alone (its
form is fetched before the clock starts), so the ratio is conservative. Rounds alternate; best round wins.

The CLI runs as installed: pip writes each module's bytecode (.pyc) when it installs the package, so the
CLI's own modules are compiled once, in a warm-up run, into a bytecode folder of the run's own (a source
tree under PYTHONDONTWRITEBYTECODE=1 would otherwise compile ~2,000 lines on every start, ~40 ms).

Every upload starts from the same page cache: the payload is flushed to disk once, each stored object is
deleted once its upload is timed, and each upload's pages were freed just before it (bench.common's
fresh_page_cache). Kept, the objects needed new pages for each upload, which on this VM cost the emulator
~2.4x the CPU (0.6 -> 1.5 s per upload, six uploads in a row), so later rounds ran slower.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from bench.common import Benchmark, fresh_page_cache, met

MiB = 1024 * 1024
TYPES = "image/*,text/plain,application/octet-stream"


def _cli_path():
    return shutil.which("ossdirect", path=os.path.dirname(sys.executable)) or "ossdirect"


def _installed_env(pycache):
    """The environment with bytecode written and read under ``pycache`` (as an installed package has it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def _cpu():
    """(CPU seconds of this process: the local stack runs in it, CPU seconds of its ended children)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def _run_measured(cmd, env=None, cpu=None):
    """(seconds, exit code, stdout, peak RSS bytes from /proc VmHWM); ``cpu`` gets (client, stack) CPU seconds."""
    before = _cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    chunks, peak = [], 0
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    reader.join(5)
    if cpu is not None:
        after = _cpu()
        cpu.append((after[1] - before[1], after[0] - before[0]))
    return elapsed, proc.returncode, (chunks[0] if chunks else b"").decode(), peak


def bench_cli(size_mib, rounds):
    import requests

    from devstack import LocalStack

    if not shutil.which("curl"):
        return {"error": "curl not found"}
    with tempfile.TemporaryDirectory() as tmp, LocalStack(
            os.path.join(tmp, "stack"), env={"OSSDIRECT_MAX_BYTES": str((size_mib + 1) * MiB),
                                              "OSSDIRECT_CONTENT_TYPES": TYPES}) as stack:
        path = os.path.join(tmp, "payload.bin")
        block = os.urandom(MiB)
        with open(path, "wb") as f:
            for _ in range(size_mib):
                f.write(block)
            os.fsync(f.fileno())  # clean pages: the uploads read it from the cache, none writes it back
        bucket = stack.sdk()
        size = size_mib * MiB
        env = _installed_env(os.path.join(tmp, "pycache"))
        subprocess.run([sys.executable, "-c", "import ossdirect.client.cli, ossdirect.client, requests"], env=env,
                       check=True)
        cli_runs, curl_runs, peaks, cli_inner, plain_runs = [], [], [], [], []
        cli_cpu, curl_cpu = [], []  # (client, stack) CPU seconds per run: the machine's cores are the bound
        upload = [_cli_path(), "upload", path, "--signature-url", stack.signature_url, "--json", "--no-progress"]
        for _ in range(rounds):
            fresh_page_cache(tmp, size)
            seconds, code, out, peak = _run_measured(upload, env, cli_cpu)
            if code != 0:
                return {"error": f"ossdirect upload exited {code}: {out[:300]}"}
            answer = json.loads(out)
            cli_runs.append(size / seconds / 1e6)
            cli_inner.append(size / answer["summary"]["seconds"] / 1e6)
            peaks.append(peak)
            bucket.delete_object(answer["files"][0]["key"])
            # the same without signing each part's MD5 (one hashing pass less; the CRC-64 compare stays)
            fresh_page_cache(tmp, size)
            seconds, code, out, peak = _run_measured([*upload, "--no-part-md5"], env)
            if code != 0:
                return {"error": f"ossdirect upload --no-part-md5 exited {code}: {out[:300]}"}
            plain_runs.append(size / seconds / 1e6)
            peaks.append(peak)
            bucket.delete_object(json.loads(out)["files"][0]["key"])
            form = requests.get(stack.signature_url, params={"filename": "payload.bin", "size": size,
                                                             "content_type": "application/octet-stream"},
                                timeout=30).json()
            cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"]
            for name, value in form["field_list"]:
                cmd += ["--form-string", f"{name}={value}"]
            cmd += ["-F", f"file=@{path};type=application/octet-stream", form["host"]]
            fresh_page_cache(tmp, size)
            seconds, code, out, _ = _run_measured(cmd, cpu=curl_cpu)
            if code != 0 or out.strip() != "200":
                return {"error": f"curl exited {code}, HTTP {out.strip()}"}
            curl_runs.append(size / seconds / 1e6)
            bucket.delete_object(dict(form["field_list"])["key"])
        records = len(stack.records())
    best_cli, best_curl = max(cli_runs), max(curl_runs)
    # the machine's cores bound the CLI's wall time from below: its CPU plus the stack's, spread over every core
    least_cpu = min(c + s for c, s in cli_cpu)
    cpu_bound = size / (least_cpu / os.cpu_count()) / 1e6
    return {"size_mib": size_mib, "rounds": rounds, "cli_mb_s": best_cli, "cli_inner_mb_s": max(cli_inner),
            "curl_mb_s": best_curl, "ratio": best_cli / best_curl, "cli_peak_rss_mib": max(peaks) / MiB,
            "no_part_md5_mb_s": max(plain_runs), "no_part_md5_ratio": max(plain_runs) / best_curl,
            "records": records, "expected_records": 3 * rounds, "cores": os.cpu_count(),
            "cpu_bound_mb_s": cpu_bound, "cpu_bound_ratio": cpu_bound / best_curl,
            "cli_cpu_s": [round(min(c for c, _ in cli_cpu), 2), round(min(s for _, s in cli_cpu), 2)],
            "curl_cpu_s": [round(min(c for c, _ in curl_cpu), 2), round(min(s for _, s in curl_cpu), 2)],
            "cli_rounds": [round(x) for x in cli_runs], "curl_rounds": [round(x) for x in curl_runs]}


def row(s):
    if "error" in s:
        return f"| CLI upload vs curl -F | {s['error']} | — | — | — | NO |"
    ok = s["ratio"] >= 0.8 and s["cli_peak_rss_mib"] < 60 and s["records"] == s["expected_records"]
    return (f"| `ossdirect upload` {s['size_mib']} MiB (whole process; in-process {s['cli_inner_mb_s']:,.0f} MB/s) | "
            f"{s['cli_mb_s']:,.0f} MB/s, peak RSS {s['cli_peak_rss_mib']:.1f} MiB; `--no-part-md5` "
            f"{s['no_part_md5_mb_s']:,.0f} MB/s ({s['no_part_md5_ratio']:.0%}) | `curl -F` same file "
            f"{s['curl_mb_s']:,.0f} MB/s | {s['ratio']:.0%} | ≥ 80%, < 60 MiB | {met(ok)} |\n"
            f"| ↳ CPU seconds per upload, client + local stack (least of the rounds; {s['cores']} cores) | "
            f"{s['cli_cpu_s'][0]:.2f} + {s['cli_cpu_s'][1]:.2f} s | `curl -F` {s['curl_cpu_s'][0]:.2f} + "
            f"{s['curl_cpu_s'][1]:.2f} s | at most {s['cpu_bound_ratio']:.0%} | the cores' bound: "
            f"(client + stack CPU) ÷ {s['cores']} cores ≥ the wall time, {s['cpu_bound_mb_s']:,.0f} MB/s at best | — |")


BENCHMARKS = [Benchmark("cli", lambda args: bench_cli(64 if args.quick else 256, 2 if args.quick else 3), row)]


if __name__ == "__main__":  # python -m bench.cli [--quick]
    import logging

    logging.disable(logging.CRITICAL)
    quick = "--quick" in sys.argv[1:]
    result = bench_cli(64 if quick else 256, 2 if quick else 3)
    print(json.dumps(result, indent=2))
    print(row(result))
