"""oss2 (the official V1 Python SDK), signing V1 and V4, with CRC-64 checks on, through every call users'
own code makes against the emulator (issue 21). Real SDK, real HTTP on loopback."""

import http.client
import os
import time
import urllib.parse

import oss2
import pytest
import requests
from conftest import AK, BUCKET, REGION, SK

DATA = os.urandom(300 * 1024 + 7)  # three parts of 100 KiB (the emulator's minimum) and a bit


@pytest.fixture(params=["v1", "v4"])
def bucket(request, emulator):
    if request.param == "v1":
        auth = oss2.Auth(AK, SK)
    else:
        auth = oss2.AuthV4(AK, SK)
    return oss2.Bucket(auth, emulator.url, BUCKET, enable_crc=True, region=REGION, connect_timeout=10)


def test_put_get_head_copy_and_delete(bucket):
    result = bucket.put_object("a/b.bin", DATA, headers={"Content-Type": "application/x-test",
                                                        "x-oss-meta-owner": "alice"})
    assert result.status == 200 and result.crc is not None
    got = bucket.get_object("a/b.bin")
    assert got.read() == DATA and got.content_type == "application/x-test"  # CRC checked by oss2 on read
    assert "Content-Disposition" not in got.headers  # only what was stored
    head = bucket.head_object("a/b.bin")
    assert head.content_length == len(DATA) and head.headers["x-oss-meta-owner"] == "alice"
    bucket.copy_object(BUCKET, "a/b.bin", "a/copy.bin")
    assert bucket.get_object("a/copy.bin").read() == DATA
    bucket.delete_object("a/copy.bin")
    assert not bucket.object_exists("a/copy.bin")


def test_range_and_resumable_download(bucket, tmp_path):
    bucket.put_object("big.bin", DATA)
    part = bucket.get_object("big.bin", byte_range=(10, 19))
    assert part.status == 206 and part.read() == DATA[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(DATA)}"
    assert bucket.get_object("big.bin", byte_range=(len(DATA) - 5, None)).read() == DATA[-5:]
    assert bucket.get_object("big.bin", byte_range=(None, 7)).read() == DATA[-7:]
    # OSS ignores a range outside the object: 200, the whole body
    whole = bucket.get_object("big.bin", byte_range=(len(DATA), len(DATA) + 10))
    assert whole.status == 200 and whole.read() == DATA
    target = tmp_path / "down.bin"
    oss2.resumable_download(bucket, "big.bin", str(target), multiget_threshold=64 * 1024, part_size=64 * 1024,
                            num_threads=2, store=oss2.ResumableDownloadStore(root=str(tmp_path)))
    assert target.read_bytes() == DATA


def test_resumable_upload_is_multipart_with_crc(bucket, tmp_path):
    source = tmp_path / "up.bin"
    source.write_bytes(DATA)
    oss2.resumable_upload(bucket, "up.bin", str(source), multipart_threshold=100 * 1024, part_size=100 * 1024,
                          num_threads=2, store=oss2.ResumableStore(root=str(tmp_path)))
    head = bucket.head_object("up.bin")
    assert head.object_type == "Multipart" and bucket.get_object("up.bin").read() == DATA


def test_list_objects_v1_and_v2_page_and_roll_up(bucket):
    keys = ["d/1.txt", "d/2.txt", "d/sub/3.txt", "e/4.txt", "top.txt", "ctl\x01key", "line\nkey"]
    for key in keys:
        bucket.put_object(key, b"x")
    assert sorted(o.key for o in oss2.ObjectIterator(bucket, max_keys=2)) == sorted(keys)
    assert sorted(o.key for o in oss2.ObjectIteratorV2(bucket, max_keys=2)) == sorted(keys)
    listed = bucket.list_objects(prefix="d/", delimiter="/", max_keys=10)
    assert [o.key for o in listed.object_list] == ["d/1.txt", "d/2.txt"] and listed.prefix_list == ["d/sub/"]
    page = bucket.list_objects(max_keys=2)
    assert page.is_truncated and page.next_marker == page.object_list[-1].key
    rolled = [p for p in oss2.ObjectIterator(bucket, delimiter="/", max_keys=1)]
    assert [p.key for p in rolled if p.is_prefix()] == ["d/", "e/"]


def test_keys_with_control_characters_round_trip(bucket):
    for key in ("a\x01b", "new\nline", "cr\rkey"):
        bucket.put_object(key, key.encode())
        assert bucket.get_object(key).read() == key.encode()
        assert bucket.head_object(key).content_length == len(key)


def test_presigned_urls_and_response_overrides(bucket):
    bucket.put_object("p.txt", b"presigned", headers={"Content-Type": "text/plain"})
    url = bucket.sign_url("GET", "p.txt", 60, params={"response-content-type": "application/json",
                                                      "response-content-disposition": 'attachment; filename="x.json"',
                                                      "response-cache-control": "no-store",
                                                      "response-content-language": "de",
                                                      "response-expires": "Thu, 01 Jan 2037 00:00:00 GMT",
                                                      "response-content-encoding": "identity"})
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == b"presigned"
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Content-Disposition"] == 'attachment; filename="x.json"'
    assert (r.headers["Cache-Control"], r.headers["Content-Language"]) == ("no-store", "de")
    assert r.headers["Expires"] == "Thu, 01 Jan 2037 00:00:00 GMT" and r.headers["Content-Encoding"] == "identity"
    put_url = bucket.sign_url("PUT", "p2.txt", 60)
    assert requests.put(put_url, data=b"up", timeout=10).status_code == 200
    assert bucket.get_object("p2.txt").read() == b"up"


