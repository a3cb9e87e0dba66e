"""Serve an FC3 handler as a WSGI app, for local runs and tests.

The request is turned into the same JSON event bytes an FC3 HTTP trigger
delivers, so the real handler runs unchanged.
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import parse_qsl, quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


def environ_to_event(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers: dict[str, str] = {}
    for k, v in environ.items():
        if k.startswith("HTTP_"):
            headers["-".join(p.capitalize() for p in k[5:].split("_"))] = v
    for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(k):
            headers["-".join(p.capitalize() for p in k.split("_"))] = environ[k]
    query: dict[str, str] = {}
    for k, v in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        query[k] = query[k] + "," + v if k in query else v  # FC3 joins repeats with commas
    is_text = environ.get("CONTENT_TYPE", "").startswith(_TEXT_TYPES)
    try:
        text = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text = None
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
    event = {
        "version": "v1",
        "rawPath": quote(path, safe="/%:@!$&'()*+,;="),
        "headers": headers,
        "queryParameters": query,
        "body": text if text is not None else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": text is None,
        "requestContext": {
            "http": {"method": environ["REQUEST_METHOD"], "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": environ.get("REMOTE_ADDR", ""), "userAgent": environ.get("HTTP_USER_AGENT", "")},
            "requestId": "1-" + uuid.uuid4().hex,
        },
    }
    return json.dumps(event).encode("utf-8")


class LocalContext:
    """What FC passes as ``context`` on python3.12: no credentials (they come from the environment)."""

    def __init__(self, request_id: str, function_name: str) -> None:
        self.request_id = request_id
        self.function = type("Function", (), {"name": function_name})()


def wsgi_app(handler: Callable[[bytes, Any], dict[str, Any]],
             function_name: str = "local") -> Callable[..., list[bytes]]:
    from http import HTTPStatus

    def reason(status: int) -> str:  # the real phrase for every status a function answers (401, 404, 429, ...)
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return "Unknown"

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        event = environ_to_event(environ)
        response = handler(event, LocalContext(json.loads(event)["requestContext"]["requestId"], function_name))
        status = response.get("statusCode", 200)
        body = response.get("body") or ""
        data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode("utf-8")
        headers = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
        headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {reason(status)}", headers)
        return [data]

    return app
