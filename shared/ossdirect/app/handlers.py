"""FC3 handlers: adapters from events to the logic in forms.py / callbacks.py.

Configuration is read once per instance (cold start). A bad configuration does
not crash the instance: every request answers 503 with the message naming the
variable, and the same line is logged.
"""

import json
import logging
import time

from ..settings import ConfigError, load_settings
from ..oss.credentials import CredentialsUnavailable, resolve_credentials
from .http import ApiError, cors_headers, error_response, json_response, json_text_response, parse_event

log = logging.getLogger("ossdirect")
RECORD_ANSWER_FIELDS = ("upload_id", "record_id", "key", "size", "etag", "content_type", "filename", "created_at",
                        "source", "status", "status_reason", "user", "payload", "content_type_detected",
                        "hook_status")


def _log(fn, request, response, started, **extra):
    if not log.isEnabledFor(logging.INFO):
        return
    entry = {"fn": fn, "method": getattr(request, "method", None), "path": getattr(request, "path", None),
             "status": response["statusCode"], "ms": round((time.perf_counter() - started) * 1000, 2)}
    entry.update({k: v for k, v in extra.items() if v is not None})
    log.info(json.dumps(entry, separators=(",", ":")))


class _App:
    fn = ""

    def __init__(self, environ=None):
        self.environ = environ
        try:  # every setting this function reads and every cross-field rule: all problems in one error
            self.settings = load_settings(environ, self.fn)
            self.config, self.config_error = self.settings.config, None
        except ConfigError as exc:
            self.settings, self.config, self.config_error = None, None, str(exc)
            log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))
        from ..settings import config_warnings

        for warning in config_warnings(environ, self.config, self.fn):
            log.warning(json.dumps({"fn": self.fn, "warning": warning}))

    def __call__(self, event, context=None):
        started = time.perf_counter()
        request, extra = None, {}
        try:
            request = parse_event(event)  # first: the error answer carries CORS for the page's origin
            if self.config_error:
                raise ApiError(503, "ConfigInvalid", self.config_error)
            response, extra = self.handle(request, context)
        except ApiError as exc:
            headers = self.error_headers(request) or {}
            headers.update(getattr(exc, "headers", None) or {})  # WWW-Authenticate, Retry-After
            response = error_response(exc, headers)
            extra = {"code": exc.code}
        except Exception as exc:  # never a traceback to the client; log the type only
            log.exception("unhandled error")
            response = error_response(ApiError(500, "InternalError", "internal error"))
            extra = {"code": "InternalError", "error": exc.__class__.__name__}
        _log(self.fn, request, response, started, **extra)
        return response

    def error_headers(self, request):
        return None


