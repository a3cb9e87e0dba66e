"""The bearer-token check itself (``OSSDIRECT_AUTH=jwt`` only): the compact JWS, the claims, the cached
JWKS. Imported only when sign-in is on, so an anonymous function never compiles or loads it; the
settings, the rules and the error answers live in :mod:`ossdirect.auth`.

HS* and RS* tokens (what nearly every identity provider issues) are checked in the standard library:
PyJWT with ``cryptography`` costs a cold start over 100 ms to import. The checks are PyJWT's, in its
order, and ``tests/test_jwt_equivalence.py`` runs every case through both and compares the answers;
PS*, ES* and EdDSA still go through PyJWT's algorithm objects, imported on first use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from urllib.parse import urlsplit

from .auth import (MAX_JWKS_BYTES, MAX_TOKEN_CHARS, MIN_RSA_BITS, PUBLIC_KEY_ALGORITHMS, REQUIRED_CLAIMS,
                   _LOOPBACK_HOSTS, _TOKEN_RE, _invalid, _key_family, _keys_unavailable, _missing, alg_fits_key, log)
from .. import rsa
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping

    from .auth import AuthSettings

# ---------------------------------------------------------------------------------------------
# verification

VERIFIED_CACHE_SIZE = 512  # tokens remembered as verified (32-byte digests and their claims)


class Authenticator:
    """Checks ``Authorization: Bearer <jwt>``; build once per instance (cold start).

    ``authenticate(headers)`` takes a dict with lower-case header names and returns the verified
    claims (a dict), ``None`` when auth is off, or raises :class:`AuthError`. Thread-safe.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self.jwks_fetches = 0  # attempts, successful or not (observability and tests)
        if not self.enabled:
            return
        self._lock = threading.Lock()
        self._jwks: dict[str | None, tuple[Any, str | None]] = {}  # kid -> (public key, jwk "alg" or None); kid None for keys without one
        self._jwks_loaded_at: float | None = None  # monotonic time of the last successful fetch
        self._last_attempt: float | None = None  # monotonic time of the last fetch attempt
        self._last_attempt_ok = False
        self._verified: dict[bytes, tuple[float, dict[str, Any]]] = {}  # sha256(token) -> (key generation, claims)
        self._static_key: Any
        if settings.key_kind == "secret":
            self._static_key = settings.secret
        elif settings.key_kind == "pem":
            self._static_key = settings.public_key
        else:
            self._static_key = None

    # -- public API --------------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str] | None) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        token = _bearer_token(headers)
        s = self.settings
        # A browser sends one token with every form and part request: a token verified under the same
        # keys is not verified again (its signature and claims cannot have changed), only its expiry.
        digest = hashlib.sha256(token.encode("ascii")).digest()
        hit = self._verified.get(digest)
        if hit is not None and hit[0] == self._key_generation():
            if _numeric_date(hit[1], "exp") <= time.time() - s.leeway:
                raise _invalid("TokenExpired", "the token has expired")
            return dict(hit[1])
        h64, p64, s64 = token.split(".")  # _bearer_token matched three base64url segments
        header = _json_object(_b64url(h64))
        alg = header.get("alg")
        if type(alg) is not str or alg not in s.algorithms:
            raise _invalid("AlgorithmNotAllowed", "the token is signed with an algorithm this service does not accept")
        if ("kid" in header and type(header["kid"]) is not str) or not _crit_understood(header) \
                or header.get("b64", True) is False:
            raise _malformed()  # b64=false means a detached payload: never ours
        key = self._static_key if self._static_key is not None else self._jwks_key(header, alg)
        payload, signature = _b64url(p64), _b64url(s64)
        if not _signature_ok(alg, key, (h64 + "." + p64).encode("ascii"), signature):
            raise _invalid("InvalidTokenSignature", "the token signature is invalid")
        claims = _json_object(payload)
        _check_claims(claims, s.issuer, s.audience, s.leeway)
        generation = self._key_generation()
        if generation is not None:
            with self._lock:
                while len(self._verified) >= VERIFIED_CACHE_SIZE:
                    self._verified.pop(next(iter(self._verified)))  # the oldest first (dicts keep order)
                self._verified[digest] = (generation, dict(claims))
        return claims

    def _key_generation(self) -> float | None:
        """Which keys a verification used: 0 for a configured secret or PEM key; for a JWKS, when the
        set was fetched, and None once it is due for a refetch (so a removed key stops working then)."""
        if self._static_key is not None:
            return 0.0
        loaded = self._jwks_loaded_at
        if loaded is None or time.monotonic() - loaded > self.settings.jwks_max_age_seconds:
            return None
        return loaded

    # -- JWKS --------------------------------------------------------------------------------

    def _jwks_key(self, header: dict[str, Any], alg: str) -> Any:
        kid = header.get("kid")
        if kid is not None and type(kid) is not str:
            raise _invalid("TokenMalformed", "the token is not a well-formed JWT")
        s = self.settings
        loaded = self._jwks_loaded_at
        if loaded is None or time.monotonic() - loaded > s.jwks_max_age_seconds:
            self._refresh()  # first use, or the cached set is old: refetch (rate-limited; keeps stale on failure)
        entry = self._lookup(kid, alg)
        if entry is None and self._jwks:
            if self._refresh():  # unknown kid: maybe the issuer rotated keys
                entry = self._lookup(kid, alg)
        if entry is None:
            if not self._jwks:
                raise _keys_unavailable()
            raise _invalid("UnknownSigningKey", "the token is signed with a key this service does not know")
        key, jwk_alg = entry
        if (jwk_alg is not None and jwk_alg != alg) or not alg_fits_key(alg, key):
            raise _invalid("AlgorithmNotAllowed", "the token is signed with an algorithm this service does not accept")
        return key

    def _lookup(self, kid: str | None, alg: str) -> Any:
        keys = self._jwks
        if kid is not None:
            entry = keys.get(kid)
            if entry is None and len(keys) == 1 and None in keys:
                entry = keys[None]  # a one-key JWKS that names no kid
            return entry
        # No kid: acceptable only when exactly one published key can verify this algorithm.
        fitting = [e for e in keys.values() if alg_fits_key(alg, e[0]) and e[1] in (None, alg)]
        return fitting[0] if len(fitting) == 1 else None

    def _refresh(self) -> bool:
        """Fetch the JWKS unless another fetch happened too recently. True when new keys were loaded."""
        s = self.settings
        with self._lock:
            now = time.monotonic()
            if self._last_attempt is not None:
                wait = s.jwks_min_refresh_seconds if self._last_attempt_ok else s.jwks_failure_backoff_seconds
                if now - self._last_attempt < wait:
                    return False
            self._last_attempt = now
            self.jwks_fetches += 1
            try:
                keys = self._fetch_jwks()
            except _JwksError as exc:
                self._last_attempt_ok = False
                log.warning(json.dumps({"auth": "jwks_fetch_failed", "url": s.jwks_url, "error": str(exc),
                                        "cached_keys": len(self._jwks)}))
                return False
            self._jwks, self._jwks_loaded_at, self._last_attempt_ok = keys, now, True
            return True

    def _fetch_jwks(self) -> dict[str | None, tuple[Any, str | None]]:
        import http.client
        import urllib.error
        import urllib.request

        s = self.settings
        request = urllib.request.Request(s.jwks_url, headers={"Accept": "application/json",
                                                               "User-Agent": "ossdirect-auth"})
        opener = urllib.request.build_opener(_redirect_handler_class())
        try:
            with opener.open(request, timeout=s.jwks_timeout) as response:
                if response.status != 200:
                    raise _JwksError(f"HTTP {response.status}")
                body = response.read(MAX_JWKS_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise _JwksError(f"HTTP {exc.code}") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError, timeouts, resets
            raise _JwksError(exc.__class__.__name__) from None
        if len(body) > MAX_JWKS_BYTES:
            raise _JwksError("JWKS document too large")
        try:
            doc = json.loads(body)
        except ValueError:
            raise _JwksError("JWKS is not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise _JwksError("JWKS has no keys list")
        keys = {}
        for jwk in doc["keys"]:
            parsed = self._parse_jwk(jwk)
            if parsed is not None:
                kid = jwk.get("kid")
                keys[kid if type(kid) is str else None] = parsed
        if not keys:
            raise _JwksError("JWKS has no usable signing key")
        return keys

    def _parse_jwk(self, jwk: Any) -> tuple[Any, str | None] | None:
        if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
            return None  # never "oct": a JWKS publishes public keys only
        if jwk.get("use", "sig") != "sig" or "d" in jwk:
            return None
        ops = jwk.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            return None
        alg = jwk.get("alg")
        if alg is not None and alg not in PUBLIC_KEY_ALGORITHMS:
            return None
        try:
            if jwk["kty"] == "RSA":  # the usual case (RS256), read here: no cryptography import
                key = rsa.from_jwk_numbers(jwk.get("n"), jwk.get("e"))
            else:
                import jwt  # EC and OKP keys: PyJWT builds the cryptography key

                key = jwt.PyJWK(jwk).key
        except Exception:  # noqa: BLE001 - any malformed key is skipped, never fatal
            return None
        if _key_family(key) is None or (_key_family(key) == "RSA" and key.key_size < MIN_RSA_BITS):
            return None
        return key, alg


class _JwksError(OssdirectError):
    pass


_redirect_handler = None


def _redirect_handler_class() -> Any:
    """An HTTPRedirectHandler that refuses redirects to anything but https (or loopback)."""
    global _redirect_handler
    if _redirect_handler is None:
        import urllib.request

        class HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
            max_redirections = 3

            def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                                 newurl: str) -> Any:
                parts = urlsplit(newurl)
                if parts.scheme != "https" and (parts.hostname or "") not in _LOOPBACK_HOSTS:
                    return None  # refuse a downgrade; the 3xx then surfaces as an HTTPError
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        _redirect_handler = HttpsOnlyRedirects
    return _redirect_handler


def _scalar_strings(value: object, depth: int = 0) -> bool:
    """True when every string in the claims (keys too) is made of Unicode scalar values only."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")  # strict UTF-8 refuses exactly the surrogates
        except UnicodeEncodeError:
            return False
        return True
    if depth > 32:
        return False
    if isinstance(value, dict):
        return all(_scalar_strings(k, depth + 1) and _scalar_strings(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_scalar_strings(v, depth + 1) for v in value)
    return True


def _malformed() -> Exception:
    return _invalid("TokenMalformed", "the token is not a well-formed JWT")


def _b64url(segment: str) -> bytes:
    """A JWS segment's bytes. The alphabet was checked with the token; like PyJWT, only the canonical
    encoding is accepted (no stray bits in the last character), so one token has one spelling."""
    if len(segment) % 4 == 1:
        raise _malformed()
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode("ascii"):
        raise _malformed()
    return raw


def _crit_understood(header: dict[str, Any]) -> bool:
    """RFC 7515 4.1.11, as PyJWT reads it: ``crit`` absent, or a non-empty list naming only ``b64``, present."""
    if "crit" not in header:
        return True
    crit = header["crit"]
    return type(crit) is list and bool(crit) and all(type(c) is str and c == "b64" and c in header for c in crit)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise _malformed()
    return value


_RSA_PKCS1_HASH = {"RS256": "sha256", "RS384": "sha384", "RS512": "sha512"}
_HMAC_HASH = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _signature_ok(alg: str, key: Any, signing_input: bytes, signature: bytes) -> bool:
    """Verify the JWS signature: HS* and RS* here in the standard library (ossdirect.rsa, proven equal
    to PyJWT in tests/test_jwt_equivalence.py); PS*, ES* and EdDSA through PyJWT's own algorithms."""
    if alg in _HMAC_HASH:
        return type(key) is bytes and hmac.compare_digest(hmac.new(key, signing_input, _HMAC_HASH[alg]).digest(),
                                                          signature)
    if alg in _RSA_PKCS1_HASH and isinstance(key, rsa.RsaPublicKey):
        return key.verify_pkcs1v15(signature, signing_input, _RSA_PKCS1_HASH[alg])
    import jwt  # the rarer algorithms pay PyJWT's import (with cryptography's) on first use

    if isinstance(key, rsa.RsaPublicKey):
        key = key.to_cryptography()
    from jwt.algorithms import get_default_algorithms

    algorithm = get_default_algorithms()[alg]
    try:
        return bool(algorithm.verify(signing_input, algorithm.prepare_key(key), signature))
    except (ValueError, TypeError, jwt.exceptions.InvalidKeyError):
        return False


def _numeric_date(claims: dict[str, Any], name: str) -> int:
    try:
        return int(claims[name])  # as PyJWT reads NumericDate: a number, or digits in a string
    except (ValueError, TypeError, OverflowError):
        raise _malformed() from None


def _check_claims(claims: dict[str, Any], issuer: str, audience: tuple[str, ...], leeway: int) -> None:
    """The registered claims, in PyJWT's order and with its answers (RFC 7519 section 4.1)."""
    for name in REQUIRED_CLAIMS:
        if claims.get(name) is None:
            raise _invalid("MissingClaim", f"the token lacks the {name} claim")
    now = time.time()
    if "iat" in claims and _numeric_date(claims, "iat") > now + leeway:
        raise _invalid("TokenNotYetValid", "the token is not valid yet")
    if "nbf" in claims and _numeric_date(claims, "nbf") > now + leeway:
        raise _invalid("TokenNotYetValid", "the token is not valid yet")
    if _numeric_date(claims, "exp") <= now - leeway:
        raise _invalid("TokenExpired", "the token has expired")
    if type(claims["iss"]) is not str or claims["iss"] != issuer:
        raise _invalid("InvalidIssuer", "the token comes from an issuer this service does not trust")
    aud = claims["aud"]
    if not aud:
        raise _invalid("MissingClaim", "the token lacks the aud claim")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or any(not isinstance(a, str) for a in audiences) \
            or all(a not in audiences for a in audience):
        raise _invalid("InvalidAudience", "the token is not meant for this service")
    sub = claims["sub"]
    if type(sub) is not str or not sub:
        raise _invalid("MissingClaim", "the token sub claim must be a non-empty string")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise _malformed()
    if not _scalar_strings(claims):
        # JSON may carry lone surrogates (\ud800); they cannot be encoded into keys, logs or records
        raise _malformed()


def _bearer_token(headers: Mapping[str, str] | None) -> str:
    value = (headers or {}).get("authorization", "")
    if type(value) is not str:
        value = str(value)
    value = value.strip()
    if not value:
        raise _missing("sign in first: send Authorization: Bearer <token>")
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "bearer":
        raise _missing("sign in first: send Authorization: Bearer <token>")
    token = rest.strip()
    if not token or len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.match(token):
        raise _invalid("TokenMalformed", "the token is not a well-formed JWT")
    return token
