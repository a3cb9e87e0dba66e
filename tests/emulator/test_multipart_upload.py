"""Multipart upload: Initiate, UploadPart (header-signed and presigned V4/V1), ListParts, ListMultipartUploads,
Complete (callback, 203, forbid-overwrite, complete-all), Abort, with OSS's error codes.

The official SDKs are the oracles: ``alibabacloud-oss-v2`` (header V4, and its ``presign`` for UploadPart)
and ``oss2`` (header V1, and its ``sign_url``). What they send must be accepted; one byte changed must not.
"""

import base64
import datetime
import gc
import hashlib
import json
import re
import time
import tracemalloc

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests
from conftest import AK, BUCKET, SK, STS_AK, STS_SK, STS_TOKEN, oss2_bucket, v2_client
from test_callback_and_vectors import CallbackServer, verify

KIB = 1024
P1, P2, P3 = b"a" * (100 * KIB), bytes(range(256)) * 400 + b"tail", b"last bit"  # 100 KiB, 100 KiB+, small


def code(response):
    match = re.search(r"<Code>([^<]*)</Code>", response.text)
    return match.group(1) if match else None


def md5_hex(data):
    return hashlib.md5(data).hexdigest().upper()


def multipart_etag(*parts):
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest().upper() + f"-{len(parts)}"


def v2_error(excinfo):
    """(status, code) of an alibabacloud-oss-v2 OperationError."""
    err = excinfo.value.unwrap() if hasattr(excinfo.value, "unwrap") else excinfo.value
    return getattr(err, "status_code", None), getattr(err, "code", None)


def initiate(client, key, **kwargs):
    return client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=BUCKET, key=key, **kwargs))


def upload(client, key, upload_id, number, data):
    return client.upload_part(oss.UploadPartRequest(bucket=BUCKET, key=key, upload_id=upload_id, part_number=number,
                                                    body=data))


def complete(client, key, upload_id, parts, **kwargs):
    listed = oss.CompleteMultipartUpload(parts=[oss.UploadPart(part_number=n, etag=e) for n, e in parts])
    return client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=BUCKET, key=key, upload_id=upload_id, complete_multipart_upload=listed, **kwargs))


def raw_complete(emulator, key, upload_id, parts, headers=None):
    """Complete signed by oss2 (V1) with a hand-written body: for bodies the SDKs would not send."""
    body = "<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts) + "</CompleteMultipartUpload>"
    bucket = oss2_bucket(emulator)
    return bucket._do("POST", bucket.bucket_name, key, params={"uploadId": upload_id}, data=body.encode(),
                      headers=headers or {})


def anonymous_get(emulator, key):
    return requests.get(f"{emulator.bucket_url}/{requests.utils.quote(key)}", timeout=5)


# --- the whole flow, with each SDK ---------------------------------------------------------------------
KEY = "uploads/照片 2024/big ü+&=.bin"


