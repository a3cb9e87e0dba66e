"""s.yaml is checked offline: structure, handlers, env names against the code, flow, .env, RAM policies, no secrets.

(tests/deploy/test_rehearsal.py runs it with the real `s` CLI and fc3 component.)"""

import json
import re
import subprocess
from pathlib import Path

import yaml

from function_settings import READS, SHARED

from ossdirect.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "s.yaml").read_text())
EXPECTED_METHODS = {"signature": ["GET", "POST", "DELETE", "OPTIONS"], "callback": ["POST"]}
TABLESTORE_RECORDS = "env('OSSDIRECT_DEPLOY_TABLESTORE_RECORDS', '')"


def test_edition_and_resources():
    assert SPEC["edition"] == "3.0.0"
    assert SPEC["validation"] is True, "a bad prop must stop the deploy before anything is created"
    assert set(SPEC["resources"]) == {"signature", "callback", "process"}
    for name, res in SPEC["resources"].items():
        assert res["component"] == "fc3"
        props = res["props"]
        assert props["runtime"] == "python3.10"
        assert props["handler"] == "index.handler"
        assert props["code"] == f"./functions/{name}" and props["role"] == f"ossdirect-{name}-role"
        code = ROOT / props["code"]
        assert (code / "index.py").exists() and "def handler(event, context)" in (code / "index.py").read_text()
        if name == "process":  # content check, quarantine and the user's hook; below the hook lease (900 s)
            assert 60 <= props["timeout"] <= 900
        else:
            assert 3 < props["timeout"] <= 60, "fc3 defaults to 3 s: set it explicitly"
        assert props["memorySize"] % 64 == 0 and props["memorySize"] >= 128
        assert props["logConfig"]["project"] and props["logConfig"]["logstore"]
        run = res["actions"]["pre-deploy"][0]["run"]
        assert run == f"python3 tools/package.py --function {name} --python-version 3.10", run
        (trigger,) = props["triggers"]
        if name == "process":
            continue  # test_process_has_an_oss_trigger_on_the_prefix
        assert trigger["triggerType"] == "http"
        assert trigger["triggerConfig"]["authType"] == "anonymous"
        assert trigger["triggerConfig"]["disableURLInternet"] is False
        assert trigger["triggerConfig"]["methods"] == EXPECTED_METHODS[name]


def test_process_has_an_oss_trigger_on_the_prefix():
    (trigger,) = SPEC["resources"]["process"]["props"]["triggers"]
    assert trigger == {
        "triggerName": "oss-upload", "triggerType": "oss", "qualifier": "LATEST",
        "description": "every object created under the upload prefix",
        # an explicit role: without one fc3 creates the broad default AliyunOSSEventNotificationRole
        "invocationRole": "acs:ram::${config('AccountID')}:role/ossdirect-oss-trigger-role",
        "sourceArn": "acs:oss:${vars.region}:${config('AccountID')}:${vars.bucket}",
        "triggerConfig": {
            "events": ["oss:ObjectCreated:PostObject", "oss:ObjectCreated:PutObject",
                       "oss:ObjectCreated:CompleteMultipartUpload"],
            "filter": {"key": {"prefix": "${vars.prefix}", "suffix": ""}},  # fc3's schema requires both
        },
    }


def test_no_function_ships_the_tablestore_sdk():
    """The SDK is ~97 MB and 0.5 s of import: the stores speak the protocol themselves (store/ots_wire.py),
    so no action packages it, whatever .env says, and no function's requirements or the lock name it."""
    from tools import package

    actions = {name: res["actions"]["pre-deploy"][0]["run"] for name, res in SPEC["resources"].items()}
    assert not [a for a in actions.values() if "--extras" in a or "tablestore" in a], actions
    assert "tablestore" not in package.read_lock() and not (ROOT / "functions" / "requirements-tablestore.txt").exists()
    for name in package.FUNCTIONS:
        assert not [r for r in package.requirements(name) if r.lower().startswith("tablestore")], name


