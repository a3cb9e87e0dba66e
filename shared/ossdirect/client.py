"""Upload files through a signature function, as the browser does: ``Client(signature_url).upload(path)``.

Needs the ``cli`` extra (``pip install 'ossdirect[cli]'``: requests). Never imported by the
functions: a deploy bundle vendors this file but no handler loads it.

One upload: GET a signed form from the signature function (``filename``, ``size``,
``content_type``; ``Authorization: Bearer <token>`` when signed in), then POST the form's fields
in order and the file last to the form's ``host``, streamed from disk (never the whole file in
memory). Network errors (connection refused or reset, timeouts, a connection dropped mid-file)
are retried with exponential backoff; answers are never retried, except one fresh form when OSS
says the form expired.
"""

from __future__ import annotations

import mimetypes
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

if TYPE_CHECKING:  # requests is the ``cli`` extra: imported when a Client is made, not at import
    import requests

__all__ = ["Client", "UploadError", "UploadResult", "ProgressCallback", "MultipartBody"]

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_sent, total_bytes)`` while a file's body is sent (from the uploading thread)."""

# What a refusal is, for callers and for the CLI's exit codes.
REFUSED = "refused"  # the signature function or OSS said no (4xx): retrying the same file will not help
AUTH = "auth"  # sign-in needed or refused (401): get a (new) token
UNAVAILABLE = "unavailable"  # 5xx or 429: the service could not serve it now; try again later
NETWORK = "network"  # no answer after every retry
KINDS = (REFUSED, AUTH, UNAVAILABLE, NETWORK)

DONE = "done"  # stored and recorded: ``record`` is the callback function's answer
UNRECORDED = "unrecorded"  # stored, but the callback failed (OSS answered 203 CallbackFailed)
STORED = "stored"  # stored; the form had no callback (no record expected)


class UploadError(Exception):
    """An upload that did not happen. ``str(error)`` is the server's own sentence when it gave one."""

    def __init__(self, message: str, *, kind: str, code: str = "", status: int = 0, source: str = "",
                 attempts: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind  # one of KINDS
        self.code = code  # the service's code: EntityTooLarge, UnsupportedContentType, FileAlreadyExists, ...
        self.status = status  # HTTP status (0: no answer)
        self.source = source  # "signature" (the signature function), "oss", or "" (no answer)
        self.attempts = attempts
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "status": self.status, "source": self.source,
                "message": self.message, "retry_after": self.retry_after}


@dataclass
class UploadResult:
    """One file that reached the bucket."""

    path: str
    state: str  # DONE, UNRECORDED or STORED
    key: str
    upload_id: str
    size: int
    content_type: str
    record: dict[str, Any] | None = None  # the callback's answer (record_id, etag, url, ...) when recorded
    message: str = ""  # why it is unrecorded, when it is
    attempts: int = 1
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "state": self.state, "key": self.key, "upload_id": self.upload_id,
                "size": self.size, "content_type": self.content_type, "record": self.record,
                "message": self.message, "attempts": self.attempts, "seconds": round(self.seconds, 3)}


