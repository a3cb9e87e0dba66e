"""Management calls are signed like OSS: the official SDKs' requests are accepted, a one-byte change is not.

The SDKs are oracles only: ``alibabacloud-oss-v2`` signs header V4, ``oss2`` signs header V1 (its default).
Both are pointed at the emulator (path-style on 127.0.0.1); what they send is recorded and replayed with
one byte changed, which must give 403 SignatureDoesNotMatch and change nothing.
"""

import datetime
import re

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests
from alibabacloud_oss_v2 import credentials as oss_credentials
from alibabacloud_oss_v2.signer import SignerV4
from alibabacloud_oss_v2.types import HttpRequest, SigningContext
from conftest import AK, BUCKET, REGION, SK, STS_AK, STS_SK, STS_TOKEN, oss2_bucket, recording_session, v2_client

MD5_FIRST = __import__("base64").b64encode(__import__("hashlib").md5(b"first").digest()).decode()
KEY = "uploads/照片 2024/größe ü+&=?.txt"  # non-ASCII, spaces and URL-special characters


def code(response):
    match = re.search(r"<Code>([^<]*)</Code>", response.text)
    return match.group(1) if match else None


def replay(prepared, url=None, headers=None, body=None):
    """Send a recorded request again, optionally with a changed URL or header values."""
    h = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    h.update(headers or {})
    data = body if body is not None else prepared.body
    return requests.request(prepared.method, url or prepared.url, headers=h, data=data, timeout=10)


def one_byte(text, index=-1):
    """``text`` with the character at ``index`` replaced by a different one."""
    index = index % len(text)
    repl = "0" if text[index] != "0" else "1"
    if not text[index].isalnum():
        repl = "_"
    return text[:index] + repl + text[index + 1:]


def anonymous_get(emulator, key):
    return requests.get(f"{emulator.bucket_url}/{requests.utils.quote(key)}", timeout=5)


# --- V4 (alibabacloud-oss-v2) ------------------------------------------------------------------------------
def test_v4_sdk_put_head_get_cors_website_delete_accepted(emulator):
    client = v2_client(emulator, STS_AK, STS_SK, STS_TOKEN)
    put = client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=KEY, body=b"hi", content_type="text/plain",
                                                 metadata={"team": "blue", "note": "a b"},
                                                 cache_control="no-cache", content_disposition="inline"))
    assert put.status_code == 200
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=KEY))
    assert head.metadata == {"team": "blue", "note": "a b"} and head.cache_control == "no-cache"
    assert head.content_type == "text/plain" and head.content_disposition == "inline"
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=KEY))
    assert got.body.read() == b"hi"
    cors = oss.CORSConfiguration(cors_rules=[oss.CORSRule(allowed_origins=["https://v4.example"],
                                                          allowed_methods=["POST"], allowed_headers=["*"],
                                                          expose_headers=["ETag"], max_age_seconds=60)])
    assert client.put_bucket_cors(oss.PutBucketCorsRequest(bucket=BUCKET, cors_configuration=cors)).status_code == 200
    preflight = requests.options(emulator.bucket_url + "/", headers={"Origin": "https://v4.example",
                                                                      "Access-Control-Request-Method": "POST"},
                                 timeout=5)
    assert preflight.status_code == 200
    website = oss.WebsiteConfiguration(index_document=oss.IndexDocument(suffix="home.html"))
    assert client.put_bucket_website(oss.PutBucketWebsiteRequest(
        bucket=BUCKET, website_configuration=website)).status_code == 200
    assert client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key=KEY)).status_code == 204
    assert anonymous_get(emulator, KEY).status_code == 404


