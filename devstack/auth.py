"""A stand-in sign-in service for the local stack (``make stack ARGS="--auth jwt"``), on loopback only.

It plays the part of a site's identity provider: a fresh RSA key per start, its public half published
as a JWKS (what ``OSSDIRECT_JWT_JWKS_URL`` points at), and a test token endpoint that hands any test
user a short-lived RS256 token. Nothing here is a real sign-in: there is no password, so it must
never listen beyond 127.0.0.1.

    GET /.well-known/jwks.json          the public key (kid = its RFC 7638 thumbprint)
    GET /token?user=alice               {"token": "...", "user": "alice", "expires_at": "...Z"}
        &ttl=60                         lifetime in seconds (default 300, 1..3600)
        &expired=1                      a token that expired an hour ago (for tests)
    GET /sign-in                        a short page saying how to sign in on the local stack

Tokens are signed with ``cryptography`` directly (RS256 = RSASSA-PKCS1-v1_5 with SHA-256), so the
stack needs no JWT library of its own. The key is also written to ``<data dir>/auth/`` (0600) so that
``python -m devstack token alice`` can print a token the running stack accepts.
"""

import base64
import hashlib
import html
import json
import logging
import os
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

AUDIENCE = "ossdirect-local"
DEFAULT_TTL = 300
MAX_TTL = 3600
KEY_FILE = "signing-key.pem"
INFO_FILE = "issuer.json"

log = logging.getLogger("auth")


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(n):
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def public_jwk(private_key):
    numbers = private_key.public_key().public_numbers()
    e, n = _int_b64url(numbers.e), _int_b64url(numbers.n)
    # RFC 7638 thumbprint: the required members, lexicographic order, no whitespace
    kid = _b64url(hashlib.sha256(json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"),
                                            sort_keys=True).encode()).digest())
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}


def mint_token(private_key, kid, issuer, audience, sub, ttl=DEFAULT_TTL, expired=False, now=None):
    """An RS256 JWT for ``sub``. ``expired`` gives one that ran out an hour ago (beyond any leeway)."""
    now = int(time.time() if now is None else now)
    iat = now - 7200 if expired else now
    exp = now - 3600 if expired else now + int(ttl)
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    claims = {"iss": issuer, "aud": audience, "sub": sub, "iat": iat, "nbf": iat, "exp": exp,
              "name": sub}
    signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     _b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()))
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(signature), exp


def _iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenService:
    """The JWKS and test token endpoints on one loopback port. ``url`` is also the tokens' issuer."""

    def __init__(self, host="127.0.0.1", port=0, audience=AUDIENCE, origins=(), page_url="", key_dir=None):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = public_jwk(self.key)
        self.kid = self.jwk["kid"]
        self.audience = audience
        self.origins = set(origins)
        self.page_url = page_url
        self.tokens_issued = 0
        self.server = ThreadingHTTPServer((host, port), _handler_class(self))
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}"
        self.issuer = self.url + "/"
        self.jwks_url = self.url + "/.well-known/jwks.json"
        self.token_url = self.url + "/token"
        self.sign_in_url = self.url + "/sign-in"
        if key_dir is not None:
            self.save(key_dir)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="auth", daemon=True)
        self.thread.start()

    def token(self, sub, ttl=DEFAULT_TTL, expired=False):
        self.tokens_issued += 1
        return mint_token(self.key, self.kid, self.issuer, self.audience, sub, ttl, expired)[0]

    def save(self, key_dir):
        """Write the private key (0600) and the issuer's settings for ``python -m devstack token``."""
        key_dir = Path(key_dir)
        key_dir.mkdir(parents=True, exist_ok=True)
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        path = key_dir / KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.chmod(path, 0o600)
        (key_dir / INFO_FILE).write_text(json.dumps({"issuer": self.issuer, "audience": self.audience,
                                                     "kid": self.kid, "token_url": self.token_url}) + "\n")

    def stop(self):
        if self.thread is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread = None


def token_from_saved(key_dir, sub, ttl=DEFAULT_TTL, expired=False):
    """A token signed with the key a stack saved in ``key_dir`` (raises FileNotFoundError if none)."""
    key_dir = Path(key_dir)
    info = json.loads((key_dir / INFO_FILE).read_text())
    key = serialization.load_pem_private_key((key_dir / KEY_FILE).read_bytes(), password=None)
    return mint_token(key, info["kid"], info["issuer"], info["audience"], sub, ttl, expired)


def _handler_class(service):
    class Handler(BaseHTTPRequestHandler):
        server_version = "ossdirect-devstack-auth"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # one line per request, through logging (see _send)
            pass

        def _cors(self):
            origin = self.headers.get("Origin")
            if origin and origin in service.origins:
                return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                        "Access-Control-Allow-Methods": "GET, OPTIONS", "Access-Control-Max-Age": "600",
                        "Vary": "Origin"}
            return {}

        def _send(self, status, body, content_type="application/json", extra=None):
            data = body if isinstance(body, bytes) else (
                json.dumps(body).encode() if content_type == "application/json" else body.encode())
            self.send_response(status)
            headers = {"Content-Type": content_type + ("; charset=utf-8" if "json" not in content_type else ""),
                       "Content-Length": str(len(data)), "Cache-Control": "no-store"}
            headers.update(self._cors())
            headers.update(extra or {})
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            log.info("%s %s %d", self.command, urlsplit(self.path).path, status)

        def do_OPTIONS(self):  # noqa: N802
            self._send(204, b"", extra={"Content-Length": "0"})

        def do_GET(self):  # noqa: N802
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/jwks.json":
                return self._send(200, {"keys": [service.jwk]})
            if parts.path == "/token":
                user = query.get("user", "").strip()
                if not user:
                    return self._send(400, {"code": "UserRequired", "message": "name a test user: /token?user=alice"})
                try:
                    ttl = int(query.get("ttl", DEFAULT_TTL))
                except ValueError:
                    ttl = 0
                if not 1 <= ttl <= MAX_TTL:
                    return self._send(400, {"code": "InvalidTtl", "message": f"ttl must be 1..{MAX_TTL} seconds"})
                expired = query.get("expired", "") in ("1", "true", "yes")
                token = service.token(user, ttl, expired)
                exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["exp"]
                return self._send(200, {"token": token, "user": user, "expires_at": _iso(exp)})
            if parts.path == "/sign-in":
                back = (f'<p><a href="{html.escape(service.page_url)}">Back to the upload page</a></p>'
                        if service.page_url else "")
                page = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                        "<title>Sign in (local stack)</title></head><body><main><h1>Sign in (local stack)</h1>"
                        "<p>This stand-in has no passwords: type any name in the <strong>Test user</strong> "
                        "field of the upload page, or run <code>python -m devstack token alice</code>.</p>"
                        f"{back}</main></body></html>")
                return self._send(200, page, "text/html")
            return self._send(404, {"code": "NotFound", "message": "no such endpoint"})

    return Handler
