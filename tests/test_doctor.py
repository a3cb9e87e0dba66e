"""``ossdirect doctor`` against the local stack: a healthy stack passes every hop; each diagnosis is
proved by breaking that hop on purpose (real emulator, real functions, real HTTP on loopback)."""

import io
import json

import pytest

from devstack import LocalStack
from ossdirect.client.cli import main
from ossdirect.client.doctor import callback_url_of, name_matches, probe_without_sni, scheme_note
from ossdirect.app.handlers import SignatureApp

# What the record poll reports of the event path (content_type_detected) and the hook (hook_status): an
# older deployed function without them makes doctor skip the trigger hop (one test takes them away).
SEEN_FIELDS = ("content_type_detected", "hook_status")


def doctor(stack, *extra, origin=True, wait="4"):
    out, err = io.StringIO(), io.StringIO()
    argv = ["doctor", stack.signature_url, "--json", "--wait", wait, *extra]
    if origin:
        argv += ["--origin", stack.page_origin]
    code = main(argv, out=out, err=err)
    result = json.loads(out.getvalue()) if out.getvalue() else None
    return code, result, err.getvalue()


def hop(result, name):
    found = [h for h in result["hops"] if h["hop"] == name]
    assert found, f"no hop {name}: {[h['hop'] for h in result['hops']]}"
    return found[0]


def test_healthy_stack_passes_every_hop(tmp_path):
    with LocalStack(tmp_path / "s") as stack:
        code, result, _ = doctor(stack)
        assert code == 0, result
        assert result["ok"] and result["first_failed"] is None
        names = [h["hop"] for h in result["hops"]]
        assert names == ["1 reachable", "1 cors-get", "1 cors-preflight", "1 limits", "2 form", "3 oss-cors",
                         "3 oss", "4 callback", "5 record", "6 trigger", "7 state", "M multipart", "8 cleanup",
                         "8 cleanup"]
        assert all(h["status"] in ("ok", "note") for h in result["hops"]), result
        assert hop(result, "6 trigger")["message"].endswith("text/plain")
        assert "callback over http" in hop(result, "4 callback")["message"]
        key = result["key"]
        assert key.startswith("uploads/doctor-") and key in hop(result, "8 cleanup")["message"]
        assert "403 SignInRequired" in hop(result, "8 cleanup")["message"]  # no sign-in: no delete route
        assert stack.get_object(key).startswith(b"ossdirect doctor test object")  # a real upload
        records = {r["upload_id"]: r for r in stack.records()}
        assert records[result["upload_id"]]["source"] == "callback"
        mp = [r for r in records.values() if r["source"] == "multipart"]
        assert len(mp) == 1 and mp[0]["status"] == "recorded" and mp[0]["key"].startswith("uploads/doctor-mp-")
        assert "2 parts" in hop(result, "M multipart")["message"]

    # the text output: one line per hop, the last says all is well
    with LocalStack(tmp_path / "t") as stack:
        out = io.StringIO()
        assert main(["doctor", stack.signature_url, "--no-multipart", "--wait", "3"], out=out, err=out) == 0
        lines = out.getvalue().splitlines()
        assert lines[-1] == "all hops ok"
        assert any(line.startswith("1 cors-get") and "skip" in line and "--origin" in line for line in lines)


def test_without_the_record_fields_the_trigger_hop_is_skipped_not_failed(tmp_path, monkeypatch):
    # an older deployed signature function, whose record poll does not report the event path's fields
    monkeypatch.setattr(SignatureApp, "PUBLIC_RECORD_FIELDS",
                        tuple(f for f in SignatureApp.PUBLIC_RECORD_FIELDS if f not in SEEN_FIELDS))
    with LocalStack(tmp_path / "s") as stack:
        code, result, _ = doctor(stack, "--no-multipart")
        assert code == 0
        assert hop(result, "6 trigger")["status"] == "skip"
        assert "content_type_detected" in hop(result, "6 trigger")["message"]


def test_callback_stopped_fails_hop_4_with_osss_reason(tmp_path):
    with LocalStack(tmp_path / "s") as stack:
        stack.stop_callback()
        code, result, _ = doctor(stack, "--no-multipart")
        assert code == 1 and result["first_failed"] == "4 callback"
        message = hop(result, "4 callback")["message"]
        assert "203 CallbackFailed" in message and "callback over http" in message
        assert stack.callback_url in message and "reachable" in message
        # the process function still recorded it from the event: doctor says by which path
        assert hop(result, "5 record")["status"] == "ok"
        assert "event path, not the callback" in hop(result, "5 record")["message"]


def test_process_function_stopped_fails_hop_6(tmp_path):
    with LocalStack(tmp_path / "s") as stack:
        stack.stop_process()
        code, result, _ = doctor(stack, "--no-multipart", wait="2")
        assert code == 1 and result["first_failed"] == "6 trigger"
        assert "trigger is missing or the process function failed" in hop(result, "6 trigger")["message"]