def test_v4_one_byte_changed_is_signature_does_not_match(emulator):
    session, sent = recording_session()
    client = v2_client(emulator, STS_AK, STS_SK, STS_TOKEN, session=session)
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=KEY, body=b"first", content_type="text/plain",
                                           metadata={"team": "blue"}))
    put = sent[-1]
    assert put.headers["Authorization"].startswith("OSS4-HMAC-SHA256 Credential=STS.EMULATOR/")
    assert replay(put).status_code == 200  # the very same bytes again: accepted (no nonce)
    signature = put.headers["Authorization"].rsplit("=", 1)[1]
    changes = {
        "path": dict(url=one_byte(put.url)),
        "x-oss-meta value": dict(headers={"x-oss-meta-team": "bluf"}),
        "Content-Type": dict(headers={"Content-Type": "text/plaim"}),
        "x-oss-date": dict(headers={"x-oss-date": one_byte(put.headers["x-oss-date"], -2)}),
        "signature": dict(headers={"Authorization": put.headers["Authorization"].replace(signature,
                                                                                          one_byte(signature))}),
        "added x-oss header": dict(headers={"x-oss-object-acl": "public-read-write"}),
    }
    for name, change in changes.items():
        r = replay(put, **change)
        assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch"), name
        assert "<StringToSign>" in r.text and "<CanonicalRequest>" in r.text
    # a changed body is not signed (UNSIGNED-PAYLOAD), so the object still holds what the SDK sent
    assert anonymous_get(emulator, KEY).content == b"first"
    assert anonymous_get(emulator, KEY).headers["x-oss-meta-team"] == "blue"

    client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=KEY))
    head = sent[-1]
    assert head.method == "HEAD" and replay(head).status_code == 200
    bad = replay(head, headers={"x-oss-security-token": one_byte(STS_TOKEN)})
    assert (bad.status_code, bad.headers.get("x-oss-ec")) == (403, "0002-00000903")  # token checked first
    bad = replay(head, url=one_byte(head.url))
    assert bad.status_code == 403 and bad.content == b""  # HEAD: no body; the XML is in x-oss-err
    assert "SignatureDoesNotMatch" in __import__("base64").b64decode(bad.headers["x-oss-err"]).decode()


def _sign_v4(emulator, method, key, headers, additional=(), when=None, query="", creds=(AK, SK), region=REGION):
    url = f"{emulator.url}/{BUCKET}/{requests.utils.quote(key)}" + (f"?{query}" if query else "")
    request = HttpRequest(method=method, url=url, headers=dict(headers))
    ctx = SigningContext(product="oss", region=region, bucket=BUCKET, key=key, request=request,
                         credentials=oss_credentials.Credentials(*creds), additional_headers=set(additional),
                         signing_time=when or datetime.datetime.now(datetime.timezone.utc))
    SignerV4().sign(ctx)
    return url, request.headers


def test_v4_additional_headers_and_query_are_signed(emulator):
    oss2_bucket(emulator).put_object("a.txt", b"x")
    url, headers = _sign_v4(emulator, "GET", "a.txt", {"Range": "bytes=0-0", "X-Custom": "v"},
                            additional=("range", "x-custom"), query="response-cache-control=no-store&foo=a%2Fb")
    assert "AdditionalHeaders=range;x-custom," in headers["Authorization"]
    ok = requests.get(url, headers=headers, timeout=5)
    assert ok.status_code == 206 and ok.content == b"x", ok.text  # the signed Range is honoured
    for changed in ({"Range": "bytes=0-1"}, {"X-Custom": "w"}):
        r = requests.get(url, headers=dict(headers, **changed), timeout=5)
        assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch"), changed
    r = requests.get(url.replace("foo=a%2Fb", "foo=a%2Fc"), headers=headers, timeout=5)
    assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch")
    missing = {k: v for k, v in headers.items() if k != "X-Custom"}
    assert requests.get(url, headers=missing, timeout=5).status_code == 400  # a named header is absent


