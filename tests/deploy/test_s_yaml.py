"""s.yaml is checked offline: structure, handlers, env names against the code, no secrets."""

import re
from pathlib import Path

import yaml

from ossdirect.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "s.yaml").read_text())
EXPECTED_METHODS = {"signature": ["GET", "OPTIONS"], "callback": ["POST"]}


def test_edition_and_resources():
    assert SPEC["edition"] == "3.0.0"
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
    # every signature setting is explicit in the template
    signature_names = {"OSSDIRECT_" + n for n in ENV_NAMES} - {"OSSDIRECT_RECORDS", "OSSDIRECT_TRUSTED_KEY_PREFIXES"}
    assert signature_names <= set(sig)
    assert sig["OSSDIRECT_CALLBACK_URL"] == "${resources.callback.output.url.system_url}"
    assert cb["OSSDIRECT_RECORDS"].startswith("sls://")
    assert cb["OSSDIRECT_TRUSTED_KEY_PREFIXES"] == "", "the emulator key must never be trusted in the cloud"


def test_no_secrets_in_the_template():
    text = (ROOT / "s.yaml").read_text()
    assert not re.search(r"LTAI[0-9A-Za-z]{12,30}", text)
    assert not re.search(r"(?i)(access_?key_?secret|security_?token)\s*:", text)
    assert "ALIBABA_CLOUD_ACCESS_KEY" not in text
