"""Deploy rehearsal: the real `s` CLI (3.1.10, tests/deploy/fc_standin/package-lock.json, installed by
`make test`) and fc3 component (0.1.22) run s.yaml against the project's loopback stand-in for the Function
Compute API (tests/deploy/fc_standin), and these tests read what FC would have received.

One module fixture copies what a deploy reads (s.yaml, functions/, shared/ossdirect, tools/package.py, the
lock) into a temporary project with a `.env` beside s.yaml and no deploy variable in the environment, then
runs, against one stand-in account: `s deploy -y`, `s signature info -o json --silent`,
`s signature deploy -y`, `s remove -y`. The uploaded zips are unpacked and served alone on the FC
runtime's CPython (3.10) with the environment FC received, through the OSS emulator; the process zip
(OSS trigger, no HTTP) is imported alone with its environment, Tablestore SDK included.
"""

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from test_bundle import INTERPRETERS, assert_alone, assert_ships_only_what_runs, import_alone, upload_through

from fc_standin.fc_api import ACCOUNT
from fc_standin.rehearse import Rehearsal as CliRehearsal
from ossdirect.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
TABLESTORE = "tablestore://rehearsal-ots/upload_records?endpoint=https://rehearsal-ots.cn-shanghai.ots.aliyuncs.com"
SLS_RECORDS = "sls://rehearsal-project/rehearsal-records?endpoint=cn-shanghai.log.aliyuncs.com&timeout=2"
# Deploy variables that differ from their s.yaml defaults, so each must travel from .env to FC (sign-in
# stays off here: the zips serve an upload below without a token; test_bundle proves PyJWT imports alone)
DOTENV = {
    "OSSDIRECT_DEPLOY_REGION": "cn-shanghai",
    "OSSDIRECT_DEPLOY_BUCKET": "rehearsal-bucket",
    "OSSDIRECT_DEPLOY_PREFIX": "incoming/",
    "OSSDIRECT_DEPLOY_SITE_ORIGIN": "https://upload.rehearsal.example",
    "OSSDIRECT_DEPLOY_PUBLIC_BASE_URL": "https://files.rehearsal.example",
    "OSSDIRECT_DEPLOY_SLS_PROJECT": "rehearsal-project",
    "OSSDIRECT_DEPLOY_RECORD_LOGSTORE": "rehearsal-records",
    "OSSDIRECT_DEPLOY_FUNCTION_LOGSTORE": "rehearsal-fc-logs",
    # the recommended cloud records: Tablestore, every record also appended to the SLS record Logstore
    "OSSDIRECT_DEPLOY_TABLESTORE_RECORDS": TABLESTORE,
    "OSSDIRECT_DEPLOY_COMPAT": "none",  # (the only other value, seed, is never for a public site)
    "OSSDIRECT_DEPLOY_JWT_LEEWAY_SECONDS": "45",
    "OSSDIRECT_DEPLOY_USER_LIMITS": "forms=20,window=3600",
    "OSSDIRECT_DEPLOY_LIMITS_STORE": "sqlite:////tmp/rehearsal-limits.sqlite3",  # not tablestore: no SDK for signature
    "OSSDIRECT_DEPLOY_ANONYMOUS_LIMITS_BY_IP": "false",
    "OSSDIRECT_DEPLOY_QUARANTINE": "private",
    "OSSDIRECT_DEPLOY_QUARANTINE_PREFIX": "held/",
    "OSSDIRECT_DEPLOY_HOOK_MAX_ATTEMPTS": "5",
}
LOG_CONFIG = {"project": "rehearsal-project", "logstore": "rehearsal-fc-logs", "enableRequestMetrics": True,
              "enableInstanceMetrics": False, "logBeginRule": "DefaultRegex"}
