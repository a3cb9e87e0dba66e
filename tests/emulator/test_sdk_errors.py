"""Error codes beyond NoSuchKey, as the official SDKs see them: the x-oss-ec of each common error is OSS's
documented EC (oss2's .ec, alibabacloud-oss-v2's .ec), on GET and on HEAD (x-oss-err); buckets made,
listed and deleted through oss2; multipart Initiate/Complete echo server-side encryption."""

from typing import Any, Callable, Optional

import oss2  # type: ignore[import-untyped]
import pytest
import requests
from conftest import AK, BUCKET, REGION, SK, oss2_bucket, v2_client

PART = 100 * 1024


def _error(call: Callable[[], Any]) -> Any:
    with pytest.raises(oss2.exceptions.OssError) as caught:
        call()
    return caught.value


@pytest.fixture
def bucket(emulator: Any) -> Any:
    return oss2_bucket(emulator)


def test_no_such_bucket(emulator: Any) -> None:
    e = _error(lambda: oss2_bucket(emulator, bucket="no-such-bucket").get_object("k"))
    assert (e.status, e.code, e.ec) == (404, "NoSuchBucket", "0015-00000101")


def test_no_such_upload_and_bad_part_number(bucket: Any) -> None:
    e = _error(lambda: bucket.upload_part("k", "0" * 32, 1, b"x"))
    assert (e.status, e.code, e.ec) == (404, "NoSuchUpload", "0017-00000244")
    upload_id = bucket.init_multipart_upload("k").upload_id
    e = _error(lambda: bucket.upload_part("k", upload_id, 10001, b"x"))
    assert (e.status, e.code, e.ec) == (400, "InvalidArgument", "0017-00000220")


def test_complete_errors(bucket: Any) -> None:
    upload_id = bucket.init_multipart_upload("k").upload_id
    one = bucket.upload_part("k", upload_id, 1, b"a" * 10)
    two = bucket.upload_part("k", upload_id, 2, b"b" * 10)
    parts = [oss2.models.PartInfo(1, one.etag), oss2.models.PartInfo(2, two.etag)]
    e = _error(lambda: bucket.complete_multipart_upload("k", upload_id, parts))  # part 1 under 100 KB
    assert (e.status, e.code, e.ec) == (400, "EntityTooSmall", "0042-00000213")
    e = _error(lambda: bucket.complete_multipart_upload("k", upload_id, [oss2.models.PartInfo(3, one.etag)]))
    assert (e.status, e.code) == (400, "InvalidPart")
    assert e.ec  # every error has one


def test_signature_and_region_errors(emulator: Any, bucket: Any) -> None:
    bucket.put_object("k", b"x")
    e = _error(lambda: oss2_bucket(emulator, sk="wrong").get_object("k"))
    assert (e.status, e.code, e.ec) == (403, "SignatureDoesNotMatch", "0002-00000040")
    other = oss2.Bucket(oss2.AuthV4(AK, SK), emulator.url, BUCKET, region="cn-shanghai")
    for call in (lambda: other.get_object("k"), lambda: other.head_object("k")):  # HEAD: from x-oss-err
        e = _error(call)
        assert (e.status, e.code, e.ec) == (400, "InvalidArgument", "0002-00000226")
        assert e.message == "Invalid signing region in Authorization header."
        assert e.headers["x-oss-ec"] == "0002-00000226"


def test_anonymous_denied_and_precondition(emulator: Any, bucket: Any) -> None:
    bucket.put_object("k", b"x")
    r = requests.put(f"{emulator.bucket_url}/k", data=b"y", timeout=10)
    assert (r.status_code, r.headers["x-oss-ec"]) == (403, "0003-00000001")
    e = _error(lambda: bucket.get_object("k", headers={"If-Match": '"0"'}))
    assert (e.status, e.code) == (412, "PreconditionFailed") and e.ec == e.headers["x-oss-ec"] != ""


def test_v2_sees_the_same_ec(emulator: Any) -> None:
    import alibabacloud_oss_v2 as oss  # type: ignore[import-untyped]

    client = v2_client(emulator)
    with pytest.raises(oss.exceptions.OperationError) as caught:
        client.abort_multipart_upload(oss.AbortMultipartUploadRequest(bucket=BUCKET, key="k", upload_id="0" * 32))
    error = caught.value.unwrap()
    assert (error.status_code, error.code, error.ec) == (404, "NoSuchUpload", "0017-00000244")


def test_buckets_made_listed_and_deleted(emulator: Any) -> None:
    auth = oss2.Auth(AK, SK)
    fresh = oss2.Bucket(auth, emulator.url, "fresh-bucket")
    fresh.create_bucket()
    fresh.put_object("a", b"1")
    names = [b.name for b in oss2.BucketIterator(oss2.Service(auth, emulator.url))]
    assert sorted(names) == sorted([BUCKET, "fresh-bucket"])
    listed = oss2.Service(auth, emulator.url).list_buckets(prefix="fresh").buckets
    assert [(b.name, b.extranet_endpoint) for b in listed] == [("fresh-bucket", emulator.url.split("//")[1])]
    e = _error(fresh.delete_bucket)
    assert (e.status, e.code) == (409, "BucketNotEmpty")
    fresh.delete_object("a")
    fresh.delete_bucket()
    e = _error(lambda: fresh.get_object("a"))
    assert e.code == "NoSuchBucket"


@pytest.mark.parametrize("sse,key_id", [("AES256", None), ("KMS", "kms-key-1")])
def test_multipart_echoes_server_side_encryption(bucket: Any, sse: str, key_id: Optional[str]) -> None:
    headers = {"x-oss-server-side-encryption": sse}
    if key_id:
        headers["x-oss-server-side-encryption-key-id"] = key_id
    init = bucket.init_multipart_upload("enc", headers=headers)
    assert init.headers["x-oss-server-side-encryption"] == sse
    assert init.headers.get("x-oss-server-side-encryption-key-id") == key_id
    part = bucket.upload_part("enc", init.upload_id, 1, b"z" * PART)
    done = bucket.complete_multipart_upload("enc", init.upload_id, [oss2.models.PartInfo(1, part.etag)])
    assert done.headers["x-oss-server-side-encryption"] == sse
    assert done.headers.get("x-oss-server-side-encryption-key-id") == key_id
    assert bucket.head_object("enc").headers["x-oss-server-side-encryption"] == sse
    plain = bucket.init_multipart_upload("plain")
    assert "x-oss-server-side-encryption" not in plain.headers


def test_unknown_virtual_host_bucket_is_no_such_bucket(emulator: Any) -> None:
    """GET / on <unknown>.localhost is that bucket's listing (NoSuchBucket), never ListBuckets."""
    auth = oss2.Auth(AK, SK)
    listed = oss2.Service(auth, emulator.url).list_buckets()
    assert [b.name for b in listed.buckets] == [BUCKET]
    r = requests.get(f"http://127.0.0.1:{emulator.port}/", headers={"Host": f"nobucket.localhost:{emulator.port}"},
                     timeout=10)
    assert (r.status_code, r.headers["x-oss-ec"]) == (404, "0015-00000101")
    assert b"NoSuchBucket" in r.content
