"""A loopback stand-in for the Function Compute 3.0 control plane (API 2023-03-30), as much as fc3 0.1.22
uses for `s deploy`, `s info`, `s remove`: functions, triggers, the FC 2.0 tempBucketToken and the PUT of
each code zip to the temporary code bucket.

It keeps what it was given, the way FC would report it back (state: functions, triggers with a made-up
https://<function>-<id>.<region>.fcapp.run URL), logs every request to OUT/requests.jsonl and saves each
code zip in OUT. It does not judge the props: fc3's schema validation runs before any request, and what
the functions then do with their props is proved by serving the zips (runtime.py)."""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ACCOUNT = "1234567890123456"  # the rehearsal's made-up account id
API = re.compile(r"^/2023-03-30/functions(?:/(?P<fn>[^/]+))?(?:/triggers(?:/(?P<trigger>[^/]+))?|/(?P<rest>.+))?$")
CODE_BUCKET = "rehearsal-code-bucket"


class FcApi:
    """One stand-in account. ``start()`` binds 127.0.0.1:<free port>; state survives from one `s` run to
    the next (like an account), requests.jsonl holds the latest run's requests (``begin_run``)."""

    def __init__(self, out, region="cn-hangzhou", trigger_urls=None):
        self.trigger_urls = dict(trigger_urls or {})  # function -> URL its HTTP trigger answers on (runtime.py)
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.region = region
        self.functions, self.triggers = {}, {}  # name -> body; (function, trigger) -> body
        if (self.out / "state.json").exists():  # the same OUT is the same account, run after run
            saved = json.loads((self.out / "state.json").read_text())
            self.functions = saved["functions"]
            self.triggers = {tuple(k.split("\n", 1)): v for k, v in saved["triggers"].items()}
        self.lock = threading.Lock()
        self.log = None
        self.zips = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        if self.log:
            self.log.close()

    def begin_run(self):
        if self.log:
            self.log.close()
        self.log = open(self.out / "requests.jsonl", "w", buffering=1)

    def save(self):
        state = {"functions": self.functions, "triggers": {"\n".join(k): v for k, v in self.triggers.items()}}
        (self.out / "state.json").write_text(json.dumps(state))

    def trigger_url(self, fn):
        return self.trigger_urls.get(fn) or f"https://{fn}-rehearsal.{self.region}.fcapp.run"

    # -- requests --
    def answer(self, method, path, body):
        """(status, JSON body) for one API request; also updates the state."""
        if path.endswith("/tempBucketToken"):  # fc3 asks FC 2.0 where to put the code zip
            self.zips += 1
            return 200, {"credentials": {"AccessKeyId": "STS.rehearsal", "AccessKeySecret": "rehearsal",
                                         "SecurityToken": "rehearsal", "Expiration": "2099-01-01T00:00:00Z"},
                         "ossBucket": CODE_BUCKET, "objectName": f"code-{time.time_ns()}-{self.zips}.zip"}
        m = API.match(path)
        if not m:
            return 404, error("PathNotSupported", f"'{method}' against '{path}' is not supported")
        fn, trigger, rest = m["fn"], m["trigger"], m["rest"]
        is_trigger = "/triggers" in path
        if fn is None:
            if method == "POST":  # CreateFunction
                name = body["functionName"]
                if name in self.functions:
                    return 409, error("FunctionAlreadyExists", f"function '{name}' already exists")
                self.functions[name] = {**body, "functionArn": f"acs:fc:{self.region}:{ACCOUNT}:functions/{name}",
                                        "state": "Active", "lastUpdateStatus": "Successful", "codeChecksum": "1"}
                return 200, self.functions[name]
            if method == "GET":
                return 200, {"functions": list(self.functions.values())}
        elif not is_trigger and rest is None:
            if fn not in self.functions and method != "DELETE":
                return 404, error("FunctionNotFound", f"function '{fn}' does not exist")
            if method == "GET":
                return 200, self.functions[fn]
            if method == "PUT":  # UpdateFunction
                self.functions[fn].update(body)
                return 200, self.functions[fn]
            if method == "DELETE":
                if any(f == fn for f, _ in self.triggers):
                    return 412, error("PreconditionFailed", f"function '{fn}' still has triggers")
                self.functions.pop(fn, None)
                return 204, None
        elif is_trigger and trigger is None:
            if method == "POST":  # CreateTrigger
                key = (fn, body["triggerName"])
                self.triggers[key] = {**body, "httpTrigger": {"urlInternet": self.trigger_url(fn),
                                                              "urlIntranet": self.trigger_url(fn) + "-vpc"}}
                return 200, self.triggers[key]
            if method == "GET":
                return 200, {"triggers": [v for (f, _), v in self.triggers.items() if f == fn]}
        elif is_trigger:
            key = (fn, trigger)
            if key not in self.triggers and method != "DELETE":
                return 404, error("TriggerNotFound", f"trigger '{trigger}' of '{fn}' does not exist")
            if method == "GET":
                return 200, self.triggers[key]
            if method == "PUT":
                self.triggers[key].update(body)
                return 200, self.triggers[key]
            if method == "DELETE":
                self.triggers.pop(key, None)
                return 204, None
        elif method == "GET":  # versions, aliases, async configs, provision configs...: none exist
            return 404, error("ResourceNotFound", f"'{path}' does not exist")
        return 200, {}

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def read_body(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    return self.rfile.read(n)
                if "chunked" not in (self.headers.get("Transfer-Encoding") or ""):
                    return b""
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)

            def handle_any(self):
                raw = self.read_body()
                path = self.path.split("?")[0]
                entry = {"t": time.time(), "method": self.command, "path": self.path, "host": self.headers.get("Host")}
                is_zip = path.startswith(f"/{CODE_BUCKET}/") or (self.command == "PUT" and path.endswith(".zip"))
                body = None
                if raw and not is_zip:
                    try:
                        body = entry["body"] = json.loads(raw)
                    except ValueError:
                        entry["raw"] = raw[:300].decode("latin1")
                with api.lock:
                    if api.log:
                        api.log.write(json.dumps(entry) + "\n")
                    if is_zip:  # the code zip, as the temporary code bucket would store it
                        name = path.rsplit("/", 1)[-1]
                        (api.out / (name if name.endswith(".zip") else name + ".zip")).write_bytes(raw)
                        status, answer, headers = 200, None, {"ETag": '"rehearsal"'}
                    else:
                        status, answer = api.answer(self.command, path, body)
                        headers = {}
                    if self.command in ("POST", "PUT", "DELETE"):
                        api.save()
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-acs-request-id", f"rehearsal-{time.time_ns()}")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        return Handler


def error(code, message):
    return {"Code": code, "Message": message, "RequestId": f"rehearsal-{time.time_ns()}"}
