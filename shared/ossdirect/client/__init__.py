"""Upload files through a signature function, as the browser does: ``Client(signature_url).upload(path)``.

Needs the ``cli`` extra (``pip install 'ossdirect[cli]'``: requests). Never imported by the
functions: a deploy bundle vendors this file but no handler loads it.

One upload: GET a signed form from the signature function (``filename``, ``size``,
``content_type``; ``Authorization: Bearer <token>`` when signed in), then POST the form's fields
in order and the file last to the form's ``host``, streamed from disk (never the whole file in
memory). Network errors (connection refused or reset, timeouts, a connection dropped mid-file)
are retried with exponential backoff; answers are never retried, except one fresh form when OSS
says the form expired.

A large file (above the service's published ``multipart_threshold``, or PostObject's 5 GiB) goes in
parts instead, as web/multipart.js sends them: ``POST /multipart`` creates the session, part URLs are
signed in batches (``GET /multipart/<uploadId>/parts``), several parts are PUT at once straight to OSS,
``POST .../complete`` ends it with the same record a form's callback gives. What a resume needs
(uploadId, key, upload_id, part size, the file's size and mtime) is kept in a small JSON state file
from create to complete; a resumed upload asks which parts OSS holds (``GET /multipart/<uploadId>``)
and sends only the others.
"""

from __future__ import annotations

import errno
import hashlib
import io
import mimetypes
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence
from ..errors import OssdirectError

if TYPE_CHECKING:  # requests is the ``cli`` extra: imported when a Client is made, not at import
    import requests

__all__ = ["Client", "UploadError", "UploadResult", "ProgressCallback", "MultipartBody", "state_file"]

MiB = 1 << 20
GiB = 1 << 30

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


class UploadError(OssdirectError):
    """An upload that did not happen. ``str(error)`` is the server's own sentence when it gave one."""

    kind: str  # network, refused, ... (always set: not an HTTP kind)

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
    extra: dict[str, Any] = field(default_factory=dict)  # "multipart": {uploadId, part_count, parts_held, parts_sent, resumed}
    url: str = ""  # the object's URL (the service's public base URL and the key), when the service says it

    def to_dict(self) -> dict[str, Any]:
        out = {"path": self.path, "state": self.state, "key": self.key, "upload_id": self.upload_id,
               "size": self.size, "content_type": self.content_type, "url": self.url, "record": self.record,
               "message": self.message, "attempts": self.attempts, "seconds": round(self.seconds, 3)}
        if "multipart" in self.extra:
            out["multipart"] = self.extra["multipart"]
        return out


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


class _Source:
    """The file's bytes by offset, from several threads at once: ``os.pread`` on a real file (no shared
    position), else seek and read under a lock (``io.BytesIO`` and other file-likes)."""

    def __init__(self, fileobj: IO[bytes], start: int) -> None:
        self.file, self.start, self.lock = fileobj, start, threading.Lock()
        self.fd: int | None = None
        try:
            fd = fileobj.fileno()
            os.pread(fd, 0, start)
            self.fd = fd
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass

    def read_at(self, offset: int, n: int) -> bytes:
        if self.fd is not None:
            return os.pread(self.fd, n, self.start + offset)
        with self.lock:
            self.file.seek(self.start + offset)
            return self.file.read(n)


class _PartBody:
    """One part's byte range as a streamed request body (its length is the Content-Length OSS checks)."""

    def __init__(self, source: _Source, offset: int, length: int, sent: Callable[[int], None]) -> None:
        self.source, self.offset, self.length, self.sent = source, offset, length, sent
        self.pos = 0
        self.crc = 0 if _crc64 is not None else None  # CRC-64/ECMA of what was read, as OSS computes it

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.read(1 << 20)
            if not chunk:
                return
            yield chunk

    def read(self, size: int | None = -1) -> bytes:
        left = self.length - self.pos
        size = left if size is None or size < 0 else min(size, left)
        if size <= 0:
            return b""
        data = self.source.read_at(self.offset + self.pos, size)
        if not data:
            raise OSError(f"the file ended {left} bytes early (was it changed while uploading?)")
        self.pos += len(data)
        if self.crc is not None and _crc64 is not None:
            self.crc = _crc64(data, self.crc)
        self.sent(len(data))
        return data


