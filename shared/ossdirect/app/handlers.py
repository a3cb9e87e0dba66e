"""FC3 handlers: adapters from events to the core (forms, callbacks, multipart, files).

Each function's routes are a table (:mod:`ossdirect.app.routes`: method + pattern -> a route function
here); the signature function's services (forms, files, multipart, allowances, records) are one
:class:`~ossdirect.app.services.Services` object per App. The core raises domain errors
(:class:`~ossdirect.errors.OssdirectError`); ``_App.__call__`` is the one place they become HTTP
answers (:func:`ossdirect.app.http.error_response`).

Configuration is read once per instance (cold start). A bad configuration does
not crash the instance: every request answers 503 with the message naming the
variable, and the same line is logged.
"""

from __future__ import annotations

import json
import time

from .. import errors as E
from ..errors import OssdirectError
from ..settings import ConfigError, load_settings
from ..oss.credentials import CredentialsUnavailable, resolve_credentials
from .http import (answerable, cors_headers, error_response, internal_error_response, json_object_body,
                   json_response, json_text_response, parse_event, signed_part_json,
                   signed_parts_json)
from .routes import CALLBACK_ROUTES, SIGNATURE_ROUTES
from .services import RECORD_ANSWER_FIELDS, Allowances, Services

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from ..core.files import FileService
    from ..core.forms import Grant
    from ..core.multipart import Multipart
    from ..oss.credentials import Credentials
    from ..settings import Settings
    from ..store import RecordStore
    from .http import Request

from ..log import INFO, log
__all__ = ["CallbackApp", "ProcessApp", "SignatureApp", "RECORD_ANSWER_FIELDS"]


def _credentials(context: Any, message: str) -> Credentials:
    """The function's credentials, or ``unavailable`` (503 CredentialsUnavailable) with ``message``."""
    try:
        return resolve_credentials(context)
    except CredentialsUnavailable:
        raise OssdirectError("CredentialsUnavailable", message, E.UNAVAILABLE) from None


def _log(fn: str, request: Request | None, response: dict[str, Any], started: float, **extra: Any) -> None:
    if not log.isEnabledFor(INFO):
        return
    entry = {"fn": fn, "method": getattr(request, "method", None), "path": getattr(request, "path", None),
             "status": response["statusCode"], "ms": round((time.perf_counter() - started) * 1000, 2)}
    entry.update({k: v for k, v in extra.items() if v is not None})
    log.info(json.dumps(entry, separators=(",", ":")))


