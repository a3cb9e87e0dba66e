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

The token check (:mod:`ossdirect.core.jwt_check`) is loaded only when auth is ``jwt``; an anonymous
signature function with no authorizer hook does not load this module at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from urllib.parse import urlsplit

from ..settings import AUTH_MODES, MAX_LEEWAY, PREFIX, ConfigError, section_names
from .forms import MAX_PAYLOAD_BYTES, Grant
from .. import errors as E
from ..errors import OssdirectError
from ..settings import (  # the sign-in section and its key parsing live with the other settings
    AuthSettings, HMAC_ALGORITHMS, RSA_ALGORITHMS, EC_ALGORITHMS, EDDSA_ALGORITHMS, PUBLIC_KEY_ALGORITHMS, ALL_ALGORITHMS, DEFAULT_SECRET_ALGORITHMS, DEFAULT_PUBLIC_ALGORITHMS, MIN_SECRET_BYTES, MIN_RSA_BITS, _CANONICAL_ALG, _LOOPBACK_HOSTS, _jwks_url, _public_key, _secret, _algorithms, _key_family, _key_description, alg_fits_key,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    Config = Any  # ossdirect.settings.Config: its attributes are set from the settings table, not declared

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping

from ..log import log

# Every variable load_auth_settings reads, without the prefix (public API; the settings table's auth rows).
AUTH_ENV_NAMES = section_names("auth")

MODES = AUTH_MODES
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
MAX_TOKEN_CHARS = 16 * 1024
MAX_JWKS_BYTES = 1024 * 1024
REALM = "ossdirect"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class AuthError(OssdirectError):
    """A sign-in failure the client sees: ``unauthenticated`` (401), or ``unavailable`` (503) when the
    signing keys cannot be had.

    ``headers`` holds the response headers the edge merges in (``WWW-Authenticate`` for 401s, RFC 6750
    section 3; ``Retry-After``).
    """


def _missing(message: str) -> AuthError:
    return AuthError("TokenMissing", message, E.UNAUTHENTICATED,
                     headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})


def _invalid(code: str, message: str) -> AuthError:
    # error_description is a quoted-string: the messages here are fixed ASCII without quotes.
    return AuthError(code, message, E.UNAUTHENTICATED,
                     headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'})


def _keys_unavailable() -> AuthError:
    return AuthError("AuthKeysUnavailable", "the sign-in keys cannot be loaded right now; try again shortly",
                     E.UNAVAILABLE, headers={"Retry-After": "5"})


# ---------------------------------------------------------------------------------------------
# settings


def load_auth_settings(env: "Mapping[str, str] | None" = None) -> "AuthSettings":
    """Build :class:`AuthSettings` from ``OSSDIRECT_AUTH`` / ``OSSDIRECT_JWT_*`` or raise ConfigError
    (every problem at once: the rows and rules of :mod:`ossdirect.settings`)."""
    from ..settings import load_auth_section

    return load_auth_section(env)


# ---------------------------------------------------------------------------------------------
# identity -> key segment

SEGMENT_MAX_BYTES = 64
_HASH_SEP = "~"  # never kept from the input, so an untouched value can never look like a hashed one
_KEEP_PUNCT = frozenset("-_.@|")


def identity_segment(value: str | int) -> str:
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


def user_prefix(config: Config, claims: Mapping[str, Any] | None) -> str:
    """The configured prefix with each ``{claim}`` filled from the verified token, each value made one
    safe key segment (so ``../`` or ``/`` in a ``sub`` can never leave the user's own folder)."""
    prefix = config.prefix
    for name in config.prefix_claims:
        value = (claims or {}).get(name)
        if value is None or value == "" or isinstance(value, (dict, list, bool)):
            raise OssdirectError("MissingClaim", f"the token has no usable {name!r} claim for the upload folder",
                                 E.FORBIDDEN)
        prefix = prefix.replace("{" + name + "}", identity_segment(value))
    return prefix


class AuthorizerError(OssdirectError):
    """The upload authorizer hook failed or broke its contract (``internal``: 500, no form issued)."""

    def __init__(self, message: str) -> None:
        super().__init__("AuthorizerFailed", message, E.INTERNAL)


def authorize(config: Config, request: Any, claims: Mapping[str, Any] | None,
              hook: Callable[[Any, Any], Any] | None = None) -> Grant:
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
        raise OssdirectError("UploadDenied", str(message or "you may not upload here")[:200], E.FORBIDDEN)
    if allow is not True:
        what = f"allow={type(allow).__name__}" if isinstance(decision, dict) else type(decision).__name__
        log.error(json.dumps({"fn": "signature", "authorizer": config.authorizer, "returned": what}))
        raise AuthorizerError("the upload authorizer must return True, False or a dict whose allow is True or False")

    def widened(what: str) -> AuthorizerError:
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


def _canonical_prefix(prefix: object) -> bool:
    """A folder made of plain segments: no ``.``/``..``, no empty segment, no ``%`` (a key is never
    decoded, but a reader that decodes would see another path), no backslash, printable, no braces."""
    if not isinstance(prefix, str) or not prefix.endswith("/") or prefix.startswith("/"):
        return False
    if any(c in prefix for c in "%\\{}") or not prefix.isprintable():
        return False
    return all(seg not in ("", ".", "..") for seg in prefix[:-1].split("/"))


def _within(config: Config, content_type: str) -> bool:
    """A narrowed type admits nothing the configuration does not: an exact type the configuration
    accepts, or a wildcard the configuration lists itself (``*`` covers any)."""
    if content_type.endswith("/*") or content_type == "*":
        return content_type in config.content_types or "*" in config.content_types
    return config.content_type_allowed(content_type)


def __getattr__(name: str) -> Any:
    """``Authenticator`` lives in :mod:`ossdirect.jwt_check`, loaded only when sign-in is on."""
    if name == "Authenticator":
        from .jwt_check import Authenticator

        return Authenticator
    raise AttributeError(name)