def test_v4_sdk_flow_applies_initiate_headers_and_gives_the_multipart_etag(emulator):
    client = v2_client(emulator, STS_AK, STS_SK, STS_TOKEN)
    init = initiate(client, KEY, content_type="video/mp4", metadata={"upload-id": "u1", "user": "ann"},
                    cache_control="no-cache", content_disposition="attachment; filename=\"a.mp4\"",
                    storage_class="IA")
    assert init.key == KEY and re.fullmatch(r"[0-9A-F]{32}", init.upload_id)
    etags = []
    for n, data in ((1, P1), (2, P2), (3, P3)):
        r = upload(client, KEY, init.upload_id, n, data)
        assert r.etag == f'"{md5_hex(data)}"'  # quoted upper-case MD5
        etags.append((n, r.etag))
    listed = client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key=KEY, upload_id=init.upload_id))
    assert [(p.part_number, p.etag, p.size) for p in listed.parts] == [
        (1, etags[0][1], len(P1)), (2, etags[1][1], len(P2)), (3, etags[2][1], len(P3))]
    uploads = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=BUCKET))
    assert [(u.key, u.upload_id) for u in uploads.uploads] == [(KEY, init.upload_id)]
    done = complete(client, KEY, init.upload_id, etags)
    assert done.etag == f'"{multipart_etag(P1, P2, P3)}"' and done.key == KEY
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=KEY))
    assert head.etag == done.etag and head.content_length == len(P1 + P2 + P3)
    assert head.content_type == "video/mp4" and head.cache_control == "no-cache"
    assert head.content_disposition == 'attachment; filename="a.mp4"'
    assert head.metadata == {"upload-id": "u1", "user": "ann"} and head.object_type == "Multipart"
    got = anonymous_get(emulator, KEY)
    assert got.content == P1 + P2 + P3 and got.headers["x-oss-storage-class"] == "IA"
    assert "Content-MD5" not in got.headers  # a multipart object has no MD5 of its own
    from fastcrc import crc64

    assert got.headers["x-oss-hash-crc64ecma"] == str(crc64.xz(P1 + P2 + P3))
    # the upload is gone: its id is refused from now on
    with pytest.raises(oss.exceptions.OperationError) as err:
        client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key=KEY, upload_id=init.upload_id))
    assert v2_error(err) == (404, "NoSuchUpload")
    assert client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=BUCKET)).uploads in (None, [])
    tmp = emulator.data_dir / "buckets" / BUCKET / "tmp"
    assert not any(tmp.iterdir()), "completing left files behind"


def test_v1_sdk_flow_with_abort(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/v1.bin"
    upload_id = bucket.init_multipart_upload(key, headers={"Content-Type": "text/plain",
                                                           "x-oss-object-acl": "private"}).upload_id
    parts = []
    for n, data in ((1, P1), (2, P3)):
        result = bucket.upload_part(key, upload_id, n, data)
        parts.append(oss2.models.PartInfo(n, result.etag))
    assert [p.part_number for p in bucket.list_parts(key, upload_id).parts] == [1, 2]
    result = bucket.complete_multipart_upload(key, upload_id, parts)
    assert result.etag == multipart_etag(P1, P3)
    assert bucket.get_object(key).read() == P1 + P3
    assert anonymous_get(emulator, key).status_code == 403  # the ACL given at Initiate applies
    # abort: the upload and its parts are gone
    other = bucket.init_multipart_upload("uploads/abort.bin").upload_id
    bucket.upload_part("uploads/abort.bin", other, 1, P1)
    assert bucket.abort_multipart_upload("uploads/abort.bin", other).status == 204
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts("uploads/abort.bin", other)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("uploads/abort.bin", other, 2, P1)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.abort_multipart_upload("uploads/abort.bin", other)
    assert not list((emulator.data_dir / "buckets" / BUCKET / "uploads").iterdir())


def test_anonymous_and_unknown_uploads_are_refused(emulator):
    base = f"{emulator.bucket_url}/uploads/x.bin"
    r = requests.post(f"{base}?uploads", timeout=5)
    assert (r.status_code, code(r)) == (403, "AccessDenied")
    upload_id = oss2_bucket(emulator).init_multipart_upload("uploads/x.bin").upload_id
    for method, url in (("PUT", f"{base}?partNumber=1&uploadId={upload_id}"), ("GET", f"{base}?uploadId={upload_id}"),
                        ("DELETE", f"{base}?uploadId={upload_id}"), ("GET", f"{emulator.bucket_url}/?uploads")):
        r = requests.request(method, url, data=b"x", timeout=5)
        assert (r.status_code, code(r)) == (403, "AccessDenied"), (method, url)
    bucket = oss2_bucket(emulator)
    for bad in ("0" * 32, "../../etc", "nope", upload_id.lower()):
        with pytest.raises(oss2.exceptions.NoSuchUpload):
            bucket.upload_part("uploads/x.bin", bad, 1, b"x")
    with pytest.raises(oss2.exceptions.NoSuchUpload):  # an upload id belongs to its key
        bucket.upload_part("uploads/other.bin", upload_id, 1, b"x")


def test_part_numbers_and_replacing_a_part(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/n.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    for number in (0, 10001):
        with pytest.raises(oss2.exceptions.OssError) as err:
            bucket.upload_part(key, upload_id, number, b"x")
        assert (err.value.status, err.value.code) == (400, "InvalidArgument")
    assert bucket.upload_part(key, upload_id, 10000, b"x").status == 200
    first = bucket.upload_part(key, upload_id, 1, b"old" * 50000).etag
    second = bucket.upload_part(key, upload_id, 1, P1).etag  # the same number again replaces the part
    assert first != second
    assert [(p.part_number, p.size) for p in bucket.list_parts(key, upload_id).parts] == [(1, len(P1)), (10000, 1)]
    with pytest.raises(oss2.exceptions.OssError) as err:  # the replaced part's ETag no longer completes
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, first)])
    assert err.value.code == "InvalidPart"
    with pytest.raises(oss2.exceptions.OssError) as err:
        bucket.upload_part(key, upload_id, 2, b"x", headers={"Content-MD5": "SIoXtnv0+0sxVJ1+nldbvQ=="})
    assert (err.value.status, err.value.code) == (400, "InvalidDigest")
    bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, second),
                                                      oss2.models.PartInfo(10000, md5_hex(b"x"))])
    assert bucket.get_object(key).read() == P1 + b"x"