def test_env_names_match_what_the_code_reads_and_values_are_strings():
    assert set().union(*READS.values()) == set(ENV_NAMES), "every variable the code reads is deployed somewhere"
    envs = {name: res["props"]["environmentVariables"] for name, res in SPEC["resources"].items()}
    for name, env in envs.items():
        # each function gets exactly what it reads, every one explicit in the template
        assert set(env) == {"OSSDIRECT_" + n for n in READS[name]} | {"PYTHONPATH",
                                                                      "ALIBABA_CLOUD_ECS_METADATA_DISABLED"}, name
        assert all(isinstance(v, str) for v in env.values()), "FC needs string values"
        assert env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] == "true" and env["PYTHONPATH"] == "/code/python"
        for common in ("BUCKET", "REGION", "PREFIX"):
            assert env["OSSDIRECT_" + common] == "${vars.%s}" % common.lower(), (name, common)
    sig, cb, proc = envs["signature"], envs["callback"], envs["process"]
    # `info`, not `output`: it resolves in single-resource commands too (`s signature deploy|info|...`)
    assert sig["OSSDIRECT_CALLBACK_URL"] == "${resources.callback.info.url.system_url}"
    assert "resources.callback.output" not in (ROOT / "s.yaml").read_text()
    assert cb["OSSDIRECT_TRUSTED_KEY_PREFIXES"] == "", "the emulator key must never be trusted in the cloud"
    assert SPEC["vars"]["ossEndpoint"] == ("${env('OSSDIRECT_DEPLOY_OSS_ENDPOINT', '') || 'https://' + vars.bucket"
                                           " + '.oss-' + vars.region + '-internal.aliyuncs.com'}")
    assert SPEC["vars"]["uploadHost"] == ("${env('OSSDIRECT_DEPLOY_UPLOAD_HOST', '') || 'https://' + vars.bucket"
                                          " + '.oss-' + vars.region + '.aliyuncs.com'}")
    assert sig["OSSDIRECT_UPLOAD_HOST"] == "${vars.uploadHost}"
    assert SPEC["vars"]["slsRecords"] == ("sls://${vars.slsProject}/${vars.recordLogstore}"
                                          "?endpoint=${vars.slsEndpoint}&timeout=2")
    assert SPEC["vars"]["records"] == "${%s || vars.slsRecords}" % TABLESTORE_RECORDS
    # one store for all three: the writers (Tablestore + the SLS log, or SLS alone) and the signature
    # function's multipart sessions and record poll
    for name in SHARED:
        values = {fn: env["OSSDIRECT_" + name] for fn, env in envs.items() if "OSSDIRECT_" + name in env}
        assert len(set(values.values())) == 1, (name, values)
    assert sig["OSSDIRECT_RECORDS"] == cb["OSSDIRECT_RECORDS"] == proc["OSSDIRECT_RECORDS"] == "${vars.records}"
    assert sig["OSSDIRECT_OSS_ENDPOINT"] == cb["OSSDIRECT_OSS_ENDPOINT"] == "${vars.ossEndpoint}"
    for env in (cb, proc):
        assert env["OSSDIRECT_RECORD_LOG"] == "${%s ? vars.slsRecords : ''}" % TABLESTORE_RECORDS
    assert cb["OSSDIRECT_COMPAT"] == sig["OSSDIRECT_COMPAT"] == "${vars.compat}"
    assert SPEC["vars"]["compat"] == "${env('OSSDIRECT_DEPLOY_COMPAT', 'none')}"
    assert SPEC["vars"]["auth"] == "${env('OSSDIRECT_DEPLOY_AUTH', 'none')}" and sig["OSSDIRECT_AUTH"] == "${vars.auth}"
    assert (sig["OSSDIRECT_OBJECT_ACL"], sig["OSSDIRECT_STORAGE_CLASS"], sig["OSSDIRECT_CONTENT_DISPOSITION"],
            sig["OSSDIRECT_CACHE_CONTROL"]) == ("default", "Standard", "inline", "no-cache")
    # the secure choices the README documents as defaults
    assert (sig["OSSDIRECT_KEY_NAMING"], sig["OSSDIRECT_SIGNATURE_VERSIONS"], sig["OSSDIRECT_PREFIX_FORMS"],
            sig["OSSDIRECT_ALLOW_FOLDERS"], sig["OSSDIRECT_FORBID_OVERWRITE"]) == ("random", "v4", "false", "false",
                                                                                   "true")
    for name in ("JWT_JWKS_URL", "JWT_PUBLIC_KEY", "JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ALGORITHMS",
                 "AUTHORIZER", "USER_LIMITS"):  # empty unless .env says otherwise
        assert sig["OSSDIRECT_" + name] == "${env('OSSDIRECT_DEPLOY_%s', '')}" % name
    for env in (sig, cb, proc):
        assert env["OSSDIRECT_USER_LIMITS"] == "${env('OSSDIRECT_DEPLOY_USER_LIMITS', '')}"
        assert env["OSSDIRECT_LIMITS_STORE"] == "${env('OSSDIRECT_DEPLOY_LIMITS_STORE', " \
                                               "'sqlite:////tmp/ossdirect-limits.sqlite3')}"
    assert sig["OSSDIRECT_ANONYMOUS_LIMITS_BY_IP"] == "${env('OSSDIRECT_DEPLOY_ANONYMOUS_LIMITS_BY_IP', 'true')}"
    assert (proc["OSSDIRECT_QUARANTINE"], proc["OSSDIRECT_QUARANTINE_PREFIX"], proc["OSSDIRECT_ON_UPLOAD"],
            proc["OSSDIRECT_HOOK_MAX_ATTEMPTS"]) == (
        "${env('OSSDIRECT_DEPLOY_QUARANTINE', 'move')}", "${env('OSSDIRECT_DEPLOY_QUARANTINE_PREFIX', 'quarantine/')}",
        "${env('OSSDIRECT_DEPLOY_ON_UPLOAD', '')}", "${env('OSSDIRECT_DEPLOY_HOOK_MAX_ATTEMPTS', '3')}")


