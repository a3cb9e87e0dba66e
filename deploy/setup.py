"""One idempotent command for ossdirect's one-time cloud infrastructure (before `s deploy`).

    .venv/bin/python -m deploy.setup --env-file .env            # or: make setup
    .venv/bin/python -m deploy.setup --env-file .env --dry-run  # reads only; prints what it would do

From `.env` (the same names s.yaml reads, plus the ``OSSDIRECT_SETUP_*`` sizes and types below) it creates
or verifies, in this order, each step printing one line (``created``, ``already there``, ``updated``,
``skipped`` or ``failed`` with the sentence that fixes it):

1. the four RAM roles s.yaml names, each with its trust document (``deploy/trust-policy-fc.json``,
   ``deploy/oss-trigger-trust-policy.json``) and a custom policy per role from ``deploy/*-policy.json``
   (placeholders filled from `.env`), attached once; a policy whose document changed gets a new default
   version;
2. the SLS project, the function-log and record Logstores (TTL and shards from `.env`) and a full-text
   index on each (FC's ``logConfig`` and `s logs` need one);
3. with ``OSSDIRECT_DEPLOY_TABLESTORE_RECORDS``: the Tablestore instance (cluster type from `.env`) and
   the record table with its two indexes, exactly as ``tools/tablestore_setup.py`` makes it; with per-user
   limits in a ``tablestore://`` limits store, that instance, the limits table (``tools/limits_setup.py``)
   and its policy on the signature role;
4. the bucket: private ACL, one CORS rule for the site origin, the lifecycle rule aborting unfinished
   multipart uploads under the prefix (the rules ``tools/bucket_setup.py`` applies; it still publishes
   the page after `s deploy`).

A second run changes nothing. Exit status 0 when every step succeeded, 1 otherwise. Credentials come
from the environment (``ALIBABA_CLOUD_ACCESS_KEY_ID``/``_SECRET``/``_SECURITY_TOKEN``) or the default
credential chain, never from `.env` or arguments, and are never printed. Endpoints can be overridden
(``OSSDIRECT_SETUP_RAM_ENDPOINT``, ``…_SLS_ENDPOINT``, ``…_TABLESTORE_ENDPOINT``, ``…_OSS_ENDPOINT`` or the
matching flags): the tests point them at loopback stand-ins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
for _path in (str(ROOT), str(ROOT / "shared")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# Role names are fixed: s.yaml names them (tests/deploy/test_cloud_setup.py checks both agree).
SIGNATURE_ROLE = "ossdirect-signature-role"
CALLBACK_ROLE = "ossdirect-callback-role"
PROCESS_ROLE = "ossdirect-process-role"
TRIGGER_ROLE = "ossdirect-oss-trigger-role"
LIFECYCLE_RULE_ID = "ossdirect-abort-incomplete-multipart"  # = tools.bucket_setup.LIFECYCLE_RULE_ID

# Setup-only settings (never reach a function): name -> default.
SETUP_DEFAULTS = {
    "OSSDIRECT_SETUP_ACCOUNT_ID": "",            # your Alibaba Cloud account id (policy resources)
    "OSSDIRECT_SETUP_LOGSTORE_TTL_DAYS": "30",   # how long both Logstores keep entries
    "OSSDIRECT_SETUP_LOGSTORE_SHARDS": "2",      # shards per Logstore (auto-split on)
    "OSSDIRECT_SETUP_TABLESTORE_CLUSTER_TYPE": "HYBRID",  # HYBRID (capacity) or SSD (high performance)
    "OSSDIRECT_SETUP_ABORT_INCOMPLETE_DAYS": "7",  # lifecycle: abort unfinished multipart uploads
}

STATUSES = ("created", "already there", "updated", "skipped", "failed", "would create", "would update")


class StepFailed(Exception):
    """A step that could not be done: ``fix`` is the sentence that tells the person what to do."""

    def __init__(self, fix: str) -> None:
        super().__init__(fix)
        self.fix = fix


# ------------------------------------------------------------------------------------------- settings

def read_env_file(path: str) -> Dict[str, str]:
    """KEY=VALUE lines as Serverless Devs reads `.env`: the reader check-config --env-file uses too."""
    from ossdirect.settings import read_dotenv

    return read_dotenv(Path(path).read_text(encoding="utf-8"))


@dataclass
class Plan:
    """Everything setup reads from `.env` (exported variables win over the file, as with `s`)."""

    region: str
    account_id: str
    bucket: str
    prefix: str
    quarantine_prefix: str
    site_origin: str
    sls_project: str
    record_logstore: str
    function_logstore: str
    logstore_ttl_days: int
    logstore_shards: int
    tablestore_records: str
    cluster_type: str
    limits_store: str
    abort_days: int
    user_limits: str = ""
    endpoints: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str], overrides: Optional[Mapping[str, Optional[str]]] = None) -> "Plan":
        def get(name: str, default: str = "") -> str:
            return (env.get(name) or SETUP_DEFAULTS.get(name) or default).strip()

        def number(name: str) -> int:
            try:
                value = int(get(name))
            except ValueError:
                raise StepFailed(f"{name} must be a whole number, not {get(name)!r}") from None
            if value < 1:
                raise StepFailed(f"{name} must be at least 1")
            return value

        missing = [n for n in ("OSSDIRECT_DEPLOY_BUCKET", "OSSDIRECT_DEPLOY_SITE_ORIGIN",
                               "OSSDIRECT_DEPLOY_SLS_PROJECT",
                               "OSSDIRECT_SETUP_ACCOUNT_ID") if not get(n)]
        if missing:
            raise StepFailed(f"set {', '.join(missing)} in .env (see .env.example)")
        region = get("OSSDIRECT_DEPLOY_REGION", "cn-hangzhou")
        cluster = get("OSSDIRECT_SETUP_TABLESTORE_CLUSTER_TYPE").upper()
        if cluster not in ("HYBRID", "SSD"):
            raise StepFailed(f"OSSDIRECT_SETUP_TABLESTORE_CLUSTER_TYPE must be HYBRID or SSD, not {cluster!r}")
        sls_endpoint = get("OSSDIRECT_DEPLOY_SLS_ENDPOINT") or f"{region}.log.aliyuncs.com"
        endpoints = {
            "ram": get("OSSDIRECT_SETUP_RAM_ENDPOINT", "ram.aliyuncs.com"),
            "sls": get("OSSDIRECT_SETUP_SLS_ENDPOINT", sls_endpoint),
            "tablestore": get("OSSDIRECT_SETUP_TABLESTORE_ENDPOINT", f"tablestore.{region}.aliyuncs.com"),
            "oss": get("OSSDIRECT_SETUP_OSS_ENDPOINT", f"https://oss-{region}.aliyuncs.com"),
        }
        for name, value in (overrides or {}).items():
            if value:
                endpoints[name] = value
        return cls(region=region, account_id=get("OSSDIRECT_SETUP_ACCOUNT_ID"), bucket=get("OSSDIRECT_DEPLOY_BUCKET"),
                   prefix=get("OSSDIRECT_DEPLOY_PREFIX", "uploads/"),
                   quarantine_prefix=get("OSSDIRECT_DEPLOY_QUARANTINE_PREFIX", "quarantine/"),
                   site_origin=get("OSSDIRECT_DEPLOY_SITE_ORIGIN"), sls_project=get("OSSDIRECT_DEPLOY_SLS_PROJECT"),
                   record_logstore=get("OSSDIRECT_DEPLOY_RECORD_LOGSTORE", "upload-records"),
                   function_logstore=get("OSSDIRECT_DEPLOY_FUNCTION_LOGSTORE", "function-logs"),
                   logstore_ttl_days=number("OSSDIRECT_SETUP_LOGSTORE_TTL_DAYS"),
                   logstore_shards=number("OSSDIRECT_SETUP_LOGSTORE_SHARDS"),
                   tablestore_records=get("OSSDIRECT_DEPLOY_TABLESTORE_RECORDS"), cluster_type=cluster,
                   limits_store=get("OSSDIRECT_DEPLOY_LIMITS_STORE"),
                   abort_days=number("OSSDIRECT_SETUP_ABORT_INCOMPLETE_DAYS"),
                   user_limits=get("OSSDIRECT_DEPLOY_USER_LIMITS"), endpoints=endpoints)

    def limits_table(self) -> Optional[Tuple[str, str]]:
        """(instance, table) of the Tablestore limits table when per-user limits are counted there."""
        if not self.user_limits or not self.limits_store.startswith("tablestore://"):
            return None
        parts = urlsplit(self.limits_store)
        table = parts.path.strip("/")
        if not parts.netloc or not table:
            raise StepFailed("OSSDIRECT_DEPLOY_LIMITS_STORE must read tablestore://<instance>/<table>?endpoint=...")
        return parts.netloc, table

    def stored_quota(self) -> bool:
        """A ``stored=`` quota counted in Tablestore: all three functions write ``<limits-table>_held``."""
        if not self.limits_table():
            return False
        return any(item.partition("=")[0].strip().lower() == "stored" for item in self.user_limits.split(","))

    def tablestore(self) -> Optional[Tuple[str, str, str]]:
        """(instance, table, data endpoint) of the record table, or None without one."""
        if not self.tablestore_records:
            return None
        parts = urlsplit(self.tablestore_records)
        endpoint = (parse_qs(parts.query).get("endpoint") or [""])[0]
        table = parts.path.strip("/")
        if parts.scheme != "tablestore" or not parts.netloc or not table or not endpoint:
            raise StepFailed("OSSDIRECT_DEPLOY_TABLESTORE_RECORDS must read "
                             "tablestore://<instance>/<table>?endpoint=https://<instance>.<region>.ots.aliyuncs.com")
        return parts.netloc, table, endpoint

    def placeholders(self) -> Dict[str, str]:
        values = {"<region>": self.region, "<account-id>": self.account_id, "<bucket>": self.bucket,
                  "<prefix>": self.prefix, "<quarantine-prefix>": self.quarantine_prefix,
                  "<sls-project>": self.sls_project, "<record-logstore>": self.record_logstore,
                  "<function-logstore>": self.function_logstore}
        ts = self.tablestore()
        if ts:
            values.update({"<instance>": ts[0], "<table>": ts[1]})
        limits = self.limits_table()
        if limits:
            values.update({"<limits-instance>": limits[0], "<limits-table>": limits[1]})
        return values

    def roles(self) -> List[Tuple[str, str, List[str]]]:
        """(role, trust document file, policy document files) for each role."""
        ts = bool(self.tablestore())
        quota = ["tablestore-quota-policy.json"] if self.stored_quota() else []  # reserve / settle / release
        return [
            (CALLBACK_ROLE, "trust-policy-fc.json",
             ["callback-role-policy.json"] + (["tablestore-callback-policy.json"] if ts else []) + quota),
            (PROCESS_ROLE, "trust-policy-fc.json",
             ["process-role-policy.json"] + (["tablestore-process-policy.json"] if ts else []) + quota),
            (SIGNATURE_ROLE, "trust-policy-fc.json",
             ["signature-role-policy.json"] + (["tablestore-signature-records-policy.json"] if ts else [])
             + (["tablestore-signature-limits-policy.json"] if self.limits_table() else []) + quota),
            (TRIGGER_ROLE, "oss-trigger-trust-policy.json", ["oss-trigger-role-policy.json"]),
        ]


def render(file_name: str, values: Mapping[str, str]) -> str:
    """A deploy/*.json document with its placeholders filled, compact (RAM stores it as sent)."""
    text = (DEPLOY / file_name).read_text(encoding="utf-8")
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    if "<" in text:
        left = text[text.index("<"):].split(">", 1)[0] + ">"
        raise StepFailed(f"deploy/{file_name} has a placeholder setup cannot fill: {left}")
    return json.dumps(json.loads(text), separators=(",", ":"))


def policy_name(file_name: str) -> str:
    """``callback-role-policy.json`` -> ``ossdirect-callback-policy``; ``tablestore-callback-policy.json`` ->
    ``ossdirect-tablestore-callback-policy``."""
    return "ossdirect-" + file_name[:-len(".json")].replace("-role-policy", "-policy")


def same_document(a: Optional[str], b: str) -> bool:
    if not a:
        return False
    from urllib.parse import unquote

    for text in (a, unquote(a)):
        try:
            if json.loads(text) == json.loads(b):
                return True
        except ValueError:
            continue
    return False


# ------------------------------------------------------------------------------------------- output

class Report:
    """One printed line per step; secrets are masked in anything printed."""

    def __init__(self, secrets: List[str], out: Callable[[str], None] = print) -> None:
        self.secrets = [s for s in secrets if s]
        self.out = out
        self.lines: List[Tuple[str, str, str]] = []

    def line(self, status: str, what: str, detail: str = "") -> None:
        assert status in STATUSES, status
        text = f"{status:<13} {what}" + (f": {detail}" if detail else "")
        for secret in self.secrets:
            text = text.replace(secret, "***")
        self.lines.append((status, what, detail))
        self.out(text)

    @property
    def failed(self) -> bool:
        return any(status == "failed" for status, _, _ in self.lines)


def error_code(exc: BaseException) -> Tuple[Optional[int], str]:
    """(HTTP status, service error code) of an SDK exception (Tea, oss2, tablestore)."""
    status = getattr(exc, "statusCode", None) or getattr(exc, "status", None)
    code = getattr(exc, "code", None) or ""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        status = status or data.get("statusCode")
    if hasattr(exc, "get_error_code") and hasattr(exc, "get_http_status"):  # tablestore.OTSServiceError
        code, status = exc.get_error_code(), exc.get_http_status()
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    return status, str(code)


def denied(status: Optional[int], code: str) -> bool:
    return status in (401, 403) or code in ("NoPermission", "Unauthorized", "AccessDenied", "Forbidden",
                                            "OTSAuthFailed", "InvalidAccessKeyId.NotFound", "SignatureNotMatch")


def explain(exc: BaseException, action: str, permission: str, what: str) -> StepFailed:
    status, code = error_code(exc)
    head = f"{action} answered {status or 'no status'} {code or type(exc).__name__}"
    if code in ("InvalidAccessKeyId.NotFound", "InvalidAccessKeyId", "SignatureDoesNotMatch", "SignatureNotMatch"):
        return StepFailed(f"{head}: the access key in ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET is wrong or disabled; "
                          "export a valid key of the account that will run the functions")
    if denied(status, code):
        return StepFailed(f"{head}: the identity running setup may not {what}; grant it {permission}, "
                          "or run setup as an account administrator")
    if status is None:
        return StepFailed(f"{action} failed ({type(exc).__name__}): check the endpoint and the network "
                          f"({str(exc).splitlines()[0][:160] if str(exc) else ''})")
    return StepFailed(f"{head}: {what} failed; see the service's message above this line or retry")


# ------------------------------------------------------------------------------------------- clients

def _tea_config(credentials: Any, endpoint: str, region: str) -> Any:
    from alibabacloud_tea_openapi.models import Config

    parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
    return Config(access_key_id=credentials.access_key_id, access_key_secret=credentials.access_key_secret,
                  security_token=credentials.security_token or None, endpoint=parts.netloc,
                  protocol=parts.scheme, region_id=region, read_timeout=10000, connect_timeout=5000)


def _is_ip_literal(endpoint: str) -> bool:
    import ipaddress

    host = urlsplit(endpoint if "://" in endpoint else "http://" + endpoint).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def sls_client(credentials: Any, endpoint: str, region: str) -> Any:
    """The official SLS client. SLS addresses a project as the host ``<project>.<endpoint>``; an IP
    endpoint (a loopback stand-in) has no such names, so there the endpoint itself is the project's host."""
    from alibabacloud_sls20201230.client import Client

    client = Client(_tea_config(credentials, endpoint, region))
    if _is_ip_literal(endpoint):
        gateway = client._spi

        def get_host(network: str, project: str, endpoint: str) -> str:
            return endpoint

        gateway.get_host = get_host
    return client


# ------------------------------------------------------------------------------------------- steps

class Setup:
    def __init__(self, plan: Plan, credentials: Any, report: Report, dry_run: bool = False) -> None:
        self.plan, self.credentials, self.report, self.dry_run = plan, credentials, report, dry_run

    def run(self) -> int:
        for step in (self.roles, self.sls, self.tablestore, self.bucket):
            step()
        return 1 if self.report.failed else 0

    def _do(self, what: str, fn: Callable[[], str]) -> str:
        try:
            status = fn()
        except StepFailed as exc:
            self.report.line("failed", what, exc.fix)
            return "failed"
        self.report.line(status, what)
        return status

    # ---------------------------------------------------------------- RAM
    def roles(self) -> None:
        from alibabacloud_ram20150501 import models as m
        from alibabacloud_ram20150501.client import Client

        ram = Client(_tea_config(self.credentials, self.plan.endpoints["ram"], self.plan.region))
        values = self.plan.placeholders()
        for role, trust_file, policy_files in self.plan.roles():
            trust = render(trust_file, {})

            def ensure_role() -> str:
                try:
                    have = ram.get_role(m.GetRoleRequest(role_name=role)).body.role.assume_role_policy_document
                except Exception as exc:
                    status, code = error_code(exc)
                    if code != "EntityNotExist.Role":
                        raise explain(exc, "GetRole", "ram:GetRole", f"read role {role}") from None
                    if self.dry_run:
                        return "would create"
                    try:
                        ram.create_role(m.CreateRoleRequest(role_name=role, assume_role_policy_document=trust,
                                                            description="ossdirect (deploy/setup.py)"))
                    except Exception as exc2:
                        raise explain(exc2, "CreateRole", "ram:CreateRole (e.g. the AliyunRAMFullAccess policy)",
                                      f"create role {role}") from None
                    return "created"
                if same_document(have, trust):
                    return "already there"
                if self.dry_run:
                    return "would update"
                try:
                    ram.update_role(m.UpdateRoleRequest(role_name=role, new_assume_role_policy_document=trust))
                except Exception as exc:
                    raise explain(exc, "UpdateRole", "ram:UpdateRole", f"update the trust policy of {role}") from None
                return "updated"

            if self._do(f"RAM role {role} (trusts deploy/{trust_file})", ensure_role) == "failed":
                continue
            for policy_file in policy_files:
                name = policy_name(policy_file)
                try:
                    document = render(policy_file, values)
                except StepFailed as exc:
                    self.report.line("failed", f"RAM policy {name}", exc.fix)
                    continue
                if self._do(f"RAM policy {name} (deploy/{policy_file})",
                            lambda: self._ensure_policy(ram, m, name, document)) != "failed":
                    self._do(f"RAM policy {name} attached to {role}",
                             lambda: self._ensure_attached(ram, m, role, name))

    def _ensure_policy(self, ram: Any, m: Any, name: str, document: str) -> str:
        try:
            got = ram.get_policy(m.GetPolicyRequest(policy_name=name, policy_type="Custom")).body
        except Exception as exc:
            status, code = error_code(exc)
            if code != "EntityNotExist.Policy":
                raise explain(exc, "GetPolicy", "ram:GetPolicy", f"read policy {name}") from None
            if self.dry_run:
                return "would create"
            try:
                ram.create_policy(m.CreatePolicyRequest(policy_name=name, policy_document=document,
                                                        description="ossdirect (deploy/setup.py)"))
            except Exception as exc2:
                raise explain(exc2, "CreatePolicy", "ram:CreatePolicy", f"create policy {name}") from None
            return "created"
        have = got.default_policy_version.policy_document if got.default_policy_version else None
        if same_document(have, document):
            return "already there"
        if self.dry_run:
            return "would update"
        try:
            ram.create_policy_version(m.CreatePolicyVersionRequest(
                policy_name=name, policy_document=document, set_as_default=True,
                rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded"))
        except Exception as exc:
            raise explain(exc, "CreatePolicyVersion", "ram:CreatePolicyVersion", f"update policy {name}") from None
        return "updated"

    def _ensure_attached(self, ram: Any, m: Any, role: str, name: str) -> str:
        try:
            listed = ram.list_policies_for_role(m.ListPoliciesForRoleRequest(role_name=role)).body
        except Exception as exc:
            status, code = error_code(exc)
            if self.dry_run and code == "EntityNotExist.Role":
                return "would create"
            raise explain(exc, "ListPoliciesForRole", "ram:ListPoliciesForRole",
                          f"list the policies of {role}") from None
        policies = listed.policies.policy if listed.policies and listed.policies.policy else []
        if any(p.policy_name == name and p.policy_type == "Custom" for p in policies):
            return "already there"
        if self.dry_run:
            return "would create"
        try:
            ram.attach_policy_to_role(m.AttachPolicyToRoleRequest(policy_type="Custom", policy_name=name,
                                                                  role_name=role))
        except Exception as exc:
            status, code = error_code(exc)
            if code != "EntityAlreadyExists.Role.Policy":
                raise explain(exc, "AttachPolicyToRole", "ram:AttachPolicyToRole",
                              f"attach {name} to {role}") from None
            return "already there"
        return "created"

    # ---------------------------------------------------------------- SLS
    def sls(self) -> None:
        from alibabacloud_sls20201230 import models as m

        plan = self.plan
        sls = sls_client(self.credentials, plan.endpoints["sls"], plan.region)
        project = plan.sls_project
        project_missing = False

        def ensure_project() -> str:
            nonlocal project_missing
            try:
                sls.get_project(project, m.GetProjectRequest())
                return "already there"
            except Exception as exc:
                status, code = error_code(exc)
                if code != "ProjectNotExist":
                    raise explain(exc, "GetProject", "log:GetProject", f"read SLS project {project}") from None
            if self.dry_run:
                project_missing = True
                return "would create"
            try:
                sls.create_project(m.CreateProjectRequest(project_name=project,
                                                          description="ossdirect logs and records"))
            except Exception as exc:
                status, code = error_code(exc)
                if code == "ProjectAlreadyExist":
                    raise StepFailed(f"SLS project {project} belongs to another account (project names are unique "
                                     "per region): choose another OSSDIRECT_DEPLOY_SLS_PROJECT") from None
                raise explain(exc, "CreateProject", "log:CreateProject", f"create SLS project {project}") from None
            return "created"

        if self._do(f"SLS project {project} ({plan.region})", ensure_project) == "failed":
            return
        ttl, shards = plan.logstore_ttl_days, plan.logstore_shards
        for logstore in (plan.function_logstore, plan.record_logstore):
            def ensure_logstore() -> str:
                if project_missing:
                    return "would create"
                try:
                    have = sls.get_log_store(project, logstore).body
                except Exception as exc:
                    status, code = error_code(exc)
                    if code != "LogStoreNotExist":
                        raise explain(exc, "GetLogStore", "log:GetLogStore", f"read Logstore {logstore}") from None
                    if self.dry_run:
                        return "would create"
                    try:
                        sls.create_log_store(project, m.CreateLogStoreRequest(
                            logstore_name=logstore, ttl=ttl, shard_count=shards, auto_split=True, max_split_shard=64))
                    except Exception as exc2:
                        raise explain(exc2, "CreateLogStore", "log:CreateLogStore",
                                      f"create Logstore {logstore}") from None
                    return "created"
                if have.ttl == ttl:
                    return "already there"
                if self.dry_run:
                    return "would update"
                try:
                    sls.update_log_store(project, logstore, m.UpdateLogStoreRequest(
                        logstore_name=logstore, ttl=ttl, shard_count=have.shard_count))
                except Exception as exc:
                    raise explain(exc, "UpdateLogStore", "log:UpdateLogStore", f"update Logstore {logstore}") from None
                return "updated"

            def ensure_index() -> str:
                if project_missing:
                    return "would create"
                try:
                    sls.get_index(project, logstore)
                    return "already there"
                except Exception as exc:
                    status, code = error_code(exc)
                    if code == "LogStoreNotExist" and self.dry_run:
                        return "would create"
                    if code != "IndexConfigNotExist":
                        raise explain(exc, "GetIndex", "log:GetIndex", f"read the index of {logstore}") from None
                if self.dry_run:
                    return "would create"
                tokens = list(", '\";=()[]{}?@&<>/:\n\t\r")
                keys = None
                if logstore == plan.record_logstore:  # one field per record column, for queries and dashboards
                    from ossdirect.store import RECORD_FIELDS

                    numeric = {"size", "image_width", "image_height"}
                    keys = {f: m.IndexKey(type="long", doc_value=True) if f in numeric
                            else m.IndexKey(type="text", token=tokens, case_sensitive=False, doc_value=True)
                            for f in RECORD_FIELDS}
                index = m.Index(line=m.IndexLine(token=tokens, case_sensitive=False, chn=False), keys=keys)
                try:
                    sls.create_index(project, logstore, m.CreateIndexRequest(body=index))
                except Exception as exc:
                    raise explain(exc, "CreateIndex", "log:CreateIndex", f"index Logstore {logstore}") from None
                return "created"

            what = f"SLS Logstore {project}/{logstore} (ttl {ttl} d, {shards} shards)"
            if self._do(what, ensure_logstore) != "failed":
                self._do(f"SLS index on {project}/{logstore} (full text)", ensure_index)

    # ---------------------------------------------------------------- Tablestore
    def tablestore(self) -> None:
        try:
            found = self.plan.tablestore()
            limits = self.plan.limits_table()
        except StepFailed as exc:
            self.report.line("failed", "Tablestore settings", exc.fix)
            return
        if not found:
            self.report.line("skipped", "Tablestore record table",
                             "OSSDIRECT_DEPLOY_TABLESTORE_RECORDS is empty: the record Logstore is the store")
        from alibabacloud_tablestore20201209 import models as m
        from alibabacloud_tablestore20201209.client import Client

        ots = None
        missing: set = set()  # instances a dry run would create (nothing to read in them yet)
        ready: set = set()

        def instance_step(instance: str, setting: str) -> bool:
            nonlocal ots
            if instance in ready or instance in missing:
                return True
            if ots is None:
                ots = Client(_tea_config(self.credentials, self.plan.endpoints["tablestore"], self.plan.region))

            def ensure_instance() -> str:
                try:
                    ots.get_instance(m.GetInstanceRequest(instance_name=instance))
                    return "already there"
                except Exception as exc:
                    status, code = error_code(exc)
                    if status != 404 and "NotExist" not in code and "NotFound" not in code:
                        raise explain(exc, "GetInstance", "ots:GetInstance",
                                      f"read Tablestore instance {instance}") from None
                if self.dry_run:
                    missing.add(instance)
                    return "would create"
                try:
                    ots.create_instance(m.CreateInstanceRequest(instance_name=instance,
                                                                cluster_type=self.plan.cluster_type,
                                                                instance_description="ossdirect"))
                except Exception as exc:
                    status, code = error_code(exc)
                    if code in ("OTSObjectAlreadyExist", "InstanceAlreadyExist"):
                        raise StepFailed(f"Tablestore instance {instance} exists in another account or region "
                                         "(names are unique per region): choose another instance in "
                                         f"{setting}") from None
                    raise explain(exc, "CreateInstance", "ots:CreateInstance (e.g. AliyunOTSFullAccess)",
                                  f"create Tablestore instance {instance}") from None
                return "created"

            if self._do(f"Tablestore instance {instance} ({self.plan.cluster_type})", ensure_instance) == "failed":
                return False
            ready.add(instance)
            return True

        if found and instance_step(found[0], "OSSDIRECT_DEPLOY_TABLESTORE_RECORDS"):
            self._record_table(*found, instance_missing=found[0] in missing)
        if limits and instance_step(limits[0], "OSSDIRECT_DEPLOY_LIMITS_STORE"):
            self._limits_table(limits[1], instance_missing=limits[0] in missing)

    def _limits_table(self, table: str, instance_missing: bool) -> None:
        def ensure() -> str:
            if instance_missing:
                return "would create"
            from ossdirect.core.limits import load_limit_settings, open_limiter
            from tools.limits_setup import SetupRefused, setup_limits_table

            settings: Any = load_limit_settings({"OSSDIRECT_USER_LIMITS": self.plan.user_limits,
                                                 "OSSDIRECT_LIMITS_STORE": self.plan.limits_store})
            limiter: Any = open_limiter(settings)  # a TablestoreLimiter: this step runs for tablestore:// only
            ts = limiter.store.sdk
            exists = True
            # with stored=, also <table>_held (no TTL): a dry run must not create either
            for name in [table] + ([limiter.store.holdings_table] if settings.stored is not None else []):
                try:
                    limiter.client(self.credentials).describe_table(name)
                except ts.OTSServiceError as exc:
                    if exc.get_error_code() != "OTSObjectNotExist":
                        raise explain(exc, "DescribeTable", "ots:DescribeTable", f"read table {name}") from None
                    exists = False
            if not exists and self.dry_run:
                return "would create"
            try:  # an existing table is only described and checked (primary key, TTL)
                result = setup_limits_table(limiter, self.credentials)
            except SetupRefused as exc:
                raise StepFailed(f"{exc}; or name another table in OSSDIRECT_DEPLOY_LIMITS_STORE") from None
            except ts.OTSServiceError as exc:
                raise explain(exc, "CreateTable", "ots:CreateTable", f"create table {table}") from None
            return "created" if "created" in (result["table"], result.get("held")) else "already there"

        self._do(f"Tablestore limits table {table} (pk subject, window_start; TTL)", ensure)

    def _record_table(self, instance: str, table: str, data_endpoint: str, instance_missing: bool) -> None:
        def ensure_table() -> str:
            if instance_missing:
                return "would create"
            from ossdirect.store.tablestore import TablestoreStore
            from tools.tablestore_setup import index_metas, setup_table

            store = TablestoreStore.from_url(self.plan.tablestore_records)
            ts = store.sdk
            try:
                described = store.client(self.credentials).describe_table(table)
            except ts.OTSServiceError as exc:
                if exc.get_error_code() != "OTSObjectNotExist":
                    raise explain(exc, "DescribeTable", "ots:DescribeTable", f"read table {table}") from None
                described = None
            except Exception as exc:
                raise explain(exc, "DescribeTable", "ots:DescribeTable", f"read table {table}") from None
            if described is not None:
                pk = [tuple(c[:2]) for c in described.table_meta.schema_of_primary_key]
                if pk != [("upload_id", "STRING")]:
                    raise StepFailed(f"table {table} exists with primary key {pk}, not (upload_id STRING): "
                                     "name another table in OSSDIRECT_DEPLOY_TABLESTORE_RECORDS")
                have = {i.index_name for i in (described.secondary_indexes or [])}
                if all(meta.index_name in have for meta in index_metas(ts, table)):
                    return "already there"
                if self.dry_run:
                    return "would update"
            elif self.dry_run:
                return "would create"
            try:
                result = setup_table(store, self.credentials)
            except ts.OTSServiceError as exc:
                raise explain(exc, "CreateTable", "ots:CreateTable, ots:CreateIndex",
                              f"create table {table} (an instance created a moment ago may need a minute: "
                              "run setup again)") from None
            return "created" if result["table"] == "created" else "updated"

        self._do(f"Tablestore table {instance}/{table} (pk upload_id; indexes {table}_by_user, {table}_by_time)",
                 ensure_table)

    # ---------------------------------------------------------------- OSS bucket
    def bucket(self) -> None:
        import oss2

        plan = self.plan
        c = self.credentials
        auth = oss2.StsAuth(c.access_key_id, c.access_key_secret, c.security_token) if c.security_token \
            else oss2.Auth(c.access_key_id, c.access_key_secret)
        bucket = oss2.Bucket(auth, plan.endpoints["oss"], plan.bucket, connect_timeout=10)
        name = plan.bucket

        def fail(exc: BaseException, action: str, permission: str, what: str) -> StepFailed:
            status, code = error_code(exc)
            if code == "NoSuchBucket":
                return StepFailed(f"bucket {name} does not exist at {plan.endpoints['oss']}: create it (private) "
                                  f"in region {plan.region}, or fix OSSDIRECT_DEPLOY_BUCKET / OSSDIRECT_DEPLOY_REGION")
            return explain(exc, action, permission, what)

        def ensure_acl() -> str:
            try:
                acl = bucket.get_bucket_acl().acl
            except oss2.exceptions.OssError as exc:
                if exc.status == 501:
                    raise _Skip("this endpoint does not implement GetBucketAcl; check the ACL is private "
                                "in the console") from None
                raise fail(exc, "GetBucketAcl", "oss:GetBucketAcl", f"read the ACL of {name}") from None
            if acl == oss2.BUCKET_ACL_PRIVATE:
                return "already there"
            if self.dry_run:
                return "would update"
            try:
                bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
            except oss2.exceptions.OssError as exc:
                raise fail(exc, "PutBucketAcl", "oss:PutBucketAcl", f"make {name} private") from None
            return "updated"

        rule = oss2.models.CorsRule(allowed_origins=[plan.site_origin], allowed_methods=["POST", "PUT", "GET", "HEAD"],
                                    allowed_headers=["*"], expose_headers=["ETag", "x-oss-request-id", "x-oss-hash-crc64ecma"],
                                    max_age_seconds=600)  # = tools/bucket_setup.py's rule

        def ensure_cors() -> str:
            try:
                rules = bucket.get_bucket_cors().rules
            except oss2.exceptions.NoSuchCors:
                rules = []
            except oss2.exceptions.OssError as exc:
                raise fail(exc, "GetBucketCors", "oss:GetBucketCors", f"read the CORS rules of {name}") from None

            def key(r: Any) -> Tuple[Any, ...]:
                return (sorted(r.allowed_origins), sorted(m.upper() for m in r.allowed_methods),
                        sorted(r.allowed_headers), sorted(r.expose_headers), r.max_age_seconds)

            if [key(r) for r in rules] == [key(rule)]:
                return "already there"
            if self.dry_run:
                return "would update" if rules else "would create"
            try:
                bucket.put_bucket_cors(oss2.models.BucketCors([rule]))
            except oss2.exceptions.OssError as exc:
                raise fail(exc, "PutBucketCors", "oss:PutBucketCors", f"set the CORS rules of {name}") from None
            return "updated" if rules else "created"

        def ensure_lifecycle() -> str:
            try:
                rules = bucket.get_bucket_lifecycle().rules
            except oss2.exceptions.NoSuchLifecycle:
                rules = []
            except oss2.exceptions.OssError as exc:
                raise fail(exc, "GetBucketLifecycle", "oss:GetBucketLifecycle",
                           f"read the lifecycle of {name}") from None
            ours = [r for r in rules if r.id == LIFECYCLE_RULE_ID]
            if ours and ours[0].prefix == plan.prefix and ours[0].abort_multipart_upload \
                    and ours[0].abort_multipart_upload.days == plan.abort_days and ours[0].status == "Enabled":
                return "already there"
            if self.dry_run:
                return "would update" if ours else "would create"
            from tools.bucket_setup import abort_incomplete_multipart

            try:
                abort_incomplete_multipart(bucket, plan.prefix, plan.abort_days)
            except oss2.exceptions.OssError as exc:
                raise fail(exc, "PutBucketLifecycle", "oss:PutBucketLifecycle",
                           f"set the lifecycle of {name}") from None
            return "updated" if ours else "created"

        for what, fn in ((f"OSS bucket {name} ACL private", ensure_acl),
                         (f"OSS bucket {name} CORS for {plan.site_origin}", ensure_cors),
                         (f"OSS bucket {name} lifecycle: abort multipart under {plan.prefix} after "
                          f"{plan.abort_days} d", ensure_lifecycle)):
            try:
                self._do(what, fn)
            except _Skip as skip:
                self.report.line("skipped", what, str(skip))


class _Skip(Exception):
    pass


# ------------------------------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None,
         out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.setup",
                                     description="Create or verify ossdirect's cloud infrastructure (idempotent).")
    parser.add_argument("--env-file", default=str(ROOT / ".env"), help="the .env s.yaml reads (default: ./.env)")
    parser.add_argument("--dry-run", action="store_true", help="read only: print what would be created or updated")
    for api in ("ram", "sls", "tablestore", "oss"):
        parser.add_argument(f"--{api}-endpoint", help=f"override the {api.upper()} endpoint "
                                                      f"(also OSSDIRECT_SETUP_{api.upper()}_ENDPOINT)")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    env: Dict[str, str] = {}
    if os.path.exists(args.env_file):
        env.update(read_env_file(args.env_file))
    elif args.env_file != str(ROOT / ".env"):
        out(f"failed        settings: {args.env_file} does not exist (cp .env.example .env, then edit it)")
        return 1
    env.update({k: v for k, v in environ.items() if k.startswith("OSSDIRECT_")})  # exported wins, as with `s`
    try:
        plan = Plan.from_env(env, {"ram": args.ram_endpoint, "sls": args.sls_endpoint,
                                   "tablestore": args.tablestore_endpoint, "oss": args.oss_endpoint})
    except StepFailed as exc:
        out(f"failed        settings: {exc.fix}")
        return 1
    from ossdirect.oss.credentials import CredentialsUnavailable, resolve_credentials

    try:
        credentials = resolve_credentials(None, environ)
    except CredentialsUnavailable:
        out("failed        credentials: export ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
            "(an administrator's key; never put them in .env)")
        return 1
    report = Report([credentials.access_key_secret, credentials.security_token or ""], out)
    if args.dry_run:
        out("dry run: reading only, nothing is created or changed")
    return Setup(plan, credentials, report, dry_run=args.dry_run).run()


if __name__ == "__main__":
    sys.exit(main())