def test_complete_errors_leave_the_upload_usable(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/errors.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    small = bucket.upload_part(key, upload_id, 1, b"small").etag
    e2 = bucket.upload_part(key, upload_id, 2, P1).etag
    e3 = bucket.upload_part(key, upload_id, 3, P3).etag
    cases = [
        ([(2, e2), (1, small)], 400, "InvalidPartOrder"),
        ([(2, e2), (2, e2)], 400, "InvalidPartOrder"),
        ([(2, e2), (4, e3)], 400, "InvalidPart"),  # never uploaded
        ([(2, e2), (3, e2)], 400, "InvalidPart"),  # wrong ETag
        ([(1, small), (2, e2)], 400, "EntityTooSmall"),  # a part before the last is under 100 KiB
        ([], 400, "MalformedXML"),
    ]
    for parts, status, expected in cases:
        with pytest.raises(oss2.exceptions.OssError) as err:
            raw_complete(emulator, key, upload_id, parts)
        assert (err.value.status, err.value.code) == (status, expected), parts
        documented = {"InvalidPartOrder": "0042-00000209", "EntityTooSmall": "0042-00000213"}  # OSS's EC
        if expected in documented:
            assert err.value.ec == documented[expected], parts
    for body in (b"<CompleteMultipartUpload><Part>", b"<Other/>",
                 b'<!DOCTYPE x [<!ENTITY a "aaaa">]><CompleteMultipartUpload/>'):
        with pytest.raises(oss2.exceptions.OssError) as err:
            bucket._do("POST", bucket.bucket_name, key, params={"uploadId": upload_id}, data=body)
        assert (err.value.status, err.value.code) == (400, "MalformedXML")
    assert anonymous_get(emulator, key).status_code == 404  # nothing was stored
    # the small part may be the last one; the upload is still there after every refusal
    r = raw_complete(emulator, key, upload_id, [(2, f'"{e2}"'), (3, e3.lower())])  # quotes and case do not matter
    assert r.status == 200
    assert bucket.get_object(key).read() == P1 + P3
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        raw_complete(emulator, key, upload_id, [(2, e2)])


def test_complete_all_header(emulator):
    client = v2_client(emulator)
    key = "uploads/all.bin"
    init = initiate(client, key)
    upload(client, key, init.upload_id, 2, P1)
    upload(client, key, init.upload_id, 5, P3)
    done = client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=BUCKET, key=key, upload_id=init.upload_id, complete_all="yes"))
    assert done.etag == f'"{multipart_etag(P1, P3)}"'
    assert anonymous_get(emulator, key).content == P1 + P3


