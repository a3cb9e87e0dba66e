"""Bucket and object ACLs as OSS applies them (issue 24), set and read with the official SDKs (oss2 and
alibabacloud-oss-v2): an anonymous GET/HEAD of an object whose effective ACL is private is refused with
OSS's XML error; signed requests and presigned URLs (V1 and V4) still read it."""

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests
from conftest import AK, BUCKET, REGION, SK, make_form, multipart


@pytest.fixture
def bucket(emulator):
    return oss2.Bucket(oss2.Auth(AK, SK), emulator.url, BUCKET)


@pytest.fixture
def v2(emulator):
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(AK, SK)
    cfg.region, cfg.endpoint, cfg.use_path_style, cfg.retry_max_attempts = REGION, emulator.url, True, 1
    return oss.Client(cfg)


def anonymous(url, method="GET"):
    return requests.request(method, url, timeout=5)


def test_bucket_acl_set_and_read_with_both_sdks(bucket, v2, emulator):
    assert bucket.get_bucket_acl().acl == oss2.BUCKET_ACL_PUBLIC_READ  # the emulator's configured default
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    assert bucket.get_bucket_acl().acl == oss2.BUCKET_ACL_PRIVATE
    assert v2.get_bucket_acl(oss.GetBucketAclRequest(bucket=BUCKET)).acl == "private"
    v2.put_bucket_acl(oss.PutBucketAclRequest(bucket=BUCKET, acl="public-read-write"))
    assert bucket.get_bucket_acl().acl == oss2.BUCKET_ACL_PUBLIC_READ_WRITE
    with pytest.raises(oss2.exceptions.OssError) as bad:
        bucket.put_bucket_acl("world-writable")
    assert (bad.value.status, bad.value.code) == (400, "InvalidArgument")
    assert anonymous(f"{emulator.bucket_url}/?acl").status_code == 403  # reading the ACL needs a signature


def test_private_bucket_refuses_anonymous_reads_but_not_signed_ones(bucket, emulator):
    bucket.put_object("docs/a.txt", b"secret bytes")
    assert anonymous(f"{emulator.bucket_url}/docs/a.txt").content == b"secret bytes"  # public-read bucket
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    refused = anonymous(f"{emulator.bucket_url}/docs/a.txt")
    assert refused.status_code == 403 and refused.headers["x-oss-ec"] == "0003-00000001"
    assert "<Code>AccessDenied</Code>" in refused.text and "bucket acl" in refused.text
    head = anonymous(f"{emulator.bucket_url}/docs/a.txt", "HEAD")
    assert head.status_code == 403 and head.headers["x-oss-err"]  # HEAD: the XML in x-oss-err, as OSS
    assert bucket.get_object("docs/a.txt").read() == b"secret bytes"  # signed: still readable
    # a missing key: 403 too for an anonymous caller (nothing to learn), 404 when signed
    assert anonymous(f"{emulator.bucket_url}/docs/none.txt").status_code == 403
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object("docs/none.txt")
    for version in ("v1", "v4"):
        auth = oss2.Auth(AK, SK) if version == "v1" else oss2.ProviderAuthV4(
            oss2.credentials.StaticCredentialsProvider(AK, SK))
        signer = oss2.Bucket(auth, emulator.url, BUCKET, region=REGION)
        url = signer.sign_url("GET", "docs/a.txt", 60,
                              params={"response-content-disposition": 'attachment; filename="a.txt"'})
        got = anonymous(url)
        assert got.status_code == 200 and got.content == b"secret bytes", (version, got.text)
        assert got.headers["Content-Disposition"] == 'attachment; filename="a.txt"'


def test_object_acl_overrides_the_bucket_and_default_inherits_it(bucket, v2, emulator):
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    bucket.put_object("site/index.html", b"<p>hi</p>", headers={"x-oss-object-acl": "public-read"})
    bucket.put_object("plain.txt", b"p")
    assert bucket.get_object_acl("site/index.html").acl == "public-read"
    assert bucket.get_object_acl("plain.txt").acl == "default"
    assert anonymous(f"{emulator.bucket_url}/site/index.html").content == b"<p>hi</p>"
    assert anonymous(f"{emulator.bucket_url}/plain.txt").status_code == 403
    v2.put_object_acl(oss.PutObjectAclRequest(bucket=BUCKET, key="plain.txt", acl="public-read"))
    assert v2.get_object_acl(oss.GetObjectAclRequest(bucket=BUCKET, key="plain.txt")).acl == "public-read"
    assert anonymous(f"{emulator.bucket_url}/plain.txt").status_code == 200
    # an object made private stays private in a public-read bucket ("object acl" in the message)
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    bucket.put_object_acl("plain.txt", oss2.OBJECT_ACL_PRIVATE)
    refused = anonymous(f"{emulator.bucket_url}/plain.txt")
    assert refused.status_code == 403 and "object acl" in refused.text
    bucket.put_object_acl("plain.txt", oss2.OBJECT_ACL_DEFAULT)
    assert anonymous(f"{emulator.bucket_url}/plain.txt").status_code == 200


def test_post_object_form_field_sets_the_object_acl(bucket, emulator):
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    for key, acl, status in (("pub.txt", "public-read", 200), ("priv.txt", "default", 403)):
        fields = make_form([["eq", "$key", key]], key=key, extra_fields=[("x-oss-object-acl", acl)])
        body, ctype = multipart(fields, file=b"form bytes")
        posted = requests.post(emulator.bucket_url, data=body, headers={"Content-Type": ctype}, timeout=5)
        assert posted.status_code in (200, 204), posted.text
        assert bucket.get_object_acl(key).acl == acl
        assert anonymous(f"{emulator.bucket_url}/{key}").status_code == status


def test_anonymous_writes_follow_public_read_write(bucket, emulator):
    assert requests.put(f"{emulator.bucket_url}/w.txt", data=b"1", timeout=5).status_code == 403
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    assert requests.put(f"{emulator.bucket_url}/w.txt", data=b"1", timeout=5).status_code == 200
    assert bucket.get_object("w.txt").read() == b"1"


def test_put_bucket_takes_x_oss_acl_and_defaults_to_private(emulator):
    for name, acl in (("acl-default-bucket", None), ("acl-public-bucket", oss2.BUCKET_ACL_PUBLIC_READ)):
        made = oss2.Bucket(oss2.Auth(AK, SK), emulator.url, name)
        made.create_bucket(acl) if acl else made.create_bucket()
        assert made.get_bucket_acl().acl == (acl or oss2.BUCKET_ACL_PRIVATE)
