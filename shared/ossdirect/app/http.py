"""FC3 HTTP trigger events in, ``{statusCode, headers, body}`` out; domain errors out as HTTP answers.

The FC3 event arrives as bytes; header keys vary in case and repeated headers/query parameters are
comma-joined. Route functions see a :class:`Request`; the core raises
:class:`~ossdirect.errors.OssdirectError` (code + kind) and :data:`STATUS_BY_KIND` here is the one
place a kind becomes an HTTP status (:func:`error_response`).
"""

from __future__ import annotations

import base64
import json

from .. import errors as E
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping

ApiError = OssdirectError  # the older public name: what the edge answers, and what core code raises

# The one mapping from a domain error's kind to the HTTP answer's status.
STATUS_BY_KIND = {
    E.INVALID: 400, E.UNAUTHENTICATED: 401, E.FORBIDDEN: 403, E.NOT_FOUND: 404, E.METHOD_NOT_ALLOWED: 405,
    E.CONFLICT: 409, E.TOO_LARGE: 413, E.UNSUPPORTED_TYPE: 415, E.TOO_MANY: 429, E.INTERNAL: 500,
    E.NOT_IMPLEMENTED: 501, E.UNAVAILABLE: 503,
}
KIND_BY_STATUS = {status: kind for kind, status in STATUS_BY_KIND.items()}
INTERNAL_ERROR = ("InternalError", "internal error")  # what any other exception answers (500)


def status_for(error: OssdirectError) -> int:
    """The HTTP status of a domain error (500 for an error that is not one); one built the older way,
    ``ApiError(status, code, message)``, keeps its own status."""
    if error.kind is None:
        return 500
    if error._status is not None:
        return error._status
    return STATUS_BY_KIND.get(error.kind, 500)


def kind_for_status(status: int) -> str:
    """The kind of an answer with this status (the older ``ApiError(status, ...)``)."""
    if status in KIND_BY_STATUS:
        return KIND_BY_STATUS[status]
    return E.INVALID if 400 <= status < 500 else E.INTERNAL if status == 500 else E.UNAVAILABLE


def answerable(error: BaseException) -> bool:
    """True for a domain error (told to the client as it is); anything else is a 500 with nothing said."""
    return isinstance(error, OssdirectError) and error.kind in STATUS_BY_KIND


class Request:
    """One HTTP request. ``headers`` keys are lower-case; ``raw_query`` has no leading '?'."""

    __slots__ = ("method", "path", "headers", "query", "raw_query", "body", "source_ip", "request_id")

    def __init__(self, method: str, path: str, headers: dict[str, str] | None = None,
                 query: dict[str, str] | None = None, raw_query: str = "", body: bytes = b"", source_ip: str = "",
                 request_id: str = "") -> None:
        self.method, self.path, self.raw_query, self.body = method, path, raw_query, body
        self.headers, self.query = headers or {}, query or {}
        self.source_ip, self.request_id = source_ip, request_id

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


# the C scanner json.loads runs, without its Python-level steps
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """``json.loads(text)``: the scanner alone when it reads the whole text (FC's events), else json.loads
    itself (whitespace around the value, trailing data, errors: its exact answer)."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def _invalid_event(message: str) -> OssdirectError:
    return OssdirectError("InvalidEvent", message, E.INVALID)


def parse_event(event: bytes | bytearray | str | dict[str, Any]) -> Request:
    """Turn an FC3 HTTP trigger event (bytes, str or dict) into a :class:`Request`."""
    try:
        if isinstance(event, (bytes, bytearray)):
            event = event.decode("utf-8")  # json.loads(bytes) would sniff the encoding first
        data = event if isinstance(event, dict) else _loads(event)
    except (TypeError, ValueError):
        raise _invalid_event("the function event is not JSON") from None
    if not isinstance(data, dict):
        raise _invalid_event("the function event is not a JSON object")
    ctx = data.get("requestContext") or {}
    http = ctx.get("http") or {}
    headers = {k.lower(): v if type(v) is str else str(v) for k, v in (data.get("headers") or {}).items()}
    query = data.get("queryParameters") or {}
    for value in query.values():
        if type(value) is not str:  # FC sends strings; anything else is coerced once
            query = {str(k): str(v) for k, v in query.items()}
            break
    body = data.get("body") or ""
    if data.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True)
        except (ValueError, TypeError):
            raise _invalid_event("the event body is not valid base64") from None
    elif type(body) is str:
        body = body.encode("utf-8")
    else:
        raise _invalid_event("the event body is not a string")
    raw_path = data.get("rawPath") or http.get("path") or "/"
    path, _, raw_query = raw_path.partition("?")
    return Request(
        method=str(http.get("method") or data.get("httpMethod") or "GET").upper(),
        path=path,
        headers=headers,
        query=query,
        raw_query=raw_query or data.get("rawQueryString") or "",
        body=body,
        source_ip=http.get("sourceIp") or "",
        request_id=ctx.get("requestId") or "",
    )


def json_object_body(body: bytes, limit: int) -> dict[str, Any]:
    """A request body that must be a JSON object (empty: ``{}``), at most ``limit`` bytes."""
    if len(body) > limit:
        raise OssdirectError("BodyTooLarge", "the request body is too large", E.TOO_LARGE)
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise OssdirectError("MalformedJson", "the request body is not JSON", E.INVALID) from None
    if not isinstance(data, dict):
        raise OssdirectError("MalformedJson", "the request body must be a JSON object", E.INVALID)
    return data


def json_text_response(status: int, body: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    out = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    if headers:
        out.update(headers)
    return {"statusCode": status, "headers": out, "isBase64Encoded": False, "body": body}


def json_response(status: int, payload: object, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return json_text_response(status, json.dumps(payload, separators=(",", ":"), ensure_ascii=False), headers)


_escape = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes for a str


_JSON_PLAIN = bytes(c for c in range(0x20, 0x80) if c not in b'"\\')  # ASCII json.dumps writes as it is


def url_json(url: str) -> str:
    """``url`` as JSON text (what json.dumps writes): a presigned URL is percent-encoded printable ASCII, so
    it needs only the quotes; escaping a 1-2 KB URL per part would cost more than signing it."""
    if url.isascii() and not url.encode("ascii").translate(None, _JSON_PLAIN):  # nothing left to escape
        return f'"{url}"'
    return str(_escape(url))


def _headers_json(headers: object) -> str | None:
    """A part's ``headers`` (``{}`` or ``{"Content-MD5": str}``) as json.dumps writes it; None for another shape."""
    if type(headers) is not dict:
        return None
    if not headers:
        return "{}"
    md5 = headers.get("Content-MD5")
    if len(headers) != 1 or type(md5) is not str:
        return None
    return '{"Content-MD5":%s}' % _escape(md5)


