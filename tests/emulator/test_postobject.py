"""PostObject: what real OSS accepts the emulator accepts; what it rejects, with the same status and Code."""

import base64
import hashlib
import json
import re
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests
from conftest import AK, BUCKET, REGION, SK, STS_AK, STS_SK, STS_TOKEN, make_form, multipart, oss2_bucket


def post(emulator, fields, data=b"hello", after=(), file_type="text/plain", filename="a.txt", url=None, headers=None):
    body, ctype = multipart(fields, data, filename, file_type, after)
    h = {"Content-Type": ctype}
    h.update(headers or {})
    return requests.post(url or emulator.bucket_url + "/", data=body, headers=h, timeout=10, allow_redirects=False)


def code(response):
    match = re.search(r"<Code>([^<]*)</Code>", response.text)
    return match.group(1) if match else None


def stored(emulator, key):
    r = requests.get(f"{emulator.bucket_url}/{key}", timeout=10)
    return r.content if r.status_code == 200 else None


def test_default_success_is_204_with_oss_headers(emulator):
    r = post(emulator, make_form())
    assert r.status_code == 204 and r.content == b""
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(b"hello").hexdigest().upper()
    assert re.fullmatch(r"[0-9A-F]{24}", r.headers["x-oss-request-id"])
    assert r.headers["Content-MD5"] == base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    assert r.headers["x-oss-hash-crc64ecma"].isdigit()
    assert stored(emulator, "uploads/a.txt") == b"hello"


def test_crc64_matches_the_documented_vector(emulator):
    data = b"Anything you're good at contributes to happiness."
    r = post(emulator, make_form(key="uploads/crc.txt"), data)
    assert r.headers["x-oss-hash-crc64ecma"] == "108247482078852440"


def test_success_action_status_200_and_201(emulator):
    r = post(emulator, make_form(key="uploads/s200", extra_fields=[("success_action_status", "200")]))
    assert r.status_code == 200 and r.content == b""
    r = post(emulator, make_form(key="uploads/s201", extra_fields=[("success_action_status", "201")]))
    assert r.status_code == 201
    assert "<PostResponse><Bucket>emu-bucket</Bucket>" in r.text
    assert f"<ETag>{hashlib.md5(b'hello').hexdigest().upper()}</ETag>" in r.text and "<Key>uploads/s201</Key>" in r.text


def test_success_action_redirect(emulator):
    r = post(emulator, make_form(key="uploads/r", extra_fields=[("success_action_redirect", "https://app.example.com/done")]))
    assert r.status_code == 303
    assert r.headers["Location"].startswith("https://app.example.com/done?bucket=emu-bucket&key=uploads%2Fr")


def test_v1_and_sts_accepted(emulator):
    assert post(emulator, make_form(key="uploads/v1", version="v1")).status_code == 204
    assert post(emulator, make_form(key="uploads/sts", ak=STS_AK, sk=STS_SK, token=STS_TOKEN)).status_code == 204
    assert post(emulator, make_form(key="uploads/v1sts", ak=STS_AK, sk=STS_SK, token=STS_TOKEN,
                                    version="v1")).status_code == 204


def test_fields_not_in_policy_are_allowed_and_stored(emulator):
    extra = [("Cache-Control", "max-age=60"), ("Content-Disposition", "inline"), ("x-oss-meta-team", "blue")]
    assert post(emulator, make_form(key="uploads/meta.txt", extra_fields=extra)).status_code == 204
    r = requests.get(f"{emulator.bucket_url}/uploads/meta.txt", timeout=10)
    assert r.headers["Cache-Control"] == "max-age=60" and r.headers["Content-Disposition"] == "inline"
    assert r.headers["x-oss-meta-team"] == "blue" and r.headers["Content-Type"] == "text/plain"


def test_content_type_priority(emulator):
    # x-oss-content-type > the file part's type > the Content-Type field
    post(emulator, make_form(key="uploads/t1", extra_fields=[("Content-Type", "text/csv")]), file_type="image/png")
    assert requests.head(f"{emulator.bucket_url}/uploads/t1", timeout=5).headers["Content-Type"] == "image/png"
    post(emulator, make_form(key="uploads/t2", extra_fields=[("x-oss-content-type", "application/pdf")]),
         file_type="image/png")
    assert requests.head(f"{emulator.bucket_url}/uploads/t2", timeout=5).headers["Content-Type"] == "application/pdf"


