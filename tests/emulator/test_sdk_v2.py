"""alibabacloud-oss-v2 (the official V2 Python SDK), signing V4 (its default) and V1, CRC-64 checks on
(its default), through the calls users' own code makes against the emulator (issue 21)."""

import os

import alibabacloud_oss_v2 as oss
import pytest
import requests
from conftest import AK, BUCKET, REGION, SK

DATA = os.urandom(300 * 1024 + 11)


@pytest.fixture(params=["v4", "v1"])
def client(request, emulator):
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(AK, SK)
    cfg.region, cfg.endpoint, cfg.use_path_style = REGION, emulator.url, True
    cfg.signature_version = request.param
    cfg.retry_max_attempts = 1
    assert not cfg.disable_download_crc64_check and not cfg.disable_upload_crc64_check
    return oss.Client(cfg)


def put(client, key, data, **kw):
    return client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=key, body=data, **kw))


def get(client, key, **kw):
    return client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key, **kw))


def test_put_get_head_copy_delete(client):
    assert put(client, "v2/a.bin", DATA, content_type="application/x-test").status_code == 200
    got = get(client, "v2/a.bin")
    assert got.body.read() == DATA and got.content_type == "application/x-test"
    assert got.content_disposition is None  # nothing invented
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="v2/a.bin"))
    assert head.content_length == len(DATA) and head.hash_crc64
    client.copy_object(oss.CopyObjectRequest(bucket=BUCKET, key="v2/b.bin", source_key="v2/a.bin"))
    assert get(client, "v2/b.bin").body.read() == DATA
    client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key="v2/b.bin"))
    assert not client.is_object_exist(BUCKET, "v2/b.bin")


def test_range_downloader_and_open_file(client, tmp_path):
    put(client, "big.bin", DATA)
    part = get(client, "big.bin", range_header="bytes=5-14")
    assert part.status_code == 206 and part.body.read() == DATA[5:15]
    assert part.content_range == f"bytes 5-14/{len(DATA)}"
    whole = get(client, "big.bin", range_header=f"bytes={len(DATA)}-")
    assert whole.status_code == 200 and whole.body.read() == DATA  # OSS ignores an out-of-range Range
    with pytest.raises(oss.exceptions.OperationError) as refused:
        get(client, "big.bin", range_header=f"bytes={len(DATA)}-", range_behavior="standard")
    assert refused.value.unwrap().status_code == 416 and refused.value.unwrap().code == "InvalidRange"
    target = tmp_path / "down.bin"
    client.downloader(part_size=64 * 1024, parallel_num=2).download_file(
        oss.GetObjectRequest(bucket=BUCKET, key="big.bin"), str(target))
    assert target.read_bytes() == DATA
    with client.open_file(BUCKET, "big.bin") as f:
        f.seek(100 * 1024)
        assert f.read(1000) == DATA[100 * 1024:100 * 1024 + 1000]


def test_uploader_multipart(client, tmp_path):
    source = tmp_path / "up.bin"
    source.write_bytes(DATA)
    client.uploader(part_size=100 * 1024, parallel_num=2).upload_file(
        oss.PutObjectRequest(bucket=BUCKET, key="up.bin"), str(source))
    assert get(client, "up.bin").body.read() == DATA


def test_list_v1_and_v2_paginators(client):
    keys = ["l/1", "l/2", "l/d/3", "m/4", "ctl\x01k"]
    for key in keys:
        put(client, key, b"x")
    v1 = [o.key for page in client.list_objects_paginator(limit=2).iter_page(
        oss.ListObjectsRequest(bucket=BUCKET)) for o in page.contents or []]
    v2 = [o.key for page in client.list_objects_v2_paginator(limit=2).iter_page(
        oss.ListObjectsV2Request(bucket=BUCKET)) for o in page.contents or []]
    assert sorted(v1) == sorted(v2) == sorted(keys)
    rolled = client.list_objects(oss.ListObjectsRequest(bucket=BUCKET, prefix="l/", delimiter="/"))
    assert [o.key for o in rolled.contents] == ["l/1", "l/2"]
    assert [p.prefix for p in rolled.common_prefixes] == ["l/d/"]


def test_presign_get_with_overrides_and_put(client):
    put(client, "p.txt", b"signed")
    url = client.presign(oss.GetObjectRequest(bucket=BUCKET, key="p.txt", response_content_type="text/csv",
                                              response_content_disposition="attachment")).url
    r = requests.get(url, timeout=10)
    assert r.content == b"signed" and r.headers["Content-Type"] == "text/csv"
    assert r.headers["Content-Disposition"] == "attachment"
    signed = client.presign(oss.PutObjectRequest(bucket=BUCKET, key="p2.txt"))
    assert requests.put(signed.url, data=b"up", headers=signed.signed_headers, timeout=10).status_code == 200


def test_conditional_get(client):
    etag = put(client, "c.txt", b"c").etag
    with pytest.raises(oss.exceptions.OperationError) as not_modified:
        get(client, "c.txt", if_none_match=etag)
    assert not_modified.value.unwrap().status_code == 304
    with pytest.raises(oss.exceptions.OperationError) as failed:
        get(client, "c.txt", if_match='"00"')
    assert failed.value.unwrap().status_code == 412 and failed.value.unwrap().code == "PreconditionFailed"


def test_delete_multiple_append_tagging_and_part_copy(client):
    for key in ("d/1", "d/2"):
        put(client, key, b"x")
    deleted = client.delete_multiple_objects(oss.DeleteMultipleObjectsRequest(
        bucket=BUCKET, objects=[oss.DeleteObject(key="d/1"), oss.DeleteObject(key="d/2")]))
    assert sorted(d.key for d in deleted.deleted_objects) == ["d/1", "d/2"]
    first = client.append_object(oss.AppendObjectRequest(bucket=BUCKET, key="ap", position=0, body=b"ab"))
    client.append_object(oss.AppendObjectRequest(bucket=BUCKET, key="ap", position=first.next_position,
                                                 body=b"cd", init_hash_crc64=first.hash_crc64))
    assert get(client, "ap").body.read() == b"abcd"
    put(client, "t", b"x", tagging="a=1")
    client.put_object_tagging(oss.PutObjectTaggingRequest(bucket=BUCKET, key="t", tagging=oss.Tagging(
        tag_set=oss.TagSet(tags=[oss.Tag(key="k", value="v")]))))
    tags = client.get_object_tagging(oss.GetObjectTaggingRequest(bucket=BUCKET, key="t")).tag_set.tags
    assert [(t.key, t.value) for t in tags] == [("k", "v")]
    put(client, "src", DATA)
    upload_id = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=BUCKET, key="dst")).upload_id
    parts = []
    for number, span in ((1, f"bytes=0-{200 * 1024 - 1}"), (2, f"bytes={200 * 1024}-{len(DATA) - 1}")):
        copied = client.upload_part_copy(oss.UploadPartCopyRequest(
            bucket=BUCKET, key="dst", upload_id=upload_id, part_number=number, source_key="src", source_range=span))
        parts.append(oss.UploadPart(part_number=number, etag=copied.etag))
    client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=BUCKET, key="dst", upload_id=upload_id,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts)))
    assert get(client, "dst").body.read() == DATA
