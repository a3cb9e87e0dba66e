"""Settings: every ``OSSDIRECT_*`` environment variable (their names are public API), in one table.

:data:`SETTINGS` names each variable once: its parser, its default, the functions that read it
(signature, callback, process; the model is botocore's config variable table) and whether every
function that reads it must get the same value. :data:`RULES` holds the cross-field rules.
:func:`load_settings` (one function's cold start, and ``ossdirect check-config``) parses every setting
the function reads, runs every rule, and raises ONE :class:`ConfigError` listing every problem, each
once; else it returns read-only sections. This module is the only one that reads the environment for
``OSSDIRECT_*`` (the runtime's credentials stay in oss/credentials.py).

Defaults are the secure ones: short expiry, no overwrite, a size cap, server-named keys, no
cross-origin access until origins are listed.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from urllib.parse import urlsplit
from .errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs cold-start time: annotations only
    from typing import Any, Callable, Iterator, Mapping, Sequence

PREFIX = "OSSDIRECT_"

# Content types that cannot serve active content from the bucket's origin by default
# (the web client is hosted in the same bucket: text/html uploads would be stored XSS).
DEFAULT_CONTENT_TYPES = "image/*,video/*,audio/*,application/pdf,text/plain"
# Types a browser renders as an active document (script runs on the bucket's origin). A wildcard
# (image/*, *) never admits them; only naming one exactly in OSSDIRECT_CONTENT_TYPES does.
ACTIVE_CONTENT_TYPES = frozenset((
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/xsl",
    "application/javascript", "text/javascript", "application/ecmascript", "text/ecmascript",
    "application/x-javascript", "application/x-shockwave-flash", "multipart/x-mixed-replace",
))
# Types that tell a browser "I don't know": it sniffs the bytes, and HTML bytes run as a document
# (WHATWG MIME sniffing's unknown types; Chromium's IsUnknownMimeType; Firefox's unknown decoder).
SNIFFED_TYPES = frozenset((
    "unknown/unknown", "application/unknown", "*/*", "application/x-unknown-content-type", "application/x-unknown",
))
OBJECT_ACLS = ("default", "private", "public-read")  # never public-read-write: anyone could rewrite it
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
DISPOSITIONS = ("inline", "attachment")
ROOT_PREFIX = "/"  # OSSDIRECT_PREFIX=/ is the explicit way to allow the bucket root


def is_active_content_type(content_type: str) -> bool:
    """A type a browser may render as a document: active itself, or one it sniffs (HTML bytes then run)."""
    ct = content_type.lower()
    return (ct in ACTIVE_CONTENT_TYPES or ct in SNIFFED_TYPES or ct.endswith(("+xml", "/xml"))
            or "javascript" in ct or "html" in ct)


@lru_cache(maxsize=512)
def _admitted_cached(patterns: "tuple[str, ...]", content_type: str) -> bool:  # the configured list is a tuple: fixed per instance
    return type_admitted(patterns, content_type)


def type_admitted(patterns: "tuple[str, ...]", content_type: str) -> bool:
    """Exact names admit anything they name; wildcards (``type/*``, ``*``) never admit an active type."""
    ct = content_type.lower()
    if ct in patterns:
        return True
    if is_active_content_type(ct):
        return False
    return any(p == "*" or (p.endswith("/*") and ct.startswith(p[:-1])) for p in patterns)
FORM_BODY_TYPE = "application/x-www-form-urlencoded"
JSON_BODY_TYPE = "application/json"
NAMINGS = ("random", "original")
VERSIONS = ("v4", "v1")
MAX_FORM_OBJECT = 5 * 1024**3  # PostObject's limit; beyond it, multipart
MAX_OSS_OBJECT = 10_000 * MAX_FORM_OBJECT  # multipart: 10,000 parts of at most 5 GiB
MULTIPART_THRESHOLD = 64 * 1024**2  # clients upload larger files in parts (published in /limits)


class ConfigError(OssdirectError, ValueError):
    """One or more settings are missing or invalid. The message names each variable; ``problems`` holds
    ``(setting, sentence)`` pairs (every problem, each once), ``setting``/``first`` the first of them."""

    def __init__(self, message: str = "", problems: "Sequence[tuple[str, str]] | None" = None) -> None:
        if not problems:
            named = re.search(PREFIX + r"([A-Z0-9_]+)", message)
            problems = ((named.group(1) if named else "", message),)
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        self.setting, self.first = self.problems[0]
        message = self.first if len(self.problems) == 1 else \
            f"{len(self.problems)} problems: " + "; ".join(m for _, m in self.problems)
        super().__init__(message)

    @property
    def messages(self) -> "list[str]":
        return [m for _, m in self.problems]


class ProcessConfigError(ConfigError):
    """A setting only the process function reads is invalid (kept for ossdirect.core.events' callers)."""


class _Frozen:
    """Plain classes with __slots__ whose attributes are set once (dataclasses cost cold-start time)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only (settings are read once, at cold start)")

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)


class Config(_Frozen):
    """Validated settings (see load_config). A plain class: dataclasses cost cold-start time."""

    __slots__ = (
        "bucket", "region", "upload_host", "public_base_url", "prefix", "min_bytes", "max_bytes", "content_types",
        "expires_seconds", "callback_url", "callback_host", "callback_body", "callback_body_type",
        "allowed_origins", "records", "trusted_key_prefixes", "forbid_overwrite", "success_status", "namings",
        "allow_folders", "prefix_forms", "signature_versions", "oss_endpoint", "object_acl", "storage_class",
        "content_disposition", "cache_control", "compat", "record_log", "auth", "authorizer", "prefix_static",
        "prefix_claims", "on_function_compute",
    )
    bucket: "str"
    region: "str"
    upload_host: "str"
    public_base_url: "str"
    prefix: "str"
    min_bytes: "int"
    max_bytes: "int"
    content_types: "tuple[str, ...]"
    expires_seconds: "int"
    callback_url: "str"
    callback_host: "str"
    callback_body: "str"
    callback_body_type: "str"
    allowed_origins: "tuple[str, ...]"
    records: "str"
    trusted_key_prefixes: "tuple[str, ...]"
    forbid_overwrite: "bool"
    success_status: "str"
    namings: "tuple[str, ...]"
    allow_folders: "bool"
    prefix_forms: "bool"
    signature_versions: "tuple[str, ...]"
    oss_endpoint: "str"
    object_acl: "str"
    storage_class: "str"
    content_disposition: "str"
    cache_control: "str"
    compat: "str"
    record_log: "str"
    auth: "Any"
    authorizer: "str"
    prefix_static: "str"
    prefix_claims: "tuple[str, ...]"
    on_function_compute: "bool"

    def __init__(self, **values: "Any") -> None:
        for name in self.__slots__:
            self._set(name, values.pop(name))
        if values:
            raise TypeError(f"unknown settings {sorted(values)}")

    def content_type_allowed(self, content_type: str) -> bool:
        return _admitted_cached(self.content_types, content_type)

    def public_limits(self) -> "dict[str, Any]":
        """What the web client may know to pre-check before any byte moves."""
        return {
            "min_bytes": self.min_bytes,
            "max_bytes": self.max_bytes,
            "content_types": list(self.content_types),
            "naming": list(self.namings),
            "default_naming": self.namings[0],
            "folders": self.allow_folders,
            "prefix": self.prefix,
            "expires_seconds": self.expires_seconds,
            "signature_versions": list(self.signature_versions),
            "auth": self.auth.mode,
            # multipart keeps its sessions in a store every instance shares (never one file per instance)
            "multipart_threshold": MULTIPART_THRESHOLD if self.shared_records() else None,
        }

    def shared_records(self) -> bool:
        """Whether every instance of every function reads and writes the same records: Tablestore, or a
        SQLite file off Function Compute (the local stack's three functions share one). On FC a SQLite
        file is each instance's own: the record poll and multipart sessions cannot work there."""
        return _shared_records(self.records, self.on_function_compute)


def _shared_records(records: str, on_fc: bool) -> bool:
    return records.startswith("tablestore:") or (records.startswith("sqlite:") and not on_fc)


class Settings(_Frozen):
    """What one function reads (see load_settings): ``config`` (with ``config.auth``), ``limits`` (the
    signature function's allowances, or None), ``process`` (the process function's settings, or None)."""

    __slots__ = ("function", "config", "auth", "limits", "process")
    function: str
    config: Config
    auth: "Any"
    limits: "Any"
    process: "Any"

    def __init__(self, function: str, config: Config, limits: "Any" = None, process: "Any" = None) -> None:
        self._set("function", function)
        self._set("config", config)
        self._set("auth", config.auth)
        self._set("limits", limits)
        self._set("process", process)


# ---------------------------------------------------------------------------------------------------
# Parsers: (value, bare name) -> parsed value, or ConfigError naming the variable. The value is the
# variable stripped, or the table's default when it is unset (or empty, for settings marked so).

def _text(raw: str, name: str) -> str:
    return raw


def _items(raw: str) -> "tuple[str, ...]":
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _list(raw: str, name: str) -> "tuple[str, ...]":
    return _items(raw)


def _int_between(lo: int, hi: int) -> "Callable[[str, str], int]":
    def parse(raw: str, name: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{PREFIX}{name} must be an integer, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(f"{PREFIX}{name} must be between {lo} and {hi}, got {value}")
        return value
    return parse


def _bool(raw: str, name: str) -> bool:
    raw = raw.lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{PREFIX}{name} must be true or false, got {raw!r}")


def _choice(choices: "tuple[str, ...]") -> "Callable[[str, str], str]":
    def parse(raw: str, name: str) -> str:
        for choice in choices:
            if raw.lower() == choice.lower():
                return choice
        raise ConfigError(f"{PREFIX}{name} must be one of {', '.join(choices)}, got {raw!r}")
    return parse


def _header_value(raw: str, name: str) -> str:
    if len(raw) > 256 or not all(" " <= c <= "~" for c in raw):
        raise ConfigError(f"{PREFIX}{name} must be a short printable ASCII header value, got {raw!r}")
    return raw


def _url(raw: str, name: str) -> str:
    """An http(s) URL without a trailing /, or empty (then derived, or off)."""
    value = raw.rstrip("/")
    return _check_url(value, name) if value else value


def _check_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{PREFIX}{name} must be an http(s) URL, got {value!r}")
    return value


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
_CT_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")
_HOOK_RE = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"  # patterns compiled only when a value needs them
_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,254}$"


def _bucket(raw: str, name: str) -> str:
    if not _BUCKET_RE.match(raw):
        raise ConfigError(f"{PREFIX}BUCKET must be an OSS bucket name (3-63 of a-z, 0-9, -), got {raw!r}")
    return raw


_REGION_MESSAGE = PREFIX + "REGION must be a region id such as cn-hangzhou, got {!r}"


def _region(raw: str, name: str) -> str:
    region = raw[4:] if raw.startswith("oss-") else raw
    if region and not _REGION_RE.match(region):  # empty: the region_required rule (load_config(need_region))
        raise ConfigError(_REGION_MESSAGE.format(region))
    return region


def _prefix(raw: str, name: str) -> str:
    prefix = raw
    if prefix == ROOT_PREFIX:
        return ""  # the bucket root, chosen explicitly (see the README before doing this)
    if not prefix:
        raise ConfigError(f"{PREFIX}PREFIX is empty: name a folder such as uploads/, or / for the bucket root")
    if (prefix.startswith("/") or not prefix.endswith("/") or "\\" in prefix or ".." in prefix.split("/")
            or "//" in prefix or len(prefix.encode()) > 512 or not prefix.isprintable()):
        raise ConfigError(f"{PREFIX}PREFIX must be a relative folder ending in / such as uploads/, got {prefix!r}")
    # Per-user folders: {sub} (or any claim) in the prefix is filled per request from the verified token.
    if _PLACEHOLDER.sub("", prefix).count("{") or _PLACEHOLDER.sub("", prefix).count("}"):
        raise ConfigError(f"{PREFIX}PREFIX placeholders look like {{sub}} or {{claim_name}}, got {prefix!r}")
    return prefix


def _hook_spec(raw: str, name: str) -> str:
    if raw and not re.match(_HOOK_RE, raw):
        raise ConfigError(f"{PREFIX}{name} must be module:function, got {raw!r}")
    return raw


def _content_types(raw: str, name: str) -> "tuple[str, ...]":
    types = tuple("*" if t in ("*", "*/*") else t for t in (t.lower() for t in _items(raw)))
    if not types:
        raise ConfigError(f"{PREFIX}CONTENT_TYPES is empty: list the accepted types, or * for any inactive type")
    for t in types:
        if t != "*" and not _CT_RE.match(t):
            raise ConfigError(f"{PREFIX}CONTENT_TYPES has an invalid entry {t!r} (use type/subtype or type/*)")
    return types


def _callback_url(raw: str, name: str) -> str:
    if raw:
        _check_url(raw, name)
    if urlsplit(raw).query or ";" in raw:
        # OSS signs the raw query, and FC3 events only carry it parsed: keep the URL query-free.
        raise ConfigError(f"{PREFIX}CALLBACK_URL must be one URL without a query string, got {raw!r}")
    return raw


def _callback_body(raw: str, name: str) -> str:
    if raw and "${x:upload_id}" not in raw:
        raise ConfigError(f"{PREFIX}CALLBACK_BODY must carry upload_id=${{x:upload_id}} (the callback checks it)")
    return raw


def _body_type(raw: str, name: str) -> str:
    body_type = raw.lower()
    body_type = {"form": FORM_BODY_TYPE, "json": JSON_BODY_TYPE}.get(body_type, body_type)
    if body_type not in (FORM_BODY_TYPE, JSON_BODY_TYPE):
        raise ConfigError(f"{PREFIX}CALLBACK_BODY_TYPE must be form or json, got {body_type!r}")
    return body_type


def _origins(raw: str, name: str) -> "tuple[str, ...]":
    origins = _items(raw)
    for origin in origins:
        if origin != "*":
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("",):
                raise ConfigError(f"{PREFIX}ALLOWED_ORIGINS entries must look like https://example.com, got {origin!r}")
    return origins


def _records(raw: str, name: str) -> str:
    if not (raw == "stdout" or raw.startswith(("sqlite:///", "sls://", "tablestore://"))):
        raise ConfigError(f"{PREFIX}RECORDS must be sqlite:///path, stdout, sls://... or tablestore://..., got {raw!r}")
    return raw


def _record_log(raw: str, name: str) -> str:
    if raw and not raw.startswith("sls://"):
        raise ConfigError(f"{PREFIX}RECORD_LOG must be sls://<project>/<logstore>?endpoint=..., got {raw!r}")
    return raw


def _trusted(raw: str, name: str) -> "tuple[str, ...]":
    trusted = _items(raw)
    for p in trusted:
        parts = urlsplit(p)
        if parts.scheme not in ("http", "https") or not parts.netloc or not p.endswith("/"):
            raise ConfigError(f"{PREFIX}TRUSTED_KEY_PREFIXES entries must be URLs ending in '/', got {p!r}")
    return trusted


def _success(raw: str, name: str) -> str:
    if raw not in ("", "200", "201", "204"):
        raise ConfigError(f"{PREFIX}SUCCESS_STATUS must be 200, 201 or 204, got {raw!r}")
    return raw


def _namings(raw: str, name: str) -> "tuple[str, ...]":
    namings = _items(raw)
    if not namings or any(n not in NAMINGS for n in namings):
        raise ConfigError(f"{PREFIX}KEY_NAMING must list random and/or original (first is the default), "
                          f"got {namings!r}")
    return namings


def _versions(raw: str, name: str) -> "tuple[str, ...]":
    versions = tuple(v.lower() for v in _items(raw))
    if not versions or any(v not in VERSIONS for v in versions):
        raise ConfigError(f"{PREFIX}SIGNATURE_VERSIONS must list v4 and/or v1 (first is the default), got {versions!r}")
    return versions


def _auth_mode(raw: str, name: str) -> str:
    mode = raw.lower()
    if mode not in AUTH_MODES:
        raise ConfigError(f"{PREFIX}AUTH must be none or jwt, got {mode!r}")
    return mode


def _issuer(raw: str, name: str) -> str:
    if any(ord(c) < 0x21 for c in raw):
        raise ConfigError(f"{PREFIX}JWT_ISSUER must not contain spaces or control characters, got {raw!r}")
    return raw


def _leeway(raw: str, name: str) -> int:
    try:
        leeway = int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}JWT_LEEWAY_SECONDS must be an integer, got {raw!r}") from None
    if not 0 <= leeway <= MAX_LEEWAY:
        raise ConfigError(f"{PREFIX}JWT_LEEWAY_SECONDS must be between 0 and {MAX_LEEWAY}, got {leeway}")
    return leeway


