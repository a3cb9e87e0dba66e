"""Sign-in check (ossdirect.core.auth): settings, bearer JWT verification, JWKS caching, identity segments.

Keys are made here with cryptography and tokens signed with PyJWT; the JWKS is served by a real
http.server on 127.0.0.1 that counts its fetches. No mocks.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fixtures import jwt_env
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ossdirect.core.auth import (
    AUTH_ENV_NAMES,
    AuthError,
    Authenticator,
    identity_segment,
    load_auth_settings,
)
from ossdirect.settings import ConfigError
from ossdirect.app.http import ApiError

ROOT = Path(__file__).resolve().parent.parent
ISS = "https://issuer.example.com/"
AUD = "ossdirect-api"
SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------------------------
# keys, tokens, JWKS server


def _pem(public_key):
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


def claims(**over):
    now = int(time.time())
    base = {"iss": ISS, "aud": AUD, "sub": "user-123", "iat": now, "exp": now + 300}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def token(key, alg, kid=None, headers=None, **over):
    hdr = dict(headers or {})
    if kid is not None:
        hdr["kid"] = kid
    return jwt.encode(claims(**over), key, algorithm=alg, headers=hdr or None)


def b64(data):
    if not isinstance(data, bytes):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_hs256(header, payload, secret_bytes):
    """A JWT built by hand (PyJWT refuses to HMAC with a PEM, which is the point of one test)."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    sig = hmac.new(secret_bytes, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def bearer(tok):
    return {"authorization": f"Bearer {tok}"}


def jwk_of(private_key, kid, alg=None):
    data = json.loads(jwt.algorithms.get_default_algorithms()[alg or "RS256"].to_jwk(private_key.public_key()))
    data.update({"kid": kid, "use": "sig"})
    if alg:
        data["alg"] = alg
    return data


class JwksServer:
    """A real loopback HTTP server serving a JWKS document and counting fetches."""

    def __init__(self, keys=(), path="/.well-known/jwks.json"):
        self.keys, self.path, self.fetches, self.status, self.delay = list(keys), path, 0, 200, 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                try:
                    self._get()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (the timeout test)

            def _get(self):
                outer.fetches += 1
                if outer.delay:
                    time.sleep(outer.delay)
                if self.path != outer.path or outer.status != 200:
                    self.send_response(404 if self.path != outer.path else outer.status)
                    self.end_headers()
                    return
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks(rsa_key):
    server = JwksServer([jwk_of(rsa_key, "k1", "RS256")])
    yield server
    server.close()


def env(**values):
    return jwt_env(None, ISS, AUD, **values)  # a None value leaves that setting out


def authn(**values):
    return Authenticator(load_auth_settings(env(**values)))


def fails(auth, headers, code, status=401):
    with pytest.raises(AuthError) as info:
        auth.authenticate(headers)
    err = info.value
    assert (err.status, err.code) == (status, code), err.message
    return err


# ---------------------------------------------------------------------------------------------
# settings


def test_default_is_auth_none():
    s = load_auth_settings({})
    assert s.mode == "none" and not s.enabled
    assert Authenticator(s).authenticate({"authorization": "Bearer whatever"}) is None
    assert repr(s) == "AuthSettings(mode='none')"


