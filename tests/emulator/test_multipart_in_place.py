"""Parts written in place: each part of a uniform-size upload goes straight into the upload's one file at
(number - 1) × stride, and Complete links that file as the object instead of copying it. Every other shape
(a part longer than the stride, a part sent again, a subset of the parts, a failed Complete) must still
give exactly the concatenation of the listed parts. oss2 (V1) is the client; bytes are read back."""

import hashlib
import os

import oss2
import pytest
from conftest import BUCKET, oss2_bucket
from fastcrc import crc64

KIB = 1024
STRIDE = 128 * KIB


def blob(n, seed):
    return bytes((i * 7 + seed) % 251 for i in range(n))


def object_data(emulator, key):
    name = hashlib.sha256(key.encode()).hexdigest()
    return emulator.data_dir / "buckets" / BUCKET / "objects" / name / "data"


def assembly(emulator, upload_id):
    return emulator.data_dir / "buckets" / BUCKET / "uploads" / upload_id / "assembly"


def send(bucket, key, upload_id, parts):
    """Upload (number, bytes) in the order given; returns {number: PartInfo}."""
    return {n: oss2.models.PartInfo(n, bucket.upload_part(key, upload_id, n, data).etag) for n, data in parts}


def check_object(bucket, key, expected):
    got = bucket.get_object(key)
    assert got.read() == expected
    assert got.headers["x-oss-hash-crc64ecma"] == str(crc64.xz(expected))


def test_uniform_parts_out_of_order_become_the_object_without_a_copy(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/in-place.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    data = [blob(STRIDE, 1), blob(STRIDE, 2), blob(STRIDE, 3), blob(1000, 4)]
    infos = send(bucket, key, upload_id, [(2, data[1]), (1, data[0]), (4, data[3]), (3, data[2])])
    inode = os.stat(assembly(emulator, upload_id)).st_ino
    bucket.complete_multipart_upload(key, upload_id, [infos[n] for n in (1, 2, 3, 4)])
    check_object(bucket, key, b"".join(data))
    assert os.stat(object_data(emulator, key)).st_ino == inode  # linked, not copied
    assert not any((emulator.data_dir / "buckets" / BUCKET / "tmp").iterdir())


def test_a_short_first_arrival_a_resent_part_and_a_longer_part_are_still_exact(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/mixed.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    first = blob(STRIDE, 9)  # sets the stride: 128 KiB
    infos = send(bucket, key, upload_id, [(1, first)])
    longer, resent, last = blob(STRIDE + 5, 10), blob(STRIDE, 11), blob(777, 12)
    infos.update(send(bucket, key, upload_id, [(2, blob(STRIDE, 13)), (3, longer), (4, last)]))
    infos.update(send(bucket, key, upload_id, [(2, resent)]))  # replaces the part written in place
    bucket.complete_multipart_upload(key, upload_id, [infos[n] for n in (1, 2, 3, 4)])
    check_object(bucket, key, first + resent + longer + last)


def test_the_short_last_part_arriving_first_sets_a_small_stride_and_nothing_overlaps(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/last-first.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    last = blob(100 * KIB, 20)
    infos = send(bucket, key, upload_id, [(3, last)])
    ones = [blob(STRIDE, 21), blob(STRIDE, 22)]
    infos.update(send(bucket, key, upload_id, [(1, ones[0]), (2, ones[1])]))
    bucket.complete_multipart_upload(key, upload_id, [infos[n] for n in (1, 2, 3)])
    check_object(bucket, key, ones[0] + ones[1] + last)


def test_a_subset_of_the_parts_is_copied_from_their_places(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/subset.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    data = {n: blob(STRIDE, 30 + n) for n in (1, 2, 3)}
    infos = send(bucket, key, upload_id, list(data.items()))
    bucket.complete_multipart_upload(key, upload_id, [infos[1], infos[3]])
    check_object(bucket, key, data[1] + data[3])


def test_a_failed_complete_leaves_the_parts_in_place_for_the_next(emulator):
    bucket = oss2_bucket(emulator)
    key = "uploads/retry.bin"
    bucket.put_object(key, b"taken")
    upload_id = bucket.init_multipart_upload(key).upload_id
    data = [blob(STRIDE, 40), blob(STRIDE, 41), blob(10, 42)]
    infos = send(bucket, key, upload_id, list(enumerate(data, 1)))
    listed = [infos[n] for n in (1, 2, 3)]
    with pytest.raises(oss2.exceptions.OssError) as err:
        bucket.complete_multipart_upload(key, upload_id, listed, headers={"x-oss-forbid-overwrite": "true"})
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    bucket.complete_multipart_upload(key, upload_id, listed)
    check_object(bucket, key, b"".join(data))


def test_parallel_parts_at_unaligned_offsets_are_exact(emulator):
    """4 streams at once write their parts into the one file at their offsets (not page-aligned, each part
    several MiB of writes): the object is still exactly the parts, and still linked."""
    from concurrent.futures import ThreadPoolExecutor

    bucket = oss2_bucket(emulator)
    key = "in-place/parallel.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    stride = (4 << 20) + 4097  # part 2 starts mid-page
    parts = [(n, blob(stride if n < 6 else 1234, n)) for n in range(1, 7)]
    send(bucket, key, upload_id, parts[:1])  # the first placed part sets the stride
    with ThreadPoolExecutor(4) as pool:
        infos = dict(pool.map(lambda p: (p[0], send(bucket, key, upload_id, [p])[p[0]]), parts[1:]))
    infos[1] = oss2.models.PartInfo(1, hashlib.md5(parts[0][1]).hexdigest().upper())
    placed = os.stat(assembly(emulator, upload_id)).st_ino
    bucket.complete_multipart_upload(key, upload_id, [infos[n] for n in sorted(infos)])
    check_object(bucket, key, b"".join(data for _, data in parts))
    assert os.stat(object_data(emulator, key)).st_ino == placed  # linked, not copied


def test_a_placed_range_writes_at_its_offset_and_past_its_declared_length(tmp_path):
    from emulator.storage import _PlacedRange

    path = tmp_path / "assembly"
    path.write_bytes(b"x" * 10)
    data = os.urandom((8 << 20) + 5)
    writer = _PlacedRange(str(path), 10, len(data) - 7)  # 7 bytes more than declared arrive
    for at in range(0, len(data), 1 << 20):
        assert writer.write(data[at:at + (1 << 20)]) == len(data[at:at + (1 << 20)])
    writer.close()
    writer.close()  # twice is harmless (abort after finish)
    assert path.read_bytes() == b"x" * 10 + data