def test_forbid_overwrite_at_initiate_and_complete(emulator):
    bucket = oss2_bucket(emulator)
    bucket.put_object("uploads/taken.bin", b"first")
    with pytest.raises(oss2.exceptions.OssError) as err:
        bucket.init_multipart_upload("uploads/taken.bin", headers={"x-oss-forbid-overwrite": "true"})
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    # given at Initiate: checked again at Complete (the object appeared meanwhile)
    key = "uploads/race.bin"
    upload_id = bucket.init_multipart_upload(key, headers={"x-oss-forbid-overwrite": "true"}).upload_id
    etag = bucket.upload_part(key, upload_id, 1, P1).etag
    bucket.put_object(key, b"someone else")
    with pytest.raises(oss2.exceptions.OssError) as err:
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, etag)])
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    assert bucket.get_object(key).read() == b"someone else"
    assert [p.part_number for p in bucket.list_parts(key, upload_id).parts] == [1]  # still usable
    # given at Complete
    other = bucket.init_multipart_upload("uploads/taken.bin").upload_id
    etag = bucket.upload_part("uploads/taken.bin", other, 1, P1).etag
    with pytest.raises(oss2.exceptions.OssError) as err:
        bucket.complete_multipart_upload("uploads/taken.bin", other, [oss2.models.PartInfo(1, etag)],
                                         headers={"x-oss-forbid-overwrite": "true"})
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    bucket.complete_multipart_upload("uploads/taken.bin", other, [oss2.models.PartInfo(1, etag)])
    assert bucket.get_object("uploads/taken.bin").read() == P1


def test_list_multipart_uploads_prefix_delimiter_and_markers(emulator):
    client = v2_client(emulator)
    ids = {}
    for key in ("a/1.bin", "a/2.bin", "a/sub/3.bin", "b/4.bin", "a/1.bin"):
        ids.setdefault(key, []).append(initiate(client, key).upload_id)
        time.sleep(0.01)
    everything = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=BUCKET))
    assert [u.key for u in everything.uploads] == ["a/1.bin", "a/1.bin", "a/2.bin", "a/sub/3.bin", "b/4.bin"]
    assert [u.upload_id for u in everything.uploads[:2]] == ids["a/1.bin"]  # same key: oldest first
    folder = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=BUCKET, prefix="a/",
                                                                           delimiter="/"))
    assert [u.key for u in folder.uploads] == ["a/1.bin", "a/1.bin", "a/2.bin"]
    v1 = oss2_bucket(emulator).list_multipart_uploads(prefix="a/", delimiter="/")
    assert [u.key for u in v1.upload_list] == ["a/1.bin", "a/1.bin", "a/2.bin"] and v1.prefix_list == ["a/sub/"]
    page = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=BUCKET, max_uploads=2))
    assert page.is_truncated and len(page.uploads) == 2
    rest = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(
        bucket=BUCKET, key_marker=page.next_key_marker, upload_id_marker=page.next_upload_id_marker))
    assert [u.key for u in rest.uploads] == ["a/2.bin", "a/sub/3.bin", "b/4.bin"] and not rest.is_truncated
    # oss2 (V1, no encoding-type) lists the same
    assert len(list(oss2.MultipartUploadIterator(oss2_bucket(emulator)))) == 5


# --- presigned UploadPart --------------------------------------------------------------------------------
def presign_part(client, key, upload_id, number, **kwargs):
    return client.presign(oss.UploadPartRequest(bucket=BUCKET, key=key, upload_id=upload_id, part_number=number),
                          **kwargs)


def tamper(url, name, index=None):
    """``url`` with one character (the middle one, or ``index``) of query parameter ``name``'s value changed."""
    match = re.search(rf"([?&]{re.escape(name)}=)([^&]*)", url)
    value = match.group(2)
    i = len(value) // 2 if index is None else index % len(value)
    changed = value[:i] + ("0" if value[i] != "0" else "1") + value[i + 1:]
    return url[:match.start(2)] + changed + url[match.end(2):]


