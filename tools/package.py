"""Build each function's code directory exactly as `s deploy` uploads it.

    python tools/package.py                       # in place: functions/<fn>/{ossdirect,python}
    python tools/package.py --out build/ --python-version 3.12

Vendors shared/ossdirect beside each handler and installs the function's
requirements.txt for manylinux x86_64 / CPython of the target runtime into
<fn>/python (s.yaml sets PYTHONPATH=/code/python). The vendored copies are build
output (git-ignored). Runs offline except for pip's wheel downloads.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("signature", "callback")
# FC python3.10 runs on Debian 10 (glibc 2.28), python3.12 on Debian 11: manylinux_2_28 and older wheels.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def requirements(function):
    lines = (ROOT / "functions" / function / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def build(function, target, python_version="3.10", wheel_cache=None):
    """Write the deployable code directory of ``function`` into ``target``; returns its path."""
    source = ROOT / "functions" / function
    target = Path(target)
    if target.resolve() != source.resolve():
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in ("index.py", "requirements.txt"):
            shutil.copy2(source / name, target / name)
    vendored = target / "ossdirect"
    if vendored.exists():
        shutil.rmtree(vendored)
    shutil.copytree(ROOT / "shared" / "ossdirect", vendored, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    deps = target / "python"
    if deps.exists():
        shutil.rmtree(deps)
    reqs = requirements(function)
    if reqs:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(deps), "--implementation", "cp", "--python-version", python_version,
               "--only-binary=:all:"]
        for platform in PLATFORMS:
            cmd += ["--platform", platform]
        if wheel_cache:
            cmd += ["--cache-dir", str(wheel_cache)]
        subprocess.run(cmd + reqs, check=True)
        for junk in deps.glob("*.dist-info"):
            shutil.rmtree(junk)  # metadata the runtime never reads
    return target


def size_of(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="build into OUT/<function> instead of functions/<function>")
    parser.add_argument("--python-version", default="3.10", help="target runtime's CPython (3.10 or 3.12)")
    parser.add_argument("--function", choices=FUNCTIONS, action="append")
    args = parser.parse_args(argv)
    for function in args.function or FUNCTIONS:
        target = Path(args.out) / function if args.out else ROOT / "functions" / function
        build(function, target, args.python_version)
        print(f"{function}: {target} ({size_of(target) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