def signed_parts_json(answer: Mapping[str, Any]) -> str:
    """``json.dumps(answer, separators=(",", ":"), ensure_ascii=False)`` of a part-signing answer
    (``{"presignedUrls": {n: url}, "sizes": {n: int}, "headers": {n: {"Content-MD5": b64}}, "expires_at": str}``),
    its URLs written by :func:`url_json`; any other shape goes to json.dumps."""
    urls, sizes, headers = answer.get("presignedUrls"), answer.get("sizes"), answer.get("headers")
    parts = [(n, _headers_json(h)) for n, h in headers.items()] if type(headers) is dict else None
    if (list(answer) != ["presignedUrls", "sizes", "headers", "expires_at"] or type(urls) is not dict
            or type(sizes) is not dict or parts is None or any(type(n) is not str or h is None for n, h in parts)
            or type(answer["expires_at"]) is not str
            or not all(type(k) is str and type(v) is str for k, v in urls.items())
            or not all(type(k) is str and type(v) is int for k, v in sizes.items())):
        return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)
    return "".join(('{"presignedUrls":{', ",".join([f"{_escape(n)}:{url_json(u)}" for n, u in urls.items()]),
                    '},"sizes":{', ",".join([f"{_escape(n)}:{v}" for n, v in sizes.items()]),
                    '},"headers":{', ",".join([f"{_escape(n)}:{h}" for n, h in parts]),
                    '},"expires_at":', _escape(answer["expires_at"]), "}"))


def signed_part_json(answer: Mapping[str, Any]) -> str:
    """The same for one part's answer (``{"url", "headers": {} or {"Content-MD5": b64}, "size", "expires_at"}``)."""
    url, size, expires_at = answer.get("url"), answer.get("size"), answer.get("expires_at")
    headers = _headers_json(answer.get("headers"))
    if (list(answer) != ["url", "headers", "size", "expires_at"] or type(url) is not str or headers is None
            or type(size) is not int or type(expires_at) is not str):
        return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)
    return f'{{"url":{url_json(url)},"headers":{headers},"size":{size},"expires_at":{_escape(expires_at)}}}'


def error_response(error: OssdirectError, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The answer for a domain error: its status, ``{"code", "message"}``, ``headers`` then the error's own
    (``WWW-Authenticate``, ``Retry-After``)."""
    merged = dict(headers or {})
    merged.update(error.headers)
    return json_response(status_for(error), {"code": error.code, "message": error.message}, merged)


def internal_error_response(headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What any exception that is not a domain error answers: 500, and nothing about it."""
    code, message = INTERNAL_ERROR
    return json_response(500, {"code": code, "message": message}, headers)


def cors_headers(allowed_origins: Any, origin: str | None, methods: str) -> dict[str, str] | None:
    """CORS headers for ``origin`` if it is allowed, else None (no header at all)."""
    if not origin or not allowed_origins:
        return None
    if "*" in allowed_origins:
        allow = "*"
    elif origin in allowed_origins:
        allow = origin
    else:
        return None
    return {
        "Access-Control-Allow-Origin": allow,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Expose-Headers": "WWW-Authenticate, Retry-After",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