def test_auth_none_never_imports_jwt():
    code = ("import sys; import ossdirect.core.auth as a; s = a.load_auth_settings({}); "
            "assert a.Authenticator(s).authenticate({}) is None; "
            "assert 'jwt' not in sys.modules, 'jwt imported'; "
            "assert 'urllib.request' not in sys.modules, 'urllib.request imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "shared")})


def test_env_names_cover_everything_read():
    assert AUTH_ENV_NAMES == ("AUTH", "JWT_JWKS_URL", "JWT_PUBLIC_KEY", "JWT_SECRET", "JWT_ISSUER",
                              "JWT_AUDIENCE", "JWT_ALGORITHMS", "JWT_LEEWAY_SECONDS")
    src = (ROOT / "shared" / "ossdirect" / "settings.py").read_text()  # the settings table's auth rows
    for name in AUTH_ENV_NAMES:
        assert f'_S("{name}"' in src


def test_secret_settings_and_repr_hides_secret():
    s = load_auth_settings(env(JWT_SECRET=SECRET, JWT_AUDIENCE="a, b ,,c"))
    assert (s.key_kind, s.algorithms, s.audience, s.leeway) == ("secret", ("HS256",), ("a", "b", "c"), 30)
    assert s.issuer == ISS
    assert SECRET not in repr(s) and "<hidden>" in repr(s)
    assert SECRET not in str(s)


@pytest.mark.parametrize("values, names", [
    ({"AUTH": "oauth"}, "OSSDIRECT_AUTH"),
    ({"JWT_SECRET": None}, "OSSDIRECT_JWT_JWKS_URL"),  # jwt without any key source
    ({"JWT_SECRET": SECRET, "JWT_JWKS_URL": "https://x.example/jwks"}, "exactly one"),
    ({"JWT_SECRET": "short"}, "OSSDIRECT_JWT_SECRET"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "HS256,HS512"}, "OSSDIRECT_JWT_SECRET"),  # 64 bytes for HS512
    ({"JWT_SECRET": SECRET, "JWT_ISSUER": ""}, "OSSDIRECT_JWT_ISSUER"),
    ({"JWT_SECRET": SECRET, "JWT_AUDIENCE": " , "}, "OSSDIRECT_JWT_AUDIENCE"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "none"}, "OSSDIRECT_JWT_ALGORITHMS"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "HS256,RS256"}, "OSSDIRECT_JWT_ALGORITHMS"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "HS257"}, "OSSDIRECT_JWT_ALGORITHMS"),
    ({"JWT_JWKS_URL": "https://x.example/jwks", "JWT_ALGORITHMS": "RS256,HS256"}, "OSSDIRECT_JWT_ALGORITHMS"),
    ({"JWT_JWKS_URL": "http://idp.example.com/jwks"}, "OSSDIRECT_JWT_JWKS_URL"),
    ({"JWT_JWKS_URL": "ftp://idp.example.com/jwks"}, "OSSDIRECT_JWT_JWKS_URL"),
    ({"JWT_SECRET": SECRET, "JWT_LEEWAY_SECONDS": "301"}, "OSSDIRECT_JWT_LEEWAY_SECONDS"),
    ({"JWT_SECRET": SECRET, "JWT_LEEWAY_SECONDS": "-1"}, "OSSDIRECT_JWT_LEEWAY_SECONDS"),
    ({"JWT_SECRET": SECRET, "JWT_LEEWAY_SECONDS": "soon"}, "OSSDIRECT_JWT_LEEWAY_SECONDS"),
    ({"JWT_PUBLIC_KEY": "not a pem"}, "OSSDIRECT_JWT_PUBLIC_KEY"),
    ({"AUTH": "none", "JWT_JWKS_URL": "https://x.example/jwks"}, "OSSDIRECT_AUTH"),  # forgotten switch
])
def test_bad_settings_name_the_variable(values, names):
    with pytest.raises(ConfigError) as info:
        load_auth_settings(env(**values))
    assert names in str(info.value)
    assert SECRET not in str(info.value)


def test_settings_from_pem_narrow_algorithms(rsa_key, ec_key, ed_key):
    assert load_auth_settings(env(JWT_PUBLIC_KEY=_pem(rsa_key.public_key()))).algorithms == ("RS256",)
    assert load_auth_settings(env(JWT_PUBLIC_KEY=_pem(ec_key.public_key()))).algorithms == ("ES256",)
    assert load_auth_settings(env(JWT_PUBLIC_KEY=_pem(ed_key.public_key()))).algorithms == ("EdDSA",)
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert load_auth_settings(env(JWT_PUBLIC_KEY=_pem(p384.public_key()))).algorithms == ("ES384",)
    s = load_auth_settings(env(JWT_PUBLIC_KEY=_pem(rsa_key.public_key()), JWT_ALGORITHMS="rs256, PS256"))
    assert s.algorithms == ("RS256", "PS256")
    with pytest.raises(ConfigError, match="OSSDIRECT_JWT_ALGORITHMS"):
        load_auth_settings(env(JWT_PUBLIC_KEY=_pem(rsa_key.public_key()), JWT_ALGORITHMS="ES256"))
    with pytest.raises(ConfigError, match="OSSDIRECT_JWT_ALGORITHMS"):
        load_auth_settings(env(JWT_PUBLIC_KEY=_pem(rsa_key.public_key()), JWT_ALGORITHMS="RS256,HS256"))
    assert load_auth_settings(env(JWT_JWKS_URL="https://idp.example/jwks")).algorithms == ("RS256", "ES256", "EdDSA")
    # a one-line PEM with literal \n (how some consoles store it) is accepted
    one_line = _pem(rsa_key.public_key()).strip().replace("\n", "\\n")
    assert load_auth_settings(env(JWT_PUBLIC_KEY=one_line)).key_kind == "pem"
    assert "BEGIN" not in repr(load_auth_settings(env(JWT_PUBLIC_KEY=one_line)))


def test_pem_private_key_and_weak_rsa_are_refused(rsa_key):
    private = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    with pytest.raises(ConfigError) as info:
        load_auth_settings(env(JWT_PUBLIC_KEY=private))
    assert "private key" in str(info.value) and "MII" not in str(info.value)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigError, match="2048"):
        load_auth_settings(env(JWT_PUBLIC_KEY=_pem(weak.public_key())))