def _quote_header(value: str) -> str:
    # RFC 7578: names and filenames in quotes; a quote, CR or LF in them is percent-encoded (as browsers do)
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartBody:
    """A ``multipart/form-data`` body read from the file as it is sent: the fields in order, the file last.

    Has a length (so the request carries ``Content-Length``, which PostObject needs), and
    ``read(n)`` returns at most ``n`` bytes: memory stays one chunk, whatever the file's size."""

    def __init__(self, fields: Sequence[Sequence[str]], filename: str, fileobj: IO[bytes], size: int,
                 content_type: str, progress: ProgressCallback | None = None) -> None:
        self.boundary = "ossdirect-" + uuid.uuid4().hex
        b = self.boundary.encode("ascii")
        parts = []
        for name, value in fields:
            parts.append(b"--" + b + b'\r\nContent-Disposition: form-data; name="' + _quote_header(name).encode()
                         + b'"\r\n\r\n' + str(value).encode("utf-8") + b"\r\n")
        parts.append(b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="'
                     + _quote_header(filename).encode("utf-8") + b'"\r\nContent-Type: '
                     + content_type.encode("ascii", "replace") + b"\r\n\r\n")
        self._head = b"".join(parts)
        self._tail = b"\r\n--" + b + b"--\r\n"
        self._file, self._size, self._progress = fileobj, size, progress
        self.content_type = "multipart/form-data; boundary=" + self.boundary
        self.length = len(self._head) + size + len(self._tail)
        self._start = fileobj.tell()
        self.rewind()

    def rewind(self) -> None:
        self._file.seek(self._start)
        self._pos = 0  # bytes of the body handed out so far
        self._file_left = self._size

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:  # requests streams bodies that iterate; urllib3 calls read()
        while True:
            chunk = self.read(1 << 20)
            if not chunk:
                return
            yield chunk

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.length - self._pos
        out = b""
        head_len = len(self._head)
        if self._pos < head_len:
            out = self._head[self._pos:self._pos + size]
        if len(out) < size and self._file_left > 0:
            data = self._file.read(min(size - len(out), self._file_left))
            if not data:
                raise OSError(f"{self._file!r} ended {self._file_left} bytes early (was it changed while uploading?)")
            self._file_left -= len(data)
            out += data
        tail_from = self._pos + len(out) - head_len - self._size
        if len(out) < size and self._file_left == 0 and tail_from >= 0:
            out += self._tail[tail_from:tail_from + size - len(out)]
        self._pos += len(out)
        if self._progress is not None and out:
            self._progress(self._pos, self.length)
        return out


def _oss_error(text: str) -> tuple[str, str]:
    """(Code, Message) from OSS's XML error body (no XML parser needed for two plain elements)."""
    def pick(tag: str) -> str:
        start = text.find(f"<{tag}>")
        end = text.find(f"</{tag}>", start)
        return text[start + len(tag) + 2:end].strip() if start >= 0 and end > start else ""

    return pick("Code"), pick("Message")


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


