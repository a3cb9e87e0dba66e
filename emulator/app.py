"""The Flask app: PostObject, object GET/HEAD/PUT/DELETE, CopyObject, object ACL, multipart upload,
ListObjectsV2, bucket CORS, website and lifecycle, callbacks, OSS trigger events."""

import base64
import email.utils
import hashlib
import ipaddress
import logging
import os
import re
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote, unquote, urlencode
from xml.sax.saxutils import escape as _esc

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, g, request, send_file
from werkzeug.serving import make_server

from . import auth, callback, header_auth, listing, multipart
from .errors import OSSError, request_id
from .events import EventSender, build_event
from .storage import Exists, Store
from .uploads import MAX_PART, MAX_PART_NUMBER, MIN_PART, Uploads

log = logging.getLogger("emulator")
PUBKEY_PATH = "/_emulator/callback_pub_key.pem"
EXPOSE = "ETag, x-oss-request-id, x-oss-hash-crc64ecma, Content-MD5"
# Headers stored with an object and returned on GET/HEAD exactly as received (plus every x-oss-meta-*).
_STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "expires", "x-oss-object-acl",
                   "x-oss-storage-class")
_HEADER_CASE = {"cache-control": "Cache-Control", "content-disposition": "Content-Disposition",
                "content-encoding": "Content-Encoding", "expires": "Expires"}
ACLS = ("private", "public-read", "public-read-write", "default")
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
_META_NAME = re.compile(r"x-oss-meta-[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
ANONYMOUS_DENIED = "You have no right to access this object because of bucket acl."


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


def _xml_response(error, host_id, status=None):
    body = error.xml(g.req_id, host_id)
    response = Response(body, status or error.status, content_type="application/xml")
    if error.ec:
        response.headers["x-oss-ec"] = error.ec
    if request.method == "HEAD":  # no body: OSS sends the error XML base64-encoded in x-oss-err
        response.headers["x-oss-err"] = base64.b64encode(body.encode("utf-8")).decode()
    return response


def create_app(config):
    emu = config if isinstance(config, Emulator) else Emulator(config)
    app = Flask("emulator")
    app.emulator = emu

    def target():
        """(bucket, key) from a virtual host or the path; bucket None when unknown."""
        host = (request.host or "").split(":")[0].lower()
        first = host.split(".")[0]
        path = request.path
        if "." in host and first in emu.cors:
            return first, path[1:]
        parts = path[1:].split("/", 1)
        if parts[0] in emu.cors:
            return parts[0], parts[1] if len(parts) > 1 else ""
        return None, None

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
        response.headers.setdefault("Server", "AliyunOSS")
        bucket = getattr(g, "bucket", None)
        origin = request.headers.get("Origin")
        if bucket and origin and request.method != "OPTIONS":
            rule = _match_cors(emu.cors.get(bucket, []), origin, request.method, [])
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
        return _xml_response(error, request.host)

    @app.errorhandler(Exception)
    def crashed(error):
        if hasattr(error, "code") and hasattr(error, "get_response") and error.code and error.code < 500:
            return _xml_response(OSSError(error.code, "InvalidRequest", str(error.description)), request.host)
        log.exception("emulator error")
        return _xml_response(OSSError(500, "InternalError", "We encountered an internal error. Please try again."),
                             request.host)

    @app.get(PUBKEY_PATH)
    def public_key():
        return Response(emu.public_pem, content_type="application/x-pem-file")

    @app.route("/", defaults={"path": ""}, methods=["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"])
    @app.route("/<path:path>", methods=["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"])
    def dispatch(path):
        bucket, key = target()
        if bucket is None:
            raise OSSError(404, "NoSuchBucket", "The specified bucket does not exist.")
        g.bucket = bucket
        method = request.method
        if method == "OPTIONS":
            return _preflight(emu, bucket)
        # Every request that carries a signature is verified, whatever it asks for; None = anonymous.
        signer = header_auth.authenticate(method, bucket, key, signed_headers(), request.query_string.decode("latin-1"),
                                          emu.config.accounts, emu.config.region, time.time())
        if key == "" and "cors" in request.args:
            _require(signer)
            return _bucket_cors(emu, bucket, method)
        if key == "" and "website" in request.args:
            _require(signer)
            return _bucket_website(emu, bucket, method)
        if key == "" and "uploads" in request.args and method == "GET":
            _require(signer)
            return _list_uploads(emu, bucket)
        if key == "" and "lifecycle" in request.args:
            _require(signer)
            return _bucket_lifecycle(emu, bucket, method)
        if key == "" and method == "GET" and "list-type" in request.args:
            _require(signer)
            return _list_objects_v2(emu, bucket)
        if key == "" and any(n in header_auth.SUBRESOURCES for n in request.args):
            _require(signer)
            raise OSSError(501, "NotImplemented", "This emulator implements only the cors, website, lifecycle "
                           "and uploads bucket sub-resources.")
        if method == "POST" and key == "":
            return _post_object(emu, bucket)  # the form's own signature decides
        if key == "" and method in ("GET", "HEAD"):
            key = emu.index[bucket]
        elif key == "":
            _require(signer)
            if method == "PUT":
                return Response(status=200)  # CreateBucket on an emulated bucket: already there
            raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        if "acl" in request.args:
            return _object_acl(emu, bucket, key, method, signer)
        if "uploads" in request.args or "uploadId" in request.args:
            _require(signer)
            return _multipart_call(emu, bucket, key, method)
        if "objectMeta" in request.args and method in ("GET", "HEAD"):  # GetObjectMeta: HEAD's headers
            _require(signer)
            return _get_object(emu, bucket, key, True, signer)
        unsupported = [n for n in request.args if n in header_auth.SUBRESOURCES and not n.startswith("response-")
                       and n not in ("security-token", "callback", "callback-var")]
        if unsupported:
            raise OSSError(501, "NotImplemented", f"This emulator does not implement {', '.join(unsupported)}.")
        if method == "PUT" and "x-oss-copy-source" in request.headers:
            _require(signer)
            return _copy_object(emu, bucket, key)
        if key.endswith("/") and method in ("GET", "HEAD") and not emu.store.exists(bucket, key):
            key += emu.index[bucket]
        if method in ("GET", "HEAD"):
            return _get_object(emu, bucket, key, method == "HEAD", signer)
        if method == "PUT":
            return _put_object(emu, bucket, key, signer)
        if method == "DELETE":
            _require(signer)
            emu.store.delete(bucket, key)
            return Response(status=204)
        raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")

    return app


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


def signed_headers():
    """Request headers, lower-case names, values as the client's UTF-8 (surrogate-escaped) text."""
    out = {}
    for name, value in request.headers.items():
        out[name.lower()] = value.strip().encode("latin-1").decode("utf-8", "surrogateescape")
    return out


def _require(signer):
    if signer is None:
        raise OSSError(403, "AccessDenied", ANONYMOUS_DENIED, "0003-00000001")


def _acl_of(meta):
    return (meta or {}).get("headers", {}).get("x-oss-object-acl", "default")


def _check_acl_and_class(headers):
    acl = headers.get("x-oss-object-acl")
    if acl is not None and acl not in ACLS:
        raise OSSError(400, "InvalidArgument", "no such object access control exists", "0016-00000902",
                       ArgumentName="x-oss-object-acl", ArgumentValue=acl)
    storage = headers.get("x-oss-storage-class")
    if storage is not None and storage not in STORAGE_CLASSES:
        raise OSSError(400, "InvalidArgument", "Invalid storage class.", ArgumentName="x-oss-storage-class",
                       ArgumentValue=storage)


def _object_acl(emu, bucket, key, method, signer):
    """GetObjectAcl / PutObjectAcl (x-oss-object-acl header); both need a signature."""
    _require(signer)
    found = emu.store.get(bucket, key)
    if found is None:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
    if method == "PUT":
        acl = request.headers.get("x-oss-object-acl", "")
        _check_acl_and_class({"x-oss-object-acl": acl})
        try:
            emu.store.update_headers(bucket, key, {"x-oss-object-acl": acl})
        except FileNotFoundError:
            raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key) from None
        return Response(status=200)
    if method not in ("GET", "HEAD"):
        raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<AccessControlPolicy><Owner><ID>emulator</ID>'
            '<DisplayName>emulator</DisplayName></Owner><AccessControlList><Grant>'
            f"{_acl_of(found[0])}</Grant></AccessControlList></AccessControlPolicy>")
    return Response(body, 200, content_type="application/xml")


