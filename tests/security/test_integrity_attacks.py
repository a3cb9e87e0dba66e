"""End-to-end integrity (issue 24, part 2): the client declares the CRC-64/ECMA it read, the form pins it,
and a byte flipped between the browser and OSS (a real proxy on loopback) is never recorded as a good
upload: the callback says `corrupt` to the uploader and the event path holds the object in quarantine."""

import time

import pytest
import requests
from fastcrc import crc64

from devstack import LocalStack
from support import FlippingProxy

DATA = b"The quick brown fox jumps over the lazy dog. " * 50


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("integrity")) as s:
        yield s

# Declared video/mp4, so an MP4's first box, then random bytes: random bytes alone are now and then another
# format's signature (a two-byte one matches ~1 random file in 700), and the process function quarantines them.
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def form_for(stack, crc=None, name="fox.txt"):
    params = {"filename": name, "size": len(DATA), "content_type": "text/plain"}
    if crc is not None:
        params["crc64"] = crc
    r = requests.get(stack.signature_url, params=params, headers={"Origin": stack.page_origin}, timeout=10)
    return r.status_code, r.json()


def post(url, form, data=DATA):
    return requests.post(url, data=form["field_list"], files={"file": ("fox.txt", data, "text/plain")}, timeout=15)


def test_an_intact_upload_with_its_checksum_is_recorded(stack):
    status, form = form_for(stack, crc=str(crc64.xz(DATA)))
    assert status == 200
    r = post(form["url"], form)
    assert r.status_code == 200 and r.json()["ok"] is True
    record = stack.wait_for_record(form["upload_id"], timeout=20, where=lambda r: r.get("content_type_detected"))
    assert record["status"] == "recorded" and record["crc64"] == str(crc64.xz(DATA))


def test_a_byte_flipped_in_transit_is_never_a_good_upload(stack):
    status, form = form_for(stack, crc=str(crc64.xz(DATA)))
    assert status == 200
    proxy = FlippingProxy(stack.emulator.url)
    try:
        path = form["url"][len(stack.emulator.url):]
        r = post(proxy.url + path, form)
    finally:
        proxy.close()
    assert proxy.flipped == 1
    assert r.status_code == 200, r.text  # OSS relays the callback's answer
    answer = r.json()
    assert answer["ok"] is False and answer["code"] == "ChecksumMismatch" and answer["status"] == "corrupt"
    record = stack.wait_for_record(form["upload_id"], timeout=20, where=lambda r: r.get("quarantined_to"))
    assert record is not None and record["status"] == "corrupt", record
    assert "checksum mismatch" in record["status_reason"]
    deadline = time.monotonic() + 20
    while requests.head(f"{stack.bucket_url}/{form['key']}", timeout=5).status_code != 404:
        assert time.monotonic() < deadline, "the corrupt object is still at its public key"
        time.sleep(0.1)


def test_the_declared_checksum_cannot_be_replaced_by_the_uploader(stack):
    status, form = form_for(stack, crc="12345")
    fields = [(n, "999" if n == "x-oss-meta-crc64" else v) for n, v in form["field_list"]]
    r = requests.post(form["url"], data=fields, files={"file": ("fox.txt", DATA, "text/plain")}, timeout=15)
    assert r.status_code == 403
    assert requests.head(f"{stack.bucket_url}/{form['key']}", timeout=5).status_code == 404


@pytest.mark.parametrize("bad", ["-1", "abc", str(1 << 64), "1" * 21, "0x10"])
def test_a_malformed_checksum_is_a_clear_400(stack, bad):
    status, body = form_for(stack, crc=bad)
    assert (status, body["code"]) == (400, "InvalidChecksum")


def test_a_part_changed_in_transit_makes_the_multipart_upload_corrupt(stack):
    import os

    data = MP4_HEAD + os.urandom(9 << 20)  # two parts of the server's 8 MiB plan
    h = {"Origin": stack.page_origin}
    made = requests.post(stack.signature_url + "multipart", json={"filename": "big.bin", "size": len(data),
                                                                   "content_type": "video/mp4",
                                                                   "crc64": str(crc64.xz(data))},
                         headers=h, timeout=10)
    assert made.status_code == 201, made.text
    s = made.json()
    ids = {"key": s["key"], "upload_id": s["upload_id"]}
    urls = requests.get(f"{stack.signature_url}multipart/{s['uploadId']}/parts",
                        params=dict(ids, partNumbers="1,2"), headers=h, timeout=10).json()["presignedUrls"]
    parts, size = [], s["part_size"]
    for n in (1, 2):
        chunk = data[(n - 1) * size:n * size]
        if n == 2:
            chunk = bytes([chunk[0] ^ 1]) + chunk[1:]  # one bit flipped on the way
        r = requests.put(urls[str(n)], data=chunk, timeout=30)
        assert r.status_code == 200, r.text
        parts.append({"PartNumber": n, "ETag": r.headers["ETag"]})
    done = requests.post(f"{stack.signature_url}multipart/{s['uploadId']}/complete", params=ids,
                         json={"parts": parts}, headers=h, timeout=30)
    body = done.json()
    assert body["ok"] is False and body["code"] == "ChecksumMismatch", body
    record = stack.wait_for_record(s["upload_id"], timeout=20, where=lambda r: r.get("quarantined_to"))
    assert record is not None and record["status"] == "corrupt"


