"""``ossdirect doctor``: one real upload through a deployment, every hop checked and explained.

    ossdirect doctor SIGNATURE_URL [--token T] [--origin https://site] [--json] [--wait SECONDS]

Hops (one line each: ok / FAILED + the cause and the fix; ``skip`` and ``note`` never fail the run):

    1 reachable, cors-get, cors-preflight, limits   the signature function and its CORS for --origin
    2 form          a signed form for a tiny doctor-*.txt (or .png) test file
    3 oss           the POST to OSS (its error codes mapped to causes); oss-cors: the bucket's CORS
    4 callback      OSS reached the callback (JSON answer) or answered 203 CallbackFailed (its reason)
    5 record        the answer carries the record; GET <sig>/records/<upload_id> reads it back
    6 trigger       the OSS trigger's process function checked the content (content_type_detected)
    7 state         quarantine and hook state as the record says
    M multipart     when /limits publishes multipart_threshold: create, 2 parts, complete, record
    8 cleanup       DELETE <sig>/files/<upload_id> (signed-in owners) if the service has it; else the
                    test objects stay (the browser's rights cannot delete them): their keys are named

Only the browser's rights are used (the signature function's routes and the forms it signs); no
credentials are read or invented. Every text from the servers goes through ``cli.safe_text``.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

from ..store import HookStatus, Status

OK, FAILED, SKIP, NOTE = "ok", "FAILED", "skip", "note"
BUCKET_SETUP_FIX = ("run make setup with OSSDIRECT_DEPLOY_SITE_ORIGIN set to the site's origin in .env "
                    "(docs/deploy.md) so the bucket has a CORS rule for it")
RECORDS_FIX = ("set OSSDIRECT_RECORDS=tablestore://<instance>/<table>?endpoint=... on the signature and callback "
               "functions (docs/deploy.md, Tablestore records)")
_HOST_REGION = re.compile(r"(?:^|\.)oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$")
_FC_SYSTEM_URL = re.compile(r"\.fcapp\.run$")


class Hop(dict):
    """One checked hop: ``{"hop", "status", "message"}`` (a dict, so ``--json`` prints it as is)."""

    def __init__(self, hop: str, status: str, message: str = "") -> None:
        super().__init__(hop=hop, status=status, message=message)


def _tiny_png() -> bytes:
    """A valid 1x1 PNG (67 bytes), for deployments that admit no text/plain."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00")
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def _admits(patterns: list[str], content_type: str) -> bool:
    major = content_type.split("/")[0] + "/*"
    return any(p in (content_type, major, "*", "*/*") for p in patterns)


def _oss_error(text: str) -> tuple[str, str]:
    def pick(tag: str) -> str:
        m = re.search(rf"<{tag}>(.*?)</{tag}>", text or "", re.S)
        return m.group(1).strip() if m else ""

    return pick("Code"), pick("Message")


def _api_error(response: Any) -> tuple[str, str]:
    """The signature function's ``{code, message}`` (or the start of whatever else it answered)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("code") or body.get("message")):
        return str(body.get("code") or ""), str(body.get("message") or "")
    return "", (response.text or "")[:200]


def callback_conf_of(fields: dict[str, str]) -> dict[str, Any]:
    """The form's ``callback`` field decoded (base64 JSON); {} without one."""
    raw = fields.get("callback") or ""
    try:
        conf = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return conf if isinstance(conf, dict) else {}


def callback_url_of(fields: dict[str, str]) -> str:
    """The (first) callbackUrl inside a form's ``callback`` field; '' without one."""
    url = callback_conf_of(fields).get("callbackUrl", "")
    return url.split(";")[0].strip() if isinstance(url, str) else ""


def name_matches(host: str, names: list[str]) -> bool:
    """Whether a certificate's DNS names cover ``host`` (one left-most ``*.`` label, as browsers do)."""
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host or (name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]):
            return True
    return False