# --- objects -----------------------------------------------------------------------------------
def _object_headers(meta):
    headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
               "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(meta["last_modified"])),
               "x-oss-object-type": meta.get("object_type", "Normal"), "x-oss-storage-class": "Standard"}
    if meta.get("content_md5"):  # a multipart object has none (its ETag is not an MD5 either)
        headers["Content-MD5"] = meta["content_md5"]
    for name, value in meta.get("headers", {}).items():
        headers[_HEADER_CASE.get(name, name)] = _header_safe(value)
    return headers


def _header_safe(value):
    """A stored value as an HTTP header value: exactly as stored, except that the control characters a
    form field may carry but a header cannot (CR, LF, ...) go out as %XX."""
    return _BAD_VALUE.sub(lambda m: "%%%02X" % ord(m.group()), value)


def _get_object(emu, bucket, key, head, signer):
    found = emu.store.get(bucket, key)
    if found is None:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
    meta, data_path = found
    if signer is None and _acl_of(meta) == "private":
        raise OSSError(403, "AccessDenied", "You have no right to access this object because of object acl.",
                       "0003-00000001")
    if head:
        response = Response(status=200, content_type=_header_safe(meta["content_type"]))
        response.headers["Content-Length"] = str(meta["size"])
    else:
        response = send_file(data_path, mimetype=_header_safe(meta["content_type"]), conditional=False, etag=False)
    response.headers["Content-Type"] = _header_safe(meta["content_type"])
    response.headers.update(_object_headers(meta))
    return response


def _put_object(emu, bucket, key, signer):
    _check_key(key)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if signer is None:
        # Only an object whose own ACL is public-read-write takes anonymous writes (as OSS); the new
        # object gets the default ACL, and an anonymous writer cannot choose another one.
        found = emu.store.get(bucket, key)
        if found is None or _acl_of(found[0]) != "public-read-write" or "x-oss-object-acl" in headers:
            _require(None)
    _check_acl_and_class(headers)
    conf, custom = _callback_params(headers)
    meta = {"content_type": headers.get("content-type") or "application/octet-stream",
            "headers": {k: v for k, v in headers.items() if k in _STORED_HEADERS or k.startswith("x-oss-meta-")}}
    overwrite = headers.get("x-oss-forbid-overwrite", "").lower() != "true"
    staged = _receive_body(emu, bucket, headers)
    previous = _size_of(emu, bucket, key)
    try:
        meta = emu.store.commit(bucket, key, staged, meta, overwrite)
    except Exists:
        raise _exists() from None
    result_headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
                      "Content-MD5": meta["content_md5"]}
    try:  # the trigger fires once the request is done: after its callback, as OSS notifies asynchronously
        if conf:
            return _run_callback(emu, bucket, key, meta, custom, conf, result_headers, "PutObject")
        return Response(status=200, headers=result_headers)
    finally:
        emu.object_created("PutObject", bucket, key, meta, previous)


_METADATA_HEADERS = ("cache-control", "content-disposition", "content-encoding", "expires")
MAX_COPY = 5 * 1024**3  # larger objects are copied with UploadPartCopy
_COPY_SOURCE_FORMAT = "Copy Source must mention the source bucket and key: /sourcebucket/sourcekey."


