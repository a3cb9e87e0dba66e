"""The local stack: the OSS emulator and the three real FC handlers on loopback, wired together.

    with LocalStack(data_dir) as stack:
        stack.page_url        # the upload page, hosted in the emulated bucket
        stack.signature_url   # the signature function (real handler behind a WSGI adapter)
        stack.callback_url    # the callback function
        stack.process_url     # the process function (the emulator's OSS trigger invokes it)
        stack.records()       # what the callback and process functions recorded (SQLite)
        stack.stop_callback() # OSS answers 203; the process function still records from the event

    with LocalStack(data_dir, auth="jwt") as stack:   # sign-in required (OSSDIRECT_AUTH=jwt)
        stack.token("alice")  # a short-lived RS256 token from the stack's own stand-in issuer
        stack.auth.token_url  # GET ?user=alice -> {"token": ...}; the page's config.json points here

Credentials are the emulator's fake STS account, handed to every function the
way FC's python3.10 runtime does (``context.credentials``). They are random per data directory
(``<data dir>/emulator-credentials.json``, mode 0600, made on the first run; ``stack.credentials``), so
no other local process or web page knows them. The emulator calls back only the stack's callback
function and takes PostObject forms only from the page's own origin (or without an Origin header).

The process function is not behind an HTTP trigger: Function Compute invokes it with the OSS event's
raw bytes as the payload. Here the emulator's trigger POSTs the event to a small loopback
"invocation" server, which hands the body to ``handler(body_bytes, context)`` and answers 200 with
the handler's result, or 500 when it raises (the emulator then retries, as FC's asynchronous
invocation does). The trigger's rule is the deployed one (s.yaml): PostObject, PutObject and
CompleteMultipartUpload under the upload prefix, delivered ``event_delay`` seconds after the object
is stored (OSS notifies asynchronously; the callback normally records first).
"""

import json
import logging
import os
import secrets
import threading
import time
import types
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

from werkzeug.serving import make_server

from ossdirect.app.handlers import CallbackApp, ProcessApp, SignatureApp
from ossdirect.store.sqlite import SqliteStore
from ossdirect.app.wsgi import LocalContext, wsgi_app

ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = ROOT / "web"
BUCKET = "ossdirect-local"
REGION = "cn-hangzhou"
CREDENTIALS_FILE = "emulator-credentials.json"
AUTH_MODES = ("none", "jwt")
BUCKET_ACLS = ("private", "public-read")
# With sign-in on, each user's uploads lie under their own folder (the server fills in the token's sub).
USER_PREFIX = "uploads/{sub}/"
# The process function's OSS trigger, as s.yaml deploys it.
TRIGGER_EVENTS = ["ObjectCreated:PostObject", "ObjectCreated:PutObject", "ObjectCreated:CompleteMultipartUpload"]
INVOKE_PATH = "/2023-03-30/functions/process/invocations"  # FC's InvokeFunction path (any path is accepted)
EVENT_DELAY = 0.5  # seconds from an object being stored to its trigger event (OSS notifies asynchronously)
log = logging.getLogger("ossdirect")