def _positive(name: str, key: str, raw: str, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}: {key} must be an integer, got {raw!r}") from None
    if not 1 <= value <= hi:
        raise ConfigError(f"{PREFIX}{name}: {key} must be between 1 and {hi}, got {value}")
    return value


def _user_limits(raw: str, name: str) -> "tuple[int | None, int | None, int, int | None] | None":
    """``(forms, bytes, window, stored)``, or None when unset (no allowances: limits.py is never loaded).
    ``stored``: the bytes a user may hold in the bucket at once (no window)."""
    if not raw:
        return None
    values: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("forms", "bytes", "window", "stored"):
            raise ConfigError(f"{PREFIX}USER_LIMITS must be a list like forms=20,bytes=1073741824,window=3600 "
                              f"(forms, bytes, window, stored), got {item!r}")
        if key in values:
            raise ConfigError(f"{PREFIX}USER_LIMITS names {key} twice")
        values[key] = value.strip()
    if "forms" not in values and "bytes" not in values and "stored" not in values:
        raise ConfigError(f"{PREFIX}USER_LIMITS must set forms, bytes and/or stored, got {raw!r}")
    forms = _positive("USER_LIMITS", "forms", values["forms"], MAX_COUNT) if "forms" in values else None
    nbytes = _positive("USER_LIMITS", "bytes", values["bytes"], MAX_COUNT) if "bytes" in values else None
    window = _positive("USER_LIMITS", "window", values["window"], MAX_WINDOW) if "window" in values \
        else DEFAULT_WINDOW
    stored = _positive("USER_LIMITS", "stored", values["stored"], MAX_COUNT) if "stored" in values else None
    return forms, nbytes, window, stored


