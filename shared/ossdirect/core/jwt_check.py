"""The bearer-token check itself (``OSSDIRECT_AUTH=jwt`` only): PyJWT, the cached JWKS, the token's
header. Imported only when sign-in is on, so an anonymous function never compiles or loads it; the
settings, the rules and the error answers live in :mod:`ossdirect.auth`."""

from __future__ import annotations

import base64
import json
import threading
import time
from urllib.parse import urlsplit

from .auth import (MAX_JWKS_BYTES, MAX_TOKEN_CHARS, MIN_RSA_BITS, PUBLIC_KEY_ALGORITHMS, REQUIRED_CLAIMS,
                   _LOOPBACK_HOSTS, _TOKEN_RE, _invalid, _key_family, _keys_unavailable, _missing, alg_fits_key, log)
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping

    from .auth import AuthSettings

# ---------------------------------------------------------------------------------------------
# verification


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
        import jwt  # only here: auth=none never pays for PyJWT

        self._jwt = jwt
        self._errors = jwt.exceptions
        # PyJWT >= 2.10 checks that sub is a string; older ones lack the class (sub is checked below anyway)
        self._invalid_subject = getattr(jwt.exceptions, "InvalidSubjectError", _NeverRaised)
        self._options = {"require": list(REQUIRED_CLAIMS), "verify_signature": True, "verify_exp": True,
                         "verify_nbf": True, "verify_iat": True, "verify_aud": True, "verify_iss": True}
        self._lock = threading.Lock()
        self._jwks: dict[str | None, tuple[Any, str | None]] = {}  # kid -> (public key, jwk "alg" or None); kid None for keys without one
        self._jwks_loaded_at: float | None = None  # monotonic time of the last successful fetch
        self._last_attempt: float | None = None  # monotonic time of the last fetch attempt
        self._last_attempt_ok = False
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
        jwt, errors, s = self._jwt, self._errors, self.settings
        header = _header(token)  # only to pick alg and kid; PyJWT re-parses and checks everything below
        alg = header.get("alg")
        if type(alg) is not str or alg not in s.algorithms:
            raise _invalid("AlgorithmNotAllowed", "the token is signed with an algorithm this service does not accept")
        key = self._static_key if self._static_key is not None else self._jwks_key(header, alg)
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], audience=s.audience, issuer=s.issuer,
                                leeway=s.leeway, options=self._options)
        except errors.ExpiredSignatureError:
            raise _invalid("TokenExpired", "the token has expired") from None
        except errors.ImmatureSignatureError:
            raise _invalid("TokenNotYetValid", "the token is not valid yet") from None
        except errors.InvalidAudienceError:
            raise _invalid("InvalidAudience", "the token is not meant for this service") from None
        except errors.InvalidIssuerError:
            raise _invalid("InvalidIssuer", "the token comes from an issuer this service does not trust") from None
        except errors.MissingRequiredClaimError as exc:
            claim = exc.claim if exc.claim in REQUIRED_CLAIMS else "a required"
            raise _invalid("MissingClaim", f"the token lacks the {claim} claim") from None
        except self._invalid_subject:
            raise _invalid("MissingClaim", "the token sub claim must be a non-empty string") from None
        except errors.InvalidAlgorithmError:
            raise _invalid("AlgorithmNotAllowed",
                           "the token is signed with an algorithm this service does not accept") from None
        except (errors.InvalidSignatureError, errors.InvalidKeyError):
            raise _invalid("InvalidTokenSignature", "the token signature is invalid") from None
        except (errors.InvalidTokenError, ValueError, TypeError, OverflowError):
            raise _invalid("TokenMalformed", "the token is not a well-formed JWT") from None
        sub = claims.get("sub")
        if type(sub) is not str or not sub:
            raise _invalid("MissingClaim", "the token sub claim must be a non-empty string")
        if not _scalar_strings(claims):
            # JSON may carry lone surrogates (\ud800); they cannot be encoded into keys, logs or records
            raise _invalid("TokenMalformed", "the token's claims are not valid Unicode text")
        return claims

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
            key = self._jwt.PyJWK(jwk).key
        except Exception:  # noqa: BLE001 - any malformed key is skipped, never fatal
            return None
        if _key_family(key) is None or (_key_family(key) == "RSA" and key.key_size < MIN_RSA_BITS):
            return None
        return key, alg


class _JwksError(OssdirectError):
    pass


class _NeverRaised(Exception):
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


def _header(token: str) -> dict[str, Any]:
    segment = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise _invalid("TokenMalformed", "the token is not a well-formed JWT")
    return header


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
