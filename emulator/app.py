"""The Flask app: the emulator's state, the request checks every call goes through, and the dispatch
table that sends each call (method + sub-resource) to its API module: objects, multipart_upload,
listing_api, bucket, postobject."""

import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, g, request
from werkzeug.routing import PathConverter
from werkzeug.serving import WSGIRequestHandler, make_server

from . import bucket as bucket_api
from . import header_auth, listing_api, multipart_upload, objects, postobject
from .common import EXPOSE, PUBKEY_PATH, require, signed_headers, xml_response
from .errors import OSSError, request_id
from .events import EventSender, build_event
from .storage import Store
from .uploads import Uploads

log = logging.getLogger("emulator")
ANY = None  # a table row for every method


@dataclass

class EmulatorConfig:
    data_dir: str
    buckets: List[str] = field(default_factory=lambda: ["examplebucket"])
    region: str = "cn-hangzhou"
    # key id -> (secret, security token or None)
    accounts: Dict[str, Tuple[str, Optional[str]]] = field(default_factory=dict)
    cors_origins: List[str] = field(default_factory=list)  # a default CORS rule for these origins
    clock_offset: float = 0.0  # seconds added to "now"
    callback_timeout: float = 5.0
    index_document: str = "index.html"
    # OSS trigger events: POSTed (FC's OSS-trigger event JSON) to these loopback URLs after every upload
    event_targets: List[str] = field(default_factory=list)
    event_duplicates: int = 1  # test mode: every event delivered this many times ...
    event_shuffle: bool = False  # ... and in a random order (an int: the random seed)
    event_timeout: float = 5.0
    event_attempts: int = 4  # a failed delivery is retried with backoff, this many attempts in all
    # the trigger's rule, as FC's OSS trigger configures it: only these events (names without "oss:",
    # e.g. "ObjectCreated:PostObject"; None = every ObjectCreated event) for keys under this prefix
    event_names: Optional[List[str]] = None
    event_prefix: str = ""
    event_delay: float = 0.0  # seconds from the object being stored to its event being sent (OSS: async)
    account_id: str = "1000000000000000"  # the bucket owner's uid, in events' ARNs and identities
    # None: every loopback callback URL is called. A list: only these callback URLs (scheme, host, port
    # and path; the query may vary); any other fails as an unreachable callback (203), never requested.
    callback_urls: Optional[List[str]] = None
    # None: PostObject from any Origin. A list: a form sent with another Origin header is refused (403);
    # a form without Origin (not from a browser) is judged by its signature alone.
    post_origins: Optional[List[str]] = None
    # the configured buckets' ACL (PutBucketAcl changes it): "public-read" keeps anonymous GET working as
    # before; "private" is what OSS recommends (anonymous GET/HEAD of a "default"-ACL object: 403)
    bucket_acl: str = "public-read"


class Emulator:
    def __init__(self, config):
        self.config = config
        # first: a bad event target is refused before anything is created
        self.events = EventSender(config.event_targets, config.event_duplicates, config.event_shuffle,
                                  config.event_timeout, config.event_attempts, delay=config.event_delay)
        self.store = Store(os.path.join(config.data_dir, "buckets"))
        self.uploads = Uploads(self.store)
        self.key = _load_or_create_key(os.path.join(config.data_dir, "callback_key.pem"))
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        default_rule = {"origins": list(config.cors_origins), "methods": ["GET", "POST", "PUT", "HEAD", "DELETE"],
                        "headers": ["*"], "expose": [h.strip() for h in EXPOSE.split(",")], "max_age": 600}
        self.cors = {b: ([default_rule] if config.cors_origins else []) for b in config.buckets}
        self.index = {b: config.index_document for b in config.buckets}
        self.lifecycle = {b: [] for b in config.buckets}  # PutBucketLifecycle's rules (XML), stored only
        if config.bucket_acl not in bucket_api.BUCKET_ACLS:
            raise ValueError(f"bucket_acl must be one of {', '.join(bucket_api.BUCKET_ACLS)}")
        self.acl = {b: config.bucket_acl for b in config.buckets}  # PutBucketAcl / x-oss-acl on PutBucket
        self.started = self.now()
        self.created: Dict[str, float] = {}  # buckets made by PutBucket: their creation time
        self.base_url = ""  # set by serve(); used for the public key URL

    def now(self):
        return time.time() + self.config.clock_offset

    def object_created(self, operation, bucket, key, meta, previous_size):
        """Queue the OSS trigger event for a new object (never blocks, never raises)."""
        cfg = self.config
        if not cfg.event_targets or not key.startswith(cfg.event_prefix):
            return
        if cfg.event_names is not None and f"ObjectCreated:{operation}" not in cfg.event_names:
            return
        size = meta["size"]
        delta = size - previous_size if previous_size is not None else size
        user_meta = {k: v for k, v in meta.get("headers", {}).items() if k.startswith("x-oss-meta-")}
        args = dict(name=f"ObjectCreated:{operation}", bucket=bucket, key=key, etag=meta["etag"], size=size,
                    delta_size=delta, region=cfg.region, account_id=cfg.account_id, request_id=g.req_id,
                    source_ip=request.remote_addr or "", mime_type=meta["content_type"], user_meta=user_meta)
        self.events.emit(lambda rule_id: build_event(rule_id=rule_id, **args))


