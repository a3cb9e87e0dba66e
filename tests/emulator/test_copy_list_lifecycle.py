"""CopyObject, ListObjectsV2, PutObjectAcl and bucket lifecycle, with both official SDKs as oracles
(oss2: header signature V1; alibabacloud-oss-v2: V4): they build and sign the requests and parse the
answers, so what the emulator accepts and answers is what they send and expect from OSS."""

import hashlib
import json
import time

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests
from conftest import AK, BUCKET, REGION, SK, oss2_bucket, v2_client

from emulator import EmulatorConfig, serve

ODD_KEYS = ["uploads/a b+c.png", "uploads/日本語 <&>.png", "uploads/x%41.png", "uploads/ctl\x01.png",
            "uploads/q?.png", "uploads/sub/one.txt", "uploads/sub/two.txt", "uploads/sub/deeper/three.txt",
            "uploads/z.txt", "other/a.txt", "uploads/", "uploads/sub.txt"]


def _status_code(exc):
    return exc.status, exc.code


# --- CopyObject ------------------------------------------------------------------------------------
def test_copy_copies_data_type_and_metadata_not_acl(emulator):
    bucket = oss2_bucket(emulator)
    data = b"\x89PNG" + bytes(range(256)) * 50
    bucket.put_object("uploads/源 file+1.png", data, headers={
        "Content-Type": "image/png", "Cache-Control": "no-cache", "Content-Disposition": 'inline; filename="a.png"',
        "x-oss-meta-upload-id": "u1", "x-oss-meta-filename": "a.png", "x-oss-object-acl": "public-read"})
    result = bucket.copy_object(BUCKET, "uploads/源 file+1.png", "quarantine/uploads/源 file+1.png",
                                headers={"x-oss-object-acl": "private", "x-oss-meta-ignored": "x"})
    assert result.status == 200 and result.etag == hashlib.md5(data).hexdigest().upper()
    copied = bucket.get_object("quarantine/uploads/源 file+1.png")
    assert copied.read() == data
    assert copied.headers["Content-Type"] == "image/png" and copied.headers["Cache-Control"] == "no-cache"
    assert copied.headers["Content-Disposition"] == 'inline; filename="a.png"'
    assert copied.headers["x-oss-meta-upload-id"] == "u1" and "x-oss-meta-ignored" not in copied.headers
    assert bucket.get_object_acl("quarantine/uploads/源 file+1.png").acl == "private"
    # private: anonymous readers are refused; the source stays public-read
    quoted = requests.utils.quote("quarantine/uploads/源 file+1.png")
    assert requests.get(f"{emulator.bucket_url}/{quoted}", timeout=5).status_code == 403
    assert bucket.get_object_acl("uploads/源 file+1.png").acl == "public-read"
    # without x-oss-object-acl the copy gets the default ACL (the ACL is not metadata: it is not copied)
    bucket.copy_object(BUCKET, "uploads/源 file+1.png", "copies/plain.png")
    assert bucket.get_object_acl("copies/plain.png").acl == "default"


def test_copy_replace_takes_metadata_from_the_request(emulator):
    bucket = oss2_bucket(emulator)
    bucket.put_object("a.txt", b"hello", headers={"Content-Type": "text/plain", "x-oss-meta-old": "1",
                                                   "Cache-Control": "max-age=60"})
    bucket.copy_object(BUCKET, "a.txt", "b.bin", headers={"x-oss-metadata-directive": "REPLACE",
                                                          "Content-Type": "application/x-thing",
                                                          "x-oss-meta-new": "2"})
    head = bucket.head_object("b.bin")
    assert head.content_type == "application/x-thing" and head.headers["x-oss-meta-new"] == "2"
    assert "x-oss-meta-old" not in head.headers and "Cache-Control" not in head.headers
    # copy onto itself with REPLACE: the way to change an object's metadata
    bucket.copy_object(BUCKET, "a.txt", "a.txt", headers={"x-oss-metadata-directive": "REPLACE",
                                                          "Content-Type": "text/markdown"})
    assert bucket.head_object("a.txt").content_type == "text/markdown"
    assert bucket.get_object("a.txt").read() == b"hello"