def test_pem_certificate_is_accepted(rsa_key):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(rsa_key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(rsa_key, hashes.SHA256()))
    auth = authn(JWT_PUBLIC_KEY=cert.public_bytes(serialization.Encoding.PEM).decode())
    assert auth.authenticate(bearer(token(rsa_key, "RS256")))["sub"] == "user-123"


# ---------------------------------------------------------------------------------------------
# one success per key kind


def test_hs256_secret():
    got = authn(JWT_SECRET=SECRET).authenticate(bearer(token(SECRET, "HS256")))
    assert got["sub"] == "user-123" and got["iss"] == ISS


def test_rs256_pem(rsa_key):
    assert authn(JWT_PUBLIC_KEY=_pem(rsa_key.public_key())).authenticate(bearer(token(rsa_key, "RS256")))["sub"]


def test_es256_pem(ec_key):
    assert authn(JWT_PUBLIC_KEY=_pem(ec_key.public_key())).authenticate(bearer(token(ec_key, "ES256")))["sub"]


def test_eddsa_pem(ed_key):
    assert authn(JWT_PUBLIC_KEY=_pem(ed_key.public_key())).authenticate(bearer(token(ed_key, "EdDSA")))["sub"]


def test_rs256_jwks(rsa_key, jwks):
    auth = authn(JWT_JWKS_URL=jwks.url)
    assert auth.authenticate(bearer(token(rsa_key, "RS256", kid="k1")))["sub"] == "user-123"
    assert jwks.fetches == 1


def test_bearer_scheme_is_case_insensitive_and_audience_list_matches():
    auth = authn(JWT_SECRET=SECRET, JWT_AUDIENCE="other, " + AUD)
    tok = token(SECRET, "HS256", aud=["https://tenant.example/userinfo", AUD])
    assert auth.authenticate({"authorization": f"bearer   {tok} "})["sub"] == "user-123"


# ---------------------------------------------------------------------------------------------
# failures


@pytest.fixture(scope="module")
def hs():
    return authn(JWT_SECRET=SECRET)


@pytest.fixture(scope="module")
def rs(rsa_key):
    return authn(JWT_PUBLIC_KEY=_pem(rsa_key.public_key()))


def test_no_token(hs):
    err = fails(hs, {}, "TokenMissing")
    assert err.headers == {"WWW-Authenticate": 'Bearer realm="ossdirect"'}
    assert isinstance(err, ApiError)
    fails(hs, {"authorization": "   "}, "TokenMissing")


def test_not_bearer(hs):
    err = fails(hs, {"authorization": "Basic dXNlcjpwYXNz"}, "TokenMissing")
    assert err.headers["WWW-Authenticate"] == 'Bearer realm="ossdirect"'
    fails(hs, {"authorization": token(SECRET, "HS256")}, "TokenMissing")  # token without a scheme


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer a.b", "Bearer a.b.c.d.e", "Bearer ey!.x.y",
                                   "Bearer a.b.c, Bearer d.e.f", "Bearer " + "a" * 20000 + ".b.c",
                                   "Bearer bm90IGpzb24.e30.c2ln"])
def test_malformed(hs, value):
    err = fails(hs, {"authorization": value}, "TokenMalformed")
    assert err.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token", error_description="')


def test_signed_but_malformed_payload(hs):
    # the signature is checked before the payload is parsed; a validly signed non-JSON payload is malformed
    head = b64({"alg": "HS256"})
    body = b64(b"not json")
    sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    fails(hs, bearer(f"{head}.{body}.{b64(sig)}"), "TokenMalformed")
    fails(hs, bearer(f"{head}.bm90IGpzb24.c2ln"), "InvalidTokenSignature")
    fails(hs, bearer(raw_hs256({"alg": "HS256"}, claims(exp="tomorrow"), SECRET.encode())), "TokenMalformed")


def test_expired(hs):
    now = int(time.time())
    err = fails(hs, bearer(token(SECRET, "HS256", iat=now - 600, exp=now - 100)), "TokenExpired")
    assert err.headers == {
        "WWW-Authenticate": 'Bearer error="invalid_token", error_description="the token has expired"'}


def test_nbf_in_future(hs):
    fails(hs, bearer(token(SECRET, "HS256", nbf=int(time.time()) + 120)), "TokenNotYetValid")
    fails(hs, bearer(token(SECRET, "HS256", iat=int(time.time()) + 120)), "TokenNotYetValid")


def test_within_leeway_ok(hs):
    now = int(time.time())
    assert hs.authenticate(bearer(token(SECRET, "HS256", exp=now - 10, nbf=now + 10, iat=now + 10)))
    strict = authn(JWT_SECRET=SECRET, JWT_LEEWAY_SECONDS="0")
    fails(strict, bearer(token(SECRET, "HS256", exp=now - 10)), "TokenExpired")


