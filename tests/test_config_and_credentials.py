import io
import json
import types

import pytest
from fixtures import base_env

from ossdirect.oss import credentials as creds_mod
from ossdirect.settings import ENV_NAMES, ConfigError, load_config
from ossdirect.oss.credentials import CredentialsUnavailable, resolve_credentials
from ossdirect.store import open_store
from ossdirect.store.stdout import StdoutStore

BASE = base_env("my-bucket")


def test_secure_defaults():
    c = load_config(dict(BASE))
    assert c.expires_seconds <= 600
    assert c.forbid_overwrite is True
    assert c.max_bytes == 100 * 1024 * 1024
    assert c.namings == ("random",)
    assert c.allowed_origins == ()
    assert c.trusted_key_prefixes == ()
    assert not c.content_type_allowed("text/html")
    assert c.content_type_allowed("image/png") and c.content_type_allowed("application/pdf")
    assert c.upload_host == "https://my-bucket.oss-cn-hangzhou.aliyuncs.com"


@pytest.mark.parametrize("name,value", [
    ("BUCKET", "Bad_Bucket"), ("REGION", "hangzhou"), ("MAX_BYTES", "ten"), ("MIN_BYTES", "-1"),
    ("EXPIRES_SECONDS", "0"), ("CONTENT_TYPES", "image"), ("CALLBACK_URL", "ftp://x"),
    ("CALLBACK_URL", "https://cb.example.com/x?a=1"), ("CALLBACK_BODY_TYPE", "xml"),
    ("ALLOWED_ORIGINS", "example.com"), ("RECORDS", "mysql://x"), ("TRUSTED_KEY_PREFIXES", "http://x/no-slash"),
    ("FORBID_OVERWRITE", "maybe"), ("SUCCESS_STATUS", "202"), ("KEY_NAMING", "uuid"),
    ("SIGNATURE_VERSIONS", "v2"), ("PREFIX", "/abs/"), ("UPLOAD_HOST", "bucket.example.com"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError) as err:
        load_config(dict(BASE, **{"OSSDIRECT_" + name: value}))
    assert "OSSDIRECT_" + name in str(err.value)


def test_min_above_max_names_both():
    with pytest.raises(ConfigError) as err:
        load_config(dict(BASE, OSSDIRECT_MIN_BYTES="10", OSSDIRECT_MAX_BYTES="5"))
    assert "OSSDIRECT_MAX_BYTES" in str(err.value) and "OSSDIRECT_MIN_BYTES" in str(err.value)


def test_every_variable_is_documented_in_the_readme():
    from support import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [n for n in ENV_NAMES if f"OSSDIRECT_{n}" not in readme]
    assert missing == []


def test_any_content_type_and_region_prefix():
    c = load_config(dict(BASE, OSSDIRECT_CONTENT_TYPES="*", OSSDIRECT_REGION="oss-cn-beijing"))
    assert c.content_types == ("*",) and c.content_type_allowed("application/zip") and c.region == "cn-beijing"
    # a wildcard never admits a type a browser would run as a document; naming it does
    assert not c.content_type_allowed("text/html") and not c.content_type_allowed("image/svg+xml")
    assert load_config(dict(BASE, OSSDIRECT_CONTENT_TYPES="image/*,image/svg+xml")).content_type_allowed("image/svg+xml")


def test_credentials_order_context_then_env_then_chain(monkeypatch):
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "envid", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "envsecret"}
    ctx = types.SimpleNamespace(credentials=types.SimpleNamespace(
        access_key_id="ctxid", access_key_secret="ctxsecret", security_token="tok"))
    assert resolve_credentials(ctx, env).access_key_id == "ctxid"
    empty_ctx = types.SimpleNamespace(credentials=types.SimpleNamespace(
        access_key_id="", access_key_secret="", security_token=""))
    got = resolve_credentials(empty_ctx, env)
    assert got.access_key_id == "envid" and got.security_token is None and got.source == "environment"
    dict_ctx = types.SimpleNamespace(credentials={"access_key_id": "d", "access_key_secret": "s"})
    assert resolve_credentials(dict_ctx, {}).access_key_id == "d"
    assert "envsecret" not in repr(got)


def test_default_chain_is_lazy_and_its_absence_is_unavailable(monkeypatch):
    import sys

    monkeypatch.setattr(creds_mod, "_chain_client", None)
    monkeypatch.delitem(sys.modules, "alibabacloud_credentials.client", raising=False)
    with pytest.raises(CredentialsUnavailable):
        resolve_credentials(None, {})
    # the chain really was consulted (imported) only after context and environment gave nothing
    assert "alibabacloud_credentials.client" in sys.modules


def test_default_chain_gives_credentials_from_its_own_sources(monkeypatch, tmp_path):
    # The chain's credentials-file provider, pointed at a real file: proves the third step works.
    ini = tmp_path / "credentials.ini"
    ini.write_text("[default]\nenable = true\ntype = access_key\naccess_key_id = chainid\naccess_key_secret = chainsecret\n")
    monkeypatch.setattr(creds_mod, "_chain_client", None)
    from alibabacloud_credentials.utils import auth_util

    monkeypatch.setattr(auth_util, "environment_credentials_file", str(ini), raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", str(ini))
    got = creds_mod._from_default_chain()
    assert got is not None and got.access_key_id == "chainid" and got.source == "default-chain"


def test_stdout_store_writes_json_lines_once():
    stream = io.StringIO()
    store = StdoutStore(stream)
    rec = {"record_id": "r1", "upload_id": "u", "key": "k", "bucket": "b"}
    assert store.put(rec) == (rec, True)
    assert store.put(dict(rec, record_id="r2"))[0]["record_id"] == "r1"
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["ossdirect_record"]["upload_id"] == "u"


def test_open_store_kinds(tmp_path):
    assert isinstance(open_store("stdout"), StdoutStore)
    store = open_store(f"sqlite:///{tmp_path}/x/y.sqlite3")
    assert (tmp_path / "x" / "y.sqlite3").exists()
    store.close()


def test_feature_modules_variables_are_listed_with_the_others():
    from ossdirect.core.auth import AUTH_ENV_NAMES
    from ossdirect.core.events import PROCESS_ENV_NAMES
    from ossdirect.core.limits import LIMIT_ENV_NAMES
    from ossdirect.settings import ENV_NAMES

    assert set(AUTH_ENV_NAMES) <= set(ENV_NAMES)
    assert set(LIMIT_ENV_NAMES) | set(PROCESS_ENV_NAMES) <= set(ENV_NAMES)
    assert not set(AUTH_ENV_NAMES) & set(LIMIT_ENV_NAMES) and not set(LIMIT_ENV_NAMES) & set(PROCESS_ENV_NAMES)


def test_bad_values_are_all_named_in_one_error():
    bad = {"BUCKET": "Bad_Bucket", "MAX_BYTES": "ten", "CALLBACK_BODY_TYPE": "xml", "SIGNATURE_VERSIONS": "v2"}
    with pytest.raises(ConfigError) as err:
        load_config(dict(BASE, **{"OSSDIRECT_" + k: v for k, v in bad.items()}))
    assert [name for name, _ in err.value.problems] == list(bad)
    for name in bad:
        assert str(err.value).count("OSSDIRECT_" + name + " ") == 1