FC3_DEFAULTS = {  # what fc3 0.1.22 adds to every CreateFunction/UpdateFunction body we did not set
    "instanceIsolationMode": "SHARE", "layers": [], "sessionAffinity": "NONE", "tracingConfig": {},
    "nasConfig": {"groupId": 0, "mountPoints": [], "userId": 0}, "ossMountConfig": {"mountPoints": []},
    "vpcConfig": {"securityGroupId": "", "vSwitchIds": [], "vpcId": ""},
}
CALLBACK_ENV = {
    "PYTHONPATH": "/code/python",
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    "OSSDIRECT_BUCKET": "rehearsal-bucket",
    "OSSDIRECT_REGION": "cn-shanghai",
    "OSSDIRECT_PREFIX": "incoming/",
    "OSSDIRECT_PUBLIC_BASE_URL": "https://files.rehearsal.example",
    "OSSDIRECT_OSS_ENDPOINT": "https://rehearsal-bucket.oss-cn-shanghai-internal.aliyuncs.com",
    "OSSDIRECT_RECORDS": TABLESTORE,
    "OSSDIRECT_RECORD_LOG": SLS_RECORDS,
    "OSSDIRECT_TRUSTED_KEY_PREFIXES": "",
    "OSSDIRECT_COMPAT": "none",
    "OSSDIRECT_USER_LIMITS": "forms=20,window=3600",  # stored= would settle holds here
    "OSSDIRECT_LIMITS_STORE": "sqlite:////tmp/rehearsal-limits.sqlite3",
}
PROCESS_ENV = {
    "PYTHONPATH": "/code/python",
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    "OSSDIRECT_BUCKET": "rehearsal-bucket",
    "OSSDIRECT_REGION": "cn-shanghai",
    "OSSDIRECT_PREFIX": "incoming/",
    "OSSDIRECT_OSS_ENDPOINT": "https://rehearsal-bucket.oss-cn-shanghai-internal.aliyuncs.com",
    "OSSDIRECT_RECORDS": TABLESTORE,
    "OSSDIRECT_RECORD_LOG": SLS_RECORDS,
    "OSSDIRECT_QUARANTINE": "private",
    "OSSDIRECT_QUARANTINE_PREFIX": "held/",
    "OSSDIRECT_ON_UPLOAD": "",
    "OSSDIRECT_HOOK_MAX_ATTEMPTS": "5",
    "OSSDIRECT_COMPAT": "none",  # seed uploads carry no upload id: the process function reads it too
    "OSSDIRECT_USER_LIMITS": "forms=20,window=3600",
    "OSSDIRECT_LIMITS_STORE": "sqlite:////tmp/rehearsal-limits.sqlite3",
}
SIGNATURE_ENV = {
    "PYTHONPATH": "/code/python",
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    "OSSDIRECT_BUCKET": "rehearsal-bucket",
    "OSSDIRECT_REGION": "cn-shanghai",
    "OSSDIRECT_UPLOAD_HOST": "https://rehearsal-bucket.oss-cn-shanghai.aliyuncs.com",
    "OSSDIRECT_OSS_ENDPOINT": "https://rehearsal-bucket.oss-cn-shanghai-internal.aliyuncs.com",
    "OSSDIRECT_RECORDS": TABLESTORE,  # the callback's store: multipart sessions and the record poll
    "OSSDIRECT_PUBLIC_BASE_URL": "https://files.rehearsal.example",
    "OSSDIRECT_PREFIX": "incoming/",
    "OSSDIRECT_MIN_BYTES": "1",
    "OSSDIRECT_MAX_BYTES": "104857600",
    "OSSDIRECT_CONTENT_TYPES": "image/*,video/*,audio/*,application/pdf,text/plain",
    "OSSDIRECT_EXPIRES_SECONDS": "300",
    "OSSDIRECT_FORBID_OVERWRITE": "true",
    "OSSDIRECT_SUCCESS_STATUS": "",
    "OSSDIRECT_KEY_NAMING": "random",
    "OSSDIRECT_ALLOW_FOLDERS": "false",
    "OSSDIRECT_PREFIX_FORMS": "false",
    "OSSDIRECT_SIGNATURE_VERSIONS": "v4",
    "OSSDIRECT_OBJECT_ACL": "default",
    "OSSDIRECT_STORAGE_CLASS": "Standard",
    "OSSDIRECT_CONTENT_DISPOSITION": "inline",
    "OSSDIRECT_CACHE_CONTROL": "no-cache",
    "OSSDIRECT_CALLBACK_URL": None,  # the callback trigger's public URL, as the stand-in issued it
    "OSSDIRECT_CALLBACK_HOST": "",
    "OSSDIRECT_CALLBACK_BODY": "",
    "OSSDIRECT_CALLBACK_BODY_TYPE": "form",
    "OSSDIRECT_ALLOWED_ORIGINS": "https://upload.rehearsal.example",
    "OSSDIRECT_COMPAT": "none",
    "OSSDIRECT_AUTH": "none",
    "OSSDIRECT_JWT_JWKS_URL": "",
    "OSSDIRECT_JWT_PUBLIC_KEY": "",
    "OSSDIRECT_JWT_SECRET": "",
    "OSSDIRECT_JWT_ISSUER": "",
    "OSSDIRECT_JWT_AUDIENCE": "",
    "OSSDIRECT_JWT_ALGORITHMS": "",
    "OSSDIRECT_JWT_LEEWAY_SECONDS": "45",
    "OSSDIRECT_AUTHORIZER": "",
    "OSSDIRECT_USER_LIMITS": "forms=20,window=3600",
    "OSSDIRECT_LIMITS_STORE": "sqlite:////tmp/rehearsal-limits.sqlite3",
    "OSSDIRECT_ANONYMOUS_LIMITS_BY_IP": "false",
}
FUNCTIONS = {
    "callback": {
        "functionName": "ossdirect-callback", "runtime": "python3.10", "handler": "index.handler",
        "description": "Verifies OSS upload callbacks and records each upload once",
        "memorySize": 256, "timeout": 10, "internetAccess": True,
        "role": f"acs:ram::{ACCOUNT}:role/ossdirect-callback-role", "logConfig": LOG_CONFIG,
    },
    "process": {
        "functionName": "ossdirect-process", "runtime": "python3.10", "handler": "index.handler",
        "description": "Records what the callback missed, checks content, quarantines, runs the upload hook",
        "memorySize": 256, "timeout": 120, "internetAccess": True,
        "role": f"acs:ram::{ACCOUNT}:role/ossdirect-process-role", "logConfig": LOG_CONFIG,
    },
    "signature": {
        "functionName": "ossdirect-signature", "runtime": "python3.10", "handler": "index.handler",
        "description": "Issues short-lived signed OSS POST forms with the function's own role credentials",
        "memorySize": 256, "timeout": 30, "internetAccess": True,
        "role": f"acs:ram::{ACCOUNT}:role/ossdirect-signature-role", "logConfig": LOG_CONFIG,
    },
}
TRIGGERS = {
    "callback": {"triggerName": "http", "triggerType": "http", "qualifier": "LATEST",
                 "description": "called by OSS after each upload",
                 "triggerConfig": {"authType": "anonymous", "disableURLInternet": False, "methods": ["POST"]}},
    "process": {"triggerName": "oss-upload", "triggerType": "oss", "qualifier": "LATEST",
                "description": "every object created under the upload prefix",
                "invocationRole": f"acs:ram::{ACCOUNT}:role/ossdirect-oss-trigger-role",
                "sourceArn": f"acs:oss:cn-shanghai:{ACCOUNT}:rehearsal-bucket",
                "triggerConfig": {"events": ["oss:ObjectCreated:PostObject", "oss:ObjectCreated:PutObject",
                                             "oss:ObjectCreated:CompleteMultipartUpload"],
                                  "filter": {"key": {"prefix": "incoming/", "suffix": ""}}}},
    "signature": {"triggerName": "http", "triggerType": "http", "qualifier": "LATEST",
                  "description": "called by the browser for a signed form, multipart calls and the record poll",
                  "triggerConfig": {"authType": "anonymous", "disableURLInternet": False,
                                    "methods": ["GET", "POST", "DELETE", "OPTIONS"]}},
}
FN = {"callback": "ossdirect-callback", "process": "ossdirect-process", "signature": "ossdirect-signature"}
TRIGGER = {"callback": "http", "process": "oss-upload", "signature": "http"}
ENVS = {"callback": CALLBACK_ENV, "process": PROCESS_ENV, "signature": SIGNATURE_ENV}
API = "/2023-03-30/functions"