def test_wrong_audience(hs):
    fails(hs, bearer(token(SECRET, "HS256", aud="someone-else")), "InvalidAudience")
    fails(hs, bearer(token(SECRET, "HS256", aud=["a", "b"])), "InvalidAudience")
    fails(hs, bearer(token(SECRET, "HS256", aud=AUD + "x")), "InvalidAudience")  # exact, not prefix


def test_wrong_issuer(hs):
    fails(hs, bearer(token(SECRET, "HS256", iss="https://evil.example.com/")), "InvalidIssuer")
    fails(hs, bearer(token(SECRET, "HS256", iss=ISS.rstrip("/"))), "InvalidIssuer")  # exact match
    fails(hs, bearer(token(SECRET, "HS256", iss="https://issuer.example.com")), "InvalidIssuer")


def test_tampered_payload(hs, rs, rsa_key):
    for auth, tok in ((hs, token(SECRET, "HS256")), (rs, token(rsa_key, "RS256"))):
        head, _, sig = tok.split(".")
        forged = b64(claims(sub="admin"))
        fails(auth, bearer(f"{head}.{forged}.{sig}"), "InvalidTokenSignature")
    fails(hs, bearer(token("another-secret-of-sufficient-length-000", "HS256")), "InvalidTokenSignature")


def test_alg_none(hs, rs):
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    fails(hs, bearer(unsigned), "AlgorithmNotAllowed")
    fails(rs, bearer(unsigned), "AlgorithmNotAllowed")
    fails(hs, bearer(f"{b64({'alg': 'None'})}.{b64(claims())}."), "AlgorithmNotAllowed")
    fails(hs, bearer(f"{b64({'typ': 'JWT'})}.{b64(claims())}.c2ln"), "AlgorithmNotAllowed")  # no alg at all


def test_hs_rs_confusion(rs, rsa_key, jwks):
    pem = _pem(rsa_key.public_key())
    for secret in (pem.encode(), pem.strip().encode()):
        forged = raw_hs256({"alg": "HS256", "typ": "JWT"}, claims(sub="admin"), secret)
        fails(rs, bearer(forged), "AlgorithmNotAllowed")
    # the same via JWKS: the JWK's bytes as an HMAC secret get nowhere either
    via_jwks = authn(JWT_JWKS_URL=jwks.url)
    forged = raw_hs256({"alg": "HS256", "kid": "k1"}, claims(sub="admin"), json.dumps(jwks.keys[0]).encode())
    fails(via_jwks, bearer(forged), "AlgorithmNotAllowed")
    assert jwks.fetches == 0  # refused before any key lookup


def test_token_alg_not_in_allowed_list(rsa_key):
    auth = authn(JWT_PUBLIC_KEY=_pem(rsa_key.public_key()), JWT_ALGORITHMS="RS256")
    fails(auth, bearer(token(rsa_key, "RS512")), "AlgorithmNotAllowed")
    fails(auth, bearer(token(rsa_key, "PS256")), "AlgorithmNotAllowed")
    hs512 = authn(JWT_SECRET=SECRET)
    fails(hs512, bearer(token("y" * 64, "HS512")), "AlgorithmNotAllowed")


def test_missing_claims(hs):
    for name in ("sub", "exp", "iss", "aud"):
        err = fails(hs, bearer(token(SECRET, "HS256", **{name: None})), "MissingClaim")
        assert name in err.message
    fails(hs, bearer(token(SECRET, "HS256", sub="")), "MissingClaim")
    fails(hs, bearer(raw_hs256({"alg": "HS256"}, claims(sub=12345), SECRET.encode())), "MissingClaim")


def test_messages_never_name_the_secret_or_key(hs, rs, rsa_key):
    cases = [(hs, bearer(token("x" * 40, "HS256"))), (hs, bearer(token(SECRET, "HS256", aud="z"))),
             (rs, bearer(token(rsa_key, "RS256", kid="secret-kid-name", iss="nope")))]
    pem = _pem(rsa_key.public_key())
    for auth, headers in cases:
        with pytest.raises(AuthError) as info:
            auth.authenticate(headers)
        text = info.value.message + json.dumps(info.value.headers)
        assert SECRET not in text and "secret-kid-name" not in text and pem[30:60] not in text


# ---------------------------------------------------------------------------------------------
# JWKS: caching, rotation, rate limit, outages


