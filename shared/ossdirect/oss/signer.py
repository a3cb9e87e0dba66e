"""OSS signing, pure: no I/O, no HTTP. Every OSS signature ossdirect makes is computed here.

* POST policy (PostObject forms): :func:`v4_signature` (``OSS4-HMAC-SHA256``: the string to sign is
  just the base64 policy text) with :func:`v4_credential`, and the legacy :func:`v1_signature`
  (HMAC-SHA1). Golden vectors: ``tests/vectors/post_signatures.json`` (ali-oss).
* Header authentication: :func:`sign_v4_request` (V4, exactly as ``alibabacloud-oss-v2`` builds it:
  golden vectors in ``tests/vectors/oss_header_signatures.json``, also cross-checked with ``oss2``)::

    canonical request = METHOD \\n quote("/<bucket>/<key>", safe="/") \\n sorted query \\n
                        signed headers (x-oss-*, content-type, content-md5, additional) \\n
                        additional header names \\n UNSIGNED-PAYLOAD
    string to sign    = OSS4-HMAC-SHA256 \\n <x-oss-date> \\n <yyyymmdd>/<region>/oss/aliyun_v4_request \\n
                        hex(sha256(canonical request))

* Query authentication: :func:`presign_v4_query` (V4 presigned URLs; vectors in
  ``tests/vectors/oss_presign_urls.json``).

The signing key is derived from the secret, the UTC date and the region and cached
(:func:`v4_signing_key`, with its HMAC pads: :func:`v4_hmac_hex`), so a signature costs one HMAC
(plus one SHA-256 for header and query signing). This module imports only the standard library's
hashing and ``urllib.parse``: the signature function signs forms through it without loading any transport.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from functools import lru_cache
from urllib.parse import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime
    from typing import Any, Optional, Union

    from .credentials import Credentials

    # A query: a mapping or pairs of *unencoded* names and values (None or "" for a bare ``?uploads``).
    Query = Union[Mapping[str, Any], Iterable[Any], None]
    When = Union[None, int, float, datetime]

__all__ = ["V4_ALGORITHM", "V4_TERMINATOR", "UNSIGNED_PAYLOAD", "normalize_region", "v4_signing_key",
           "v4_credential", "v4_signature", "v1_signature", "canonical_query", "sign_v4_request",
           "presign_v4_query"]

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

# Headers the header signer sets; a caller's header of the same name (any case) is replaced.
_SIGNER_HEADERS = frozenset(("x-oss-date", "date", "x-oss-content-sha256", "x-oss-security-token", "authorization"))
_DEFAULT_SIGNED = frozenset(("content-type", "content-md5"))

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def normalize_region(region: str) -> str:
    """OSS scopes use the general region id: ``cn-hangzhou``, not ``oss-cn-hangzhou``."""
    return region[4:] if region.startswith("oss-") else region


# -- POST policy signatures -----------------------------------------------------------------------


@lru_cache(maxsize=64)
def v4_signing_key(secret: str, date: str, region: str) -> bytes:
    """Derive the V4 signing key for a YYYYMMDD ``date`` and ``region``."""

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    k = mac(("aliyun_v4" + secret).encode("utf-8"), date)
    k = mac(k, normalize_region(region))
    k = mac(k, "oss")
    return mac(k, V4_TERMINATOR)


@lru_cache(maxsize=64)
def _v4_pads(secret: str, date: str, region: str) -> tuple[Any, Any]:
    """HMAC (RFC 2104) with the signing key as two SHA-256 states, inner and outer pad already hashed:
    a signature copies them (never updates them) instead of setting up an HMAC, which OpenSSL 3 makes
    cost more than hashing a 3 KB policy. Same bounded key as :func:`v4_signing_key` (the secret in it)."""
    key = v4_signing_key(secret, date, region) + bytes(32)  # 32-byte key, zero-padded to SHA-256's block
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


def v4_hmac_hex(secret: str, date: str, region: str, message: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` with the derived key (what ``hmac.new(...).hexdigest()`` gives)."""
    inner, outer = _v4_pads(secret, date, region)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def v4_credential(access_key_id: str, date: str, region: str) -> str:
    """The ``x-oss-credential`` value: ``<id>/<yyyymmdd>/<region>/oss/aliyun_v4_request``."""
    return f"{access_key_id}/{date}/{normalize_region(region)}/oss/{V4_TERMINATOR}"


def v4_signature(secret: str, date: str, region: str, policy_b64: str) -> str:
    """Lowercase hex HMAC-SHA256 of the base64 policy with the derived key."""
    return v4_hmac_hex(secret, date, region, policy_b64.encode("ascii"))


