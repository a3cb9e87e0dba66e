"""The one root of ossdirect's errors, and the kinds a domain error can be.

Core modules (forms, callbacks, multipart, files, auth) raise :class:`OssdirectError` with a
machine-readable ``code``, a sentence for the caller (``message``) and a ``kind`` saying what went
wrong in domain terms. They know nothing of HTTP: the one mapping from kinds to status codes lives at
the edge, in :mod:`ossdirect.app.http` (``STATUS_BY_KIND``), which turns every domain error into the
JSON answer ``{"code", "message"}`` plus ``headers`` (``WWW-Authenticate``, ``Retry-After``).

Every other exception class of the package (ConfigError, RecordStoreError, OssError, ...) has this
class as its root too, constructed the usual way (``ConfigError("message")``); such an error has no
``kind`` (None): it is not an answer for a client, so reaching the edge it is a 500 ``InternalError``
whose text is logged, never sent.
"""

from __future__ import annotations

# The kinds. "denied" comes in three: not signed in, not allowed, too many (RFC 9110's 401/403/429).
INVALID = "invalid"  # the request is malformed or asks for something out of bounds
UNAUTHENTICATED = "unauthenticated"  # denied: no (valid) sign-in
FORBIDDEN = "forbidden"  # denied: signed in (or anonymous) but not allowed
TOO_MANY = "too_many"  # denied: an allowance or a bound is spent; headers say when to retry
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"  # the route exists, not with this method
CONFLICT = "conflict"  # the state of the thing forbids it now (already complete, aborted, exists)
TOO_LARGE = "too_large"  # a declared size or a body over the limit
UNSUPPORTED_TYPE = "unsupported_type"  # a content type not accepted here
NOT_IMPLEMENTED = "not_implemented"  # this deployment cannot do it (an append-only record store)
UNAVAILABLE = "unavailable"  # a dependency (credentials, store, bucket, keys, configuration) is down
INTERNAL = "internal"  # a bug on our side the caller may be told about (the authorizer hook failed)

KINDS = (INVALID, UNAUTHENTICATED, FORBIDDEN, TOO_MANY, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT, TOO_LARGE,
         UNSUPPORTED_TYPE, NOT_IMPLEMENTED, UNAVAILABLE, INTERNAL)
DENIED = (UNAUTHENTICATED, FORBIDDEN, TOO_MANY)


class OssdirectError(Exception):
    """The root of every error ossdirect raises.

    A domain error: ``OssdirectError(code, message, kind, headers=None, **details)``; ``details`` are
    kept as ``error.details`` (for logs and callers; not part of the HTTP answer). Any other exception
    of the package: its own arguments (usually the message), and no kind. ``ossdirect.ApiError`` is
    this class under its older name; ``ApiError(status, code, message)`` still builds one (the kind
    read back from the status).
    """

    code: str = "InternalError"
    kind: str | None = None
    message: str = ""
    headers: dict[str, str] = {}  # read-only default: an instance with headers has its own dict
    details: dict[str, object] = {}
    _status: int | None = None

    def __init__(self, code: str = "", message: str | None = None, kind: str | None = None, *args: object,
                 headers: dict[str, str] | None = None, **details: object) -> None:
        if type(self) is OssdirectError and isinstance(code, int) and isinstance(message, str) \
                and isinstance(kind, str) and len(args) <= 1:  # the older ApiError(status, code, message[, headers])
            from .app.http import kind_for_status

            status, code, message, kind = code, message, kind, kind_for_status(code)
            headers = headers or (args[0] if args and isinstance(args[0], dict) else None)
            args = ()
            self._status = status
        if isinstance(code, str) and isinstance(message, str) and isinstance(kind, str) and kind not in KINDS \
                and not args:
            raise ValueError(f"unknown error kind {kind!r} (one of {', '.join(KINDS)})")
        if not (isinstance(code, str) and isinstance(message, str) and not args):
            # ConfigError("..."), OssError(status, code, message): a plain exception under the common root,
            # its arguments passed on as given; a subclass may have set its own attributes (status, code)
            # before calling this, so none is touched.
            given = (code, message, kind, *args) if args else tuple(
                v for v in (code, message, kind) if v is not None)
            super().__init__(*(() if given == ("",) else given))
            return
        super().__init__(message)
        self.code, self.message, self.kind = code, message, kind
        if headers:
            self.headers = dict(headers)
        if details:
            self.details = details

    @property
    def status(self) -> int:
        """The HTTP status the edge answers with (:data:`ossdirect.app.http.STATUS_BY_KIND`).

        Kept for callers of the older ``ApiError``; a subclass with a status of its own (OssError,
        UploadError) sets it."""
        if self._status is not None:
            return self._status
        from .app.http import status_for  # the mapping is the edge's: read there, on demand

        return status_for(self)

    @status.setter
    def status(self, value: int) -> None:
        self._status = value