def test_wrong_origin_fails_hop_1_cors_and_the_bucket_preflight(tmp_path):
    with LocalStack(tmp_path / "s") as stack:
        out, err = io.StringIO(), io.StringIO()
        code = main(["doctor", stack.signature_url, "--json", "--no-multipart", "--wait", "2",
                     "--origin", "https://wrong.example"], out=out, err=err)
        result = json.loads(out.getvalue())
        assert code == 1 and result["first_failed"] == "1 cors-get"
        for name in ("1 cors-get", "1 cors-preflight"):
            assert hop(result, name)["status"] == "FAILED"
            assert "add https://wrong.example to OSSDIRECT_ALLOWED_ORIGINS" in hop(result, name)["message"]
        assert hop(result, "3 oss-cors")["status"] == "FAILED"
        assert "make setup" in hop(result, "3 oss-cors")["message"]
        assert hop(result, "3 oss")["status"] == "ok"  # the rest still ran (without the Origin header)


def test_no_token_with_sign_in_fails_hop_2(tmp_path):
    with LocalStack(tmp_path / "s", auth="jwt") as stack:
        code, result, _ = doctor(stack, "--no-multipart")
        assert code == 1 and result["first_failed"] == "2 form"
        assert "401" in hop(result, "2 form")["message"] and "--token" in hop(result, "2 form")["message"]
        # with a token the same stack passes
        code, result, _ = doctor(stack, "--token", stack.token("doc"))
        assert code == 0, result
        # signed in, doctor deletes its own test objects through DELETE /files/<upload_id>
        cleanup = [h for h in result["hops"] if h["hop"] == "8 cleanup"]
        assert len(cleanup) == 2 and all(h["status"] == "ok" and "deleted" in h["message"] for h in cleanup)
        import urllib.error

        with pytest.raises(urllib.error.HTTPError) as gone:
            stack.get_object(result["key"])
        assert gone.value.code == 404
        assert {r["upload_id"]: r for r in stack.records()}[result["upload_id"]]["status"] == "deleted"


def test_misconfigured_signature_function_names_the_servers_sentence(tmp_path):
    with LocalStack(tmp_path / "s", env={"OSSDIRECT_MAX_BYTES": "lots"}) as stack:
        code, result, _ = doctor(stack)
        assert code == 1 and result["first_failed"] == "1 limits"
        assert hop(result, "1 cors-get")["status"] == "skip"
        message = hop(result, "1 limits")["message"]
        assert "503 ConfigInvalid" in message and "OSSDIRECT_MAX_BYTES" in message
        assert "check-config" in message


def test_records_on_a_non_shared_store_fail_hop_5_and_name_tablestore(tmp_path):
    # as on Function Compute with SQLite records: the callback refuses (503 ConfigInvalid) and the
    # signature function's /records answers 503 SharedStoreRequired
    with LocalStack(tmp_path / "s", env={"FC_FUNCTION_NAME": "ossdirect"}) as stack:
        code, result, _ = doctor(stack)
        assert code == 1 and result["first_failed"] == "4 callback"
        assert "answered 503" in hop(result, "4 callback")["message"]
        assert "check-config --function callback" in hop(result, "4 callback")["message"]
        message = hop(result, "5 record")["message"]
        assert "503 SharedStoreRequired" in message and "OSSDIRECT_RECORDS=tablestore://" in message
        assert hop(result, "M multipart")["status"] == "skip"  # /limits publishes no threshold then


def test_wrong_region_fails_hop_3_and_names_both_regions(tmp_path):
    with LocalStack(tmp_path / "s", env={"OSSDIRECT_REGION": "cn-beijing"}) as stack:
        code, result, _ = doctor(stack, "--no-multipart")
        assert code == 1 and result["first_failed"] == "3 oss"
        message = hop(result, "3 oss")["message"]
        assert "signed for cn-beijing" in message and "OSSDIRECT_REGION=cn-hangzhou" in message


def test_clock_skew_is_named(tmp_path):
    with LocalStack(tmp_path / "s", clock_offset=3600) as stack:
        code, result, _ = doctor(stack, "--no-multipart")
        assert code == 1 and result["first_failed"] == "3 oss"
        assert "expired" in hop(result, "3 oss")["message"] and "clock" in hop(result, "3 oss")["message"]


def test_usage_and_unreachable(tmp_path):
    err = io.StringIO()
    assert main(["doctor", "sig.example.com"], out=io.StringIO(), err=err) == 2
    assert "full URL" in err.getvalue()
    out = io.StringIO()
    assert main(["doctor", "http://127.0.0.1:9/", "--json"], out=out, err=io.StringIO()) == 1
    assert json.loads(out.getvalue())["first_failed"] == "1 reachable"