def part_md5(source: _Source, offset: int, length: int, chunk: int = 256 << 10) -> str:
    """The base64 MD5 of ``length`` bytes of ``source`` from ``offset`` (a part's ``Content-MD5``), read 256 KiB
    at a time: 8 MiB reads beside 4 part streams took the CLI past its 60 MiB peak."""
    import base64
    import hashlib

    digest, pos = hashlib.md5(), 0
    while pos < length:
        data = source.read_at(offset + pos, min(chunk, length - pos))
        if not data:
            raise OSError(f"the file ended {length - pos} bytes early (was it changed while uploading?)")
        digest.update(data)
        pos += len(data)
    return base64.b64encode(digest.digest()).decode("ascii")


class _InChunks:
    """A body handed to requests as an iterable with a length, so urllib3 sends each chunk whole: a body
    with ``read`` is read 16 KiB at a time (a Python call, a copy and a send per 16 KiB, ~40% of curl's
    rate on loopback). The length still makes the request carry Content-Length (no chunked encoding).
    256 KiB, not 1 MiB: 20 files × 4 part streams of 1 MiB chunks left ~68 MiB in glibc's per-thread
    arenas (the CLI's peak RSS must stay < 60 MiB)."""

    def __init__(self, body: "MultipartBody | _PartBody", chunk: int = 256 << 10) -> None:
        self.body, self.chunk = body, chunk

    def __len__(self) -> int:
        return len(self.body)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            data = self.body.read(self.chunk)
            if not data:
                return
            yield data


def _crc64_function() -> Callable[[bytes, int], int] | None:
    """CRC-64/ECMA as OSS computes it (``x-oss-hash-crc64ecma``; CRC-64/XZ in catalogues), in C/SIMD
    from the ``fastcrc`` package (GB/s); None without it (uploads then go without a declared checksum)."""
    try:
        from fastcrc import crc64
    except ImportError:
        return None
    return crc64.xz


_crc64 = _crc64_function()


def file_crc64(source: _Source, size: int, chunk: int = 1 << 20) -> int | None:
    """The CRC-64/ECMA of ``size`` bytes of ``source`` (None without fastcrc). 1 MiB reads: malloc reuses
    them, where each 8 MiB read was a fresh mapping to fault in (0.07–0.10 s vs 0.05 s CPU per 256 MiB)."""
    if _crc64 is None:
        return None
    crc, pos = 0, 0
    while pos < size:
        data = source.read_at(pos, min(chunk, size - pos))
        if not data:
            raise OSError(f"the file ended {size - pos} bytes early (was it changed while uploading?)")
        crc = _crc64(data, crc)
        pos += len(data)
    return crc


def _checksum_error(answer: Mapping[str, Any], attempts: int) -> "UploadError":
    return UploadError(str(answer.get("message") or "the file arrived changed: upload it again"), kind=NETWORK,
                       code="ChecksumMismatch", status=200, source="callback", attempts=attempts)


