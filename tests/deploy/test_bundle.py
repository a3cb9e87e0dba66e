"""Each function's package, built exactly as deploy builds it, runs alone on CPython 3.10 and 3.12.

The bundles are imported in fresh interpreters with nothing on the path but the bundle (`-I -S`), served
on loopback by the bundle's own WSGI adapter, and driven through the emulator: signature form → POST →
emulator's signed callback → bundled callback handler → SQLite record.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from emulator import EmulatorConfig, serve

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import package  # noqa: E402

INTERPRETERS = {
    "3.10": "/root/.pyenv/versions/3.10.13/bin/python3.10",
    "3.12": "/root/.pyenv/versions/3.12.1/bin/python3.12",
}
SERVE = r"""
import json, sys
bundle = sys.argv[1]
sys.path[:0] = [bundle, bundle + "/python"]
import index
from wsgiref.simple_server import WSGIRequestHandler, make_server
from ossdirect.app.wsgi import wsgi_app

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server("127.0.0.1", 0, wsgi_app(index.handler), handler_class=Quiet)
origins = {name: getattr(mod, "__file__", None) for name, mod in sys.modules.items()
           if name.split(".")[0] in ("ossdirect", "cryptography", "cffi", "index")}
print(json.dumps({"port": server.server_port, "python": sys.version.split()[0], "modules": origins}), flush=True)
server.serve_forever()
"""
AK, SK, TOKEN = "STS.bundleid", "bundle-secret", "bundle-token"


@pytest.fixture(scope="module")
def wheel_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("wheels")


def start(python, bundle, env):
    proc = subprocess.Popen([python, "-I", "-S", "-c", SERVE, str(bundle)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(proc.stderr.read())
    return proc, json.loads(line)


def upload_through(python, signature, callback, workdir, *, bucket="bundle-bucket", region="cn-hangzhou",
                   signature_env=None, callback_env=None):
    """Serve both code directories alone on ``python`` and upload one file through the emulator.

    ``signature_env`` / ``callback_env``: the functions' environment (default: a minimal local one); the
    endpoints, the record store and the trusted key prefix are pointed at loopback. Returns the signed
    form, the callback's answer relayed by the emulator, each process's startup report and the records.
    """
    workdir = Path(workdir)
    emu_config = EmulatorConfig(data_dir=str(workdir / "emu"), buckets=[bucket], region=region,
                                accounts={AK: (SK, TOKEN)})
    records = workdir / "records.sqlite3"
    creds = {"ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
             "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN}  # python3.12-style: the role's keys in the environment
    procs = []
    with serve(emu_config) as emu:
        bucket_url = f"{emu.url}/{bucket}"
        base = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "OSSDIRECT_BUCKET": bucket, "OSSDIRECT_REGION": region}
        local = {"PATH": os.environ.get("PATH", ""), "OSSDIRECT_UPLOAD_HOST": bucket_url, **creds}
        try:
            cb_proc, cb_info = start(python, callback, dict(
                callback_env or base, **local, OSSDIRECT_OSS_ENDPOINT=bucket_url,
                OSSDIRECT_RECORDS=f"sqlite:///{records}", OSSDIRECT_RECORD_LOG="",
                OSSDIRECT_TRUSTED_KEY_PREFIXES=f"{emu.url}/_emulator/"))
            procs.append(cb_proc)
            sig_proc, sig_info = start(python, signature, dict(
                signature_env or base, **local, OSSDIRECT_CALLBACK_URL=f"http://127.0.0.1:{cb_info['port']}/cb"))
            procs.append(sig_proc)
            form = requests.get(f"http://127.0.0.1:{sig_info['port']}/",
                                params={"filename": "b.txt", "size": 6, "content_type": "text/plain"}, timeout=10)
            assert form.status_code == 200, form.text
            form = form.json()
            r = requests.post(form["host"], data=form["field_list"], files={"file": ("b.txt", b"bundle", "text/plain")},
                              timeout=15)
            assert r.status_code == 200, r.text
            answer = r.json()
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)
    from ossdirect.store import open_store

    store = open_store(f"sqlite:///{records}")
    try:
        record = store.get(form["upload_id"])
    finally:
        store.close()
    return form, answer, {"signature": sig_info, "callback": cb_info}, record


def assert_alone(info, bundle, version):
    """Every module the process loaded from a file came from the bundle, on the runtime's CPython."""
    assert info["python"].startswith(version + "."), info["python"]
    for name, origin in info["modules"].items():
        assert origin is None or origin.startswith(str(bundle)), (name, origin)


