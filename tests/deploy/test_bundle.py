"""Each function's package, built exactly as deploy builds it, runs alone on CPython 3.10 and 3.12.

The bundles are imported in fresh interpreters with nothing on the path but the bundle (`-I -S`), served
on loopback by the bundle's own WSGI adapter, and driven through the emulator: signature form → POST →
emulator's signed callback → bundled callback handler → SQLite record.
"""

import json
import os
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
from ossdirect.wsgi import wsgi_app

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


@pytest.mark.parametrize("version", sorted(INTERPRETERS))
def test_bundles_run_alone_on_the_fc_runtime_python(version, tmp_path, wheel_cache):
    python = INTERPRETERS[version]
    assert os.path.exists(python), f"CPython {version} is needed at {python} for this proof"
    signature = package.build("signature", tmp_path / "signature", version, wheel_cache)
    callback = package.build("callback", tmp_path / "callback", version, wheel_cache)
    assert not (signature / "python").exists(), "the signature function needs no third-party package"
    assert (callback / "python" / "cryptography").is_dir()

    emu_config = EmulatorConfig(data_dir=str(tmp_path / "emu"), buckets=["bundle-bucket"],
                                accounts={AK: (SK, TOKEN)})
    procs = []
    with serve(emu_config) as emu:
        bucket_url = f"{emu.url}/bundle-bucket"
        base = {"PATH": os.environ.get("PATH", ""), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
                "OSSDIRECT_BUCKET": "bundle-bucket", "OSSDIRECT_REGION": "cn-hangzhou",
                "OSSDIRECT_UPLOAD_HOST": bucket_url}
        try:
            cb_proc, cb_info = start(python, callback, dict(
                base, OSSDIRECT_RECORDS=f"sqlite:///{tmp_path / 'records.sqlite3'}",
                OSSDIRECT_TRUSTED_KEY_PREFIXES=f"{emu.url}/_emulator/"))
            procs.append(cb_proc)
            # python3.12-style: credentials only in the environment
            sig_proc, sig_info = start(python, signature, dict(
                base, OSSDIRECT_CALLBACK_URL=f"http://127.0.0.1:{cb_info['port']}/cb",
                ALIBABA_CLOUD_ACCESS_KEY_ID=AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK,
                ALIBABA_CLOUD_SECURITY_TOKEN=TOKEN))
            procs.append(sig_proc)
            for info, bundle in ((cb_info, callback), (sig_info, signature)):
                assert info["python"].startswith(version + ".")
                for name, origin in info["modules"].items():
                    assert origin is None or origin.startswith(str(bundle)), (name, origin)
            assert "cryptography" in cb_info["modules"] and "cryptography" not in sig_info["modules"]

            form = requests.get(f"http://127.0.0.1:{sig_info['port']}/",
                                params={"filename": "b.txt", "size": 6, "content_type": "text/plain"}, timeout=10)
            assert form.status_code == 200, form.text
            form = form.json()
            r = requests.post(form["host"], data=form["fields"], files={"file": ("b.txt", b"bundle", "text/plain")},
                              timeout=15)
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["key"] == form["key"] and answer["upload_id"] == form["upload_id"] and answer["size"] == 6
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)
    import sqlite3

    with sqlite3.connect(tmp_path / "records.sqlite3") as conn:
        assert conn.execute("SELECT upload_id, key FROM uploads").fetchall() == [(form["upload_id"], form["key"])]