class SignatureApp(_App):
    """GET: a signed form. OPTIONS: CORS preflight. Path ``.../limits``: the limits (per user when a
    token is sent)."""

    fn = "signature"
    methods = "GET, POST, DELETE, OPTIONS"  # POST/DELETE: the /multipart routes only

    def __init__(self, environ=None):
        super().__init__(environ)
        from ..core.auth import authorize, load_authorizer
        from ..core.forms import FormIssuer, new_upload_id  # imported per app, so the callback never loads it

        self.issuer = FormIssuer(self.config) if self.config else None
        self.new_upload_id = new_upload_id
        self.authorize = authorize
        self.authenticator = self.authorizer = self.limiter = None
        if self.config:
            try:
                self.authorizer = load_authorizer(self.config.authorizer)
            except ConfigError as exc:
                self.config_error = str(exc)
                log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))
            self.limiter = self._open_limiter()
            if self.config.auth.enabled:
                from ..core.jwt_check import Authenticator  # only with sign-in on: PyJWT and the JWKS cache

                self.authenticator = Authenticator(self.config.auth)
            else:
                from ..settings import AUTH_NONE_WARNING

                log.warning(json.dumps({"fn": self.fn, "warning": AUTH_NONE_WARNING}))

    def error_headers(self, request):
        if request is None:
            return None
        if not self.config:  # misconfigured: still let the allowed page read the sentence
            from ..settings import lenient_origins

            return cors_headers(lenient_origins(self.environ), request.header("origin"), self.methods)
        return cors_headers(self.config.allowed_origins, request.header("origin"), self.methods)

    def handle(self, request, context):
        origin = request.headers.get("origin")
        cors = cors_headers(self.config.allowed_origins, origin, self.methods) if origin else None
        if origin and cors is None:
            raise ApiError(403, "OriginNotAllowed", "this origin may not request upload forms")
        if request.method == "OPTIONS":  # preflights carry no token: never authenticated
            return {"statusCode": 204, "headers": cors or {}, "isBase64Encoded": False, "body": ""}, {}
        # --- multipart uploads (shared/ossdirect/core/multipart.py): /multipart[/<uploadId>[/parts|/<n>|/complete]] ---
        head, found, rest = request.path.partition("/multipart")
        if found and (not rest or rest.startswith("/")):
            claims = self.authenticator.authenticate(request.headers) if self.authenticator is not None else None
            grant = self.authorize(self.config, request, claims, self.authorizer)
            if getattr(self, "multipart", None) is None:
                from ..core.multipart import MultipartRoutes

                self.multipart = MultipartRoutes(self)
            return self.multipart.handle(request, rest, grant, context, cors)
        # --- end of multipart uploads ---
        _, files_found, files_rest = request.path.partition("/files")
        if files_found and (not files_rest or files_rest.startswith("/")):
            return self.files(request, files_rest, context, cors), {"route": "files"}
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", "use GET to request an upload form")
        path = request.path.rstrip("/")
        limits_route = path.endswith("/limits")
        record_route = "/records/" in path
        claims = None
        if self.authenticator is not None and (not limits_route or request.header("authorization")):
            claims = self.authenticator.authenticate(request.headers)  # raises AuthError: 401 / 503
        if limits_route:
            return json_response(200, self.limits(request, claims, context), cors), {}
        if record_route:
            return json_response(200, self.record(path.rsplit("/", 1)[-1], claims, context), cors), {}
        grant = self.authorize(self.config, request, claims, self.authorizer)
        try:
            creds = resolve_credentials(context)
        except CredentialsUnavailable:
            raise ApiError(503, "CredentialsUnavailable",
                           "the function has no credentials: attach a role to it") from None
        upload_id = self.new_upload_id()
        body = self.issuer.issue_json(creds, request.query, upload_id=upload_id, grant=grant)
        if self.limiter is not None:  # after validation: a refused request spends nothing
            size = request.query.get("size")
            self.spend(request, grant, int(size) if size else grant.max_bytes, creds)
        return json_text_response(200, body, cors), {"upload_id": upload_id, "user": grant.user}

    def _open_limiter(self):
        if self.settings is None or self.settings.limits is None:
            return None  # no allowances configured: limits.py is never loaded
        from ..core.limits import open_limiter

        try:
            return open_limiter(self.settings.limits)
        except ConfigError as exc:
            self.config_error = str(exc)
            log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))
            return None

    def _limit_call(self, method, request, user, *args):
        """Run limiter.spend/peek for this caller (signed-in user, else client IP); None if nobody to count."""
        from ..core.limits import LimitStoreError, subject_for

        subject = subject_for(self.limiter.settings, user, request.source_ip)
        if subject is None:
            return None
        try:
            return getattr(self.limiter, method)(subject, *args)
        except LimitStoreError as exc:
            raise ApiError(503, "LimitStoreUnavailable", f"the upload allowance cannot be checked ({exc})") from None

    def spend(self, request, grant, nbytes, creds):
        allowance = self._limit_call("spend", request, grant.user, nbytes, creds)
        if allowance is not None and not allowance.ok:
            error = ApiError(429, "UserLimitExceeded",
                             "this upload would exceed your allowance" + (
                                 "" if allowance.reason == "too_large" else
                                 f"; try again in {allowance.retry_after} s"))
            error.headers = allowance.headers()
            raise error

    def files(self, request, rest, context, cors):
        """``/files[/<upload_id>[/url]]``: the signed-in user's own uploads (:mod:`ossdirect.files`)."""
        if self.authenticator is None:
            raise ApiError(403, "SignInRequired",
                           "files are listed per user: this service runs without sign-in (OSSDIRECT_AUTH=none)")
        claims = self.authenticator.authenticate(request.headers)  # 401 / 503
        user = str(claims.get("sub"))
        segments = [s for s in rest.split("/") if s]
        if len(segments) > 2 or (len(segments) == 2 and segments[1] != "url"):
            raise ApiError(404, "NoSuchRoute", "no such files route")
        allowed = ("GET",) if not segments or len(segments) == 2 else ("DELETE",)
        if request.method not in allowed:
            raise ApiError(405, "MethodNotAllowed", f"use {allowed[0]} here")
        try:
            creds = resolve_credentials(context)
        except CredentialsUnavailable:
            raise ApiError(503, "CredentialsUnavailable", "the function has no credentials") from None
        service = getattr(self, "_file_service", None)
        if service is None:
            from ..core.files import FileService
            from ..oss.client import OssClient

            service = self._file_service = FileService(
                self.config, self._record_store(), OssClient(self.config.oss_endpoint, self.config.bucket,
                                                             self.config.region, timeout=5.0),
                OssClient(self.config.upload_host, self.config.bucket, self.config.region))
        from ..store import RecordStoreError

        try:
            if not segments:
                body = service.list(user, creds, request.query.get("page_token"), request.query.get("limit") or 50)
            elif len(segments) == 2:
                body = service.download_url(segments[0], user, creds)
            else:
                body = service.delete(segments[0], user, creds)
        except RecordStoreError as exc:
            raise ApiError(503, "RecordStoreUnavailable", f"the records cannot be read ({exc})") from None
        return json_response(200, body, cors)

    # What anyone may see of a record: what HeadObject on the (public) object already tells. The file
    # name, user and payload only go to the signed-in user who uploaded it.
    PUBLIC_RECORD_FIELDS = ("upload_id", "record_id", "key", "size", "etag", "content_type", "created_at",
                            "source", "status", "content_type_detected", "hook_status")  # the event path's progress

    def record(self, upload_id, claims, context):
        """``GET <signature-url>/records/<upload_id>``: the page's poll after "stored, not recorded"."""
        if not (upload_id.isascii() and upload_id.replace("-", "").replace(":", "").isalnum()
                and len(upload_id) <= 128):
            raise ApiError(400, "InvalidUploadId", "not an upload id")
        store = self._record_store()
        creds = None
        if store.needs_credentials:
            try:
                creds = resolve_credentials(context)
            except CredentialsUnavailable:
                raise ApiError(503, "CredentialsUnavailable", "the function has no credentials") from None
        from ..store import RecordStoreError, Status

        try:
            found = store.get(upload_id, creds)
        except RecordStoreError as exc:
            raise ApiError(503, "RecordStoreUnavailable", f"the records cannot be read ({exc})") from None
        if found is not None and found.get("status") in Status.SESSIONS:
            found = None  # a multipart upload in progress (or aborted) is not a record
        owner = claims is not None and found is not None and found.get("user") == str(claims.get("sub"))
        if found is None or (self.authenticator is not None and not owner):
            raise ApiError(404, "RecordNotFound", "no record for this upload id (yet)")
        fields = RECORD_ANSWER_FIELDS if owner else self.PUBLIC_RECORD_FIELDS
        return {name: found.get(name) for name in fields}

    def _record_store(self):
        if not self.config.shared_records() and self.config.records.startswith("sqlite:"):
            raise ApiError(503, "SharedStoreRequired",
                           "this route needs records every instance shares, and OSSDIRECT_RECORDS is a SQLite file "
                           "each Function Compute instance keeps to itself: set tablestore://<instance>/<table>")
        if getattr(self, "_store", None) is None:  # opened on first use: forms never pay for it
            from ..store import RecordStoreError, open_record_store

            try:
                self._store = open_record_store(self.config, log=False)  # sessions and lookups: no log
            except (RecordStoreError, OSError) as exc:
                raise ApiError(503, "RecordStoreUnavailable", f"the records cannot be opened ({exc})") from None
        if not self._store.can_read:
            raise ApiError(501, "RecordLookupUnsupported",
                           "this record store is append-only (stdout/SLS): use sqlite or tablestore to look records up")
        return self._store

    def limits(self, request, claims, context=None):
        limits = self.config.public_limits()
        if claims is not None or self.authorizer is not None:  # the hook decides here as for forms
            grant = self.authorize(self.config, request, claims, self.authorizer)
            limits.update(user=grant.user, folder=grant.prefix, max_bytes=grant.max_bytes,
                          content_types=list(grant.content_types), naming=list(grant.namings),
                          default_naming=grant.namings[0])
        if self.limiter is not None:
            creds = resolve_credentials(context) if self.limiter.needs_credentials else None
            allowance = self._limit_call("peek", request, limits.get("user"), creds)
            limits["remaining"] = None if allowance is None else {
                "forms": allowance.remaining_forms, "bytes": allowance.remaining_bytes,
                "resets_at": allowance.resets_at}
        return limits


