"""ossdirect as a library: the README's examples run, the public modules type-check, the version is one
number, the functions never load the client or the CLI, and the wheel holds exactly the package."""

import doctest
import os
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

import ossdirect

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Python library and CLI"


def readme_section():
    text = (ROOT / "README.md").read_text()
    start = text.index("\n" + SECTION + "\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_readme_examples_run(tmp_path):
    from devstack import LocalStack

    section = readme_section()
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 4 and all(">>>" in b for b in blocks)
    path = tmp_path / "hello.txt"
    path.write_text("hello from the README\n")
    with LocalStack(tmp_path / "stack") as stack:
        globs = {"signature_url": stack.signature_url, "path": str(path)}
        parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        test = parser.get_doctest("\n".join(blocks), globs, "README.md: " + SECTION, "README.md", 0)
        assert len(test.examples) >= 20
        result = runner.run(test)
        assert result.failed == 0, f"{result.failed} README example(s) failed (output above)"
        assert [r["filename"] for r in stack.records()] == ["hello.txt"]


def test_package_type_checks():
    """mypy over the whole package (and deploy/setup.py) with pyproject.toml's config, as CI runs it."""
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    checked = re.search(r"no issues found in (\d+) source files", out.stdout)
    assert checked, out.stdout
    assert int(checked[1]) >= len(list((ROOT / "shared" / "ossdirect").rglob("*.py")))  # every module, not a few


def test_readme_architecture_names_every_module_and_no_other():
    """The README's module table ("Inside shared/ossdirect/") is the package's tree: one row per module."""
    import ast

    text = (ROOT / "README.md").read_text()
    start = text.index("\n### Inside `shared/ossdirect/`\n")
    section = text[start:text.index("\n## ", start)]
    named = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", section, flags=re.M):
        names = re.findall(r"`([^`]+\.py)`", row)
        folder = names[0].rpartition("/")[0]
        named.update([names[0]] + [f"{folder}/{n}" if folder else n for n in names[1:]])
    package = ROOT / "shared" / "ossdirect"
    modules = set()
    for path in package.rglob("*.py"):
        body = ast.parse(path.read_text()).body
        if path.name == "__main__.py" or (path.name == "__init__.py" and path.parent != package and all(
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)):
            continue  # `python -m ossdirect`, and a layer's docstring-only __init__
        modules.add(path.relative_to(package).as_posix())
    assert named == modules, f"README only: {sorted(named - modules)}; package only: {sorted(modules - named)}"


def test_public_api_is_lazy_and_complete():
    code = ("import sys, ossdirect; before = sorted(m for m in sys.modules if m.startswith('ossdirect.'));"
            "names = [getattr(ossdirect, n) for n in ossdirect.__all__]; print(before)")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "shared")))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"  # `import ossdirect` loads no submodule
    for name in ("issue_form", "verify_callback", "open_store", "RecordStore", "Client", "UploadResult",
                 "UploadError", "load_config", "Config", "ConfigError", "Credentials", "CallbackAuthError"):
        assert name in ossdirect.__all__
    with pytest.raises(AttributeError):
        ossdirect.not_a_name  # noqa: B018


def test_functions_never_import_the_client_or_cli():
    code = ("import sys; from ossdirect.app.handlers import SignatureApp, CallbackApp;"
            "env = {'OSSDIRECT_BUCKET': 'b-bucket', 'OSSDIRECT_REGION': 'cn-hangzhou', "
            "'OSSDIRECT_RECORDS': 'stdout'};"
            "SignatureApp(env); CallbackApp(env);"
            "print(sorted(m for m in sys.modules if m in ('ossdirect.client', 'ossdirect.client.cli', 'requests', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "shared")))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_version_and_changelog_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == ossdirect.__version__
    assert project["scripts"] == {"ossdirect": "ossdirect.client.cli:console_main"}
    assert set(project["optional-dependencies"]["cli"]) >= {"requests>=2.31", "rich>=13"}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {ossdirect.__version__} " in changelog or f"## [{ossdirect.__version__}]" in changelog


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """`python -m build --wheel`, without build isolation (setuptools comes from the dev extra: offline)."""
    out_dir = tmp_path_factory.mktemp("dist")
    work = tmp_path_factory.mktemp("build-src")
    # build from a copy, so no build/ or *.egg-info lands in the work tree
    import shutil

    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "shared" / "ossdirect", work / "shared" / "ossdirect",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out_dir),
                            str(work)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = list(out_dir.glob("ossdirect-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_holds_only_the_package(wheel):
    assert wheel.name == f"ossdirect-{ossdirect.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = f"ossdirect-{ossdirect.__version__}.dist-info/"
    assert all(n.startswith(("ossdirect/", dist_info)) for n in names), names
    shipped = {n for n in names if n.startswith("ossdirect/")}
    source = {"ossdirect/" + p.relative_to(ROOT / "shared" / "ossdirect").as_posix()
              for p in (ROOT / "shared" / "ossdirect").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".typed")}
    assert shipped == source and "ossdirect/py.typed" in shipped
    entry_points = zipfile.ZipFile(wheel).read(dist_info + "entry_points.txt").decode()
    assert "ossdirect = ossdirect.client.cli:console_main" in entry_points
    metadata = zipfile.ZipFile(wheel).read(dist_info + "METADATA").decode()
    assert "Provides-Extra: cli" in metadata and f"Version: {ossdirect.__version__}" in metadata


def test_wheel_installed_in_a_fresh_virtualenv_gives_the_api_and_the_cli(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # install the wheel with this venv's pip (--python: for the fresh interpreter), offline
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--disable-pip-version-check", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    # its dependencies (cryptography, requests, rich) from this environment's site-packages, as a plain
    # path: .pth files there (the editable install of the work tree) are not processed from here
    import sysconfig

    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = env_dir / "bin" / "ossdirect"
    assert script.exists()
    check = ("import ossdirect, importlib.util as u; import ossdirect.client.cli, ossdirect.client;"
             "assert ossdirect.__file__.startswith(%r), ossdirect.__file__;"
             "[getattr(ossdirect, n) for n in ossdirect.__all__];"
             "missing = [m for m in ('emulator', 'devstack', 'tools', 'tests', 'bench', 'support') if u.find_spec(m)];"
             "assert not missing, missing; print(ossdirect.__version__)") % str(site)
    clean_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([str(python), "-c", check], cwd=tmp_path, capture_output=True, text=True, env=clean_env)
    assert out.returncode == 0 and out.stdout.strip() == ossdirect.__version__, out.stderr
    out = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, env=clean_env)
    assert out.returncode == 0 and "upload" in out.stdout and "explain" in out.stdout, out.stderr
    out = subprocess.run([str(script), "check-config", "--function", "signature"], cwd=tmp_path, text=True,
                         capture_output=True, env=dict(clean_env, OSSDIRECT_BUCKET="my-bucket",
                                                       OSSDIRECT_REGION="cn-hangzhou"))
    assert out.returncode == 0 and "signature function: ok" in out.stdout, out.stdout + out.stderr
