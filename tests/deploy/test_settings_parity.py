"""Deployed = local: per function, s.yaml and the local stack (devstack) give the settings the one statement
(function_settings.py) names, and share the same ones (one bucket, one endpoint, ONE record store)."""

import yaml
from function_settings import FC_ONLY, READS, SHARED, names

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
