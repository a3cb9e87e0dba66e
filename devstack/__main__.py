"""``make stack`` / ``python -m devstack``: run the whole stack locally until Ctrl-C.

Output: the banner, then one line per request (the emulator's line for requests to OSS, the function's
JSON line for requests to a function and for each OSS trigger event the process function handles,
``auth ...`` for the stand-in sign-in service). ``--verbose`` adds
the details: the bucket setup's requests before the banner, oss2's own log lines, and werkzeug's access
log; ``--quiet`` drops request lines.

``--auth jwt`` requires sign-in: the stack runs a stand-in token issuer (devstack/auth.py) and the
signature function checks its tokens. ``.venv/bin/python -m devstack token alice`` prints a token for alice that
the stack last started with the same ``--data-dir`` accepts (``--expired`` for one it refuses).
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")  # never reach out

from devstack import BUCKET_ACLS, CREDENTIALS_FILE, LocalStack, default_data_dir  # noqa: E402

# Loggers that only repeat or explain what the one line per request already says.
DETAIL_LOGGERS = ("werkzeug", "oss2")  # werkzeug's access log duplicates ours; oss2 logs expected 404s


class _UntilReady(logging.Filter):
    """Hold back INFO lines (the bucket setup's own requests) until the banner is out; warnings pass."""

    def __init__(self):
        super().__init__()
        self.ready = False

    def filter(self, record):
        return self.ready or record.levelno >= logging.WARNING


# The signature function's cold-start warning (sign-in off) is said here, in the banner, instead.
OPEN_NOTE = "\n  sign-in:            off: anyone who reaches the signature function gets forms (--auth jwt turns it on)"


class _LocalChoices(logging.Filter):
    """Drop the signature function's production warning about running without sign-in: the local stack
    runs that way by choice (``--auth jwt`` turns sign-in on), and the banner is the first thing it prints.
    Also drop the process function's own per-object lines: its invocation server logs one line per event
    (with the same facts, and the status), as the HTTP functions do per request."""

    def filter(self, record):
        if record.name != "ossdirect":
            return True
        message = record.getMessage()
        if record.levelno == logging.WARNING and '"warning": "OSSDIRECT_AUTH=none' in message:
            return False
        return getattr(record, "devstack_event", False) or not _is_process_line(message)


def _is_process_line(message):
    if '"process"' not in message or not message.startswith("{"):
        return False
    try:
        entry = json.loads(message)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("fn") == "process" and "config_error" not in entry


def configure_logging(verbose=False, quiet=False):
    """One handler on stderr; returns the gate to open once the banner is printed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    gate = _UntilReady()
    handler.addFilter(_LocalChoices())
    if verbose:
        gate.ready = True
    else:
        handler.addFilter(gate)
        for name in DETAIL_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    return gate


def token_main(argv):
    """``python -m devstack token USER``: print a token signed with the running auth stack's key."""
    from devstack.auth import DEFAULT_TTL, MAX_TTL, token_from_saved

    parser = argparse.ArgumentParser(prog="python -m devstack token",
                                     description="Print a sign-in token (JWT) for a test user of the local stack "
                                                 "started with --auth jwt.")
    parser.add_argument("user", help="the test user (the token's sub), e.g. alice")
    parser.add_argument("--data-dir", default=str(default_data_dir()), help="the stack's --data-dir")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help=f"lifetime in seconds (1..{MAX_TTL})")
    parser.add_argument("--expired", action="store_true", help="a token that expired an hour ago")
    args = parser.parse_args(argv)
    if not args.user.strip():
        parser.error("the user must not be empty")
    if not 1 <= args.ttl <= MAX_TTL:
        parser.error(f"--ttl must be between 1 and {MAX_TTL}")
    try:
        token, _ = token_from_saved(os.path.join(args.data_dir, "auth"), args.user, args.ttl, args.expired)
    except FileNotFoundError:
        print(f"no sign-in key in {args.data_dir}: start the stack first with "
              f"`make stack ARGS=\"--auth jwt\"` (same --data-dir)", file=sys.stderr)
        return 1
    print(token)
    return 0


# The banner's token command, as a new user can paste it in the repository (the venv has the packages).
TOKEN_COMMAND = ".venv/bin/python -m devstack token"