def _copy_source(emu, value):
    """(bucket, key) of ``x-oss-copy-source: /<bucket>/<url-encoded key>[?versionId=...]``."""
    raw, _, query = value.partition("?")
    if query:
        version = dict(p.partition("=")[::2] for p in query.split("&")).get("versionId")
        if version not in (None, "null"):  # this emulator keeps no versions
            raise OSSError(404, "NoSuchVersion", "The specified version does not exist.", VersionId=version)
    try:
        path = unquote(raw, errors="strict") if raw.isascii() else None
    except UnicodeDecodeError:
        path = None
    if path is None or not path.startswith("/"):
        raise OSSError(400, "InvalidArgument", _COPY_SOURCE_FORMAT, ArgumentName="x-oss-copy-source",
                       ArgumentValue=value)
    src_bucket, _, src_key = path[1:].partition("/")
    if not src_bucket or not src_key:
        raise OSSError(400, "InvalidArgument", _COPY_SOURCE_FORMAT, ArgumentName="x-oss-copy-source",
                       ArgumentValue=value)
    if src_bucket not in emu.cors:
        raise OSSError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=src_bucket)
    return src_bucket, src_key


def _http_date(value, name):
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        raise OSSError(400, "InvalidArgument", f"{name} is not a valid HTTP date.", ArgumentName=name,
                       ArgumentValue=value) from None


def _copy_preconditions(headers, meta):
    """x-oss-copy-source-if-*: 412 PreconditionFailed (match, unmodified-since) or 304 (none-match,
    modified-since), checked in that order as OSS documents."""
    etag, modified = meta["etag"], int(meta["last_modified"])
    match = headers.get("x-oss-copy-source-if-match")
    if match is not None and match.strip().strip('"').upper() != etag:
        raise OSSError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                       Condition="x-oss-copy-source-if-match")
    since = headers.get("x-oss-copy-source-if-unmodified-since")
    if since is not None and modified > _http_date(since, "x-oss-copy-source-if-unmodified-since"):
        raise OSSError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                       Condition="x-oss-copy-source-if-unmodified-since")
    none_match = headers.get("x-oss-copy-source-if-none-match")
    if none_match is not None and none_match.strip().strip('"').upper() == etag:
        raise OSSError(304, "NotModified", "The source object was not modified.")
    since = headers.get("x-oss-copy-source-if-modified-since")
    if since is not None and modified <= _http_date(since, "x-oss-copy-source-if-modified-since"):
        raise OSSError(304, "NotModified", "The source object was not modified.")


def _copy_object(emu, bucket, key):
    """CopyObject: ``PUT /<bucket>/<key>`` with ``x-oss-copy-source``. The data and (``COPY``, the
    default) the source's type and metadata (Cache-Control, Content-Disposition, Content-Encoding,
    Expires, x-oss-meta-*) are copied; ``REPLACE`` takes them from the request instead. The ACL and
    storage class are not copied: the request's ``x-oss-object-acl`` / ``x-oss-storage-class`` or the
    defaults. ``x-oss-forbid-overwrite: true`` refuses an existing target (except the source itself)."""
    _check_key(key)
    headers = {k.lower(): v for k, v in request.headers.items()}
    request.stream.read(64 * 1024)  # CopyObject has no body (clients may send Content-MD5 of an empty one)
    src_bucket, src_key = _copy_source(emu, headers["x-oss-copy-source"])
    directive = headers.get("x-oss-metadata-directive", "COPY")
    if directive not in ("COPY", "REPLACE"):
        raise OSSError(400, "InvalidArgument", "Invalid metadata directive.", ArgumentName="x-oss-metadata-directive",
                       ArgumentValue=directive)
    _check_acl_and_class(headers)
    if directive == "REPLACE":
        for name in headers:
            if name.startswith("x-oss-meta-") and not _META_NAME.fullmatch(name):
                raise OSSError(400, "InvalidArgument", "Invalid user metadata name.", ArgumentName=name)
    found = emu.store.get(src_bucket, src_key)
    if found is None:
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=src_key)
    src_meta, data_path = found
    _copy_preconditions(headers, src_meta)
    if src_meta["size"] > MAX_COPY:
        raise OSSError(400, "InvalidArgument", "The source object is larger than 5 GB: copy it with UploadPartCopy.")
    same = (src_bucket, src_key) == (bucket, key)
    forbid = headers.get("x-oss-forbid-overwrite", "").lower() == "true" and not same
    if forbid and emu.store.exists(bucket, key):
        raise _exists()
    if directive == "COPY":
        stored = {k: v for k, v in src_meta.get("headers", {}).items()
                  if k in _METADATA_HEADERS or k.startswith("x-oss-meta-")}
        meta = {"content_type": src_meta["content_type"], "headers": stored}
    else:
        meta = {"content_type": headers.get("content-type") or "application/octet-stream",
                "headers": {k: v for k, v in headers.items()
                            if k in _METADATA_HEADERS or k.startswith("x-oss-meta-")}}
    for name in ("x-oss-object-acl", "x-oss-storage-class"):
        if name in headers:
            meta["headers"][name] = headers[name]
    sink = emu.store.sink(bucket)
    try:
        with open(data_path, "rb") as source:  # an open file survives a concurrent delete of the source
            while chunk := source.read(multipart.CHUNK):
                sink.write(chunk)
        staged = sink.finish()
    except FileNotFoundError:
        sink.abort()
        raise OSSError(404, "NoSuchKey", "The specified key does not exist.", Key=src_key) from None
    except BaseException:
        sink.abort()
        raise
    previous = _size_of(emu, bucket, key)
    try:
        meta = emu.store.commit(bucket, key, staged, meta, overwrite=not forbid)
    except Exists:
        raise _exists() from None
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><ETag>"{meta["etag"]}"</ETag>'
            f"<LastModified>{_iso(meta['last_modified'])}</LastModified></CopyObjectResult>")
    try:
        return Response(body, 200, content_type="application/xml",
                        headers={"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"]})
    finally:
        emu.object_created("CopyObject", bucket, key, meta, previous)