def test_flow_orders_callback_then_process_before_signature():
    """`info` references do not order steps (only `output` ones do), so the flow must; process is up
    before the first form is handed out, and goes after the signature function on removal."""
    assert SPEC["flow"] == {"deploy": [["callback"], ["process"], ["signature"]],
                            "remove": [["signature"], ["process"], ["callback"]]}


ENV_REF = re.compile(r"env\('([A-Z0-9_]+)'(?:,\s*'([^']*)')?\)")


def test_env_example_lists_every_deploy_variable_and_env_is_ignored():
    refs = {}
    for name, default in ENV_REF.findall((ROOT / "s.yaml").read_text()):
        assert refs.setdefault(name, default) == default, f"{name} has two defaults in s.yaml"
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            example[name] = value
    # OSSDIRECT_SETUP_*: read by deploy/setup.py alone (tests/deploy/test_cloud_setup.py checks them)
    assert {n for n in example if not n.startswith("OSSDIRECT_SETUP_")} == set(refs)
    for name, default in refs.items():
        if default or name in ("OSSDIRECT_DEPLOY_PUBLIC_BASE_URL",):
            assert example[name] == default, (name, example[name], default)
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode
    assert ignored == 0, ".env holds deploy settings: it must be git-ignored"
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT).returncode == 1


def policy(name):
    return json.loads((ROOT / "deploy" / name).read_text())