def test_server_text_is_escaped():
    # a signature URL that answers with terminal escapes in its message: printed as \\u001b
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"code": "ConfigInvalid", "message": "bad\x1b[2J\u202eDONE"}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for extra in ([], ["--json"]):
            out = io.StringIO()
            assert main(["doctor", f"http://127.0.0.1:{server.server_port}/", *extra], out=out, err=out) == 1
            assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
            assert "\\u001b" in out.getvalue()
    finally:
        server.shutdown()
        server.server_close()


def test_callback_scheme_notes():
    import base64

    field = base64.b64encode(json.dumps({"callbackUrl": "https://cb.example.com/oss-callback"}).encode()).decode()
    assert callback_url_of({"callback": field}) == "https://cb.example.com/oss-callback"
    assert "SNI" in scheme_note("https://cb.example.com/oss-callback")
    assert "callbackSNI true" in scheme_note("https://cb.example.com/oss-callback", sni=True)
    assert "system domain" in scheme_note("https://cb-fn.cn-hangzhou.fcapp.run/oss-callback")
    assert scheme_note("http://1.2.3.4/cb").startswith("callback over http")


def test_certificate_names_and_a_host_that_speaks_no_tls():
    assert name_matches("cb.example.com", ["other.example", "*.example.com"])
    assert not name_matches("a.b.example.com", ["*.example.com"])  # one label only
    assert not name_matches("cb.example.com", ["example.com"])
    # a loopback server that is not TLS at all: the probe reports the failed handshake, never raises
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    def answer():
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()
    threading.Thread(target=answer, daemon=True).start()
    good, detail = probe_without_sni("127.0.0.1", listener.getsockname()[1], 5)
    listener.close()
    assert not good and "without SNI fails" in detail


def _cert(tmp_path, name, ca_key, ca_cert):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    path = tmp_path / f"{name}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _ca(tmp_path):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor test CA")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, str(path)


def _tls_server(default_pem, by_name):
    """A loopback TLS server that picks its certificate by SNI (``by_name``), else ``default_pem``."""
    import socket
    import ssl
    import threading

    contexts = {}
    for name, pem in by_name.items():
        contexts[name] = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        contexts[name].load_cert_chain(pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(default_pem)
    context.sni_callback = lambda sock, name, ctx: setattr(sock, "context", contexts[name]) if name in contexts \
        else None
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_callback_host_that_needs_sni_is_caught_without_sni(tmp_path):
    ca_key, ca_cert, ca_file = _ca(tmp_path)
    right = _cert(tmp_path, "localhost", ca_key, ca_cert)
    other = _cert(tmp_path, "other.test", ca_key, ca_cert)
    # a shared host: the right certificate only for those who send SNI "localhost"
    shared = _tls_server(other, {"localhost": right})
    # a host that serves its own certificate to everyone
    own = _tls_server(right, {})
    try:
        good, detail = probe_without_sni("localhost", shared.getsockname()[1], 5, cafile=ca_file)
        assert not good and "certificate for other.test" in detail
        good, detail = probe_without_sni("localhost", own.getsockname()[1], 5, cafile=ca_file)
        assert good and "valid for it" in detail
    finally:
        shared.close()
        own.close()


def test_append_only_records_fail_hop_5_with_record_lookup_unsupported(tmp_path):
    with LocalStack(tmp_path / "s", env={"OSSDIRECT_RECORDS": "stdout"}) as stack:
        code, result, _ = doctor(stack, "--no-multipart", wait="1")
        assert code == 1 and result["first_failed"] == "5 record", result
        message = hop(result, "5 record")["message"]
        assert "501 RecordLookupUnsupported" in message and "tablestore://" in message


def test_oss_error_codes_map_to_causes():
    from ossdirect.client.doctor import Doctor

    fields = {"x-oss-credential": "STS.x/20260101/cn-beijing/oss/aliyun_v4_request"}
    host = "https://b.oss-cn-hangzhou.aliyuncs.com"
    fix = Doctor.oss_fix("SignatureDoesNotMatch", "The request signature we calculated does not match", fields, host)
    assert "signed for cn-beijing" in fix and "OSSDIRECT_REGION=cn-hangzhou" in fix
    same = {"x-oss-credential": "STS.x/20260101/cn-hangzhou/oss/aliyun_v4_request"}
    assert "wrong credentials or region" in Doctor.oss_fix("InvalidAccessKeyId", "does not exist", same, host)
    assert "oss:PutObject" in Doctor.oss_fix("AccessDenied", "You have no right to access this object.", same, host)
    assert "policy refused" in Doctor.oss_fix("AccessDenied", "Invalid according to Policy: Policy Condition "
                                              "failed: [\"eq\", \"$key\", \"a\"]", same, host)
    assert "clock" in Doctor.oss_fix("RequestTimeTooSkewed", "The difference ... is too large.", same, host)