def test_field_names_case_insensitive_and_both_expiration_forms(emulator):
    fields = make_form(key="uploads/ci", conditions=[["in", "$content-type", ["text/plain"]]],
                       extra_fields=[("Content-Type", "text/plain")])
    assert post(emulator, fields).status_code == 204
    # expiration without milliseconds
    now = time.time()
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 600))
    policy = base64.b64encode(json.dumps({"expiration": exp, "conditions": [{"bucket": BUCKET}]}).encode()).decode()
    import hmac as _h

    sig = base64.b64encode(_h.new(SK.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    fields = [("key", "uploads/noms"), ("OSSAccessKeyId", AK), ("policy", policy), ("Signature", sig)]
    assert post(emulator, fields).status_code == 204


def test_virtual_host_style(emulator):
    port = emulator.port
    # Host header names the bucket; the connection still goes to 127.0.0.1
    r = post(emulator, make_form(key="uploads/vh"), url=f"http://127.0.0.1:{port}/",
             headers={"Host": f"{BUCKET}.oss-{REGION}.localhost:{port}"})
    assert r.status_code == 204
    assert stored(emulator, "uploads/vh") == b"hello"


def _existing(emulator):
    post(emulator, make_form(key="uploads/exists.txt"))
    return make_form(key="uploads/exists.txt", extra_fields=[("x-oss-forbid-overwrite", "true")])


def _tampered_policy():
    fields = make_form(key="uploads/x", conditions=[["starts-with", "$key", "uploads/"]])
    out = []
    for name, value in fields:
        if name == "policy":
            doc = json.loads(base64.b64decode(value))
            doc["conditions"][-1][2] = ""
            value = base64.b64encode(json.dumps(doc).encode()).decode()
        out.append((name, value))
    return out


REJECTIONS = [
    # name, fields builder, data, after-file fields, status, code, message fragment
    ("expired", lambda e: make_form(now=time.time() - 7200, expires_in=600), b"x", (), 403, "AccessDenied",
     "Policy expired"),
    ("tampered policy", lambda e: _tampered_policy(), b"x", (), 403, "SignatureDoesNotMatch", None),
    ("wrong secret", lambda e: make_form(sk="not-the-secret"), b"x", (), 403, "SignatureDoesNotMatch", None),
    ("wrong secret v1", lambda e: make_form(sk="nope", version="v1"), b"x", (), 403, "SignatureDoesNotMatch", None),
    ("unknown key id", lambda e: make_form(ak="AKIDUNKNOWN"), b"x", (), 403, "InvalidAccessKeyId", None),
    ("wrong token", lambda e: make_form(ak=STS_AK, sk=STS_SK, token="other-token"), b"x", (), 403,
     "InvalidAccessKeyId", None),
    ("missing token", lambda e: make_form(ak=STS_AK, sk=STS_SK), b"x", (), 403, "InvalidAccessKeyId", None),
    ("key outside prefix", lambda e: make_form(key="private/a.txt", conditions=[["starts-with", "$key", "uploads/"]]),
     b"x", (), 403, "AccessDenied", 'Policy Condition failed: ["starts-with", "$key", "uploads/"]'),
    ("too large", lambda e: make_form(conditions=[["content-length-range", 1, 4]]), b"hello", (), 400,
     "EntityTooLarge", None),
    ("too small", lambda e: make_form(conditions=[["content-length-range", 10, 20]]), b"hello", (), 400,
     "EntityTooSmall", None),
    ("content type not allowed", lambda e: make_form(conditions=[["in", "$content-type", ["image/png"]]],
                                                     extra_fields=[("Content-Type", "text/html")]),
     b"x", (), 403, "AccessDenied", 'Policy Condition failed: ["in", "$content-type", ["image/png"]]'),
    ("condition on absent field", lambda e: make_form(conditions=[["eq", "$x:upload_id", "u1"]]), b"x", (), 403,
     "AccessDenied", '["eq", "$x:upload_id", "u1"]'),
    ("map-form condition printed normalised", lambda e: make_form(conditions=[{"x-oss-forbid-overwrite": "true"}]),
     b"x", (), 403, "AccessDenied", '["eq", "$x-oss-forbid-overwrite", "true"]'),
    ("bucket condition", lambda e: [(n, v) for n, v in make_form()], b"x", (), None, None, None),
    ("forbid overwrite on existing key", _existing, b"x", (), 409, "FileAlreadyExists", None),
    ("missing file", lambda e: make_form(), None, (), 400, "MalformedPOSTRequest", None),
    ("file not last (key after file)", lambda e: [f for f in make_form() if f[0] != "key"], b"x",
     (("key", "uploads/late.txt"),), 400, "InvalidArgument", "'key'"),
    ("field over 8 KB", lambda e: make_form(extra_fields=[("x-oss-meta-big", "a" * 9000)]), b"x", (), 400,
     "FieldItemTooLong", None),
    ("x-oss-date more than 15 minutes ahead", lambda e: make_form(now=time.time() + 1800), b"x", (), 403,
     "RequestTimeTooSkewed", None),
    ("credential region not the bucket's", lambda e: make_form(region="cn-beijing"), b"x", (), 400,
     "InvalidArgument", None),
    ("anonymous on a private bucket", lambda e: [("key", "uploads/anon")], b"x", (), 403, "AccessDenied", None),
    ("v1 without signature", lambda e: [f for f in make_form(version="v1") if f[0] != "Signature"], b"x", (), 400,
     "InvalidArgument", "signature is empty"),
    ("bad callback base64", lambda e: make_form(extra_fields=[("callback", "!!!")]), b"x", (), 400,
     "InvalidArgument", "not base64 encoded"),
]


@pytest.mark.parametrize("name,build,data,after,status,code_,fragment", [r for r in REJECTIONS if r[4]],
                         ids=[r[0] for r in REJECTIONS if r[4]])
def test_rejections(emulator, name, build, data, after, status, code_, fragment):
    fields = build(emulator)
    r = post(emulator, fields, data, after)
    assert (r.status_code, code(r)) == (status, code_), r.text
    assert r.headers["Content-Type"].startswith("application/xml")
    assert "<RequestId>" in r.text and "<HostId>" in r.text
    if fragment:
        assert fragment in r.text
    key = dict(fields).get("key", "uploads/late.txt")
    if name != "forbid overwrite on existing key":
        assert stored(emulator, key) is None, "a refused upload must leave nothing"


def test_overwrite_keeps_first_content_when_forbidden(emulator):
    fields = _existing(emulator)
    assert post(emulator, fields, b"second").status_code == 409
    assert stored(emulator, "uploads/exists.txt") == b"hello"


@pytest.mark.parametrize("policy,fragment", [
    ({"conditions": [{"bucket": BUCKET}]}, "expiration"),
    ({"expiration": "2099-01-01T00:00:00.000Z"}, "conditions"),
    ({"expiration": "2099-01-01T00:00:00.000Z", "conditions": []}, "non-empty"),
    ({"expiration": "tomorrow", "conditions": [{"bucket": BUCKET}]}, "expiration"),
    ({"expiration": "2099-01-01T00:00:00.000Z", "conditions": [{"a": "1", "b": "2"}]}, "exactly one property"),
    ({"expiration": "2099-01-01T00:00:00.000Z", "conditions": [["ends-with", "$key", "x"]]}, "unknown operator"),
    ({"expiration": "2099-01-01T00:00:00.000Z", "conditions": [["starts-with", "$key", "a", "b"]]}, "Invalid Condition"),
    ({"expiration": "2099-01-01T00:00:00.000Z", "conditions": [["$key"]]}, "Invalid"),
    ({"expiration": "2099-01-01T00:00:00.000Z", "conditions": [["content-length-range", 5, 1]]}, "content-length-range"),
    ({"expiration": "2099-01-01T00:00:00.000Z", "conditions": [42]}, "Invalid Condition"),
])
def test_malformed_policies_are_invalid_policy_document(emulator, policy, fragment):
    import hmac as _h

    b64 = base64.b64encode(json.dumps(policy).encode()).decode()
    sig = base64.b64encode(_h.new(SK.encode(), b64.encode(), hashlib.sha1).digest()).decode()
    r = post(emulator, [("key", "uploads/p"), ("OSSAccessKeyId", AK), ("policy", b64), ("Signature", sig)])
    assert (r.status_code, code(r)) == (400, "InvalidPolicyDocument") and fragment in r.text


def test_invalid_json_policy(emulator):
    import hmac as _h

    b64 = base64.b64encode(b"{not json").decode()
    sig = base64.b64encode(_h.new(SK.encode(), b64.encode(), hashlib.sha1).digest()).decode()
    r = post(emulator, [("key", "uploads/p"), ("OSSAccessKeyId", AK), ("policy", b64), ("Signature", sig)])
    assert (r.status_code, code(r)) == (400, "InvalidPolicyDocument") and "Invalid JSON" in r.text


@pytest.mark.parametrize("body,ctype,status,code_", [
    (b"a=b", "application/x-www-form-urlencoded", 400, "RequestIsNotMultiPartContent"),
    (b"garbage", "multipart/form-data; boundary=zz", 400, "MalformedPOSTRequest"),
    (b"--zz\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nunterminated", "multipart/form-data; boundary=zz",
     400, "MalformedPOSTRequest"),
    (b"--zz\r\nX: y\r\n\r\nv\r\n--zz--\r\n", "multipart/form-data; boundary=zz", 400, "MalformedPOSTRequest"),
    (b"", "multipart/form-data", 400, "InvalidArgument"),
])
def test_bad_bodies_never_crash(emulator, body, ctype, status, code_):
    r = requests.post(emulator.bucket_url + "/", data=body, headers={"Content-Type": ctype}, timeout=10)
    assert (r.status_code, code(r)) == (status, code_)


def test_keys_are_stored_safely(emulator):
    for key in ("uploads/../../../etc/passwd", "uploads/照片/été 🌅.png", "uploads/a\\b", "uploads/%2e%2e/x"):
        r = post(emulator, make_form(key=key), key.encode())
        assert r.status_code == 204, key
        url = f"{emulator.bucket_url}/{requests.utils.quote(key, safe='')}"
        assert requests.get(url, timeout=5).content == key.encode(), key
    # nothing was written outside the data dir, and no file is named after a key
    import os

    names = [n for _, _, files in os.walk(emulator.data_dir) for n in files]
    assert not any("passwd" in n or "照片" in n for n in names)


def test_aborted_upload_leaves_no_partial_object(emulator):
    fields = make_form(key="uploads/aborted.bin")
    body, ctype = multipart(fields, b"z" * (4 << 20))
    parts = urlsplit(emulator.bucket_url)
    sock = socket.create_connection((parts.hostname, parts.port))
    head = (f"POST {parts.path}/ HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[: len(body) // 2])
    sock.close()
    time.sleep(0.5)
    assert stored(emulator, "uploads/aborted.bin") is None
    import os

    tmp = emulator.data_dir / "buckets" / BUCKET / "tmp"
    assert not any(os.scandir(tmp)), "the temp upload was not cleaned up"


def test_streamed_1_gib_upload_completes(emulator):
    # generated on the fly on both sides: the emulator streams it to disk (its memory is measured in bench/)
    size = 1 << 30
    chunk = bytes(range(256)) * 4096  # 1 MiB
    fields = make_form(key="uploads/big.bin", conditions=[["content-length-range", 1, size]])
    body, ctype = multipart(fields, b"", "big.bin", "application/octet-stream")
    head, tail = body.split(b"application/octet-stream\r\n\r\n", 1)
    head += b"application/octet-stream\r\n\r\n"
    md5 = hashlib.md5()

    class Body:
        """A file-like body generated on the fly, with a length (so it is not sent chunked)."""

        def __init__(self):
            self.parts = iter([head] + [chunk] * (size // len(chunk)) + [tail])
            self.pending = b""

        def __len__(self):
            return len(head) + size + len(tail)

        def read(self, n=-1):
            while len(self.pending) < (n if n > 0 else 1 << 30):
                part = next(self.parts, None)
                if part is None:
                    break
                if part is chunk:
                    md5.update(part)
                self.pending += part
            out, self.pending = (self.pending, b"") if n < 0 else (self.pending[:n], self.pending[n:])
            return out

    r = requests.post(emulator.bucket_url + "/", data=Body(), headers={"Content-Type": ctype}, timeout=300)
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == f'"{md5.hexdigest().upper()}"'
    assert int(requests.head(f"{emulator.bucket_url}/uploads/big.bin", timeout=5).headers["Content-Length"]) == size
    assert oss2_bucket(emulator).delete_object("uploads/big.bin").status == 204  # free the disk


def test_object_put_get_delete_and_index(emulator):
    bucket = oss2_bucket(emulator)  # writes are signed (header signature V1, oss2's default)
    assert bucket.put_object("index.html", b"<h1>hi</h1>", headers={"Content-Type": "text/html"}).status == 200
    root = requests.get(f"{emulator.bucket_url}/", timeout=5)
    assert root.status_code == 200 and root.content == b"<h1>hi</h1>" and root.headers["Content-Type"] == "text/html"
    assert bucket.delete_object("index.html").status == 204
    missing = requests.get(f"{emulator.bucket_url}/index.html", timeout=5)
    assert (missing.status_code, code(missing)) == (404, "NoSuchKey")
    assert code(requests.get(f"{emulator.url}/no-such-bucket/x", timeout=5)) == "NoSuchBucket"


def test_cors_preflight_and_expose_headers(emulator):
    ok = requests.options(emulator.bucket_url + "/", headers={"Origin": "https://app.example.com",
                                                               "Access-Control-Request-Method": "POST"}, timeout=5)
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "ETag" in ok.headers["Access-Control-Expose-Headers"]
    assert "x-oss-request-id" in ok.headers["Access-Control-Expose-Headers"]
    bad = requests.options(emulator.bucket_url + "/", headers={"Origin": "https://evil.example",
                                                                "Access-Control-Request-Method": "POST"}, timeout=5)
    assert (bad.status_code, code(bad)) == (403, "AccessForbidden")
    no_origin = requests.options(emulator.bucket_url + "/", headers={"Access-Control-Request-Method": "POST"}, timeout=5)
    assert no_origin.status_code == 400 and "Origin request header needed" in no_origin.text
    no_method = requests.options(emulator.bucket_url + "/", headers={"Origin": "https://app.example.com"}, timeout=5)
    assert no_method.status_code == 400 and "Access-Control-Request-Method" in no_method.text
    r = post(emulator, make_form(key="uploads/cors"), headers={"Origin": "https://app.example.com"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "ETag" in r.headers["Access-Control-Expose-Headers"]
    # a POST from an origin with no rule is still stored, just without CORS headers (as OSS does)
    r = post(emulator, make_form(key="uploads/nocors"), headers={"Origin": "https://evil.example"})
    assert r.status_code == 204 and "Access-Control-Allow-Origin" not in r.headers


def test_put_bucket_cors_replaces_rules(emulator):
    import oss2

    bucket = oss2_bucket(emulator)
    rule = oss2.models.CorsRule(allowed_origins=["https://new.example"], allowed_methods=["POST"],
                                allowed_headers=["*"], expose_headers=["ETag"], max_age_seconds=100)
    assert bucket.put_bucket_cors(oss2.models.BucketCors([rule])).status == 200
    old = requests.options(emulator.bucket_url + "/", headers={"Origin": "https://app.example.com",
                                                                "Access-Control-Request-Method": "POST"}, timeout=5)
    new = requests.options(emulator.bucket_url + "/", headers={"Origin": "https://new.example",
                                                                "Access-Control-Request-Method": "POST"}, timeout=5)
    assert old.status_code == 403 and new.status_code == 200 and new.headers["Access-Control-Max-Age"] == "100"
    assert [r.allowed_origins for r in bucket.get_bucket_cors().rules] == [["https://new.example"]]


def test_8_mib_of_empty_fields_over_http(emulator):
    fields = [("a", "")] * ((8 * 1024 * 1024 - 16384) // 62) + make_form(key="uploads/many.txt")
    body, ctype = multipart(fields, b"hello")
    assert len(body) < 8 * 1024 * 1024 + 1024
    r = requests.post(emulator.bucket_url + "/", data=body, headers={"Content-Type": ctype}, timeout=120)
    assert r.status_code == 204, r.text
    assert stored(emulator, "uploads/many.txt") == b"hello"


def test_huge_field_names_hit_the_pre_file_cap_over_http(emulator):
    fields = make_form(key="uploads/names.txt") + [("x-oss-meta-" + "n" * 8000, "")] * 1100
    r = post(emulator, fields)
    assert (r.status_code, code(r)) == (400, "MaxPOSTPreDataLengthExceededError"), r.text
    assert stored(emulator, "uploads/names.txt") is None
