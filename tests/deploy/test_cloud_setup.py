"""deploy/setup.py (the one-command cloud setup) against loopback RAM, SLS and Tablestore stand-ins and the
OSS emulator: the first run creates everything, the second finds it all there and changes nothing, a refused
call prints its fix and exits 1, --dry-run only reads, and no secret is ever printed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List

import oss2
import pytest

from deploy import setup as cloud_setup
from emulator import EmulatorConfig, serve
from tests.deploy.cloud_standins import RamStandIn, SlsStandIn, TablestoreControlStandIn
from tests.tablestore_standin import TablestoreStandIn

ROOT = Path(__file__).resolve().parents[2]
AK, SK, TOKEN = "STS.setupadmin", "setup-admin-secret-value", "setup-admin-sts-token"
CREDS = {AK: (SK, TOKEN)}
PROJECT = "ossd-logs"


class Cloud:
    def __init__(self, tmp_path: Path, fail: Dict[str, Any]) -> None:
        self.ram = RamStandIn(CREDS, fail=fail)
        self.sls = SlsStandIn(PROJECT, CREDS, fail=fail)
        self.ots_control = TablestoreControlStandIn(CREDS, fail=fail)
        self.ots = TablestoreStandIn(instance="ossd", credentials=CREDS)
        self._emu = serve(EmulatorConfig(data_dir=str(tmp_path / "emu"), buckets=["up-bucket"],
                                         accounts={AK: (SK, TOKEN)}))
        self.emu = self._emu.__enter__()
        self.env_file = tmp_path / ".env"
        self.env_file.write_text("\n".join([
            "# like .env.example",
            "OSSDIRECT_DEPLOY_BUCKET=up-bucket",
            "OSSDIRECT_DEPLOY_SITE_ORIGIN=https://up.example.com",
            f"OSSDIRECT_DEPLOY_SLS_PROJECT={PROJECT}",
            "OSSDIRECT_DEPLOY_REGION=cn-hangzhou",
            "OSSDIRECT_DEPLOY_PREFIX=incoming/",
            f"OSSDIRECT_DEPLOY_TABLESTORE_RECORDS=tablestore://ossd/upload_records?endpoint={self.ots.endpoint}",
            "OSSDIRECT_DEPLOY_USER_LIMITS=forms=20,window=3600",
            f"OSSDIRECT_DEPLOY_LIMITS_STORE=tablestore://ossd/upload_limits?endpoint={self.ots.endpoint}",
            "OSSDIRECT_SETUP_ACCOUNT_ID=1234567890",
            "OSSDIRECT_SETUP_LOGSTORE_TTL_DAYS=14",
            "OSSDIRECT_SETUP_LOGSTORE_SHARDS=3",
            "OSSDIRECT_SETUP_TABLESTORE_CLUSTER_TYPE=SSD",
            f"OSSDIRECT_SETUP_RAM_ENDPOINT={self.ram.endpoint}",
            f"OSSDIRECT_SETUP_SLS_ENDPOINT={self.sls.endpoint}",
            f"OSSDIRECT_SETUP_TABLESTORE_ENDPOINT={self.ots_control.endpoint}",
            "",
        ]))

    def run(self, *extra: str, environ: Dict[str, str] | None = None) -> tuple[int, List[str]]:
        lines: List[str] = []
        env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
               "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
        env.update(environ or {})
        rc = cloud_setup.main(["--env-file", str(self.env_file), "--oss-endpoint", self.emu.url, *extra],
                              environ=env, out=lines.append)
        return rc, lines

    def mutating(self) -> List[str]:
        ots = [r[0] for r in self.ots.requests if r[0] in ("CreateTable", "CreateIndex", "UpdateTable")]
        return self.ram.mutating_calls() + self.sls.mutating_calls() + self.ots_control.mutating_calls() + ots

    def problems(self) -> List[str]:
        return self.ram.problems + self.sls.problems + self.ots_control.problems + list(self.ots.problems)

    def close(self) -> None:
        self._emu.__exit__(None, None, None)
        for s in (self.ram, self.sls, self.ots_control, self.ots):
            s.close()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    c = Cloud(tmp_path, {})
    yield c
    c.close()


def statuses(lines: List[str]) -> List[str]:
    return [next(s for s in sorted(cloud_setup.STATUSES, key=len, reverse=True) if line.startswith(s))
            for line in lines if not line.startswith("dry run")]


def no_secret(lines: List[str]) -> None:
    text = "\n".join(lines)
    assert SK not in text and TOKEN not in text


def oss_writes(caplog: pytest.LogCaptureFixture) -> List[str]:
    """The emulator's (werkzeug's) request lines for bucket writes."""
    return [r.getMessage() for r in caplog.records if r.name == "werkzeug" and re.search(r'"(PUT|POST|DELETE) /',
                                                                                       r.getMessage())]


def test_first_run_creates_everything_second_changes_nothing(cloud: Cloud, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="werkzeug")
    rc, first = cloud.run()
    assert rc == 0, "\n".join(first)
    no_secret(first)
    assert cloud.problems() == []
    got = statuses(first)
    assert "failed" not in got and "already there" not in got
    # RAM: four roles, each trust document as in deploy/, one policy per document, attached once
    assert sorted(cloud.ram.roles) == sorted([cloud_setup.CALLBACK_ROLE, cloud_setup.PROCESS_ROLE,
                                              cloud_setup.SIGNATURE_ROLE, cloud_setup.TRIGGER_ROLE])
    trigger_trust = json.loads(cloud.ram.roles[cloud_setup.TRIGGER_ROLE]["AssumeRolePolicyDocument"])
    assert trigger_trust["Statement"][0]["Principal"]["Service"] == ["oss.aliyuncs.com"]
    fc_trust = json.loads(cloud.ram.roles[cloud_setup.CALLBACK_ROLE]["AssumeRolePolicyDocument"])
    assert fc_trust == json.loads((ROOT / "deploy/trust-policy-fc.json").read_text())
    assert cloud.ram.attached[cloud_setup.CALLBACK_ROLE] == ["ossdirect-callback-policy",
                                                            "ossdirect-tablestore-callback-policy"]
    assert cloud.ram.attached[cloud_setup.SIGNATURE_ROLE] == ["ossdirect-signature-policy",
                                                             "ossdirect-tablestore-signature-records-policy",
                                                             "ossdirect-tablestore-signature-limits-policy"]
    limits_policy = cloud.ram.policies["ossdirect-tablestore-signature-limits-policy"]["versions"][0]
    assert "instance/ossd/table/upload_limits" in limits_policy
    process = json.loads(cloud.ram.policies["ossdirect-process-policy"]["versions"][0])
    resources = [r for s in process["Statement"] for r in s["Resource"]]
    assert "acs:oss:*:*:up-bucket/incoming/*" in resources and "acs:oss:*:*:up-bucket/quarantine/*" in resources
    assert "acs:log:cn-hangzhou:1234567890:project/ossd-logs/logstore/upload-records" in resources
    ots_policy = cloud.ram.policies["ossdirect-tablestore-process-policy"]["versions"][0]
    assert "instance/ossd/table/upload_records_by_time" in ots_policy and "<" not in ots_policy
    # SLS: the project, both Logstores with .env's TTL and shards, each indexed
    assert cloud.sls.exists
    assert {n: (s["ttl"], s["shardCount"]) for n, s in cloud.sls.logstores.items()} == {
        "function-logs": (14, 3), "upload-records": (14, 3)}
    assert sorted(cloud.sls.indexes) == ["function-logs", "upload-records"]
    record_keys = cloud.sls.indexes["upload-records"]["keys"]  # every record field is queryable
    assert record_keys["upload_id"]["type"] == "text" and record_keys["size"]["type"] == "long"
    assert not cloud.sls.indexes["function-logs"].get("keys") and cloud.sls.indexes["function-logs"]["line"]["token"]
    # Tablestore: the instance of .env's type, the table the record store expects
    assert cloud.ots_control.instances["ossd"]["StorageType"] == "SSD"
    table = cloud.ots.tables["upload_records"]
    assert sorted(table.indexes) == ["upload_records_by_time", "upload_records_by_user"]
    assert table.pk == [("upload_id", "STRING")] and set(table.defined) == {"user", "created_at"}
    limits = cloud.ots.tables["upload_limits"]  # per-user limits counted across instances
    assert limits.ttl == 86400 and [n for n, _ in limits.pk] == ["subject", "window_start"]
    assert sum(1 for line in first if line.startswith("created") and "Tablestore instance ossd" in line) == 1
    # the bucket: one CORS rule for the origin, the abort-multipart lifecycle rule under the prefix
    bucket = oss2.Bucket(oss2.StsAuth(AK, SK, TOKEN), cloud.emu.url, "up-bucket")
    rules = bucket.get_bucket_cors().rules
    assert [r.allowed_origins for r in rules] == [["https://up.example.com"]]
    assert sorted(rules[0].allowed_methods) == ["GET", "HEAD", "POST", "PUT"]
    life = [r for r in bucket.get_bucket_lifecycle().rules if r.id == cloud_setup.LIFECYCLE_RULE_ID]
    assert life[0].prefix == "incoming/" and life[0].abort_multipart_upload.days == 7
    # the bucket started public-read (the emulator's default): setup made it private
    assert any(line.startswith("updated") and "ACL private" in line for line in first), "\n".join(first)
    assert bucket.get_bucket_acl().acl == oss2.BUCKET_ACL_PRIVATE

    made = cloud.mutating()
    assert len(oss_writes(caplog)) == 3  # PutBucketAcl, PutBucketCors, PutBucketLifecycle
    caplog.clear()
    rc, second = cloud.run()
    assert rc == 0, "\n".join(second)
    assert cloud.mutating() == made, "the second run made a mutating call"
    assert oss_writes(caplog) == [] and len(caplog.records) >= 3  # read the ACL, CORS and lifecycle only
    assert set(statuses(second)) <= {"already there", "skipped"}, "\n".join(second)
    assert len(second) == len(first)
    assert len([s for s in statuses(second) if s == "already there"]) >= 20
    rc, planned = cloud.run("--dry-run")  # the plan of a set-up account: nothing to do
    assert rc == 0 and set(statuses(planned)) <= {"already there", "skipped"} and cloud.mutating() == made


def test_dry_run_reads_only_and_prints_the_plan(cloud: Cloud) -> None:
    rc, lines = cloud.run("--dry-run")
    assert rc == 0, "\n".join(lines)
    assert lines[0].startswith("dry run")
    assert cloud.mutating() == [] and cloud.ram.roles == {} and not cloud.sls.exists
    assert "would create" in statuses(lines) and "created" not in statuses(lines)
    assert any("RAM role ossdirect-process-role" in line for line in lines)
    no_secret(lines)


def test_a_changed_policy_gets_a_new_default_version(cloud: Cloud) -> None:
    assert cloud.run()[0] == 0
    text = cloud.env_file.read_text().replace("OSSDIRECT_DEPLOY_PREFIX=incoming/", "OSSDIRECT_DEPLOY_PREFIX=files/")
    cloud.env_file.write_text(text)
    rc, lines = cloud.run()
    assert rc == 0
    updated = [line for line in lines if line.startswith("updated")]
    assert any("ossdirect-signature-policy" in line for line in updated)
    assert any("lifecycle" in line for line in updated)
    versions = cloud.ram.policies["ossdirect-signature-policy"]
    assert len(versions["versions"]) == 2 and "up-bucket/files/*" in versions["versions"][versions["default"]]
    assert "CreatePolicy" not in cloud.ram.mutating_calls()[-3:]


def test_refused_create_role_prints_the_fix_and_exits_nonzero(tmp_path: Path) -> None:
    c = Cloud(tmp_path, {"CreateRole": (403, "NoPermission", "You are not authorized to do this action.")})
    try:
        rc, lines = c.run()
    finally:
        c.close()
    assert rc == 1
    no_secret(lines)
    failed = [line for line in lines if line.startswith("failed")]
    assert len(failed) == 4 and all("ram:CreateRole" in line and "403 NoPermission" in line for line in failed)
    assert "RAM role ossdirect-signature-role" in "\n".join(failed)
    # nothing is attached to a role that is not there; the other services still get set up
    assert c.ram.policies == {} and c.sls.exists and "upload_records" in c.ots.tables


def test_taken_sls_project_and_missing_settings_name_their_fix(tmp_path: Path) -> None:
    c = Cloud(tmp_path, {"CreateProject": (400, "ProjectAlreadyExist", "Project ossd-logs already exist")})
    try:
        rc, lines = c.run()
        assert rc == 1
        assert any(line.startswith("failed") and "choose another OSSDIRECT_DEPLOY_SLS_PROJECT" in line
                   for line in lines)
        assert c.sls.logstores == {}  # no Logstore is tried in a project that is not ours
        rc, lines = c.run(environ={"OSSDIRECT_SETUP_ACCOUNT_ID": ""})
        assert rc == 1
        assert lines == ["failed        settings: set OSSDIRECT_SETUP_ACCOUNT_ID in .env (see .env.example)"]
        rc, lines = c.run(environ={"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "wrong-secret"})
        assert rc == 1 and "wrong-secret" not in "\n".join(lines)
        assert any("SignatureDoesNotMatch" in line and "access key" in line for line in lines)
        rc, lines = c.run(environ={"OSSDIRECT_DEPLOY_BUCKET": "no-such-bucket"})
        assert rc == 1
        assert any(line.startswith("failed        OSS bucket no-such-bucket CORS") and "does not exist" in line
                   and "OSSDIRECT_DEPLOY_BUCKET" in line for line in lines), "\n".join(lines)
    finally:
        c.close()


def test_role_names_and_env_names_agree_with_s_yaml_and_env_example() -> None:
    text = (ROOT / "s.yaml").read_text()
    named = set(re.findall(r"ossdirect-[a-z-]+-role", text))
    assert named == {cloud_setup.CALLBACK_ROLE, cloud_setup.PROCESS_ROLE, cloud_setup.SIGNATURE_ROLE,
                     cloud_setup.TRIGGER_ROLE}
    example = cloud_setup.read_env_file(str(ROOT / ".env.example"))
    for name, default in cloud_setup.SETUP_DEFAULTS.items():
        assert example.get(name) == default, name
    for name in ("RAM", "SLS", "TABLESTORE", "OSS"):
        assert f"OSSDIRECT_SETUP_{name}_ENDPOINT" in example


def test_env_file_reads_as_serverless_devs_reads_it(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\n\nOSSDIRECT_DEPLOY_BUCKET='quoted bucket'\n"
                   "export OSSDIRECT_DEPLOY_PREFIX=up/  # trailing\n"
                   "OSSDIRECT_DEPLOY_USER_LIMITS=forms=20,window=3600\nnot a line\n")
    assert cloud_setup.read_env_file(str(env)) == {
        "OSSDIRECT_DEPLOY_BUCKET": "quoted bucket", "OSSDIRECT_DEPLOY_PREFIX": "up/",
        "OSSDIRECT_DEPLOY_USER_LIMITS": "forms=20,window=3600"}
    with pytest.raises(cloud_setup.StepFailed, match="OSSDIRECT_SETUP_TABLESTORE_CLUSTER_TYPE must be HYBRID or SSD"):
        cloud_setup.Plan.from_env({"OSSDIRECT_DEPLOY_BUCKET": "b", "OSSDIRECT_DEPLOY_SITE_ORIGIN": "https://s",
                                   "OSSDIRECT_DEPLOY_SLS_PROJECT": "p", "OSSDIRECT_SETUP_ACCOUNT_ID": "1",
                                   "OSSDIRECT_SETUP_TABLESTORE_CLUSTER_TYPE": "fast"})