def v1_signature(secret: str, policy_b64: str) -> str:
    """Base64 HMAC-SHA1 of the base64 policy (legacy ``Signature`` field)."""
    digest = hmac.new(secret.encode("utf-8"), policy_b64.encode("ascii"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# -- header and query signatures ------------------------------------------------------------------

_stamp_cache: tuple[Optional[int], str, str, str] = (None, "", "", "")  # (epoch s, x-oss-date, Date, yyyymmdd)


def stamp(now: When = None) -> tuple[str, str, str]:
    """``now`` (None, epoch seconds, or a datetime; naive means UTC) -> (x-oss-date, Date, yyyymmdd)."""
    global _stamp_cache
    if now is None:
        secs = int(time.time())
    elif isinstance(now, (int, float)):
        secs = int(now)
    else:  # datetime
        if now.tzinfo is None:
            from datetime import timezone

            now = now.replace(tzinfo=timezone.utc)
        secs = int(now.timestamp())
    cached = _stamp_cache
    if cached[0] == secs:
        return cached[1], cached[2], cached[3]
    t = time.gmtime(secs)
    day = "%04d%02d%02d" % (t.tm_year, t.tm_mon, t.tm_mday)
    iso = "%sT%02d%02d%02dZ" % (day, t.tm_hour, t.tm_min, t.tm_sec)
    http_date = "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)
    _stamp_cache = (secs, iso, http_date, day)
    return iso, http_date, day


@lru_cache(maxsize=256)
def _quote(text: str) -> str:
    """``quote(text, safe="")``, remembered: a presigned URL's parameters (token, credential, date, upload
    id) repeat for every part of a batch and every request of the second; quote() walks each byte."""
    return quote(text, safe="")


@lru_cache(maxsize=64)
def quote_path(path: str) -> str:
    """``quote(path, safe="/")``, remembered: the same key is signed (and put in the URL) for every part."""
    return quote(path, safe="/")


def query_items(query: Query) -> Iterable[Any]:
    """The (name, value) pairs of a mapping or of a sequence of pairs; () for none."""
    if not query:
        return ()
    items = getattr(query, "items", None)
    return items() if items is not None else query


def canonical_query(query: Query) -> str:
    """Sorted ``name=value`` pairs, both percent-encoded (``/`` too); an empty value gives ``name``."""
    if not query:
        return ""
    pairs = sorted((quote(str(k), safe=""), "" if v is None else quote(str(v), safe=""))
                   for k, v in query_items(query))
    return "&".join(f"{k}={v}" if v else k for k, v in pairs)


def _check(creds: Credentials) -> str:
    secret = creds.access_key_secret
    if not creds.access_key_id or not secret:
        raise ValueError("credentials without an access key id or secret")
    return str(secret)


def sign_v4_request(method: str, bucket: str, key: Optional[str], query: Query,
                    headers: Optional[Mapping[str, Any]], creds: Credentials, region: str, now: When = None, *,
                    additional_headers: Iterable[str] = ()) -> dict[str, str]:
    """Sign one request with OSS V4 header authentication; return the headers to send.

    ``method``: HTTP verb; ``bucket``/``key``: the object (``key`` None or "" for the bucket itself;
    the canonical resource is always ``/<bucket>/<key>`` whatever the endpoint style); ``query``: a
    mapping or pairs of *unencoded* names and values ('' or None for a bare ``?uploads``);
    ``headers``: the request's own headers (``Range``, ``x-oss-copy-source``, ``Content-Type``...);
    ``creds``: :class:`ossdirect.oss.credentials.Credentials`; ``region``: ``cn-hangzhou`` (an
    ``oss-`` prefix is dropped); ``now``: None (the clock), epoch seconds or a datetime (naive = UTC);
    ``additional_headers``: other header names to sign (only those present and non-empty count).

    Returns a new dict: ``headers`` plus ``x-oss-date``, ``Date``, ``x-oss-content-sha256``,
    ``x-oss-security-token`` (STS only) and ``Authorization``. Header values are signed trimmed, as
    OSS reads them.
    """
    secret = _check(creds)
    iso, http_date, day = stamp(now)
    region = normalize_region(region)
    token = creds.security_token

    out: dict[str, str] = {}
    signed = [("x-oss-content-sha256", UNSIGNED_PAYLOAD), ("x-oss-date", iso)]
    if token:
        signed.append(("x-oss-security-token", token))
    wanted = {h.lower() for h in additional_headers} if additional_headers else ()
    additional = []
    if headers:
        for k, v in headers.items():
            lk = k.lower()
            if lk in _SIGNER_HEADERS:
                continue
            out[k] = v
            if lk.startswith("x-oss-") or lk in _DEFAULT_SIGNED:
                signed.append((lk, str(v).strip()))
            elif lk in wanted:
                v = str(v).strip()
                if v:
                    signed.append((lk, v))
                    additional.append(lk)
    out["x-oss-date"] = iso
    out["Date"] = http_date
    if token:
        out["x-oss-security-token"] = token
    out["x-oss-content-sha256"] = UNSIGNED_PAYLOAD
    signed.sort()
    additional.sort()
    add_names = ";".join(additional)

    canonical = "%s\n%s\n%s\n%s\n%s\n%s" % (
        method, quote_path(f"/{bucket}/{key or ''}"), canonical_query(query) if query else "",
        "".join([f"{k}:{v}\n" for k, v in signed]), add_names, UNSIGNED_PAYLOAD)
    scope = f"{day}/{region}/oss/{V4_TERMINATOR}"
    string_to_sign = f"{V4_ALGORITHM}\n{iso}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = v4_hmac_hex(secret, day, region, string_to_sign.encode())
    if additional:
        out["Authorization"] = (f"{V4_ALGORITHM} Credential={creds.access_key_id}/{scope},"
                                f"AdditionalHeaders={add_names},Signature={signature}")
    else:
        out["Authorization"] = f"{V4_ALGORITHM} Credential={creds.access_key_id}/{scope},Signature={signature}"
    return out


def presign_v4_query(method: str, bucket: str, key: Optional[str], query: Query, creds: Credentials, region: str,
                     expires: int, now: When = None, *,
                     additional_headers: Optional[Mapping[str, Any]] = None,
                     content_md5: Optional[str] = None) -> str:
    """The query string (no leading ``?``) of a V4 presigned URL, exactly as ``alibabacloud-oss-v2``'s
    ``presign`` builds it (golden vectors: ``tests/vectors/oss_presign_urls.json``).

    ``query``: the request's own parameters (pairs or a mapping, unencoded, e.g. ``partNumber`` and
    ``uploadId``), kept first and in order; then ``x-oss-signature-version``, ``x-oss-date``,
    ``x-oss-expires``, ``x-oss-credential``, ``x-oss-security-token`` (STS), ``x-oss-additional-headers``
    and last ``x-oss-signature``. Every parameter but the signature is signed (the canonical query is
    all of them, sorted, percent-encoded). ``expires``: seconds the URL stays valid (1..604800, counted
    from ``now``). ``additional_headers``: ``{name: value}`` of other request headers to sign (e.g.
    ``{"content-length": "8388608"}``): named in ``x-oss-additional-headers`` and part of the canonical
    headers, so a request must carry each with exactly that value. Names OSS signs anyway
    (``x-oss-*``, ``content-type``, ``content-md5``) and empty values are left out, as the SDK does.
    ``content_md5``: the base64 MD5 the request will carry as ``Content-MD5`` (an UploadPart's digest):
    a default signed header, so it is signed without being named, and OSS refuses a body of another MD5.
    """
    secret = _check(creds)
    expires = int(expires)
    if not 1 <= expires <= 7 * 24 * 3600:
        raise ValueError("a V4 presigned URL lives 1 s to 7 days")
    iso, _, day = stamp(now)
    region = normalize_region(region)
    scope = f"{day}/{region}/oss/{V4_TERMINATOR}"
    signed_headers = []
    for name, value in (additional_headers or {}).items():
        name, value = name.lower(), str(value).strip()
        if value and not (name.startswith("x-oss-") or name in _DEFAULT_SIGNED):
            signed_headers.append((name, value))
    names = ";".join(sorted([n for n, _ in signed_headers]))
    if content_md5:
        signed_headers.append(("content-md5", content_md5.strip()))
    signed_headers.sort()
    pairs = [(str(k), "" if v is None else str(v)) for k, v in query_items(query)]
    pairs += [("x-oss-signature-version", V4_ALGORITHM), ("x-oss-date", iso), ("x-oss-expires", str(expires)),
              ("x-oss-credential", f"{creds.access_key_id}/{scope}")]
    if creds.security_token:
        pairs.append(("x-oss-security-token", creds.security_token))
    if names:
        pairs.append(("x-oss-additional-headers", names))
    encoded = [(_quote(k), _quote(v)) for k, v in pairs]
    canonical = "%s\n%s\n%s\n%s\n%s\n%s" % (
        method, quote_path(f"/{bucket}/{key or ''}"),
        "&".join([f"{k}={v}" if v else k for k, v in sorted(encoded)]),
        "".join([f"{k}:{v}\n" for k, v in signed_headers]), names, UNSIGNED_PAYLOAD)
    string_to_sign = f"{V4_ALGORITHM}\n{iso}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = v4_hmac_hex(secret, day, region, string_to_sign.encode())
    return "&".join([f"{k}={v}" if v else k for k, v in encoded]) + f"&x-oss-signature={signature}"
