"""Benchmarks, each figure next to a reference measured in the same run. Prints a table, writes results.json.

    python -m bench            # full run (~3-5 min on 2 cores)
    python -m bench --quick    # smaller counts, 256 MiB instead of 1 GiB
"""

import argparse
import json
import logging
import os
import platform
import sys

from bench import ROOT, callback, cli, cold_start, emulator, process, signature, stack, tablestore
from bench import crc64, multipart

BENCHMARKS = [*signature.BENCHMARKS, *cold_start.BENCHMARKS, *callback.BENCHMARKS, *process.BENCHMARKS, *emulator.BENCHMARKS,
              *stack.BENCHMARKS, *cli.BENCHMARKS,
              *multipart.BENCHMARKS, *crc64.BENCHMARKS,
              *tablestore._benchmarks()]
HEADER = ["| what | ours | reference (same run) | ratio | floor | met |", "|---|---|---|---|---|---|"]


def main(argv=None):
    names = [b.name for b in BENCHMARKS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help=f"comma list: {','.join(names)}")
    parser.add_argument("--emulator-data-dir", default=None,
                        help="where the emulator stores the 1 GiB object (default: the system temp dir, on disk)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    if only and only - set(names):
        parser.error(f"--only: unknown {', '.join(sorted(only - set(names)))} (known: {', '.join(names)})")

    logging.disable(logging.CRITICAL)  # per-request log lines would be the benchmark
    results = {"machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()}, "quick": args.quick}
    for bench in BENCHMARKS:
        if only and bench.name not in only:
            continue
        print(f"running {bench.name}…", file=sys.stderr, flush=True)
        results[bench.name] = bench.run(args)
    print(table(results))
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def table(results):
    return "\n".join(HEADER + [bench.row(results[bench.name]) for bench in BENCHMARKS if bench.name in results])


def _cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