PORT_FLAGS = (("emulator_port", "OSS emulator", "--emulator-port"),
              ("signature_port", "signature function", "--signature-port"),
              ("callback_port", "callback function", "--callback-port"),
              ("process_port", "process function", "--process-port"))


def first_taken_port(args):
    """One sentence for the first port something else already listens on (None when all are free)."""
    import socket

    flags = list(PORT_FLAGS) + ([("token_port", "token issuer", "--token-port")] if args.auth == "jwt" else [])
    for attr, what, flag in flags:
        port = getattr(args, attr)
        if not port:
            continue
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is free
        try:
            probe.bind((args.host, port))
        except OSError:
            return (f"port {port} ({what}) on {args.host} is already in use: stop what runs there, or choose "
                    f"other ports (--emulator-port N moves them all; {flag} moves this one)")
        finally:
            probe.close()
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["token"]:
        return token_main(argv[1:])
    parser = argparse.ArgumentParser(description="Run the OSS emulator, both functions and the web page locally. "
                                                 "(`python -m devstack token USER` prints a sign-in token.)")
    parser.add_argument("--host", default="127.0.0.1")
    # every port but the emulator's defaults to the emulator's + n, so one flag moves them all
    parser.add_argument("--emulator-port", type=int, default=9100, help="default 9100; the others follow it")
    parser.add_argument("--signature-port", type=int, default=None, help="default: emulator port + 1")
    parser.add_argument("--callback-port", type=int, default=None, help="default: emulator port + 2")
    parser.add_argument("--process-port", type=int, default=None,
                        help="the process function's invocation server (the emulator's OSS trigger posts events "
                             "to it); default: emulator port + 4")
    parser.add_argument("--data-dir", default=str(default_data_dir()))
    parser.add_argument("--auth", choices=("none", "jwt"), default="none",
                        help="jwt: require sign-in (a stand-in token issuer on loopback signs test users' tokens)")
    parser.add_argument("--bucket-acl", choices=BUCKET_ACLS, default=None,
                        help="the bucket's ACL; default private with --auth jwt (download through /files), "
                             "public-read without sign-in (the page links each upload). The page's own files "
                             "are public-read either way")
    parser.add_argument("--token-port", type=int, default=None,
                        help="the stand-in token issuer's port (--auth jwt); default: emulator port + 3")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("--quiet", action="store_true", help="no per-request log lines")
    noise.add_argument("--verbose", action="store_true",
                       help="also log the bucket setup, oss2's messages and werkzeug's access log")
    args = parser.parse_args(argv)
    base = args.emulator_port
    for name, offset in (("signature_port", 1), ("callback_port", 2), ("token_port", 3), ("process_port", 4)):
        if getattr(args, name) is None:
            setattr(args, name, base + offset if base else 0)
    taken = first_taken_port(args)
    if taken:
        print(taken, file=sys.stderr)
        return 2
    gate = configure_logging(args.verbose, args.quiet)

    stack = LocalStack(args.data_dir, args.host, args.emulator_port, args.signature_port, args.callback_port,
                       auth=args.auth, token_port=args.token_port, process_port=args.process_port,
                       bucket_acl=args.bucket_acl)
    stack.start()
    sign_in = ""
    if stack.auth:
        data_dir = "" if os.path.abspath(args.data_dir) == str(default_data_dir()) else f" --data-dir {args.data_dir}"
        sign_in = f"""
  token issuer:       {stack.auth.url}  (JWKS {stack.auth.jwks_url})
  test users:         type any name (e.g. alice) in the page's Test user field; uploads go to uploads/<name>/
  token for scripts:  {TOKEN_COMMAND} alice{data_dir}  (or GET {stack.auth.token_url}?user=alice)"""
    print(f"""
ossdirect local stack is running
  upload page:        {stack.page_url}
  signature function: {stack.signature_url}
  callback function:  {stack.callback_url}
  process function:   {stack.process_url}  (OSS trigger: objects created under {stack.trigger_prefix or '/'})
  OSS emulator:       {stack.emulator.url}  (bucket {stack.bucket_url}, {stack.bucket_acl}; SDK keys: {stack.data_dir / CREDENTIALS_FILE})
  records (SQLite):   {stack.records_path}{sign_in or OPEN_NOTE}
Open the upload page in a browser. Ctrl-C stops everything.
""", flush=True)
    gate.ready = True
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