def _list_objects_v2(emu, bucket):
    """ListObjectsV2 (GetBucketV2): see listing.py."""
    args = request.args
    if args.get("list-type") != "2":
        raise OSSError(400, "InvalidArgument", "list-type must be 2 (ListObjectsV2).", ArgumentName="list-type",
                       ArgumentValue=args.get("list-type", ""))
    encoded = _url_encoded()
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    start_after, token = args.get("start-after", ""), args.get("continuation-token", "")
    for name, value in (("prefix", prefix), ("delimiter", delimiter), ("start-after", start_after)):
        if len(value.encode("utf-8")) > 1023:
            raise OSSError(400, "InvalidArgument", f"{name} is longer than 1023 bytes.", ArgumentName=name)
    max_keys = _int_arg("max-keys", 100, 1, 1000)
    fetch_owner = args.get("fetch-owner", "false").lower()
    if fetch_owner not in ("true", "false", ""):
        raise OSSError(400, "InvalidArgument", "fetch-owner must be true or false.", ArgumentName="fetch-owner",
                       ArgumentValue=args.get("fetch-owner"))
    entries, next_token = listing.list_page(emu.store.metas(bucket), prefix, delimiter, start_after, token or None,
                                            max_keys)
    body = listing.list_xml(bucket, entries, next_token, prefix=prefix, delimiter=delimiter,
                            start_after=start_after, token=token, max_keys=max_keys, encoded=encoded,
                            fetch_owner=fetch_owner == "true", owner_id=emu.config.account_id)
    return Response(body, 200, content_type="application/xml")


def _bucket_lifecycle(emu, bucket, method):
    """PutBucketLifecycle (rules replaced), GetBucketLifecycle, DeleteBucketLifecycle."""
    if method == "PUT":
        body = request.stream.read(listing.MAX_BODY + 1)
        md5 = request.headers.get("Content-MD5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            raise OSSError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.", "0002-00000019")
        emu.lifecycle[bucket] = listing.parse_lifecycle(body)
        return Response(status=200)
    if method == "DELETE":
        emu.lifecycle[bucket] = []
        return Response(status=204)
    if method != "GET":
        raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    if not emu.lifecycle[bucket]:
        raise OSSError(404, "NoSuchLifecycle", "No Row found in Lifecycle Table.", BucketName=bucket)
    return Response(listing.lifecycle_xml(emu.lifecycle[bucket]), 200, content_type="application/xml")


def _receive_body(emu, bucket, headers):
    """Stream the request body to a staged file (never held in memory); checks Content-MD5."""
    sink = emu.store.sink(bucket)
    try:
        while True:
            chunk = request.stream.read(multipart.CHUNK)
            if not chunk:
                break
            sink.write(chunk)
        staged = sink.finish()
    except BaseException:
        sink.abort()
        raise
    if "content-md5" in headers and headers["content-md5"] != staged["content_md5"]:
        shutil.rmtree(staged["dir"], ignore_errors=True)
        raise OSSError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.", "0002-00000019")
    return staged


def _size_of(emu, bucket, key):
    found = emu.store.get(bucket, key)
    return found[0]["size"] if found else None


def _callback_params(headers):
    """(callback config, custom variables) from x-oss-callback / x-oss-callback-var headers or the
    callback / callback-var query parameters (PutObject, CompleteMultipartUpload); (None, {}) without."""
    def one(header, param):
        in_header, in_query = headers.get(header), request.args.get(param)
        if in_header is not None and in_query is not None:
            raise OSSError(400, "InvalidArgument", f"Specify {param} either in the header or in the query, "
                           "not both.", ArgumentName=param)
        return in_header if in_header is not None else in_query

    cb, var = one("x-oss-callback", "callback"), one("x-oss-callback-var", "callback-var")
    conf = callback.parse_callback(cb) if cb else None
    custom = callback.parse_callback_var(var) if (var and conf) else {}
    return conf, custom