def probe_without_sni(host: str, port: int = 443, timeout: float = 10.0,
                      cafile: str | None = None) -> tuple[bool, str]:
    """Connect as OSS's callback client does by default (TLS without SNI) and say whether the
    certificate the server then presents is valid for ``host``."""
    import socket
    import ssl

    context = ssl.create_default_context(cafile=cafile)  # cafile: a private CA (tests)
    context.check_hostname = False  # no name sent, so the name is checked here, by hand
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=None) as tls:
                cert: dict[str, Any] = dict(tls.getpeercert() or {})
    except ssl.SSLError as exc:
        return False, f"the TLS handshake without SNI fails ({exc.reason or exc.__class__.__name__})"
    except OSError as exc:
        return False, f"{host}:{port} cannot be reached ({exc.__class__.__name__})"
    names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    if name_matches(host, names):
        return True, f"without SNI {host} presents a certificate valid for it"
    return False, f"without SNI {host} presents a certificate for {', '.join(names[:3]) or 'another name'}"


def scheme_note(callback_url: str, sni: bool = False) -> str:
    """What doctor says about the callback URL's scheme (docs/doctor.md, "Callback URL scheme")."""
    parts = urlsplit(callback_url)
    host = parts.hostname or ""
    if parts.scheme == "http":
        return f"callback over http ({host})"
    if sni:
        return f"callback over https to {host}, callbackSNI true"
    where = "Function Compute's system domain" if _FC_SYSTEM_URL.search(host) else host
    return (f"callback over https to {where} without callbackSNI: OSS's callback client then sends no SNI, so a "
            "host whose certificate is chosen by SNI fails with 203")