def test_role_policies_grant_exactly_what_each_function_does():
    function_logs = "acs:log:<region>:<account-id>:project/<sls-project>/logstore/<function-logstore>"
    records = "acs:log:<region>:<account-id>:project/<sls-project>/logstore/<record-logstore>"
    prefix = "acs:oss:*:*:<bucket>/<prefix>*"
    # with a custom role, FC delivers a function's logs (logConfig) with that role
    assert policy("signature-role-policy.json")["Statement"] == [
        # forms and multipart (Initiate/UploadPart/Complete are PutObject); resume lists parts, cancel aborts
        {"Effect": "Allow", "Action": ["oss:PutObject", "oss:ListParts", "oss:AbortMultipartUpload"],
         "Resource": [prefix]},
        # /files: the owner's presigned download URL (GetObject) and delete (DeleteObject), on the prefix only
        {"Effect": "Allow", "Action": ["oss:GetObject", "oss:DeleteObject"], "Resource": [prefix]},
        {"Effect": "Allow", "Action": ["log:PostLogStoreLogs"], "Resource": [function_logs]},
    ]
    assert policy("callback-role-policy.json")["Statement"] == [
        {"Effect": "Allow", "Action": ["log:PostLogStoreLogs"], "Resource": [records, function_logs]},
        {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": [prefix]},  # HeadObject of each upload
    ]
    assert policy("process-role-policy.json")["Statement"] == [
        {"Effect": "Allow", "Action": ["log:PostLogStoreLogs"], "Resource": [records, function_logs]},
        # HeadObject + ranged GET; quarantine: copy out (private), delete, or ACL private in place; hook
        # outputs beside the upload
        {"Effect": "Allow", "Action": ["oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:PutObjectAcl"],
         "Resource": [prefix]},
        # the quarantine copy (x-oss-object-acl: private); nothing there is read or deleted by the function
        {"Effect": "Allow", "Action": ["oss:PutObject", "oss:PutObjectAcl"],
         "Resource": ["acs:oss:*:*:<bucket>/<quarantine-prefix>*"]},
    ]
    assert policy("trust-policy-fc.json")["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["fc.aliyuncs.com"]}}]
    # OSS invokes the process function, and only it, with the trigger's role
    assert policy("oss-trigger-trust-policy.json")["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["oss.aliyuncs.com"]}}]
    assert policy("oss-trigger-role-policy.json")["Statement"] == [
        {"Effect": "Allow", "Action": ["fc:InvokeFunction"],
         "Resource": ["acs:fc:<region>:<account-id>:functions/ossdirect-process"]}]
    assert SPEC["resources"]["process"]["props"]["functionName"] == "ossdirect-process"
    for res in SPEC["resources"].values():  # the logstore the policies name is the one logConfig uses
        assert res["props"]["logConfig"]["logstore"] == "${vars.functionLogstore}"
        assert res["props"]["logConfig"]["project"] == "${vars.slsProject}"


def test_tablestore_policies_grant_exactly_the_rows_each_function_touches():
    """Optional policies, attached only when a Tablestore store is used (docs/deploy.md)."""
    table = "acs:ots:<region>:<account-id>:instance/<instance>/table/<table>"
    row_writes = {"Effect": "Allow", "Action": ["ots:PutRow", "ots:GetRow", "ots:UpdateRow"], "Resource": [table]}
    assert policy("tablestore-callback-policy.json")["Statement"] == [row_writes]
    assert policy("tablestore-process-policy.json")["Statement"] == [
        row_writes,  # the same writes as the callback, plus reading the table by its indexes (reconcile)
        {"Effect": "Allow", "Action": ["ots:GetRange", "ots:BatchGetRow"],
         "Resource": [table, table + "_by_user", table + "_by_time"]},
    ]
    # the signature function: multipart sessions (put, read, update) and the record poll (read), same table
    assert policy("tablestore-signature-records-policy.json")["Statement"] == [
        {"Effect": "Allow", "Action": ["ots:GetRow", "ots:PutRow", "ots:UpdateRow"], "Resource": [table]}]
    assert policy("tablestore-signature-limits-policy.json")["Statement"] == [
        {"Effect": "Allow", "Action": ["ots:GetRow", "ots:PutRow", "ots:UpdateRow"],
         "Resource": ["acs:ots:<region>:<account-id>:instance/<limits-instance>/table/<limits-table>"]}]
    # stored=: every function reserves, settles or releases held bytes in the limits table's _held twin
    assert policy("tablestore-quota-policy.json")["Statement"] == [
        {"Effect": "Allow", "Action": ["ots:GetRow", "ots:PutRow", "ots:UpdateRow"],
         "Resource": ["acs:ots:<region>:<account-id>:instance/<limits-instance>/table/<limits-table>_held"]}]
    assert sorted(p.name for p in (ROOT / "deploy").glob("*.json")) == sorted([
        "trust-policy-fc.json", "signature-role-policy.json", "callback-role-policy.json", "process-role-policy.json",
        "oss-trigger-trust-policy.json", "oss-trigger-role-policy.json", "tablestore-callback-policy.json",
        "tablestore-process-policy.json", "tablestore-signature-limits-policy.json",
        "tablestore-signature-records-policy.json", "tablestore-quota-policy.json"])
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for path in (ROOT / "deploy").glob("*.json"):  # each one is documented where the roles are set up
        assert f"deploy/{path.name}" in docs, path.name


def test_no_secrets_in_the_template():
    text = (ROOT / "s.yaml").read_text()
    assert not re.search(r"LTAI[0-9A-Za-z]{12,30}", text)
    assert not re.search(r"(?i)(access_?key_?secret|security_?token)\s*:", text)
    assert "ALIBABA_CLOUD_ACCESS_KEY" not in text
