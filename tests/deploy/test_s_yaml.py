"""s.yaml is checked offline: structure, handlers, env names against the code, flow, .env, RAM policies, no secrets.

(tests/deploy/test_rehearsal.py runs it with the real `s` CLI and fc3 component.)"""

import json
import re
import subprocess
from pathlib import Path

import yaml

from ossdirect.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "s.yaml").read_text())
EXPECTED_METHODS = {"signature": ["GET", "OPTIONS"], "callback": ["POST"]}


def test_edition_and_resources():
    assert SPEC["edition"] == "3.0.0"
    assert SPEC["validation"] is True, "a bad prop must stop the deploy before anything is created"
    assert set(SPEC["resources"]) == {"signature", "callback"}
    for name, res in SPEC["resources"].items():
        assert res["component"] == "fc3"
        props = res["props"]
        assert props["runtime"] == "python3.10"
        assert props["handler"] == "index.handler"
        code = ROOT / props["code"]
        assert (code / "index.py").exists() and "def handler(event, context)" in (code / "index.py").read_text()
        assert 3 < props["timeout"] <= 60, "fc3 defaults to 3 s: set it explicitly"
        assert props["memorySize"] % 64 == 0 and props["memorySize"] >= 128
        assert props["logConfig"]["project"] and props["logConfig"]["logstore"]
        (trigger,) = props["triggers"]
        assert trigger["triggerType"] == "http"
        assert trigger["triggerConfig"]["authType"] == "anonymous"
        assert trigger["triggerConfig"]["disableURLInternet"] is False
        assert trigger["triggerConfig"]["methods"] == EXPECTED_METHODS[name]
        assert "tools/package.py" in res["actions"]["pre-deploy"][0]["run"]


def test_env_names_match_what_the_code_reads_and_values_are_strings():
    known = {"OSSDIRECT_" + n for n in ENV_NAMES} | {"PYTHONPATH", "ALIBABA_CLOUD_ECS_METADATA_DISABLED"}
    sig = SPEC["resources"]["signature"]["props"]["environmentVariables"]
    cb = SPEC["resources"]["callback"]["props"]["environmentVariables"]
    for env in (sig, cb):
        assert set(env) <= known, set(env) - known
        assert all(isinstance(v, str) for v in env.values()), "FC needs string values"
        assert env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] == "true"
    # every signature setting is explicit in the template; the callback-only ones are the callback's
    callback_only = {"OSSDIRECT_RECORDS", "OSSDIRECT_TRUSTED_KEY_PREFIXES", "OSSDIRECT_OSS_ENDPOINT"}
    signature_names = {"OSSDIRECT_" + n for n in ENV_NAMES} - callback_only
    assert signature_names <= set(sig), signature_names - set(sig)
    assert callback_only <= set(cb), callback_only - set(cb)
    # `info`, not `output`: it resolves in single-resource commands too (`s signature deploy|info|...`)
    assert sig["OSSDIRECT_CALLBACK_URL"] == "${resources.callback.info.url.system_url}"
    assert "resources.callback.output" not in (ROOT / "s.yaml").read_text()
    assert cb["OSSDIRECT_RECORDS"].startswith("sls://")
    assert cb["OSSDIRECT_TRUSTED_KEY_PREFIXES"] == "", "the emulator key must never be trusted in the cloud"
    assert cb["OSSDIRECT_OSS_ENDPOINT"] == "https://${vars.bucket}.oss-${vars.region}-internal.aliyuncs.com"
    assert (sig["OSSDIRECT_OBJECT_ACL"], sig["OSSDIRECT_STORAGE_CLASS"], sig["OSSDIRECT_CONTENT_DISPOSITION"],
            sig["OSSDIRECT_CACHE_CONTROL"]) == ("default", "Standard", "inline", "no-cache")


def test_flow_orders_callback_before_signature():
    """`info` references do not order steps (only `output` ones do), so the flow must."""
    assert SPEC["flow"] == {"deploy": [["callback"], ["signature"]], "remove": [["signature"], ["callback"]]}


ENV_REF = re.compile(r"\$\{env\('([A-Z0-9_]+)'(?:,\s*'([^']*)')?\)\}")


def test_env_example_lists_every_deploy_variable_and_env_is_ignored():
    refs = {name: default for name, default in ENV_REF.findall((ROOT / "s.yaml").read_text())}
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            example[name] = value
    assert set(example) == set(refs)
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
        {"Effect": "Allow", "Action": ["oss:PutObject"], "Resource": [prefix]},
        {"Effect": "Allow", "Action": ["log:PostLogStoreLogs"], "Resource": [function_logs]},
    ]
    assert policy("callback-role-policy.json")["Statement"] == [
        {"Effect": "Allow", "Action": ["log:PostLogStoreLogs"], "Resource": [records, function_logs]},
        {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": [prefix]},  # HeadObject of each upload
    ]
    assert policy("trust-policy-fc.json")["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["fc.aliyuncs.com"]}}]
    for res in SPEC["resources"].values():  # the logstore the policies name is the one logConfig uses
        assert res["props"]["logConfig"]["logstore"] == "${vars.functionLogstore}"
        assert res["props"]["logConfig"]["project"] == "${vars.slsProject}"


def test_no_secrets_in_the_template():
    text = (ROOT / "s.yaml").read_text()
    assert not re.search(r"LTAI[0-9A-Za-z]{12,30}", text)
    assert not re.search(r"(?i)(access_?key_?secret|security_?token)\s*:", text)
    assert "ALIBABA_CLOUD_ACCESS_KEY" not in text