def _exists():
    return OSSError(409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")


def _check_key(key):
    raw = key.encode("utf-8")
    if not 1 <= len(raw) <= 1023 or key.startswith(("/", "\\")):
        raise OSSError(400, "InvalidObjectName", "The specified object is not valid.")


# --- PostObject ----------------------------------------------------------------------------------
def _post_object(emu, bucket):
    length = request.content_length
    if length is None:
        raise OSSError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    if length > 5 * 1024**3 + 1024 * 1024:
        raise OSSError(400, "EntityTooLarge", "Post body size must be less than 5G.", "0006-00000003")
    state = {}

    def open_sink(field_list, filename, part_headers):
        every = {}  # lower-case name -> every value sent, in order
        for name, value in field_list:
            every.setdefault(name.lower(), []).append(value)
        fields = {name: values[0] for name, values in every.items()}  # the first one is used
        policy_b64 = auth.check_signature(fields, emu.config.accounts, emu.config.region, emu.now())
        size_range = None
        if policy_b64 is not None:
            doc = auth.decode_policy(policy_b64)
            expires = auth.parse_expiration(doc["expiration"])
            conditions = auth.normalize_conditions(doc["conditions"])
            if emu.now() > expires:
                raise OSSError(403, "AccessDenied", "Invalid according to Policy: Policy expired.", "0006-00000213")
            size_range = auth.check_conditions(conditions, every, bucket)  # every occurrence must pass
        key = fields.get("key")
        if not key:
            raise OSSError(400, "InvalidArgument", "The bucket POST must contain the specified 'key'. If it is "
                           "specified, please check the order of the fields")
        key = key.replace("${filename}", filename.replace("\\", "/").rsplit("/", 1)[-1])
        _check_key(key)
        conf = callback.parse_callback(fields["callback"]) if fields.get("callback") else None
        _check_acl_and_class(fields)
        for name, value in fields.items():
            if name.startswith("x-oss-meta-") and not _META_NAME.fullmatch(name):
                raise OSSError(400, "InvalidArgument", "Invalid user metadata name.", ArgumentName=name)
        forbid = fields.get("x-oss-forbid-overwrite", "").lower() == "true"
        if forbid and emu.store.exists(bucket, key):
            raise _exists()
        state.update(fields=fields, key=key, size_range=size_range, callback=conf, forbid=forbid,
                     part_type=part_headers.get("content-type", ""))
        return emu.store.sink(bucket)

    # The raw input stream: read_form never reads past Content-Length itself, and skipping werkzeug's
    # LimitedStream wrapper saves a copy per chunk on 1 GiB uploads.
    fields, file_info = multipart.read_form(request.environ["wsgi.input"], length,
                                            request.headers.get("Content-Type", ""), open_sink)
    if file_info is None:
        raise OSSError(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed "
                       "multipart/form-data: there is no file field.", "0006-00000107")
    filename, _, staged = file_info
    fields, key = state["fields"], state["key"]
    try:
        if state["size_range"] is not None:
            low, high = state["size_range"]
            if staged["size"] < low:
                raise OSSError(400, "EntityTooSmall", "Your proposed upload smaller than the minimum allowed size.",
                               "0006-00000004")
            if staged["size"] > high:
                raise OSSError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.",
                               "0006-00000003")
        content_type = (fields.get("x-oss-content-type") or state["part_type"] or fields.get("content-type")
                        or "application/octet-stream").encode("utf-8").decode("latin-1")  # header text
        # as header text: the form's UTF-8 bytes go back out unchanged
        stored = {k: fields[k].encode("utf-8").decode("latin-1") for k in fields
                  if k in _STORED_HEADERS or k.startswith("x-oss-meta-")}
        meta = {"content_type": content_type, "headers": stored}
        previous = _size_of(emu, bucket, key)
        meta = emu.store.commit(bucket, key, staged, meta, overwrite=not state["forbid"])
    except Exists:
        raise _exists() from None
    except BaseException:
        shutil.rmtree(staged["dir"], ignore_errors=True)  # a refused upload leaves nothing
        raise
    try:
        return _post_answer(emu, bucket, key, meta, fields, state)
    finally:  # after the callback (see _put_object)
        emu.object_created("PostObject", bucket, key, meta, previous)


def _post_answer(emu, bucket, key, meta, fields, state):
    result_headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"],
                      "Content-MD5": meta["content_md5"]}
    if state["callback"]:
        custom = {k: v for k, v in fields.items() if k.startswith("x:")}
        return _run_callback(emu, bucket, key, meta, custom, state["callback"], result_headers, "PostObject")
    redirect = fields.get("success_action_redirect")
    if redirect:
        sep = "&" if "?" in redirect else "?"
        location = redirect + sep + urlencode({"bucket": bucket, "key": key, "etag": f'"{meta["etag"]}"'})
        return Response(status=303, headers=dict(result_headers, Location=location))
    status = fields.get("success_action_status")
    if status == "201":
        location = f"{request.host_url.rstrip('/')}/{bucket}/{quote(key)}"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Bucket>{bucket}</Bucket>'
                f"<Location>{_esc(location)}</Location><Key>{_esc(key)}</Key><ETag>{meta['etag']}</ETag>"
                "</PostResponse>")
        return Response(body, 201, headers=result_headers, content_type="application/xml")
    return Response(status=200 if status == "200" else 204, headers=result_headers)


def _run_callback(emu, bucket, key, meta, custom, conf, result_headers, operation):
    found = emu.store.get(bucket, key)
    info = callback.image_info(found[1]) if found else None
    system = {
        "bucket": bucket, "object": key, "etag": meta["etag"], "size": str(meta["size"]),
        "mimeType": meta["content_type"], "crc64": meta["crc64"], "contentMd5": meta["content_md5"],
        "imageInfo.height": str(info[1]) if info else "", "imageInfo.width": str(info[0]) if info else "",
        "imageInfo.format": info[2] if info else "", "clientIp": request.remote_addr or "",
        "reqId": g.req_id, "operation": operation, "vpcId": "",
    }
    body = callback.render(conf["body"], conf["body_type"], system, custom).encode("utf-8")
    pubkey_url = f"{emu.base_url or request.host_url.rstrip('/')}{PUBKEY_PATH}"
    ok, outcome = callback.deliver(conf, body, emu.key, pubkey_url, bucket, g.req_id, emu.config.callback_timeout)
    if ok:
        return Response(outcome.content, 200, headers=result_headers, content_type="application/json")
    error = OSSError(203, "CallbackFailed", outcome, "0007-00000203")
    response = _xml_response(error, request.host)
    response.headers.update(result_headers)
    return response


# --- multipart upload -------------------------------------------------------------------------------
_MALFORMED_XML = ("The XML you provided was not well-formed or did not validate against our published schema.")
MAX_COMPLETE_BODY = 2 * 1024 * 1024  # 10000 parts of ~100 bytes each fit


def _multipart_call(emu, bucket, key, method):
    args = request.args
    if "uploads" in args:
        if method != "POST":
            raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        return _initiate_upload(emu, bucket, key)
    upload_id = args.get("uploadId", "")
    if method == "PUT":
        if "x-oss-copy-source" in request.headers:
            raise OSSError(501, "NotImplemented", "This emulator does not implement UploadPartCopy.")
        return _upload_part(emu, bucket, key, upload_id)
    if method == "GET":
        return _list_parts(emu, bucket, key, upload_id)
    if method == "POST":
        return _complete_upload(emu, bucket, key, upload_id)
    if method == "DELETE":
        emu.uploads.abort(bucket, upload_id, key)
        return Response(status=204)
    raise OSSError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")


def _url_encoded():
    value = request.args.get("encoding-type")
    if value not in (None, "", "url"):
        raise OSSError(400, "InvalidArgument", "Invalid Encoding Method specified in Request",
                       ArgumentName="encoding-type", ArgumentValue=value)
    return value == "url"


