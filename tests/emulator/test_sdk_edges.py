"""The edges of issue 21's calls, over raw HTTP where the SDKs never go: several ranges, malformed ranges,
Quiet DeleteMultipleObjects, a missing or wrong Content-MD5, the bucket root for browsers vs SDKs."""

import base64
import hashlib

import oss2
import pytest
import requests
from conftest import BUCKET, oss2_bucket

DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def stored(emulator):
    bucket = oss2_bucket(emulator)
    bucket.put_object("r.bin", DATA)
    return emulator, bucket


@pytest.mark.parametrize("value,status,body", [
    ("bytes=0-9", 206, DATA[:10]),
    ("bytes=0-9,20-29", 206, DATA[:10]),        # OSS: only the first range counts
    ("bytes=1000-", 206, DATA[1000:]),
    ("bytes=-24", 206, DATA[-24:]),
    ("bytes=0-", 206, DATA),
    ("byte=0-9", 200, DATA),                    # malformed: ignored
    ("bytes=9-0", 200, DATA),
    ("bytes=0-1024", 200, DATA),                # end past the object: ignored
    ("bytes=1024-2000", 200, DATA),
    ("bytes=-2000", 200, DATA),
    ("bytes=x-y", 200, DATA),
])
def test_range_rules(stored, value, status, body):
    emulator, _ = stored
    r = requests.get(f"{emulator.bucket_url}/r.bin", headers={"Range": value}, timeout=10)
    assert (r.status_code, r.content) == (status, body)
    assert ("Content-Range" in r.headers) == (status == 206)
    if status == 206:
        assert r.headers["Content-Range"].endswith("/1024") and int(r.headers["Content-Length"]) == len(body)


def test_standard_range_behaviour_clips_and_refuses(stored):
    emulator, _ = stored
    url = f"{emulator.bucket_url}/r.bin"
    r = requests.get(url, headers={"Range": "bytes=1000-5000", "x-oss-range-behavior": "standard"}, timeout=10)
    assert (r.status_code, r.content, r.headers["Content-Range"]) == (206, DATA[1000:], "bytes 1000-1023/1024")
    r = requests.get(url, headers={"Range": "bytes=1024-", "x-oss-range-behavior": "standard"}, timeout=10)
    assert r.status_code == 416 and "<Code>InvalidRange</Code>" in r.text and r.headers["x-oss-ec"]


def _delete_body(keys, quiet):
    objects = "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
    return f"<Delete><Quiet>{str(quiet).lower()}</Quiet>{objects}</Delete>".encode()


def test_delete_multiple_quiet_and_content_md5(stored):
    emulator, bucket = stored
    bucket.put_object("q1", b"x")
    body = _delete_body(["q1"], quiet=True)
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket._do("POST", BUCKET, "", params={"delete": ""}, data=body)
    assert (refused.value.status, refused.value.code) == (400, "MissingArgument")
    with pytest.raises(oss2.exceptions.OssError) as wrong:
        bucket._do("POST", BUCKET, "", params={"delete": ""}, data=body,
                   headers={"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})
    assert (wrong.value.status, wrong.value.code) == (400, "InvalidDigest")
    assert bucket.object_exists("q1")
    quiet = bucket._do("POST", BUCKET, "", params={"delete": ""}, data=body, headers={"Content-MD5": md5})
    assert quiet.status == 200 and b"<Deleted>" not in quiet.read() and not bucket.object_exists("q1")


def test_bucket_root_is_the_index_for_a_browser_and_a_listing_for_sdks(stored):
    emulator, bucket = stored
    bucket.put_object("index.html", b"<h1>page</h1>", headers={"Content-Type": "text/html"})
    page = requests.get(f"{emulator.bucket_url}/", timeout=10)
    assert page.status_code == 200 and page.content == b"<h1>page</h1>"  # the website index document
    listed = bucket.list_objects()
    assert sorted(o.key for o in listed.object_list) == ["index.html", "r.bin"]
    anonymous_list = requests.get(f"{emulator.bucket_url}/?prefix=&max-keys=10", timeout=10)
    assert anonymous_list.status_code == 403 and "<Code>AccessDenied</Code>" in anonymous_list.text


def test_bad_tags_and_encryption_are_refused(stored):
    _, bucket = stored
    too_many = "&".join(f"k{i}=v" for i in range(11))
    for headers, code in (({"x-oss-tagging": too_many}, "BadRequest"),
                          ({"x-oss-tagging": "k" * 129 + "=v"}, "InvalidTag"),
                          ({"x-oss-server-side-encryption": "DES"}, "InvalidEncryptionAlgorithmError")):
        with pytest.raises(oss2.exceptions.OssError) as refused:
            bucket.put_object("bad.txt", b"x", headers=headers)
        assert (refused.value.status, refused.value.code) == (400, code)
    assert not bucket.object_exists("bad.txt")