@pytest.mark.parametrize("account", [(AK, SK, None), (STS_AK, STS_SK, STS_TOKEN)], ids=["ak", "sts"])
def test_v4_presigned_upload_part_accepted_and_tampering_refused(emulator, account):
    client = v2_client(emulator, *account)
    init = initiate(client, KEY)
    url = presign_part(client, KEY, init.upload_id, 1, expires=datetime.timedelta(minutes=10)).url
    assert "x-oss-signature-version=OSS4-HMAC-SHA256" in url and "x-oss-expires=" in url
    for name in ("x-oss-signature", "x-oss-date", "x-oss-expires", "partNumber", "uploadId", "x-oss-credential"):
        index = {"x-oss-date": -2, "x-oss-credential": 0}.get(name)  # a second of the date; the key id
        r = requests.put(tamper(url, name, index), data=P1, timeout=10)
        assert r.status_code in (403, 404) and code(r) in ("SignatureDoesNotMatch", "NoSuchUpload",
                                                           "InvalidAccessKeyId", "AccessDenied"), (name, r.text)
        if name in ("x-oss-signature", "partNumber", "x-oss-date"):
            assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch"), name
    if account[2]:
        r = requests.put(tamper(url, "x-oss-security-token"), data=P1, timeout=10)
        assert (r.status_code, code(r)) == (403, "InvalidAccessKeyId")
    # a signed header that was not there at signing time
    r = requests.put(url, data=P1, headers={"x-oss-meta-extra": "1"}, timeout=10)
    assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch")
    assert client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key=KEY, upload_id=init.upload_id)).parts in (None, [])
    r = requests.put(url, data=P1, timeout=10)  # exactly as presigned: accepted
    assert r.status_code == 200 and r.headers["ETag"] == f'"{md5_hex(P1)}"'
    url2 = presign_part(client, KEY, init.upload_id, 2).url
    r2 = requests.put(url2, data=P3, timeout=10)
    assert r2.status_code == 200
    done = complete(client, KEY, init.upload_id, [(1, r.headers["ETag"]), (2, r2.headers["ETag"])])
    assert done.etag == f'"{multipart_etag(P1, P3)}"'


def test_v4_presigned_with_content_md5_signs_that_header(emulator):
    client = v2_client(emulator)
    init = initiate(client, "uploads/md5.bin")
    md5 = base64.b64encode(hashlib.md5(P1).digest()).decode()
    result = client.presign(oss.UploadPartRequest(bucket=BUCKET, key="uploads/md5.bin", upload_id=init.upload_id,
                                                  part_number=1, content_md5=md5))
    assert result.signed_headers == {"Content-MD5": md5}
    r = requests.put(result.url, data=P1, timeout=10)
    assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch")  # the signed header is missing
    r = requests.put(result.url, data=P1, headers=result.signed_headers, timeout=10)
    assert r.status_code == 200


def test_v4_presigned_url_expires(emulator):
    client = v2_client(emulator)
    init = initiate(client, "uploads/late.bin")
    url = presign_part(client, "uploads/late.bin", init.upload_id, 1, expires=datetime.timedelta(seconds=2)).url
    assert "x-oss-expires=1" in url
    time.sleep(2.2)
    r = requests.put(url, data=P1, timeout=10)
    assert (r.status_code, code(r)) == (403, "AccessDenied") and "Request has expired" in r.text
    assert "<Expires>" in r.text and "<ServerTime>" in r.text
    # a URL claiming more than 7 days is refused outright
    r = requests.put(re.sub(r"x-oss-expires=\d+", "x-oss-expires=604801", url), data=P1, timeout=10)
    assert r.status_code == 400


