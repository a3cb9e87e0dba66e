"""Build each function's code directory exactly as `s deploy` uploads it.

    python tools/package.py                       # in place: functions/<fn>/{ossdirect,python}
    python tools/package.py --out build/ --python-version 3.12
    python tools/package.py --lock                # re-resolve functions/requirements.lock

Vendors shared/ossdirect beside each handler and installs the function's third-party
packages for manylinux x86_64 / CPython of the target runtime into <fn>/python
(s.yaml sets PYTHONPATH=/code/python). What is installed comes only from
functions/requirements.lock: exact versions, sha256 hashes (pip's --require-hashes),
no dependency resolution at build time (--no-deps), so every build of a commit ships
the same wheels. functions/<fn>/requirements.txt says what a function needs; `--lock`
resolves those into the lock for every runtime in RUNTIMES. Only what runs is shipped:
no console scripts (bin/, whose first line names the build machine's Python), of
*.dist-info only METADATA (importlib.metadata reads it). Bytecode is compiled by the runtime's own
CPython (``python3.10`` on PATH), as unchecked-hash .pyc with /code paths: reproducible (no mtimes),
and read as it is at every cold start on FC's read-only code directory, where nothing can be
compiled and cached (without it, every cold start compiles every module). Without that interpreter
the bundle ships no bytecode, and the build says so. The vendored copies are build output (git-ignored).

No function ships the Tablestore SDK (~97 MB with numpy, ~0.5 s to import): the Tablestore
stores speak the protocol themselves (shared/ossdirect/store/ots_wire.py); the SDK is only for the
setup tools, which run on the deployer's machine. Runs offline except for pip's wheel downloads.
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("signature", "callback", "process")
LOCK = ROOT / "functions" / "requirements.lock"
# FC python3.10 runs on Debian 10 (glibc 2.28), python3.12 on Debian 11: manylinux_2_28 and older wheels.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
RUNTIMES = ("3.10", "3.12")  # CPython versions of the FC runtimes the lock covers (first: resolved)
PIP = [sys.executable, "-m", "pip"]
QUIET = ["--quiet", "--disable-pip-version-check"]


def _target_flags(python_version):
    flags = ["--implementation", "cp", "--python-version", python_version, "--only-binary=:all:"]
    for platform in PLATFORMS:
        flags += ["--platform", platform]
    return flags


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(function):
    """The function's direct requirements (functions/<fn>/requirements.txt), comments dropped."""
    lines = (ROOT / "functions" / function / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def read_lock(path=LOCK):
    """{canonical name: {"pin": "name==version", "hashes": [...], "functions": [...]}} from the lock."""
    entries, current = {}, None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# for:") and current is not None:
            current["functions"] = line[len("# for:"):].split()
            continue
        if line.startswith("#"):
            continue
        if line.startswith("--hash="):
            current["hashes"].append(line.split()[0][len("--hash="):])
            continue
        pin = line.split()[0]
        name, _, version = pin.partition("==")
        assert version, f"{path}: {pin!r} is not pinned with =="
        current = {"pin": pin, "name": name, "version": version, "hashes": [], "functions": []}
        entries[_canonical(name)] = current
    return entries


def locked_requirements(function, lock=LOCK):
    """The pinned, hashed requirement lines one function installs (its whole dependency closure)."""
    entries = [e for e in read_lock(lock).values() if function in e["functions"]]
    if requirements(function) and not entries:
        raise SystemExit(f"{lock} has nothing for {function}: run `python tools/package.py --lock`")
    return [" ".join([e["pin"]] + [f"--hash={h}" for h in e["hashes"]]) for e in entries]


def build(function, target, python_version="3.10", wheel_cache=None):
    """Write the deployable code directory of ``function`` into ``target``."""
    source = ROOT / "functions" / function
    target = Path(target)
    if target.resolve() != source.resolve():
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in ("index.py", "requirements.txt"):
            shutil.copy2(source / name, target / name)
    else:
        for cache in target.glob("__pycache__"):
            shutil.rmtree(cache)  # bytecode of whatever Python ran the handler locally
    vendored = target / "ossdirect"
    if vendored.exists():
        shutil.rmtree(vendored)
    shutil.copytree(ROOT / "shared" / "ossdirect", vendored, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    deps = target / "python"
    if deps.exists():
        shutil.rmtree(deps)
    pinned = locked_requirements(function)
    if pinned:
        with tempfile.TemporaryDirectory() as tmp:
            req = Path(tmp) / "requirements.txt"
            req.write_text("\n".join(pinned) + "\n")
            cmd = PIP + ["install"] + QUIET + ["--no-compile", "--no-deps", "--require-hashes", "--target", str(deps)]
            cmd += _target_flags(python_version)
            if wheel_cache:
                cmd += ["--cache-dir", str(wheel_cache)]
            subprocess.run(cmd + ["-r", str(req)], check=True)
        prune(deps)
    compile_bytecode(target, python_version)
    return target


RUNTIME_ROOT = "/code"  # where FC unpacks the code (co_filename in tracebacks)


def runtime_python(python_version):
    """The runtime's CPython on this machine (``python3.10`` on PATH, or a pyenv install), or None."""
    candidates = [shutil.which(f"python{python_version}")]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{python_version}.*/bin/python{python_version}"))
    for found in filter(None, candidates):
        out = subprocess.run([found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                             text=True)
        if out.returncode == 0 and out.stdout.strip() == python_version:  # (a pyenv shim may answer 127)
            return found
    return None


def compile_bytecode(target, python_version):
    """Compile every module in ``target`` with the runtime's interpreter: unchecked-hash .pyc (no
    mtime, so two builds of one commit are byte-identical), paths as FC sees them. Returns the number
    of .pyc written (0 when the interpreter is missing: the bundle then ships sources only)."""
    python = runtime_python(python_version)
    if python is None:
        print(f"note: no python{python_version} here: the bundle ships no bytecode, so Function Compute "
              "compiles every module at each cold start", file=sys.stderr)
        return 0
    # one process and a fixed hash seed: set constants are marshalled in hash order, and marshal's
    # back-references depend on the process's history, so this is what makes two builds identical
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run([python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                    "-s", str(target), "-p", RUNTIME_ROOT, str(target)], check=True, env=env)
    return sum(1 for _ in Path(target).rglob("*.pyc"))


def prune(deps):
    """Drop what the runtime never runs: console scripts, packaging metadata but each distribution's
    METADATA (``importlib.metadata.version()`` reads it),
    bytecode."""
    for junk in ["bin", *[p.name for p in deps.glob("*.data")]]:
        if (deps / junk).exists():
            shutil.rmtree(deps / junk)
    for info in deps.glob("*.dist-info"):
        for item in info.iterdir():
            if item.name != "METADATA":
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    for cache in list(deps.rglob("__pycache__")):
        shutil.rmtree(cache)


def _download(reqs, python_version, dest, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("\n".join(reqs) + "\n")
        subprocess.run(PIP + ["download"] + QUIET + _target_flags(python_version) + ["-d", str(dest), "-r", str(req),
                                                                                     *extra], check=True)
    wheels = {}
    for wheel in Path(dest).glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        wheels[_canonical(name)] = (name, version, "sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest())
    return wheels


def lock(path=LOCK):
    """Resolve every function's requirements.txt for RUNTIMES[0], pin that set, hash its wheel for
    every runtime."""
    entries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for function in FUNCTIONS:
            reqs = requirements(function)
            if not reqs:
                continue
            first = _download(reqs, RUNTIMES[0], Path(tmp) / function / RUNTIMES[0])
            pins = [f"{name}=={version}" for name, version, _ in first.values()]
            seen = {key: {digest} for key, (_, _, digest) in first.items()}
            for version in RUNTIMES[1:]:
                # the same pinned set must resolve, and be complete, on every other runtime
                constraints = Path(tmp) / function / "constraints.txt"
                constraints.parent.mkdir(parents=True, exist_ok=True)
                constraints.write_text("\n".join(pins) + "\n")
                other = _download(reqs, version, Path(tmp) / function / version, ["-c", str(constraints)])
                if set(other) != set(first):
                    raise SystemExit(f"{function}: CPython {version} needs {sorted(other)}, {RUNTIMES[0]} {sorted(first)}")
                for key, (_, _, digest) in other.items():
                    seen[key].add(digest)
            for key, (name, version, _) in first.items():
                entry = entries.setdefault(key, {"pin": f"{name}=={version}", "hashes": set(), "functions": []})
                if entry["pin"] != f"{name}=={version}":
                    raise SystemExit(f"{name}: functions need different versions ({entry['pin']}, {version})")
                entry["hashes"] |= seen[key]
                entry["functions"].append(function)
    write_lock(entries, path)
    return entries


def write_lock(entries, path=LOCK):
    lines = ["# Every third-party package a function ships: exact versions, sha256 of each wheel used (manylinux",
             f"# x86_64, CPython {', '.join(RUNTIMES)}: FC python runtimes). Installed with pip --require-hashes",
             "# --no-deps by tools/package.py. Generated by `python tools/package.py --lock` from",
             "# functions/*/requirements.txt; do not edit by hand."]
    for key in sorted(entries):
        entry = entries[key]
        lines.append(entry["pin"] + " \\")
        hashes = sorted(entry["hashes"])
        lines += [f"    --hash={h}" + (" \\" if i < len(hashes) - 1 else "") for i, h in enumerate(hashes)]
        lines.append("    # for: " + " ".join(entry["functions"]))
    Path(path).write_text("\n".join(lines) + "\n")


def size_of(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="build into OUT/<function> instead of functions/<function>")
    parser.add_argument("--python-version", default="3.10", help="target runtime's CPython (3.10 or 3.12)")
    parser.add_argument("--function", choices=FUNCTIONS, action="append")
    parser.add_argument("--lock", action="store_true", help=f"re-resolve {LOCK.relative_to(ROOT)} and exit")
    args = parser.parse_args(argv)
    if args.lock:
        for entry in lock().values():
            print(f"{entry['pin']}: {len(entry['hashes'])} wheel(s), for {' '.join(entry['functions'])}")
        return
    for function in args.function or FUNCTIONS:
        target = Path(args.out) / function if args.out else ROOT / "functions" / function
        build(function, target, args.python_version)
        print(f"{function}: {target} ({size_of(target) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
