"""The local stack: the OSS emulator and both real FC handlers on loopback, wired together.

    with LocalStack(data_dir) as stack:
        stack.page_url        # the upload page, hosted in the emulated bucket
        stack.signature_url   # the signature function (real handler behind a WSGI adapter)
        stack.callback_url    # the callback function
        stack.records()       # what the callback function recorded (SQLite)

    with LocalStack(data_dir, auth="jwt") as stack:   # sign-in required (OSSDIRECT_AUTH=jwt)
        stack.token("alice")  # a short-lived RS256 token from the stack's own stand-in issuer
        stack.auth.token_url  # GET ?user=alice -> {"token": ...}; the page's config.json points here

Credentials are the emulator's fake STS account, handed to both functions the
way FC's python3.10 runtime does (``context.credentials``).
"""

import json
import threading
import types
import urllib.request
from pathlib import Path
from urllib.parse import quote

from werkzeug.serving import make_server

from ossdirect.handlers import CallbackApp, SignatureApp
from ossdirect.records.sqlite import SqliteStore
from ossdirect.wsgi import wsgi_app

ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = ROOT / "web"
BUCKET = "ossdirect-local"
REGION = "cn-hangzhou"
# A fake STS identity known only to the emulator: nothing here is a real credential.
ACCESS_KEY_ID = "STS.LocalDevKeyId"
ACCESS_KEY_SECRET = "local-dev-secret-not-a-real-key"
SECURITY_TOKEN = "local-dev-security-token"
AUTH_MODES = ("none", "jwt")
# With sign-in on, each user's uploads lie under their own folder (the server fills in the token's sub).
USER_PREFIX = "uploads/{sub}/"


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


class LocalStack:
    def __init__(self, data_dir, host="127.0.0.1", emulator_port=0, signature_port=0, callback_port=0,
                 env=None, web_dir=WEB_DIR, clock_offset=0, auth="none", token_port=0):
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        self.data_dir = Path(data_dir)
        self.host = host
        self.ports = (emulator_port, signature_port, callback_port)
        self.extra_env = dict(env or {})
        self.web_dir = Path(web_dir)
        self.clock_offset = clock_offset
        self.auth_mode = auth
        self.token_port = token_port
        self.emulator = self.signature = self.callback = self.auth = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self):
        from emulator import EmulatorConfig, serve

        self.data_dir.mkdir(parents=True, exist_ok=True)
        emulator_port, signature_port, callback_port = self.ports
        config = EmulatorConfig(
            data_dir=str(self.data_dir / "oss"),
            buckets=[BUCKET],
            region=REGION,
            accounts={ACCESS_KEY_ID: (ACCESS_KEY_SECRET, SECURITY_TOKEN)},
            clock_offset=self.clock_offset,
        )
        self.emulator = serve(config, self.host, emulator_port)
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

        # Both functions get the emulator's fake STS identity as context.credentials: the signature
        # function signs forms with it, the callback function calls HeadObject on the emulator with it.
        creds = types.SimpleNamespace(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET,
                                      security_token=SECURITY_TOKEN)
        callback_env = self._env(
            OSSDIRECT_RECORDS=f"sqlite:///{self.records_path}",
            OSSDIRECT_TRUSTED_KEY_PREFIXES=f"{self.emulator.url}/_emulator/",
            OSSDIRECT_OSS_ENDPOINT=self.bucket_url,  # path-style: the emulator's bucket URL
            **auth_env,
        )
        self.callback = _FunctionServer(CallbackApp(callback_env), self.host, callback_port, "callback", creds)
        self.callback_url = self.callback.url + "/oss-callback"

        signature_env = self._env(OSSDIRECT_CALLBACK_URL=self.callback_url, **auth_env)
        self.signature = _FunctionServer(SignatureApp(signature_env), self.host, signature_port, "signature", creds)
        self.signature_url = self.signature.url + "/"
        self.publish_web()
        return self

    def _env(self, **overrides):
        env = {
            "OSSDIRECT_BUCKET": BUCKET,
            "OSSDIRECT_REGION": REGION,
            "OSSDIRECT_UPLOAD_HOST": self.bucket_url,
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
        for part in (self.signature, self.callback, self.auth):
            if part is not None:
                part.stop()
        if self.emulator is not None:
            self.emulator.shutdown()
            self.emulator = None

    def set_clock_offset(self, seconds):
        """Move the emulated OSS's clock (seconds added to now), e.g. past the forms' expiry."""
        self.emulator.emulator.config.clock_offset = seconds

    def stop_callback(self):
        """Take the callback function away (OSS then answers 203 CallbackFailed)."""
        self.callback.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- helpers ------------------------------------------------------------------------------
    def publish_web(self):
        """Publish web/ and its config.json with the same bucket-setup tool a deploy uses (oss2 SDK)."""
        from tools.bucket_setup import setup_bucket

        report = setup_bucket(self.emulator.url, BUCKET, (ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN),
                              self.web_dir, self.signature_url, [self.page_origin])
        if self.auth:
            self.put_page_config(self.page_config())
        return report

    def page_config(self):
        """What the page reads from config.json: the signature URL and, with sign-in on, where tokens come from."""
        config = {"signatureUrl": self.signature_url}
        if self.auth:
            # "localStack" shows the page's Test user field; a real site names its own token source instead
            config["auth"] = {"tokenUrl": self.auth.token_url, "signInUrl": self.auth.sign_in_url}
            config["localStack"] = True
        return config

    def put_page_config(self, config):
        """Replace the published config.json (tests use it to try other token providers)."""
        import oss2

        bucket = oss2.Bucket(oss2.StsAuth(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN), self.emulator.url, BUCKET)
        bucket.put_object("config.json", json.dumps(config).encode(),
                          headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})

    def token(self, user, ttl=None, expired=False):
        """A token the signature function accepts for ``user`` (``expired=True``: one it must refuse)."""
        if self.auth is None:
            raise RuntimeError("this stack runs without sign-in: start it with auth='jwt'")
        from devstack.auth import DEFAULT_TTL

        return self.auth.token(user, ttl or DEFAULT_TTL, expired)

    def get_object(self, key):
        with urllib.request.urlopen(f"{self.bucket_url}/{quote(key)}", timeout=10) as response:
            return response.read()

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