def test_v1_presigned_upload_part(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/照片 v1.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    url = bucket.sign_url("PUT", key, 600, params={"partNumber": "1", "uploadId": upload_id})
    assert "OSSAccessKeyId=" in url and "Signature=" in url
    r = requests.put(tamper(url, "Signature"), data=P1, timeout=10)
    assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch")
    r = requests.put(tamper(url, "Expires", -1), data=P1, timeout=10)
    assert (r.status_code, code(r)) == (403, "SignatureDoesNotMatch")
    r = requests.put(url, data=P1, timeout=10)
    assert r.status_code == 200 and r.headers["ETag"] == f'"{md5_hex(P1)}"'
    sts = oss2.Bucket(oss2.StsAuth(STS_AK, STS_SK, STS_TOKEN), emulator.url, BUCKET)
    url = sts.sign_url("PUT", key, 600, params={"partNumber": "2", "uploadId": upload_id})
    assert "security-token=" in url
    assert requests.put(url, data=P3, timeout=10).status_code == 200
    expired = bucket.sign_url("PUT", key, -10, params={"partNumber": "3", "uploadId": upload_id})
    r = requests.put(expired, data=P3, timeout=10)
    assert (r.status_code, code(r)) == (403, "AccessDenied") and "Request has expired" in r.text
    # a presigned URL and an Authorization header together are refused
    r = requests.put(url, data=P3, headers={"Authorization": f"OSS {AK}:x"}, timeout=10)
    assert r.status_code == 400
    assert [p.part_number for p in bucket.list_parts(key, upload_id).parts] == [1, 2]


def test_browser_can_put_parts_and_read_the_etag(emulator):
    """CORS: the page's origin may PUT a part (preflight) and read ETag from the answer."""
    client = v2_client(emulator)
    init = initiate(client, "uploads/cors.bin")
    url = presign_part(client, "uploads/cors.bin", init.upload_id, 1).url
    origin = "https://app.example.com"
    pre = requests.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "PUT",
                                         "Access-Control-Request-Headers": "content-type"}, timeout=5)
    assert pre.status_code == 200 and pre.headers["Access-Control-Allow-Origin"] == origin
    assert "PUT" in pre.headers["Access-Control-Allow-Methods"]
    r = requests.put(url, data=P1, headers={"Origin": origin}, timeout=10)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == origin
    assert "ETag" in [h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")]
    other = requests.options(url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
                             timeout=5)
    assert other.status_code == 403


def test_64_mib_part_is_streamed_not_held_in_memory(emulator):
    size, chunk = 64 << 20, bytes(range(256)) * 4096  # 1 MiB, generated on the fly
    client = v2_client(emulator)
    init = initiate(client, "uploads/big.bin")
    url = presign_part(client, "uploads/big.bin", init.upload_id, 1).url
    md5 = hashlib.md5()

    class Body:
        def __init__(self):
            self.left = size

        def __len__(self):
            return size

        def read(self, n=-1):
            if self.left <= 0:
                return b""
            self.left -= len(chunk)
            md5.update(chunk)
            return chunk

    gc.collect()
    tracemalloc.start()
    try:
        r = requests.put(url, data=Body(), headers={"Content-Length": str(size)}, timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200 and r.headers["ETag"] == f'"{md5.hexdigest().upper()}"'
    assert peak < 24 << 20, f"peak traced memory {peak >> 20} MiB for a 64 MiB part"
    parts = client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key="uploads/big.bin", upload_id=init.upload_id))
    assert parts.parts[0].size == size
    # Complete concatenates on disk too
    tracemalloc.start()
    try:
        done = complete(client, "uploads/big.bin", init.upload_id, [(1, r.headers["ETag"])])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done.etag == f'"{hashlib.md5(md5.digest()).hexdigest().upper()}-1"'
    assert peak < 24 << 20
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="uploads/big.bin"))
    assert head.content_length == size


# --- Complete with the upload callback ---------------------------------------------------------------------
def _callback(url, body, body_type="application/json"):
    conf = {"callbackUrl": url, "callbackBody": body, "callbackBodyType": body_type}
    return base64.b64encode(json.dumps(conf).encode()).decode()


