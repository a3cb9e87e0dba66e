"""The settings table (shared/ossdirect/settings.py): every OSSDIRECT_* setting once, every problem reported
at once and once, check-config over it (also on a deploy .env), and no other module reading OSSDIRECT_*."""

import ast
import os
import subprocess
import sys

import pytest

from support import ROOT

from ossdirect import settings as st
from ossdirect.settings import ConfigError, load_config, load_settings

BASE = {"OSSDIRECT_BUCKET": "my-bucket", "OSSDIRECT_REGION": "cn-hangzhou"}
PACKAGE = ROOT / "shared" / "ossdirect"


def test_every_setting_is_one_row_read_by_known_functions_and_every_rule_names_rows():
    names = [s.name for s in st.SETTINGS]
    assert len(names) == len(set(names)) == len(st.ENV_NAMES) == 45
    for s in st.SETTINGS:
        assert s.functions and set(s.functions) <= set(st.FUNCTIONS), s
        assert s.section in ("config", "auth", "limits", "process"), s
        s.parse(s.default, s.name) if s.name != "BUCKET" else None  # every default but the bucket parses
    for rule in st.RULES:
        assert set(rule.inputs) <= set(names), rule.inputs
    assert set(st.SHARED) <= set(st.names_for("callback")) | set(st.names_for("process"))
    with pytest.raises(ValueError):
        st.names_for("nope")


def test_several_bad_settings_are_all_reported_in_one_error_each_once():
    env = dict(BASE, OSSDIRECT_BUCKET="Bad_Bucket", OSSDIRECT_MAX_BYTES="lots", OSSDIRECT_KEY_NAMING="uuid",
               OSSDIRECT_AUTH="jwt", OSSDIRECT_JWT_SECRET="short", OSSDIRECT_USER_LIMITS="forms=zero",
               OSSDIRECT_COMPAT="seed")
    with pytest.raises(ConfigError) as err:
        load_settings(env, "signature")
    e = err.value
    named = [setting for setting, _ in e.problems]
    assert named == ["BUCKET", "MAX_BYTES", "KEY_NAMING", "USER_LIMITS", "JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE",
                     "COMPAT"], e.problems
    assert len(set(e.messages)) == len(e.messages)  # each once
    text = str(e)
    assert text.startswith(f"{len(e.problems)} problems: ")
    for message in e.messages:
        assert text.count(message) == 1
    assert "OSSDIRECT_MAX_BYTES must be an integer, got 'lots'" in text
    assert "OSSDIRECT_JWT_SECRET must be at least 32 bytes long" in text
    assert "OSSDIRECT_COMPAT=seed cannot be combined with sign-in" in text
    assert (e.setting, e.first) == e.problems[0]
    # one problem: the message is exactly that sentence (as before the table)
    with pytest.raises(ConfigError) as one:
        load_config(dict(BASE, OSSDIRECT_MAX_BYTES="lots"))
    assert str(one.value) == "OSSDIRECT_MAX_BYTES must be an integer, got 'lots'" and one.value.setting == "MAX_BYTES"


def test_a_rule_is_not_run_on_a_setting_that_is_itself_invalid():
    with pytest.raises(ConfigError) as err:
        load_config(dict(BASE, OSSDIRECT_MIN_BYTES="x", OSSDIRECT_MAX_BYTES="5"))
    assert [s for s, _ in err.value.problems] == ["MIN_BYTES"]
    with pytest.raises(ConfigError) as err:
        load_config(dict(BASE, OSSDIRECT_MIN_BYTES="10", OSSDIRECT_MAX_BYTES="5"))
    assert [s for s, _ in err.value.problems] == ["MAX_BYTES"] and "OSSDIRECT_MIN_BYTES" in str(err.value)


def test_cross_field_rules_formerly_in_constructors_are_table_rules():
    env = dict(BASE, OSSDIRECT_PREFIX="users/{sub}/", OSSDIRECT_USER_LIMITS="forms=3", OSSDIRECT_PREFIX_FORMS="true")
    with pytest.raises(ConfigError) as err:
        load_settings(env, "signature")
    assert [s for s, _ in err.value.problems] == ["PREFIX", "USER_LIMITS"]
    assert "needs a signed-in user" in str(err.value) and "cannot be combined with prefix forms" in str(err.value)
    on_fc = dict(BASE, FC_FUNCTION_NAME="cb", OSSDIRECT_RECORDS="sqlite:///r.sqlite3")
    for fn in ("callback", "process"):
        with pytest.raises(ConfigError, match="OSSDIRECT_RECORDS is a SQLite file"):
            load_settings(on_fc, fn)
    assert load_settings(on_fc, "signature").config.records == "sqlite:///r.sqlite3"  # refused per route there
    with pytest.raises(ConfigError, match="QUARANTINE_PREFIX"):
        load_settings(dict(BASE, OSSDIRECT_QUARANTINE_PREFIX="uploads/q/"), "process")