def test_known_kid_uses_cache(rsa_key, jwks):
    auth = authn(JWT_JWKS_URL=jwks.url)
    auth.authenticate(bearer(token(rsa_key, "RS256", kid="k1")))
    assert jwks.fetches == 1
    toks = [token(rsa_key, "RS256", kid="k1", sub=f"user-{i}") for i in range(100)]
    for i, tok in enumerate(toks):
        assert auth.authenticate(bearer(tok))["sub"] == f"user-{i}"
    assert jwks.fetches == 1  # zero fetches across 100 requests


def test_unknown_kid_refreshes_once_then_rate_limits(rsa_key, rsa_key2, jwks):
    settings = load_auth_settings(env(JWT_JWKS_URL=jwks.url))
    settings.jwks_min_refresh_seconds = 0.3
    auth = Authenticator(settings)
    auth.authenticate(bearer(token(rsa_key, "RS256", kid="k1")))
    assert jwks.fetches == 1
    time.sleep(0.35)
    err = fails(auth, bearer(token(rsa_key2, "RS256", kid="unknown-1")), "UnknownSigningKey")
    assert jwks.fetches == 2  # exactly one refresh
    assert "unknown-1" not in err.message
    fails(auth, bearer(token(rsa_key2, "RS256", kid="unknown-2")), "UnknownSigningKey")
    assert jwks.fetches == 2  # a second unknown kid within the interval: no fetch
    for i in range(50):  # a flood of random kids never turns into fetches
        fails(auth, bearer(token(rsa_key2, "RS256", kid=f"r{i}")), "UnknownSigningKey")
    assert jwks.fetches == 2
    assert auth.authenticate(bearer(token(rsa_key, "RS256", kid="k1")))  # known kid still fine


def test_unknown_kid_right_after_load_does_not_fetch(rsa_key, rsa_key2, jwks):
    auth = authn(JWT_JWKS_URL=jwks.url)  # default interval (30 s)
    auth.authenticate(bearer(token(rsa_key, "RS256", kid="k1")))
    fails(auth, bearer(token(rsa_key2, "RS256", kid="nope")), "UnknownSigningKey")
    assert jwks.fetches == 1


def test_key_rotation_is_picked_up(rsa_key, rsa_key2, jwks):
    settings = load_auth_settings(env(JWT_JWKS_URL=jwks.url))
    settings.jwks_min_refresh_seconds = 0.2
    auth = Authenticator(settings)
    auth.authenticate(bearer(token(rsa_key, "RS256", kid="k1")))
    jwks.keys = [jwk_of(rsa_key2, "k2", "RS256")]  # the issuer rotates: k1 gone, k2 new
    time.sleep(0.25)
    assert auth.authenticate(bearer(token(rsa_key2, "RS256", kid="k2")))["sub"] == "user-123"
    assert jwks.fetches == 2
    fails(auth, bearer(token(rsa_key, "RS256", kid="k1")), "UnknownSigningKey")  # dropped with the refresh


def test_jwks_down_is_503(rsa_key):
    server = JwksServer()
    url = server.url
    server.close()  # nothing listens there any more: connection refused
    auth = authn(JWT_JWKS_URL=url)
    err = fails(auth, bearer(token(rsa_key, "RS256", kid="k1")), "AuthKeysUnavailable", status=503)
    assert isinstance(err, ApiError) and "WWW-Authenticate" not in err.headers
    fails(auth, bearer(token(rsa_key, "RS256", kid="k1")), "AuthKeysUnavailable", status=503)
    assert auth.jwks_fetches == 1  # failures back off too


def test_jwks_http_error_and_garbage_are_503(rsa_key, jwks):
    jwks.status = 500
    fails(authn(JWT_JWKS_URL=jwks.url), bearer(token(rsa_key, "RS256", kid="k1")), "AuthKeysUnavailable", 503)
    jwks.status = 200
    jwks.keys = [{"kty": "oct", "k": b64(SECRET.encode()), "kid": "k1"}]  # symmetric keys are never taken
    fails(authn(JWT_JWKS_URL=jwks.url), bearer(token(rsa_key, "RS256", kid="k1")), "AuthKeysUnavailable", 503)


