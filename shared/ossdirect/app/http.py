"""FC3 HTTP trigger events in, ``{statusCode, headers, body}`` out.

The FC3 event arrives as bytes; header keys vary in case and repeated
headers/query parameters are comma-joined. Handlers see a :class:`Request` and
raise :class:`ApiError` for anything a client did wrong.
"""

import base64
import json


class ApiError(Exception):
    """An error a client sees: HTTP status, machine-readable code, message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Request:
    """One HTTP request. ``headers`` keys are lower-case; ``raw_query`` has no leading '?'."""

    __slots__ = ("method", "path", "headers", "query", "raw_query", "body", "source_ip", "request_id")

    def __init__(self, method, path, headers=None, query=None, raw_query="", body=b"", source_ip="", request_id=""):
        self.method, self.path, self.raw_query, self.body = method, path, raw_query, body
        self.headers, self.query = headers or {}, query or {}
        self.source_ip, self.request_id = source_ip, request_id

    def header(self, name, default=""):
        return self.headers.get(name.lower(), default)


def parse_event(event):
    """Turn an FC3 HTTP trigger event (bytes, str or dict) into a :class:`Request`."""
    try:
        if isinstance(event, (bytes, bytearray)):
            event = event.decode("utf-8")  # json.loads(bytes) would sniff the encoding first
        data = event if isinstance(event, dict) else json.loads(event)
    except (TypeError, ValueError):
        raise ApiError(400, "InvalidEvent", "the function event is not JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "InvalidEvent", "the function event is not a JSON object")
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
            raise ApiError(400, "InvalidEvent", "the event body is not valid base64") from None
    elif type(body) is str:
        body = body.encode("utf-8")
    else:
        raise ApiError(400, "InvalidEvent", "the event body is not a string")
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


def json_text_response(status, body, headers=None):
    out = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    if headers:
        out.update(headers)
    return {"statusCode": status, "headers": out, "isBase64Encoded": False, "body": body}


def json_response(status, payload, headers=None):
    return json_text_response(status, json.dumps(payload, separators=(",", ":"), ensure_ascii=False), headers)


def error_response(error, headers=None):
    return json_response(error.status, {"code": error.code, "message": error.message}, headers)


def cors_headers(allowed_origins, origin, methods):
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