class _FunctionServer:
    """A real FC3 handler behind a threaded WSGI server on loopback."""

    def __init__(self, handler, host, port, name, credentials=None):
        def fc_handler(event, context):
            if credentials is not None:
                context.credentials = credentials  # what python3.10's FC context carries
            return handler(event, context)

        self.server = make_server(host, port, wsgi_app(fc_handler, name), threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=name, daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread = None


class _EventServer:
    """An event function (FC invokes it with the raw event as the payload) behind a loopback server:
    POST body -> ``handler(body_bytes, context)``; 200 + the result as JSON, 500 when it raises; 503
    until ``attach`` (so events that arrive before the function is ready are retried, not lost).

    One log line per invocation, shaped like the HTTP functions' (``fn``, ``method``, ``path``,
    ``status``, ``ms``) plus what the function did with each object (key, action, status)."""

    def __init__(self, host, port, name, credentials=None):
        self.app, self.name, self.credentials = None, name, credentials
        self.server = make_server(host, port, self._wsgi, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.invocations = 0
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=name, daemon=True)
        self.thread.start()

    def attach(self, app):
        self.app = app

    def _wsgi(self, environ, start_response):
        started = time.perf_counter()
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        if method != "POST":
            return self._answer(start_response, 405, {"errorMessage": "invoke with POST"}, {"Allow": "POST"})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        app = self.app
        if app is None:
            return self._answer(start_response, 503, {"errorMessage": "the function is starting"})
        request_id = environ.get("HTTP_X_FC_REQUEST_ID") or "1-" + uuid.uuid4().hex
        context = LocalContext(request_id, self.name)
        if self.credentials is not None:
            context.credentials = self.credentials  # what python3.10's FC context carries
        self.invocations += 1
        entry = {"fn": self.name, "method": method, "path": path}
        try:
            result = app(body, context)
        except Exception as exc:  # noqa: BLE001 - FC reports an unhandled error; the caller retries
            error = {"errorMessage": str(exc)[:300], "errorType": exc.__class__.__name__}
            self._log(dict(entry, status=500, ms=_ms(started), error=error["errorType"],
                           message=error["errorMessage"]), logging.WARNING)
            return self._answer(start_response, 500, error, {"X-Fc-Error-Type": "UnhandledInvocationError"})
        results = [{k: r.get(k) for k in ("key", "action", "status") if r.get(k) is not None}
                   for r in (result or {}).get("results", []) if isinstance(r, dict)]
        self._log(dict(entry, status=200, ms=_ms(started), results=results), logging.INFO)
        return self._answer(start_response, 200, result)

    def _log(self, entry, level):
        if log.isEnabledFor(level):
            log.log(level, json.dumps(entry, separators=(",", ":"), default=str), extra={"devstack_event": True})

    @staticmethod
    def _answer(start_response, status, payload, headers=None):
        data = json.dumps(payload, default=str).encode("utf-8")
        reason = {200: "OK", 405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}
        start_response(f"{status} {reason[status]}", [("Content-Type", "application/json"),
                                                      ("Content-Length", str(len(data))), *(headers or {}).items()])
        return [data]

    def stop(self):
        if self.thread is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread = None


class Credentials(types.SimpleNamespace):
    """The stack's fake STS identity; iterates as (access_key_id, access_key_secret, security_token)."""

    def __iter__(self):
        return iter((self.access_key_id, self.access_key_secret, self.security_token))


def load_credentials(data_dir):
    """The emulator's fake STS identity for this data directory: random, made on first use into
    ``<data_dir>/emulator-credentials.json`` (mode 0600), never a constant in the repository."""
    path = Path(data_dir) / CREDENTIALS_FILE
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        values = json.loads(path.read_text(encoding="utf-8"))
    else:
        values = {"access_key_id": "STS." + secrets.token_hex(12), "access_key_secret": secrets.token_urlsafe(30),
                  "security_token": secrets.token_urlsafe(48)}
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(values, f)
    return Credentials(**{k: values[k] for k in ("access_key_id", "access_key_secret", "security_token")})


def _ms(started):
    return round((time.perf_counter() - started) * 1000, 2)


def _static_prefix(env):
    """The fixed part of the upload prefix (what the trigger's prefix filter names)."""
    from ossdirect.settings import ConfigError, load_config

    try:
        return load_config(env).prefix_static
    except ConfigError:
        return env.get("OSSDIRECT_PREFIX", "uploads/").split("{", 1)[0]


class LocalStack:
    def __init__(self, data_dir, host="127.0.0.1", emulator_port=0, signature_port=0, callback_port=0,
                 env=None, web_dir=WEB_DIR, clock_offset=0, auth="none", token_port=0, process_port=0,
                 process=True, event_delay=EVENT_DELAY, bucket_acl=None):
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        # Private with sign-in on (the recommended setting: a file is read through GET /files/<id>/url);
        # public-read without it, where the page links each upload. The page's own files are public-read.
        self.bucket_acl = bucket_acl or ("private" if auth == "jwt" else "public-read")
        if self.bucket_acl not in BUCKET_ACLS:
            raise ValueError(f"bucket_acl must be one of {', '.join(BUCKET_ACLS)}, got {bucket_acl!r}")
        self.data_dir = Path(data_dir)
        self.host = host
        self.ports = (emulator_port, signature_port, callback_port)
        self.extra_env = dict(env or {})
        self.web_dir = Path(web_dir)
        self.clock_offset = clock_offset
        self.auth_mode = auth
        self.token_port = token_port
        self.process_port = process_port
        self.run_process = process  # False: no process function, and the emulator sends no events
        self.event_delay = event_delay
        self.emulator = self.signature = self.callback = self.auth = self.process = None
        self.credentials = None
        self.process_url = self.process_env = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self):
        from emulator import EmulatorConfig, serve

        self.data_dir.mkdir(parents=True, exist_ok=True)
        emulator_port, signature_port, callback_port = self.ports
        # Every function gets the emulator's fake STS identity as context.credentials: the signature
        # function signs forms with it, the callback and process functions call OSS with it.
        creds = self.credentials = load_credentials(self.data_dir)
        if self.run_process:  # bound first: the emulator's trigger needs its URL; the function comes later
            self.process = _EventServer(self.host, self.process_port, "process", creds)
            self.process_url = self.process.url + INVOKE_PATH
        trigger_prefix = _static_prefix(dict(self.extra_env, OSSDIRECT_BUCKET=BUCKET, OSSDIRECT_REGION=REGION,
                                             **({"OSSDIRECT_PREFIX": USER_PREFIX} if self.auth_mode == "jwt" and
                                                "OSSDIRECT_PREFIX" not in self.extra_env else {})))
        self.trigger_prefix = trigger_prefix
        config = EmulatorConfig(
            data_dir=str(self.data_dir / "oss"),
            buckets=[BUCKET],
            region=REGION,
            accounts={creds.access_key_id: (creds.access_key_secret, creds.security_token)},
            callback_urls=[],  # the callback function's URL, once it is bound (below): nothing else is called
            clock_offset=self.clock_offset,
            event_targets=[self.process_url] if self.process else [],
            event_names=list(TRIGGER_EVENTS),
            event_prefix=trigger_prefix,
            event_delay=self.event_delay,
            bucket_acl=self.bucket_acl,
        )
        self.emulator = serve(config, self.host, emulator_port)
        # forms only from the page (hosted in the bucket), so no other site can POST one to the emulator
        config.post_origins = [self.emulator.url, f"http://localhost:{self.emulator.port}"]
        self.bucket_url = f"{self.emulator.url}/{BUCKET}"
        self.records_path = self.data_dir / "records.sqlite3"
        self.page_origin = self.emulator.url
        self.page_url = f"{self.bucket_url}/index.html"
        auth_env = {}  # both functions: the callback needs the same prefix (and so the same sign-in settings)
        if self.auth_mode == "jwt":
            from devstack.auth import TokenService

            self.auth = TokenService(self.host, self.token_port, origins=[self.page_origin],
                                     page_url=self.page_url, key_dir=self.data_dir / "auth")
            auth_env = {
                "OSSDIRECT_AUTH": "jwt",
                "OSSDIRECT_JWT_JWKS_URL": self.auth.jwks_url,
                "OSSDIRECT_JWT_ISSUER": self.auth.issuer,
                "OSSDIRECT_JWT_AUDIENCE": self.auth.audience,
                "OSSDIRECT_PREFIX": USER_PREFIX,
            }

        records = f"sqlite:///{self.records_path}"
        callback_env = self._env(
            OSSDIRECT_RECORDS=records,
            OSSDIRECT_TRUSTED_KEY_PREFIXES=f"{self.emulator.url}/_emulator/",
            OSSDIRECT_OSS_ENDPOINT=self.bucket_url,  # path-style: the emulator's bucket URL
            **auth_env,
        )
        self.callback = _FunctionServer(CallbackApp(callback_env), self.host, callback_port, "callback", creds)
        self.callback_url = self.callback.url + "/oss-callback"
        self.emulator.emulator.config.callback_urls.append(self.callback_url)

        if self.process is not None:  # the callback's settings, plus what to do with a bad file
            self.process_env = self._env(
                OSSDIRECT_RECORDS=records,
                OSSDIRECT_OSS_ENDPOINT=self.bucket_url,
                OSSDIRECT_QUARANTINE="move",
                OSSDIRECT_QUARANTINE_PREFIX="quarantine/",
                **auth_env,
            )
            self.process.attach(ProcessApp(self.process_env))

        # the same records as the callback: it answers GET <signature>/records/<upload_id> (the page's poll)
        signature_env = self._env(OSSDIRECT_CALLBACK_URL=self.callback_url, OSSDIRECT_RECORDS=records, **auth_env)
        self.signature = _FunctionServer(SignatureApp(signature_env), self.host, signature_port, "signature", creds)
        self.signature_url = self.signature.url + "/"
        self.publish_web()
        return self

    def _env(self, **overrides):
        env = {
            "OSSDIRECT_BUCKET": BUCKET,
            "OSSDIRECT_REGION": REGION,
            "OSSDIRECT_UPLOAD_HOST": self.bucket_url,
            # every function reaches the bucket here (HeadObject, multipart calls): never a real endpoint
            "OSSDIRECT_OSS_ENDPOINT": self.bucket_url,
            "OSSDIRECT_PUBLIC_BASE_URL": self.bucket_url,
            "OSSDIRECT_ALLOWED_ORIGINS": self.emulator.url,
            "OSSDIRECT_KEY_NAMING": "random,original",
            "OSSDIRECT_ALLOW_FOLDERS": "true",
            "OSSDIRECT_SIGNATURE_VERSIONS": "v4,v1",
        }
        env.update(overrides)
        env.update(self.extra_env)
        return env

    def stop(self):
        for part in (self.signature, self.callback, self.process, self.auth):
            if part is not None:
                part.stop()
        if self.emulator is not None:
            self.emulator.shutdown()
            self.emulator = None

    def set_clock_offset(self, seconds):
        """Move the emulated OSS's clock (seconds added to now), e.g. past the forms' expiry."""
        self.emulator.emulator.config.clock_offset = seconds

    def stop_callback(self):
        """Take the callback function away (OSS then answers 203 CallbackFailed); the process function
        keeps running, so the upload is still recorded, from its trigger event."""
        self.callback.stop()

    def stop_process(self):
        """Take the process function away (the emulator's trigger deliveries then fail and are retried)."""
        if self.process is not None:
            self.process.stop()

    def wait_for_record(self, upload_id, timeout=10.0, where=None):
        """The record of ``upload_id`` once it exists (and ``where(record)`` holds), polling; None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.records() if r.get("upload_id") == upload_id]
            if found and (where is None or where(found[0])):
                return found[0]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- helpers ------------------------------------------------------------------------------
    def publish_web(self):
        """Publish web/ and its config.json with the same bucket-setup tool a deploy uses (oss2 SDK)."""
        from tools.bucket_setup import setup_bucket

        config = {k: v for k, v in self.page_config().items() if k in ("developer", "privateFiles")}
        report = setup_bucket(self.emulator.url, BUCKET, tuple(self.credentials),
                              self.web_dir, self.signature_url, [self.page_origin],
                              page_config=config)  # the local page opens with developer details
        if self.auth:
            self.put_page_config(self.page_config())
        return report

    def page_config(self):
        """What the page reads from config.json: the signature URL and, with sign-in on, where tokens come from."""
        config = {"signatureUrl": self.signature_url, "developer": True}
        if self.bucket_acl == "private":  # no public link to an upload: signed in, the page downloads via /files
            config["privateFiles"] = True
        if self.auth:
            # "localStack" shows the page's Test user field; a real site names its own token source instead
            config["auth"] = {"tokenUrl": self.auth.token_url, "signInUrl": self.auth.sign_in_url}
            config["localStack"] = True
        return config

    def put_page_config(self, config):
        """Replace the published config.json (tests use it to try other token providers)."""
        self.sdk().put_object("config.json", json.dumps(config).encode(),
                              headers={"Content-Type": "application/json", "Cache-Control": "no-cache",
                                       "x-oss-object-acl": "public-read"})  # a site file: readable

    def sdk(self):
        """An oss2 Bucket on the emulated bucket with the stack's own identity (reads private objects too)."""
        import oss2

        return oss2.Bucket(oss2.StsAuth(*self.credentials), self.emulator.url, BUCKET)

    def token(self, user, ttl=None, expired=False):
        """A token the signature function accepts for ``user`` (``expired=True``: one it must refuse)."""
        if self.auth is None:
            raise RuntimeError("this stack runs without sign-in: start it with auth='jwt'")
        from devstack.auth import DEFAULT_TTL

        return self.auth.token(user, ttl or DEFAULT_TTL, expired)

    def get_object(self, key):
        """The stored bytes, read with the stack's identity through a presigned URL (the bucket may be
        private); a missing object raises urllib's HTTPError 404, as a plain GET does."""
        with urllib.request.urlopen(self.sdk().sign_url("GET", key, 60), timeout=10) as response:
            return response.read()

    def public_get(self, key):
        """An anonymous GET of the object's plain URL, as a browser would: (status, body)."""
        try:
            with urllib.request.urlopen(f"{self.bucket_url}/{quote(key)}", timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def records(self):
        if not self.records_path.exists():
            return []
        store = SqliteStore(str(self.records_path))
        try:
            return store.all()
        finally:
            store.close()


def default_data_dir():
    return ROOT / ".devstack"