@pytest.mark.parametrize("version", sorted(INTERPRETERS))
def test_bundles_run_alone_on_the_fc_runtime_python(version, tmp_path, wheel_cache):
    python = INTERPRETERS[version]
    assert os.path.exists(python), f"CPython {version} is needed at {python} for this proof"
    signature = package.build("signature", tmp_path / "signature", version, wheel_cache)
    callback = package.build("callback", tmp_path / "callback", version, wheel_cache)
    process = package.build("process", tmp_path / "process", version, wheel_cache)
    assert (signature / "python" / "jwt").is_dir(), "PyJWT is vendored: OSSDIRECT_AUTH=jwt works after deploy"
    assert (process / "python" / "puremagic").is_dir()
    # the callback needs nothing beyond the standard library (its RSA check is ossdirect.rsa)
    assert not (callback / "python").exists() or not any((callback / "python").iterdir())
    assert not (process / "python" / "cryptography").exists()
    for bundle in (signature, callback, process):
        assert_ships_only_what_runs(bundle)
        assert not (bundle / "python" / "tablestore").exists(), "no function ships the Tablestore SDK (ots_wire)"
    info = import_alone(python, signature, {"OSSDIRECT_BUCKET": "b-bucket", "OSSDIRECT_REGION": "cn-hangzhou"},
                        "import jwt, jwt.algorithms; assert jwt.algorithms.has_crypto")
    assert_alone(info, signature, version)
    info = import_alone(python, process, {"OSSDIRECT_BUCKET": "b-bucket", "OSSDIRECT_REGION": "cn-hangzhou",
                                          "OSSDIRECT_RECORDS": f"sqlite:///{tmp_path}/p.sqlite3"})
    assert_alone(info, process, version)

    form, answer, infos, record = upload_through(python, signature, callback, tmp_path)
    assert_alone(infos["callback"], callback, version)
    assert_alone(infos["signature"], signature, version)
    assert "cryptography" not in infos["callback"]["modules"] and "cryptography" not in infos["signature"]["modules"]
    assert "ossdirect.rsa" in infos["callback"]["modules"]
    assert answer["key"] == form["key"] and answer["upload_id"] == form["upload_id"] and answer["size"] == 6
    assert record and record["key"] == form["key"] and record["size"] == 6, record


IMPORT = r"""
import json, sys
bundle = sys.argv[1]
sys.path[:0] = [bundle, bundle + "/python"]
import index
assert callable(index.handler)
assert getattr(index.app, "config_error", None) is None, index.app.config_error
exec(sys.argv[2])
# every module not from the interpreter's own library: each must come from the bundle
print(json.dumps({"python": sys.version.split()[0],
                  "modules": {n: m.__file__ for n, m in sys.modules.items()
                              if getattr(m, "__file__", None) and not m.__file__.startswith(sys.base_prefix)}}))
"""


def import_alone(python, bundle, env, then=""):
    """Import ``index`` from a code directory with nothing else on the path (``-I -S``), in the
    environment given; ``then`` runs after. Returns the interpreter version and the modules' files."""
    env = dict(env, PATH=os.environ.get("PATH", ""), ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    proc = subprocess.run([python, "-I", "-S", "-c", IMPORT, str(bundle), then], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def assert_ships_only_what_runs(code_dir):
    """No console scripts or packaging metadata; bytecode only as the runtime's own unchecked-hash .pyc
    (tools/package.py compile_bytecode); third-party packages exactly as locked."""
    code_dir = Path(code_dir)
    files = [p for p in code_dir.rglob("*") if p.is_file()]
    for p in files:
        if "__pycache__" in p.parts or p.suffix == ".pyc":
            assert p.parent.name == "__pycache__" and ".cpython-3" in p.name and p.suffix == ".pyc", p
            assert int.from_bytes(p.read_bytes()[4:8], "little") == 1, f"{p} is not an unchecked-hash .pyc"
    files = [p for p in files if p.suffix != ".pyc"]
    deps = code_dir / "python"
    if deps.exists():
        tops = sorted(p.name for p in deps.iterdir())
        assert not [n for n in tops if n == "bin" or n.endswith(".data")], tops
        for info in deps.glob("*.dist-info"):  # only METADATA, for importlib.metadata.version()
            assert [p.name for p in info.iterdir()] == ["METADATA"], info
        for p in files:
            with open(p, "rb") as f:
                first = f.readline(200)
            # a module's own `#!/usr/bin/env python` is harmless; a path is what pip writes into scripts
            assert not first.startswith(b"#!") or first.replace(b" ", b"").startswith(b"#!/usr/bin/env"), \
                f"{p} is a script (its first line names the build machine's Python)"
    locked = {e["name"].lower(): e["version"] for e in package.read_lock().values() if code_dir.name in e["functions"]}
    assert shipped_versions(deps) == {name: v for name, v in locked.items() if name in VERSION_FILES}


VERSION_FILES = {"cryptography": "cryptography/__about__.py", "cffi": "cffi/__init__.py",
                 "pycparser": "pycparser/__init__.py", "pyjwt": "jwt/__init__.py", "puremagic": "puremagic/main.py"}


def shipped_versions(deps):
    """{distribution: version} of what lies in a python/ directory, read from the packages themselves."""
    found = {}
    for name, rel in VERSION_FILES.items():
        path = Path(deps) / rel
        if path.exists():
            found[name] = re.search(r"__version__\s*=\s*[\"']([^\"']+)", path.read_text()).group(1)
    return found


def test_lock_pins_every_requirement_with_hashes():
    """functions/requirements.lock satisfies each functions/<fn>/requirements.txt, exactly and with hashes."""
    from packaging.requirements import Requirement

    entries = package.read_lock()
    assert entries, "the lock is empty"
    for entry in entries.values():
        assert entry["hashes"] and all(h.startswith("sha256:") for h in entry["hashes"]), entry
        assert set(entry["functions"]) <= set(package.FUNCTIONS), entry
    for function in package.FUNCTIONS:
        for line in package.requirements(function):
            req = Requirement(line)
            entry = entries.get(package._canonical(req.name))
            assert entry and function in entry["functions"], f"{line} ({function}) is not in the lock"
            assert req.specifier.contains(entry["version"]), (line, entry["pin"])
