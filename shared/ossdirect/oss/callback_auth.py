"""Verify OSS upload callback signatures.

``Authorization`` is base64 RSA PKCS#1 v1.5 over MD5 of: url-decoded path +
raw query with its ``?`` (nothing when there is no query) + ``\\n`` + raw body.
The public key URL comes base64 in ``x-oss-pub-key-url`` and must be on
gosspublic.alicdn.com (or an explicitly configured prefix, for the emulator);
anything else would let a caller sign with its own key (and is an SSRF).
OSS's published key is pinned, so verification needs no network.
"""

from __future__ import annotations

import binascii
import re
import threading
import time
from collections import OrderedDict
from urllib.parse import unquote, urlsplit

from .. import rsa
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Optional

    PublicKey = rsa.RsaPublicKey  # OSS's, or the RSA key a trusted URL served

# https://gosspublic.alicdn.com/callback_pub_key_v1.pem (RSA-512, as OSS publishes it).
OSS_CALLBACK_PUBLIC_KEY_PEM = b"""-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKs/JBGzwUB2aVht4crBx3oIPBLNsjGs
C0fTXv+nvlmklvkcolvpvXLTjaxUHR3W9LXxQ2EHXAJfCB+6H2YF1k8CAwEAAQ==
-----END PUBLIC KEY-----
"""
# The same key as numbers (tests/test_callback_auth.py checks them against the PEM).
OSS_CALLBACK_KEY_N = int(
    "ab3f2411b3c1407669586de1cac1c77a083c12cdb231ac0b47d35effa7be59a4"
    "96f91ca25be9bd72d38dac541d1dd6f4b5f14361075c025f081fba1f6605d64f", 16)
OSS_CALLBACK_KEY_E = 65537
PINNED_KEY_PATH = "/callback_pub_key_v1.pem"
FETCH_TIMEOUT_SECONDS = 2.0