def parse_store_url(url: str, name: str = "LIMITS_STORE") -> "tuple[str, Any]":
    """Check a store URL without importing any backend: ``("sqlite", path)`` or
    ``("tablestore", (instance, table, endpoint, region, timeout))``."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path or path.endswith("/"):
            raise ConfigError(f"{PREFIX}{name} must name a file: sqlite:///path, got {url!r}")
        return "sqlite", path
    if url.startswith("tablestore://"):
        from urllib.parse import parse_qs

        parts = urlsplit(url)
        instance, table = parts.netloc, parts.path.strip("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = query.get("endpoint", "")
        if not re.match(_NAME, instance) or not re.match(_NAME, table) or not endpoint:
            raise ConfigError(f"{PREFIX}{name} must be tablestore://<instance>/<table>?endpoint=https://"
                              f"<instance>.<region>.ots.aliyuncs.com, got {url!r}")
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).hostname:
            raise ConfigError(f"{PREFIX}{name}: endpoint must be an http(s) URL, got {endpoint!r}")
        try:
            timeout = float(query.get("timeout", "2"))
            if not 0 < timeout <= 60:
                raise ValueError
        except ValueError:
            raise ConfigError(f"{PREFIX}{name}: timeout must be a number of seconds (0-60]") from None
        return "tablestore", (instance, table, endpoint, query.get("region") or None, timeout)
    raise ConfigError(f"{PREFIX}{name} must be sqlite:///path or tablestore://<instance>/<table>?endpoint=..., "
                      f"got {url!r}")


def _limits_store(raw: str, name: str) -> str:
    parse_store_url(raw, name)
    return raw


def _quarantine(raw: str, name: str) -> str:
    mode = raw.lower()
    if mode not in QUARANTINE_MODES:
        raise ConfigError(f"{PREFIX}QUARANTINE must be move, private or off, got {mode!r}")
    return mode


def _quarantine_prefix(raw: str, name: str) -> str:
    if (raw.startswith("/") or not raw.endswith("/") or ".." in raw.split("/") or "//" in raw
            or not raw.isprintable()):
        raise ConfigError(f"{PREFIX}QUARANTINE_PREFIX must be a relative folder ending in /, got {raw!r}")
    return raw


def _hook_attempts(raw: str, name: str) -> int:
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 20):
        raise ConfigError(f"{PREFIX}HOOK_MAX_ATTEMPTS must be an integer from 1 to 20, got {raw!r}")
    return int(raw)


def _on_upload(raw: str, name: str) -> str:
    module, sep, func = raw.partition(":")
    if raw and (not sep or not module or not func.isidentifier()):
        raise ConfigError(f"{PREFIX}ON_UPLOAD must be module:function, got {raw!r}")
    return raw


# ---------------------------------------------------------------------------------------------------
# The table: every OSSDIRECT_* setting once (the model: botocore's config variable table).

SIGNATURE, CALLBACK, PROCESS = "signature", "callback", "process"
FUNCTIONS = (SIGNATURE, CALLBACK, PROCESS)
_ALL = FUNCTIONS
_SIG = (SIGNATURE,)
AUTH_MODES = ("none", "jwt")
MAX_LEEWAY = 300
QUARANTINE_MODES = ("move", "private", "off")
DEFAULT_LIMITS_STORE = "sqlite:///ossdirect-limits.sqlite3"
DEFAULT_WINDOW = 3600
MAX_WINDOW = 31 * 86400
MAX_COUNT = 2**62  # Tablestore integers are signed 64-bit: room to add to the biggest limit


class Setting(_Frozen):
    """One row: ``OSSDIRECT_<name>``, its parser, its default (used when unset; also when empty if
    ``empty_is_default``), the functions that read it, its section (config, auth, limits, process), and
    ``shared``: every function that reads it must get the same value (one bucket, ONE record store)."""

    __slots__ = ("name", "parse", "default", "functions", "section", "empty_is_default", "shared")
    name: str
    parse: "Callable[[str, str], Any]"
    default: str
    functions: "tuple[str, ...]"
    section: str
    empty_is_default: bool
    shared: bool

    def __init__(self, name: str, parse: "Callable[[str, str], Any]", default: str, functions: "tuple[str, ...]",
                 section: str = "config", empty_is_default: bool = False, shared: bool = False) -> None:
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "parse", parse)
        set_(self, "default", default)
        set_(self, "functions", functions)
        set_(self, "section", section)
        set_(self, "empty_is_default", empty_is_default)
        set_(self, "shared", shared)

    def __repr__(self) -> str:
        return f"Setting({PREFIX}{self.name}, default={self.default!r}, functions={self.functions})"


_S = Setting
SETTINGS: "tuple[Setting, ...]" = (
    _S("BUCKET", _bucket, "", _ALL, shared=True),
    _S("REGION", _region, "", _ALL, shared=True),
    _S("UPLOAD_HOST", _url, "", _SIG),  # empty: https://<bucket>.oss-<region>.aliyuncs.com
    _S("PUBLIC_BASE_URL", _url, "", (SIGNATURE, CALLBACK), shared=True),  # empty: the upload host
    _S("PREFIX", _prefix, "uploads/", _ALL, shared=True),
    _S("MIN_BYTES", _int_between(0, MAX_OSS_OBJECT), "1", _SIG),
    _S("MAX_BYTES", _int_between(1, MAX_OSS_OBJECT), str(100 * 1024 * 1024), _SIG),
    _S("CONTENT_TYPES", _content_types, DEFAULT_CONTENT_TYPES, _SIG),
    _S("EXPIRES_SECONDS", _int_between(10, 7 * 24 * 3600), "300", _SIG),
    _S("CALLBACK_URL", _callback_url, "", _SIG),
    _S("CALLBACK_HOST", _text, "", _SIG),
    _S("CALLBACK_BODY", _callback_body, "", _SIG),
    _S("CALLBACK_BODY_TYPE", _body_type, FORM_BODY_TYPE, _SIG),
    _S("ALLOWED_ORIGINS", _origins, "", _SIG),
    _S("RECORDS", _records, "sqlite:///ossdirect-records.sqlite3", _ALL, shared=True),
    _S("TRUSTED_KEY_PREFIXES", _trusted, "", (CALLBACK,)),
    _S("FORBID_OVERWRITE", _bool, "true", _SIG),
    _S("SUCCESS_STATUS", _success, "", _SIG),
    _S("KEY_NAMING", _namings, "random", _SIG),
    _S("ALLOW_FOLDERS", _bool, "false", _SIG),
    _S("PREFIX_FORMS", _bool, "false", _SIG),
    _S("SIGNATURE_VERSIONS", _versions, "v4", _SIG),
    _S("OSS_ENDPOINT", _url, "", _ALL, shared=True),  # empty: the bucket's internal endpoint
    _S("OBJECT_ACL", _choice(OBJECT_ACLS), "default", _SIG, empty_is_default=True),
    _S("STORAGE_CLASS", _choice(STORAGE_CLASSES), "Standard", _SIG, empty_is_default=True),
    _S("CONTENT_DISPOSITION", _choice(DISPOSITIONS), "inline", _SIG, empty_is_default=True),
    _S("CACHE_CONTROL", _header_value, "no-cache", _SIG, empty_is_default=True),
    # the process function too: a seed form's upload carries no upload id of ours (events.py, callbacks.py)
    _S("COMPAT", _choice(("none", "seed")), "none", _ALL, empty_is_default=True, shared=True),
    _S("RECORD_LOG", _record_log, "", (CALLBACK, PROCESS), shared=True),
    _S("AUTHORIZER", _hook_spec, "", _SIG),
    # sign-in (core/auth.py): the key sources are checked by the auth_key rule (only with AUTH=jwt)
    _S("AUTH", _auth_mode, "none", _SIG, "auth", empty_is_default=True),
    _S("JWT_JWKS_URL", _text, "", _SIG, "auth"),
    _S("JWT_PUBLIC_KEY", _text, "", _SIG, "auth"),
    _S("JWT_SECRET", _text, "", _SIG, "auth"),
    _S("JWT_ISSUER", _issuer, "", _SIG, "auth"),
    _S("JWT_AUDIENCE", _list, "", _SIG, "auth"),
    _S("JWT_ALGORITHMS", _text, "", _SIG, "auth"),
    _S("JWT_LEEWAY_SECONDS", _leeway, "30", _SIG, "auth", empty_is_default=True),
    # allowances (core/limits.py)
    # all three: the callback and the process function turn stored= reservations into held bytes
    _S("USER_LIMITS", _user_limits, "", _ALL, "limits", shared=True),
    _S("LIMITS_STORE", _limits_store, DEFAULT_LIMITS_STORE, _ALL, "limits", empty_is_default=True, shared=True),
    _S("ANONYMOUS_LIMITS_BY_IP", _bool, "true", _SIG, "limits", empty_is_default=True),
    # the OSS trigger (core/events.py)
    _S("QUARANTINE", _quarantine, "move", (PROCESS,), "process", empty_is_default=True),
    _S("QUARANTINE_PREFIX", _quarantine_prefix, "quarantine/", (PROCESS,), "process", empty_is_default=True),
    _S("ON_UPLOAD", _on_upload, "", (PROCESS,), "process"),
    _S("HOOK_MAX_ATTEMPTS", _hook_attempts, "3", (PROCESS,), "process", empty_is_default=True),
)
del _S
BY_NAME = {s.name: s for s in SETTINGS}
# Every variable, without the prefix (s.yaml and the README are checked against it).
ENV_NAMES = tuple(s.name for s in SETTINGS)


def names_for(function: str) -> "tuple[str, ...]":
    """The settings ``function`` reads (and so the variables its deployment gives it), without the prefix."""
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r} (one of {', '.join(FUNCTIONS)})")
    return tuple(s.name for s in SETTINGS if function in s.functions)


def section_names(section: str) -> "tuple[str, ...]":
    return tuple(s.name for s in SETTINGS if s.section == section)


SHARED = tuple(s.name for s in SETTINGS if s.shared)


# ---------------------------------------------------------------------------------------------------
# Cross-field rules: (inputs, functions or None for any, check). A rule runs when every input parsed;
# it yields (setting, sentence) for each problem. ``v`` maps names to parsed values; ``ctx`` holds the
# environment facts (on_function_compute, need_region, import_hooks) and what rules load (the hook).

def _rule_region_required(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    if ctx["need_region"] and not v["REGION"]:
        yield "REGION", _REGION_MESSAGE.format(v["REGION"])


def _rule_bytes_order(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    if v["MAX_BYTES"] < v["MIN_BYTES"]:
        yield "MAX_BYTES", (f"{PREFIX}MAX_BYTES ({v['MAX_BYTES']}) must not be below {PREFIX}MIN_BYTES "
                            f"({v['MIN_BYTES']})")


def _rule_seed_without_sign_in(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    if v["COMPAT"] == "seed" and (v["AUTH"] != "none" or v["AUTHORIZER"]):
        # seed clients cannot pin our metadata: a record's user would be whatever the uploader wrote
        yield "COMPAT", (f"{PREFIX}COMPAT=seed cannot be combined with sign-in ({PREFIX}AUTH) or an "
                         f"{PREFIX}AUTHORIZER: seed forms cannot pin who uploaded")


_KEY_SOURCES = ("JWT_JWKS_URL", "JWT_PUBLIC_KEY", "JWT_SECRET")


def _rule_auth_sources(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    sources = [n for n in _KEY_SOURCES if v[n]]
    if v["AUTH"] == "none" and sources:  # a key without AUTH=jwt is almost surely a forgotten switch
        yield "AUTH", (f"{PREFIX}AUTH is none but {PREFIX}{sources[0]} is set; "
                       f"set {PREFIX}AUTH=jwt to require sign-in, or unset {PREFIX}{sources[0]}")
    elif v["AUTH"] == "jwt" and len(sources) != 1:
        got = ", ".join(PREFIX + n for n in sources) or "none of them"
        yield "AUTH", (f"{PREFIX}AUTH=jwt needs exactly one of {PREFIX}JWT_JWKS_URL, {PREFIX}JWT_PUBLIC_KEY "
                       f"or {PREFIX}JWT_SECRET (got {got})")


def _rule_auth_key(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    """With AUTH=jwt and one key source: read the key, the algorithms that fit it, the secret's length."""
    sources = [n for n in _KEY_SOURCES if v[n]]
    if v["AUTH"] != "jwt" or len(sources) != 1:
        return
    source = sources[0]
    kind = {"JWT_JWKS_URL": "jwks", "JWT_PUBLIC_KEY": "pem", "JWT_SECRET": "secret"}[source]
    try:
        key = (_jwks_url if kind == "jwks" else _public_key if kind == "pem" else _secret)(v[source])
    except ConfigError as exc:
        yield source, str(exc)
        return
    try:
        algorithms = _algorithms(v["JWT_ALGORITHMS"], kind, key if kind == "pem" else None)
    except ConfigError as exc:
        yield "JWT_ALGORITHMS", str(exc)
        return
    if kind == "secret":
        need = max(int(a[2:]) // 8 for a in algorithms)  # RFC 7518 3.2: key at least the hash size
        if len(key) < need:
            yield "JWT_SECRET", (f"{PREFIX}JWT_SECRET must be at least {need} bytes long for "
                                 f"{', '.join(algorithms)} (got {len(key)})")
            return
    ctx["auth_key"] = (kind, key, algorithms)


def _rule_auth_issuer(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    if v["AUTH"] == "jwt" and not v["JWT_ISSUER"]:
        yield "JWT_ISSUER", f"{PREFIX}JWT_ISSUER is required with {PREFIX}AUTH=jwt (the exact iss of your tokens)"


def _rule_auth_audience(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    if v["AUTH"] == "jwt" and not v["JWT_AUDIENCE"]:
        yield "JWT_AUDIENCE", (f"{PREFIX}JWT_AUDIENCE is required with {PREFIX}AUTH=jwt "
                               "(comma list of accepted aud)")


def _rule_claims_need_sign_in(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    claims = _PLACEHOLDER.findall(v["PREFIX"])
    if claims and v["AUTH"] != "jwt":  # only signing needs the claims
        yield "PREFIX", (f"{PREFIX}PREFIX uses {{{claims[0]}}}: that needs a signed-in user ({PREFIX}AUTH=jwt)")


def _rule_limits_need_one_object_forms(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    if v["USER_LIMITS"] and (v["PREFIX_FORMS"] or v["COMPAT"] == "seed"):
        # a prefix form stores any number of objects for one spend: allowances could not hold
        yield "USER_LIMITS", (f"{PREFIX}USER_LIMITS cannot be combined with prefix forms "
                              f"({PREFIX}PREFIX_FORMS=true or {PREFIX}COMPAT=seed): one form would "
                              "store any number of objects for one spend")


def _rule_stored_needs_one_store(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    limits = v["USER_LIMITS"]
    if limits and limits[3] is not None and v["LIMITS_STORE"].startswith("sqlite:") and ctx["on_function_compute"]:
        # the signature function reserves, the callback and the process function settle: one store for all
        yield "LIMITS_STORE", (f"{PREFIX}USER_LIMITS stored= needs one store every function shares, and "
                               f"{PREFIX}LIMITS_STORE is a SQLite file each Function Compute instance keeps to "
                               "itself: set tablestore://<instance>/<table>?endpoint=...")


def _rule_records_shared(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    records = v["RECORDS"]
    if records.startswith("sqlite:") and not _shared_records(records, ctx["on_function_compute"]):
        yield "RECORDS", (f"{PREFIX}RECORDS is a SQLite file, which each Function Compute instance keeps "
                          "to itself: records would be neither exactly-once nor readable by the page; set "
                          "tablestore://<instance>/<table>?endpoint=... (or sls:// for a log only)")


def _rule_quarantine_outside_prefix(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    qprefix, upload_prefix = v["QUARANTINE_PREFIX"], ctx.get("upload_prefix")
    if upload_prefix is None:
        if "PREFIX" not in v:
            return  # the prefix's own problem is reported
        upload_prefix = v["PREFIX"].split("{", 1)[0]
    if qprefix.startswith(upload_prefix) or upload_prefix.startswith(qprefix):
        yield "QUARANTINE_PREFIX", (f"{PREFIX}QUARANTINE_PREFIX ({qprefix!r}) must lie outside the upload prefix "
                                    f"({upload_prefix or '/'}): quarantined objects must leave the public prefix")


def _rule_hook_loads(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Iterator[tuple[str, str]]":
    on_upload = v["ON_UPLOAD"]
    if not on_upload or not ctx["import_hooks"]:
        return
    import importlib

    module, _, func = on_upload.partition(":")
    try:
        hook = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        yield "ON_UPLOAD", f"{PREFIX}ON_UPLOAD={on_upload} cannot be loaded: {exc}"
        return
    if not callable(hook):
        yield "ON_UPLOAD", f"{PREFIX}ON_UPLOAD={on_upload} is not callable"
        return
    ctx["hook"] = hook


class Rule(_Frozen):
    """A cross-field rule: runs for ``functions`` (None: whenever its inputs are read) once every input parsed."""

    __slots__ = ("inputs", "functions", "check")
    inputs: "tuple[str, ...]"
    functions: "tuple[str, ...] | None"
    check: "Callable[[dict[str, Any], dict[str, Any]], Iterator[tuple[str, str]]]"

    def __init__(self, inputs: "tuple[str, ...]", functions: "tuple[str, ...] | None",
                 check: "Callable[[dict[str, Any], dict[str, Any]], Iterator[tuple[str, str]]]") -> None:
        self._set("inputs", inputs)
        self._set("functions", functions)
        self._set("check", check)


RULES: "tuple[Rule, ...]" = (
    Rule(("REGION",), None, _rule_region_required),
    Rule(("MIN_BYTES", "MAX_BYTES"), None, _rule_bytes_order),
    Rule(("AUTH",) + _KEY_SOURCES, None, _rule_auth_sources),
    Rule(("AUTH", "JWT_ALGORITHMS") + _KEY_SOURCES, None, _rule_auth_key),
    Rule(("AUTH", "JWT_ISSUER"), None, _rule_auth_issuer),
    Rule(("AUTH", "JWT_AUDIENCE"), None, _rule_auth_audience),
    Rule(("COMPAT", "AUTH", "AUTHORIZER"), None, _rule_seed_without_sign_in),
    Rule(("PREFIX", "AUTH"), _SIG, _rule_claims_need_sign_in),
    Rule(("USER_LIMITS", "PREFIX_FORMS", "COMPAT"), _SIG, _rule_limits_need_one_object_forms),
    Rule(("USER_LIMITS", "LIMITS_STORE"), None, _rule_stored_needs_one_store),
    Rule(("RECORDS",), (CALLBACK, PROCESS), _rule_records_shared),
    Rule(("QUARANTINE_PREFIX",), (PROCESS,), _rule_quarantine_outside_prefix),
    Rule(("ON_UPLOAD",), (PROCESS,), _rule_hook_loads),
)


def environ(env: "Mapping[str, str] | None" = None) -> "Mapping[str, str]":
    """The mapping settings are read from: ``env``, or the process environment (the one place it is read)."""
    return os.environ if env is None else env


def client_default(name: str) -> "str | None":
    """A client-side variable (``OSSDIRECT_SIGNATURE_URL``, ``OSSDIRECT_TOKEN``) for the command line's defaults."""
    return os.environ.get(PREFIX + name)


def _run(env: "Mapping[str, str]", function: "str | None", sections: "tuple[str, ...]", need_region: bool,
         import_hooks: bool, facts: "dict[str, Any] | None" = None) -> "tuple[dict[str, Any], dict[str, Any]]":
    """Parse every setting read (``function``'s, within ``sections`` when given), run every rule whose
    inputs are all read and parsed, and raise ONE ConfigError with every problem, each once; else the
    parsed values (a setting not read: its default) and what the rules loaded."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    read: set[str] = set()
    failed: set[str] = set()
    for s in SETTINGS:
        reads = (function is None or function in s.functions) and (not sections or s.section in sections)
        raw = env.get(PREFIX + s.name, s.default).strip() if reads else s.default
        if s.empty_is_default and not raw:
            raw = s.default
        if reads:
            read.add(s.name)
        try:
            values[s.name] = s.parse(raw, s.name)
        except ConfigError as exc:
            if not reads:  # a default with no value (the bucket): not this caller's problem
                values[s.name] = raw
                continue
            failed.add(s.name)
            problems.extend(exc.problems)
    ctx: dict[str, Any] = {"need_region": need_region, "import_hooks": import_hooks,
                           # the runtime sets these in every instance (FC3 docs, "environment variables")
                           "on_function_compute": bool(env.get("FC_FUNCTION_NAME") or env.get("FC_INSTANCE_ID"))}
    ctx.update(facts or {})
    for rule in RULES:
        if rule.functions is not None and function not in rule.functions:
            continue
        if not read.issuperset(rule.inputs) or failed.intersection(rule.inputs):
            continue  # not this function's, or its input's own problem is reported (each problem once)
        problems.extend((name, message) for name, message in rule.check(values, ctx))
    if problems:
        raise ConfigError(problems=list(dict.fromkeys(problems)))
    return values, ctx


def _auth(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Any":
    if v["AUTH"] != "jwt":
        return AuthSettings()
    kind, key, algorithms = ctx["auth_key"]
    return AuthSettings(mode="jwt", key_kind=kind, jwks_url=key if kind == "jwks" else "",
                        public_key=key if kind == "pem" else None, secret=key if kind == "secret" else b"",
                        issuer=v["JWT_ISSUER"], audience=v["JWT_AUDIENCE"], algorithms=algorithms,
                        leeway=v["JWT_LEEWAY_SECONDS"])


def _config(v: "dict[str, Any]", ctx: "dict[str, Any]") -> Config:
    bucket, region, prefix = v["BUCKET"], v["REGION"], v["PREFIX"]
    auth = _auth(v, ctx)
    upload_host = v["UPLOAD_HOST"] or (f"https://{bucket}.oss-{region}.aliyuncs.com" if region else "")
    oss_endpoint = v["OSS_ENDPOINT"] or (f"https://{bucket}.oss-{region}-internal.aliyuncs.com" if region else "")
    return Config(
        bucket=bucket, region=region, upload_host=upload_host, public_base_url=v["PUBLIC_BASE_URL"] or upload_host,
        prefix=prefix, min_bytes=v["MIN_BYTES"], max_bytes=v["MAX_BYTES"], content_types=v["CONTENT_TYPES"],
        expires_seconds=v["EXPIRES_SECONDS"], callback_url=v["CALLBACK_URL"], callback_host=v["CALLBACK_HOST"],
        callback_body=v["CALLBACK_BODY"], callback_body_type=v["CALLBACK_BODY_TYPE"],
        allowed_origins=v["ALLOWED_ORIGINS"], records=v["RECORDS"], trusted_key_prefixes=v["TRUSTED_KEY_PREFIXES"],
        forbid_overwrite=v["FORBID_OVERWRITE"], success_status=v["SUCCESS_STATUS"], namings=v["KEY_NAMING"],
        allow_folders=v["ALLOW_FOLDERS"], prefix_forms=v["PREFIX_FORMS"], signature_versions=v["SIGNATURE_VERSIONS"],
        oss_endpoint=oss_endpoint, object_acl=v["OBJECT_ACL"], storage_class=v["STORAGE_CLASS"],
        content_disposition=v["CONTENT_DISPOSITION"], cache_control=v["CACHE_CONTROL"], compat=v["COMPAT"],
        record_log=v["RECORD_LOG"], auth=auth, authorizer=v["AUTHORIZER"],
        prefix_static=prefix.split("{", 1)[0], prefix_claims=tuple(_PLACEHOLDER.findall(prefix)),
        on_function_compute=ctx["on_function_compute"],
    )


def _limits(v: "dict[str, Any]") -> "Any":
    if v["USER_LIMITS"] is None:
        return None  # no allowances configured: limits.py is never loaded
    forms, nbytes, window, stored = v["USER_LIMITS"]
    return LimitSettings(forms, nbytes, window, v["LIMITS_STORE"], v["ANONYMOUS_LIMITS_BY_IP"], stored)


def _process(v: "dict[str, Any]", ctx: "dict[str, Any]") -> "Any":
    return ProcessSettings(v["QUARANTINE"], v["QUARANTINE_PREFIX"], v["ON_UPLOAD"] or None,
                           v["HOOK_MAX_ATTEMPTS"], ctx.get("hook"))


def load_settings(env: "Mapping[str, str] | None", function: str, import_hooks: bool = True) -> Settings:
    """Everything ``function`` (signature, callback, process) reads, parsed and checked against every rule
    that applies; one :class:`ConfigError` lists all problems. A setting the function does not read takes
    its default. ``import_hooks``: import ``OSSDIRECT_ON_UPLOAD``'s hook now (so a typo fails at cold start)."""
    names_for(function)  # an unknown function is a programming error, not a setting
    values, ctx = _run(environ(env), function, (), True, import_hooks)
    limits = _limits(values)
    if function != SIGNATURE and (limits is None or limits.stored is None):
        limits = None  # the callback and the process function only settle stored= reservations
    return Settings(function, _config(values, ctx), limits=limits,
                    process=_process(values, ctx) if function == PROCESS else None)


def load_config(environ: "Mapping[str, str] | None" = None, need_region: bool = True) -> Config:
    """Build a :class:`Config` from the environment (every ``config`` and ``auth`` setting of the table),
    or raise :class:`ConfigError` listing every problem."""
    values, ctx = _run(os.environ if environ is None else environ, None, ("config", "auth"), need_region, False)
    return _config(values, ctx)


def load_auth_section(env: "Mapping[str, str] | None" = None) -> "Any":
    """The sign-in settings alone (``ossdirect.core.auth.load_auth_settings``)."""
    values, ctx = _run(environ(env), None, ("auth",), False, False)
    return _auth(values, ctx)


def load_limits_section(env: "Mapping[str, str] | None" = None) -> "Any":
    """The allowances alone, or None (``ossdirect.core.limits.load_limit_settings``)."""
    values, ctx = _run(environ(env), None, ("limits",), False, False)
    return _limits(values)


def load_process_section(env: "Mapping[str, str] | None", upload_prefix: str, import_hooks: bool = True) -> "Any":
    """The process function's own settings, against ``upload_prefix`` (``ossdirect.core.events``)."""
    values, ctx = _run(environ(env), PROCESS, ("process",), False, import_hooks, {"upload_prefix": upload_prefix})
    return _process(values, ctx)


def deploy_environments(dotenv: "Mapping[str, str]") -> "dict[str, dict[str, str]]":
    """Each function's environment as s.yaml builds it from a deploy ``.env`` (``OSSDIRECT_DEPLOY_*``), for
    ``ossdirect check-config --env-file``. Mirrors s.yaml's vars and environmentVariables (a test keeps the
    two in step); the callback URL is fc3's system URL of the deployed callback, unknown before the deploy."""
    def d(name: str, default: str = "") -> str:
        return dotenv.get(PREFIX + "DEPLOY_" + name, "") or default

    region, bucket = d("REGION", "cn-hangzhou"), d("BUCKET")
    sls_endpoint = d("SLS_ENDPOINT", region + ".log.aliyuncs.com")
    sls_records = (f"sls://{d('SLS_PROJECT')}/{d('RECORD_LOGSTORE', 'upload-records')}?endpoint={sls_endpoint}"
                   "&timeout=2")
    tablestore = d("TABLESTORE_RECORDS")
    common = {"BUCKET": bucket, "REGION": region, "PREFIX": d("PREFIX", "uploads/"),
              "OSS_ENDPOINT": d("OSS_ENDPOINT", f"https://{bucket}.oss-{region}-internal.aliyuncs.com"),
              "RECORDS": tablestore or sls_records}
    record_log = sls_records if tablestore else ""
    common.update(USER_LIMITS=d("USER_LIMITS"), LIMITS_STORE=d("LIMITS_STORE", "sqlite:////tmp/ossdirect-limits.sqlite3"))
    out = {
        CALLBACK: dict(common, PUBLIC_BASE_URL=d("PUBLIC_BASE_URL"), RECORD_LOG=record_log, TRUSTED_KEY_PREFIXES="",
                       COMPAT=d("COMPAT", "none")),
        PROCESS: dict(common, RECORD_LOG=record_log, COMPAT=d("COMPAT", "none"), QUARANTINE=d("QUARANTINE", "move"),
                      QUARANTINE_PREFIX=d("QUARANTINE_PREFIX", "quarantine/"), ON_UPLOAD=d("ON_UPLOAD"),
                      HOOK_MAX_ATTEMPTS=d("HOOK_MAX_ATTEMPTS", "3")),
        SIGNATURE: dict(
            common, UPLOAD_HOST=d("UPLOAD_HOST", f"https://{bucket}.oss-{region}.aliyuncs.com"),
            PUBLIC_BASE_URL=d("PUBLIC_BASE_URL"), MIN_BYTES="1", MAX_BYTES="104857600",
            CONTENT_TYPES=DEFAULT_CONTENT_TYPES, EXPIRES_SECONDS="300", FORBID_OVERWRITE="true", SUCCESS_STATUS="",
            KEY_NAMING="random", ALLOW_FOLDERS="false", PREFIX_FORMS="false", SIGNATURE_VERSIONS="v4",
            OBJECT_ACL="default", STORAGE_CLASS="Standard", CONTENT_DISPOSITION="inline", CACHE_CONTROL="no-cache",
            CALLBACK_URL=DEPLOYED_CALLBACK_URL, CALLBACK_HOST="", CALLBACK_BODY="", CALLBACK_BODY_TYPE="form",
            ALLOWED_ORIGINS=d("SITE_ORIGIN"), COMPAT=d("COMPAT", "none"), AUTH=d("AUTH", "none"),
            JWT_JWKS_URL=d("JWT_JWKS_URL"), JWT_PUBLIC_KEY=d("JWT_PUBLIC_KEY"), JWT_SECRET=d("JWT_SECRET"),
            JWT_ISSUER=d("JWT_ISSUER"), JWT_AUDIENCE=d("JWT_AUDIENCE"), JWT_ALGORITHMS=d("JWT_ALGORITHMS"),
            JWT_LEEWAY_SECONDS=d("JWT_LEEWAY_SECONDS", "30"), AUTHORIZER=d("AUTHORIZER"),
            ANONYMOUS_LIMITS_BY_IP=d("ANONYMOUS_LIMITS_BY_IP", "true")),
    }
    # as deployed: on Function Compute (its runtime sets FC_FUNCTION_NAME)
    return {fn: dict({PREFIX + k: v for k, v in env.items()}, FC_FUNCTION_NAME=fn) for fn, env in out.items()}


# The signature function's OSSDIRECT_CALLBACK_URL before a deploy: fc3 fills in the callback's system URL.
DEPLOYED_CALLBACK_URL = "https://callback.fc-system-url.invalid"


def read_dotenv(text: str) -> "dict[str, str]":
    """A ``.env`` file as Serverless Devs reads it: NAME=value lines, ``#`` comments, optional ``export``
    and quotes."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[name.strip()] = value
    return out


# The signature function's cold-start warning without sign-in (logged, and said by check-config).
AUTH_NONE_WARNING = (f"{PREFIX}AUTH=none: anyone who can reach this function gets upload forms; "
                     f"set {PREFIX}AUTH=jwt for production")


# Region ids OSS serves (alibabacloud.com/help/en/oss/user-guide/regions-and-endpoints, 2026). A region not
# listed is a warning, not an error: new regions open, and finance clouds have their own ids.
OSS_REGIONS = (
    "cn-hangzhou", "cn-shanghai", "cn-nanjing", "cn-fuzhou", "cn-wuhan-lr", "cn-qingdao", "cn-beijing",
    "cn-zhangjiakou", "cn-huhehaote", "cn-wulanchabu", "cn-shenzhen", "cn-heyuan", "cn-guangzhou", "cn-chengdu",
    "cn-hongkong", "us-west-1", "us-east-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1",
    "ap-southeast-3", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "eu-central-1", "eu-west-1",
    "me-east-1", "me-central-1", "cn-hangzhou-finance", "cn-shanghai-finance-1", "cn-shenzhen-finance-1",
    "cn-beijing-finance-1",
)


def _did_you_mean(word: str, choices: "Sequence[str]") -> str:
    import difflib  # only when something is misspelt

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def config_warnings(env: "Mapping[str, str] | None", config: "Config | None", function: str) -> "list[str]":
    """Sentences about settings that are valid but probably wrong, for the cold-start log and check-config:
    unknown OSSDIRECT_* names, a region OSS does not list, and (signature function) an empty callback URL
    or origin list."""
    env = environ(env)
    out = []
    for name in sorted(k for k in env if k.startswith(PREFIX)):
        bare = name[len(PREFIX):]
        if bare not in ENV_NAMES and not bare.startswith(("DEPLOY_", "SETUP_")):  # .env names for s, setup
            out.append(f"{name} is not a setting and is ignored"
                       + _did_you_mean(bare, ENV_NAMES).replace("mean ", "mean " + PREFIX))
    if config is None:
        return out
    if config.region and config.region not in OSS_REGIONS:
        out.append(f"{PREFIX}REGION={config.region} is not a region OSS lists{_did_you_mean(config.region, OSS_REGIONS)}")
    if function == "signature":
        if not config.callback_url:
            out.append(f"{PREFIX}CALLBACK_URL is empty: uploads are stored but never recorded by the callback")
        if not config.allowed_origins:
            out.append(f"{PREFIX}ALLOWED_ORIGINS is empty: browsers on other origins cannot ask for forms")
        if config.on_function_compute and not config.shared_records():
            out.append(f"{PREFIX}RECORDS={config.records.split('?')[0]} is not shared by Function Compute instances: "
                       "the record poll and multipart uploads are refused (503 SharedStoreRequired); "
                       "set tablestore://<instance>/<table>?endpoint=...")
    return out


def lenient_origins(env: "Mapping[str, str] | None") -> "tuple[str, ...]":
    """The allowed origins as written, for error answers when the rest of the configuration is invalid
    (so the page can show the server's sentence instead of a CORS failure)."""
    raw = environ(env).get(PREFIX + "ALLOWED_ORIGINS", "")
    return tuple(o for o in _items(raw) if o == "*" or o.startswith(("http://", "https://")))


# ---------------------------------------------------------------------------------------------
# The sections load_settings returns beside Config: sign-in (with its key parsing), limits, process.
# They live here, not in core/, so this module imports nothing above it.

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
EDDSA_ALGORITHMS = ("EdDSA",)
PUBLIC_KEY_ALGORITHMS = RSA_ALGORITHMS + tuple(EC_ALGORITHMS) + EDDSA_ALGORITHMS
ALL_ALGORITHMS = HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS
_CANONICAL_ALG = {a.lower(): a for a in ALL_ALGORITHMS}
DEFAULT_SECRET_ALGORITHMS = ("HS256",)
DEFAULT_PUBLIC_ALGORITHMS = ("RS256", "ES256", "EdDSA")
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key must be at least as long as the hash
MIN_RSA_BITS = 2048
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


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

    def __init__(self, mode: str = "none", key_kind: str | None = None, jwks_url: str = "", public_key: Any = None,
                 secret: bytes = b"", issuer: str = "", audience: Sequence[str] = (), algorithms: Sequence[str] = (),
                 leeway: int = 30, jwks_timeout: float = 2.0, jwks_min_refresh_seconds: float = 30.0,
                 jwks_failure_backoff_seconds: float = 5.0, jwks_max_age_seconds: float = 3600.0) -> None:
        self.mode, self.key_kind, self.jwks_url = mode, key_kind, jwks_url
        self.public_key, self.secret = public_key, secret
        self.issuer, self.audience, self.algorithms, self.leeway = issuer, tuple(audience), tuple(algorithms), leeway
        self.jwks_timeout = jwks_timeout
        self.jwks_min_refresh_seconds = jwks_min_refresh_seconds
        self.jwks_failure_backoff_seconds = jwks_failure_backoff_seconds
        self.jwks_max_age_seconds = jwks_max_age_seconds

    @property
    def enabled(self) -> bool:
        return self.mode == "jwt"

    def __repr__(self) -> str:
        if not self.enabled:
            return "AuthSettings(mode='none')"
        key = {"secret": "secret=<hidden>", "pem": f"public_key=<{_key_description(self.public_key)}>",
               "jwks": f"jwks_url={self.jwks_url!r}"}[self.key_kind or "jwks"]
        return (f"AuthSettings(mode='jwt', {key}, issuer={self.issuer!r}, audience={self.audience!r}, "
                f"algorithms={self.algorithms!r}, leeway={self.leeway})")


def _jwks_url(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not parts.netloc or parts.username or parts.password or parts.fragment:
        raise ConfigError(f"{PREFIX}JWT_JWKS_URL must be an https URL, got {url!r}")
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK_HOSTS):
        raise ConfigError(f"{PREFIX}JWT_JWKS_URL must be an https URL (http only on loopback), got {url!r}")
    return url


def _public_key(text: str) -> Any:
    # Never echo the value: it is public, but a misplaced private key must not reach the logs.
    name = f"{PREFIX}JWT_PUBLIC_KEY"
    text = text.strip()
    if "\n" not in text and "\\n" in text:  # a PEM pasted into one line with literal \n
        text = text.replace("\\n", "\n")
    if "PRIVATE KEY" in text:
        raise ConfigError(f"{name} holds a private key; set the issuer's public key (PEM) instead")
    if not text.startswith("-----BEGIN "):
        raise ConfigError(f"{name} must be a PEM public key or certificate (-----BEGIN PUBLIC KEY-----)")
    from . import rsa

    key: Any
    try:  # RSA keys are read in the standard library: the cold start imports no cryptography for them
        key = rsa.from_pem(text)
    except rsa.RsaKeyError:
        raise ConfigError(f"{name} could not be read as a PEM public key or certificate") from None
    if key is None:
        key = _public_key_with_cryptography(text, name)
    kind = _key_family(key)
    if kind is None:
        raise ConfigError(f"{name} must be an RSA, EC (P-256/P-384/P-521) or Ed25519/Ed448 public key")
    if kind == "RSA" and key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"{name} is a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits are required")
    return key


def _public_key_with_cryptography(text: str, name: str) -> Any:
    """Certificates and EC/EdDSA keys; an RSA key found in a certificate becomes an ``rsa.RsaPublicKey``."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from . import rsa

    key: Any
    try:
        if text.startswith("-----BEGIN CERTIFICATE-----"):
            key = x509.load_pem_x509_certificate(text.encode()).public_key()
        else:
            key = load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        raise ConfigError(f"{name} could not be read as a PEM public key or certificate") from None
    if isinstance(key, crypto_rsa.RSAPublicKey):
        numbers = key.public_numbers()
        key = rsa.RsaPublicKey(numbers.n, numbers.e)
    return key


def _secret(text: str) -> bytes:
    name = f"{PREFIX}JWT_SECRET"
    value = text.strip().encode("utf-8")
    if value.startswith(b"-----BEGIN") or value.startswith(b"ssh-"):
        raise ConfigError(f"{name} looks like a PEM or SSH key; put public keys in {PREFIX}JWT_PUBLIC_KEY")
    if len(value) < MIN_SECRET_BYTES:
        raise ConfigError(f"{name} must be at least {MIN_SECRET_BYTES} bytes long (got {len(value)})")
    return value


def _algorithms(raw: str, key_kind: str | None, public_key: Any) -> tuple[str, ...]:
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


def _key_family(key: Any) -> str | None:
    from .rsa import RsaPublicKey

    if isinstance(key, RsaPublicKey):
        return "RSA"
    if key is None or isinstance(key, (bytes, str)):
        return None
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC" if key.curve.name in EC_ALGORITHMS.values() else None
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "OKP"
    return None


def _key_description(key: Any) -> str:
    family = _key_family(key)
    if family == "RSA":
        return f"RSA-{key.key_size}"
    if family == "EC":
        return f"EC {key.curve.name}"
    return type(key).__name__.replace("PublicKey", "") if key is not None else "none"


def alg_fits_key(alg: str, key: Any) -> bool:
    """True when the public-key algorithm ``alg`` can verify with ``key`` (a cryptography public key)."""
    family = _key_family(key)
    if alg in RSA_ALGORITHMS:
        return family == "RSA"
    if alg in EC_ALGORITHMS:
        return family == "EC" and key.curve.name == EC_ALGORITHMS[alg]
    if alg in EDDSA_ALGORITHMS:
        return family == "OKP"
    return False


class LimitSettings:
    """Validated limits (see load_limit_settings). ``forms``/``bytes`` None: that budget is unlimited."""

    __slots__ = ("forms", "bytes", "window", "store", "anonymous_by_ip", "stored")

    def __init__(self, forms: int | None = None, bytes: int | None = None, window: int = DEFAULT_WINDOW,
                 store: str = DEFAULT_LIMITS_STORE, anonymous_by_ip: bool = True, stored: int | None = None) -> None:
        self.forms, self.bytes, self.window = forms, bytes, window
        self.store, self.anonymous_by_ip, self.stored = store, anonymous_by_ip, stored

    def __repr__(self) -> str:
        return (f"LimitSettings(forms={self.forms!r}, bytes={self.bytes!r}, window={self.window!r}, "
                f"store={self.store!r}, anonymous_by_ip={self.anonymous_by_ip!r}, stored={self.stored!r})")

    def public(self) -> dict[str, int | None]:
        """What a client may know (no store URL)."""
        return {"forms": self.forms, "bytes": self.bytes, "window_seconds": self.window}


class ProcessSettings:
    __slots__ = ("quarantine", "quarantine_prefix", "on_upload", "hook_max_attempts", "hook")

    def __init__(self, quarantine: str, quarantine_prefix: str, on_upload: str | None, hook_max_attempts: int,
                 hook: Callable[..., Any] | None = None) -> None:
        self.quarantine, self.quarantine_prefix = quarantine, quarantine_prefix
        self.on_upload, self.hook_max_attempts, self.hook = on_upload, hook_max_attempts, hook
