"""Configuration from ``OSSDIRECT_*`` environment variables (their names are public API).

Read and validated once at cold start; a bad value raises :class:`ConfigError`
naming the variable. Defaults are the secure ones: short expiry, no overwrite,
a size cap, server-named keys, no cross-origin access until origins are listed.
"""

import os
import re
from functools import lru_cache
from urllib.parse import urlsplit
from .errors import OssdirectError

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


def is_active_content_type(content_type):
    """A type a browser may render as a document: active itself, or one it sniffs (HTML bytes then run)."""
    ct = content_type.lower()
    return (ct in ACTIVE_CONTENT_TYPES or ct in SNIFFED_TYPES or ct.endswith(("+xml", "/xml"))
            or "javascript" in ct or "html" in ct)


@lru_cache(maxsize=512)
def _admitted_cached(patterns, content_type):  # the configured list is a tuple: fixed per instance
    return type_admitted(patterns, content_type)


def type_admitted(patterns, content_type):
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
    """A configuration variable is missing or invalid; the message names it."""


class Config:
    """Validated settings (see load_config). A plain class: dataclasses cost cold-start time."""

    __slots__ = (
        "bucket",
        "region",
        "upload_host",
        "public_base_url",
        "prefix",
        "min_bytes",
        "max_bytes",
        "content_types",
        "expires_seconds",
        "callback_url",
        "callback_host",
        "callback_body",
        "callback_body_type",
        "allowed_origins",
        "records",
        "trusted_key_prefixes",
        "forbid_overwrite",
        "success_status",
        "namings",
        "allow_folders",
        "prefix_forms",
        "signature_versions",
        "oss_endpoint",
        "object_acl",
        "storage_class",
        "content_disposition",
        "cache_control",
        "compat",
        "record_log",
        "auth",
        "authorizer",
        "prefix_static",
        "prefix_claims",
        "on_function_compute",
    )

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.pop(name))
        if values:
            raise TypeError(f"unknown settings {sorted(values)}")

    def content_type_allowed(self, content_type):
        return _admitted_cached(self.content_types, content_type)

    def public_limits(self):
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

    def shared_records(self):
        """Whether every instance of every function reads and writes the same records: Tablestore, or a
        SQLite file off Function Compute (the local stack's three functions share one). On FC a SQLite
        file is each instance's own: the record poll and multipart sessions cannot work there."""
        return self.records.startswith("tablestore:") or (self.records.startswith("sqlite:")
                                                           and not self.on_function_compute)


def _get(env, name, default=""):
    return env.get(PREFIX + name, default).strip()