def test_each_function_reads_its_own_rows_and_sections_are_read_only():
    env = dict(BASE, OSSDIRECT_MAX_BYTES="lots", OSSDIRECT_QUARANTINE="never")
    with pytest.raises(ConfigError, match="MAX_BYTES"):
        load_settings(env, "signature")
    assert load_settings(env, "callback").config.max_bytes == 100 * 1024 * 1024  # not a setting it reads
    with pytest.raises(ConfigError, match="QUARANTINE"):
        load_settings(env, "process")
    s = load_settings(dict(BASE, OSSDIRECT_USER_LIMITS="forms=3"), "signature")
    assert s.limits.forms == 3 and s.process is None and s.auth is s.config.auth and s.function == "signature"
    p = load_settings(BASE, "process")
    assert p.process.quarantine == "move" and p.limits is None
    for obj, attr in ((s, "limits"), (s.config, "max_bytes"), (st.SETTINGS[0], "default")):
        with pytest.raises(AttributeError):
            setattr(obj, attr, None)


def test_settings_import_stays_lean():
    code = ("import sys; import ossdirect.app.handlers; "
            "bad = [m for m in ('typing', 'dataclasses', 'ossdirect.core.limits', 'ossdirect.core.events') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=str(ROOT / "shared")))


# --- nobody else reads the environment --------------------------------------------------------------------

def _reads_environment(tree):
    """(line, what) for each os.environ / os.getenv / environ.get("OSSDIRECT_...") / "OSSDIRECT_..." lookup."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            yield node.lineno, f"os.{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(a.name in ("environ", "getenv") for a in node.names):
            yield node.lineno, "from os import environ"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop") \
                and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
            first = node.args[0]
            text = first.value if isinstance(first, ast.Constant) else "".join(
                v.value for v in first.values if isinstance(v, ast.Constant))
            if isinstance(text, str) and text.startswith(("OSSDIRECT_", "FC_")):
                yield node.lineno, f".get({text!r})"
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str) and node.slice.value.startswith("OSSDIRECT_"):
            yield node.lineno, f"[{node.slice.value!r}]"


def test_only_settings_reads_ossdirect_variables():
    # the runtime's own credentials (ALIBABA_CLOUD_*) stay with the credentials provider
    allowed = {PACKAGE / "settings.py": None, PACKAGE / "oss" / "credentials.py": {"os.environ"}}
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        hits = [(line, what) for line, what in _reads_environment(ast.parse(path.read_text(encoding="utf-8")))]
        if path in allowed:
            if allowed[path] is not None:
                hits = [h for h in hits if h[1] not in allowed[path]]
            else:
                assert hits, "settings.py is where the environment is read"
                continue
        if hits:
            found[str(path.relative_to(PACKAGE))] = hits
    assert found == {}
    assert "OSSDIRECT_" not in (PACKAGE / "oss" / "credentials.py").read_text().replace("``OSSDIRECT_", "")


def test_the_environment_check_finds_a_reader(tmp_path):
    sample = "import os\nx = os.environ.get('OSSDIRECT_BUCKET')\ny = env.get('OSSDIRECT_REGION')\nz = e['OSSDIRECT_P']\n"
    assert [w for _, w in _reads_environment(ast.parse(sample))].count("os.environ") == 1
    assert len(list(_reads_environment(ast.parse(sample)))) == 4


# --- check-config --env-file ------------------------------------------------------------------------------

def _cli(*args, env=None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OSSDIRECT_", "FC_"))}
    clean.update(env or {}, PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]))
    p = subprocess.run([sys.executable, "-m", "ossdirect.client.cli", *args], capture_output=True, text=True,
                       env=clean, cwd=ROOT, timeout=120)
    return p.returncode, p.stdout, p.stderr


def _dotenv(tmp_path, **changes):
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        if name.startswith("OSSDIRECT_DEPLOY_") and name[len("OSSDIRECT_DEPLOY_"):] in changes:
            line = f"{name}={changes.pop(name[len('OSSDIRECT_DEPLOY_'):])}"
        lines.append(line)
    lines += [f"OSSDIRECT_DEPLOY_{k}={v}" for k, v in changes.items()]
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_config_env_file_checks_the_deploy_env_as_s_yaml_maps_it(tmp_path):
    good = _dotenv(tmp_path, TABLESTORE_RECORDS="tablestore://inst/upload_records?endpoint=https://inst.cn-hangzhou"
                                                ".ots.aliyuncs.com")
    code, out, err = _cli("check-config", "--env-file", str(good))
    assert code == 0, out + err
    assert "signature function: ok" in out and "callback function: ok" in out and "process function: ok" in out
    assert "https://my-upload-bucket.oss-cn-hangzhou.aliyuncs.com" in out  # upload host, as s.yaml derives it
    assert "as s.yaml deploys" in out
    bad = _dotenv(tmp_path, BUCKET="Bad_Bucket", HOOK_MAX_ATTEMPTS="99", AUTH="maybe", SITE_ORIGIN="example.com")
    code, out, err = _cli("check-config", "--env-file", str(bad))
    invalid = [line for line in out.splitlines() if "INVALID" in line]
    assert code == 2, out + err
    assert len(invalid) == 4, invalid  # every problem, each once
    assert "signature, callback and process functions" in invalid[0] and "OSSDIRECT_BUCKET" in invalid[0]
    assert any(line.startswith("process function:") and "HOOK_MAX_ATTEMPTS" in line for line in invalid)
    assert any(line.startswith("signature function:") and "OSSDIRECT_AUTH" in line for line in invalid)
    assert any("ALLOWED_ORIGINS" in line for line in invalid)
    code, out, err = _cli("check-config", "--env-file", str(tmp_path / "missing.env"))
    assert code == 2 and "cannot read" in err


def test_env_file_exported_deploy_variables_win_and_the_file_format(tmp_path):
    path = tmp_path / "deploy.env"
    path.write_text("# comment\nexport OSSDIRECT_DEPLOY_BUCKET='quoted-bucket'\nOSSDIRECT_DEPLOY_SLS_PROJECT=p  # c\n"
                    "OSSDIRECT_DEPLOY_REGION=cn-beijing\n")
    from ossdirect.client.cli import deploy_envs

    envs = deploy_envs(str(path), {"OSSDIRECT_DEPLOY_REGION": "cn-shanghai"})
    sig = envs["signature"]
    assert sig["OSSDIRECT_BUCKET"] == "quoted-bucket" and sig["OSSDIRECT_REGION"] == "cn-shanghai"
    assert envs["callback"]["OSSDIRECT_RECORDS"] == "sls://p/upload-records?endpoint=cn-shanghai.log.aliyuncs.com&timeout=2"
    for fn, env in envs.items():
        assert {k for k in env if k.startswith("OSSDIRECT_")} == {"OSSDIRECT_" + n for n in st.names_for(fn)}


@pytest.mark.parametrize("raw,expected", [
    ("stored=0", "stored must be between 1 and"),
    ("stored=-5", "stored must be between 1 and"),
    ("stored=1GB", "stored must be an integer, got '1GB'"),
    ("stored=1.5", "stored must be an integer"),
    ("stored=", "stored must be an integer"),
    ("stored=99999999999999999999", "stored must be between 1 and"),
    ("stored=1,stored=2", "names stored twice"),
    ("store=10", "(forms, bytes, window, stored)"),  # a typo names the keys it accepts
])
def test_bad_stored_quota_is_a_config_error(raw, expected):
    with pytest.raises(ConfigError) as err:
        load_settings(dict(BASE, OSSDIRECT_USER_LIMITS=raw), "signature")
    assert [s for s, _ in err.value.problems] == ["USER_LIMITS"] and expected in str(err.value)


def test_stored_quota_is_read_by_all_three_functions_and_needs_one_store_on_fc():
    env = dict(BASE, OSSDIRECT_USER_LIMITS="stored=1000", OSSDIRECT_LIMITS_STORE="sqlite:///q.sqlite3")
    for fn in st.FUNCTIONS:  # the signature function reserves; the callback and process settle
        assert load_settings(env, fn).limits.stored == 1000
    assert load_settings(dict(env, OSSDIRECT_USER_LIMITS="forms=3"), "callback").limits is None  # nothing to settle
    assert load_settings(dict(env, OSSDIRECT_USER_LIMITS="forms=3"), "signature").limits.stored is None
    on_fc = dict(env, FC_FUNCTION_NAME="sig", OSSDIRECT_RECORDS="tablestore://ossd/r?endpoint=https://x.com")
    with pytest.raises(ConfigError) as err:
        load_settings(on_fc, "signature")
    assert [s for s, _ in err.value.problems] == ["LIMITS_STORE"] and "stored=" in str(err.value)
    cloud = "tablestore://ossd/limits?endpoint=https://ossd.cn-hangzhou.ots.aliyuncs.com"
    assert load_settings(dict(on_fc, OSSDIRECT_LIMITS_STORE=cloud), "signature").limits.stored == 1000
    assert load_settings(dict(on_fc, OSSDIRECT_USER_LIMITS="forms=3"), "signature").limits.forms == 3  # windows only