class CallbackApp(_App):
    """POST from OSS after an upload: verify, confirm with the bucket, record once, answer JSON."""

    fn = "callback"

    def __init__(self, environ=None, store=None):
        super().__init__(environ)
        from ..oss.callback_auth import KeyCache
        from ..core.callbacks import handle_callback  # cryptography: only the callback pays for it
        from ..oss.client import OssClient

        self.handle_callback = handle_callback
        self.key_cache = KeyCache()  # one per instance, bounded
        self.store = store
        if self.config:
            self.oss = OssClient(self.config.oss_endpoint, self.config.bucket, self.config.region)
        if self.config and store is None:
            from ..store import RecordStoreError, open_record_store

            try:
                self.store = open_record_store(self.config)  # the authoritative store first, then the log
            except (RecordStoreError, OSError) as exc:
                self.config_error = f"OSSDIRECT_RECORDS could not be opened: {exc}"
                log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))

    def handle(self, request, context):
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", "OSS callbacks are POST requests")
        def creds():  # HeadObject (and a cloud store) sign with the function's role: asked only after
            try:      # OSS's signature checks out, so a forged callback is a 403 whatever the runtime has
                return resolve_credentials(context)
            except CredentialsUnavailable:
                raise ApiError(503, "CredentialsUnavailable", "the function has no credentials") from None

        result = self.handle_callback(self.config, self.store, self.oss, request, creds, self.key_cache, log)
        return json_response(200, result), {"upload_id": result["upload_id"], "replayed": result["replayed"]}