def state_file(path: str | os.PathLike[str], state_dir: str | os.PathLike[str] | None = None) -> str:
    """Where a multipart upload of ``path`` keeps what ``resume`` needs: ``.ossdirect-<name>.json`` beside
    the file, or in ``state_dir`` (named after the file and a hash of its absolute path)."""
    full = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(full)
    if state_dir is not None:
        digest = hashlib.sha1(full.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        return os.path.join(os.fspath(state_dir), f".ossdirect-{name}-{digest}.json")
    return os.path.join(directory, f".ossdirect-{name}.json")


class Client:
    """Uploads files through one signature function. Thread-safe: one HTTP session per thread.

    ``token``: sent as ``Authorization: Bearer <token>`` to the signature function (never to OSS).
    ``folder`` / ``naming``: passed to the signature function (when it allows them).
    ``retries``: extra attempts after a network error; waits ``backoff * 2**n`` seconds (with jitter,
    at most ``max_backoff``) between them.

    Files larger than the service's ``multipart_threshold`` (published in ``GET <signature-url>/limits``;
    asked once, and only for files over 8 MiB) or than PostObject's 5 GiB go in parts through the
    ``/multipart`` routes: ``part_parallel`` parts at once (default: the service's suggestion), resumable
    from a state file (see :func:`state_file`). Set ``multipart_threshold`` to decide without asking."""

    multipart_threshold: int | None = None
    FORM_LIMIT = 5 * GiB  # PostObject's limit: larger files always go in parts
    SMALL = 8 * MiB  # up to one part: /limits is not asked

    def __init__(self, signature_url: str, token: str | None = None, *, folder: str | None = None,
                 naming: str | None = None, retries: int = 4, backoff: float = 0.5, max_backoff: float = 10.0,
                 timeout: float = 60.0, user_agent: str | None = None, part_parallel: int | None = None,
                 checksums: bool = True, part_md5: bool = True) -> None:
        import requests  # noqa: F401  (fail here, with a clear message, when the cli extra is missing)

        self.signature_url = signature_url
        self.token = token or None
        self.folder, self.naming = folder, naming
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.timeout = timeout
        self.part_parallel = part_parallel
        # declare each file's CRC-64 (read once before the upload, at GB/s) and check every part's against
        # OSS's: a byte changed on the way is never a good upload (needs fastcrc, the cli extra)
        self.checksums = checksums and _crc64 is not None
        # send each part's MD5 when its URL is signed: the URL then signs Content-MD5 and OSS itself refuses a
        # part changed on the way (400 InvalidDigest), before it is stored (one more read of the part; hashlib)
        self.part_md5 = part_md5
        from .. import __version__

        self.user_agent = user_agent or f"ossdirect/{__version__}"
        self._local = threading.local()
        self._sleep = time.sleep
        self._limits: dict[str, Any] | None = None
        self._limits_lock = threading.Lock()

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

    def _url(self, route: str) -> str:
        return self.signature_url.rstrip("/") + "/" + route.lstrip("/")

    def _call(self, method: str, url: str, *, params: Mapping[str, str] | None = None, json: Any = None,
              ok: Sequence[int] = (200,)) -> tuple[int, Any]:
        """One request to the signature function, retried on network errors: ``(status, JSON body)`` when
        the status is in ``ok``, else :class:`UploadError` with the service's code and sentence."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        errors = self._network_errors()
        for attempt in range(1, self.retries + 2):
            try:
                r = self.session.request(method, url, params=params, json=json, headers=headers,
                                         timeout=self.timeout)
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
        if r.status_code in ok:
            return r.status_code, body
        code = body.get("code", "") if isinstance(body, dict) else ""
        message = ((body.get("message") if isinstance(body, dict) else "")
                   or f"the signature function answered {r.status_code}")
        # 501 (MultipartUnavailable): the service cannot do it at all, later neither
        kind = (AUTH if r.status_code == 401 else UNAVAILABLE if (r.status_code >= 500 and r.status_code != 501)
                or r.status_code == 429 else REFUSED)
        raise UploadError(message, kind=kind, code=code, status=r.status_code, source="signature",
                          retry_after=_retry_after(r.headers.get("Retry-After")))

    # --- limits, forms -----------------------------------------------------------------------------
    def limits(self) -> dict[str, Any] | None:
        """The service's published limits (``GET <signature-url>/limits``, asked once), or None when it
        does not answer them."""
        with self._limits_lock:
            if self._limits is None:
                try:
                    _, body = self._call("GET", self._url("limits"))
                except UploadError:
                    return None
                self._limits = body if isinstance(body, dict) else {}
            return self._limits

    def uses_multipart(self, size: int) -> bool:
        """Whether a file of ``size`` bytes goes in parts."""
        if size > self.FORM_LIMIT:
            return True
        threshold = self.multipart_threshold
        if threshold is None:
            if size <= self.SMALL:
                return False
            threshold = (self.limits() or {}).get("multipart_threshold")
        return isinstance(threshold, int) and size > threshold

    def form(self, filename: str, size: int, content_type: str, crc64: int | None = None) -> dict[str, Any]:
        """A signed form for one file (the signature function's JSON answer), or :class:`UploadError`.
        ``crc64``: the file's CRC-64/ECMA: the form pins it, and the service records a mismatch as corrupt."""
        params: dict[str, str] = {"filename": filename, "size": str(int(size)), "content_type": content_type}
        if crc64 is not None:
            params["crc64"] = str(crc64)
        if self.folder:
            params["folder"] = self.folder
        if self.naming:
            params["naming"] = self.naming
        status, body = self._call("GET", self.signature_url, params=params, ok=(200, 201, 202, 204))
        if status == 200 and isinstance(body, dict) and "fields" in body and "host" in body:
            return body
        raise UploadError(f"the signature function answered {status} without a form", kind=REFUSED,
                          status=status, source="signature")

    # --- your files (sign-in on: the signature function's /files routes) ---------------------------------
    def files(self, page_token: str | None = None, limit: int = 50) -> dict[str, Any]:
        """One page of the signed-in user's files, newest first: ``{"files": [...], "next_page_token"}``."""
        params = {"limit": str(int(limit))}
        if page_token:
            params["page_token"] = page_token
        _, body = self._call("GET", self._url("files"), params=params)
        return body if isinstance(body, dict) else {"files": [], "next_page_token": None}

    def all_files(self) -> Iterator[dict[str, Any]]:
        """Every file of the signed-in user, newest first, page after page."""
        token: str | None = None
        while True:
            page = self.files(token, limit=200)
            yield from page.get("files") or []
            token = page.get("next_page_token")
            if not token:
                return

    def download_url(self, upload_id: str) -> dict[str, Any]:
        """A short-lived signed URL for one of the user's files: ``{"url", "expires_at", "filename"}``."""
        from urllib.parse import quote

        _, body = self._call("GET", self._url(f"files/{quote(upload_id, safe='')}/url"))
        if not (isinstance(body, dict) and body.get("url")):
            raise UploadError("the signature function gave no download URL", kind=UNAVAILABLE, source="signature")
        return body

    def download(self, upload_id: str, dest: str | os.PathLike[str]) -> str:
        """Save one of the user's files to ``dest`` (a folder: under the file's own name). Returns the path."""
        signed = self.download_url(upload_id)
        target = os.fspath(dest)
        if os.path.isdir(target):
            name = os.path.basename(str(signed.get("filename") or upload_id)) or upload_id
            target = os.path.join(target, name)
        r = self.session.get(signed["url"], stream=True, timeout=self.timeout)
        if r.status_code != 200:
            code, message = _oss_error(r.text)
            raise UploadError(message or f"the storage answered {r.status_code}", kind=REFUSED, code=code,
                              status=r.status_code, source="oss")
        partial = target + ".part"
        with open(partial, "wb") as f:
            for chunk in r.iter_content(1 << 20):
                f.write(chunk)
        os.replace(partial, target)  # never a half-written file under the real name
        return target

    def delete(self, upload_id: str) -> dict[str, Any]:
        """Delete one of the user's files (the object and its record state)."""
        from urllib.parse import quote

        _, body = self._call("DELETE", self._url(f"files/{quote(upload_id, safe='')}"))
        return body if isinstance(body, dict) else {"deleted": True, "upload_id": upload_id}

    # --- uploads -----------------------------------------------------------------------------------
    def upload(self, file: str | os.PathLike[str] | IO[bytes] | bytes, *, content_type: str | None = None,
               progress: ProgressCallback | None = None, size: int | None = None, filename: str | None = None,
               multipart: bool | None = None, resume: bool = False,
               state_dir: str | os.PathLike[str] | None = None) -> UploadResult:
        """Upload one file; returns :class:`UploadResult` or raises :class:`UploadError`.

        ``file``: a path, a binary file object (read from its position; ``size`` bytes, default to its
        end) or bytes. ``filename``: the name given to the service (default: the path's or the file
        object's base name). ``multipart``: None decides by size, True/False forces. ``resume``: a path's
        multipart upload goes on from its state file (only the parts OSS does not hold are sent)."""
        if isinstance(file, str) or isinstance(file, os.PathLike):
            path = os.fspath(file)
            with open(path, "rb") as f:
                return self._upload_file(f, os.fstat(f.fileno()).st_size if size is None else int(size),
                                         filename or os.path.basename(path), path, content_type, progress,
                                         multipart, resume, state_dir)
        if isinstance(file, (bytes, bytearray, memoryview)):
            data = io.BytesIO(bytes(file))
            return self._upload_file(data, len(data.getbuffer()) if size is None else int(size),
                                     filename or "upload.bin", "", content_type, progress, multipart, False, None)
        if isinstance(file, io.TextIOBase) or not callable(getattr(file, "read", None)):
            raise TypeError("upload() takes a path, bytes or a binary file object (open the file with 'rb'), "
                            f"not {type(file).__name__}")
        if size is None:
            start = file.tell()
            size = file.seek(0, io.SEEK_END) - start
            file.seek(start)
        name = filename or os.path.basename(str(getattr(file, "name", "") or "")) or "upload.bin"
        return self._upload_file(file, int(size), name, "", content_type, progress, multipart, False, None)

    def _upload_file(self, f: IO[bytes], size: int, name: str, path: str, content_type: str | None,
                     progress: ProgressCallback | None, multipart: bool | None, resume: bool,
                     state_dir: str | os.PathLike[str] | None) -> UploadResult:
        if isinstance(f.read(0), str):
            raise TypeError("the file is open in text mode: open it with 'rb'")
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        if multipart if multipart is not None else self.uses_multipart(size):
            state = state_file(path, state_dir) if path else None
            return self._upload_multipart(f, size, name, path, content_type, progress, resume, state)
        return self._upload_form(f, size, name, path, content_type, progress)

    def _declared_crc(self, f: IO[bytes], size: int) -> int | None:
        """The CRC-64 of the ``size`` bytes from ``f``'s position, which is left where it was."""
        if not self.checksums or not f.seekable():
            return None
        start = f.tell()
        try:
            return file_crc64(_Source(f, start), size)
        finally:
            f.seek(start)

    def _upload_form(self, f: IO[bytes], size: int, name: str, path: str, content_type: str,
                     progress: ProgressCallback | None) -> UploadResult:
        started = time.monotonic()
        crc = self._declared_crc(f, size)
        form = self.form(name, size, content_type, crc)
        errors = self._network_errors()
        attempts, refreshed = 0, False
        body = MultipartBody(form["field_list"], name, f, size, content_type, progress)
        while True:
            attempts += 1
            body.rewind()
            try:
                r = self.session.post(form["host"], data=_InChunks(body), timeout=self.timeout,
                                      headers={"Content-Type": body.content_type})
            except errors as exc:
                if attempts > self.retries:
                    raise UploadError(f"the upload to {form['host']} failed {attempts} times; last: "
                                      f"{exc.__class__.__name__}", kind=NETWORK, attempts=attempts) from None
                self._wait(attempts)
                if form.get("expire") and float(form["expire"]) - time.time() < 30:  # about to lapse: a new one
                    form = self.form(name, size, content_type, crc)
                    body = MultipartBody(form["field_list"], name, f, size, content_type, progress)
                continue
            if r.status_code == 403 and not refreshed and "Policy expired" in r.text:
                refreshed = True  # the form lapsed before the file was sent: one fresh form
                form = self.form(name, size, content_type, crc)
                body = MultipartBody(form["field_list"], name, f, size, content_type, progress)
                continue
            break
        seconds = time.monotonic() - started
        result = UploadResult(path=path or name, state=STORED, key=form.get("key") or "",
                              upload_id=form.get("upload_id", ""), size=size, content_type=content_type,
                              attempts=attempts, seconds=seconds)
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
                result.url = str(answer.get("url") or "")
            elif isinstance(answer, dict) and answer.get("code") == "ChecksumMismatch":
                raise _checksum_error(answer, attempts)
            elif form.get("callback"):
                result.state, result.message = UNRECORDED, "the storage answered without the callback's record"
            return result
        code, message = _oss_error(r.text)
        if code == "FileAlreadyExists" and attempts > 1:
            message += " (an earlier attempt, cut off by a network error, may have stored it)"
        kind = UNAVAILABLE if r.status_code >= 500 else REFUSED
        raise UploadError(message or f"the storage answered {r.status_code}", kind=kind, code=code,
                          status=r.status_code, source="oss", attempts=attempts)

    # --- multipart -----------------------------------------------------------------------------------
    def _upload_multipart(self, f: IO[bytes], size: int, name: str, path: str, content_type: str,
                          progress: ProgressCallback | None, resume: bool, state: str | None) -> UploadResult:
        """Create (or, with ``resume``, go on with) a multipart session, send the missing parts, complete."""
        started = time.monotonic()
        stamp = _file_stamp(f, path)
        session, held = None, {}
        kept = _read_state(state) if state else None
        if kept is not None and (not resume or not _same_upload(kept, self.signature_url, path, size, stamp)):
            self._abort_quietly(kept)  # a new upload of the file: the kept one would never complete
            _remove(state)
            kept = None
        if kept is not None:
            listed = self._list_parts(kept)
            if listed is not None:
                session, held = kept, listed
            else:
                _remove(state)  # OSS no longer has it (aborted, expired): start again
        if session is None:
            if state and not os.access(os.path.dirname(state) or ".", os.W_OK):  # before anything is made
                raise PermissionError(errno.EACCES, "the folder is not writable", state)
            body: dict[str, Any] = {"filename": name, "size": size, "content_type": content_type}
            crc = self._declared_crc(f, size)
            if crc is not None:
                body["crc64"] = str(crc)
            if self.folder:
                body["folder"] = self.folder
            if self.naming:
                body["naming"] = self.naming
            _, created = self._call("POST", self._url("multipart"), json=body, ok=(201,))
            if not (isinstance(created, dict) and created.get("uploadId")):
                raise UploadError("the signature function did not start the upload", kind=UNAVAILABLE,
                                  source="signature")
            session = {k: created.get(k) for k in ("uploadId", "key", "upload_id", "part_size", "part_count",
                                                     "concurrency", "url_lifetime")}
            session.update(signature_url=self.signature_url, path=os.path.abspath(path) if path else "",
                           size=size, stamp=stamp, content_type=content_type, created_at=time.time())
            if state:
                _write_state(state, session)
        resumed, already = bool(held) or kept is not None, len(held)
        count, part_size = int(session["part_count"]), int(session["part_size"])
        sent: list[int] = []
        if session.get("completed") is not True:
            self._send_parts(f, session, held, sent, progress)
        try:
            answer_status, answer = self._complete(session, held)
        except UploadError as exc:
            if exc.status == 400 and state:  # the service refused the parts and aborted the upload
                _remove(state)
            raise
        if state:
            _remove(state)
        result = UploadResult(path=path or name, state=STORED, key=str(session["key"]),
                              upload_id=str(session["upload_id"]), size=size, content_type=content_type,
                              seconds=time.monotonic() - started)
        result.extra["multipart"] = {"uploadId": session["uploadId"], "part_size": part_size, "part_count": count,
                                     "parts_held": already, "parts_sent": len(sent), "resumed": resumed}
        if answer_status == 203:
            result.state = UNRECORDED
            result.message = str(answer.get("message") or "the callback failed") if isinstance(answer, dict) \
                else "the callback failed"
            result.url = str(answer.get("location") or "") if isinstance(answer, dict) else ""
            return result
        if isinstance(answer, dict):
            if answer.get("code") == "ChecksumMismatch":
                raise _checksum_error(answer, 1)
            result.url = str(answer.get("url") or answer.get("location") or "")
            if answer.get("ok") and answer.get("record_id"):
                result.state, result.record = DONE, answer
                result.key = str(answer.get("key") or result.key)
            elif answer.get("recorded") is False and answer.get("ok"):
                result.state = STORED  # the service has no callback: nothing is recorded
            else:
                result.state, result.message = UNRECORDED, str(answer.get("message") or "no record came back")
        return result

    def _route(self, session: Mapping[str, Any], tail: str = "") -> tuple[str, dict[str, str]]:
        from urllib.parse import quote

        return (self._url(f"multipart/{quote(str(session['uploadId']), safe='')}{tail}"),
                {"key": str(session["key"]), "upload_id": str(session["upload_id"])})

    def _list_parts(self, session: dict[str, Any]) -> dict[int, str] | None:
        """``{part number: ETag}`` of the parts OSS holds, {} plus ``completed`` when it was completed before,
        None when the upload cannot go on (aborted, unknown, someone else's)."""
        url, params = self._route(session)
        try:
            _, parts = self._call("GET", url, params=params)
        except UploadError as exc:
            if exc.code == "UploadCompleted":
                session["completed"] = True
                return {}
            if exc.status == 404 or exc.code in STALE_CODES:
                return None
            raise
        size = int(session["size"])
        part_size, count = int(session["part_size"]), int(session["part_count"])
        held: dict[int, str] = {}
        for part in parts if isinstance(parts, list) else []:
            n = int(part.get("PartNumber", 0))
            want = part_size if n < count else size - (count - 1) * part_size
            if 1 <= n <= count and int(part.get("Size", -1)) == want:
                held[n] = str(part.get("ETag", ""))
        return held

    def _send_parts(self, f: IO[bytes], session: Mapping[str, Any], held: dict[int, str], sent: list[int],
                    progress: ProgressCallback | None) -> None:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        size, part_size, count = int(session["size"]), int(session["part_size"]), int(session["part_count"])
        source = _Source(f, f.tell())
        queue = deque(n for n in range(1, count + 1) if n not in held)
        width = max(1, min(self.part_parallel or int(session.get("concurrency") or 4), len(queue) or 1))
        lifetime = float(session.get("url_lifetime") or 300)
        margin = min(30.0, lifetime / 4)  # OSS checks the expiry when the PUT starts
        urls: dict[int, tuple[str, float, dict[str, str]]] = {}
        lock, sign_lock, ready = threading.Lock(), threading.Lock(), threading.Condition()
        order = list(queue)  # the parts to send, in the order the signer signs them
        issued: set[int] = set()  # parts the signer has signed (or tried to)
        taken, signer_done = [0], [False]
        signing_failed: list[BaseException] = []
        done_bytes = [sum(self._length(size, part_size, count, n) for n in held)]
        failure: list[UploadError] = []

        def report(delta: int) -> None:
            with lock:
                done_bytes[0] += delta
                now = done_bytes[0]
            if progress is not None:
                progress(now, size)

        if progress is not None:
            progress(done_bytes[0], size)

        def sign(batch: list[int]) -> None:
            """Sign ``batch``'s URLs (with each part's MD5 when asked) into ``urls``; wakes the waiting workers."""
            url, params = self._route(session, "/parts")
            query = dict(params, partNumbers=",".join(map(str, batch)))
            if self.part_md5:
                query["md5"] = ",".join(
                    part_md5(source, (m - 1) * part_size, self._length(size, part_size, count, m)) for m in batch)
            _, signed = self._call("GET", url, params=query)
            until = time.monotonic() + lifetime - margin
            headers = (signed or {}).get("headers") or {}
            with ready:
                for k, v in (signed or {}).get("presignedUrls", {}).items():
                    # the headers the service signed into this part's URL (none from a service before issue 24)
                    urls[int(k)] = (str(v), until, dict(headers.get(k) or {}))
                issued.update(batch)
                ready.notify_all()

        def signer() -> None:
            """Signs ahead of the senders (1 to 2 batches of 2 × width parts), so hashing the next parts' MD5
            overlaps with sending these: signed on demand, every batch stalled all the streams."""
            try:
                at = 0
                while at < len(order):
                    with ready:
                        ready.wait_for(lambda: failure or at - taken[0] < 2 * width)
                        if failure:
                            return
                    batch = order[at:at + (width if at == 0 else min(99, 2 * width))]
                    sign(batch)
                    at += len(batch)
            except UploadError as exc:
                signing_failed.append(exc)
            except BaseException as exc:  # an unreadable file: the workers raise it, none waits forever
                signing_failed.append(exc)
            finally:
                with ready:
                    signer_done[0] = True
                    ready.notify_all()

        def url_for(n: int) -> tuple[str, dict[str, str]]:
            with ready:
                ready.wait_for(lambda: n in issued or signer_done[0])
                cached = urls.get(n)
                if cached and cached[1] > time.monotonic():
                    return cached[0], cached[2]
                if n not in issued and signing_failed:
                    raise signing_failed[0]
            with sign_lock:  # expired, refused (403) or never signed: this part alone, now
                cached = urls.get(n)
                if not (cached and cached[1] > time.monotonic()):
                    sign([n])
                if n not in urls:
                    raise UploadError(f"the signature function did not sign part {n}", kind=UNAVAILABLE,
                                      source="signature")
                return urls[n][0], urls[n][2]

        def worker() -> None:
            while not failure:
                with lock:
                    if not queue:
                        return
                    n = queue.popleft()
                with ready:
                    taken[0] += 1
                    ready.notify_all()
                try:
                    etag = self._put_part(source, session, n, url_for, urls, report)
                except UploadError as exc:
                    failure.append(exc)
                    return
                with lock:
                    held[n] = etag
                    sent.append(n)

        ahead = threading.Thread(target=signer, name="ossdirect-part-signer", daemon=True)
        ahead.start()
        try:
            with ThreadPoolExecutor(max_workers=width) as pool:
                for future in [pool.submit(worker) for _ in range(width)]:
                    future.result()
        finally:
            if not failure and queue:  # a worker raised: stop the signer
                failure.append(UploadError("stopped", kind=UNAVAILABLE))
            with ready:
                ready.notify_all()
            ahead.join()
        if failure:
            raise failure[0]

    @staticmethod
    def _length(size: int, part_size: int, count: int, n: int) -> int:
        return part_size if n < count else size - (count - 1) * part_size

    def _put_part(self, source: _Source, session: Mapping[str, Any], n: int,
                  url_for: Callable[[int], tuple[str, dict[str, str]]],
                  urls: dict[int, tuple[str, float, dict[str, str]]], report: Callable[[int], None]) -> str:
        size, part_size, count = int(session["size"]), int(session["part_size"]), int(session["part_count"])
        length = self._length(size, part_size, count, n)
        errors = self._network_errors()
        attempts, resigned = 0, False
        while True:
            attempts += 1
            url, headers = url_for(n)
            body = _PartBody(source, (n - 1) * part_size, length, report)
            try:
                r = self.session.put(url, data=_InChunks(body), headers=headers, timeout=self.timeout)
            except errors as exc:
                report(-body.pos)
                if attempts > self.retries:
                    raise UploadError(f"part {n} could not be sent after {attempts} attempts; last: "
                                      f"{exc.__class__.__name__}", kind=NETWORK, attempts=attempts) from None
                self._wait(attempts)
                continue
            if r.status_code == 200 and r.headers.get("ETag"):
                stored = r.headers.get("x-oss-hash-crc64ecma")
                if body.crc is None or not stored or stored.strip() == str(body.crc):
                    return str(r.headers["ETag"])
                # the part arrived changed: send it again (the new PUT replaces it), like a network error
                report(-body.pos)
                if attempts > self.retries:
                    raise UploadError(f"part {n} arrived changed {attempts} times (CRC-64 {body.crc} read, "
                                      f"{stored.strip()} stored): check the network path", kind=NETWORK,
                                      code="ChecksumMismatch", attempts=attempts)
                self._wait(attempts)
                continue
            report(-body.pos)
            urls.pop(n, None)
            if r.status_code == 403 and not resigned:  # the URL expired on the way: sign it again, once
                resigned, attempts = True, attempts - 1
                continue
            code, message = _oss_error(r.text)
            # InvalidDigest: the part arrived changed and OSS refused it (its URL signs the MD5): send it again
            if (r.status_code >= 500 or r.status_code in (408, 429) or code == "InvalidDigest") \
                    and attempts <= self.retries:
                self._wait(attempts)
                continue
            kind = UNAVAILABLE if r.status_code >= 500 or r.status_code == 429 else REFUSED
            raise UploadError(message or f"the storage answered {r.status_code} to part {n}", kind=kind,
                              code=code, status=r.status_code, source="oss", attempts=attempts)

    def _complete(self, session: Mapping[str, Any], held: Mapping[int, str]) -> tuple[int, Any]:
        url, params = self._route(session, "/complete")
        parts = [{"PartNumber": n, "ETag": held[n]} for n in sorted(held)]
        if session.get("completed") is True:
            parts = [{"PartNumber": 1, "ETag": "completed"}]  # the service answers the record again
        return self._call("POST", url, params=params, json={"parts": parts}, ok=(200, 203))

    def abort(self, session: Mapping[str, Any]) -> None:
        """Abort a multipart session (a state file's contents): OSS drops its parts."""
        url, params = self._route(session)
        self._call("DELETE", url, params=params)

    def _abort_quietly(self, session: Mapping[str, Any]) -> None:
        try:
            self.abort(session)
        except (UploadError, KeyError, TypeError):
            pass  # the bucket's lifecycle rule for incomplete uploads is the backstop


STALE_CODES = ("NoSuchUpload", "UploadAborted", "UploadNotYours")  # a kept session that cannot go on


def _file_stamp(f: IO[bytes], path: str) -> list[int]:
    """What says the file is unchanged since a session began: size and modification time (ns)."""
    if not path:
        return []
    st = os.fstat(f.fileno())
    return [st.st_size, st.st_mtime_ns]


def _same_upload(kept: Mapping[str, Any], signature_url: str, path: str, size: int, stamp: list[int]) -> bool:
    return (kept.get("signature_url") == signature_url and kept.get("path") == os.path.abspath(path)
            and kept.get("size") == size and kept.get("stamp") == stamp and bool(kept.get("uploadId")))


def _read_state(state: str) -> dict[str, Any] | None:
    import json

    try:
        with open(state, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_state(state: str, session: Mapping[str, Any]) -> None:
    """Atomically (a kill mid-write leaves the old file or the new one, never half of one)."""
    import json

    tmp = f"{state}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(dict(session), fh)
    os.replace(tmp, state)


def _remove(state: str | None) -> None:
    if state:
        try:
            os.unlink(state)
        except FileNotFoundError:
            pass


def summarize(results: Mapping[str, UploadResult | UploadError]) -> dict[str, int]:
    """Counts per outcome: done, unrecorded, stored, and each error kind."""
    counts: dict[str, int] = {}
    for outcome in results.values():
        key = outcome.state if isinstance(outcome, UploadResult) else outcome.kind
        counts[key] = counts.get(key, 0) + 1
    return counts

