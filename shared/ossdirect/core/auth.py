"""Sign-in check before signing: verify the caller's bearer JWT (``OSSDIRECT_AUTH=jwt``).

The ``OSSDIRECT_AUTH`` / ``OSSDIRECT_JWT_*`` variables are rows of the settings table
(:mod:`ossdirect.settings`, read once at cold start; :func:`load_auth_settings` reads them alone; bad
values raise one :class:`~ossdirect.settings.ConfigError` naming each variable), :class:`Authenticator` checks the
``Authorization: Bearer <token>`` header of each request, and :func:`identity_segment` turns a
verified ``sub`` into one safe OSS key segment.

Security rules kept here:

- the accepted algorithms come from configuration, never from the token; ``none`` is never
  accepted; HMAC and public-key algorithms never mix (a secret allows only HS*, a PEM key or a
  JWKS only RS*/PS*/ES*/EdDSA), so HS/RS key confusion is impossible;
- ``exp``, ``iss``, ``aud`` and ``sub`` are required; ``iss`` must match exactly and ``aud``
  must contain one of the configured audiences; ``nbf``/``iat``/``exp`` get a bounded leeway;
- token header fields that point at keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are ignored: keys
  come only from the configured secret, PEM or JWKS URL;
- the JWKS is fetched lazily (stdlib ``urllib``, 2 s timeout, 1 MiB cap), cached, refetched when
  older than ``jwks_max_age_seconds`` and otherwise only for an unknown ``kid``, at most once per
  ``jwks_min_refresh_seconds`` (random kids cannot make us fetch per request); when a refetch
  fails the cached keys stay in use, and with no cached key at all requests get 503
  ``AuthKeysUnavailable``;
- client-facing messages never name a key, a kid or the secret.

``import jwt`` (PyJWT) happens only when auth is ``jwt``: with ``OSSDIRECT_AUTH=none`` (the
default) this module costs the cold start nothing but itself.
"""

import base64
import hashlib
import json
import logging
import re
import unicodedata
from urllib.parse import urlsplit

from ..settings import AUTH_MODES, MAX_LEEWAY, PREFIX, ConfigError, section_names
from .forms import MAX_PAYLOAD_BYTES, Grant
from ..app.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping

log = logging.getLogger("ossdirect")

# Every variable load_auth_settings reads, without the prefix (public API; the settings table's auth rows).
AUTH_ENV_NAMES = section_names("auth")

MODES = AUTH_MODES
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
EDDSA_ALGORITHMS = ("EdDSA",)
PUBLIC_KEY_ALGORITHMS = RSA_ALGORITHMS + tuple(EC_ALGORITHMS) + EDDSA_ALGORITHMS
ALL_ALGORITHMS = HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS
_CANONICAL_ALG = {a.lower(): a for a in ALL_ALGORITHMS}
DEFAULT_SECRET_ALGORITHMS = ("HS256",)
DEFAULT_PUBLIC_ALGORITHMS = ("RS256", "ES256", "EdDSA")
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key must be at least as long as the hash
MIN_RSA_BITS = 2048
MAX_TOKEN_CHARS = 16 * 1024
MAX_JWKS_BYTES = 1024 * 1024
REALM = "ossdirect"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class AuthError(ApiError):
    """A sign-in failure the client sees (401, or 503 when the signing keys cannot be had).

    ``headers`` holds the response headers the handler should merge in (``WWW-Authenticate``
    for 401s, RFC 6750 section 3).
    """

    def __init__(self, status, code, message, headers=None):
        super().__init__(status, code, message)
        self.headers = dict(headers or {})


def _missing(message):
    return AuthError(401, "TokenMissing", message, {"WWW-Authenticate": f'Bearer realm="{REALM}"'})