def _key_xml(text, encoded):
    return _esc(quote(text, safe="") if encoded else text)


def _xml(root, inner):
    return Response(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>', 200,
                    content_type="application/xml")


def _iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000Z"


def _initiate_upload(emu, bucket, key):
    _check_key(key)
    encoded = _url_encoded()
    headers = {k.lower(): v for k, v in request.headers.items()}
    _check_acl_and_class(headers)
    for name in headers:
        if name.startswith("x-oss-meta-") and not _META_NAME.fullmatch(name):
            raise OSSError(400, "InvalidArgument", "Invalid user metadata name.", ArgumentName=name)
    forbid = headers.get("x-oss-forbid-overwrite", "").lower() == "true"
    if forbid and emu.store.exists(bucket, key):
        raise _exists()
    meta = {"content_type": headers.get("content-type") or "application/octet-stream",
            "headers": {k: v for k, v in headers.items() if k in _STORED_HEADERS or k.startswith("x-oss-meta-")}}
    info = emu.uploads.initiate(bucket, key, meta, forbid)
    inner = (f"<Bucket>{_esc(bucket)}</Bucket><Key>{_key_xml(key, encoded)}</Key>"
             f"<UploadId>{info['upload_id']}</UploadId>")
    if encoded:
        inner += "<EncodingType>url</EncodingType>"
    return _xml("InitiateMultipartUploadResult", inner)


def _part_number(value):
    if value is None or not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PART_NUMBER:
        raise OSSError(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.",
                       ArgumentName="partNumber", ArgumentValue=value or "")
    return int(value)


def _upload_part(emu, bucket, key, upload_id):
    number = _part_number(request.args.get("partNumber"))
    emu.uploads.info(bucket, upload_id, key)  # before reading the body: unknown upload, nothing is read
    if request.content_length is not None and request.content_length > MAX_PART:
        raise OSSError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
    headers = {k.lower(): v for k, v in request.headers.items()}
    staged = _receive_body(emu, bucket, headers)
    if staged["size"] > MAX_PART:
        shutil.rmtree(staged["dir"], ignore_errors=True)
        raise OSSError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
    part = emu.uploads.put_part(bucket, upload_id, key, number, staged)
    return Response(status=200, headers={"ETag": f'"{part["etag"]}"', "x-oss-hash-crc64ecma": part["crc64"],
                                         "Content-MD5": part["content_md5"]})


def _int_arg(name, default, low, high):
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise OSSError(400, "InvalidArgument", f"{name} must be an integer from {low} to {high}.",
                       ArgumentName=name, ArgumentValue=value)
    return int(value)


def _list_parts(emu, bucket, key, upload_id):
    encoded = _url_encoded()
    max_parts = _int_arg("max-parts", 1000, 1, 1000)
    marker = _int_arg("part-number-marker", 0, 0, MAX_PART_NUMBER)
    parts = emu.uploads.parts(bucket, upload_id, key)
    numbers = [n for n in sorted(parts) if n > marker]
    shown, truncated = numbers[:max_parts], len(numbers) > max_parts
    inner = (f"<Bucket>{_esc(bucket)}</Bucket><Key>{_key_xml(key, encoded)}</Key><UploadId>{upload_id}</UploadId>"
             f"<PartNumberMarker>{marker}</PartNumberMarker>"
             f"<NextPartNumberMarker>{shown[-1] if shown else marker}</NextPartNumberMarker>"
             f"<MaxParts>{max_parts}</MaxParts><IsTruncated>{str(truncated).lower()}</IsTruncated>")
    if encoded:
        inner = "<EncodingType>url</EncodingType>" + inner
    for n in shown:
        p = parts[n]
        inner += (f"<Part><PartNumber>{n}</PartNumber><LastModified>{_iso(p['last_modified'])}</LastModified>"
                  f"<ETag>\"{p['etag']}\"</ETag><HashCrc64ecma>{p['crc64']}</HashCrc64ecma>"
                  f"<Size>{p['size']}</Size></Part>")
    return _xml("ListPartsResult", inner)


def _list_uploads(emu, bucket):
    encoded = _url_encoded()
    args = request.args
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    key_marker, id_marker = args.get("key-marker", ""), args.get("upload-id-marker", "")
    max_uploads = _int_arg("max-uploads", 1000, 1, 1000)
    entries, prefixes = [], []
    for info in emu.uploads.list(bucket):
        key = info["key"]
        if not key.startswith(prefix):
            continue
        if key_marker:
            kb, mb = key.encode("utf-8"), key_marker.encode("utf-8")
            if kb < mb or (kb == mb and (not id_marker or info["upload_id"] <= id_marker)):
                continue  # after the marker: later keys, or (with upload-id-marker) later uploads of that key
        if delimiter and delimiter in key[len(prefix):]:
            common = key[:len(prefix) + key[len(prefix):].index(delimiter) + len(delimiter)]
            if common not in prefixes:
                prefixes.append(common)
                entries.append(("prefix", common, info))
            continue
        entries.append(("upload", key, info))
    shown, truncated = entries[:max_uploads], len(entries) > max_uploads
    next_key = next_id = ""
    if truncated and shown:
        kind, name, info = shown[-1]
        next_key, next_id = name, (info["upload_id"] if kind == "upload" else "")
    e = (lambda text: _key_xml(text, encoded))
    inner = (f"<Bucket>{_esc(bucket)}</Bucket><KeyMarker>{e(key_marker)}</KeyMarker>"
             f"<UploadIdMarker>{_esc(id_marker)}</UploadIdMarker><NextKeyMarker>{e(next_key)}</NextKeyMarker>"
             f"<NextUploadIdMarker>{next_id}</NextUploadIdMarker><Delimiter>{e(delimiter)}</Delimiter>"
             f"<Prefix>{e(prefix)}</Prefix><MaxUploads>{max_uploads}</MaxUploads>"
             f"<IsTruncated>{str(truncated).lower()}</IsTruncated>")
    if encoded:
        inner = "<EncodingType>url</EncodingType>" + inner
    for kind, name, info in shown:
        if kind == "upload":
            inner += (f"<Upload><Key>{e(name)}</Key><UploadId>{info['upload_id']}</UploadId>"
                      f"<Initiated>{_iso(info['initiated'])}</Initiated></Upload>")
        else:
            inner += f"<CommonPrefixes><Prefix>{e(name)}</Prefix></CommonPrefixes>"
    return _xml("ListMultipartUploadsResult", inner)