def test_copy_errors_as_oss(emulator):
    bucket = oss2_bucket(emulator)
    bucket.put_object("src.txt", b"data")
    bucket.put_object("taken.txt", b"old")
    with pytest.raises(oss2.exceptions.NoSuchKey) as missing:
        bucket.copy_object(BUCKET, "nope.txt", "dst.txt")
    assert _status_code(missing.value) == (404, "NoSuchKey")
    with pytest.raises(oss2.exceptions.ServerError) as exists:
        bucket.copy_object(BUCKET, "src.txt", "taken.txt", headers={"x-oss-forbid-overwrite": "true"})
    assert _status_code(exists.value) == (409, "FileAlreadyExists")
    assert bucket.get_object("taken.txt").read() == b"old"
    bucket.copy_object(BUCKET, "src.txt", "taken.txt", headers={"x-oss-forbid-overwrite": "false"})
    assert bucket.get_object("taken.txt").read() == b"data"
    with pytest.raises(oss2.exceptions.ServerError) as no_bucket:
        bucket.copy_object("no-such-bucket", "src.txt", "dst.txt")
    assert _status_code(no_bucket.value) == (404, "NoSuchBucket")
    for headers, code in [({"x-oss-metadata-directive": "MERGE"}, "InvalidArgument"),
                          ({"x-oss-object-acl": "world-writable"}, "InvalidArgument")]:
        with pytest.raises(oss2.exceptions.ServerError) as bad:
            bucket.copy_object(BUCKET, "src.txt", "dst.txt", headers=headers)
        assert _status_code(bad.value) == (400, code)
    with pytest.raises(oss2.exceptions.ServerError) as bad_source:
        bucket.put_object("dst.txt", b"", headers={"x-oss-copy-source": "src.txt"})
    assert _status_code(bad_source.value) == (400, "InvalidArgument")
    assert "/sourcebucket/sourcekey" in bad_source.value.message
    with pytest.raises(oss2.exceptions.ServerError) as precondition:
        bucket.copy_object(BUCKET, "src.txt", "dst.txt", headers={"x-oss-copy-source-if-match": '"0000"'})
    assert _status_code(precondition.value) == (412, "PreconditionFailed")
    assert not bucket.object_exists("dst.txt")
    # anonymous: refused before anything is read
    r = requests.put(f"{emulator.bucket_url}/dst.txt", headers={"x-oss-copy-source": f"/{BUCKET}/src.txt"},
                     timeout=5)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    # a bad signature: refused
    wrong = oss2.Bucket(oss2.Auth(AK, "wrong-secret"), emulator.url, BUCKET)
    with pytest.raises(oss2.exceptions.ServerError) as forged:
        wrong.copy_object(BUCKET, "src.txt", "dst.txt")
    assert _status_code(forged.value) == (403, "SignatureDoesNotMatch")


def test_copy_with_the_v2_sdk(emulator):
    client = v2_client(emulator)
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key="uploads/日本 a+b.png", body=b"png-bytes",
                                           content_type="image/png", metadata={"upload-id": "v2"}))
    result = client.copy_object(oss.CopyObjectRequest(bucket=BUCKET, key="quarantine/uploads/日本 a+b.png",
                                                      source_key="uploads/日本 a+b.png", acl="private",
                                                      forbid_overwrite=True))
    assert result.status_code == 200 and result.etag == f'"{hashlib.md5(b"png-bytes").hexdigest().upper()}"'
    assert result.hash_crc64
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="quarantine/uploads/日本 a+b.png"))
    assert got.body.read() == b"png-bytes" and got.metadata == {"upload-id": "v2"}
    assert got.content_type == "image/png"
    with pytest.raises(oss.exceptions.OperationError) as exists:
        client.copy_object(oss.CopyObjectRequest(bucket=BUCKET, key="quarantine/uploads/日本 a+b.png",
                                                 source_key="uploads/日本 a+b.png", forbid_overwrite=True))
    assert (exists.value.unwrap().status_code, exists.value.unwrap().code) == (409, "FileAlreadyExists")
    replaced = client.copy_object(oss.CopyObjectRequest(bucket=BUCKET, key="r.txt", source_key="uploads/日本 a+b.png",
                                                        metadata_directive="REPLACE", content_type="text/plain",
                                                        metadata={"k": "v"}))
    assert replaced.status_code == 200
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="r.txt"))
    assert head.content_type == "text/plain" and head.metadata == {"k": "v"}


