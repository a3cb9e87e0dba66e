"""Bundles ship bytecode compiled by the runtime's CPython (issue 23): reproducible, and used as it is on
a read-only code directory, so a cold start compiles nothing (proved with the interpreter's own
"compile" audit event, which every source-to-bytecode compile raises)."""

import json
import os
import stat
import subprocess

import pytest
from test_bundle import INTERPRETERS

from tools import package

PROBE = r"""
import json, sys
bundle = sys.argv[1]
compiled = []
sys.addaudithook(lambda event, args: compiled.append(str(args[1])) if event == "compile" and
                 str(args[1]).startswith(bundle) else None)
sys.path[:0] = [bundle, bundle + "/python"]
import index
print(json.dumps({"compiled": compiled, "cached": getattr(index, "__cached__", None)}))
"""


def probe(python, bundle):
    env = {"PATH": os.environ.get("PATH", ""), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
           "OSSDIRECT_BUCKET": "photo-bucket", "OSSDIRECT_REGION": "cn-hangzhou", "OSSDIRECT_RECORDS": "stdout",
           "OSSDIRECT_OSS_ENDPOINT": "http://127.0.0.1:9",
           "PYTHONDONTWRITEBYTECODE": "1"}  # root ignores read-only bits: this is what keeps FC's /code unwritten
    proc = subprocess.run([python, "-I", "-S", "-c", PROBE, str(bundle)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def read_only(path):
    for p in [path, *path.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    return tmp_path_factory.mktemp("wheels-bytecode")


@pytest.mark.parametrize("version", sorted(INTERPRETERS))
@pytest.mark.parametrize("function", ["signature", "callback"])
def test_a_cold_start_on_a_read_only_bundle_compiles_nothing(tmp_path, wheels, version, function):
    bundle = package.build(function, tmp_path / function, version, wheels)
    tag = "cpython-" + version.replace(".", "")
    assert (bundle / "__pycache__" / f"index.{tag}.pyc").is_file()
    assert (bundle / "ossdirect" / "app" / "__pycache__" / f"handlers.{tag}.pyc").is_file()
    read_only(bundle)
    try:
        seen = probe(INTERPRETERS[version], bundle)
        assert seen["compiled"] == [], seen["compiled"][:5]
        assert seen["cached"].endswith(f"index.{tag}.pyc")
    finally:
        for p in [bundle, *bundle.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_without_the_bytecode_the_same_probe_sees_every_module_compiled(tmp_path, wheels):
    bundle = package.build("signature", tmp_path / "signature", "3.10", wheels)
    for cache in list(bundle.rglob("__pycache__")):
        for f in cache.iterdir():
            f.unlink()
        cache.rmdir()
    read_only(bundle)
    try:
        seen = probe(INTERPRETERS["3.10"], bundle)
        assert any(name.endswith("index.py") for name in seen["compiled"])
        assert any(name.endswith("handlers.py") for name in seen["compiled"])
    finally:
        for p in [bundle, *bundle.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_two_builds_ship_byte_identical_bytecode(tmp_path, wheels):
    first = package.build("signature", tmp_path / "a" / "signature", "3.10", wheels)
    second = package.build("signature", tmp_path / "b" / "signature", "3.10", wheels)
    pycs = sorted(p.relative_to(first) for p in first.rglob("*.pyc"))
    assert len(pycs) > 50
    assert pycs == sorted(p.relative_to(second) for p in second.rglob("*.pyc"))
    assert all((first / p).read_bytes() == (second / p).read_bytes() for p in pycs)
    # paths inside are FC's, never this machine's build directory
    assert str(tmp_path).encode() not in (first / "ossdirect" / "app" / "__pycache__" / "handlers.cpython-310.pyc").read_bytes()