class CallbackAuthError(OssdirectError):
    """The callback is not from OSS. ``malformed`` tells 400 (bad headers) from 403."""

    def __init__(self, message: str, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def string_to_sign(path: str, raw_query: str, body: bytes) -> bytes:
    if "%" in path:
        path = unquote(path)
    query = "?" + raw_query if raw_query else ""
    return (path + query).encode("utf-8") + b"\n" + body


_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _b64(value: str, what: str) -> bytes:
    if len(value) % 4 == 0 and _BASE64.fullmatch(value):
        return binascii.a2b_base64(value)
    raise CallbackAuthError(f"{what} is not valid base64", malformed=True)


OSS_KEY_HOST = "gosspublic.alicdn.com"
PINNED_KEY_URL = "https://" + OSS_KEY_HOST + PINNED_KEY_PATH
CACHE_SIZE = 8  # key URLs in use at once: OSS's one, perhaps a rotated one, the emulator's
FETCH_INTERVAL_SECONDS = 1.0  # at most one fetch of an unknown key URL per second, whatever callers send


def check_key_url(url: str, trusted_prefixes: tuple[str, ...] = ()) -> str:
    """The canonical form of a key URL we trust, or :class:`CallbackAuthError`.

    OSS's key host (any path, always fetched over HTTPS) or an explicitly trusted prefix; never a
    query, fragment, userinfo or odd character, so one key has one URL and the caches stay small."""
    parts = urlsplit(url)
    if (parts.username is not None or parts.password is not None or "?" in url or "#" in url
            or any(c in url for c in "\\\r\n\t ")):
        raise CallbackAuthError("public key URL is not trusted")
    if parts.scheme in ("http", "https") and parts.netloc == OSS_KEY_HOST and parts.path.startswith("/"):
        return "https://" + OSS_KEY_HOST + parts.path
    for prefix in trusted_prefixes:
        if url.startswith(prefix):
            return url
    raise CallbackAuthError("public key URL is not trusted")


if TYPE_CHECKING:
    _LruBase = OrderedDict[str, Any]
else:
    _LruBase = OrderedDict


class _Lru(_LruBase):
    def remember(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > CACHE_SIZE:
            self.popitem(last=False)


class KeyCache:
    """Public keys: OSS's is pinned; any other trusted key is fetched (rarely) and kept in a small LRU.

    Nothing a caller sends can grow it: both maps are bounded, keyed by canonical URL or by a header
    value that already verified a signature."""

    def __init__(self) -> None:
        self.keys = _Lru()  # canonical key URL -> key
        self.by_header = _Lru()  # x-oss-pub-key-url value -> (trusted prefixes, key); only after a good signature
        self._pinned: Optional[PublicKey] = None
        self._last_fetch = 0.0
        self._fetching: dict[str, threading.Event] = {}  # canonical URL -> Event, while its one fetch runs
        self._lock = threading.Lock()  # guards the maps and the fetch budget, never held across a fetch

    def pinned(self) -> PublicKey:
        if self._pinned is None:
            self._pinned = rsa.RsaPublicKey(OSS_CALLBACK_KEY_N, OSS_CALLBACK_KEY_E)
        return self._pinned

    def get(self, canonical_url: str) -> PublicKey:
        if canonical_url == PINNED_KEY_URL:
            return self.pinned()
        with self._lock:
            key = self.keys.get(canonical_url)
            if key is not None:
                return key
            fetching = self._fetching.get(canonical_url)
            if fetching is None:
                now = time.monotonic()
                if self._fetching or now - self._last_fetch < FETCH_INTERVAL_SECONDS:
                    raise CallbackAuthError("public key URL is not known yet; try again later")
                self._last_fetch = now
                fetching = self._fetching[canonical_url] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:  # callbacks arriving while the key is fetched wait for that one fetch
            fetching.wait(FETCH_TIMEOUT_SECONDS + 1)
            with self._lock:
                key = self.keys.get(canonical_url)
            if key is None:
                raise CallbackAuthError("public key could not be loaded from its URL")
            return key
        try:
            key = _fetch_key(canonical_url)
            with self._lock:
                self.keys.remember(canonical_url, key)
            return key
        finally:
            with self._lock:
                del self._fetching[canonical_url]
            fetching.set()


def _fetch_key(url: str) -> PublicKey:
    """GET a PEM RSA public key: one request, no redirects, 2 s, 16 KB at most."""
    from ..http1 import exchange, host_header, request_head  # only for keys other than OSS's pinned one

    parts = urlsplit(url)
    host, https = parts.hostname or "", parts.scheme == "https"
    try:
        status, _, pem = exchange(host, parts.port, https, FETCH_TIMEOUT_SECONDS, request_head(
            "GET", parts.path or "/", host_header(host, parts.port, https), {}, None), limit=16384)
        if status != 200:
            raise ValueError(status)
        key = rsa.from_pem(pem)
        if key is None:
            raise ValueError("not an RSA key")  # OSS signs with RSA only
        return key
    except Exception:
        raise CallbackAuthError("public key could not be loaded from its URL") from None


_default_cache = KeyCache()


def verify_callback(headers: Mapping[str, str], path: str, raw_query: str, body: bytes,
                    trusted_prefixes: tuple[str, ...] = (), cache: Optional[KeyCache] = None) -> None:
    """Raise :class:`CallbackAuthError` unless OSS signed this request. ``headers`` in any case; ``body``
    the raw bytes; ``trusted_prefixes`` is a tuple (extra key URL prefixes, never needed in production)."""
    if isinstance(body, str):
        raise TypeError("body must be the raw bytes OSS sent, not str (decoding can change the signed bytes)")
    if "authorization" not in headers:  # the handlers pass lower-case names already; a library caller may not
        headers = {str(k).lower(): v for k, v in headers.items()}
    authorization = headers.get("authorization", "")
    key_url_b64 = headers.get("x-oss-pub-key-url", "")
    if not authorization or not key_url_b64:
        raise CallbackAuthError("missing Authorization or x-oss-pub-key-url header", malformed=True)
    signature = _b64(authorization, "Authorization")
    cache = cache or _default_cache
    # The header value is the same on every genuine callback: decode, check and load its key once.
    known = cache.by_header.get(key_url_b64)
    if known is not None and known[0] == trusted_prefixes:
        key = known[1]
    else:
        try:
            key_url = _b64(key_url_b64, "x-oss-pub-key-url").decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackAuthError("x-oss-pub-key-url is not a URL", malformed=True) from None
        key = cache.get(check_key_url(key_url, trusted_prefixes))
    if not key.verify_pkcs1v15(signature, string_to_sign(path, raw_query, body), "md5"):
        raise CallbackAuthError("signature does not match")
    if known is None:
        with cache._lock:
            cache.by_header.remember(key_url_b64, (trusted_prefixes, key))