def _invalid(code, message):
    # error_description is a quoted-string: the messages here are fixed ASCII without quotes.
    return AuthError(401, code, message,
                     {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'})


def _keys_unavailable():
    return AuthError(503, "AuthKeysUnavailable",
                     "the sign-in keys cannot be loaded right now; try again shortly", {"Retry-After": "5"})


# ---------------------------------------------------------------------------------------------
# settings


class AuthSettings:
    """Validated sign-in settings (see :func:`load_auth_settings`). The repr never shows the secret.

    ``key_kind`` is ``None`` (auth off), ``"secret"``, ``"pem"`` or ``"jwks"``. ``public_key`` is
    the loaded ``cryptography`` public key for ``pem``. The ``jwks_*`` tunables are not
    environment variables; they can be changed on the object before building the Authenticator.
    """

    __slots__ = (
        "mode", "key_kind", "jwks_url", "public_key", "secret", "issuer", "audience", "algorithms",
        "leeway", "jwks_timeout", "jwks_min_refresh_seconds", "jwks_failure_backoff_seconds",
        "jwks_max_age_seconds",
    )

    def __init__(self, mode="none", key_kind=None, jwks_url="", public_key=None, secret=b"", issuer="",
                 audience=(), algorithms=(), leeway=30, jwks_timeout=2.0, jwks_min_refresh_seconds=30.0,
                 jwks_failure_backoff_seconds=5.0, jwks_max_age_seconds=3600.0):
        self.mode, self.key_kind, self.jwks_url = mode, key_kind, jwks_url
        self.public_key, self.secret = public_key, secret
        self.issuer, self.audience, self.algorithms, self.leeway = issuer, tuple(audience), tuple(algorithms), leeway
        self.jwks_timeout = jwks_timeout
        self.jwks_min_refresh_seconds = jwks_min_refresh_seconds
        self.jwks_failure_backoff_seconds = jwks_failure_backoff_seconds
        self.jwks_max_age_seconds = jwks_max_age_seconds

    @property
    def enabled(self):
        return self.mode == "jwt"

    def __repr__(self):
        if not self.enabled:
            return "AuthSettings(mode='none')"
        key = {"secret": "secret=<hidden>", "pem": f"public_key=<{_key_description(self.public_key)}>",
               "jwks": f"jwks_url={self.jwks_url!r}"}[self.key_kind]
        return (f"AuthSettings(mode='jwt', {key}, issuer={self.issuer!r}, audience={self.audience!r}, "
                f"algorithms={self.algorithms!r}, leeway={self.leeway})")


def load_auth_settings(env: "Mapping[str, str] | None" = None) -> "AuthSettings":
    """Build :class:`AuthSettings` from ``OSSDIRECT_AUTH`` / ``OSSDIRECT_JWT_*`` or raise ConfigError
    (every problem at once: the rows and rules of :mod:`ossdirect.settings`)."""
    from ..settings import load_auth_section

    return load_auth_section(env)


def _jwks_url(url):
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not parts.netloc or parts.username or parts.password or parts.fragment:
        raise ConfigError(f"{PREFIX}JWT_JWKS_URL must be an https URL, got {url!r}")
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK_HOSTS):
        raise ConfigError(f"{PREFIX}JWT_JWKS_URL must be an https URL (http only on loopback), got {url!r}")
    return url


def _public_key(text):
    # Never echo the value: it is public, but a misplaced private key must not reach the logs.
    name = f"{PREFIX}JWT_PUBLIC_KEY"
    text = text.strip()
    if "\n" not in text and "\\n" in text:  # a PEM pasted into one line with literal \n
        text = text.replace("\\n", "\n")
    if "PRIVATE KEY" in text:
        raise ConfigError(f"{name} holds a private key; set the issuer's public key (PEM) instead")
    if not text.startswith("-----BEGIN "):
        raise ConfigError(f"{name} must be a PEM public key or certificate (-----BEGIN PUBLIC KEY-----)")
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        if text.startswith("-----BEGIN CERTIFICATE-----"):
            key = x509.load_pem_x509_certificate(text.encode()).public_key()
        else:
            key = load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        raise ConfigError(f"{name} could not be read as a PEM public key or certificate") from None
    kind = _key_family(key)
    if kind is None:
        raise ConfigError(f"{name} must be an RSA, EC (P-256/P-384/P-521) or Ed25519/Ed448 public key")
    if kind == "RSA" and key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"{name} is a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits are required")
    return key


def _secret(text):
    name = f"{PREFIX}JWT_SECRET"
    value = text.strip().encode("utf-8")
    if value.startswith(b"-----BEGIN") or value.startswith(b"ssh-"):
        raise ConfigError(f"{name} looks like a PEM or SSH key; put public keys in {PREFIX}JWT_PUBLIC_KEY")
    if len(value) < MIN_SECRET_BYTES:
        raise ConfigError(f"{name} must be at least {MIN_SECRET_BYTES} bytes long (got {len(value)})")
    return value