def _complete_list():
    """[(part number, ETag without quotes)] from the CompleteMultipartUpload XML body."""
    length = request.content_length
    if length is not None and length > MAX_COMPLETE_BODY:
        raise OSSError(400, "InvalidArgument", "The CompleteMultipartUpload body is too large.")
    body = bytearray()
    while len(body) <= MAX_COMPLETE_BODY:
        chunk = request.stream.read(MAX_COMPLETE_BODY + 1 - len(body))
        if not chunk:
            break
        body += chunk
    body = bytes(body)
    if len(body) > MAX_COMPLETE_BODY:
        raise OSSError(400, "InvalidArgument", "The CompleteMultipartUpload body is too large.")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise OSSError(400, "MalformedXML", _MALFORMED_XML)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise OSSError(400, "MalformedXML", _MALFORMED_XML) from None
    if root.tag != "CompleteMultipartUpload":
        raise OSSError(400, "MalformedXML", _MALFORMED_XML)
    out = []
    for node in root.findall("Part"):
        number, etag = (node.findtext("PartNumber") or "").strip(), node.findtext("ETag")
        if not number.isascii() or not number.isdigit() or etag is None:
            raise OSSError(400, "MalformedXML", _MALFORMED_XML)
        if not 1 <= int(number) <= MAX_PART_NUMBER:
            raise OSSError(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.",
                           ArgumentName="PartNumber", ArgumentValue=number)
        out.append((int(number), etag.strip().strip('"').upper()))
    if not out:
        raise OSSError(400, "MalformedXML", _MALFORMED_XML)
    return out


def _invalid_part(number, etag):
    return OSSError(400, "InvalidPart", "One or more of the specified parts could not be found or the specified "
                    "entity tag might not have matched the part's entity tag.", PartNumber=str(number), ETag=etag)


def _choose_parts(parts, listed):
    """The parts to concatenate, in order, checked as OSS does: ascending numbers, each uploaded with
    that ETag, each but the last at least 100 KiB."""
    previous = 0
    for number, _ in listed:
        if number <= previous:
            raise OSSError(400, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list "
                           "must be specified in order by part number.", "0042-00000209")
        previous = number
    chosen = []
    for number, etag in listed:
        part = parts.get(number)
        if part is None or part["etag"] != etag:
            raise _invalid_part(number, etag)
        chosen.append(part)
    for part in chosen[:-1]:
        if part["size"] < MIN_PART:
            raise OSSError(400, "EntityTooSmall", "Your proposed upload smaller than the minimum allowed size.",
                           PartNumber=str(part["number"]), MinSizeAllowed=str(MIN_PART),
                           ProposedSize=str(part["size"]))
    return chosen


def _complete_upload(emu, bucket, key, upload_id):
    encoded = _url_encoded()
    info = emu.uploads.info(bucket, upload_id, key)
    headers = {k.lower(): v for k, v in request.headers.items()}
    conf, custom = _callback_params(headers)
    complete_all = headers.get("x-oss-complete-all", "").lower()
    if complete_all not in ("", "yes"):
        raise OSSError(400, "InvalidArgument", "x-oss-complete-all must be yes.", ArgumentName="x-oss-complete-all",
                       ArgumentValue=headers["x-oss-complete-all"])
    if complete_all:
        if request.stream.read(1):
            raise OSSError(400, "InvalidArgument", "Should not specify both the x-oss-complete-all header and a "
                           "part list in the body.")
        listed = None
    else:
        listed = _complete_list()
    forbid = info["forbid_overwrite"] or headers.get("x-oss-forbid-overwrite", "").lower() == "true"
    acl = headers.get("x-oss-object-acl")
    _check_acl_and_class({"x-oss-object-acl": acl} if acl is not None else {})
    with emu.uploads.lock:
        info = emu.uploads.info(bucket, upload_id, key)  # still there (not completed or aborted meanwhile)
        parts = emu.uploads.parts_in(emu.uploads.path(bucket, upload_id))
        if listed is None:
            listed = [(n, parts[n]["etag"]) for n in sorted(parts)]
            if not listed:
                raise OSSError(400, "InvalidArgument", "The upload has no parts to complete.")
        chosen = _choose_parts(parts, listed)
        if forbid and emu.store.exists(bucket, key):
            raise OSSError(409, "FileAlreadyExists", "The object you specified already exists and can not be "
                           "overwritten.", "0042-00000214")
        claimed = emu.uploads.claim(bucket, upload_id)
    # the parts now live under ``claimed``
    for part in chosen:
        part["path"] = os.path.join(claimed, "parts", str(part["number"]), "data")
    try:
        staged = emu.uploads.assemble(bucket, chosen)
        meta = dict(info["meta"], object_type="Multipart")
        if acl is not None:  # Complete may set the ACL too; it wins over Initiate's
            meta["headers"] = dict(meta["headers"], **{"x-oss-object-acl": acl})
        previous = _size_of(emu, bucket, key)
        meta = emu.store.commit(bucket, key, staged, meta, overwrite=not forbid)
    except Exists:
        emu.uploads.unclaim(bucket, upload_id, claimed)
        raise OSSError(409, "FileAlreadyExists", "The object you specified already exists and can not be "
                       "overwritten.", "0042-00000214") from None
    except BaseException:
        emu.uploads.unclaim(bucket, upload_id, claimed)
        raise
    emu.uploads.discard(claimed)
    try:  # the event after the callback (see _put_object)
        return _complete_answer(emu, bucket, key, meta, conf, custom, encoded)
    finally:
        emu.object_created("CompleteMultipartUpload", bucket, key, meta, previous)