# --- ListObjectsV2 -----------------------------------------------------------------------------------
@pytest.fixture
def listed(emulator):
    bucket = oss2_bucket(emulator)
    keys = ODD_KEYS + [f"uploads/n{i:03d}.txt" for i in range(40)]
    for key in keys:
        bucket.put_object(key, key.encode("utf-8"))
    return bucket, sorted(keys, key=lambda k: k.encode("utf-8"))


def _rollup(keys, prefix, delimiter):
    """What a listing should hold: [(key or common prefix, is it a common prefix)], in order."""
    out = []
    for key in keys:
        if not key.startswith(prefix):
            continue
        at = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = (key[:at + len(delimiter)], True) if at >= 0 else (key, False)
        if not out or out[-1] != entry:
            out.append(entry)
    return out


@pytest.mark.parametrize("prefix,delimiter,max_keys", [("", "", 7), ("uploads/", "", 100), ("uploads/", "/", 5),
                                                       ("uploads/sub", "/", 1), ("", "/", 2), ("none/", "", 10)])
def test_oss2_iterator_v2_pages_through_everything(listed, prefix, delimiter, max_keys):
    bucket, keys = listed
    seen = [(o.key, o.is_prefix()) for o in oss2.ObjectIteratorV2(bucket, prefix=prefix, delimiter=delimiter,
                                                                  max_keys=max_keys)]
    expected = _rollup(keys, prefix, delimiter)
    # oss2 yields each page's keys, then its common prefixes: the same entries, each exactly once
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)


def test_oss2_list_objects_v2_fields(listed):
    bucket, keys = listed
    first = bucket.list_objects_v2(prefix="uploads/", max_keys=3, fetch_owner=True)
    assert first.is_truncated and first.next_continuation_token
    assert [o.key for o in first.object_list] == [k for k in keys if k.startswith("uploads/")][:3]
    obj = first.object_list[0]
    assert obj.etag == hashlib.md5(obj.key.encode()).hexdigest().upper() and obj.size == len(obj.key.encode())
    assert obj.type == "Normal" and obj.storage_class == "Standard" and obj.owner.id
    assert abs(obj.last_modified - time.time()) < 120
    second = bucket.list_objects_v2(prefix="uploads/", max_keys=3, continuation_token=first.next_continuation_token)
    assert [o.key for o in second.object_list] == [k for k in keys if k.startswith("uploads/")][3:6]
    assert second.object_list[0].owner is None  # fetch-owner off
    after = bucket.list_objects_v2(start_after="uploads/sub/", max_keys=1000)
    assert [o.key for o in after.object_list] == [k for k in keys if k > "uploads/sub/"]
    dirs = bucket.list_objects_v2(prefix="uploads/", delimiter="/", max_keys=1000)
    assert dirs.prefix_list == ["uploads/sub/"] and "uploads/sub/one.txt" not in [o.key for o in dirs.object_list]
    assert "uploads/" in [o.key for o in dirs.object_list]  # the "folder" object itself is a key


