"""Loopback stand-ins for the control planes deploy/setup.py calls: RAM, SLS and the Tablestore instance API.

Written from the published protocols, not from the SDKs: each checks the request's signature itself
(RAM and Tablestore: ACS3-HMAC-SHA256 over the canonical request; SLS: the ``LOG <id>:<signature>`` v1
HMAC-SHA256 over verb, Content-MD5, Content-Type, Date, the sorted ``x-log-``/``x-acs-`` headers and the
resource), answers with the services' JSON shapes and error codes, and records every call as
``(action, method, path)`` in ``calls``. ``fail={"CreateRole": (403, "NoPermission", "...")}`` makes an
action answer that error instead. Real HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, quote, urlsplit

MUTATING = {"CreateRole", "UpdateRole", "CreatePolicy", "CreatePolicyVersion", "AttachPolicyToRole",
            "CreateProject", "CreateLogStore", "UpdateLogStore", "CreateIndex", "CreateInstance"}


class Answer(Exception):
    def __init__(self, status: int, body: Dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class StandIn:
    """One HTTP server; subclasses implement ``dispatch``."""

    def __init__(self, credentials: Mapping[str, Tuple[str, Optional[str]]],
                 fail: Optional[Mapping[str, Tuple[int, str, str]]] = None) -> None:
        self.credentials = dict(credentials)
        self.fail = dict(fail or {})
        self.calls: List[Tuple[str, str, str]] = []
        self.problems: List[str] = []
        self.lock = threading.RLock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = outer.handle(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                               body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-acs-request-id", str(uuid.uuid4()))
                self.send_header("x-log-requestid", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def mutating_calls(self) -> List[str]:
        return [action for action, _, _ in self.calls if action in MUTATING]

    def handle(self, method: str, raw_path: str, headers: Dict[str, str], body: bytes) -> Tuple[int, Dict[str, Any]]:
        try:
            action = self.authenticate(method, raw_path, headers, body)
            with self.lock:
                self.calls.append((action, method, urlsplit(raw_path).path))
                if action in self.fail:
                    status, code, message = self.fail[action]
                    raise Answer(status, self.error(code, message))
                return 200, self.dispatch(action, method, raw_path, headers, body)
        except Answer as answer:
            return answer.status, answer.body

    def error(self, code: str, message: str) -> Dict[str, Any]:
        return {"RequestId": str(uuid.uuid4()), "Code": code, "Message": message}

    def authenticate(self, method: str, raw_path: str, headers: Dict[str, str], body: bytes) -> str:
        raise NotImplementedError

    def dispatch(self, action: str, method: str, raw_path: str, headers: Dict[str, str], body: bytes) -> Dict[str, Any]:
        raise NotImplementedError

    def _secret(self, key_id: str, token: Optional[str]) -> str:
        if key_id not in self.credentials:
            self.problems.append(f"unknown key {key_id}")
            raise Answer(404, self.error("InvalidAccessKeyId.NotFound", "Specified access key is not found."))
        secret, want_token = self.credentials[key_id]
        if want_token and token != want_token:
            self.problems.append("wrong STS token")
            raise Answer(400, self.error("InvalidSecurityToken.Mismatch", "Specified SecurityToken is not valid."))
        return secret


def _rfc3986(text: str) -> str:
    return quote(text, safe="-_.~")


def acs3_signature(secret: str, method: str, raw_path: str, headers: Mapping[str, str], signed: List[str],
                   body: bytes) -> str:
    """ACS3-HMAC-SHA256 as the V3 request-signature document defines it."""
    parts = urlsplit(raw_path)
    query = sorted((_rfc3986(k), _rfc3986(v)) for k, v in parse_qsl(parts.query, keep_blank_values=True))
    canonical = "\n".join([
        method, parts.path or "/", "&".join(f"{k}={v}" for k, v in query),
        "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed), ";".join(signed),
        hashlib.sha256(body).hexdigest()])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


class Acs3StandIn(StandIn):
    version = ""

    def authenticate(self, method: str, raw_path: str, headers: Dict[str, str], body: bytes) -> str:
        auth = headers.get("authorization", "")
        if not auth.startswith("ACS3-HMAC-SHA256 "):
            self.problems.append("not ACS3")
            raise Answer(400, self.error("IncompleteSignature",
                                         "The request signature does not conform to Aliyun standards."))
        fields = dict(item.split("=", 1) for item in auth[len("ACS3-HMAC-SHA256 "):].split(","))
        signed = fields["SignedHeaders"].split(";")
        if not {"host", "x-acs-action", "x-acs-date", "x-acs-content-sha256", "x-acs-signature-nonce"} <= set(signed):
            self.problems.append(f"headers not signed: {signed}")
            raise Answer(400, self.error("IncompleteSignature", "Required headers are not signed."))
        if headers.get("x-acs-version") != self.version:
            raise Answer(400, self.error("InvalidVersion",
                                         f"Specified parameter Version is not valid: {headers.get('x-acs-version')}"))
        if headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
            self.problems.append("content hash")
            raise Answer(400, self.error("InvalidParameter", "x-acs-content-sha256 does not match the body."))
        secret = self._secret(fields["Credential"], headers.get("x-acs-security-token"))
        want = acs3_signature(secret, method, raw_path, headers, signed, body)
        if not hmac.compare_digest(fields["Signature"], want):
            self.problems.append("ACS3 signature mismatch")
            raise Answer(400, self.error("SignatureDoesNotMatch",
                                         "Specified signature is not matched with our calculation."))
        return headers.get("x-acs-action", "")


class RamStandIn(Acs3StandIn):
    """RAM (2015-05-01, RPC style): roles, custom policies with versions, attachments."""

    version = "2015-05-01"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.roles: Dict[str, Dict[str, Any]] = {}
        self.policies: Dict[str, Dict[str, Any]] = {}  # name -> {"versions": [doc...], "default": index}
        self.attached: Dict[str, List[str]] = {}

    def dispatch(self, action: str, method: str, raw_path: str, headers: Dict[str, str], body: bytes) -> Dict[str, Any]:
        p = dict(parse_qsl(urlsplit(raw_path).query, keep_blank_values=True))
        if body and "form-urlencoded" in headers.get("content-type", ""):
            p.update(parse_qsl(body.decode(), keep_blank_values=True))
        rid = {"RequestId": str(uuid.uuid4())}
        role, policy = p.get("RoleName", ""), p.get("PolicyName", "")

        def need_role() -> Dict[str, Any]:
            if role not in self.roles:
                raise Answer(404, self.error("EntityNotExist.Role", f"The role not exists: {role}."))
            return self.roles[role]

        def need_policy() -> Dict[str, Any]:
            if policy not in self.policies or p.get("PolicyType", "Custom") != "Custom":
                raise Answer(404, self.error("EntityNotExist.Policy", f"The policy not exists: {policy}."))
            return self.policies[policy]

        if action == "GetRole":
            return dict(rid, Role=dict(need_role()))
        if action == "CreateRole":
            if role in self.roles:
                raise Answer(409, self.error("EntityAlreadyExists.Role", f"The role already exists: {role}."))
            json.loads(p["AssumeRolePolicyDocument"])
            self.roles[role] = {"RoleName": role, "Arn": f"acs:ram::1234:role/{role}",
                                "AssumeRolePolicyDocument": p["AssumeRolePolicyDocument"],
                                "Description": p.get("Description", "")}
            return dict(rid, Role=dict(self.roles[role]))
        if action == "UpdateRole":
            need_role()["AssumeRolePolicyDocument"] = p["NewAssumeRolePolicyDocument"]
            return dict(rid, Role=dict(self.roles[role]))
        if action == "GetPolicy":
            found = need_policy()
            return dict(rid, Policy={"PolicyName": policy, "PolicyType": "Custom",
                                     "DefaultVersion": f"v{found['default'] + 1}"},
                        DefaultPolicyVersion={"VersionId": f"v{found['default'] + 1}", "IsDefaultVersion": True,
                                              "PolicyDocument": found["versions"][found["default"]]})
        if action == "CreatePolicy":
            if policy in self.policies:
                raise Answer(409, self.error("EntityAlreadyExists.Policy", f"The policy already exists: {policy}."))
            json.loads(p["PolicyDocument"])
            self.policies[policy] = {"versions": [p["PolicyDocument"]], "default": 0}
            return dict(rid, Policy={"PolicyName": policy, "PolicyType": "Custom", "DefaultVersion": "v1"})
        if action == "CreatePolicyVersion":
            found = need_policy()
            found["versions"].append(p["PolicyDocument"])
            if p.get("SetAsDefault", "").lower() == "true":  # the gateway reads booleans as Java does
                found["default"] = len(found["versions"]) - 1
            return dict(rid, PolicyVersion={"VersionId": f"v{len(found['versions'])}"})
        if action == "ListPoliciesForRole":
            need_role()
            return dict(rid, Policies={"Policy": [{"PolicyName": n, "PolicyType": "Custom"}
                                                  for n in self.attached.get(role, [])]})
        if action == "AttachPolicyToRole":
            need_role()
            need_policy()
            if policy in self.attached.get(role, []):
                raise Answer(409, self.error("EntityAlreadyExists.Role.Policy",
                                             "The policy has already been attached."))
            self.attached.setdefault(role, []).append(policy)
            return rid
        raise Answer(400, self.error("InvalidAction.NotFound", f"Specified api is not found: {action}"))


class TablestoreControlStandIn(Acs3StandIn):
    """The Tablestore instance API (2020-12-09, ROA style): GetInstance, CreateInstance."""

    version = "2020-12-09"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instances: Dict[str, Dict[str, Any]] = {}

    def dispatch(self, action: str, method: str, raw_path: str, headers: Dict[str, str], body: bytes) -> Dict[str, Any]:
        path = urlsplit(raw_path).path
        rid = {"RequestId": str(uuid.uuid4())}
        if action == "GetInstance" and method == "GET" and path == "/v2/openapi/getinstance":
            name = dict(parse_qsl(urlsplit(raw_path).query)).get("InstanceName", "")
            if name not in self.instances:
                raise Answer(404, self.error("OTSObjectNotExist", f"Instance {name} does not exist."))
            return dict(rid, **self.instances[name])
        if action == "CreateInstance" and method == "POST" and path == "/v2/openapi/createinstance":
            req = json.loads(body or b"{}")
            name = req.get("InstanceName", "")
            if name in self.instances:
                raise Answer(409, self.error("OTSObjectAlreadyExist", f"Instance {name} already exists."))
            if req.get("ClusterType") not in ("HYBRID", "SSD"):
                raise Answer(400, self.error("OTSParameterInvalid", "ClusterType must be HYBRID or SSD."))
            self.instances[name] = {"InstanceName": name, "StorageType": req["ClusterType"], "InstanceStatus": "normal"}
            return rid
        raise Answer(404, self.error("InvalidAction.NotFound", f"Specified api is not found: {method} {path}"))


class SlsStandIn(StandIn):
    """The SLS API (0.6.0) as served on one project's host (``<project>.<endpoint>``; here the loopback
    endpoint itself): GetProject, CreateProject, Get/Create/UpdateLogStore, Get/CreateIndex."""

    def __init__(self, project: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.exists = False
        self.logstores: Dict[str, Dict[str, Any]] = {}
        self.indexes: Dict[str, Dict[str, Any]] = {}

    def error(self, code: str, message: str) -> Dict[str, Any]:
        return {"errorCode": code, "errorMessage": message}

    def authenticate(self, method: str, raw_path: str, headers: Dict[str, str], body: bytes) -> str:
        auth = headers.get("authorization", "")
        if not auth.startswith("LOG ") or ":" not in auth:
            raise Answer(401, self.error("Unauthorized", "no LOG signature"))
        if headers.get("x-log-apiversion") != "0.6.0" or headers.get("x-log-signaturemethod") != "hmac-sha256":
            self.problems.append("api version / signature method")
            raise Answer(400, self.error("InvalidArgument", "x-log-apiversion / x-log-signaturemethod"))
        if body and headers.get("content-md5", "").upper() != hashlib.md5(body).hexdigest().upper():
            self.problems.append("content md5")
            raise Answer(400, self.error("InvalidContentMd5", "Content-MD5 does not match the body"))
        key_id, _, signature = auth[len("LOG "):].partition(":")
        secret = self._secret(key_id, headers.get("x-acs-security-token"))
        parts = urlsplit(raw_path)
        query = sorted(parse_qsl(parts.query, keep_blank_values=True))
        resource = parts.path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
        log_headers = "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers)
                              if k.startswith("x-log-") or k.startswith("x-acs-"))
        to_sign = "\n".join([method, headers.get("content-md5", ""), headers.get("content-type", ""),
                             headers.get("date", ""), log_headers + resource])
        want = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(signature, want):
            self.problems.append("SLS signature mismatch")
            raise Answer(401, self.error("SignatureNotMatch", "signature mismatch"))
        path = parts.path.rstrip("/") or "/"
        segments = path.strip("/").split("/") if path != "/" else []
        if not segments:
            return {"GET": "GetProject", "POST": "CreateProject"}.get(method, "?")
        if segments == ["logstores"] and method == "POST":
            return "CreateLogStore"
        if len(segments) == 2 and segments[0] == "logstores":
            return {"GET": "GetLogStore", "PUT": "UpdateLogStore"}.get(method, "?")
        if len(segments) == 3 and segments[0] == "logstores" and segments[2] == "index":
            return {"GET": "GetIndex", "POST": "CreateIndex"}.get(method, "?")
        return "?"

    def dispatch(self, action: str, method: str, raw_path: str, headers: Dict[str, str], body: bytes) -> Dict[str, Any]:
        req = json.loads(body) if body else {}
        segments = urlsplit(raw_path).path.strip("/").split("/")
        if action == "CreateProject":
            if req.get("projectName") != self.project:
                raise Answer(400, self.error("ParameterInvalid", "projectName does not match the host"))
            if self.exists:
                raise Answer(400, self.error("ProjectAlreadyExist", f"Project {self.project} already exist"))
            self.exists = True
            return {}
        if not self.exists:
            raise Answer(404, self.error("ProjectNotExist", f"Project {self.project} does not exist"))
        if action == "GetProject":
            return {"projectName": self.project, "status": "Normal", "region": "cn-hangzhou"}
        if action == "CreateLogStore":
            name = req["logstoreName"]
            if name in self.logstores:
                raise Answer(400, self.error("LogStoreAlreadyExist", f"logstore {name} already exist"))
            if not 1 <= int(req.get("ttl", 0)) <= 3650 or int(req.get("shardCount", 0)) < 1:
                raise Answer(400, self.error("ParameterInvalid", "ttl or shardCount out of range"))
            self.logstores[name] = {"logstoreName": name, "ttl": req["ttl"], "shardCount": req["shardCount"]}
            return {}
        name = segments[1]
        if name not in self.logstores:
            raise Answer(404, self.error("LogStoreNotExist", f"logstore {name} does not exist"))
        if action == "GetLogStore":
            return dict(self.logstores[name])
        if action == "UpdateLogStore":
            store = self.logstores[name]
            store.update(ttl=req["ttl"], shardCount=req.get("shardCount", store["shardCount"]))
            return {}
        if action == "GetIndex":
            if name not in self.indexes:
                raise Answer(404, self.error("IndexConfigNotExist", "index config doesn't exist"))
            return dict(self.indexes[name])
        if action == "CreateIndex":
            if name in self.indexes:
                raise Answer(400, self.error("IndexAlreadyExist", "log store index is already created"))
            if not req.get("line") and not req.get("keys"):
                raise Answer(400, self.error("ParameterInvalid", "index needs line or keys"))
            self.indexes[name] = req
            return {}
        raise Answer(404, self.error("NotFound", f"{method} {raw_path}"))
