"""Run the real Serverless Devs CLI against the loopback FC API stand-in (fc_api.py).

- `s`: @serverless-devs/s, exact version in package.json/package-lock.json beside this file, installed by
  `make test` (`npm ci` here);
- fc3: the fc3 component 0.1.22 (devsapp/fc3, MIT, LICENSE inside), normally fetched by `s` from the
  Serverless Devs registry, which nothing here may reach: kept as fc3-component-0.1.22.tar.xz, with a
  stand-in for fc3-domain (loaded by fc3, never called by a plain function deploy);
- fc3 is pointed at the stand-in with its own settings FC_CLIENT_CUSTOM_ENDPOINT and
  FC_CODE_TEMP_OSS_ENDPOINT; each Rehearsal has a throwaway HOME (~/.s with made-up keys), never the
  real ~/.s.
"""

import json
import os
import shutil
import sys
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python tests/deploy/fc_standin/rehearse.py ...
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fc_standin.fc_api import ACCOUNT, FcApi  # noqa: E402

HERE = Path(__file__).resolve().parent
S_CLI = HERE / "node_modules" / ".bin" / "s"
COMPONENTS = HERE / "fc3-component-0.1.22.tar.xz"


def s_version():
    return json.loads((HERE / "package.json").read_text())["dependencies"]["@serverless-devs/s"]


class Rehearsal:
    """One stand-in account (its API server and a throwaway HOME); ``run(*args)`` runs one `s` command
    in ``project`` and returns what FC received."""

    def __init__(self, project, out, env, trigger_urls=None):
        assert S_CLI.exists(), (f"the Serverless Devs CLI is not installed at {S_CLI}: "
                                f"run `cd {HERE.relative_to(HERE.parents[2])} && npm ci` (make test does)")
        assert shutil.which("node"), "node is needed for the deploy rehearsal (the `s` CLI is a node program)"
        self.project, self.out, self.env = Path(project), Path(out), dict(env)
        self.api = FcApi(self.out, trigger_urls=trigger_urls).start()
        self.home = Path(tempfile.mkdtemp(prefix="ossdirect-s-home-"))
        dot_s = self.home / ".s"
        with tarfile.open(COMPONENTS) as tar:
            tar.extractall(dot_s, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(dot_s)
        (dot_s / "config").mkdir(parents=True, exist_ok=True)
        version = s_version()  # no update check: nothing may reach out
        (dot_s / "config" / "update-notifier.json").write_text(json.dumps(
            {"output": False, "current": version, "latest": version, "lastUpdateCheck": 4102444800000}))
        self._s("config", "add", "-a", "default", "--AccessKeyID", "rehearsal-key", "--AccessKeySecret",
                "rehearsal-secret", "--AccountID", ACCOUNT, check=True)

    def _s(self, *args, check=False):
        env = dict(self.env, HOME=str(self.home), NO_COLOR="1", FC_CLIENT_CUSTOM_ENDPOINT=self.api.url,
                   FC_CODE_TEMP_OSS_ENDPOINT=self.api.url)
        proc = subprocess.run([str(S_CLI), *args], cwd=self.project, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)
        assert not check or proc.returncode == 0, proc.stdout[-3000:]
        return proc

    def run(self, *args):
        before = {p.name for p in self.out.glob("*.zip")}
        started = time.monotonic()
        self.api.begin_run()
        proc = self._s(*args)
        (self.out / "s.log").write_text(proc.stdout)
        requests = [json.loads(line) for line in (self.out / "requests.jsonl").read_text().splitlines() if line]
        state = json.loads((self.out / "state.json").read_text()) if (self.out / "state.json").exists() else {}
        return {"args": args, "rc": proc.returncode, "log": proc.stdout, "requests": requests,
                "zips": sorted({p.name for p in self.out.glob("*.zip")} - before), "state": state,
                "seconds": time.monotonic() - started}

    def close(self):
        self.api.stop()
        shutil.rmtree(self.home, ignore_errors=True)


if __name__ == "__main__":
    # python tests/deploy/fc_standin/rehearse.py PROJECT_DIR OUT_DIR [s arguments...]  (default: deploy -y)
    project, out, *args = sys.argv[1:] or ["."]
    rehearsal = Rehearsal(project, out, os.environ)
    try:
        result = rehearsal.run(*(args or ["deploy", "-y"]))
    finally:
        rehearsal.close()
    print(result["log"][-4000:])
    sys.exit(result["rc"])
