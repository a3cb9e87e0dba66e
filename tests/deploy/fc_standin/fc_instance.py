"""One FC instance's bootstrap (runtime.py starts it in its own mount namespace, the code at /code read-only,
cwd /code, the function's environment and nothing else). It imports the handler FC_FUNCTION_HANDLER names
from /code and answers on 127.0.0.1:<free port>, printed as JSON on the first line:

- kind "http": the HTTP trigger's request -> the FC 3.0 event, through the product's own adapter
  (ossdirect.app.wsgi in the zip);
- kind "event": POST body -> handler(body, context), as FC invokes an OSS trigger's function.
Uses only the standard library and the zip: the runtime's CPython has nothing else."""

import importlib
import json
import os
import sys
import uuid
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

kind = sys.argv[1]
sys.path.insert(0, "/code")
module_name, _, attr = os.environ["FC_FUNCTION_HANDLER"].rpartition(".")
handler = getattr(importlib.import_module(module_name), attr)
from ossdirect.app.wsgi import LocalContext, wsgi_app  # noqa: E402  (from the zip)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def invoke(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    context = LocalContext(environ.get("HTTP_X_FC_REQUEST_ID") or "1-" + uuid.uuid4().hex,
                           os.environ["FC_FUNCTION_NAME"])
    try:
        result, status = handler(body, context), "200 OK"
    except Exception as exc:  # noqa: BLE001 - FC reports it; OSS retries the event
        result, status = {"errorMessage": str(exc)[:300], "errorType": type(exc).__name__}, "500 Error"
    data = json.dumps(result, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


app = wsgi_app(handler, os.environ["FC_FUNCTION_NAME"]) if kind == "http" else invoke
server = make_server("127.0.0.1", 0, app, server_class=Threaded, handler_class=Quiet)
print(json.dumps({"port": server.server_port, "pid": os.getpid()}), flush=True)
server.serve_forever()
