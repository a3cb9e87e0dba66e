"""The ``ossdirect`` command: upload files, explain forms, check configuration, verify callbacks.

    ossdirect upload FILES|FOLDERS|GLOBS... --signature-url URL [--token T] [--folder F] [-r] [--resume] [--json]
    ossdirect explain FORM.json|POLICY
    ossdirect check-config
    ossdirect verify-callback REQUEST
    ossdirect doctor SIGNATURE_URL [--token T] [--origin URL] [--json]
    ossdirect completion bash|zsh

``main(argv)`` is the dispatcher (the console script and ``python -m ossdirect`` both call it).
Needs the ``cli`` extra for ``upload`` (requests, rich); the other commands need only the package.
Never imported by the functions.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import unicodedata
from datetime import datetime, timezone
from typing import IO, Any, Callable, Sequence, cast

# Exit codes (the README lists them; scripts act on them). When files end differently, the first
# that applies in this order is returned: USAGE, AUTH, REFUSED, RETRY_LATER, UNRECORDED.
OK = 0
REFUSED = 1  # upload: the signature function or OSS refused a file; explain: risky policy; verify-callback: invalid
USAGE = 2  # bad arguments, a missing or unreadable file, a bad configuration (check-config)
UNRECORDED = 3  # stored, but the callback did not record it (OSS answered 203)
RETRY_LATER = 4  # network errors after every retry, or the service answered 5xx / 429
AUTH = 5  # sign-in needed or refused (401): get a (new) token

EPILOG_EXIT = """exit codes: 0 all good; 1 refused (or: risky policy / invalid callback); 2 usage or
unreadable input; 3 stored but not recorded; 4 network or service unavailable, try again later;
5 sign-in needed. With several files, the first that applies of 2, 5, 1, 4, 3."""


# --- output: text from outside is escaped -------------------------------------------------------------

# Control and format characters (Unicode Cc, Cf: ESC, OSC, bidi overrides, zero-width ...), line and
# paragraph separators (Zl, Zp) and lone surrogates (Cs: undecodable file names) in a key, a file name, a
# header or a server's message could repaint the terminal or fake a line ("VALID"); they are shown as
# \uXXXX instead. ASCII printables pass through the regex untouched (the fast path).
_MAYBE_UNSAFE = re.compile(r"[^\x20-\x7e]")
_UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))


def _escape_char(ch: str, keep: str) -> str:
    if ch in keep or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return ch
    n = ord(ch)
    if n > 0xFFFF:  # as a JSON-style surrogate pair, so escaped JSON stays valid JSON
        n -= 0x10000
        return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"
    return f"\\u{n:04x}"


def safe_text(value: object, keep: str = "") -> str:
    """``str(value)`` with every control, format and separator character shown as ``\\uXXXX``
    (characters in ``keep`` excepted): the one way the CLI prints text it did not write itself."""
    text = value if isinstance(value, str) else str(value)
    return _MAYBE_UNSAFE.sub(lambda m: _escape_char(m.group(), keep), text)


def _say(stream: IO[str], *lines: object) -> None:
    """Print each line, escaped (a newline inside a value cannot start a line of its own)."""
    for line in lines:
        print(safe_text(line), file=stream)


class _SafeStream:
    """The net under :func:`safe_text`: stdout and stderr as the commands see them (argparse's messages,
    reconcile's JSON lines, anything printed directly) with the same characters escaped, newlines and tabs
    kept. ``raw`` is the real stream (rich's progress bars write their own escapes there)."""

    def __init__(self, raw: IO[str]) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        return self.raw.write(safe_text(text, keep="\n\t"))

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno, ...
        return getattr(self.raw, name)


# --- upload ------------------------------------------------------------------------------------------


def _upload(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    try:
        from . import AUTH as K_AUTH
        from . import NETWORK, UNAVAILABLE, Client, UploadError, UploadResult
    except ImportError as exc:  # pragma: no cover - depends on the environment
        _say(err, f"ossdirect upload needs the cli extra ({exc}): install it with pip install 'ossdirect[cli]'.")
        return USAGE
    problem = _check_signature_url(args.signature_url)
    if problem:
        _say(err, f"ossdirect upload: {problem}")
        return USAGE
    if args.state_dir and not os.path.isdir(args.state_dir):
        _say(err, f"ossdirect upload: the state folder {args.state_dir} does not exist: create it, or drop --state-dir "
                  "to keep the state beside each file.")
        return USAGE
    try:
        targets = _expand(args.files, args.recursive, args.folder)
    except ValueError as exc:
        _say(err, f"ossdirect upload: {exc}")
        return USAGE
    clients: dict[str | None, Client] = {}

    def client_for(folder: str | None) -> Client:
        if folder not in clients:
            clients[folder] = Client(args.signature_url, args.token, folder=folder, naming=args.naming,
                                     retries=args.retries, timeout=args.timeout, part_parallel=args.part_parallel,
                                     part_md5=args.part_md5)
            first = next(iter(clients.values()))
            clients[folder]._limits = first._limits  # one /limits answer per run
        return clients[folder]

    paths: list[str] = [p for p, _ in targets]
    folders = dict(targets)
    sizes = {p: os.path.getsize(p) for p in paths}
    show = args.progress if args.progress is not None else (err.isatty() and not args.json)
    outcomes: dict[str, UploadResult | UploadError] = {}
    started = time.monotonic()

    progress_ctx = _Progress(getattr(err, "raw", err), sizes) if show else None
    from concurrent.futures import ThreadPoolExecutor, as_completed

    signed_out = threading.Event()  # a 401: every other file would get the same answer

    def one(path: str) -> UploadResult | UploadError:
        if signed_out.is_set():
            return UploadError("not tried: the signature function refused the sign-in for another file",
                               kind=K_AUTH, code="NotTried")
        callback = progress_ctx.callback(path) if progress_ctx else None
        try:
            return client_for(folders[path]).upload(path, content_type=args.content_type, progress=callback,
                                                    resume=args.resume, state_dir=args.state_dir)
        except UploadError as exc:
            if exc.kind == K_AUTH:
                signed_out.set()
            return exc
        except OSError as exc:  # the file went away or became unreadable meanwhile, or no room for the state
            if os.path.basename(str(exc.filename or "")).startswith(".ossdirect-"):
                return UploadError(f"cannot write the resume state {exc.filename} ({exc.strerror or exc}); give "
                                   f"--state-dir DIR with a writable folder", kind="unreadable")
            return UploadError(f"cannot read the file ({exc.strerror or exc})", kind="unreadable")
        finally:
            if progress_ctx:
                progress_ctx.finish(path)

    client_for(folders[paths[0]] if paths else None)
    try:
        if progress_ctx:
            progress_ctx.start()
        pool = ThreadPoolExecutor(max_workers=max(1, args.parallel))
        futures = {pool.submit(one, p): p for p in paths}
        for future in as_completed(futures):
            outcomes[futures[future]] = future.result()
        pool.shutdown()
    except KeyboardInterrupt:
        if progress_ctx:
            progress_ctx.stop()
        _say(err, "ossdirect upload: interrupted; run the same command with --resume to go on with the large files "
                  "from the parts already sent.")
        err.flush()
        os._exit(130)  # now: the workers would finish their parts first; the state files are on disk
    finally:
        if progress_ctx:
            progress_ctx.stop()
    elapsed = time.monotonic() - started

    codes = []
    for outcome in outcomes.values():
        if isinstance(outcome, UploadResult):
            codes.append(UNRECORDED if outcome.state == "unrecorded" else OK)
        else:
            codes.append({K_AUTH: AUTH, NETWORK: RETRY_LATER, UNAVAILABLE: RETRY_LATER,
                          "unreadable": USAGE}.get(outcome.kind, REFUSED))
    code = next((c for c in (USAGE, AUTH, REFUSED, RETRY_LATER, UNRECORDED) if c in codes), OK)

    if args.json:
        files = []
        for p in paths:
            o = outcomes[p]
            files.append(o.to_dict() if isinstance(o, UploadResult) else
                         {"path": p, "state": "failed", "size": sizes[p], "error": o.to_dict(), "attempts": o.attempts})
        total = sum(sizes.values())
        json.dump({"ok": code == OK, "exit_code": code, "files": files,
                   "summary": {"files": len(paths), "bytes": total, "seconds": round(elapsed, 3),
                               "bytes_per_second": round(total / elapsed) if elapsed else None,
                               "done": sum(1 for f in files if f["state"] == "done"),
                               "unrecorded": sum(1 for f in files if f["state"] == "unrecorded"),
                               "failed": sum(1 for f in files if f["state"] == "failed")}}, out, indent=2)
        out.write("\n")
        return code
    auth_failed = []
    for p in paths:
        o = outcomes[p]
        if isinstance(o, UploadResult):
            record = o.record or {}
            parts = o.extra.get("multipart")
            how = (f", {parts['part_count']} parts" + (f", {parts['parts_sent']} sent now" if parts["resumed"] else "")
                   if parts else "")
            if o.state == "done":
                _say(out, f"uploaded  {p} -> {o.key} ({_size(o.size)}{how}, record {record.get('record_id', '?')})")
            elif o.state == "unrecorded":
                _say(out, f"stored, NOT recorded  {p} -> {o.key}: {o.message}")
            else:
                _say(out, f"stored    {p} -> {o.key} ({_size(o.size)}{how})")
        elif o.kind == K_AUTH:
            auth_failed.append((p, o))
        else:
            _say(err, f"FAILED    {p}: {_sentence(o, sizes[p], client_for(folders[p]))}")
    if auth_failed:  # one sentence for all: the same answer for every file
        first = next((o for _, o in auth_failed if o.code != "NotTried"), auth_failed[0][1])
        _say(err, f"ossdirect upload: {len(auth_failed)} of {len(paths)} files not uploaded: {_auth_sentence(first)}")
    total = sum(sizes.values())
    good = sum(1 for c in codes if c == OK)
    _say(err if code else out, f"{good} of {len(paths)} files uploaded, {_size(total)} in {elapsed:.1f} s")
    return code


def _files_client(args: argparse.Namespace, err: IO[str]) -> Any:
    problem = _check_signature_url(args.signature_url)
    if problem:
        _say(err, f"ossdirect {args.command}: {problem}")
        return None
    if not args.token:
        _say(err, f"ossdirect {args.command}: your files are listed per signed-in user: pass a token with "
                  "--token TOKEN or set OSSDIRECT_TOKEN.")
        return None
    from . import Client

    return Client(args.signature_url, token=args.token)


def _files_failure(args: argparse.Namespace, err: IO[str], error: Any, what: str = "") -> int:
    if error.kind == "auth":
        _say(err, f"ossdirect {args.command}: {_auth_sentence(error)}")
        return AUTH
    if error.code == "SignInRequired":
        _say(err, f"ossdirect {args.command}: {error.message} (the service keeps no per-user files).")
        return REFUSED
    _say(err, f"ossdirect {args.command}: {what}{_sentence(error, 0, None)}")
    return RETRY_LATER if error.kind in ("network", "unavailable") else REFUSED


def _ls(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from . import UploadError

    client = _files_client(args, err)
    if client is None:
        return USAGE
    try:
        files = list(client.all_files())
    except UploadError as exc:
        return _files_failure(args, err, exc)
    if args.json:
        json.dump({"files": files}, out, indent=2)
        out.write("\n")
        return OK
    for f in files:
        _say(out, f"{f.get('upload_id')}  {_size(int(f.get('size') or 0)):>10}  {f.get('created_at') or '':<27}  "
                  f"{f.get('status') or '':<11} {f.get('filename') or f.get('key')}")
    _say(err, f"{len(files)} files")
    return OK


def _get(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from . import UploadError

    client = _files_client(args, err)
    if client is None:
        return USAGE
    if len(args.upload_ids) > 1 and not os.path.isdir(args.output):
        _say(err, f"ossdirect get: -o {args.output!r} is not a folder: several files need a folder to go into.")
        return USAGE
    code, saved = OK, []
    for upload_id in args.upload_ids:
        try:
            saved.append({"upload_id": upload_id, "path": client.download(upload_id, args.output)})
        except UploadError as exc:
            code = max(code, _files_failure(args, err, exc, f"{upload_id}: "))
        except OSError as exc:
            _say(err, f"ossdirect get: {upload_id}: cannot write {args.output!r} ({exc.strerror}): choose another "
                      "place with -o PATH.")
            code = max(code, USAGE)
    for item in saved:
        _say(out, json.dumps(item) if args.json else f"saved {item['path']}")
    return code


def _rm(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from . import UploadError

    client = _files_client(args, err)
    if client is None:
        return USAGE
    code = OK
    for upload_id in args.upload_ids:
        try:
            answer = client.delete(upload_id)
        except UploadError as exc:
            code = max(code, _files_failure(args, err, exc, f"{upload_id}: "))
            continue
        _say(out, json.dumps(answer) if args.json else f"deleted {answer.get('key') or upload_id}")
    return code


def _check_signature_url(url: str | None) -> str:
    """'' when ``url`` can be a signature function's URL, else the sentence that says what to give."""
    from urllib.parse import urlsplit

    if not url:
        return ("no signature function given: pass --signature-url URL (or set OSSDIRECT_SIGNATURE_URL), "
                "e.g. https://sig.example.com/.")
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        guess = url if "://" in url else "https://" + url
        return f"--signature-url {url!r} is not a full URL: give it with its scheme, e.g. {guess!r}."
    return ""


_STATE_FILE = re.compile(r"^\.ossdirect-.*\.json(\.\d+\.tmp)?$")  # multipart state files: never uploaded


def _expand(names: Sequence[str], recursive: bool, folder: str | None) -> list[tuple[str, str | None]]:
    """``(path, folder)`` for each file to upload, each once, in the order given: files as named, globs
    expanded (also when the shell did not), folders walked with ``recursive`` (their sub-folders become
    folders under ``folder``). ValueError: one sentence on what is missing and what to do."""
    import glob

    found: list[tuple[str, str | None]] = []
    for name in names:
        if os.path.isdir(name):
            if not recursive:
                raise ValueError(f"{name} is a folder: add --recursive to upload the files it holds.")
            base = os.path.normpath(name)
            for root, dirs, files in os.walk(base):
                dirs.sort()
                rel = os.path.relpath(root, base)
                sub = "/".join(p for p in ((folder or "").strip("/"), "" if rel == "." else rel.replace(os.sep, "/"))
                               if p) or None
                found += [(os.path.join(root, f), sub) for f in sorted(files) if not _STATE_FILE.match(f)]
        elif os.path.isfile(name):
            found.append((name, folder))
        elif glob.has_magic(name):
            matches = sorted(p for p in glob.glob(name, recursive=True) if os.path.isfile(p))
            if not matches:
                raise ValueError(f"no file matches {name}: check the pattern (quote it to let ossdirect expand it).")
            found += [(p, folder) for p in matches if not _STATE_FILE.match(os.path.basename(p))]
        elif os.path.exists(name):
            raise ValueError(f"{name} is not a regular file: give files or folders (with --recursive).")
        else:
            raise ValueError(f"no such file: {name}: check the path.")
    unreadable = [p for p, _ in found if not os.access(p, os.R_OK)]
    if unreadable:
        raise ValueError(f"cannot read {unreadable[0]}" + (f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1
                         else "") + ": check its permissions.")
    if not found:
        raise ValueError("no files to upload: the folders given are empty.")
    once: dict[str, tuple[str, str | None]] = {}
    for path, sub in found:
        once.setdefault(path, (path, sub))  # each file once, where it was first named
    return list(once.values())


def _human_bytes(text: str) -> str:
    """'the file is 6442450944 bytes; the limit is 5368709120' -> '... 6.0 GiB; the limit is 5.0 GiB'."""
    return re.sub(r"\b(\d{4,}) bytes\b|(?<=limit is )(\d+)\b|(?<=minimum is )(\d+)\b",
                  lambda m: _size(int(next(g for g in m.groups() if g))), text)


def _sentence(error: Any, size: int, client: Any) -> str:
    """One sentence for a failed file: what happened, in human units, the service's answer, and the fix."""
    where = {"signature": "the signature function", "oss": "the storage"}.get(error.source, "")
    said = f" ({where} answered {error.status} {error.code})".replace(" )", ")") if error.status else ""
    message = _human_bytes(error.message)
    if error.code == "EntityTooLarge":
        limit = (client.limits() or {}).get("max_bytes")
        detail = f"too large: {_size(size)}" + (f"; this service accepts up to {_size(limit)}"
                                                 if isinstance(limit, int) else f" ({message})")
        return f"{detail}{said}; nothing to retry: it needs a higher limit on the service, or a smaller file."
    if error.code == "EntityTooSmall":
        return f"too small: {message}{said}."
    if error.code == "UnsupportedContentType":
        allowed = (client.limits() or {}).get("content_types") or []
        listed = f"; allowed: {', '.join(map(str, allowed))}" if allowed else ""
        return (f"{message}{listed}{said}; if the name's extension misleads, give the type with --content-type "
                f"TYPE.")
    if error.code == "FileAlreadyExists":
        return f"{message}{said}; upload it under another name, or with --naming random."
    if error.kind == "network":
        return (f"{message}; check --signature-url and the network, then run the same command again (add --resume "
                f"to go on with large files).")
    if error.kind == "unavailable":
        later = f" in {error.retry_after:.0f} s" if error.retry_after else " later"
        return f"{message}{said}; the service could not take it now: try again{later} (with --resume for large files)."
    if error.kind == "unreadable":
        return f"{message}." if "--state-dir" in message else f"{message}; check that the file is still there " \
            f"and readable."
    return f"{message}{said}."


def _auth_sentence(error: Any) -> str:
    said = f"the signature function answered 401 {error.code}".rstrip()
    if error.code != "TokenMissing" and error.code != "NotTried":
        return f"{error.message} ({said}): get a new token and pass it with --token TOKEN or OSSDIRECT_TOKEN."
    return (f"this service needs sign-in ({said}: {error.message}): pass a token with --token TOKEN or set "
            f"OSSDIRECT_TOKEN.")


def _size(n: float) -> str:
    """The page's unit convention: bytes below 1 KiB, then KiB, MiB, GiB (1024-based)."""
    if n < 1024:
        return "1 byte" if n == 1 else f"{n:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    return f"{n} bytes"  # pragma: no cover


class _Progress:
    """One bar per file while it uploads, and one overall (rich, on stderr)."""

    def __init__(self, stream: IO[str], sizes: dict[str, int]) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self.sizes = sizes
        self.progress = Progress(TextColumn("{task.description}", justify="left"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(),
                                 console=Console(file=stream), transient=False)
        self.overall = self.progress.add_task(f"all {len(sizes)} files", total=sum(sizes.values()) or 1)
        self.tasks: dict[str, Any] = {}
        self.sent: dict[str, int] = {}

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def callback(self, path: str) -> Callable[[int, int], None]:
        from rich.markup import escape

        name = escape(safe_text(os.path.basename(path))[:40])  # a name is neither markup nor escapes
        task = self.tasks[path] = self.progress.add_task(name, total=self.sizes[path] or 1)
        self.sent[path] = 0

        def update(sent: int, total: int) -> None:
            # the body is a little larger than the file (form fields); scale to the file's size
            done = int(sent * self.sizes[path] / total) if total else 0
            delta = done - self.sent[path]
            self.sent[path] = done
            self.progress.update(task, completed=done)
            self.progress.advance(self.overall, delta)  # negative after a retry rewinds the file

        return update

    def finish(self, path: str) -> None:
        task = self.tasks.pop(path, None)
        if task is not None:
            self.progress.remove_task(task)
            self.progress.advance(self.overall, self.sizes[path] - self.sent.pop(path, 0))


# --- explain -----------------------------------------------------------------------------------------

LONG_EXPIRY_SECONDS = 3600
# The stored headers a form should pin, and what happens when it does not.
_HEADER_NAMES = {"x-oss-object-acl": "ACL", "content-disposition": "Content-Disposition",
                 "x-oss-storage-class": "storage class", "cache-control": "Cache-Control",
                 "content-encoding": "Content-Encoding", "expires": "Expires"}


def _load_source(source: str) -> tuple[Any, str]:
    """(parsed JSON or None, raw text) from a file path, ``-`` (stdin) or the text itself."""
    if source == "-":
        text = sys.stdin.read()
    elif os.path.exists(source):
        with open(source, encoding="utf-8") as f:
            text = f.read()
    else:
        text = source
    text = text.strip()
    try:
        return json.loads(text), text
    except ValueError:
        return None, text


def _b64_json(text: str) -> Any:
    try:
        return json.loads(base64.b64decode(text.strip(), validate=True).decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def _read_policy(source: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(policy, form or None) from a form answer, a policy document or a base64 policy."""
    data, text = _load_source(source)
    form = None
    if isinstance(data, dict) and "policy" in data and isinstance(data["policy"], str):
        form, data = data, _b64_json(data["policy"])
    elif data is None:
        data = _b64_json(text)
    if data is None and not os.path.exists(source) and _looks_like_path(text):
        raise ValueError(f"no such file: {source}: check the path (or give the form's JSON, a policy document, a "
                         f"base64 policy, or - for stdin).")
    if not (isinstance(data, dict) and isinstance(data.get("conditions"), list)):
        raise ValueError("not a signed form (JSON with a base64 policy), a policy document "
                         "({\"expiration\": ..., \"conditions\": [...]}) or a base64 policy")
    return data, form


def _looks_like_path(text: str) -> bool:
    """A single word with a folder separator or a file extension: meant as a file, not as a policy."""
    return bool(text) and not any(c.isspace() for c in text) and (
        os.sep in text or "/" in text or bool(re.search(r"\.[A-Za-z][A-Za-z0-9]{0,5}$", text)))


def _conditions(policy: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(op, field, value) with field lower-case and without ``$``; op: eq, starts-with, in, not-in, range."""
    out: list[tuple[str, str, Any]] = []
    for cond in policy["conditions"]:
        if isinstance(cond, dict):
            out += [("eq", str(k).lower(), v) for k, v in cond.items()]
        elif isinstance(cond, list) and cond and cond[0] == "content-length-range" and len(cond) == 3:
            out.append(("range", "content-length", (cond[1], cond[2])))
        elif isinstance(cond, list) and len(cond) == 3 and isinstance(cond[1], str):
            out.append((str(cond[0]).lower(), cond[1].lstrip("$").lower(), cond[2]))
        else:
            out.append(("unknown", "", cond))
    return out


def _parse_time(value: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if abs(seconds) < 120:
        return f"{seconds} s"
    if abs(seconds) < 7200:
        return f"{seconds // 60} min"
    if abs(seconds) < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def explain_policy(policy: dict[str, Any], form: dict[str, Any] | None = None,
                   now: datetime | None = None) -> dict[str, Any]:
    """What a policy allows, in plain words, and the risks: ``{"allows": [...], "warnings": [...]}``."""
    from ..settings import is_active_content_type

    conds = _conditions(policy)
    allows: list[str] = []
    warnings: list[str] = []

    def on(field: str) -> list[tuple[str, Any]]:
        return [(op, v) for op, f, v in conds if f == field]

    # who signed and for how long
    version = next((v for op, f, v in conds if f == "x-oss-signature-version" and op == "eq"), "")
    credential = next((v for op, f, v in conds if f == "x-oss-credential" and op == "eq"), "")
    sts = any(f == "x-oss-security-token" for _, f, _ in conds)
    if version:
        allows.append(f"signature: {version}" + (f", credential {credential}" if credential else "")
                      + (" (STS token pinned)" if sts else ""))
    elif form and form.get("version") == "v1":
        allows.append("signature: V1 (HMAC-SHA1)" + (" with an STS token" if form.get("security_token") else ""))
    bucket = next((v for op, f, v in conds if f == "bucket"), None)
    allows.append(f"bucket: {bucket}" if bucket else "bucket: not named (any bucket the signer may write to)")

    expires = _parse_time(str(policy.get("expiration", "")), "%Y-%m-%dT%H:%M:%S.%fZ") or \
        _parse_time(str(policy.get("expiration", "")), "%Y-%m-%dT%H:%M:%SZ")
    issued = next((_parse_time(v, "%Y%m%dT%H%M%SZ") for op, f, v in conds if f == "x-oss-date" and op == "eq"), None)
    now = now or datetime.now(timezone.utc)
    if expires is None:
        warnings.append("no readable expiration: OSS refuses such a policy, or it never expires")
    else:
        since = issued or now
        lifetime = (expires - since).total_seconds()
        when = expires.strftime("%Y-%m-%d %H:%M:%S UTC")
        left = (expires - now).total_seconds()
        state = f"expired {_duration(-left)} ago" if left < 0 else f"{_duration(left)} from now"
        allows.append(f"expiry: {when} ({state}; valid for {_duration(lifetime)} after "
                      f"{'signing' if issued else 'now'})")
        if lifetime > LONG_EXPIRY_SECONDS:
            warnings.append(f"long expiry: the form stays valid for {_duration(lifetime)}; anyone holding it can "
                            f"upload until {when} (forms should live minutes)")

    # where
    key = on("key")
    if not key:
        warnings.append("key not pinned: the client may write any key in the bucket")
        allows.append("key: any")
    for op, v in key:
        if op == "eq":
            allows.append(f"key: exactly {v!r}")
        elif op == "starts-with":
            if v in ("", "${filename}"):
                allows.append("key: any key in the bucket")
                warnings.append("prefix-wide key: starts-with '' lets the client write any key in the bucket")
            else:
                allows.append(f"key: any key starting with {v!r}")
                warnings.append(f"prefix-wide key: the client chooses any key under {v!r} (including other "
                                f"uploads' keys, and the names of pages served from there)")
        else:
            allows.append(f"key: {op} {v!r}")

    # how big
    ranges = on("content-length")
    if not ranges:
        warnings.append("no size cap: there is no content-length-range, so the file may be as large as OSS allows "
                        "(5 GB)")
        allows.append("size: any (up to OSS's 5 GB)")
    for _, (lo, hi) in ranges:
        allows.append(f"size: exactly {hi} bytes" if lo == hi else f"size: {lo} to {hi} bytes")

    # what type is stored: x-oss-content-type outranks the file part's Content-Type
    stored, declared = on("x-oss-content-type"), on("content-type")

    def describe(conds_: list[tuple[str, Any]], name: str) -> list[str]:
        lines = []
        for op, v in conds_:
            if op == "eq":
                lines.append(f"{name} exactly {v!r}")
                if isinstance(v, str) and is_active_content_type(v):
                    warnings.append(f"active content: {name} {v!r} is a type a browser runs as a document on the "
                                    f"bucket's origin")
            elif op == "in":
                values = list(v) if isinstance(v, list) else [v]
                lines.append(f"{name} one of {', '.join(map(str, values))}")
                active = [t for t in values if isinstance(t, str) and is_active_content_type(t)]
                if active:
                    warnings.append(f"active content: {name} admits {', '.join(active)} (a browser runs it as a "
                                    f"document on the bucket's origin)")
            elif op == "starts-with":
                lines.append(f"{name} starting with {v!r}")
                warnings.append(f"wildcard type: {name} starts-with {v!r} admits active content (for example "
                                f"{(v or 'text/')}html or {v!r}+',text/html', which a browser renders as HTML)")
            else:
                lines.append(f"{name} {op} {v!r}")
        return lines

    type_lines = describe(stored, "x-oss-content-type") + describe(declared, "Content-Type")
    allows.append("type: " + ("; ".join(type_lines) if type_lines else "any"))
    if not stored and not declared:
        warnings.append("type not pinned: any type may be stored, including text/html and image/svg+xml "
                        "(active content on the bucket's origin)")
    elif not stored:
        warnings.append("stored type not pinned: Content-Type is pinned but x-oss-content-type is not, and it "
                        "outranks Content-Type: the client can store any type, text/html included")

    # stored headers
    for field_name, label in _HEADER_NAMES.items():
        pins = on(field_name)
        exact = [v for op, v in pins if op == "eq"]
        if exact:
            allows.append(f"{label}: {exact[0]!r} (pinned)")
            if field_name == "x-oss-object-acl" and str(exact[0]).lower() == "public-read-write":
                warnings.append("ACL public-read-write: anyone can overwrite or delete the object afterwards")
        else:
            allows.append(f"{label}: chosen by the client" + (f" ({pins[0][0]} {pins[0][1]!r})" if pins else ""))
            if field_name == "x-oss-object-acl":
                warnings.append("ACL not pinned: the client may set x-oss-object-acl (public-read-write lets anyone "
                                "rewrite the object)")
            elif field_name == "content-disposition":
                warnings.append("Content-Disposition not pinned: the client decides whether browsers show the file "
                                "inline or download it, and under which name")
    overwrite = [v for op, v in on("x-oss-forbid-overwrite") if op == "eq"]
    if overwrite and str(overwrite[0]).lower() == "true":
        allows.append("overwrite: forbidden (an existing object is never replaced)")
    else:
        allows.append("overwrite: allowed")
        warnings.append("overwrite not forbidden: x-oss-forbid-overwrite=true is not pinned, so an upload may "
                        "replace an existing object at its key")
    redirect = on("success_action_redirect")
    if redirect and redirect[0] == ("eq", ""):
        allows.append("redirect after upload: none (pinned empty)")
    elif not redirect:
        allows.append("redirect after upload: the client may add success_action_redirect")
    status = [v for op, v in on("success_action_status") if op == "eq"]
    if status:
        allows.append(f"success status: {status[0]}")

    # after the upload
    callbacks = [v for op, v in on("callback") if op == "eq"]
    if callbacks:
        decoded = _b64_json(str(callbacks[0]))
        if isinstance(decoded, dict):
            allows.append(f"callback (pinned): POST {decoded.get('callbackUrl')}"
                          + (f" (Host {decoded['callbackHost']})" if decoded.get("callbackHost") else "")
                          + f", body {decoded.get('callbackBodyType', 'application/x-www-form-urlencoded')}: "
                          + str(decoded.get("callbackBody", "")))
        else:
            allows.append("callback (pinned): not readable as base64 JSON")
    else:
        sent = bool(form and (form.get("callback") or any(n == "callback" for n, _ in _field_pairs(form))))
        warnings.append("callback not pinned: the client may " + ("drop or replace the form's callback" if sent else
                        "add any callback, or none") + " (the upload may go unrecorded, or a callback of the "
                        "client's choosing runs)")
    meta = [(f, v) for op, f, v in conds if op == "eq" and (f.startswith("x-oss-meta-") or f.startswith("x:"))]
    if meta:
        allows.append("pinned variables and metadata: " + ", ".join(f"{f}={v!r}" for f, v in meta))
    unknown = [v for op, _, v in conds if op == "unknown"]
    if unknown:
        warnings.append(f"conditions this tool does not understand: {json.dumps(unknown)}")
    return {"allows": allows, "warnings": warnings}


def _explain(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    try:
        policy, form = _read_policy(args.source)
    except OSError as exc:
        _say(err, f"ossdirect explain: cannot read {args.source} ({exc.strerror or exc}): check the path.")
        return USAGE
    except ValueError as exc:
        _say(err, f"ossdirect explain: {exc}")
        return USAGE
    report = explain_policy(policy, form)
    if args.json:
        json.dump(dict(report, policy=policy), out, indent=2)
        out.write("\n")
    else:
        _say(out, "This form allows one upload with:")
        for line in report["allows"]:
            _say(out, f"  - {line}")
        if report["warnings"]:
            _say(out, "", f"{len(report['warnings'])} warning(s):")
            for line in report["warnings"]:
                _say(out, f"  ! {line}")
        else:
            _say(out, "", "No warnings: the key, size, type, stored headers, expiry and callback are pinned.")
    return REFUSED if report["warnings"] else OK


# --- check-config ------------------------------------------------------------------------------------

FUNCTIONS = ("signature", "callback", "process")


def check_config(environ: dict[str, str] | None = None, functions: Sequence[str] = FUNCTIONS,
                 envs: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Each function's settings exactly as its cold start reads them (``settings.load_settings``: every
    setting it reads, every rule; the record store is not opened). ``envs``: one environment per function
    (``--env-file``), else ``environ`` for all. ``{"functions": {name: error or None}, "problems":
    {name: [sentence, ...]}, "warnings": [...], "settings": {...}}``; each warning once."""
    from .. import settings as st

    base = dict(st.environ(environ))
    results: dict[str, str | None] = {}
    problems: dict[str, list[str]] = {}
    warnings: list[str] = []
    config = None
    for name in functions:
        env = envs[name] if envs is not None else base
        try:
            loaded = st.load_settings(env, name)
        except st.ConfigError as exc:
            results[name], problems[name], fn_config = str(exc), exc.messages, None
        else:
            results[name], problems[name], fn_config = None, [], loaded.config
            config = config or fn_config
            if name == st.SIGNATURE and fn_config.authorizer:  # imported at the cold start, too
                from ..core.auth import load_authorizer

                try:
                    load_authorizer(fn_config.authorizer)
                except st.ConfigError as exc:
                    results[name], problems[name] = str(exc), exc.messages
            if name == st.SIGNATURE and not fn_config.auth.enabled:
                warnings.append(st.AUTH_NONE_WARNING)
        warnings.extend(st.config_warnings(env, fn_config, name))
    settings: dict[str, Any] = {}
    if config is not None:
        for slot in type(config).__slots__:
            value = getattr(config, slot)
            settings[slot] = list(value) if isinstance(value, tuple) else value if isinstance(
                value, (str, int, bool, type(None))) else repr(value)
    return {"functions": results, "problems": problems, "warnings": list(dict.fromkeys(warnings)),
            "settings": settings}


def deploy_envs(path: str, environ: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Each function's environment as ``s deploy`` makes it from the ``.env`` at ``path`` (an exported
    ``OSSDIRECT_DEPLOY_*`` variable wins over the file, as Serverless Devs does)."""
    from .. import settings as st

    with open(path, encoding="utf-8") as f:
        dotenv = st.read_dotenv(f.read())
    exported = {k: v for k, v in st.environ(environ).items() if k.startswith(st.PREFIX + "DEPLOY_")}
    return st.deploy_environments(dict(dotenv, **exported))


def _client_default(name: str) -> str | None:
    from ..settings import client_default  # the one module that reads OSSDIRECT_* from the environment

    return client_default(name)


def _unset(error: str) -> str:
    """config's "..., got ''" for a variable that is not set at all, said plainly."""
    return error[:-len(", got ''")] + ", and it is not set" if error.endswith(", got ''") else error


def _check_config(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    functions = FUNCTIONS if args.function == "all" else (args.function,)
    envs = None
    if args.env_file:
        try:
            envs = deploy_envs(args.env_file)
        except OSError as exc:
            _say(err, f"ossdirect check-config: cannot read {args.env_file}: {exc.strerror or exc}")
            return USAGE
    report = check_config(None, functions, envs)
    bad = any(report["functions"].values())
    if args.json:
        json.dump(dict(report, ok=not bad), out, indent=2, default=str)
        out.write("\n")
        return USAGE if bad else OK
    by_problem: dict[str, list[str]] = {}  # every problem once, with the functions it stops
    for name, sentences in report["problems"].items():
        if not sentences:
            _say(out, f"{name} function: ok")
        for sentence in sentences:
            by_problem.setdefault(sentence, []).append(name)
    for problem, names in by_problem.items():
        who = (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]) + \
            (" function" if len(names) == 1 else " functions")
        _say(out, f"{who}: INVALID (each would answer 503 ConfigInvalid): {_unset(problem)}.")
    for w in report["warnings"]:
        _say(out, f"warning: {w}")
    if report["settings"]:
        shown_as = f"as s.yaml deploys {args.env_file}" if args.env_file else "as the functions see them"
        _say(out, "", f"effective settings ({shown_as}; the record store is not opened):")
        width = max(len(k) for k in report["settings"])
        for k, v in report["settings"].items():
            shown = ",".join(map(str, v)) if isinstance(v, list) else "" if v is None else v
            _say(out, f"  {k:<{width}}  {shown}")
    return USAGE if bad else OK


# --- verify-callback -----------------------------------------------------------------------------------


class CapturedRequest:
    def __init__(self, method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes,
                 query_params: dict[str, str] | None = None) -> None:
        self.method, self.path, self.raw_query, self.headers, self.body = method, path, raw_query, headers, body
        self.query_params = query_params or {}


def read_captured(data: bytes) -> CapturedRequest:
    """A captured callback: raw HTTP (request line, headers, blank line, body), an FC3 event (JSON), or
    ``{"method", "path", "query", "headers", "body"}`` JSON."""
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        obj = json.loads(stripped.decode("utf-8"))
        if "requestContext" in obj or "rawPath" in obj or "queryParameters" in obj:
            from ..app.http import parse_event

            r = parse_event(obj)
            return CapturedRequest(r.method, r.path, r.raw_query, r.headers, r.body, dict(r.query))
        path, _, query = str(obj.get("path", "/")).partition("?")
        body = obj.get("body", "")
        raw = base64.b64decode(body) if obj.get("isBase64Encoded") else str(body).encode("utf-8")
        return CapturedRequest(str(obj.get("method", "POST")).upper(), path, str(obj.get("query", query)),
                               {str(k).lower(): str(v) for k, v in (obj.get("headers") or {}).items()}, raw)
    sep = b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n"
    head, _, body = data.partition(sep)
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split()
    if len(parts) < 2:
        raise ValueError("the first line is not an HTTP request line (METHOD /path?query HTTP/1.1)")
    target = parts[1]
    if "://" in target:  # absolute form: keep the path
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    path, _, query = target.partition("?")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length and length.isdigit() and int(length) < len(body):
        body = body[:int(length)]
    return CapturedRequest(parts[0].upper(), path, query, headers, body)


def verify_captured(req: CapturedRequest, trusted_prefixes: Sequence[str] = ()) -> dict[str, Any]:
    """``{"valid": bool, "reason": str, "hints": [...], "key_url": str, "body": {...}}``."""
    from urllib.parse import parse_qsl, quote, unquote, urlencode

    from ..oss.callback_auth import CallbackAuthError, KeyCache, verify_callback

    trusted = tuple(trusted_prefixes)
    cache = KeyCache()
    report: dict[str, Any] = {"valid": False, "reason": "", "hints": [], "key_url": "",
                              "path": req.path, "query": req.raw_query}
    key_b64 = req.headers.get("x-oss-pub-key-url", "")
    if key_b64:
        try:
            report["key_url"] = base64.b64decode(key_b64, validate=True).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            report["key_url"] = "(not base64)"
    if req.method != "POST":
        report["hints"].append(f"OSS callbacks are POST requests; this one is {req.method}")

    def attempt(path: str, query: str, body: bytes) -> str | None:
        try:
            verify_callback(req.headers, path, query, body, trusted, cache)
            return None
        except CallbackAuthError as exc:
            return str(exc)

    reason = attempt(req.path, req.raw_query, req.body)
    if reason is None:
        report["valid"], report["reason"] = True, "OSS signed this request: path, query and body are as signed"
    else:
        report["reason"] = reason
        if reason == "public key URL is not trusted":
            report["hints"].append(f"the key URL {report['key_url']!r} is not OSS's (gosspublic.alicdn.com); a local "
                                   f"stack's emulator key needs --trusted-prefix <emulator>/_emulator/")
        elif reason == "signature does not match":
            variants: list[tuple[str, str, str, bytes]] = []
            if not req.raw_query and req.query_params:
                variants.append(("the query string rebuilt from the event's query parameters "
                                 "(FC3 events carry it parsed: keep OSSDIRECT_CALLBACK_URL query-free)",
                                 req.path, urlencode(req.query_params), req.body))
            if req.raw_query:
                variants.append(("the query string dropped (something added it after OSS signed)", req.path, "",
                                 req.body))
            if req.body.endswith(b"\n"):
                variants.append(("the trailing newline of the body removed (the capture added it)", req.path,
                                 req.raw_query, req.body.rstrip(b"\r\n")))
            if b"\r\n" in req.body:
                variants.append(("CRLF line ends in the body turned to LF", req.path, req.raw_query,
                                 req.body.replace(b"\r\n", b"\n")))
            if unquote(req.path) != quote(unquote(req.path), safe="/"):
                variants.append(("the path percent-encoded", quote(unquote(req.path), safe="/"), req.raw_query,
                                 req.body))
            for what, path, query, body in variants:
                if attempt(path, query, body) is None:
                    report["hints"].append(f"it verifies with {what}")
                    break
            else:
                report["hints"].append("the path, query or body differ from what OSS signed (a proxy rewrote the "
                                       "request, the capture is incomplete), or the request was forged")
    fields: dict[str, Any] = {}
    ctype = req.headers.get("content-type", "")
    try:
        if "json" in ctype:
            parsed = json.loads(req.body.decode("utf-8"))
            fields = parsed if isinstance(parsed, dict) else {}
        else:
            fields = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        report["hints"].append("the body is neither form-encoded nor JSON text")
    report["body"] = fields
    if report["valid"] and fields and not fields.get("upload_id"):
        report["hints"].append("valid, but the body has no upload_id: our callback function refuses it (400)")
    return report


def _verify_callback(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    try:
        if args.request == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.request, "rb") as f:
                data = f.read()
        req = read_captured(data)
    except OSError as exc:
        _say(err, f"ossdirect verify-callback: cannot read {args.request} ({exc.strerror or exc}): check the path, "
                  f"or give - to read the request from stdin.")
        return USAGE
    except Exception as exc:  # ValueError, TypeError, ApiError from parse_event
        _say(err, f"ossdirect verify-callback: {args.request} is not a captured request ({exc}): give raw HTTP, an "
                  f"FC3 event, or JSON {{method, path, query, headers, body}}.")
        return USAGE
    report = verify_captured(req, args.trusted_prefix or ())
    if args.json:
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        _say(out, ("VALID: " if report["valid"] else "INVALID: ") + report["reason"])
        _say(out, f"  request: {req.method} {req.path}{'?' + req.raw_query if req.raw_query else ''}")
        if report["key_url"]:
            _say(out, f"  public key URL: {report['key_url']}")
        for hint in report["hints"]:
            _say(out, f"  - {hint}")
        for name in ("upload_id", "bucket", "object", "size", "etag", "mimeType"):
            if name in report["body"]:
                _say(out, f"  {name}: {report['body'][name]}")
    return OK if report["valid"] else REFUSED


# --- completion, reconcile ---------------------------------------------------------------------------


def _doctor(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    problem = _check_signature_url(args.signature_url).replace("--signature-url URL", "SIGNATURE_URL")
    if problem:
        _say(err, problem)
        return USAGE
    try:
        from .doctor import render, run_doctor
    except ImportError as exc:  # pragma: no cover - depends on the environment
        _say(err, f"doctor needs the cli extra (pip install 'ossdirect[cli]'): {exc}")
        return USAGE
    result = run_doctor(args.signature_url, token=args.token, origin=args.origin, wait=args.wait,
                        multipart=args.multipart)
    if args.json:
        out.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    else:
        render(result, lambda line: _say(out, line))
    return OK if result["ok"] else REFUSED


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """A bash (or zsh, through bashcompinit) completion script for the parser's subcommands and options."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = sorted(subparsers.choices)
    cases = []
    for name, sub in sorted(subparsers.choices.items()):
        options = sorted(o for a in sub._actions for o in a.option_strings)
        cases.append(f'        {name}) opts="{" ".join(options)}" ;;')
    script = f"""# ossdirect completion ({shell}); load with: eval "$(ossdirect completion {shell})"
_ossdirect() {{
    local cur cmd opts
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    cmd="${{COMP_WORDS[1]}}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=( $(compgen -W "{' '.join(commands)} --help --version" -- "$cur") )
        return
    fi
    case "$cmd" in
{chr(10).join(cases)}
        *) opts="" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
    else
        COMPREPLY=( $(compgen -f -- "$cur") )
    fi
}}
complete -o filenames -F _ossdirect ossdirect
"""
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script


def _reconcile(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..core.reconcile import main as reconcile_main

    from ..settings import ConfigError
    from ..oss.credentials import CredentialsUnavailable

    try:
        code: int = reconcile_main(list(args.rest))
    except ConfigError as exc:
        _say(err, f"ossdirect reconcile: the configuration is invalid: {_unset(str(exc))}; set the functions' OSSDIRECT_* "
                  f"variables (ossdirect check-config checks them).")
        return USAGE
    except CredentialsUnavailable:
        _say(err, "ossdirect reconcile: no credentials to read the bucket: set ALIBABA_CLOUD_ACCESS_KEY_ID and "
                  "ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN for STS), or run it where a "
                  "role is attached.")
        return USAGE
    except ValueError as exc:  # e.g. a record store that cannot list
        _say(err, f"ossdirect reconcile: {exc}.")
        return USAGE
    return code


# --- the parser ----------------------------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description or epilog; keeps indented lines (examples) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=min(100, shutil.get_terminal_size((100, 24)).columns))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = []
        for para in text.split("\n\n"):
            lines = para.split("\n")
            if any(line.startswith("  ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(textwrap.fill(" ".join(lines), width, initial_indent=indent,
                                                subsequent_indent=indent))
        return "\n\n".join(paragraphs)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="ossdirect", formatter_class=_Formatter,
        description="Direct uploads to Alibaba Cloud OSS through a signature function, and the tools around them.",
        epilog="examples:\n"
               "  ossdirect upload photos/*.jpg --signature-url https://sig.example.com/ --token \"$TOKEN\"\n"
               "  curl -s 'https://sig.example.com/?filename=a.png&size=10&content_type=image/png' > form.json\n"
               "  ossdirect explain form.json\n"
               "  OSSDIRECT_BUCKET=b OSSDIRECT_REGION=cn-hangzhou ossdirect check-config\n"
               "  ossdirect verify-callback captured-request.txt\n"
               "  eval \"$(ossdirect completion bash)\"\n\n"
               "'ossdirect COMMAND --help' tells more.")
    parser.add_argument("--version", action="version", version=f"ossdirect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser(
        "upload", formatter_class=_Formatter, help="upload files through a signature function",
        description="Upload files through a signature function, as the web page does: a signed form per file, "
                    "then a streamed POST to OSS. Files above the service's multipart threshold (GET /limits) or "
                    "5 GiB go in parts through its /multipart routes, several at once; after an interruption, "
                    "the same command with --resume sends only the missing parts. Network errors are retried "
                    "with backoff; refusals are not.",
        epilog="environment: OSSDIRECT_SIGNATURE_URL and OSSDIRECT_TOKEN stand for --signature-url and --token.\n\n"
               + EPILOG_EXIT)
    up.add_argument("files", nargs="+", metavar="FILE", help="files, folders (with --recursive) or glob patterns")
    up.add_argument("--signature-url", metavar="URL", default=_client_default("SIGNATURE_URL"),
                    help="the signature function's URL")
    up.add_argument("--token", metavar="TOKEN", default=_client_default("TOKEN"),
                    help="sign-in token, sent as 'Authorization: Bearer TOKEN' to the signature function")
    up.add_argument("--folder", metavar="PATH", help="sub-folder under the upload prefix (if the service allows)")
    up.add_argument("--naming", choices=("random", "original"), help="key naming (if the service allows)")
    up.add_argument("--content-type", metavar="TYPE", help="content type for every file (default: from the name)")
    up.add_argument("--parallel", "-j", type=int, default=4, metavar="N", help="files uploaded at once (default 4)")
    up.add_argument("--recursive", "-r", action="store_true",
                    help="upload the files under each folder given (sub-folders become --folder sub-folders)")
    up.add_argument("--resume", action="store_true",
                    help="go on with an interrupted large (multipart) upload: only the parts the bucket lacks are sent")
    up.add_argument("--state-dir", metavar="DIR",
                    help="where large uploads keep their resume state (default: .ossdirect-<name>.json beside "
                         "the file)")
    up.add_argument("--part-parallel", type=int, metavar="N",
                    help="parts of one large file sent at once (default: the service's suggestion, 4 or 6)")
    up.add_argument("--no-part-md5", dest="part_md5", action="store_false",
                    help="large files: don't sign each part's Content-MD5 (saves one MD5 pass over the file; a part "
                         "changed on the way is then found only by the CRC-64 after OSS stored it, and sent again)")
    up.add_argument("--retries", type=int, default=4, metavar="N",
                    help="extra attempts after a network error (default 4; backoff 0.5 s, doubling)")
    up.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                    help="network timeout per request (default 60)")
    up.add_argument("--json", action="store_true", help="print one JSON document with every file's outcome")
    up.add_argument("--progress", dest="progress", action="store_true", default=None,
                    help="show progress bars (default: when stderr is a terminal and not --json)")
    up.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress bars")
    up.set_defaults(run=_upload)

    ex = sub.add_parser(
        "explain", formatter_class=_Formatter, help="say in plain words what a signed form allows",
        description="Say what a signed form (or a POST policy) allows — key, size, type, expiry, stored headers, "
                    "callback — and warn about risky policies.",
        epilog="SOURCE: a form as the signature function answers it (JSON), a policy document "
               "({\"expiration\", \"conditions\"}), a base64 policy, a file holding one, or - for stdin.\n\n"
               "exit codes: 0 no warnings; 1 warnings; 2 unreadable input.")
    ex.add_argument("source", metavar="FORM.json|POLICY")
    ex.add_argument("--json", action="store_true", help="print {allows, warnings, policy} as JSON")
    ex.set_defaults(run=_explain)

    cc = sub.add_parser(
        "check-config", formatter_class=_Formatter, help="validate the OSSDIRECT_* environment",
        description="Validate the OSSDIRECT_* environment exactly as the functions do at cold start (every "
                    "setting each function reads and every rule; the record store is not opened), report every "
                    "problem at once, and print the effective settings. --env-file checks a deploy .env instead, "
                    "mapped onto each function the way s.yaml does (OSSDIRECT_DEPLOY_<NAME> -> OSSDIRECT_<NAME>).",
        epilog="exit codes: 0 valid; 2 a function would answer 503 ConfigInvalid.")
    cc.add_argument("--function", choices=(*FUNCTIONS, "all"), default="all",
                    help="which function's cold start to check (default all)")
    cc.add_argument("--json", action="store_true",
                    help="print {functions, problems, warnings, settings, ok} as JSON")
    cc.add_argument("--env-file", metavar="PATH",
                    help="a deploy .env (see .env.example): check what s deploy would give each function")
    cc.set_defaults(run=_check_config)

    vc = sub.add_parser(
        "verify-callback", formatter_class=_Formatter, help="check a captured OSS callback request",
        description="Check that a captured callback request was signed by OSS, and say why not.",
        epilog="REQUEST: raw HTTP (request line, headers, blank line, body), an FC3 event as JSON, or JSON "
               "{method, path, query, headers, body}; - for stdin.\n\n"
               "exit codes: 0 valid; 1 invalid; 2 unreadable.")
    vc.add_argument("request", metavar="REQUEST")
    vc.add_argument("--trusted-prefix", action="append", metavar="URL",
                    help="also trust public keys under this URL prefix (a local emulator's); repeatable")
    vc.add_argument("--json", action="store_true", help="print the verdict as JSON")
    vc.set_defaults(run=_verify_callback)

    co = sub.add_parser("completion", help="print a shell completion script",
                        description="Print a completion script: eval \"$(ossdirect completion bash)\" in ~/.bashrc "
                                    "(zsh: the same with zsh).")
    co.add_argument("shell", choices=("bash", "zsh"))
    co.set_defaults(run=lambda a, out, err: (out.write(completion_script(parser, a.shell)), OK)[1])

    dr = sub.add_parser(
        "doctor", formatter_class=_Formatter, help="one real test upload through a deployment, every hop checked",
        description="Upload a tiny doctor-* test file (and a 2-part multipart file when /limits publishes "
                    "multipart_threshold) through the signature function and check every hop: CORS, form, OSS, "
                    "callback, record, trigger, quarantine/hook state. One line per hop: ok, or FAILED with the "
                    "cause and the fix (docs/doctor.md).",
        epilog="exit codes: 0 every hop ok; 1 a hop failed; 2 usage.")
    dr.add_argument("signature_url", metavar="SIGNATURE_URL", nargs="?",
                    default=_client_default("SIGNATURE_URL"), help="the signature function's URL")
    dr.add_argument("--token", metavar="TOKEN", default=_client_default("TOKEN"),
                    help="sign-in token, sent as 'Authorization: Bearer TOKEN'")
    dr.add_argument("--origin", metavar="URL", help="the site's origin (https://site): check CORS for it")
    dr.add_argument("--wait", type=float, default=20.0, metavar="SECONDS",
                    help="how long to wait for the OSS trigger's processing (default 20)")
    dr.add_argument("--no-multipart", dest="multipart", action="store_false", help="skip the multipart check")
    dr.add_argument("--json", action="store_true", help="print {ok, hops, key, upload_id, first_failed} as JSON")
    dr.set_defaults(run=_doctor)

    for name, helptext, run in (("ls", "list your files (sign-in), newest first", _ls),
                                ("get", "download your files by upload id", _get),
                                ("rm", "delete your files by upload id", _rm)):
        fp = sub.add_parser(name, formatter_class=_Formatter, help=helptext, description=helptext + ".",
                            epilog="environment: OSSDIRECT_SIGNATURE_URL and OSSDIRECT_TOKEN stand for "
                                   "--signature-url and --token. exit codes: 0 ok; 1 refused; 2 usage; "
                                   "4 try later; 5 sign-in needed.")
        if name != "ls":
            fp.add_argument("upload_ids", metavar="UPLOAD_ID", nargs="+", help="as `ossdirect ls` shows it")
        if name == "get":
            fp.add_argument("-o", "--output", metavar="PATH", default=".",
                            help="a folder (default: here; files keep their names) or, for one file, a path")
        fp.add_argument("--signature-url", metavar="URL", default=_client_default("SIGNATURE_URL"),
                        help="the signature function's URL")
        fp.add_argument("--token", metavar="TOKEN", default=_client_default("TOKEN"),
                        help="sign-in token, sent as 'Authorization: Bearer TOKEN'")
        fp.add_argument("--json", action="store_true", help="print the service's answers as JSON")
        fp.set_defaults(run=run)

    rc = sub.add_parser("reconcile", help="compare the bucket's prefix with the records (--fix records the missing)",
                        add_help=False, description="Delegates to python -m ossdirect reconcile.")
    rc.add_argument("rest", nargs=argparse.REMAINDER)
    rc.set_defaults(run=_reconcile)
    return parser


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run one command; returns the exit code (see the README)."""
    real_out, real_err = sys.stdout, sys.stderr
    out = cast(IO[str], _SafeStream(out or sys.stdout))
    err = cast(IO[str], _SafeStream(err or sys.stderr))
    # what argparse and reconcile print straight to sys.stdout / sys.stderr goes through the net too
    sys.stdout, sys.stderr = cast(IO[str], _SafeStream(real_out)), cast(IO[str], _SafeStream(real_err))
    try:
        return _dispatch(argv, out, err)
    finally:
        sys.stdout, sys.stderr = real_out, real_err


def _dispatch(argv: Sequence[str] | None, out: IO[str], err: IO[str]) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["reconcile"]:  # its own parser takes every argument after the command
        return _reconcile(argparse.Namespace(rest=argv[1:]), out, err)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return int(exc.code or 0) if isinstance(exc.code, int) else USAGE
    if not getattr(args, "command", None):
        parser.print_help(err)
        return USAGE
    code: int = args.run(args, out, err)
    return code


def console_main() -> None:
    """The ``ossdirect`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()


def _field_pairs(form: dict[str, Any]) -> list[tuple[str, Any]]:
    """A form's fields as ordered pairs: ``field_list``, or older answers' ``fields`` list, or the object."""
    fields = form.get("field_list") or form.get("fields") or []
    return list(fields.items()) if isinstance(fields, dict) else [tuple(pair) for pair in fields]
