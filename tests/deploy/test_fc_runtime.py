"""The FC runtime stand-in itself (fc_standin/runtime.py) enforces what it claims: the trigger's methods,
the function's timeout (the instance is killed, the next request cold-starts), a read-only /code with only
/tmp writable, exactly the function's environment. A tiny function (plus ossdirect's adapter) in a zip."""

import json
import shutil
import zipfile

import requests
from fc_standin.runtime import FcRuntime
from test_bundle import INTERPRETERS

from test_s_yaml import ROOT

PROBE = '''
import json, os, time

def handler(event, context):
    req = json.loads(event)
    if req["rawPath"] == "/slow":
        time.sleep(5)
    wrote = {}
    for where in ("/code/x", "/tmp/x", "/etc/ossdirect-probe"):
        try:
            open(where, "w").write("x")
            wrote[where] = True
        except OSError:
            wrote[where] = False
    env = {k: v for k, v in os.environ.items() if k.startswith(("OSSDIRECT_", "PROBE_", "SECRET_"))}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"wrote": wrote, "env": env, "cwd": os.getcwd(), "pid": os.getpid()})}
'''


def test_methods_timeout_read_only_code_and_exact_environment(tmp_path, monkeypatch):
    code_zip = tmp_path / "probe.zip"
    with zipfile.ZipFile(code_zip, "w") as z:
        z.writestr("index.py", PROBE)
        for path in (ROOT / "shared" / "ossdirect").rglob("*.py"):
            z.write(path, "ossdirect/" + path.relative_to(ROOT / "shared" / "ossdirect").as_posix())
    monkeypatch.setenv("SECRET_OF_THE_TEST_PROCESS", "must not leak")
    runtime = FcRuntime(["probe"], [])
    try:
        state = {"functions": {"probe": {"functionName": "probe", "handler": "index.handler", "timeout": 1,
                                         "memorySize": 128, "environmentVariables": {"PROBE_SETTING": "as deployed"}}},
                 "triggers": {"probe\nhttp": {"triggerType": "http", "triggerConfig": json.dumps(
                     {"authType": "anonymous", "methods": ["GET"]})}}}
        (fn,) = runtime.attach(state, {"probe": code_zip}, tmp_path / "code", INTERPRETERS["3.10"], {}).values()
        url = runtime.trigger_urls()["probe"]
        refused = requests.post(url + "/", data=b"x", timeout=10)
        assert refused.status_code == 403 and refused.headers["X-Fc-Error-Type"] == "FcCommonError"
        assert fn.cold_starts == 0, "a refused method never reaches the function"
        answer = requests.get(url + "/", timeout=30)
        assert answer.status_code == 200, answer.text
        seen = answer.json()
        assert seen["wrote"] == {"/code/x": False, "/tmp/x": True, "/etc/ossdirect-probe": False}
        assert seen["cwd"] == "/code" and seen["env"] == {"PROBE_SETTING": "as deployed"}
        slow = requests.get(url + "/slow", timeout=30)
        assert slow.status_code == 502 and slow.headers["X-Fc-Error-Type"] == "UnhandledInvocationError"
        assert "time out after 1 seconds" in slow.text and fn.timeouts == 1
        again = requests.get(url + "/", timeout=30)  # a new instance: cold start, new process, empty /tmp
        assert again.status_code == 200 and again.json()["pid"] != seen["pid"] and fn.cold_starts == 2
    finally:
        runtime.close()
        shutil.rmtree(tmp_path / "code", ignore_errors=True)