def test_complete_with_callback_answers_the_callbacks_json(emulator):
    server = CallbackServer()
    try:
        client = v2_client(emulator)
        key = "uploads/cb.bin"
        init = initiate(client, key, content_type="image/png")
        e1 = upload(client, key, init.upload_id, 1, P1).etag
        e2 = upload(client, key, init.upload_id, 2, P3).etag
        body = ('{"bucket":${bucket},"object":${object},"etag":${etag},"size":${size},"mime":${mimeType},'
                '"op":${operation},"who":${x:user}}')
        var = base64.b64encode(json.dumps({"x:user": "ann"}).encode()).decode()
        done = complete(client, key, init.upload_id, [(1, e1), (2, e2)],
                        callback=_callback(server.url + "/cb?a=1", body), callback_var=var)
        assert done.status_code == 200
        assert json.loads(done.callback_result) == {"Status": "OK", "echo": len(server.requests[0][2])}
        path, headers, sent = server.requests[0]
        verify(emulator, path, headers, sent)
        assert json.loads(sent) == {"bucket": BUCKET, "object": key, "etag": multipart_etag(P1, P3),
                                    "size": len(P1 + P3), "mime": "image/png", "op": "CompleteMultipartUpload",
                                    "who": "ann"}
    finally:
        server.close()


def test_complete_with_failing_callback_is_203_and_the_object_is_kept(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/cb203.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    etag = bucket.upload_part(key, upload_id, 1, P1).etag
    headers = {"x-oss-callback": _callback("http://127.0.0.1:9/cb", "object=${object}",
                                           "application/x-www-form-urlencoded")}
    r = raw_complete(emulator, key, upload_id, [(1, etag)], headers=headers)
    body = r.read().decode()
    assert r.status == 203 and "<Code>CallbackFailed</Code>" in body
    assert r.headers["ETag"] == f'"{multipart_etag(P1)}"'
    assert bucket.get_object(key).read() == P1
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)
    # a malformed callback is refused before anything is stored, and the upload stays
    other = bucket.init_multipart_upload("uploads/cbbad.bin").upload_id
    etag = bucket.upload_part("uploads/cbbad.bin", other, 1, P1).etag
    with pytest.raises(oss2.exceptions.OssError) as err:
        bucket.complete_multipart_upload("uploads/cbbad.bin", other, [oss2.models.PartInfo(1, etag)],
                                         headers={"x-oss-callback": "%%%"})
    assert (err.value.status, err.value.code) == (400, "InvalidArgument")
    assert anonymous_get(emulator, "uploads/cbbad.bin").status_code == 404
    assert [p.part_number for p in bucket.list_parts("uploads/cbbad.bin", other).parts] == [1]


def test_a_part_cut_off_mid_body_leaves_nothing(emulator):
    import socket
    from urllib.parse import urlsplit

    client = v2_client(emulator)
    init = initiate(client, "uploads/cut.bin")
    url = urlsplit(presign_part(client, "uploads/cut.bin", init.upload_id, 1).url)
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall((f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                  f"Content-Length: {4 << 20}\r\n\r\n").encode() + b"z" * (1 << 20))
    sock.close()
    time.sleep(0.5)
    parts = client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key="uploads/cut.bin", upload_id=init.upload_id))
    assert parts.parts in (None, [])
    tmp = emulator.data_dir / "buckets" / BUCKET / "tmp"
    assert not any(tmp.iterdir()), "the cut-off part was not cleaned up"


def test_put_object_takes_the_callback_header_too(emulator):
    server = CallbackServer()
    try:
        bucket = oss2_bucket(emulator)
        var = base64.b64encode(json.dumps({"x:user": "bo"}).encode()).decode()
        result = bucket.put_object("uploads/put-cb.txt", b"hi", headers={
            "x-oss-callback": _callback(server.url + "/cb", '{"op":${operation},"who":${x:user},"size":${size}}'),
            "x-oss-callback-var": var})
        assert result.status == 200 and json.loads(result.resp.read()) == {"Status": "OK", "echo": 38}
        assert json.loads(server.requests[0][2]) == {"op": "PutObject", "who": "bo", "size": 2}
    finally:
        server.close()