class Client:
    """Uploads files through one signature function. Thread-safe: one HTTP session per thread.

    ``token``: sent as ``Authorization: Bearer <token>`` to the signature function (never to OSS).
    ``folder`` / ``naming``: passed to the signature function (when it allows them).
    ``retries``: extra attempts after a network error; waits ``backoff * 2**n`` seconds (with jitter,
    at most ``max_backoff``) between them."""

    # Seam for multipart uploads: once the signature function offers multipart routes (initiate,
    # sign each part, complete), files of at least ``multipart_threshold`` bytes go through
    # :meth:`_upload_multipart`. Until then every file is one PostObject (OSS takes up to 5 GB).
    multipart_threshold: int | None = None

    def __init__(self, signature_url: str, token: str | None = None, *, folder: str | None = None,
                 naming: str | None = None, retries: int = 4, backoff: float = 0.5, max_backoff: float = 10.0,
                 timeout: float = 60.0, user_agent: str | None = None) -> None:
        import requests  # noqa: F401  (fail here, with a clear message, when the cli extra is missing)

        self.signature_url = signature_url
        self.token = token or None
        self.folder, self.naming = folder, naming
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.timeout = timeout
        from . import __version__

        self.user_agent = user_agent or f"ossdirect/{__version__}"
        self._local = threading.local()
        self._sleep = time.sleep

    # --- HTTP ------------------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = self.user_agent
        return session

    def _network_errors(self) -> tuple[type[BaseException], ...]:
        import requests

        return (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)

    def _wait(self, attempt: int) -> None:
        delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        self._sleep(delay * (0.5 + random.random() / 2))

    # --- forms -------------------------------------------------------------------------------------
    def form(self, filename: str, size: int, content_type: str) -> dict[str, Any]:
        """A signed form for one file (the signature function's JSON answer), or :class:`UploadError`."""
        params: dict[str, str] = {"filename": filename, "size": str(size), "content_type": content_type}
        if self.folder:
            params["folder"] = self.folder
        if self.naming:
            params["naming"] = self.naming
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        errors = self._network_errors()
        for attempt in range(1, self.retries + 2):
            try:
                r = self.session.get(self.signature_url, params=params, headers=headers, timeout=self.timeout)
                break
            except errors as exc:
                if attempt > self.retries:
                    raise UploadError(f"could not reach the signature function: {exc.__class__.__name__}",
                                      kind=NETWORK, source="", attempts=attempt) from None
                self._wait(attempt)
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code == 200 and isinstance(body, dict) and "fields" in body and "host" in body:
            return body
        code = body.get("code", "") if isinstance(body, dict) else ""
        message = ((body.get("message") if isinstance(body, dict) else "")
                   or f"the signature function answered {r.status_code}")
        kind = (AUTH if r.status_code == 401 else UNAVAILABLE if r.status_code >= 500 or r.status_code == 429
                else REFUSED)
        raise UploadError(message, kind=kind, code=code, status=r.status_code, source="signature",
                          retry_after=_retry_after(r.headers.get("Retry-After")))

    # --- uploads -----------------------------------------------------------------------------------
    def upload(self, path: str | os.PathLike[str], *, content_type: str | None = None,
               progress: ProgressCallback | None = None) -> UploadResult:
        """Upload one file; returns :class:`UploadResult` or raises :class:`UploadError`."""
        started = time.monotonic()
        path = os.fspath(path)
        size = os.path.getsize(path)
        name = os.path.basename(path)
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        if self.multipart_threshold is not None and size >= self.multipart_threshold:
            return self._upload_multipart(path, size, content_type, progress)
        form = self.form(name, size, content_type)
        errors = self._network_errors()
        attempts, refreshed = 0, False
        with open(path, "rb") as f:
            body = MultipartBody(form["field_list"], name, f, size, content_type, progress)
            while True:
                attempts += 1
                body.rewind()
                try:
                    r = self.session.post(form["host"], data=body, timeout=self.timeout,
                                          headers={"Content-Type": body.content_type})
                except errors as exc:
                    if attempts > self.retries:
                        raise UploadError(f"the upload to {form['host']} failed {attempts} times; last: "
                                          f"{exc.__class__.__name__}", kind=NETWORK, attempts=attempts) from None
                    self._wait(attempts)
                    if form.get("expire") and float(form["expire"]) - time.time() < 30:  # about to lapse: a new one
                        form = self.form(name, size, content_type)
                        body = MultipartBody(form["field_list"], name, f, size, content_type, progress)
                    continue
                if r.status_code == 403 and not refreshed and "Policy expired" in r.text:
                    refreshed = True  # the form lapsed before the file was sent: one fresh form
                    form = self.form(name, size, content_type)
                    body = MultipartBody(form["field_list"], name, f, size, content_type, progress)
                    continue
                break
        seconds = time.monotonic() - started
        result = UploadResult(path=path, state=STORED, key=form.get("key") or "", upload_id=form.get("upload_id", ""),
                              size=size, content_type=content_type, attempts=attempts, seconds=seconds)
        if r.status_code == 203:
            code, message = _oss_error(r.text)
            result.state, result.message = UNRECORDED, message or code or "the callback failed"
            return result
        if 200 <= r.status_code < 300:
            try:
                answer = r.json() if r.content else None
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("ok"):
                result.state, result.record = DONE, answer
                result.key = answer.get("key") or result.key
            elif form.get("callback"):
                result.state, result.message = UNRECORDED, "the storage answered without the callback's record"
            return result
        code, message = _oss_error(r.text)
        if code == "FileAlreadyExists" and attempts > 1:
            message += " (an earlier attempt, cut off by a network error, may have stored it)"
        kind = UNAVAILABLE if r.status_code >= 500 else REFUSED
        raise UploadError(message or f"the storage answered {r.status_code}", kind=kind, code=code,
                          status=r.status_code, source="oss", attempts=attempts)

    def _upload_multipart(self, path: str, size: int, content_type: str,
                          progress: ProgressCallback | None) -> UploadResult:
        raise NotImplementedError("multipart uploads need the signature function's multipart routes (not offered yet)")


def summarize(results: Mapping[str, UploadResult | UploadError]) -> dict[str, int]:
    """Counts per outcome: done, unrecorded, stored, and each error kind."""
    counts: dict[str, int] = {}
    for outcome in results.values():
        key = outcome.state if isinstance(outcome, UploadResult) else outcome.kind
        counts[key] = counts.get(key, 0) + 1
    return counts