class Doctor:
    """Runs the hops; ``run()`` returns the hops (dicts) in order."""

    def __init__(self, signature_url: str, token: str | None = None, origin: str | None = None,
                 wait: float = 20.0, timeout: float = 30.0, multipart: bool = True,
                 session: Any = None, probe_tls: bool = True) -> None:
        import requests

        self.base = signature_url if signature_url.endswith("/") else signature_url + "/"
        self.token, self.origin, self.wait, self.timeout = token, origin, wait, timeout
        self.try_multipart, self.probe_tls = multipart, probe_tls
        self.http = session or requests.Session()
        self.network_errors = (requests.RequestException,)
        self.hops: list[Hop] = []
        self.answer_record: str | None = None
        self.objects: list[tuple[str, str, int]] = []  # (upload_id, key, size) to clean up
        self.key = self.upload_id = None
        self.content_type, self.body, self.filename = "text/plain", b"", ""

    # --- plumbing --------------------------------------------------------------------------------
    def add(self, hop: str, status: str, message: str = "") -> bool:
        self.hops.append(Hop(hop, status, message))
        return status != FAILED

    def headers(self, origin: bool = True) -> dict[str, str]:
        out = {}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        if origin and self.origin and self.cors_ok:
            out["Origin"] = self.origin
        return out

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        return self.http.request(method, url, **kwargs)

    # --- the hops --------------------------------------------------------------------------------
    def run(self) -> list[Hop]:
        self.cors_ok = True  # a CORS failure is reported; later hops go on without the Origin header
        limits = self.check_signature_function()
        if limits is None:
            return self.hops
        form = self.issue_form(limits)
        if form is None:
            return self.hops
        answer = self.post_form(form)
        if answer is None:
            return self.hops
        record = self.check_callback_and_record(form, answer)
        self.check_trigger_and_state(record)
        self.objects.append((str(self.upload_id), str(self.key), len(self.body)))
        if self.try_multipart:
            self.check_multipart(limits)
        self.cleanup()
        return self.hops

    def cleanup(self) -> None:
        """Delete the test objects through ``DELETE <sig>/files/<upload_id>`` (the signed-in owner's
        route) when the service has it; else say where each stays. Never with credentials of its own."""
        for upload_id, key, size in self.objects:
            try:
                response = self.call("DELETE", f"{self.base}files/{upload_id}", headers=self.headers())
                code, message = ("", "") if response.status_code == 200 else _api_error(response)
            except self.network_errors as exc:
                response, code, message = None, exc.__class__.__name__, "the delete request failed"
            if response is not None and response.status_code == 200:
                self.add("8 cleanup", OK, f"deleted the test object {key} (DELETE /files/{upload_id})")
                continue
            why = (f"DELETE /files/<upload_id> answered {response.status_code if response is not None else '-'} "
                   f"{code}" + (f": {message}" if message else ""))
            self.add("8 cleanup", NOTE, f"the test object stays at {key} ({size} bytes; {why}); doctor uses only "
                     "the browser's rights, so delete it with ossutil or the console (with sign-in on, --token "
                     "lets doctor delete its own objects)")

    def check_signature_function(self) -> dict[str, Any] | None:
        url = self.base + "limits"
        try:
            response = self.call("GET", url, headers=self.headers(origin=False))
        except self.network_errors as exc:
            self.add("1 reachable", FAILED, f"{url} cannot be reached ({exc.__class__.__name__}): check the URL "
                     "(the signature function's HTTP trigger URL, s deploy prints it) and that it is deployed")
            return None
        self.add("1 reachable", OK, f"{self.base} answered {response.status_code}")
        if response.status_code == 200:
            self.check_cors(url)
        else:  # a broken function fails its CORS too: name the cause, not the symptom
            self.add("1 cors-get", SKIP, "the function does not work yet (see 1 limits): CORS is checked once it does")
            self.cors_ok = False
            code, message = _api_error(response)
            fix = {"ConfigInvalid": "fix that setting in the function's environment (ossdirect check-config "
                                    "validates it locally)",
                   }.get(code, "check the function's logs")
            self.add("1 limits", FAILED, f"GET /limits answered {response.status_code} {code}: {message} — {fix}")
            return None
        try:
            limits = response.json()
        except ValueError:
            limits = None
        if not isinstance(limits, dict):
            self.add("1 limits", FAILED, "GET /limits is not JSON: the URL is not an ossdirect signature function "
                     "(or a proxy answers in its place)")
            return None
        self.add("1 limits", OK, f"max {limits.get('max_bytes')} bytes, auth {limits.get('auth')}, multipart "
                 f"threshold {limits.get('multipart_threshold')}")
        return limits

    def check_cors(self, url: str) -> None:
        if not self.origin:
            self.add("1 cors-get", SKIP, "no --origin given: the site's CORS is not checked (pass --origin "
                     "https://your-site)")
            return
        fix = f"add {self.origin} to OSSDIRECT_ALLOWED_ORIGINS of the signature function"
        try:
            got = self.call("GET", url, headers=dict(self.headers(origin=False), Origin=self.origin))
            pre = self.call("OPTIONS", self.base, headers={
                "Origin": self.origin, "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization"})
        except self.network_errors as exc:
            self.cors_ok = False
            self.add("1 cors-get", FAILED, f"the CORS request failed ({exc.__class__.__name__})")
            return
        for hop, response in (("1 cors-get", got), ("1 cors-preflight", pre)):
            allow = response.headers.get("Access-Control-Allow-Origin")
            if allow in (self.origin, "*") and response.status_code < 300:
                self.add(hop, OK, f"{self.origin} allowed")
            else:
                self.cors_ok = False
                code, message = _api_error(response)
                self.add(hop, FAILED, f"a browser on {self.origin} is refused (answer {response.status_code} "
                         f"{code}, Access-Control-Allow-Origin {allow or 'missing'}): {fix}")

    def pick_file(self, limits: dict[str, Any]) -> bool:
        types = [str(t).lower() for t in limits.get("content_types") or ["text/plain"]]
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        if _admits(types, "text/plain"):
            self.content_type, ext = "text/plain", "txt"
            self.body = f"ossdirect doctor test object {stamp}\n".encode()
        elif _admits(types, "image/png"):
            self.content_type, ext, self.body = "image/png", "png", _tiny_png()
        else:
            return False
        self.filename = f"doctor-{stamp}.{ext}"
        return True

    def issue_form(self, limits: dict[str, Any]) -> dict[str, Any] | None:
        if not self.pick_file(limits):
            self.add("2 form", FAILED, f"the service admits only {limits.get('content_types')}: doctor sends "
                     "text/plain or image/png; admit one of them in OSSDIRECT_CONTENT_TYPES to run it")
            return None
        params = {"filename": self.filename, "size": str(len(self.body)), "content_type": self.content_type}
        if "original" in (limits.get("naming") or []):
            params["naming"] = "original"  # so the key itself says doctor-
        try:
            response = self.call("GET", self.base, params=params, headers=self.headers())
        except self.network_errors as exc:
            self.add("2 form", FAILED, f"the form request failed ({exc.__class__.__name__}): try again")
            return None
        if response.status_code != 200:
            code, message = _api_error(response)
            if response.status_code == 401:
                fix = ("a sign-in token is needed: pass --token TOKEN (or set OSSDIRECT_TOKEN)" if not self.token
                       else "the token was refused: get a new one")
            elif code == "ConfigInvalid":
                fix = "fix that setting in the function's environment (ossdirect check-config validates it)"
            elif response.status_code == 403 and code == "OriginNotAllowed":
                fix = f"add {self.origin} to OSSDIRECT_ALLOWED_ORIGINS"
            else:
                fix = "see the function's logs"
            self.add("2 form", FAILED, f"the signature function refused the form: {response.status_code} {code}: "
                     f"{message} — {fix}")
            return None
        try:
            form = response.json()
        except ValueError:
            form = None
        if not isinstance(form, dict) or not form.get("url"):
            self.add("2 form", FAILED, "the form answer is not an ossdirect form (no url): check the URL")
            return None
        fields = dict(form.get("field_list") or form.get("fields") or {})
        self.key, self.upload_id = fields.get("key") or form.get("key"), form.get("upload_id")
        self.add("2 form", OK, f"key {self.key}, upload id {self.upload_id}, signature {form.get('version')}")
        return form

    def post_form(self, form: dict[str, Any]) -> Any:
        pairs = [(str(k), str(v)) for k, v in (form.get("field_list") or list((form.get("fields") or {}).items()))]
        fields = dict(pairs)
        url = form["url"]
        self.check_upload_cors(url)
        try:
            # as a browser on --origin would send it; without the Origin once a CORS hop failed, so
            # the hops after it are still checked
            origin = {"Origin": self.origin} if self.origin and self.cors_ok else {}
            response = self.call("POST", url, data=pairs, files={"file": (self.filename, self.body, self.content_type)},
                                 headers=origin)
        except self.network_errors as exc:
            self.add("3 oss", FAILED, f"the upload host {url} cannot be reached ({exc.__class__.__name__}): check "
                     "OSSDIRECT_UPLOAD_HOST (or the bucket and region)")
            return None
        if response.status_code in (200, 203) or (response.status_code in (201, 204) and not fields.get("callback")):
            self.add("3 oss", OK, f"OSS stored {self.key} ({len(self.body)} bytes)")
            return response
        code, message = _oss_error(response.text)
        self.add("3 oss", FAILED, f"OSS refused the upload: {response.status_code} {code or '(no code)'}: {message} "
                 f"— {self.oss_fix(code, message, fields, url)}")
        return None

    @staticmethod
    def oss_fix(code: str, message: str, fields: dict[str, str], url: str) -> str:
        credential = fields.get("x-oss-credential") or ""
        scope = credential.split("/")
        signed_region = scope[2] if len(scope) >= 3 else ""
        m = _HOST_REGION.search(urlsplit(url).hostname or "")
        host_region = m.group(1) if m else ""
        expected = re.search(r"expected ([a-z0-9-]+)", message or "")
        bucket_region = host_region or (expected.group(1) if expected else "")
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId") or (code == "InvalidArgument" and "region" in message):
            if signed_region and bucket_region and signed_region != bucket_region:
                return (f"wrong region: the form is signed for {signed_region} (x-oss-credential) but the bucket is "
                        f"in {bucket_region}; set OSSDIRECT_REGION={bucket_region} on the signature function")
            return ("wrong credentials or region: check the signature function's role (its STS credentials) and "
                    "that OSSDIRECT_REGION and OSSDIRECT_BUCKET name the bucket's region and name")
        if code == "RequestTimeTooSkewed":
            return "the signing clock is off by more than 15 minutes: fix the function's (or the local) clock"
        if "expired" in (message or "").lower():
            return ("the form had expired when OSS got it: the signing clock (the function's) and OSS's clock "
                    "differ, or OSSDIRECT_EXPIRES_SECONDS is too short for the upload")
        if code == "AccessDenied" and "policy" in (message or "").lower():
            return ("the form's own policy refused the fields sent (OSS's message names the condition): a proxy "
                    "altered the form, or the signature function signs a policy its fields do not meet")
        if code == "AccessDenied":
            return ("the signature function's role lacks oss:PutObject on the bucket's upload prefix (its RAM "
                    "policy, or a bucket policy denying it): grant it")
        if code == "NoSuchBucket":
            return "the bucket does not exist at this host: check OSSDIRECT_BUCKET and OSSDIRECT_REGION"
        if code == "FileAlreadyExists":
            return "the key exists already (forbid-overwrite): run doctor again (it uses a new name each time)"
        return "see OSS's message; docs/doctor.md lists the usual causes"

    def check_upload_cors(self, url: str) -> None:
        if not self.origin:
            self.add("3 oss-cors", SKIP, "no --origin given: the bucket's CORS is not checked")
            return
        try:
            pre = self.call("OPTIONS", url, headers={"Origin": self.origin, "Access-Control-Request-Method": "POST"})
        except self.network_errors as exc:
            self.add("3 oss-cors", FAILED, f"the preflight to {url} failed ({exc.__class__.__name__})")
            return
        allow = pre.headers.get("Access-Control-Allow-Origin")
        if pre.status_code < 300 and allow in (self.origin, "*"):
            self.add("3 oss-cors", OK, f"the bucket allows POST from {self.origin}")
        else:
            self.cors_ok = False
            self.add("3 oss-cors", FAILED, f"the bucket has no CORS rule for POST from {self.origin} (preflight "
                     f"answered {pre.status_code}): {BUCKET_SETUP_FIX}")

    def check_callback_and_record(self, form: dict[str, Any], response: Any) -> dict[str, Any] | None:
        fields = dict((str(k), str(v)) for k, v in (form.get("field_list") or list((form.get("fields") or {}).items())))
        cb_url = callback_url_of(fields)
        sni = callback_conf_of(fields).get("callbackSNI") is True
        if cb_url.startswith("https://") and not sni and self.probe_tls:
            parts = urlsplit(cb_url)
            good, detail = probe_without_sni(parts.hostname or "", parts.port or 443, self.timeout)
            self.add("4 callback-tls", OK if good else FAILED, detail + ("" if good else (
                ": OSS's callback (no SNI by default) will fail with 203; point OSSDIRECT_CALLBACK_URL at the "
                "callback function's http:// trigger URL, or give that host a certificate served without SNI")))
        if not cb_url:
            self.add("4 callback", FAILED, "the form carries no callback: uploads are stored but never recorded by "
                     "the callback; set OSSDIRECT_CALLBACK_URL on the signature function")
        elif response.status_code == 203:
            code, message = _oss_error(response.text)
            status = re.search(r"status\s*:\s*(\d{3})", message)
            if status:  # OSS reached it; the function answered an error
                why = (f"the callback function answered {status.group(1)}" + (
                    " (503 is ConfigInvalid: ossdirect check-config --function callback names the setting, e.g. "
                    "SQLite records on Function Compute need tablestore://)" if status.group(1) == "503" else "")
                    + ": see its logs")
            else:
                why = (f"check that {cb_url} is reachable from the internet (OSS calls it; no private address, "
                       "firewall or sign-in in front of it) and see the callback function's logs")
            self.add("4 callback", FAILED, f"OSS stored the file but could not get the callback's answer (203 "
                     f"{code}: {message}); {scheme_note(cb_url, sni)} ({cb_url}) — {why}")
        else:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("ok"):
                self.add("4 callback", OK, f"the callback answered ok; {scheme_note(cb_url, sni)}")
                if not answer.get("record_id") or answer.get("upload_id") != self.upload_id:
                    self.add("5 record", FAILED, f"the callback's answer carries no record of upload "
                             f"{self.upload_id} (record_id {answer.get('record_id')}, upload_id "
                             f"{answer.get('upload_id')}): see the callback function's logs")
                    return None
                self.answer_record = answer["record_id"]
            else:
                self.add("4 callback", FAILED, f"the callback answered without ok: "
                         f"{(response.text or '')[:200]} — see the callback function's logs")
        return self.read_record()

    def get_record(self, upload_id: str | None = None) -> tuple[int, str, str, dict[str, Any] | None]:
        url = self.base + "records/" + str(upload_id or self.upload_id)
        try:
            response = self.call("GET", url, headers=self.headers())
        except self.network_errors as exc:
            return 0, "", exc.__class__.__name__, None
        if response.status_code != 200:
            code, message = _api_error(response)
            return response.status_code, code, message, None
        try:
            return 200, "", "", response.json()
        except ValueError:
            return 200, "", "not JSON", None

    def read_record(self) -> dict[str, Any] | None:
        deadline = time.monotonic() + min(self.wait, 5.0)
        while True:  # the callback recorded before OSS answered; a little slack for the event path
            status, code, message, record = self.get_record()
            if status != 404 or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        if record is not None:
            via = (f"the callback recorded it (record {self.answer_record})" if self.answer_record
                   else f"recorded by the {record.get('source')} path, not the callback")
            self.add("5 record", OK, f"{via}; GET /records/{self.upload_id} reads it: status {record.get('status')}")
            return record
        if code == "SharedStoreRequired" or code == "RecordLookupUnsupported":
            self.add("5 record", FAILED, f"GET /records/{self.upload_id} answered {status} {code}: {message} — "
                     f"{RECORDS_FIX}")
        elif status == 404:
            self.add("5 record", FAILED, f"no record for upload {self.upload_id}: neither the callback nor the "
                     "process function recorded it; see their logs")
        else:
            self.add("5 record", FAILED, f"GET /records/{self.upload_id} answered {status} {code}: {message}")
        return None

    def check_trigger_and_state(self, record: dict[str, Any] | None) -> None:
        if record is None:
            self.add("6 trigger", SKIP, "no readable record: the trigger's work cannot be seen")
            self.add("7 state", SKIP, "no readable record")
            return
        if "content_type_detected" not in record:
            self.add("6 trigger", SKIP, "the record answer carries no content_type_detected (an older signature "
                     "function): the trigger's work cannot be seen from outside")
        else:
            deadline = time.monotonic() + self.wait
            while record.get("content_type_detected") is None and time.monotonic() < deadline:
                time.sleep(0.5)
                record = self.get_record()[3] or record
            if record.get("content_type_detected") is None:
                self.add("6 trigger", FAILED, f"no content check within {self.wait:g} s: the OSS trigger is missing "
                         "or the process function failed — check the process function's OSS trigger (s.yaml: "
                         "ObjectCreated events under the upload prefix) and its logs")
            else:
                self.add("6 trigger", OK, f"the process function checked it: {record.get('content_type_detected')}")
        status = record.get("status")
        hook = record.get("hook_status") if "hook_status" in record else "(not reported)"
        if status in (Status.QUARANTINED, Status.SUSPECT):
            self.add("7 state", FAILED, f"the test object was {status}: {record.get('status_reason')} — see "
                     "OSSDIRECT_QUARANTINE and the process function's logs")
        elif hook in (HookStatus.FAILED, HookStatus.RETRY):
            self.add("7 state", FAILED, f"the upload hook {hook}: see the process function's logs (hook_error)")
        else:
            self.add("7 state", OK, f"status {status}, hook {hook if hook is not None else 'none ran'}")

    # --- multipart -------------------------------------------------------------------------------
    def check_multipart(self, limits: dict[str, Any]) -> None:
        if not limits.get("multipart_threshold"):
            self.add("M multipart", SKIP, "/limits publishes no multipart_threshold: multipart uploads are off "
                     "(they need shared records)")
            return
        from ..core.multipart import MIN_PART

        max_bytes = int(limits.get("max_bytes") or 0)
        step = "create"
        try:
            body = {"filename": self.filename.replace("doctor-", "doctor-mp-"), "content_type": self.content_type}
            if "original" in (limits.get("naming") or []):
                body["naming"] = "original"
            # the part size comes from create: ask for 2 parts of it (a first guess, then the real size)
            size = 8 * 1024 * 1024 + MIN_PART
            if max_bytes and size > max_bytes:
                self.add("M multipart", SKIP, f"max_bytes {max_bytes} is below a 2-part test file ({size} bytes)")
                return
            created = self.call("POST", self.base + "multipart", json=dict(body, size=size), headers=self.headers())
            if created.status_code != 201:
                code, message = _api_error(created)
                fix = RECORDS_FIX if code in ("SharedStoreRequired", "MultipartUnavailable") else "see the logs"
                self.add("M multipart", FAILED, f"create answered {created.status_code} {code}: {message} — {fix}")
                return
            session = created.json()
            part_size, count = int(session["part_size"]), int(session["part_count"])
            if count != 2:  # the service plans differently: start again with exactly 2 parts of its size
                self.abort(session)
                size = part_size + max(1, min(MIN_PART, part_size // 2))
                created = self.call("POST", self.base + "multipart", json=dict(body, size=size),
                                    headers=self.headers())
                session = created.json()
                part_size, count = int(session["part_size"]), int(session["part_count"])
            data = (b"ossdirect doctor multipart test\n" * (size // 32 + 1))[:size]
            if self.content_type == "image/png":
                data = (_tiny_png() + data)[:size]
            q = {"key": session["key"], "upload_id": session["upload_id"]}
            step = "sign"
            signed = self.call("GET", f"{self.base}multipart/{session['uploadId']}/parts",
                               params=dict(q, partNumbers="1,2"), headers=self.headers()).json()
            etags = []
            for n in (1, 2):
                step = f"upload part {n}"
                chunk = data[(n - 1) * part_size:n * part_size]
                put = self.call("PUT", signed["presignedUrls"][str(n)], data=chunk,
                                headers={"Origin": self.origin} if self.origin and self.cors_ok else {})
                if put.status_code != 200:
                    code, message = _oss_error(put.text)
                    self.abort(session)
                    self.add("M multipart", FAILED, f"OSS refused part {n}: {put.status_code} {code}: {message} — "
                             f"{self.oss_fix(code, message, {}, signed['presignedUrls'][str(n)])}; aborted")
                    return
                etags.append({"PartNumber": n, "ETag": put.headers.get("ETag", "")})
            step = "complete"
            done = self.call("POST", f"{self.base}multipart/{session['uploadId']}/complete", params=q,
                             json={"parts": etags}, headers=self.headers())
        except (self.network_errors + (ValueError, KeyError, TypeError)) as exc:
            self.add("M multipart", FAILED, f"{step} failed ({exc.__class__.__name__}: {str(exc)[:120]})")
            return
        answer = done.json() if done.headers.get("Content-Type", "").startswith("application/json") else {}
        if done.status_code == 203:
            self.add("M multipart", FAILED, f"stored {session['key']} but OSS could not get the callback's answer: "
                     f"{answer.get('message')}")
            return
        if done.status_code != 200 or not answer.get("ok"):
            self.add("M multipart", FAILED, f"complete answered {done.status_code} {answer.get('code')}: "
                     f"{answer.get('message')}")
            return
        status, code, message, record = self.get_record(session["upload_id"])
        if record is None:
            self.add("M multipart", FAILED, f"completed, but GET /records answered {status} {code}: {message}")
            return
        self.objects.append((str(session["upload_id"]), str(session["key"]), size))
        self.add("M multipart", OK, f"2 parts of {part_size} bytes max, completed and recorded as "
                 f"{record.get('status')} ({session['key']}, {size} bytes)")

    def abort(self, session: dict[str, Any]) -> None:
        try:
            self.call("DELETE", f"{self.base}multipart/{session['uploadId']}",
                      params={"key": session["key"], "upload_id": session["upload_id"]}, headers=self.headers())
        except self.network_errors:
            pass


def run_doctor(signature_url: str, **kwargs: Any) -> dict[str, Any]:
    """``{"ok", "hops", "key", "upload_id"}`` for one doctor run."""
    doctor = Doctor(signature_url, **kwargs)
    hops = doctor.run()
    failed = [h for h in hops if h["status"] == FAILED]
    return {"ok": not failed, "hops": hops, "key": doctor.key, "upload_id": doctor.upload_id,
            "first_failed": failed[0]["hop"] if failed else None}


def render(result: dict[str, Any], say: Callable[[str], None]) -> None:
    width = max(len(h["hop"]) for h in result["hops"]) if result["hops"] else 0
    for h in result["hops"]:
        say(f"{h['hop']:<{width}}  {h['status']:<6}  {h['message']}")
    bad = [h for h in result["hops"] if h["status"] == FAILED]
    say("all hops ok" if not bad else f"{len(bad)} hop(s) FAILED; the first: {bad[0]['hop']}")