def test_v4_time_region_and_payload_rules(emulator):
    oss2_bucket(emulator).put_object("a.txt", b"x")
    late = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    url, headers = _sign_v4(emulator, "HEAD", "a.txt", {}, when=late)
    r = requests.get(url, headers=headers, timeout=5)  # signed as HEAD, sent as GET: mismatch first
    assert code(r) == "SignatureDoesNotMatch"
    r = requests.head(url, headers=headers, timeout=5)
    assert r.status_code == 403 and r.headers["x-oss-ec"] == "0002-00000504"  # RequestTimeTooSkewed
    url, headers = _sign_v4(emulator, "GET", "a.txt", {}, region="cn-beijing")
    r = requests.get(url, headers=headers, timeout=5)
    assert (r.status_code, code(r)) == (400, "InvalidArgument") and "region" in r.text
    url, headers = _sign_v4(emulator, "GET", "a.txt", {}, creds=(AK, "wrong-secret"))
    assert code(requests.get(url, headers=headers, timeout=5)) == "SignatureDoesNotMatch"
    url, headers = _sign_v4(emulator, "GET", "a.txt", {}, creds=("AKIDNOBODY", SK))
    assert code(requests.get(url, headers=headers, timeout=5)) == "InvalidAccessKeyId"
    url, headers = _sign_v4(emulator, "GET", "a.txt", {})
    no_payload = {k: v for k, v in headers.items() if k != "x-oss-content-sha256"}
    assert requests.get(url, headers=no_payload, timeout=5).status_code == 400


def test_sts_account_needs_its_token(emulator):
    no_token = v2_client(emulator, STS_AK, STS_SK, None)
    with pytest.raises(oss.exceptions.OperationError) as err:
        no_token.put_object(oss.PutObjectRequest(bucket=BUCKET, key="uploads/t.txt", body=b"x"))
    assert "InvalidAccessKeyId" in str(err.value)
    with pytest.raises(oss2.exceptions.OssError) as err1:
        oss2_bucket(emulator, STS_AK, STS_SK, "other-token").put_object("uploads/t.txt", b"x")
    assert (err1.value.status, err1.value.code) == (403, "InvalidAccessKeyId")
    with pytest.raises(oss2.exceptions.OssError) as err1:
        oss2_bucket(emulator, STS_AK, STS_SK).put_object("uploads/t.txt", b"x")  # no token at all
    assert err1.value.code == "InvalidAccessKeyId"
    assert anonymous_get(emulator, "uploads/t.txt").status_code == 404
    assert oss2_bucket(emulator, STS_AK, STS_SK, STS_TOKEN).put_object("uploads/t.txt", b"x").status == 200


# --- V1 (oss2) ---------------------------------------------------------------------------------------------
def test_v1_oss2_calls_accepted_and_one_byte_changed_refused(emulator):
    session, sent = recording_session()
    bucket = oss2_bucket(emulator, STS_AK, STS_SK, STS_TOKEN, session=session)
    assert bucket.put_object(KEY, b"first", headers={"Content-Type": "text/plain", "x-oss-meta-team": "blue",
                                                     "Content-MD5": MD5_FIRST}).status == 200
    put = sent[-1]
    assert put.headers["authorization"].startswith("OSS STS.EMULATOR:")
    assert bucket.head_object(KEY).headers["x-oss-meta-team"] == "blue"
    assert replay(put, body=b"first").status_code == 200
    changes = {
        "path": dict(url=one_byte(put.url)),
        "x-oss-meta value": dict(headers={"x-oss-meta-team": "bluf"}),
        "Content-Type": dict(headers={"Content-Type": "text/plaim"}),
        "Content-MD5": dict(headers={"Content-MD5": one_byte(put.headers["Content-MD5"], 0)}),
        "Date": dict(headers={"date": put.headers["date"].replace(" GMT", "").rstrip("0123456789")
                              + str((int(put.headers["date"][-6:-4]) + 1) % 60).zfill(2) + " GMT"}),
        "signature": dict(headers={"authorization": one_byte(put.headers["authorization"], -3)}),
        "added x-oss header": dict(headers={"x-oss-object-acl": "public-read-write"}),
    }
    for name, change in changes.items():
        r = replay(put, body=b"first", **change)  # oss2's body was a one-shot iterator
        assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch"), (name, r.text)
        assert "<StringToSign>" in r.text
    assert anonymous_get(emulator, KEY).content == b"first"

    import oss2.models

    rule = oss2.models.CorsRule(allowed_origins=["https://v1.example"], allowed_methods=["GET"],
                                allowed_headers=["*"], max_age_seconds=5)
    assert bucket.put_bucket_cors(oss2.models.BucketCors([rule])).status == 200
    cors = sent[-1]
    assert cors.url.endswith("?cors") or "cors" in cors.url
    r = replay(cors, url=cors.url.replace(f"/{BUCKET}/", f"/{BUCKET}//"))
    assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch")
    assert bucket.put_bucket_website(oss2.models.BucketWebsite("site.html", "404.html")).status == 200
    assert bucket.get_bucket_website().index_file == "site.html"
    assert bucket.delete_object(KEY).status == 204