class ProcessApp(_App):
    """OSS trigger (``oss:ObjectCreated:*`` on the prefix): record what the callback did not, check the
    content, quarantine, run the user's hook once (:mod:`ossdirect.events`).

    Not HTTP: the answer is a small JSON summary, and every failure *raises*, so Function Compute's
    asynchronous invocation retries the event (a bad configuration too: events wait in the retry /
    dead-letter policy instead of being acknowledged and lost)."""

    fn = "process"

    def __init__(self, environ=None, store=None):
        super().__init__(environ)
        self.processor = None
        if self.config:
            from ..core.events import ProcessConfigError, open_processor
            from ..store import RecordStoreError

            try:
                self.processor = open_processor(environ, store, self.config, self.settings.process)
            except (ProcessConfigError, RecordStoreError, OSError) as exc:
                self.config_error = str(exc)
                log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))

    def __call__(self, event, context=None):
        started = time.perf_counter()
        if self.config_error:
            raise RuntimeError(f"process function configuration: {self.config_error}")
        creds = resolve_credentials(context)  # CredentialsUnavailable raises: retried
        try:
            results = self.processor.process_event(event, creds)
        except Exception as exc:
            log.warning(json.dumps({"fn": self.fn, "error": exc.__class__.__name__, "message": str(exc)[:300],
                                    "ms": round((time.perf_counter() - started) * 1000, 2)}))
            raise
        if log.isEnabledFor(logging.INFO):
            for r in results:
                log.info(json.dumps(dict(r, fn=self.fn, ms=round((time.perf_counter() - started) * 1000, 2)),
                                    separators=(",", ":")))
        return {"ok": True, "results": results}