def _int(env, name, default, lo, hi):
    raw = _get(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{PREFIX}{name} must be between {lo} and {hi}, got {value}")
    return value


def _bool(env, name, default):
    raw = _get(env, name, "true" if default else "false").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{PREFIX}{name} must be true or false, got {raw!r}")


def _choice(env, name, default, choices):
    raw = _get(env, name, default) or default
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ConfigError(f"{PREFIX}{name} must be one of {', '.join(choices)}, got {raw!r}")


def _header_value(env, name, default):
    raw = _get(env, name, default) or default
    if len(raw) > 256 or not all(" " <= c <= "~" for c in raw):
        raise ConfigError(f"{PREFIX}{name} must be a short printable ASCII header value, got {raw!r}")
    return raw


def _list(env, name, default=""):
    return tuple(item.strip() for item in _get(env, name, default).split(",") if item.strip())


def _url(env, name, value, allow_empty=True):
    if not value and allow_empty:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{PREFIX}{name} must be an http(s) URL, got {value!r}")
    return value


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
_CT_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")


def load_config(environ=None, need_region=True):
    """Build a :class:`Config` from the environment, or raise :class:`ConfigError`."""
    env = os.environ if environ is None else environ

    bucket = _get(env, "BUCKET")
    if not _BUCKET_RE.match(bucket):
        raise ConfigError(f"{PREFIX}BUCKET must be an OSS bucket name (3-63 of a-z, 0-9, -), got {bucket!r}")

    region = _get(env, "REGION")
    if region.startswith("oss-"):
        region = region[4:]
    if (need_region or region) and not _REGION_RE.match(region):
        raise ConfigError(f"{PREFIX}REGION must be a region id such as cn-hangzhou, got {region!r}")

    default_host = f"https://{bucket}.oss-{region}.aliyuncs.com" if region else ""
    # empty means "the default" for these two (deploy templates set every variable)
    upload_host = _url(env, "UPLOAD_HOST", (_get(env, "UPLOAD_HOST") or default_host).rstrip("/"))
    public_base_url = _url(env, "PUBLIC_BASE_URL", (_get(env, "PUBLIC_BASE_URL") or upload_host).rstrip("/"))

    prefix = _get(env, "PREFIX", "uploads/")
    if prefix == ROOT_PREFIX:
        prefix = ""  # the bucket root, chosen explicitly (see the README before doing this)
    elif not prefix:
        raise ConfigError(f"{PREFIX}PREFIX is empty: name a folder such as uploads/, or / for the bucket root")
    elif (prefix.startswith("/") or not prefix.endswith("/") or "\\" in prefix or ".." in prefix.split("/")
          or "//" in prefix or len(prefix.encode()) > 512 or not prefix.isprintable()):
        raise ConfigError(f"{PREFIX}PREFIX must be a relative folder ending in / such as uploads/, got {prefix!r}")

    from .core.auth import load_auth_settings  # here: auth.py imports this module

    auth = load_auth_settings(env)
    # Per-user folders: {sub} (or any claim) in the prefix is filled per request from the verified token.
    prefix_claims = tuple(_PLACEHOLDER.findall(prefix))
    if _PLACEHOLDER.sub("", prefix).count("{") or _PLACEHOLDER.sub("", prefix).count("}"):
        raise ConfigError(f"{PREFIX}PREFIX placeholders look like {{sub}} or {{claim_name}}, got {prefix!r}")
    prefix_static = prefix.split("{", 1)[0]
    authorizer = _get(env, "AUTHORIZER")
    if authorizer and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", authorizer):
        raise ConfigError(f"{PREFIX}AUTHORIZER must be module:function, got {authorizer!r}")

    min_bytes = _int(env, "MIN_BYTES", 1, 0, MAX_OSS_OBJECT)
    max_bytes = _int(env, "MAX_BYTES", 100 * 1024 * 1024, 1, MAX_OSS_OBJECT)
    if max_bytes < min_bytes:
        raise ConfigError(f"{PREFIX}MAX_BYTES ({max_bytes}) must not be below {PREFIX}MIN_BYTES ({min_bytes})")

    types = tuple("*" if t in ("*", "*/*") else t for t in (t.lower() for t in _list(env, "CONTENT_TYPES",
                                                                                     DEFAULT_CONTENT_TYPES)))
    if not types:
        raise ConfigError(f"{PREFIX}CONTENT_TYPES is empty: list the accepted types, or * for any inactive type")
    for t in types:
        if t != "*" and not _CT_RE.match(t):
            raise ConfigError(f"{PREFIX}CONTENT_TYPES has an invalid entry {t!r} (use type/subtype or type/*)")

    callback_url = _url(env, "CALLBACK_URL", _get(env, "CALLBACK_URL"))
    if urlsplit(callback_url).query or ";" in callback_url:
        # OSS signs the raw query, and FC3 events only carry it parsed: keep the URL query-free.
        raise ConfigError(f"{PREFIX}CALLBACK_URL must be one URL without a query string, got {callback_url!r}")
    callback_body = _get(env, "CALLBACK_BODY")
    if callback_body and "${x:upload_id}" not in callback_body:
        raise ConfigError(f"{PREFIX}CALLBACK_BODY must carry upload_id=${{x:upload_id}} (the callback checks it)")
    body_type = _get(env, "CALLBACK_BODY_TYPE", FORM_BODY_TYPE).lower()
    body_type = {"form": FORM_BODY_TYPE, "json": JSON_BODY_TYPE}.get(body_type, body_type)
    if body_type not in (FORM_BODY_TYPE, JSON_BODY_TYPE):
        raise ConfigError(f"{PREFIX}CALLBACK_BODY_TYPE must be form or json, got {body_type!r}")

    origins = _list(env, "ALLOWED_ORIGINS")
    for origin in origins:
        if origin != "*":
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("",):
                raise ConfigError(f"{PREFIX}ALLOWED_ORIGINS entries must look like https://example.com, got {origin!r}")

    records = _get(env, "RECORDS", "sqlite:///ossdirect-records.sqlite3")
    if not (records == "stdout" or records.startswith(("sqlite:///", "sls://", "tablestore://"))):
        raise ConfigError(f"{PREFIX}RECORDS must be sqlite:///path, stdout, sls://... or tablestore://..., "
                          f"got {records!r}")
    record_log = _get(env, "RECORD_LOG")
    if record_log and not record_log.startswith("sls://"):
        raise ConfigError(f"{PREFIX}RECORD_LOG must be sls://<project>/<logstore>?endpoint=..., got {record_log!r}")

    trusted = _list(env, "TRUSTED_KEY_PREFIXES")
    for p in trusted:
        parts = urlsplit(p)
        if parts.scheme not in ("http", "https") or not parts.netloc or not p.endswith("/"):
            raise ConfigError(f"{PREFIX}TRUSTED_KEY_PREFIXES entries must be URLs ending in '/', got {p!r}")

    success = _get(env, "SUCCESS_STATUS")
    if success not in ("", "200", "201", "204"):
        raise ConfigError(f"{PREFIX}SUCCESS_STATUS must be 200, 201 or 204, got {success!r}")

    namings = _list(env, "KEY_NAMING", "random")
    if not namings or any(n not in NAMINGS for n in namings):
        raise ConfigError(f"{PREFIX}KEY_NAMING must list random and/or original (first is the default), "
                          f"got {namings!r}")

    oss_endpoint = _get(env, "OSS_ENDPOINT") or (f"https://{bucket}.oss-{region}-internal.aliyuncs.com"
                                                 if region else "")
    oss_endpoint = _url(env, "OSS_ENDPOINT", oss_endpoint.rstrip("/"))

    versions = tuple(v.lower() for v in _list(env, "SIGNATURE_VERSIONS", "v4"))
    if not versions or any(v not in VERSIONS for v in versions):
        raise ConfigError(f"{PREFIX}SIGNATURE_VERSIONS must list v4 and/or v1 (first is the default), got {versions!r}")

    compat = _choice(env, "COMPAT", "none", ("none", "seed"))
    if compat == "seed" and (auth.mode != "none" or authorizer):
        # seed clients cannot pin our metadata: a record's user would be whatever the uploader wrote
        raise ConfigError(f"{PREFIX}COMPAT=seed cannot be combined with sign-in ({PREFIX}AUTH) or an "
                          f"{PREFIX}AUTHORIZER: seed forms cannot pin who uploaded")

    return Config(
        bucket=bucket,
        region=region,
        upload_host=upload_host,
        public_base_url=public_base_url,
        prefix=prefix,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        content_types=types,
        expires_seconds=_int(env, "EXPIRES_SECONDS", 300, 10, 7 * 24 * 3600),
        callback_url=callback_url,
        callback_host=_get(env, "CALLBACK_HOST"),
        callback_body=callback_body,
        callback_body_type=body_type,
        allowed_origins=origins,
        records=records,
        trusted_key_prefixes=trusted,
        forbid_overwrite=_bool(env, "FORBID_OVERWRITE", True),
        success_status=success,
        namings=namings,
        allow_folders=_bool(env, "ALLOW_FOLDERS", False),
        prefix_forms=_bool(env, "PREFIX_FORMS", False),
        signature_versions=versions,
        oss_endpoint=oss_endpoint,
        object_acl=_choice(env, "OBJECT_ACL", "default", OBJECT_ACLS),
        storage_class=_choice(env, "STORAGE_CLASS", "Standard", STORAGE_CLASSES),
        content_disposition=_choice(env, "CONTENT_DISPOSITION", "inline", DISPOSITIONS),
        cache_control=_header_value(env, "CACHE_CONTROL", "no-cache"),
        compat=compat,
        record_log=record_log,
        auth=auth,
        authorizer=authorizer,
        prefix_static=prefix_static,
        prefix_claims=prefix_claims,
        # the runtime sets these in every instance (FC3 docs, "environment variables"); never a user's setting
        on_function_compute=bool(env.get("FC_FUNCTION_NAME") or env.get("FC_INSTANCE_ID")),
    )


# Every variable load_config reads, without the prefix (s.yaml and the README are checked against it).
ENV_NAMES = (
    "BUCKET", "REGION", "UPLOAD_HOST", "PUBLIC_BASE_URL", "PREFIX", "MIN_BYTES", "MAX_BYTES",
    "CONTENT_TYPES", "EXPIRES_SECONDS", "CALLBACK_URL", "CALLBACK_HOST", "CALLBACK_BODY",
    "CALLBACK_BODY_TYPE", "ALLOWED_ORIGINS", "RECORDS", "TRUSTED_KEY_PREFIXES", "FORBID_OVERWRITE",
    "SUCCESS_STATUS", "KEY_NAMING", "ALLOW_FOLDERS", "PREFIX_FORMS", "SIGNATURE_VERSIONS",
    "OSS_ENDPOINT", "OBJECT_ACL", "STORAGE_CLASS", "CONTENT_DISPOSITION", "CACHE_CONTROL", "COMPAT",
    "RECORD_LOG", "AUTHORIZER",
    # read by auth.load_auth_settings (auth.AUTH_ENV_NAMES; a test keeps the two in step)
    "AUTH", "JWT_JWKS_URL", "JWT_PUBLIC_KEY", "JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ALGORITHMS",
    "JWT_LEEWAY_SECONDS",
    # read by limits.load_limit_settings (signature function) and events.load_process_settings
    # (process function): limits.LIMIT_ENV_NAMES, events.PROCESS_ENV_NAMES
    "USER_LIMITS", "LIMITS_STORE", "ANONYMOUS_LIMITS_BY_IP",
    "QUARANTINE", "QUARANTINE_PREFIX", "ON_UPLOAD", "HOOK_MAX_ATTEMPTS",
)


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


def _did_you_mean(word, choices):
    import difflib  # only when something is misspelt

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def config_warnings(env, config, function):
    """Sentences about settings that are valid but probably wrong, for the cold-start log and check-config:
    unknown OSSDIRECT_* names, a region OSS does not list, and (signature function) an empty callback URL
    or origin list."""
    out = []
    for name in sorted(k for k in env if k.startswith(PREFIX)):
        bare = name[len(PREFIX):]
        if bare not in ENV_NAMES and not bare.startswith("DEPLOY_"):
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


def lenient_origins(env):
    """The allowed origins as written, for error answers when the rest of the configuration is invalid
    (so the page can show the server's sentence instead of a CORS failure)."""
    env = os.environ if env is None else env
    return tuple(o for o in _list(env, "ALLOWED_ORIGINS") if o == "*" or o.startswith(("http://", "https://")))
