"""The FC data plane for a rehearsal: serves the code zips `s deploy` uploaded with what FC received and
would enforce.

- each HTTP trigger answers on its own loopback port (the URL the API stand-in reported for it); a method
  the trigger does not list is refused before the function runs, as FC does: 403, X-Fc-Error-Type
  FcCommonError (help.aliyun.com/document_detail/85445.html: a request whose method the HTTP trigger does
  not list), with FC's error body {"errorCode", "errorMessage"} (the code name is this stand-in's);
- a request still running at the function's timeout is cut off: the instance is killed (the next request
  cold-starts a new one) and the caller gets 502 with X-Fc-Error-Type UnhandledInvocationError;
- an instance runs the runtime's CPython in its own mount namespace: the unpacked zip at /code,
  read-only, cwd /code, the rest of the file system read-only too, a fresh empty /tmp the only place it
  may write (FC's instances have 512 MB there), with exactly the
  function's environment variables as deployed plus what FC itself sets (FC_*, the role's
  ALIBABA_CLOUD_* keys); nothing of the test process's environment;
- memory: each instance's peak resident size (VmHWM) is kept, for tests to hold against memorySize.
The OSS trigger's function is invoked by the OSS emulator (events, with retries) on its own port."""

import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
CODE_MOUNT = "/code"  # where FC puts the code (PYTHONPATH=/code/python in s.yaml)
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class Instance:
    """One running instance of a function (a process in its own mount namespace)."""

    def __init__(self, python, code, env, kind):
        # the code read-only at /code, the whole file system read-only, a fresh empty /tmp (as in FC)
        os.makedirs(CODE_MOUNT, exist_ok=True)
        # the bootstrap is opened (fd 3) before the fresh /tmp hides it: the checkout may itself be under /tmp
        script = (f"exec 3< {shlex.quote(str(HERE / 'fc_instance.py'))} && "
                  f"mount --bind {code} {CODE_MOUNT} && mount -o remount,bind,ro {CODE_MOUNT} && "
                  "mount -o remount,bind,ro / && mount -t tmpfs -o size=512m tmpfs /tmp && "
                  f"cd {CODE_MOUNT} && exec {python} -s /dev/fd/3 {kind}")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            raise RuntimeError(f"the instance did not start: {self.proc.stderr.read()[-3000:]}")
        info = json.loads(line)
        self.pid, self.url = info["pid"], f"http://127.0.0.1:{info['port']}"
        self.stderr = []
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def peak_rss_mb(self):
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


class DeployedFunction:
    """A function as deployed: its CreateFunction/UpdateFunction body, its code and its trigger."""

    def __init__(self, body, code_zip, workdir, python, fc_env, trigger=None):
        self.name, self.body, self.python = body["functionName"], body, python
        self.timeout, self.memory = body["timeout"], body["memorySize"]
        self.code = Path(workdir) / self.name
        shutil.rmtree(self.code, ignore_errors=True)
        with zipfile.ZipFile(code_zip) as z:
            z.extractall(self.code)
        self.env = {**body["environmentVariables"], **fc_env, "FC_FUNCTION_NAME": self.name,
                    "FC_FUNCTION_HANDLER": body["handler"], "FC_FUNCTION_MEMORY_SIZE": str(self.memory),
                    "FC_FUNC_CODE_PATH": CODE_MOUNT, "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"}
        self.trigger = trigger
        self.kind = "http" if trigger and trigger["triggerType"] == "http" else "event"
        config = trigger.get("triggerConfig") if trigger else None
        config = json.loads(config) if isinstance(config, str) else (config or {})
        self.methods = [m.upper() for m in config.get("methods", [])]
        self.instance, self.lock = None, threading.Lock()
        self.cold_starts, self.timeouts, self.peaks = 0, 0, []
        self.stopped = False

    def ensure_instance(self):
        with self.lock:
            if self.instance is None or self.instance.proc.poll() is not None:
                self.instance = Instance(self.python, self.code, self.env, self.kind)
                self.cold_starts += 1
            return self.instance

    def drop_instance(self, instance):
        with self.lock:
            self.peaks.append(instance.peak_rss_mb())
            instance.kill()
            if self.instance is instance:
                self.instance = None

    def peak_rss_mb(self):
        peaks = [p for p in self.peaks + [self.instance.peak_rss_mb() if self.instance else None] if p]
        return max(peaks) if peaks else None

    def close(self):
        if self.instance is not None:
            self.drop_instance(self.instance)


class Front:
    """What answers on a trigger's URL (or the OSS trigger's invocation URL) before the function runs."""

    def __init__(self):
        self.fn = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def fc_error(self, status, error_type, code, message):
                body = json.dumps({"errorCode": code, "errorMessage": message}).encode()  # FC error body shape
                self.reply(status, body, [("Content-Type", "application/json"), ("X-Fc-Error-Type", error_type)])

            def handle_any(self):
                fn = front.fn
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if fn is None or fn.stopped:
                    return self.fc_error(404, "FcCommonError", "FunctionNotFound", "no function serves this URL")
                if fn.kind == "http" and self.command not in fn.methods:
                    return self.fc_error(403, "FcCommonError", "MethodNotAllowed",
                                         f"method {self.command} is not configured on the HTTP trigger "
                                         f"(allowed: {', '.join(fn.methods)})")
                try:
                    instance = fn.ensure_instance()
                except RuntimeError as exc:
                    return self.fc_error(502, "UnhandledInvocationError", "InstanceStartFailed", str(exc)[-500:])
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                try:
                    answer = requests.request(self.command, instance.url + self.path, data=body, headers=headers,
                                              timeout=fn.timeout, allow_redirects=False)
                except requests.Timeout:
                    fn.timeouts += 1
                    fn.drop_instance(instance)  # FC stops the instance that ran past its timeout
                    return self.fc_error(502, "UnhandledInvocationError", "FunctionTimeout",
                                         f"Function time out after {fn.timeout} seconds")
                except requests.ConnectionError as exc:
                    fn.drop_instance(instance)
                    return self.fc_error(502, "UnhandledInvocationError", "InstanceExited", str(exc)[:300])
                out = [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP]
                self.reply(answer.status_code, answer.content, out)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = handle_any

        return Handler


class FcRuntime:
    """Fronts bound before the deploy (their URLs become the triggers' URLs), functions attached after."""

    def __init__(self, http_functions, event_functions):
        self.fronts = {fn: Front() for fn in (*http_functions, *event_functions)}
        self.functions = {}

    def trigger_urls(self):
        return {fn: front.url for fn, front in self.fronts.items()}

    def attach(self, state, zips, workdir, python, fc_env):
        """state: the API stand-in's functions and triggers; zips: function name -> uploaded code zip."""
        triggers = {key.split("\n")[0]: t for key, t in state["triggers"].items()}
        for name, front in self.fronts.items():
            fn = DeployedFunction(state["functions"][name], zips[name], workdir, python, fc_env, triggers.get(name))
            self.functions[name] = front.fn = fn
        return self.functions

    def close(self):
        for fn in self.functions.values():
            fn.close()
        for front in self.fronts.values():
            front.close()


def wait_for(predicate, timeout=30.0, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
