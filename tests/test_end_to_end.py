"""The whole path over real HTTP on loopback: form → POST → emulator → signed callback → record → relayed JSON."""

import hashlib

import pytest
import requests

from devstack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("stack"), env={"OSSDIRECT_MAX_BYTES": "65536"}) as s:
        yield s


def get_form(stack, **query):
    r = requests.get(stack.signature_url, params=query, headers={"Origin": stack.page_origin}, timeout=10)
    return r.status_code, r.json()


def post(form, data, filename="f.bin", content_type="application/octet-stream", fields=None):
    # `file` goes last: requests sends data fields first, then files.
    return requests.post(form["host"], data=fields if fields is not None else form["field_list"],
                         files={"file": (filename, data, content_type)}, timeout=15)


def test_upload_is_recorded_once_and_answer_relayed(stack):
    data = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    status, form = get_form(stack, filename="pic.png", size=len(data), content_type="image/png")
    assert status == 200
    r = post(form, data, "pic.png", "image/png")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["ok"] is True and answer["key"] == form["key"] and answer["upload_id"] == form["upload_id"]
    assert answer["size"] == len(data) and answer["etag"] == hashlib.md5(data).hexdigest().upper()
    assert answer["content_type"] == "image/png" and answer["filename"] == "pic.png"
    assert stack.get_object(form["key"]) == data
    records = [rec for rec in stack.records() if rec["upload_id"] == form["upload_id"]]
    assert len(records) == 1 and records[0]["record_id"] == answer["record_id"]
    # the same form again: the exact key exists, no-overwrite is pinned → 409 and no second record
    again = post(form, data, "pic.png", "image/png")
    assert again.status_code == 409 and "<Code>FileAlreadyExists</Code>" in again.text
    assert len([rec for rec in stack.records() if rec["upload_id"] == form["upload_id"]]) == 1


def test_v1_form_works_end_to_end(stack):
    status, form = get_form(stack, filename="old.txt", size=5, content_type="text/plain",
                            signature_version="v1")
    assert status == 200 and form["version"] == "v1" and "accessid" in form
    assert post(form, b"hello", "old.txt", "text/plain").status_code == 200


def test_client_cannot_change_pinned_fields(stack):
    data = b"hello"
    _, form = get_form(stack, filename="a.txt", size=len(data), content_type="text/plain")
    for name, value in (("key", "uploads/other.txt"), ("x:upload_id", "forged"), ("x-oss-content-type", "text/html"),
                        ("x-oss-forbid-overwrite", "false")):
        fields = [[n, value if n == name else v] for n, v in form["field_list"]]
        r = post(form, data, "a.txt", "text/plain", fields=fields)
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, name
    bigger = post(form, data + b"!", "a.txt", "text/plain")
    assert bigger.status_code == 400 and "<Code>EntityTooLarge</Code>" in bigger.text
    assert stack.records() == [] or all(rec["key"] != "uploads/other.txt" for rec in stack.records())


def test_expired_form_is_refused(tmp_path):
    with LocalStack(tmp_path, clock_offset=3600) as late:
        _, form = get_form(late, filename="a.txt", size=5, content_type="text/plain")
        r = post(form, b"hello", "a.txt", "text/plain")
        assert r.status_code == 403 and "Policy expired" in r.text


def test_callback_down_gives_203_and_object_kept(tmp_path):
    with LocalStack(tmp_path) as s:
        s.stop_callback()
        _, form = get_form(s, filename="a.txt", size=5, content_type="text/plain")
        r = post(form, b"hello", "a.txt", "text/plain")
        assert r.status_code == 203 and "<Code>CallbackFailed</Code>" in r.text
        assert s.get_object(form["key"]) == b"hello"
        assert s.records() == []


def test_page_and_config_are_served_from_the_bucket(stack):
    config = requests.get(f"{stack.bucket_url}/config.json", timeout=10).json()
    assert config == {"signatureUrl": stack.signature_url, "developer": True}  # the local page shows details
    limits = requests.get(stack.signature_url + "limits", timeout=10).json()
    assert limits["max_bytes"] == 65536