def test_v1_wrong_secret_unknown_key_and_old_date(emulator, monkeypatch):
    with pytest.raises(oss2.exceptions.OssError) as err:
        oss2_bucket(emulator, AK, "not-the-secret").put_object("a.txt", b"x")
    assert (err.value.status, err.value.code) == (403, "SignatureDoesNotMatch")
    with pytest.raises(oss2.exceptions.OssError) as err:
        oss2_bucket(emulator, "AKIDNOBODY", SK).put_object("a.txt", b"x")
    assert err.value.code == "InvalidAccessKeyId"
    oss2_bucket(emulator).put_object("a.txt", b"x")
    # oss2 signs correctly but with a Date 20 minutes old: refused, as OSS refuses more than 15 minutes
    import email.utils
    import time

    monkeypatch.setattr(oss2.utils, "http_date", lambda *a: email.utils.formatdate(time.time() - 1200, usegmt=True))
    with pytest.raises(oss2.exceptions.OssError) as err:
        oss2_bucket(emulator).put_object("a.txt", b"y")
    assert (err.value.status, err.value.code) == (403, "RequestTimeTooSkewed")
    assert anonymous_get(emulator, "a.txt").content == b"x"


# --- anonymous access ----------------------------------------------------------------------------------
def test_anonymous_management_calls_are_refused(emulator):
    oss2_bucket(emulator).put_object("page.html", b"<p>mine</p>", headers={"Content-Type": "text/html"})
    base = emulator.bucket_url
    calls = [
        ("PUT", base + "/page.html", b"<p>pwned</p>"),
        ("PUT", base + "/new.html", b"x"),
        ("DELETE", base + "/page.html", None),
        ("PUT", base + "/?cors", b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
                                 b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"),
        ("DELETE", base + "/?cors", None),
        ("GET", base + "/?cors", None),
        ("PUT", base + "/?website", b"<WebsiteConfiguration><IndexDocument><Suffix>new.html</Suffix>"
                                    b"</IndexDocument></WebsiteConfiguration>"),
        ("PUT", base + "/", None),
        ("DELETE", base + "/", None),
        ("PUT", base + "/page.html?acl", None),
        ("GET", base + "/?acl", None),
        ("GET", base + "/page.html?acl", None),
    ]
    for method, url, body in calls:
        r = requests.request(method, url, data=body, headers={"x-oss-object-acl": "public-read-write"}
                             if url.endswith("?acl") else {}, timeout=5)
        assert (r.status_code, code(r)) == (403, "AccessDenied"), (method, url, r.text)
        assert r.headers["Content-Type"].startswith("application/xml")
    assert anonymous_get(emulator, "page.html").content == b"<p>mine</p>"
    assert anonymous_get(emulator, "new.html").status_code == 404
    assert oss2_bucket(emulator).get_bucket_website().index_file == "index.html"
    preflight = requests.options(base + "/", headers={"Origin": "https://app.example.com",
                                                       "Access-Control-Request-Method": "POST"}, timeout=5)
    assert preflight.status_code == 200  # the configured CORS rule is still there


def test_anonymous_reads_allowed_but_a_bad_signature_on_a_read_is_refused(emulator):
    oss2_bucket(emulator).put_object("pub.txt", b"public")
    assert anonymous_get(emulator, "pub.txt").content == b"public"
    assert requests.head(f"{emulator.bucket_url}/pub.txt", timeout=5).status_code == 200
    bad = {"Authorization": f"OSS {AK}:AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
           "Date": __import__("email.utils").utils.formatdate(usegmt=True)}
    r = requests.get(f"{emulator.bucket_url}/pub.txt", headers=bad, timeout=5)
    assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch") and b"public" not in r.content
    assert requests.head(f"{emulator.bucket_url}/pub.txt", headers=bad, timeout=5).status_code == 403
    for junk in ("Bearer abc", "OSS nocolon", "OSS4-HMAC-SHA256 Signature=ab"):
        r = requests.get(f"{emulator.bucket_url}/pub.txt", headers={"Authorization": junk}, timeout=5)
        assert r.status_code in (400, 403) and b"public" not in r.content, junk
    # a presigned-URL signature is verified, never silently ignored (test_multipart_upload.py: good ones)
    r = requests.get(f"{emulator.bucket_url}/pub.txt?OSSAccessKeyId={AK}&Expires=9999999999&Signature=x",
                     timeout=5)
    assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch") and b"public" not in r.content
    r = requests.get(f"{emulator.bucket_url}/pub.txt?x-oss-signature=00", timeout=5)
    assert r.status_code == 400 and b"public" not in r.content
    # the V4 SDK reads through the same path (the callback function does HeadObject like this)
    head = v2_client(emulator).head_object(oss.HeadObjectRequest(bucket=BUCKET, key="pub.txt"))
    assert head.content_length == 6


def test_object_acl_private_and_public_read_write(emulator):
    bucket = oss2_bucket(emulator)
    bucket.put_object("secret.txt", b"s", headers={"x-oss-object-acl": "private"})
    assert anonymous_get(emulator, "secret.txt").status_code == 403
    assert bucket.get_object("secret.txt").read() == b"s"
    assert bucket.get_object_acl("secret.txt").acl == "private"
    bucket.put_object("open.txt", b"o")
    assert requests.put(f"{emulator.bucket_url}/open.txt", data=b"anon", timeout=5).status_code == 403
    assert bucket.put_object_acl("open.txt", oss2.OBJECT_ACL_PUBLIC_READ_WRITE).status == 200
    assert anonymous_get(emulator, "open.txt").headers["x-oss-object-acl"] == "public-read-write"
    # public-read-write: anyone may write it (as OSS does) ...
    assert requests.put(f"{emulator.bucket_url}/open.txt", data=b"anon", timeout=5).status_code == 200
    assert anonymous_get(emulator, "open.txt").content == b"anon"
    # ... and the anonymous write leaves the default ACL, so the next anonymous write is refused
    assert "x-oss-object-acl" not in anonymous_get(emulator, "open.txt").headers
    assert requests.put(f"{emulator.bucket_url}/open.txt", data=b"again", timeout=5).status_code == 403
    assert anonymous_get(emulator, "open.txt").content == b"anon"
    with pytest.raises(oss2.exceptions.OssError) as err:
        bucket.put_object("bad.txt", b"x", headers={"x-oss-object-acl": "world-writable"})
    assert (err.value.status, err.value.code) == (400, "InvalidArgument")


def test_put_with_wrong_content_md5_is_refused(emulator):
    with pytest.raises(oss2.exceptions.OssError) as err:
        oss2_bucket(emulator).put_object("m.txt", b"x", headers={"Content-MD5": "SIoXtnv0+0sxVJ1+nldbvQ=="})
    assert (err.value.status, err.value.code) == (400, "InvalidDigest")
    assert anonymous_get(emulator, "m.txt").status_code == 404


def test_put_object_headers_returned_exactly_as_stored(emulator):
    headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "max-age=7, private",
               "Content-Disposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
               "Content-Encoding": "identity", "Expires": "Thu, 01 Dec 2094 16:00:00 GMT",
               "x-oss-meta-Owner": "Ann  Lee", "x-oss-meta-city": "Zurich; x=1, y=\"2\"",
               "x-oss-storage-class": "IA"}
    oss2_bucket(emulator).put_object("h.txt", b"h", headers=headers)
    got = anonymous_get(emulator, "h.txt")
    raw = {k.lower(): v for k, v in got.raw.headers.items()}
    for name, value in headers.items():
        assert raw[name.lower()] == value, name
    assert got.content == b"h"