class _App:
    fn = ""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self.environ = environ
        self.settings: Settings | None
        self.config: Any  # a Config; None when the configuration is invalid (every request answers 503)
        try:  # every setting this function reads and every cross-field rule: all problems in one error
            self.settings = load_settings(environ, self.fn)
            self.config, self.config_error = self.settings.config, None
        except ConfigError as exc:
            self.settings, self.config, self.config_error = None, None, str(exc)
            log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))
        from ..settings import config_warnings

        for warning in config_warnings(environ, self.config, self.fn):
            log.warning(json.dumps({"fn": self.fn, "warning": warning}))

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        started = time.perf_counter()
        request: Request | None = None
        extra: dict[str, Any] = {}
        try:
            request = parse_event(event)  # first: the error answer carries CORS for the page's origin
            if self.config_error:
                raise OssdirectError("ConfigInvalid", self.config_error, E.UNAVAILABLE)
            response, extra = self.handle(request, context)
        except Exception as exc:  # the one mapping from errors to answers (ossdirect.app.http)
            if answerable(exc):  # a domain error: its status, code, message and headers (WWW-Authenticate...)
                assert isinstance(exc, OssdirectError)
                response = error_response(exc, self.error_headers(request))
                extra = {"code": exc.code}
            else:  # never a traceback to the client; log the type only
                log.exception("unhandled error")
                response = internal_error_response()
                extra = {"code": "InternalError", "error": exc.__class__.__name__}
        _log(self.fn, request, response, started, **extra)
        return response

    def handle(self, request: Request, context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

    def error_headers(self, request: Request | None) -> dict[str, str] | None:
        return None


class SignatureApp(_App):
    """GET: a signed form. OPTIONS: CORS preflight. Path ``.../limits``: the limits (per user when a
    token is sent)."""

    fn = "signature"
    methods = "GET, POST, DELETE, OPTIONS"  # POST/DELETE: the /multipart routes only

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        super().__init__(environ)
        from ..core.forms import FormIssuer, Grant, new_upload_id  # imported per app: the callback never loads it

        self.issuer = FormIssuer(self.config) if self.config else None
        self.new_upload_id = new_upload_id
        self.authenticator = self.authorizer = self.limiter = None
        if self.config and (self.config.auth.enabled or self.config.authorizer or self.config.prefix_claims):
            from ..core.auth import authorize

            self.authorize = authorize
        else:  # anonymous, no hook, no {claim} folder: the configuration is the grant (authorize's first case)
            self.authorize = lambda config, request, claims, hook=None: Grant(config)
        if self.config:
            try:
                if self.config.authorizer:
                    from ..core.auth import load_authorizer

                    self.authorizer = load_authorizer(self.config.authorizer)
            except ConfigError as exc:
                self.config_error = str(exc)
                log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))
            self.limiter = self._open_limiter()
            if self.config.auth.enabled:
                from ..core.jwt_check import Authenticator  # only with sign-in on: the token check and the JWKS cache

                self.authenticator = Authenticator(self.config.auth)
            else:
                from ..settings import AUTH_NONE_WARNING

                log.warning(json.dumps({"fn": self.fn, "warning": AUTH_NONE_WARNING}))

    def error_headers(self, request: Request | None) -> dict[str, str] | None:
        if request is None:
            return None
        if not self.config:  # misconfigured: still let the allowed page read the sentence
            from ..settings import lenient_origins

            return cors_headers(lenient_origins(self.environ), request.header("origin"), self.methods)
        return cors_headers(self.config.allowed_origins, request.header("origin"), self.methods)

    # -- the services and the route functions (the table: ossdirect.app.routes.SIGNATURE_ROUTES) ---------

    @property
    def services(self) -> Services:
        """The signature function's services, built once per App (each opened on first use)."""
        services = self.__dict__.get("_services")
        if services is None:
            allowances = Allowances(self.limiter) if self.limiter is not None else None
            assert self.issuer is not None  # routes run only with a valid configuration
            services = self._services = Services(self.config, self.issuer, self.new_upload_id, allowances)
        return services

    @property
    def multipart(self) -> Multipart:
        return self.services.multipart

    def handle(self, request: Request, context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        origin = request.headers.get("origin")
        cors = cors_headers(self.config.allowed_origins, origin, self.methods) if origin else None
        if origin and cors is None:
            raise OssdirectError("OriginNotAllowed", "this origin may not request upload forms", E.FORBIDDEN)
        if request.method == "OPTIONS":  # preflights carry no token: never authenticated
            return {"statusCode": 204, "headers": cors or {}, "isBase64Encoded": False, "body": ""}, {}
        result: tuple[dict[str, Any], dict[str, Any]] = SIGNATURE_ROUTES.dispatch(
            request, self, context=context, cors=cors)
        return result

    def _claims(self, request: Request) -> dict[str, Any] | None:
        """The verified token's claims (unauthenticated 401 / unavailable 503), None without sign-in."""
        return self.authenticator.authenticate(request.headers) if self.authenticator is not None else None

    # guards (run before a mount's routes are matched)
    def granted(self, request: Request, **_: Any) -> dict[str, Any]:
        """The multipart routes: the same sign-in and authorizer as forms."""
        return {"grant": self.authorize(self.config, request, self._claims(request), self.authorizer)}

    def signed_in(self, request: Request, **_: Any) -> dict[str, Any]:
        """The files routes: per user, so only with sign-in on."""
        if self.authenticator is None:
            raise OssdirectError("SignInRequired",
                                 "files are listed per user: this service runs without sign-in (OSSDIRECT_AUTH=none)",
                                 E.FORBIDDEN)
        claims = self.authenticator.authenticate(request.headers)  # 401 / 503
        assert claims is not None  # sign-in is on: a token's claims, or an AuthError
        return {"user": str(claims.get("sub"))}

    # the upload form: GET <signature-url>
    def form(self, request: Request, context: Any,
             cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        claims = self._claims(request)  # raises AuthError: 401 / 503
        grant = self.authorize(self.config, request, claims, self.authorizer)
        creds = _credentials(context, "the function has no credentials: attach a role to it")
        upload_id = self.new_upload_id()
        body = self.services.forms.issue_json(creds, request.query, upload_id=upload_id, grant=grant)
        if self.limiter is not None:  # after validation: a refused request spends nothing
            size = request.query.get("size")
            self.spend(request, grant, int(size) if size else grant.max_bytes, creds, upload_id,
                       time.time() + self.config.expires_seconds)
        return json_text_response(200, body, cors), {"upload_id": upload_id, "user": grant.user}

    def limits_route(self, request: Request, context: Any,
                     cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        claims = self._claims(request) if request.header("authorization") else None  # anonymous may look
        return json_response(200, self.limits(request, claims, context), cors), {}

    def record_route(self, request: Request, upload_id: str, context: Any,
                     cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        claims = self._claims(request)
        return json_response(200, self.record(upload_id, claims, context), cors), {}

    # /multipart: the Multipart service (ossdirect.core.multipart) for this request
    def multipart_create(self, request: Request, grant: Grant, context: Any,
                         cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        from ..core.multipart import CREATE_PARAMS

        params = {k: v for k, v in request.query.items() if k in CREATE_PARAMS}
        if request.body.strip():
            body = json_object_body(request.body, 16 * 1024)
            for name in CREATE_PARAMS:
                value = body.get(name)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (str, int)):
                    raise OssdirectError("InvalidParameter", f"{name} must be a string or an integer", E.INVALID)
                params[name] = str(value)
        answer = self.multipart.create(
            grant, params, lambda: _credentials(context, "the function has no credentials: attach a role to it"),
            request.source_ip)
        return json_response(201, answer, cors), {"route": "multipart", "user": grant.user,
                                                  "upload_id": answer["upload_id"]}

    def _session(self, request: Request, uploadId: str, grant: Grant, context: Any,
                 recent: bool = False) -> tuple[Credentials, RecordStore, dict[str, Any], dict[str, Any]]:
        creds = _credentials(context, "the function has no credentials: attach a role to it")
        store, session = self.multipart.session(uploadId, request.query.get("upload_id", ""),
                                                request.query.get("key", ""), grant, creds, recent)
        return creds, store, session, {"route": "multipart", "user": grant.user, "upload_id": session["upload_id"]}

    def multipart_list_parts(self, request: Request, uploadId: str, grant: Grant, context: Any,
                             cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        creds, _, session, extra = self._session(request, uploadId, grant, context)
        return json_response(200, self.multipart.list_parts(session, creds), cors), extra

    def multipart_abort(self, request: Request, uploadId: str, grant: Grant, context: Any,
                        cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        creds, store, session, extra = self._session(request, uploadId, grant, context)
        return json_response(200, self.multipart.abort(store, session, creds), cors), extra

    def multipart_sign_parts(self, request: Request, uploadId: str, grant: Grant, context: Any,
                             cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        creds, store, session, extra = self._session(request, uploadId, grant, context, recent=True)
        numbers = [n for n in (request.query.get("partNumbers") or "").split(",") if n.strip()]
        md5 = request.query.get("md5")  # per-part Content-MD5s aligned with partNumbers (issue 24)
        digests = None if not md5 else [d for d in md5.split(",") if d.strip()]
        answer = self.multipart.sign_parts(store, session, numbers, creds, digests)
        return json_text_response(200, signed_parts_json(answer), cors), extra

    def multipart_sign_part(self, request: Request, uploadId: str, partNumber: str, grant: Grant, context: Any,
                            cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        creds, store, session, extra = self._session(request, uploadId, grant, context, recent=True)
        answer = self.multipart.sign_part(store, session, partNumber, creds, request.query.get("md5") or None)
        return json_text_response(200, signed_part_json(answer), cors), extra

    def multipart_complete(self, request: Request, uploadId: str, grant: Grant, context: Any,
                           cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        from ..core.multipart import MAX_BODY

        creds, store, session, extra = self._session(request, uploadId, grant, context)
        status, body = self.multipart.complete(lambda: json_object_body(request.body, MAX_BODY), store, session,
                                               grant, creds)
        return json_response(status, body, cors), extra

    # /files: the FileService (ossdirect.core.files) for the signed-in user
    def files_list(self, request: Request, user: str, context: Any,
                   cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._files(context, cors, lambda service, creds: service.list(
            user, creds, request.query.get("page_token"), request.query.get("limit") or 50))

    def files_url(self, request: Request, user: str, upload_id: str, context: Any,
                  cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._files(context, cors, lambda service, creds: service.download_url(upload_id, user, creds))

    def files_delete(self, request: Request, user: str, upload_id: str, context: Any,
                     cors: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._files(context, cors, lambda service, creds: service.delete(upload_id, user, creds))

    def _files(self, context: Any, cors: dict[str, str] | None,
               call: Callable[[FileService, Credentials], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        creds = _credentials(context, "the function has no credentials")
        service = self.services.files
        from ..store import RecordStoreError

        try:
            body = call(service, creds)
        except RecordStoreError as exc:
            raise OssdirectError("RecordStoreUnavailable", f"the records cannot be read ({exc})", E.UNAVAILABLE) \
                from None
        return json_response(200, body, cors), {"route": "files"}

    def _open_limiter(self) -> Any:
        if self.settings is None or self.settings.limits is None:
            return None  # no allowances configured: limits.py is never loaded
        from ..core.limits import open_limiter

        try:
            return open_limiter(self.settings.limits)
        except ConfigError as exc:
            self.config_error = str(exc)
            log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))
            return None

    def spend(self, request: Request, grant: Grant, nbytes: int, creds: Credentials, upload_id: str | None = None,
              expires_at: float | None = None) -> None:
        """Charge this caller's allowance for one form (or multipart upload) of ``nbytes``."""
        allowances = self.services.allowances
        if allowances is not None:
            allowances.spend(grant, nbytes, creds, request.source_ip, upload_id, expires_at)

    # What anyone may see of a record: what HeadObject on the (public) object already tells. The file
    # name, user and payload only go to the signed-in user who uploaded it.
    PUBLIC_RECORD_FIELDS = ("upload_id", "record_id", "key", "size", "etag", "content_type", "created_at",
                            "source", "status", "content_type_detected", "hook_status")  # the event path's progress

    def record(self, upload_id: str, claims: dict[str, Any] | None, context: Any) -> dict[str, Any]:
        """``GET <signature-url>/records/<upload_id>``: the page's poll after "stored, not recorded"."""
        found = self.services.records.lookup(upload_id,
                                             lambda: _credentials(context, "the function has no credentials"))
        owner = claims is not None and found is not None and found.get("user") == str(claims.get("sub"))
        if found is None or (self.authenticator is not None and not owner):
            raise OssdirectError("RecordNotFound", "no record for this upload id (yet)", E.NOT_FOUND)
        fields = RECORD_ANSWER_FIELDS if owner else self.PUBLIC_RECORD_FIELDS
        return {name: found.get(name) for name in fields}

    def _record_store(self) -> RecordStore:
        return self.services.records.readable()

    def limits(self, request: Request, claims: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
        limits = self.config.public_limits()
        if claims is not None or self.authorizer is not None:  # the hook decides here as for forms
            grant = self.authorize(self.config, request, claims, self.authorizer)
            limits.update(user=grant.user, folder=grant.prefix, max_bytes=grant.max_bytes,
                          content_types=list(grant.content_types), naming=list(grant.namings),
                          default_naming=grant.namings[0])
        allowances = self.services.allowances
        if allowances is not None:
            creds = resolve_credentials(context) if allowances.needs_credentials else None
            allowance = allowances.peek(limits.get("user"), request.source_ip, creds)
            limits["remaining"] = None if allowance is None else {
                "forms": allowance.remaining_forms, "bytes": allowance.remaining_bytes,
                "resets_at": allowance.resets_at}
            quota = allowances.quota(limits.get("user"), creds)
            if quota is not None:  # stored=: what this user holds and has reserved
                limits["stored"] = quota.as_dict()
        return limits


def _open_quota(app: _App) -> Any:
    """The callback's and the process function's limiter, only with ``stored=`` (settings.limits is
    None otherwise: limits.py is never loaded); a bad store is the app's configuration error."""
    if app.settings is None or app.settings.limits is None:
        return None
    from ..core.limits import LimitStoreError, open_limiter

    try:
        return open_limiter(app.settings.limits)
    except (ConfigError, LimitStoreError) as exc:
        app.config_error = str(exc)
        log.error(json.dumps({"fn": app.fn, "config_error": app.config_error}))
        return None


class CallbackApp(_App):
    """POST from OSS after an upload: verify, confirm with the bucket, record once, answer JSON."""

    fn = "callback"
    # OSS waits 5 s for the callback's answer: the HeadObject may take most of it, the record write the rest.
    # (2 s, the client's default, failed one upload in ~2,300 under the 64-client load of a 2-core stack:
    # stored in the bucket, answered 203 CallbackFailed, not recorded.)
    lookup_timeout = 3.0

    def __init__(self, environ: dict[str, str] | None = None, store: Any = None) -> None:
        super().__init__(environ)
        from ..oss.callback_auth import KeyCache
        from ..core.callbacks import handle_callback  # only the callback loads the callback check
        from ..oss.client import OssClient

        self.handle_callback = handle_callback
        self.key_cache = KeyCache()  # one per instance, bounded
        self.store = store
        self.quota = _open_quota(self)
        if self.config:
            self.oss = OssClient(self.config.oss_endpoint, self.config.bucket, self.config.region,
                                 timeout=self.lookup_timeout)
        if self.config and store is None:
            from ..store import RecordStoreError, open_record_store

            try:
                self.store = open_record_store(self.config)  # the authoritative store first, then the log
            except (RecordStoreError, OSError) as exc:
                self.config_error = f"OSSDIRECT_RECORDS could not be opened: {exc}"
                log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))

    def handle(self, request: Request, context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        result: tuple[dict[str, Any], dict[str, Any]] = CALLBACK_ROUTES.dispatch(request, self, context=context)
        return result

    def callback(self, request: Request, context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """POST <callback-url>: the top-down check in :func:`ossdirect.core.callbacks.handle_callback`."""
        def creds() -> Credentials:  # HeadObject (and a cloud store) sign with the function's role: asked only
            # after OSS's signature checks out, so a forged callback is a 403 whatever the runtime has
            return _credentials(context, "the function has no credentials")

        result = self.handle_callback(self.config, self.store, self.oss, request, creds, self.key_cache, log,
                                      self.quota)
        return json_response(200, result), {"upload_id": result["upload_id"], "replayed": result["replayed"]}


class ProcessApp(_App):
    """OSS trigger (``oss:ObjectCreated:*`` on the prefix): record what the callback did not, check the
    content, quarantine, run the user's hook once (:mod:`ossdirect.events`).

    Not HTTP: the answer is a small JSON summary, and every failure *raises*, so Function Compute's
    asynchronous invocation retries the event (a bad configuration too: events wait in the retry /
    dead-letter policy instead of being acknowledged and lost)."""

    fn = "process"

    def __init__(self, environ: dict[str, str] | None = None, store: Any = None) -> None:
        super().__init__(environ)
        self.processor: Any = None
        if self.config and self.settings is not None:  # a configuration: its settings were loaded
            from ..core.events import ProcessConfigError, open_processor
            from ..store import RecordStoreError

            try:
                self.processor = open_processor(environ, store, self.config, self.settings.process)
            except (ProcessConfigError, RecordStoreError, OSError) as exc:
                self.config_error = str(exc)
                log.error(json.dumps({"fn": self.fn, "config_error": self.config_error}))
            if self.processor is not None:
                self.processor.quota = _open_quota(self)

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
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
        if log.isEnabledFor(INFO):
            for r in results:
                log.info(json.dumps(dict(r, fn=self.fn, ms=round((time.perf_counter() - started) * 1000, 2)),
                                    separators=(",", ":")))
        return {"ok": True, "results": results}
