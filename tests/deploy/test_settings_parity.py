"""Deployed = local: per function, s.yaml and the local stack (devstack) give the settings the one statement
(function_settings.py) names, and share the same ones (one bucket, one endpoint, ONE record store)."""

import re

import yaml
from function_settings import FC_ONLY, READS, SHARED, names

from ossdirect.settings import DEPLOYED_CALLBACK_URL, deploy_environments

import devstack
from devstack import LocalStack

from test_s_yaml import ROOT

FUNCTIONS = ("signature", "callback", "process")


def s_yaml_envs():
    spec = yaml.safe_load((ROOT / "s.yaml").read_text())
    return {fn: spec["resources"][fn]["props"]["environmentVariables"] for fn in FUNCTIONS}


def devstack_envs(tmp_path, monkeypatch):
    """What the local stack hands each function's app (recorded as the apps are made)."""
    seen = {}
    for fn, cls_name in (("signature", "SignatureApp"), ("callback", "CallbackApp"), ("process", "ProcessApp")):
        cls = getattr(devstack, cls_name)
        monkeypatch.setattr(devstack, cls_name,
                            lambda environ, *a, _fn=fn, _cls=cls, **k: seen.setdefault(_fn, dict(environ)) and
                            _cls(environ, *a, **k))
    with LocalStack(tmp_path / "stack"):
        pass
    return seen


def sharing(envs):
    """For each shared setting: the functions that read it (the statement) and whether they all get one
    value (a setting not given is its default, the same in every function)."""
    out = {}
    for name in sorted(SHARED):
        readers = [fn for fn in FUNCTIONS if name in READS[fn]]
        values = {envs[fn].get("OSSDIRECT_" + name, "(default)") for fn in readers}
        out[name] = (readers, len(values) == 1)
    return out


def test_s_yaml_gives_each_function_exactly_the_stated_settings():
    for fn, env in s_yaml_envs().items():
        assert set(env) == names(fn) | FC_ONLY, (fn, sorted(set(env) ^ (names(fn) | FC_ONLY)))


def test_local_stack_and_s_yaml_share_the_same_settings_between_the_same_functions(tmp_path, monkeypatch):
    local, deployed = devstack_envs(tmp_path, monkeypatch), s_yaml_envs()
    assert set(local) == set(deployed) == set(FUNCTIONS)
    local_sharing, deployed_sharing = sharing(local), sharing(deployed)
    assert local_sharing == deployed_sharing, {n: (local_sharing[n], deployed_sharing[n]) for n in SHARED
                                               if local_sharing[n] != deployed_sharing[n]}
    assert deployed_sharing["RECORDS"] == (list(FUNCTIONS), True), "one record store for all three functions"
    assert all(same for _, same in deployed_sharing.values()), deployed_sharing
    # the local stack's store is a real shared one too (not each function's default file)
    assert {local[fn]["OSSDIRECT_RECORDS"] for fn in FUNCTIONS} == {local["callback"]["OSSDIRECT_RECORDS"]}


_ENV = re.compile(r"^\$\{env\('OSSDIRECT_DEPLOY_(\w+)'(?:, '([^']*)')?\)\}$")
_VAR = re.compile(r"^\$\{vars\.(\w+)\}$")


def _resolve(value, spec, dotenv):
    """A value of s.yaml's environmentVariables as `s` renders it, for the simple forms (a literal, a
    ${env('OSSDIRECT_DEPLOY_X', 'default')}, a ${vars.v} that is one); None for the computed ones."""
    value = str(value)
    var = _VAR.match(value)
    if var:
        value = spec["vars"][var.group(1)]
    env = _ENV.match(value)
    if env:
        return dotenv.get("OSSDIRECT_DEPLOY_" + env.group(1)) or (env.group(2) or "")
    return None if "${" in value else value


def test_check_config_env_file_maps_deploy_names_as_s_yaml_does():
    """ossdirect check-config --env-file (settings.deploy_environments) against s.yaml itself: the same
    variables per function (the table's), and the same value for every literal and plain env() entry,
    with each deploy variable set (to a value of its own) and unset (s.yaml's default)."""
    spec = yaml.safe_load((ROOT / "s.yaml").read_text())
    deployed = s_yaml_envs()
    names_used = set(re.findall(r"OSSDIRECT_DEPLOY_(\w+)", (ROOT / "s.yaml").read_text()))
    for dotenv in ({}, {f"OSSDIRECT_DEPLOY_{n}": f"v-{n.lower()}" for n in names_used}):
        ours = deploy_environments(dotenv)
        checked = 0
        for fn in FUNCTIONS:
            assert set(ours[fn]) - {"FC_FUNCTION_NAME"} == names(fn)
            for name, value in deployed[fn].items():
                if name in FC_ONLY:
                    continue
                expected = _resolve(value, spec, dotenv)
                if expected is not None:
                    assert ours[fn][name] == expected, (fn, name, value)
                    checked += 1
        assert checked > 40  # most are literal or plain env(): the computed ones are below
    one = deploy_environments({"OSSDIRECT_DEPLOY_BUCKET": "b", "OSSDIRECT_DEPLOY_SLS_PROJECT": "p"})
    assert one["callback"]["OSSDIRECT_RECORDS"] == "sls://p/upload-records?endpoint=cn-hangzhou.log.aliyuncs.com&timeout=2"
    assert one["callback"]["OSSDIRECT_RECORD_LOG"] == ""
    assert one["signature"]["OSSDIRECT_OSS_ENDPOINT"] == "https://b.oss-cn-hangzhou-internal.aliyuncs.com"
    assert one["signature"]["OSSDIRECT_UPLOAD_HOST"] == "https://b.oss-cn-hangzhou.aliyuncs.com"
    assert one["signature"]["OSSDIRECT_CALLBACK_URL"] == DEPLOYED_CALLBACK_URL
    two = deploy_environments({"OSSDIRECT_DEPLOY_BUCKET": "b", "OSSDIRECT_DEPLOY_SLS_PROJECT": "p",
                               "OSSDIRECT_DEPLOY_TABLESTORE_RECORDS": "tablestore://i/t?endpoint=e"})
    assert {two[fn]["OSSDIRECT_RECORDS"] for fn in FUNCTIONS} == {"tablestore://i/t?endpoint=e"}
    assert two["process"]["OSSDIRECT_RECORD_LOG"] == one["callback"]["OSSDIRECT_RECORDS"]
    assert sharing(two) == sharing(deployed)  # the same settings shared between the same functions