class _Redirector:
    """A loopback server answering every GET with ``status`` and ``Location: <location>`` (counting them)."""

    def __init__(self, location, status=302):
        self.hits, outer = 0, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                self.send_response(status)
                self.send_header("Location", location(self.path) if callable(location) else location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_jwks_redirect_to_plain_http_is_refused_without_a_request(rsa_key2, status):
    """Whoever answers the JWKS URL cannot downgrade the key fetch to a channel an attacker can rewrite: a
    redirect to http:// (anything but the loopback names) is refused before it is followed. The attacker's
    http server (on 127.0.0.2, which stays on this machine but is not a loopback name to the check) serves
    its own key, and a token signed with that key is refused; the server never sees a request."""
    attacker = JwksServer([jwk_of(rsa_key2, "k1", "RS256")])
    attacker.httpd.shutdown()  # rebind it on 127.0.0.2
    attacker.httpd.server_close()
    attacker.httpd = ThreadingHTTPServer(("127.0.0.2", 0), attacker.httpd.RequestHandlerClass)
    attacker.httpd.daemon_threads = True
    threading.Thread(target=attacker.httpd.serve_forever, args=(0.02,), daemon=True).start()
    hop = _Redirector(f"http://127.0.0.2:{attacker.httpd.server_address[1]}{attacker.path}", status)
    try:
        auth = authn(JWT_JWKS_URL=hop.url)
        err = fails(auth, bearer(token(rsa_key2, "RS256", kid="k1")), "AuthKeysUnavailable", 503)
        assert hop.hits == 1 and attacker.fetches == 0, err.message
    finally:
        hop.close()
        attacker.close()


def test_a_jwks_redirect_loop_ends_after_a_few_hops_and_a_loopback_hop_is_followed(rsa_key, jwks):
    loop = _Redirector(lambda path: path)  # to itself, forever
    hop = _Redirector(jwks.url)  # loopback to loopback (local stand-ins): followed
    try:
        fails(authn(JWT_JWKS_URL=loop.url), bearer(token(rsa_key, "RS256", kid="k1")), "AuthKeysUnavailable", 503)
        assert 2 <= loop.hits <= 5  # bounded, not until the timeout
        assert authn(JWT_JWKS_URL=hop.url).authenticate(bearer(token(rsa_key, "RS256", kid="k1")))["sub"] == "user-123"
        assert hop.hits == 1 and jwks.fetches == 1
    finally:
        loop.close()
        hop.close()


def test_jwks_timeout_is_short(rsa_key, jwks):
    jwks.delay = 1.0
    settings = load_auth_settings(env(JWT_JWKS_URL=jwks.url))
    assert settings.jwks_timeout == 2.0
    settings.jwks_timeout = 0.2
    started = time.monotonic()
    fails(Authenticator(settings), bearer(token(rsa_key, "RS256", kid="k1")), "AuthKeysUnavailable", 503)
    assert time.monotonic() - started < 0.9


def test_jwks_outage_after_load_keeps_cached_keys(rsa_key, rsa_key2, jwks):
    settings = load_auth_settings(env(JWT_JWKS_URL=jwks.url))
    settings.jwks_min_refresh_seconds = 0.05
    settings.jwks_max_age_seconds = 0.1
    auth = Authenticator(settings)
    auth.authenticate(bearer(token(rsa_key, "RS256", kid="k1")))
    jwks.status = 503
    time.sleep(0.15)  # cached set is now "old": a refetch is tried, fails, the cache stays
    assert auth.authenticate(bearer(token(rsa_key, "RS256", kid="k1")))["sub"] == "user-123"
    assert jwks.fetches == 2
    fails(auth, bearer(token(rsa_key2, "RS256", kid="k9")), "UnknownSigningKey")


def test_jwks_key_type_and_alg_must_match_token(rsa_key, ec_key, jwks):
    jwks.keys = [jwk_of(rsa_key, "rsa", "RS256"), jwk_of(ec_key, "ec", "ES256")]
    auth = authn(JWT_JWKS_URL=jwks.url, JWT_ALGORITHMS="RS256,RS512,ES256")
    assert auth.authenticate(bearer(token(ec_key, "ES256", kid="ec")))
    fails(auth, bearer(token(rsa_key, "RS512", kid="rsa")), "AlgorithmNotAllowed")  # JWK says RS256
    forged = token(ec_key, "ES256", kid="rsa")  # an ES256 token pointing at the RSA key
    fails(auth, bearer(forged), "AlgorithmNotAllowed")


def test_jwks_token_without_kid(rsa_key, rsa_key2, jwks):
    auth = authn(JWT_JWKS_URL=jwks.url)
    assert auth.authenticate(bearer(token(rsa_key, "RS256")))  # one RSA key published: unambiguous
    jwks.keys.append(jwk_of(rsa_key2, "k2", "RS256"))
    settings = load_auth_settings(env(JWT_JWKS_URL=jwks.url))
    fails(Authenticator(settings), bearer(token(rsa_key, "RS256")), "UnknownSigningKey")  # ambiguous


def test_jwks_single_key_without_kid(rsa_key, jwks):
    only = jwk_of(rsa_key, "x", "RS256")
    del only["kid"]
    jwks.keys = [only]
    auth = authn(JWT_JWKS_URL=jwks.url)
    assert auth.authenticate(bearer(token(rsa_key, "RS256", kid="whatever")))
    assert auth.authenticate(bearer(token(rsa_key, "RS256")))


def test_token_header_key_pointers_are_ignored(rsa_key2, jwks):
    auth = authn(JWT_JWKS_URL=jwks.url)
    evil = jwk_of(rsa_key2, "k1", "RS256")
    tok = token(rsa_key2, "RS256", kid="k1", headers={"jwk": evil, "jku": "http://127.0.0.1:1/evil.json"})
    fails(auth, bearer(tok), "InvalidTokenSignature")


def test_concurrent_cold_start_fetches_once(rsa_key, jwks):
    jwks.delay = 0.1
    auth = authn(JWT_JWKS_URL=jwks.url)
    tok = token(rsa_key, "RS256", kid="k1")
    results = []
    threads = [threading.Thread(target=lambda: results.append(auth.authenticate(bearer(tok))["sub"]))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["user-123"] * 8 and jwks.fetches == 1


# ---------------------------------------------------------------------------------------------
# provider-shaped tokens


def test_auth0(rsa_key, jwks):
    # RS256 access token for an API: iss is the tenant URL with a trailing slash, aud the API
    # identifier (often with the /userinfo audience too when openid scope was asked for).
    iss = "https://tenant.auth0.com/"
    auth = authn(JWT_JWKS_URL=jwks.url, JWT_ISSUER=iss, JWT_AUDIENCE="https://api.example.com")
    tok = token(rsa_key, "RS256", kid="k1", headers={"typ": "JWT"}, iss=iss, sub="google-oauth2|1034567",
                aud=["https://api.example.com", "https://tenant.auth0.com/userinfo"], azp="SPAclientid123",
                scope="openid profile upload:create")
    got = auth.authenticate(bearer(tok))
    assert got["sub"] == "google-oauth2|1034567"
    assert identity_segment(got["sub"]) == "google-oauth2|1034567"
    fails(auth, bearer(token(rsa_key, "RS256", kid="k1", iss="https://tenant.auth0.com")), "InvalidIssuer")


def test_clerk(rsa_key, jwks):
    # Clerk session tokens: RS256, iss = Frontend API URL, azp = the page origin; aud only when
    # added through session-token customization or a JWT template (we require it).
    iss = "https://clerk.example.dev"
    auth = authn(JWT_JWKS_URL=jwks.url, JWT_ISSUER=iss, JWT_AUDIENCE="ossdirect")
    now = int(time.time())
    tok = token(rsa_key, "RS256", kid="k1", iss=iss, aud="ossdirect", sub="user_2abcDEF123",
                azp="https://app.example.com",
                sid="sess_2xyz", nbf=now - 5, exp=now + 60, v=2)
    got = auth.authenticate(bearer(tok))
    assert got["azp"] == "https://app.example.com" and identity_segment(got["sub"]) == "user_2abcDEF123"
    fails(auth, bearer(token(rsa_key, "RS256", kid="k1", iss=iss, aud=None, azp="https://app.example.com")),
          "MissingClaim")  # a default Clerk token without aud


def test_supabase_legacy_hs256():
    iss = "https://abcdefghijklmnop.supabase.co/auth/v1"
    jwt_secret = "super-secret-jwt-token-with-at-least-32-characters-long"
    auth = authn(JWT_SECRET=jwt_secret, JWT_ISSUER=iss, JWT_AUDIENCE="authenticated")
    sub = "8f9b4a3e-2c1d-4e5f-9a8b-7c6d5e4f3a2b"
    got = auth.authenticate(bearer(token(jwt_secret, "HS256", iss=iss, aud="authenticated", sub=sub,
                                         role="authenticated", aal="aal1", session_id="s1", is_anonymous=False)))
    assert identity_segment(got["sub"]) == sub
    fails(auth, bearer(token(jwt_secret, "HS256", iss=iss, aud="anon", sub=sub)), "InvalidAudience")


def test_supabase_asymmetric_jwks(ec_key):
    # the newer signing keys: ES256 (or RS256) published at <project>/auth/v1/.well-known/jwks.json
    server = JwksServer([jwk_of(ec_key, "6a8f1c2e-0000-4000-8000-000000000001", "ES256")],
                        path="/auth/v1/.well-known/jwks.json")
    try:
        iss = "https://abcdefghijklmnop.supabase.co/auth/v1"
        auth = authn(JWT_JWKS_URL=server.url, JWT_ISSUER=iss, JWT_AUDIENCE="authenticated")
        tok = token(ec_key, "ES256", kid="6a8f1c2e-0000-4000-8000-000000000001", iss=iss, aud="authenticated",
                    sub="8f9b4a3e-2c1d-4e5f-9a8b-7c6d5e4f3a2b", role="authenticated")
        assert auth.authenticate(bearer(tok))["role"] == "authenticated"
    finally:
        server.close()


def test_firebase(rsa_key):
    server = JwksServer([jwk_of(rsa_key, "a1b2c3d4e5f6", "RS256")],
                        path="/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com")
    try:
        project = "my-project-123"
        iss = f"https://securetoken.google.com/{project}"
        auth = authn(JWT_JWKS_URL=server.url, JWT_ISSUER=iss, JWT_AUDIENCE=project)
        now = int(time.time())
        uid = "Xk893u23H9SI893kd8s7d6f5g4h3"
        tok = token(rsa_key, "RS256", kid="a1b2c3d4e5f6", iss=iss, aud=project, sub=uid, user_id=uid,
                    auth_time=now - 30, exp=now + 3600,
                    firebase={"identities": {"email": ["u@example.com"]}, "sign_in_provider": "password"})
        assert auth.authenticate(bearer(tok))["user_id"] == uid
        fails(auth, bearer(token(rsa_key, "RS256", kid="a1b2c3d4e5f6", iss=iss, aud="other-project")),
              "InvalidAudience")
    finally:
        server.close()


def test_alibaba_cloud_idaas(rsa_key):
    server = JwksServer([jwk_of(rsa_key, "KEY_abc123", "RS256")], path="/api/v2/iauths_system/oauth2/jwks")
    try:
        iss = "https://abc123.aliyunidaas.com/api/v2/iauths_system/oauth2"
        client_id = "app_mkv7rgt4d7i4u7zqtzev2mxxxx"
        auth = authn(JWT_JWKS_URL=server.url, JWT_ISSUER=iss, JWT_AUDIENCE=client_id)
        tok = token(rsa_key, "RS256", kid="KEY_abc123", headers={"typ": "JWT"}, iss=iss, aud=client_id,
                    sub="user_d6sbsuumeta4h66ec3il7yxxxx", name="Zhang San", preferred_username="zhangsan")
        got = auth.authenticate(bearer(tok))
        assert identity_segment(got["sub"]) == "user_d6sbsuumeta4h66ec3il7yxxxx"
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------
# identity_segment


@pytest.mark.parametrize("value", ["user-123", "auth0|5f7c8ec7c33c6c004bbafe82", "google-oauth2|1034567",
                                   "user_2abcDEF123", "8f9b4a3e-2c1d-4e5f-9a8b-7c6d5e4f3a2b", "a.b@example.com",
                                   "用户42", "Ünïcödé"])
def test_identity_segment_keeps_safe_values(value):
    assert identity_segment(value) == value


def _check_segment(seg):
    assert seg and len(seg.encode()) <= 64
    assert "/" not in seg and "\\" not in seg and ".." not in seg and not seg.startswith(".")
    assert unicodedata.normalize("NFC", seg) == seg
    for ch in seg:
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs"), repr(ch)


@pytest.mark.parametrize("value", ["../etc/passwd", "..", ".", "...", "a/b", "/", "a\\b", "..\\..\\x", ".hidden",
                                   "a\x00b", "tab\there", "new\nline", "\u202egnp.exe", "a\u200fb\u2066c\u2069",
                                   "zero\u200bwidth", "a b", "~", "a~b", "", "e\u0301", "\ud800", "\u3000",
                                   "x" * 65, "é" * 40, "💥" * 30, "a/" * 100])
def test_identity_segment_sanitizes(value):
    seg = identity_segment(value)
    _check_segment(seg)
    assert seg != value and "~" in seg  # changed or too long: it carries a hash
    assert identity_segment(value) == seg  # deterministic


def test_identity_segment_examples():
    assert identity_segment("../x").startswith("__x~")
    assert identity_segment("a/b").startswith("a_b~")
    assert identity_segment("\u202egnp.exe").startswith("_gnp.exe~")
    assert identity_segment("x" * 64) == "x" * 64
    long = identity_segment("x" * 65)
    assert long.startswith("x" * 39 + "~") and len(long) == 64
    assert identity_segment(12345) == "12345"
    with pytest.raises(TypeError):
        identity_segment(None)


def test_identity_segment_never_collides():
    values = ["a/b", "a\\b", "a_b", "a b", "a~b", "a..b", "a_b~", "a\u202eb", "e\u0301", "é", "",
              "_", "..", "._", "x" * 100, "x" * 101, "x" * 64, "x" * 65, "/", "\\", "~", "_~"]
    values += [f"user{i}/" for i in range(200)] + [f"user{i}_" for i in range(200)]
    values += ["A" * 50 + f"{i:020d}" for i in range(200)]  # long values sharing a 39-char head
    segments = [identity_segment(v) for v in values]
    assert len(set(values)) == len(values)
    assert len(set(segments)) == len(segments)
    # an untouched value never contains the hash separator, so it cannot mimic a hashed one
    hashed = identity_segment("a/b")
    assert identity_segment(hashed) != hashed