def copy_project(dest):
    """What `s deploy` reads, nothing else (no build output, no .env of the developer's)."""
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "s.yaml", dest / "s.yaml")
    (dest / "tools").mkdir()
    shutil.copy2(ROOT / "tools" / "package.py", dest / "tools" / "package.py")
    (dest / "functions").mkdir()
    shutil.copy2(ROOT / "functions" / "requirements.lock", dest / "functions" / "requirements.lock")
    for fn in FN:
        (dest / "functions" / fn).mkdir()
        for name in ("index.py", "requirements.txt"):
            shutil.copy2(ROOT / "functions" / fn / name, dest / "functions" / fn / name)
    shutil.copytree(ROOT / "shared" / "ossdirect", dest / "shared" / "ossdirect",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def rehearsal(project, out):
    """The real `s` against a fresh stand-in account; only .env may say what OSSDIRECT_DEPLOY_* is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSSDIRECT_")}
    # the pre-deploy action runs `python3 tools/package.py`: this interpreter (it has pip)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return CliRehearsal(project, out, env)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("rehearsal")
    project = copy_project(base / "project")
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
    account = rehearsal(project, base / "account")
    result = {"out": account.out, "base": base}
    try:
        for name, args in (("deploy", ("deploy", "-y")), ("info", ("signature", "info", "-o", "json", "--silent")),
                           ("signature_deploy", ("signature", "deploy", "-y")), ("remove", ("remove", "-y"))):
            result[name] = account.run(*args)
    finally:
        account.close()
    print({name: round(result[name]["seconds"], 1) for name in result if isinstance(result[name], dict)})
    return result


def writes(run):
    return [r for r in run["requests"] if r["method"] in ("POST", "PUT", "DELETE")]


def fc_writes(run):
    return [(r["method"], r["path"].split("?")[0]) for r in writes(run) if r["path"].startswith(API)]


def body(run, method, path):
    (match,) = [r for r in run["requests"] if r["method"] == method and r["path"].split("?")[0] == path]
    return match.get("body")


def callback_url(run):
    return run["state"]["triggers"][FN["callback"] + "\nhttp"]["httpTrigger"]["urlInternet"]


def expected_function(fn, run):
    env = dict(ENVS[fn])
    if fn == "signature":
        env["OSSDIRECT_CALLBACK_URL"] = callback_url(run)
    return {**FC3_DEFAULTS, **FUNCTIONS[fn], "environmentVariables": env}


def without_code(request_body):
    code = request_body["code"]
    assert set(code) == {"ossBucketName", "ossObjectName"} and code["ossObjectName"].endswith(".zip"), code
    return {k: v for k, v in request_body.items() if k != "code"}


def zip_of(run, request_body):
    name = request_body["code"]["ossObjectName"].rsplit("/", 1)[-1]
    assert name in run["zips"], (name, run["zips"])
    return name


def test_every_command_exits_0(runs):
    for name in ("deploy", "info", "signature_deploy", "remove"):
        run = runs[name]
        assert run["rc"] == 0, f"s {' '.join(run['args'])} failed:\n{run['log'][-3000:]}"
        assert "not found" not in run["log"], run["log"][-3000:]


def test_deploy_creates_callback_then_process_then_signature_exactly_as_configured(runs):
    run = runs["deploy"]
    order = ("callback", "process", "signature")
    assert fc_writes(run) == [w for fn in order for w in (("POST", API), ("POST", f"{API}/{FN[fn]}/triggers"))]
    created = [r["body"] for r in run["requests"] if r["method"] == "POST" and r["path"] == API]
    assert [b["functionName"] for b in created] == [FN[fn] for fn in order]
    for fn, request_body in zip(order, created):
        assert without_code(request_body) == expected_function(fn, run), fn
        trigger = body(run, "POST", f"{API}/{FN[fn]}/triggers")
        assert {**trigger, "triggerConfig": json.loads(trigger["triggerConfig"])} == TRIGGERS[fn], fn
    assert callback_url(run).startswith("https://") and "fcapp.run" in callback_url(run)
    # one zip per function went to the temporary code bucket
    assert len(run["zips"]) == 3 and len([r for r in writes(run) if r["path"].endswith(".zip")]) == 3


def test_environment_names_are_what_the_code_reads_and_values_are_strings(runs):
    run = runs["deploy"]
    known = {"OSSDIRECT_" + n for n in ENV_NAMES}
    for request_body in (r["body"] for r in run["requests"] if r["method"] == "POST" and r["path"] == API):
        env = request_body["environmentVariables"]
        assert all(isinstance(v, str) for v in env.values()), env
        assert {k for k in env if k.startswith("OSSDIRECT_")} <= known
        assert not any(k.startswith("ALIBABA_CLOUD_ACCESS") or k == "ALIBABA_CLOUD_SECURITY_TOKEN" for k in env)
        assert len(json.dumps(env)) < 4096, "FC caps environment variables at 4 KB"


def test_signature_info_prints_json_with_the_signature_url(runs):
    run = runs["info"]
    info = json.loads(run["log"])  # --silent: stdout is exactly the JSON the docs pipe into python
    assert info["functionName"] == FN["signature"]
    assert info["url"]["system_url"] == run["state"]["triggers"][FN["signature"] + "\nhttp"]["httpTrigger"][
        "urlInternet"]
    assert info["environmentVariables"]["OSSDIRECT_CALLBACK_URL"] == callback_url(run)
    assert writes(run) == [], "info only reads"


def test_signature_deploy_alone_resolves_the_callback_url_and_touches_only_signature(runs):
    run = runs["signature_deploy"]
    assert fc_writes(run) == [("PUT", f"{API}/{FN['signature']}"), ("PUT", f"{API}/{FN['signature']}/triggers/http")]
    assert any(r["method"] == "GET" and r["path"] == f"{API}/{FN['callback']}" for r in run["requests"]), \
        "the callback's URL comes from fc3 `info` on the deployed callback"
    update = body(run, "PUT", f"{API}/{FN['signature']}")
    expected = expected_function("signature", run)
    del expected["functionName"]  # UpdateFunction names it in the path
    assert without_code(update) == expected
    assert len(run["zips"]) == 1 and zip_of(run, update)


def test_remove_deletes_signature_then_callback(runs):
    run = runs["remove"]
    deletes = [path for method, path in fc_writes(run) if method == "DELETE"]
    assert deletes and set(fc_writes(run)) == {("DELETE", p) for p in deletes}, fc_writes(run)
    functions = [p.split("/")[3] for p in deletes]
    assert functions == sorted(functions, key=[FN["signature"], FN["process"], FN["callback"]].index), deletes
    assert set(functions) == set(FN.values())
    assert run["state"]["functions"] == {}


@pytest.fixture(scope="module")
def unpacked(runs):
    """The zips `s deploy` uploaded, unpacked into directories named after their function."""
    run = runs["deploy"]
    dirs = {}
    for request_body in (r["body"] for r in run["requests"] if r["method"] == "POST" and r["path"] == API):
        fn = request_body["functionName"].removeprefix("ossdirect-")
        target = runs["base"] / "unpacked" / fn
        with zipfile.ZipFile(runs["out"] / zip_of(run, request_body)) as z:
            z.extractall(target)
        dirs[fn] = (target, request_body["environmentVariables"])
    return dirs


def test_uploaded_zips_hold_only_what_runs(unpacked):
    assert set(unpacked) == set(FN)
    for fn, (code, _) in unpacked.items():
        tops = {p.name for p in code.iterdir()}
        # the callback needs nothing beyond the standard library (no SDK either): no python/ at all
        assert tops == {"index.py", "requirements.txt", "ossdirect"} | ({"python"} if fn != "callback" else set()), \
            (fn, tops)
        shipped = sorted(p.relative_to(code / "ossdirect").as_posix() for p in (code / "ossdirect").rglob("*.py"))
        source = sorted(p.relative_to(ROOT / "shared" / "ossdirect").as_posix()
                        for p in (ROOT / "shared" / "ossdirect").rglob("*.py") if "__pycache__" not in p.parts)
        assert shipped == source, fn
        assert (code / "index.py").read_bytes() == (ROOT / "functions" / fn / "index.py").read_bytes()
        assert_ships_only_what_runs(code)
        # .env names Tablestore records and limits, yet no zip holds the SDK: store/ots_wire.py speaks it
        assert not (code / "python" / "tablestore").exists(), fn


def test_uploaded_zips_serve_an_upload_alone_with_the_environment_fc_received(unpacked, tmp_path):
    python = INTERPRETERS["3.10"]  # the runtime s.yaml names
    assert os.path.exists(python), f"CPython 3.10 is needed at {python} for this proof"
    (signature, sig_env), (callback, cb_env) = unpacked["signature"], unpacked["callback"]
    form, answer, infos, record = upload_through(
        python, signature, callback, tmp_path, bucket=sig_env["OSSDIRECT_BUCKET"], region=sig_env["OSSDIRECT_REGION"],
        signature_env=sig_env, callback_env=cb_env)
    assert_alone(infos["signature"], signature, "3.10")
    assert_alone(infos["callback"], callback, "3.10")
    assert form["key"].startswith("incoming/") and answer["key"] == form["key"] and answer["size"] == 6
    assert answer["url"].startswith("https://files.rehearsal.example/incoming/"), answer["url"]
    assert record and record["key"] == form["key"]


def test_uploaded_process_zip_imports_its_handler_alone_with_the_environment_fc_received(unpacked):
    """The OSS trigger invokes index.handler: with nothing but the zip on the path (-I -S) on the runtime's
    CPython, it imports, reads its configuration without error (Tablestore store + SLS log, through
    the protocol client in the zip, no SDK) and loads nothing from outside the zip."""
    python = INTERPRETERS["3.10"]
    code, env = unpacked["process"]
    info = import_alone(python, code, env, "import ossdirect.store.tablestore")
    assert_alone(info, code, "3.10")
    assert info["modules"]["ossdirect.store.ots_wire"].startswith(str(code / "ossdirect")), info["modules"]
    assert not [m for m in info["modules"] if m.split(".")[0] in ("tablestore", "google", "urllib3", "aiohttp")]
    assert info["modules"]["index"] == str(code / "index.py")


def test_a_bad_prop_stops_the_deploy_before_anything_is_created(tmp_path):
    project = copy_project(tmp_path / "project")
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
    spec = (project / "s.yaml").read_text()
    assert "OSSDIRECT_MIN_BYTES: '1'" in spec
    (project / "s.yaml").write_text(spec.replace("OSSDIRECT_MIN_BYTES: '1'", "OSSDIRECT_MIN_BYTES: 1"))
    account = rehearsal(project, tmp_path / "account")
    try:
        run = account.run("deploy", "-y")
    finally:
        account.close()
    assert run["rc"] != 0
    assert "signature/props/environmentVariables/OSSDIRECT_MIN_BYTES must be string" in run["log"], run["log"]
    assert run["requests"] == [] and run["zips"] == []
    assert not (project / "functions" / "callback" / "python").exists(), "no pre-deploy action ran"


def test_commands_fail_without_the_env_file(tmp_path):
    """The settings come from .env (or the shell): without either, `s` names the missing variable."""
    project = copy_project(tmp_path / "project")
    account = rehearsal(project, tmp_path / "account")
    try:
        run = account.run("info")
    finally:
        account.close()
    assert run["rc"] != 0 and "OSSDIRECT_DEPLOY_BUCKET" in run["log"], run["log"]