def _complete_answer(emu, bucket, key, meta, conf, custom, encoded):
    result_headers = {"ETag": f'"{meta["etag"]}"', "x-oss-hash-crc64ecma": meta["crc64"]}
    if conf:
        return _run_callback(emu, bucket, key, meta, custom, conf, result_headers, "CompleteMultipartUpload")
    location = f"{request.host_url.rstrip('/')}/{bucket}/{quote(key)}"
    inner = (f"<Location>{_esc(location)}</Location><Bucket>{_esc(bucket)}</Bucket>"
             f"<Key>{_key_xml(key, encoded)}</Key><ETag>\"{meta['etag']}\"</ETag>")
    if encoded:
        inner = "<EncodingType>url</EncodingType>" + inner
    response = _xml("CompleteMultipartUploadResult", inner)
    response.headers.update(result_headers)
    return response


# --- CORS and website ------------------------------------------------------------------------------
def _match_cors(rules, origin, method, req_headers):
    for rule in rules:
        if not any(o == "*" or o == origin or ("*" in o and _wild(o, origin)) for o in rule["origins"]):
            continue
        if method not in rule["methods"]:
            continue
        allowed = [h.lower() for h in rule["headers"]]
        if all("*" in allowed or h.lower() in allowed for h in req_headers):
            return rule
    return None


def _wild(pattern, value):
    head, tail = pattern.split("*", 1)
    return value.startswith(head) and value.endswith(tail) and len(value) >= len(head) + len(tail)


def _preflight(emu, bucket):
    origin = request.headers.get("Origin")
    if not origin:
        raise OSSError(400, "BadRequest", "Insufficient information. Origin request header needed.")
    method = request.headers.get("Access-Control-Request-Method")
    if not method:
        raise OSSError(400, "BadRequest", "Insufficient information. Request Access-Control-Request-Method header "
                       "needed.")
    req_headers = [h.strip() for h in request.headers.get("Access-Control-Request-Headers", "").split(",") if h.strip()]
    rule = _match_cors(emu.cors.get(bucket, []), origin, method, req_headers)
    if rule is None:
        raise OSSError(403, "AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually "
                       "because the evalution of Origin, request method / Access-Control-Request-Method or "
                       "Access-Control-Requet-Headers are not whitelisted by the resource's CORS spec.")
    headers = {"Access-Control-Allow-Origin": "*" if "*" in rule["origins"] else origin,
               "Access-Control-Allow-Methods": ", ".join(rule["methods"]),
               "Access-Control-Max-Age": str(rule["max_age"]), "Vary": "Origin"}
    if req_headers:
        headers["Access-Control-Allow-Headers"] = ", ".join(req_headers)
    if rule["expose"]:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule["expose"])
    return Response(status=200, headers=headers)


def _bucket_cors(emu, bucket, method):
    if method == "PUT":
        try:
            root = ET.fromstring(request.get_data())
        except ET.ParseError:
            raise OSSError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        rules = []
        for node in root.findall("CORSRule"):
            rules.append({"origins": [e.text or "" for e in node.findall("AllowedOrigin")],
                          "methods": [(e.text or "").upper() for e in node.findall("AllowedMethod")],
                          "headers": [e.text or "" for e in node.findall("AllowedHeader")],
                          "expose": [e.text or "" for e in node.findall("ExposeHeader")],
                          "max_age": int(node.findtext("MaxAgeSeconds") or 0)})
        if not rules or len(rules) > 10:
            raise OSSError(400, "InvalidArgument", "A CORS configuration has 1 to 10 rules.")
        emu.cors[bucket] = rules  # PutBucketCors replaces all rules
        return Response(status=200)
    if method == "DELETE":
        emu.cors[bucket] = []
        return Response(status=204)
    if not emu.cors[bucket]:
        raise OSSError(404, "NoSuchCORSConfiguration", "The CORS configuration does not exist.")
    parts = []
    for r in emu.cors[bucket]:
        inner = "".join(f"<AllowedOrigin>{_esc(o)}</AllowedOrigin>" for o in r["origins"])
        inner += "".join(f"<AllowedMethod>{m}</AllowedMethod>" for m in r["methods"])
        inner += "".join(f"<AllowedHeader>{_esc(h)}</AllowedHeader>" for h in r["headers"])
        inner += "".join(f"<ExposeHeader>{_esc(h)}</ExposeHeader>" for h in r["expose"])
        inner += f"<MaxAgeSeconds>{r['max_age']}</MaxAgeSeconds>"
        parts.append(f"<CORSRule>{inner}</CORSRule>")
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<CORSConfiguration>' + "".join(parts) + "</CORSConfiguration>"
    return Response(body, 200, content_type="application/xml")


def _bucket_website(emu, bucket, method):
    if method == "PUT":
        try:
            root = ET.fromstring(request.get_data())
        except ET.ParseError:
            raise OSSError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        suffix = root.findtext("IndexDocument/Suffix")
        if not suffix:
            raise OSSError(400, "InvalidArgument", "IndexDocument Suffix is required.")
        emu.index[bucket] = suffix
        return Response(status=200)
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<WebsiteConfiguration><IndexDocument><Suffix>'
            f"{_esc(emu.index[bucket])}</Suffix></IndexDocument></WebsiteConfiguration>")
    return Response(body, 200, content_type="application/xml")


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


def serve(config, host="127.0.0.1", port=0):
    """Start a threaded server in the background; returns a handle with .url/.port/.pubkey_url/.shutdown()."""
    emu = Emulator(config)
    app = create_app(emu)
    server = make_server(host, port, app, threaded=True)
    emu.base_url = f"http://{host}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="emulator")
    thread.start()
    return Served(emu, server, thread, host)