def _algorithms(raw, key_kind, public_key):
    name = f"{PREFIX}JWT_ALGORITHMS"
    if not raw:
        if key_kind == "secret":
            return DEFAULT_SECRET_ALGORITHMS
        if key_kind == "pem":
            fitting = tuple(a for a in DEFAULT_PUBLIC_ALGORITHMS if alg_fits_key(a, public_key))
            if fitting:
                return fitting
            # an EC key on P-384/P-521: the one algorithm that curve signs with
            return tuple(a for a in EC_ALGORITHMS if alg_fits_key(a, public_key))
        return DEFAULT_PUBLIC_ALGORITHMS
    algs = []
    for item in (a.strip() for a in raw.split(",")):
        if not item:
            continue
        if item.lower() == "none":
            raise ConfigError(f"{name} must not contain none (unsigned tokens are never accepted)")
        alg = _CANONICAL_ALG.get(item.lower())
        if alg is None:
            raise ConfigError(f"{name} has an unknown algorithm {item!r} (use {', '.join(ALL_ALGORITHMS)})")
        if alg not in algs:
            algs.append(alg)
    if not algs:
        raise ConfigError(f"{name} must list at least one algorithm")
    if key_kind == "secret":
        wrong = [a for a in algs if a not in HMAC_ALGORITHMS]
        if wrong:
            raise ConfigError(f"{name} lists {wrong[0]}, but {PREFIX}JWT_SECRET only verifies HS256/HS384/HS512")
    else:
        source = f"{PREFIX}JWT_PUBLIC_KEY" if key_kind == "pem" else f"{PREFIX}JWT_JWKS_URL"
        for a in algs:
            if a in HMAC_ALGORITHMS:
                raise ConfigError(f"{name} lists {a}, which needs a shared secret; {source} only verifies "
                                  f"public-key algorithms (HS/RS mixing is refused)")
            if key_kind == "pem" and not alg_fits_key(a, public_key):
                raise ConfigError(f"{name} lists {a}, which the {_key_description(public_key)} key in "
                                  f"{source} cannot verify")
    return tuple(algs)


def _key_family(key):
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC" if key.curve.name in EC_ALGORITHMS.values() else None
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "OKP"
    return None


def _key_description(key):
    family = _key_family(key)
    if family == "RSA":
        return f"RSA-{key.key_size}"
    if family == "EC":
        return f"EC {key.curve.name}"
    return type(key).__name__.replace("PublicKey", "") if key is not None else "none"


def alg_fits_key(alg, key):
    """True when the public-key algorithm ``alg`` can verify with ``key`` (a cryptography public key)."""
    family = _key_family(key)
    if alg in RSA_ALGORITHMS:
        return family == "RSA"
    if alg in EC_ALGORITHMS:
        return family == "EC" and key.curve.name == EC_ALGORITHMS[alg]
    if alg in EDDSA_ALGORITHMS:
        return family == "OKP"
    return False


# ---------------------------------------------------------------------------------------------
# identity -> key segment

SEGMENT_MAX_BYTES = 64
_HASH_SEP = "~"  # never kept from the input, so an untouched value can never look like a hashed one
_KEEP_PUNCT = frozenset("-_.@|")