def _load_or_create_key(path):
    if os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with open(path + ".tmp", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.replace(path + ".tmp", path)
    return key


class _AnyPath(PathConverter):
    """Any key, control characters (newline, CR, 0x01) included: werkzeug's path converter stops at a newline."""

    regex = r"[^/][\s\S]*?"


def create_app(config):
    emu = config if isinstance(config, Emulator) else Emulator(config)
    app = Flask("emulator")
    app.url_map.converters["anypath"] = _AnyPath
    app.emulator = emu

    def target():
        """(bucket, key) from a virtual host or the path; bucket None when unknown."""
        host = (request.host or "").split(":")[0].lower()
        first = host.split(".")[0]
        path = request.path
        if "." in host and first in emu.cors:
            return first, path[1:]
        if host.endswith(".localhost"):
            # a virtual-hosted bucket this emulator does not have: only PutBucket of that name can answer
            return None, (first if path == "/" else None)
        parts = path[1:].split("/", 1)
        if parts[0] in emu.cors:
            return parts[0], parts[1] if len(parts) > 1 else ""
        return None, parts[0] if len(parts) == 1 or parts[1] == "" else None

    @app.before_request
    def start():
        g.req_id = request_id()
        g.started = time.perf_counter()
        host = request.environ.get("HTTP_HOST")
        if host is not None and not _host_allowed(host, request.environ):
            # DNS rebinding: a page on evil.example resolved to 127.0.0.1 still says Host: evil.example.
            raise OSSError(403, "AccessDenied", "The Host header does not name this emulator's loopback address "
                           "(127.0.0.1, localhost, [::1] or *.localhost, with its port).", "0003-00000001",
                           ArgumentName="Host", ArgumentValue=host)

    @app.after_request
    def finish(response):
        response.headers["x-oss-request-id"] = g.req_id
        bucket = getattr(g, "bucket", None)
        origin = request.headers.get("Origin")
        if bucket and origin and request.method != "OPTIONS":
            rule = bucket_api.match_cors(emu.cors.get(bucket, []), origin, request.method, [])
            if rule:
                response.headers["Access-Control-Allow-Origin"] = "*" if "*" in rule["origins"] else origin
                response.headers["Access-Control-Allow-Methods"] = ", ".join(rule["methods"])
                if rule["expose"]:
                    response.headers["Access-Control-Expose-Headers"] = ", ".join(rule["expose"])
                response.headers["Vary"] = "Origin"
        log.info("%s %s %s %s %.1fms", request.method, request.full_path.rstrip("?"), response.status_code,
                 response.calculate_content_length() or 0, (time.perf_counter() - g.started) * 1000)
        return response

    @app.errorhandler(OSSError)
    def oss_error(error):
        return xml_response(error, request.host)

    @app.errorhandler(Exception)
    def crashed(error):
        if hasattr(error, "code") and hasattr(error, "get_response") and error.code and error.code < 500:
            return xml_response(OSSError(error.code, "InvalidRequest", str(error.description)), request.host)
        log.exception("emulator error")
        return xml_response(OSSError(500, "InternalError", "We encountered an internal error. Please try again."),
                             request.host)

    @app.get(PUBKEY_PATH)
    def public_key():
        return Response(emu.public_pem, content_type="application/x-pem-file")

    @app.route("/", defaults={"path": ""}, methods=["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"])
    @app.route("/<anypath:path>", methods=["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"])
    def dispatch(path):
        bucket, key = target()
        if bucket is None:
            if key is not None and request.method in ("GET", "PUT"):
                # the service (ListBuckets) or a bucket not yet created (PutBucket)
                signer = header_auth.authenticate(request.method, key, "", signed_headers(),
                                                  request.query_string.decode("latin-1"), emu.config.accounts,
                                                  emu.config.region, time.time())
                if key == "" and request.method == "GET":
                    require(signer)
                    return bucket_api.list_buckets(emu)
                if key and request.method == "PUT" and not _unsupported():
                    require(signer)
                    return bucket_api.create_bucket(emu, key)
            raise OSSError(404, "NoSuchBucket", "The specified bucket does not exist.")
        g.bucket = bucket
        method = request.method
        if method == "OPTIONS":
            return bucket_api.preflight(emu, bucket)
        # Every request that carries a signature is verified, whatever it asks for; None = anonymous.
        signer = header_auth.authenticate(method, bucket, key, signed_headers(), request.query_string.decode("latin-1"),
                                          emu.config.accounts, emu.config.region, time.time())
        if key == "":
            return _bucket_call(emu, bucket, method, signer)
        return _object_call(emu, bucket, key, method, signer)

    return app


# --- dispatch ---------------------------------------------------------------------------------------
# A call is (emu, bucket, key, method, signer). Each table is searched in order; the first row whose
# sub-resource is in the query and whose method matches (ANY: every method) answers. signed=True: an
# anonymous call is refused before the handler runs.
BUCKET_CALLS = [
    # (sub-resource, methods, signed, handler)
    ("cors", ANY, True, lambda emu, b, k, m, s: bucket_api.bucket_cors(emu, b, m)),
    ("acl", ANY, True, lambda emu, b, k, m, s: bucket_api.bucket_acl(emu, b, m)),
    ("website", ANY, True, lambda emu, b, k, m, s: bucket_api.bucket_website(emu, b, m)),
    ("uploads", ("GET",), True, lambda emu, b, k, m, s: listing_api.list_uploads(emu, b)),
    ("lifecycle", ANY, True, lambda emu, b, k, m, s: bucket_api.bucket_lifecycle(emu, b, m)),
    ("list-type", ("GET",), True, lambda emu, b, k, m, s: listing_api.list_objects_v2(emu, b)),
    ("delete", ("POST",), True, lambda emu, b, k, m, s: objects.delete_multiple(emu, b)),
    # no live channel is ever created here (PutLiveChannel: 501), so ListLiveChannel's list is empty
    ("live", ("GET",), True, lambda emu, b, k, m, s: bucket_api.list_live_channels(emu, b)),
]
OBJECT_CALLS = [
    ("acl", ANY, False, lambda emu, b, k, m, s: objects.object_acl(emu, b, k, m, s)),
    ("uploads", ANY, True, lambda emu, b, k, m, s: multipart_upload.multipart_call(emu, b, k, m)),
    ("uploadId", ANY, True, lambda emu, b, k, m, s: multipart_upload.multipart_call(emu, b, k, m)),
    ("objectMeta", ("GET", "HEAD"), True, lambda emu, b, k, m, s: objects.get_object(emu, b, k, True, s)),
    ("tagging", ANY, True, lambda emu, b, k, m, s: objects.object_tagging(emu, b, k, m)),
    ("append", ("POST",), True, lambda emu, b, k, m, s: objects.append_object(emu, b, k)),
]
# query parameters that are signed sub-resources but select no other call
_PLAIN_PARAMS = ("security-token", "callback", "callback-var")


# OSS operations behind sub-resources this emulator does not implement (named in the 501 answer)
_OPERATIONS = {
    "versioning": "PutBucketVersioning/GetBucketVersioning", "versions": "ListObjectVersions",
    "versionId": "versioned object calls", "symlink": "PutSymlink/GetSymlink", "restore": "RestoreObject",
    "policy": "PutBucketPolicy/GetBucketPolicy/DeleteBucketPolicy", "referer": "PutBucketReferer/GetBucketReferer",
    "logging": "PutBucketLogging/GetBucketLogging", "encryption": "PutBucketEncryption/GetBucketEncryption",
    "tagging": "PutBucketTags/GetBucketTags", "stat": "GetBucketStat", "bucketInfo": "GetBucketInfo",
    "location": "GetBucketLocation", "x-oss-process": "image/video processing (x-oss-process)",
    "worm": "bucket retention (WORM)", "inventory": "bucket inventory", "replication": "bucket replication",
    "cname": "CNAME management", "requestPayment": "PutBucketRequestPayment",
    "transferAcceleration": "transfer acceleration", "qos": "QoS",
    "live": "LiveChannel (ListLiveChannel answers an empty list)", "img": "image styles",
    "style": "image styles", "asyncFetch": "AsyncFetch", "metaQuery": "MetaQuery", "resourceGroup": "resource groups",
    "objectInfo": "object info", "append": "AppendObject (POST only)", "delete": "DeleteMultipleObjects (POST only)",
}


def _unsupported():
    return [n for n in request.args if n in header_auth.SUBRESOURCES and not n.startswith("response-")
            and n not in _PLAIN_PARAMS]


def _not_implemented(names, method, bucket_level):
    ops = ", ".join(f"{_OPERATIONS.get(n, '?' + n)} ({method} {'bucket' if bucket_level else 'object'} ?{n})"
                    for n in names)
    return OSSError(501, "NotImplemented", f"This emulator does not implement {ops}; see docs/local-development.md.",
                    Operation=ops)


def _lookup(table, method):
    for name, methods, signed, handler in table:
        if name in request.args and (methods is ANY or method in methods):
            return signed, handler
    return None


def _bucket_call(emu, bucket, method, signer):
    """A call on the bucket itself (empty key)."""
    found = _lookup(BUCKET_CALLS, method)
    if found:
        if found[0]:
            require(signer)
        return found[1](emu, bucket, "", method, signer)
    unsupported = _unsupported()
    if unsupported:
        require(signer)
        raise _not_implemented(unsupported, method, bucket_level=True)
    if method == "POST":
        return postobject.post_object(emu, bucket)  # the form's own signature decides
    if method == "GET" and (signer is not None or any(n in request.args for n in listing_api.LISTING_PARAMS)):
        require(signer)
        return listing_api.list_objects_v1(emu, bucket)  # ListObjects (V1): an SDK's list call
    if method in ("GET", "HEAD"):  # a browser's anonymous GET of the bucket root: the website's index document
        return _object_call(emu, bucket, emu.index[bucket], method, signer)
    require(signer)
    if method == "PUT":  # CreateBucket on an emulated bucket: already there; x-oss-acl still sets its ACL
        if "x-oss-acl" in request.headers:
            emu.acl[bucket] = bucket_api.check_bucket_acl(request.headers["x-oss-acl"])
        return Response(status=200)
    if method == "DELETE":
        return bucket_api.delete_bucket(emu, bucket)
    raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")


def _object_call(emu, bucket, key, method, signer):
    found = _lookup(OBJECT_CALLS, method)
    if found:
        if found[0]:
            require(signer)
        return found[1](emu, bucket, key, method, signer)
    unsupported = _unsupported()
    if unsupported:
        raise _not_implemented(unsupported, method, bucket_level=False)
    if method == "PUT" and "x-oss-copy-source" in request.headers:
        require(signer)
        return objects.copy_object(emu, bucket, key)
    if key.endswith("/") and method in ("GET", "HEAD") and not emu.store.exists(bucket, key):
        key += emu.index[bucket]
    if method in ("GET", "HEAD"):
        return objects.get_object(emu, bucket, key, method == "HEAD", signer)
    if method == "PUT":
        return objects.put_object(emu, bucket, key, signer)
    if method == "DELETE":
        require(signer)
        return objects.delete_object(emu, bucket, key)
    raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")


# --- access ------------------------------------------------------------------------------------
def _host_allowed(host, environ):
    """Host names this server on loopback: 127.0.0.0/8, [::1], localhost, *.localhost (never resolved by
    DNS, so a rebinding page cannot use them), or the address it is bound to, with its own port."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else (None if rest else "")
    elif host.count(":") == 1:
        name, port = host.split(":")
    elif ":" not in host:
        name, port = host, ""
    else:
        return False
    server_port = str(environ.get("SERVER_PORT", ""))
    if port is None or (port or "80") != server_port:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    bound = str(environ.get("SERVER_NAME", "")).strip("[]")
    return not address.is_unspecified and name == bound


# --- serving --------------------------------------------------------------------------------------
class Served:
    def __init__(self, emulator, server, thread, host):
        self.emulator, self.server, self.thread = emulator, server, thread
        self.port = server.server_port
        self.url = f"http://{host}:{self.port}"
        self.pubkey_url = self.url + PUBKEY_PATH

    def shutdown(self):
        self.server.shutdown()
        self.server.server_close()
        self.emulator.events.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


class _Handler(WSGIRequestHandler):
    def version_string(self):  # the one Server header, as OSS's
        return "AliyunOSS"


def _one_malloc_arena():
    """Every thread allocates from glibc's main arena (mallopt M_ARENA_MAX = 1; no-op elsewhere). The
    server runs each request, and each upload's MD5, in a new thread; with the default 8 arenas per core,
    4 parallel part streams spread over up to 16 arenas that glibc keeps grown: RSS climbed ~10 MiB per
    256 MiB uploaded. The threads allocate under the GIL anyway, so one arena costs no speed. Takes
    effect for arenas not made yet: call before the server's threads start."""
    try:
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(-8, 1))  # -8: M_ARENA_MAX
    except (AttributeError, OSError):  # not glibc
        return False


def serve(config, host="127.0.0.1", port=0):
    """Start a threaded server in the background; returns a handle with .url/.port/.pubkey_url/.shutdown()."""
    _one_malloc_arena()
    emu = Emulator(config)
    app = create_app(emu)
    server = make_server(host, port, app, threaded=True, request_handler=_Handler)
    emu.base_url = f"http://{host}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="emulator")
    thread.start()
    return Served(emu, server, thread, host)