def test_v2_sdk_paginator(listed, emulator):
    _, keys = listed
    client = v2_client(emulator)
    paginator = client.list_objects_v2_paginator()
    pages = list(paginator.iter_page(oss.ListObjectsV2Request(bucket=BUCKET, prefix="uploads/"), limit=9))
    got = [o.key for p in pages for o in (p.contents or [])]
    assert got == [k for k in keys if k.startswith("uploads/")]
    assert all(p.key_count == len(p.contents or []) for p in pages) and len(pages) == -(-len(got) // 9)
    assert pages[0].encoding_type == "url" and pages[0].name == BUCKET and pages[0].max_keys == 9
    assert pages[1].continuation_token == pages[0].next_continuation_token
    rolled = list(paginator.iter_page(oss.ListObjectsV2Request(bucket=BUCKET, delimiter="/", fetch_owner=True),
                                      limit=1))
    assert [(p.contents or [None])[0] and p.contents[0].key for p in rolled] == [None, None]
    assert [p.common_prefixes[0].prefix for p in rolled] == ["other/", "uploads/"]
    assert all(p.key_count == 1 for p in rolled)


def test_list_url_encoding_and_errors(listed, emulator):
    bucket, _ = listed
    raw = bucket.list_objects_v2(prefix="uploads/ctl", encoding_type="url")
    assert [o.key for o in raw.object_list] == ["uploads/ctl\x01.png"]  # survives XML thanks to url encoding
    r = requests.get(emulator.bucket_url, params={"list-type": "2"}, timeout=5)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text  # signed only
    for params, name in [({"max-keys": "0"}, "max-keys"), ({"max-keys": "1001"}, "max-keys"),
                         ({"encoding-type": "base64"}, "encoding-type"),
                         ({"continuation-token": "!!not-a-token"}, "continuation-token")]:
        with pytest.raises(oss2.exceptions.ServerError) as bad:
            bucket.list_objects_v2(**{{"max-keys": "max_keys", "encoding-type": "encoding_type",
                                       "continuation-token": "continuation_token"}[name]: list(params.values())[0]})
        assert _status_code(bad.value) == (400, "InvalidArgument"), name


# --- PutObjectAcl ------------------------------------------------------------------------------------
def test_put_object_acl_with_both_sdks(emulator):
    bucket = oss2_bucket(emulator)
    bucket.put_object("p.txt", b"x")
    assert requests.get(f"{emulator.bucket_url}/p.txt", timeout=5).status_code == 200
    bucket.put_object_acl("p.txt", oss2.OBJECT_ACL_PRIVATE)
    assert bucket.get_object_acl("p.txt").acl == "private"
    assert requests.get(f"{emulator.bucket_url}/p.txt", timeout=5).status_code == 403
    client = v2_client(emulator)
    client.put_object_acl(oss.PutObjectAclRequest(bucket=BUCKET, key="p.txt", acl="public-read"))
    assert client.get_object_acl(oss.GetObjectAclRequest(bucket=BUCKET, key="p.txt")).acl == "public-read"
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.put_object_acl("missing.txt", oss2.OBJECT_ACL_PRIVATE)
    with pytest.raises(oss2.exceptions.ServerError) as bad:
        bucket.put_object_acl("p.txt", "everyone")
    assert _status_code(bad.value) == (400, "InvalidArgument")
    r = requests.put(f"{emulator.bucket_url}/p.txt?acl", headers={"x-oss-object-acl": "private"}, timeout=5)
    assert r.status_code == 403


# --- lifecycle -----------------------------------------------------------------------------------------
def test_lifecycle_round_trips_with_oss2(emulator):
    from oss2.models import AbortMultipartUpload, BucketLifecycle, LifecycleExpiration, LifecycleRule

    bucket = oss2_bucket(emulator)
    with pytest.raises(oss2.exceptions.NoSuchLifecycle):
        bucket.get_bucket_lifecycle()
    rules = [LifecycleRule("abort-stale-multipart", "uploads/", status=LifecycleRule.ENABLED,
                           abort_multipart_upload=AbortMultipartUpload(days=3)),
             LifecycleRule("expire-quarantine", "quarantine/", status=LifecycleRule.DISABLED,
                           expiration=LifecycleExpiration(days=30))]
    assert bucket.put_bucket_lifecycle(BucketLifecycle(rules)).status == 200
    got = bucket.get_bucket_lifecycle().rules
    assert [(r.id, r.prefix, r.status) for r in got] == [("abort-stale-multipart", "uploads/", "Enabled"),
                                                         ("expire-quarantine", "quarantine/", "Disabled")]
    assert got[0].abort_multipart_upload.days == 3 and got[0].expiration is None
    assert got[1].expiration.days == 30 and got[1].abort_multipart_upload is None
    # a put replaces every rule
    bucket.put_bucket_lifecycle(BucketLifecycle([LifecycleRule("only", "", status="Enabled",
                                                               abort_multipart_upload=AbortMultipartUpload(days=1))]))
    assert [r.id for r in bucket.get_bucket_lifecycle().rules] == ["only"]
    bucket.delete_bucket_lifecycle()
    with pytest.raises(oss2.exceptions.NoSuchLifecycle) as gone:
        bucket.get_bucket_lifecycle()
    assert _status_code(gone.value) == (404, "NoSuchLifecycle")


def test_lifecycle_with_the_v2_sdk_and_refusals(emulator):
    client = v2_client(emulator)
    rule = oss.LifecycleRule(id="abort", prefix="uploads/", status="Enabled",
                             abort_multipart_upload=oss.LifecycleRuleAbortMultipartUpload(days=2))
    client.put_bucket_lifecycle(oss.PutBucketLifecycleRequest(
        bucket=BUCKET, lifecycle_configuration=oss.LifecycleConfiguration(rules=[rule])))
    got = client.get_bucket_lifecycle(oss.GetBucketLifecycleRequest(bucket=BUCKET)).lifecycle_configuration.rules
    assert (got[0].id, got[0].prefix, got[0].status, got[0].abort_multipart_upload.days) == ("abort", "uploads/",
                                                                                             "Enabled", 2)
    bucket = oss2_bucket(emulator)
    for body, code in [(b"<LifecycleConfiguration><Rule><ID>a</ID><Prefix/><Status>On</Status>"
                        b"<Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>", "MalformedXML"),
                       (b"<LifecycleConfiguration><Rule><ID>a</ID><Prefix/><Status>Enabled</Status></Rule>"
                        b"</LifecycleConfiguration>", "InvalidArgument"),
                       (b"<LifecycleConfiguration><Rule><ID>a</ID><Prefix/><Status>Enabled</Status><Expiration>"
                        b"<Days>0</Days></Expiration></Rule></LifecycleConfiguration>", "InvalidArgument"),
                       (b"<LifecycleConfiguration>" + b"<Rule><ID>a</ID><Prefix/><Status>Enabled</Status><Expiration>"
                        b"<Days>1</Days></Expiration></Rule>" * 2 + b"</LifecycleConfiguration>", "InvalidArgument"),
                       (b"not xml", "MalformedXML")]:
        r = _signed_put_lifecycle(emulator, body)
        assert (r.status_code, _code(r.text)) == (400, code), body
    # the stored rules are unchanged by refused puts
    assert len(client.get_bucket_lifecycle(oss.GetBucketLifecycleRequest(bucket=BUCKET))
               .lifecycle_configuration.rules) == 1
    assert requests.get(f"{emulator.bucket_url}/?lifecycle", timeout=5).status_code == 403


def _code(text):
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def _signed_put_lifecycle(emulator, body):
    """A V1-signed PUT ?lifecycle with an arbitrary body (oss2 only sends what its models build)."""
    import base64
    import hmac
    from email.utils import formatdate

    date = formatdate(usegmt=True)
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    to_sign = f"PUT\n{md5}\napplication/xml\n{date}\n/{BUCKET}/?lifecycle"
    sig = base64.b64encode(hmac.new(SK.encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
    return requests.put(f"{emulator.bucket_url}/?lifecycle", data=body, timeout=5, headers={
        "Date": date, "Content-MD5": md5, "Content-Type": "application/xml", "Authorization": f"OSS {AK}:{sig}"})


# --- trigger events for copies and the trigger's rule ------------------------------------------------
def test_copy_raises_an_event_and_the_trigger_rule_filters(tmp_path):
    from test_trigger_events import FunctionStub

    stub = FunctionStub()
    config = EmulatorConfig(data_dir=str(tmp_path / "emu"), buckets=[BUCKET], region=REGION, accounts={AK: (SK, None)},
                            event_targets=[stub.url], event_prefix="uploads/", event_delay=0.3,
                            event_names=["ObjectCreated:PutObject", "ObjectCreated:CopyObject"])
    with serve(config) as served:
        bucket = oss2_bucket(served)
        stored = time.monotonic()
        bucket.put_object("uploads/a.txt", b"a")
        bucket.put_object("site/index.html", b"<p>")  # outside the trigger's prefix: no event
        bucket.copy_object(BUCKET, "uploads/a.txt", "uploads/b.txt")
        bucket.copy_object(BUCKET, "uploads/a.txt", "quarantine/uploads/a.txt")  # outside: none
        assert stub.bodies == []  # not yet: the trigger fires event_delay after the object is stored
        deadline = time.monotonic() + 10
        while len(stub.bodies) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert time.monotonic() - stored >= 0.3
        time.sleep(0.3)
    events = [json.loads(body)["events"][0] for _, body in stub.bodies]
    assert [(e["eventName"], e["oss"]["object"]["key"]) for e in events] == [
        ("ObjectCreated:PutObject", "uploads/a.txt"), ("ObjectCreated:CopyObject", "uploads/b.txt")]
    assert events[1]["oss"]["object"]["eTag"] == hashlib.md5(b"a").hexdigest().upper()
    stub.close()