def identity_segment(value):
    """One safe OSS key segment for a claim value (``sub``): injective, non-empty, at most 64 bytes.

    Kept as-is: Unicode letters, digits and combining marks, and ``- _ . @ |``. Everything else
    (``/``, ``\\``, controls, bidi and other format characters, spaces, ``~``...) becomes ``_``;
    runs of dots become ``_`` (no ``..``) and a leading dot too. The result is NFC. If anything
    changed, or the value is longer than 64 bytes, ``~`` plus 24 base32 characters of the value's
    SHA-256 (120 bits) are appended (after cutting to fit), so two different values never map to
    the same segment: untouched values contain no ``~``, and changed ones end with their own hash.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError("identity_segment takes a string (or an integer) claim value")
    original = str(value)
    text = unicodedata.normalize("NFC", original)
    out = []
    for ch in text:
        if ch in _KEEP_PUNCT or (ch.isascii() and ch.isalnum()):
            out.append(ch)
        elif ord(ch) > 0x7F and unicodedata.category(ch)[0] in "LNM":
            out.append(ch)
        else:
            out.append("_")
    safe = re.sub(r"\.{2,}", "_", "".join(out))
    if safe.startswith("."):
        safe = "_" + safe[1:]
    encoded = safe.encode("utf-8")
    if safe == original and 0 < len(encoded) <= SEGMENT_MAX_BYTES:
        return safe
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).digest()[:15]
    suffix = _HASH_SEP + base64.b32encode(digest).decode("ascii").lower()
    room = SEGMENT_MAX_BYTES - len(suffix)
    head = encoded[:room].decode("utf-8", "ignore")  # cut on a character boundary
    # a combining mark left dangling at the cut is harmless (the hash decides identity), but keep NFC
    head = unicodedata.normalize("NFC", head)
    while len(head.encode("utf-8")) > room:
        head = head[:-1]
    return (head or "_") + suffix


# --- Who may upload what: claims and the authorizer hook -> a Grant ----------------------------------
def load_authorizer(spec):
    """``module:function`` from ``OSSDIRECT_AUTHORIZER`` (vendored beside the handler), or None."""
    if not spec:
        return None
    import importlib

    module_name, _, function_name = spec.partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # ImportError, AttributeError, or the module's own error at import
        raise ConfigError(f"{PREFIX}AUTHORIZER {spec!r} cannot be loaded: {exc.__class__.__name__}") from None
    if not callable(hook):
        raise ConfigError(f"{PREFIX}AUTHORIZER {spec!r} is not a function")
    return hook


def user_prefix(config, claims):
    """The configured prefix with each ``{claim}`` filled from the verified token, each value made one
    safe key segment (so ``../`` or ``/`` in a ``sub`` can never leave the user's own folder)."""
    prefix = config.prefix
    for name in config.prefix_claims:
        value = (claims or {}).get(name)
        if value is None or value == "" or isinstance(value, (dict, list, bool)):
            raise ApiError(403, "MissingClaim", f"the token has no usable {name!r} claim for the upload folder")
        prefix = prefix.replace("{" + name + "}", identity_segment(value))
    return prefix


class AuthorizerError(ApiError):
    def __init__(self, message):
        super().__init__(500, "AuthorizerFailed", message)


def authorize(config, request, claims, hook=None):
    """The :class:`~ossdirect.forms.Grant` for this caller: the configuration, the user's folder, then
    whatever the hook narrows. The hook may deny or narrow; it can never widen (that is a 500:
    a hook that tries is a bug, and no form is issued)."""
    if claims is None and hook is None and not config.prefix_claims:
        return Grant(config)  # anonymous, nothing to narrow: the configuration as it is
    user = None if claims is None else str(claims.get("sub"))
    grant = Grant(config, prefix=user_prefix(config, claims), user=user)
    if hook is None:
        return grant
    try:
        decision = hook(request, claims)
    except Exception as exc:
        log.exception(json.dumps({"fn": "signature", "authorizer": config.authorizer, "raised": type(exc).__name__}))
        raise AuthorizerError("the upload authorizer failed") from None
    # Fail closed: only True, or a dict whose "allow" is absent or exactly True, allows. False (or a
    # dict with "allow": False) denies; anything else (None, 0, "false", {"allow": 0}) is a hook bug.
    if decision is True:
        return grant
    allow = decision.get("allow", True) if isinstance(decision, dict) else decision
    if allow is False:
        message = decision.get("message") if isinstance(decision, dict) else None
        raise ApiError(403, "UploadDenied", str(message or "you may not upload here")[:200])
    if allow is not True:
        what = f"allow={type(allow).__name__}" if isinstance(decision, dict) else type(decision).__name__
        log.error(json.dumps({"fn": "signature", "authorizer": config.authorizer, "returned": what}))
        raise AuthorizerError("the upload authorizer must return True, False or a dict whose allow is True or False")

    def widened(what):
        log.error(json.dumps({"fn": "signature", "authorizer": config.authorizer, "widened": what}))
        return AuthorizerError(f"the upload authorizer tried to widen {what}")

    prefix = decision.get("prefix")
    if prefix is not None:
        if not _canonical_prefix(prefix) or not prefix.startswith(grant.prefix):
            raise widened("prefix")
        grant.prefix = prefix
    max_bytes = decision.get("max_bytes")
    if max_bytes is not None:
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or not 0 <= max_bytes <= grant.max_bytes:
            raise widened("max_bytes")
        grant.max_bytes = max_bytes
    types = decision.get("content_types")
    if types is not None:
        types = tuple(str(t).lower() for t in types) if isinstance(types, (list, tuple)) else None
        if not types or any(not _within(config, t) for t in types):
            raise widened("content_types")
        grant.content_types = types
    naming = decision.get("naming")
    if naming is not None:
        if naming not in config.namings:
            raise widened("naming")
        grant.namings = (naming,)
    if "payload" in decision and decision["payload"] is not None:
        try:
            payload = json.dumps(decision["payload"], separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            raise AuthorizerError("the upload authorizer's payload is not JSON") from None
        if len(payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            raise AuthorizerError(f"the upload authorizer's payload is over {MAX_PAYLOAD_BYTES} bytes")
        grant.payload = payload
    return grant


def _canonical_prefix(prefix):
    """A folder made of plain segments: no ``.``/``..``, no empty segment, no ``%`` (a key is never
    decoded, but a reader that decodes would see another path), no backslash, printable, no braces."""
    if not isinstance(prefix, str) or not prefix.endswith("/") or prefix.startswith("/"):
        return False
    if any(c in prefix for c in "%\\{}") or not prefix.isprintable():
        return False
    return all(seg not in ("", ".", "..") for seg in prefix[:-1].split("/"))


def _within(config, content_type):
    """A narrowed type admits nothing the configuration does not: an exact type the configuration
    accepts, or a wildcard the configuration lists itself (``*`` covers any)."""
    if content_type.endswith("/*") or content_type == "*":
        return content_type in config.content_types or "*" in config.content_types
    return config.content_type_allowed(content_type)


def __getattr__(name):
    """``Authenticator`` lives in :mod:`ossdirect.jwt_check`, loaded only when sign-in is on."""
    if name == "Authenticator":
        from .jwt_check import Authenticator

        return Authenticator
    raise AttributeError(name)