def test_the_python_client_declares_the_checksum_and_resends_a_changed_part(tmp_path):
    """Forms: the callback finds a changed file. Parts (issue 24): each part URL signs the part's MD5, so
    OSS refuses a part changed on the way (400 InvalidDigest) and the client sends it again."""
    import os

    from ossdirect import Client, UploadError

    proxy = FlippingProxy(None)
    try:
        # every byte from the client to OSS goes through the proxy: forms and part URLs name it as the host
        with LocalStack(tmp_path, env={"OSSDIRECT_UPLOAD_HOST": f"{proxy.url}/ossdirect-local",
                                       "OSSDIRECT_MAX_BYTES": str(64 << 20)}) as s:
            proxy.target = s.emulator.url
            client = Client(s.signature_url, retries=2, backoff=0.01)
            with pytest.raises(UploadError) as caught:  # a form: the callback finds the change
                client.upload(DATA, filename="fox.txt", content_type="text/plain")
            assert caught.value.code == "ChecksumMismatch" and caught.value.kind == "network"
            flipped_form = proxy.flipped
            assert flipped_form == 1
            # parts: the one changed on the way is sent again; the object is the file, recorded once
            data = MP4_HEAD + os.urandom(9 << 20)
            data = data[:100] + b"quick" + data[105:]  # in part 1
            proxy.flipped, proxy.times = 0, 1
            proxy.answers.clear()
            result = client.upload(data, filename="big.mp4", content_type="video/mp4", multipart=True)
            assert proxy.flipped == 1 and result.state == "done", result
            assert s.get_object(result.key) == data
            record = s.wait_for_record(result.upload_id, timeout=20, where=lambda r: r.get("content_type_detected"))
            assert record["status"] == "recorded" and record["crc64"] == str(crc64.xz(data))
            # the part URL signs the part's Content-MD5: OSS itself refused the changed part, nothing stored
            puts = [(status, "<Code>InvalidDigest</Code>" in text) for status, text in proxy.answers if status != 200
                    or "<Code>" in text]
            assert puts == [(400, True)], proxy.answers
            # without part digests only the after-the-fact CRC-64 finds it: OSS stored the changed part first
            proxy.flipped, proxy.times = 0, 1
            proxy.answers.clear()
            plain = Client(s.signature_url, retries=2, backoff=0.01, part_md5=False)
            result = plain.upload(data, filename="big2.mp4", content_type="video/mp4", multipart=True)
            assert proxy.flipped == 1 and result.state == "done" and s.get_object(result.key) == data
            assert all(status == 200 for status, _ in proxy.answers), proxy.answers
    finally:
        proxy.close()


def test_the_cli_resends_a_part_changed_on_the_way_with_and_without_part_md5(tmp_path):
    """`ossdirect upload` of a file above the multipart threshold through a proxy that flips one byte of one part:
    by default OSS refuses the part (its URL signs the part's MD5: 400 InvalidDigest) and the CLI sends it again;
    with --no-part-md5 OSS stores the changed part (200) and the CLI's CRC-64 compare finds it and sends it again.
    Either way the stored object is the file."""
    import json
    import os
    import subprocess

    from test_cli import OSSDIRECT, TREE_ENV

    path = tmp_path / "big.bin"
    data = bytearray(os.urandom((64 << 20) + (1 << 20)))  # 65 MiB: over the 64 MiB multipart threshold
    data[100:105] = b"quick"  # what the proxy flips, in part 1
    path.write_bytes(data)
    proxy = FlippingProxy(None)
    try:
        with LocalStack(tmp_path / "stack", env={"OSSDIRECT_UPLOAD_HOST": f"{proxy.url}/ossdirect-local",
                                                  "OSSDIRECT_MAX_BYTES": str(128 << 20),
                                                  "OSSDIRECT_CONTENT_TYPES": "application/octet-stream"}) as s:
            proxy.target = s.emulator.url
            for flags, refused in (([], [(400, True)]), (["--no-part-md5"], [])):
                proxy.flipped, proxy.times = 0, 1
                proxy.answers.clear()
                run = subprocess.run([OSSDIRECT, "upload", str(path), "--signature-url", s.signature_url, "--json",
                                      "--no-progress", "--retries", "2", *flags], capture_output=True, timeout=300,
                                     env=dict(os.environ, **TREE_ENV), cwd=tmp_path)
                assert run.returncode == 0, (flags, run.stdout[-500:], run.stderr[-1500:])
                [outcome] = json.loads(run.stdout)["files"]
                assert proxy.flipped == 1 and outcome["state"] == "done", (flags, outcome)
                assert s.get_object(outcome["key"]) == bytes(data), flags
                not_ok = [(status, "<Code>InvalidDigest</Code>" in text) for status, text in proxy.answers
                          if status != 200 or "<Code>" in text]
                assert not_ok == refused, (flags, proxy.answers)
    finally:
        proxy.close()
