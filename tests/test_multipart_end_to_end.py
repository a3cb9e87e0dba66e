"""A 300 MB multipart upload over real HTTP on loopback, killed mid-way and resumed.

The local stack (emulator + both real handlers behind the WSGI adapter): create through the
signature function, 8 MiB parts sent 4 at a time (threads) to presigned URLs, a connection dropped
in the middle of a part, the transfer abandoned, then resumed from ``listParts``: only the missing
parts are sent again (counted), Complete goes through OSS's callback to the callback function,
and the stored object is byte-identical (MD5) and recorded exactly once.

Memory stays bounded: the file is written to disk in 1 MiB chunks and every part is streamed from
it (a reader over its byte range); the download is hashed as it streams.
"""

import hashlib
import http.client
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from devstack import LocalStack

SIZE = 300 * 10**6
MiB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("mpstack")
    port = free_port()
    # The signature function calls OSS (the emulator) and keeps sessions in the callback's SQLite store.
    env = {"OSSDIRECT_MAX_BYTES": str(SIZE), "OSSDIRECT_OSS_ENDPOINT": f"http://127.0.0.1:{port}/ossdirect-local",
           "OSSDIRECT_RECORDS": f"sqlite:///{data_dir / 'records.sqlite3'}"}
    with LocalStack(data_dir, emulator_port=port, env=env) as s:
        yield s


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("file") / "big.bin"
    md5 = hashlib.md5()
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        written = 0
        while written < SIZE:
            chunk = hashlib.sha256(written.to_bytes(8, "big")).digest() + block[32:]  # every MiB differs
            chunk = chunk[:SIZE - written]
            f.write(chunk)
            md5.update(chunk)
            written += len(chunk)
    return path, md5.hexdigest()


class PartReader:
    """A byte range of a file as a streamed request body (requests sends its len as Content-Length)."""

    def __init__(self, path, offset, length):
        self.f = open(path, "rb")
        self.f.seek(offset)
        self.left = length
        self.length = length

    def __len__(self):
        return self.length

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data

    def close(self):
        self.f.close()


def sign_part(stack, up, n):
    r = requests.get(f"{stack.signature_url}multipart/{up['uploadId']}/{n}",
                     params={"key": up["key"], "upload_id": up["upload_id"]}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def put_part(stack, up, path, n, counter):
    signed = sign_part(stack, up, n)
    start = (n - 1) * up["part_size"]
    body = PartReader(path, start, signed["size"])
    try:
        r = requests.put(signed["url"], data=body, headers=signed["headers"], timeout=120)
    finally:
        body.close()
    assert r.status_code == 200, r.text
    with counter["lock"]:
        counter["sent"].append(n)
    return n, r.headers["ETag"]


def drop_mid_part(stack, up, path, n):
    """Send the headers and 90% of part ``n``, then drop the connection (a network failure)."""
    signed = sign_part(stack, up, n)
    url = urlsplit(signed["url"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", str(signed["size"]))
    conn.endheaders()
    reader = PartReader(path, (n - 1) * up["part_size"], signed["size"] * 9 // 10)
    try:
        while True:
            chunk = reader.read(256 * 1024)
            if not chunk:
                break
            conn.send(chunk)
    finally:
        reader.close()
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()


def list_parts(stack, up):
    r = requests.get(f"{stack.signature_url}multipart/{up['uploadId']}",
                     params={"key": up["key"], "upload_id": up["upload_id"]}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_300_mb_in_8_mib_parts_killed_and_resumed_is_stored_byte_identical_and_recorded_once(stack, big_file):
    path, md5 = big_file
    r = requests.post(f"{stack.signature_url}multipart", json={"filename": "big.bin", "size": SIZE,
                                                               "content_type": "video/mp4"},
                      headers={"Origin": stack.page_origin}, timeout=30)
    assert r.status_code == 201, r.text
    up = r.json()
    assert (up["part_size"], up["part_count"], up["concurrency"]) == (8 * MiB, 36, 4)
    count = up["part_count"]

    # first attempt: 4 at a time, killed after 15 parts, with part 16 cut off at 90%
    first = {"lock": threading.Lock(), "sent": []}
    with ThreadPoolExecutor(up["concurrency"]) as pool:
        list(pool.map(lambda n: put_part(stack, up, path, n, first), range(1, 16)))
    drop_mid_part(stack, up, path, 16)
    assert sorted(first["sent"]) == list(range(1, 16))

    # the page reloads: all that is left is {uploadId, key, upload_id}; listParts says what OSS holds
    held = list_parts(stack, up)
    assert [p["PartNumber"] for p in held] == list(range(1, 16))  # the cut part is not there
    assert all(p["Size"] == 8 * MiB for p in held)
    missing = [n for n in range(1, count + 1) if n not in {p["PartNumber"] for p in held}]
    second = {"lock": threading.Lock(), "sent": []}
    with ThreadPoolExecutor(up["concurrency"]) as pool:
        etags = dict(pool.map(lambda n: put_part(stack, up, path, n, second), missing))
    assert sorted(second["sent"]) == missing and len(second["sent"]) == count - 15 == 21  # only the missing ones

    etags.update({p["PartNumber"]: p["ETag"] for p in held})
    parts = [{"PartNumber": n, "ETag": etags[n]} for n in range(1, count + 1)]
    r = requests.post(f"{stack.signature_url}multipart/{up['uploadId']}/complete",
                      params={"key": up["key"], "upload_id": up["upload_id"]}, json={"parts": parts}, timeout=300)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["ok"] is True and answer["replayed"] is False and answer["size"] == SIZE
    assert answer["upload_id"] == up["upload_id"] and answer["key"] == up["key"]
    assert answer["etag"].endswith("-36") and answer["location"].endswith(up["key"])

    got = hashlib.md5()
    with requests.get(f"{stack.bucket_url}/{up['key']}", stream=True, timeout=60) as download:
        assert download.status_code == 200 and int(download.headers["Content-Length"]) == SIZE
        for chunk in download.iter_content(MiB):
            got.update(chunk)
    assert got.hexdigest() == md5

    records = [rec for rec in stack.records() if rec["upload_id"] == up["upload_id"]]
    assert len(records) == 1
    rec = records[0]
    assert (rec["status"], rec["source"], rec["size"], rec["etag"], rec["record_id"]) == \
        ("recorded", "multipart", SIZE, answer["etag"], answer["record_id"])
    assert len(stack.records()) == 1