def test_conditional_get_and_head(bucket):
    etag = bucket.put_object("c.txt", b"cond").etag
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    earlier = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 3600))
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c.txt", headers={"If-None-Match": f'"{etag}"'})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c.txt", headers={"If-Modified-Since": later})
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("c.txt", headers={"If-Match": '"0000"'})
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("c.txt", headers={"If-Unmodified-Since": earlier})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.head_object("c.txt", headers={"If-None-Match": f'"{etag}"'})
    assert bucket.get_object("c.txt", headers={"If-Match": f'"{etag}"', "If-Modified-Since": earlier}).read() == b"cond"


def test_delete_multiple_objects(bucket):
    for key in ("m/1", "m/2", "m/3"):
        bucket.put_object(key, b"x")
    result = bucket.batch_delete_objects(["m/1", "m/2", "missing"])
    assert sorted(result.deleted_keys) == ["m/1", "m/2", "missing"]
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="m/")] == ["m/3"]


def test_append_object(bucket):
    first = bucket.append_object("log.txt", 0, b"one,", init_crc=0)
    second = bucket.append_object("log.txt", first.next_position, b"two", init_crc=first.crc)
    assert second.next_position == 7 and bucket.get_object("log.txt").read() == b"one,two"
    assert bucket.head_object("log.txt").object_type == "Appendable"
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as wrong:
        bucket.append_object("log.txt", 3, b"x")
    assert wrong.value.headers["x-oss-next-append-position"] == "7"
    bucket.put_object("normal.txt", b"n")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        bucket.append_object("normal.txt", 1, b"x")


def test_object_tagging(bucket):
    bucket.put_object("t.txt", b"x", headers={"x-oss-tagging": "team=a&env=dev%20box"})
    assert bucket.get_object_tagging("t.txt").tag_set.tagging_rule == {"team": "a", "env": "dev box"}
    assert bucket.head_object("t.txt").headers["x-oss-tagging-count"] == "2"
    rule = oss2.models.TaggingRule()
    rule.add("k", "v")
    bucket.put_object_tagging("t.txt", oss2.models.Tagging(rule))
    assert bucket.get_object_tagging("t.txt").tag_set.tagging_rule == {"k": "v"}
    bucket.delete_object_tagging("t.txt")
    assert bucket.get_object_tagging("t.txt").tag_set.tagging_rule == {}


def test_upload_part_copy(bucket):
    bucket.put_object("src.bin", DATA)
    upload_id = bucket.init_multipart_upload("dst.bin").upload_id
    first = bucket.upload_part_copy(BUCKET, "src.bin", (0, 200 * 1024 - 1), "dst.bin", upload_id, 1)
    second = bucket.upload_part_copy(BUCKET, "src.bin", (200 * 1024, len(DATA) - 1), "dst.bin", upload_id, 2)
    bucket.complete_multipart_upload("dst.bin", upload_id, [oss2.models.PartInfo(1, first.etag),
                                                            oss2.models.PartInfo(2, second.etag)])
    assert bucket.get_object("dst.bin").read() == DATA


def test_server_side_encryption_headers_are_echoed(bucket):
    put = bucket.put_object("sse.txt", b"x", headers={"x-oss-server-side-encryption": "AES256"})
    assert put.headers["x-oss-server-side-encryption"] == "AES256"
    assert bucket.head_object("sse.txt").headers["x-oss-server-side-encryption"] == "AES256"
    with pytest.raises(oss2.exceptions.OssError) as bad:
        bucket.put_object("sse2.txt", b"x", headers={"x-oss-server-side-encryption": "ROT13"})
    assert bad.value.status == 400 and bad.value.code == "InvalidEncryptionAlgorithmError"


def test_one_server_header_and_an_error_code_on_every_error(emulator, bucket):
    bucket.put_object("s.txt", b"x")
    parts = urllib.parse.urlsplit(emulator.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", f"/{BUCKET}/s.txt")
    response = conn.getresponse()
    response.read()
    assert response.msg.get_all("Server") == ["AliyunOSS"]
    conn.close()
    with pytest.raises(oss2.exceptions.NoSuchKey) as missing:
        bucket.get_object("nope.txt")
    assert missing.value.ec  # x-oss-ec, as OSS fills it


def test_operations_the_emulator_lacks_answer_501_naming_them(bucket):
    bucket.put_object("s.txt", b"x")
    for call, operation in ((bucket.get_bucket_info, "GetBucketInfo"),
                            (lambda: bucket.put_symlink("s.txt", "link"), "PutSymlink"),
                            (lambda: bucket.restore_object("s.txt"), "RestoreObject")):
        with pytest.raises(oss2.exceptions.OssError) as refused:
            call()
        error = refused.value
        assert (error.status, error.code) == (501, "NotImplemented") and operation in error.message, error.message
        assert error.ec


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_sts_auth_and_a_localhost_endpoint_as_documented(emulator, version):
    """docs/local-development.md: StsAuth (V1 or V4); http://localhost:PORT is path-style in oss2 too."""
    from conftest import STS_AK, STS_SK, STS_TOKEN

    auth = oss2.StsAuth(STS_AK, STS_SK, STS_TOKEN, auth_version=version)
    path_style = oss2.Bucket(auth, emulator.url.replace("127.0.0.1", "localhost"), BUCKET, region=REGION)
    path_style.put_object("ps.txt", b"path style")
    assert path_style.get_object("ps.txt").read() == b"path style"
    assert [o.key for o in oss2.ObjectIterator(path_style)] == ["ps.txt"]
