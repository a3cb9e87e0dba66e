"""The local stack runs the process function behind the emulator's OSS trigger, end to end over real
HTTP: with the callback down an upload is still recorded (from the event, with OSS's facts) and the
page's poll finds it; an HTML file uploaded as a PNG is moved out of the public prefix."""

import hashlib
import io
import json
import time

import pytest
import requests
from PIL import Image

from devstack import LocalStack

POLL_SECONDS = 10  # the trigger fires 0.5 s after the upload; the function takes milliseconds


def png_bytes(size=(40, 30)):
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("events-stack")) as s:
        yield s


def upload(stack, name, data, content_type):
    form = requests.get(stack.signature_url, params={"filename": name, "size": len(data),
                                                     "content_type": content_type},
                        headers={"Origin": stack.page_origin}, timeout=10).json()
    r = requests.post(form["host"], data=form["field_list"], files={"file": (name, data, content_type)}, timeout=15)
    return form, r


def poll(fn, timeout=POLL_SECONDS):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


def test_callback_down_the_event_records_it_and_the_page_poll_finds_it(tmp_path):
    data = png_bytes()
    with LocalStack(tmp_path) as s:
        s.stop_callback()
        form, r = upload(s, "pic.png", data, "image/png")
        assert r.status_code == 203 and "<Code>CallbackFailed</Code>" in r.text
        upload_id = form["upload_id"]
        record = s.wait_for_record(upload_id, timeout=POLL_SECONDS)
        assert record is not None, "the process function did not record the upload from its event"
        assert (record["source"], record["status"], record["key"]) == ("event", "recorded", form["key"])
        assert record["size"] == len(data) and record["etag"] == hashlib.md5(data).hexdigest().upper()
        assert record["content_type_detected"] == "image/png" and record["filename"] == "pic.png"
        # the page's poll after "stored, not recorded"
        answer = requests.get(f"{s.signature_url}records/{upload_id}", headers={"Origin": s.page_origin}, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["upload_id"], body["source"], body["size"], body["etag"], body["key"]) == (
            upload_id, "event", len(data), record["etag"], form["key"])
        assert len([r for r in s.records() if r["upload_id"] == upload_id]) == 1
        assert s.process.invocations >= 1


def test_html_uploaded_as_png_is_quarantined(stack):
    form, r = upload(stack, "evil.png", HTML, "image/png")
    assert r.status_code == 200, r.text  # the callback recorded it: the type is only checked on the event
    assert r.json()["upload_id"] == form["upload_id"]
    record = stack.wait_for_record(form["upload_id"], timeout=POLL_SECONDS, where=lambda r: r["status"] != "recorded")
    assert record is not None and record["status"] == "quarantined", record
    assert record["quarantined_to"] == "quarantine/" + form["key"]
    assert "declared image/png, content is text/html" in record["status_reason"]
    # the verdict is recorded first, then carried out (copy, then delete): wait for the move, bounded
    deadline = time.monotonic() + POLL_SECONDS
    while requests.head(f"{stack.bucket_url}/{form['key']}", timeout=5).status_code != 404:
        assert time.monotonic() < deadline, "the quarantined object is still at its public key"
        time.sleep(0.1)
    public = requests.get(f"{stack.bucket_url}/{form['key']}", timeout=5)
    assert public.status_code == 404  # gone from the public key
    kept = requests.get(f"{stack.bucket_url}/quarantine/{form['key']}", timeout=5)
    assert kept.status_code == 403  # kept, privately
    poll_answer = requests.get(f"{stack.signature_url}records/{form['upload_id']}", timeout=10).json()
    assert poll_answer["status"] == "quarantined"


def test_a_genuine_upload_is_recorded_once_by_the_callback(stack):
    data = png_bytes((12, 12))
    form, r = upload(stack, "ok.png", data, "image/png")
    assert r.status_code == 200 and r.json()["replayed"] is False
    # the event arrives later: the record stays the callback's, checked and kept
    record = stack.wait_for_record(form["upload_id"], where=lambda r: r.get("content_type_detected"))
    assert record is not None and (record["source"], record["status"]) == ("callback", "recorded")
    assert record["content_type_detected"] == "image/png"
    assert requests.get(f"{stack.bucket_url}/{form['key']}", timeout=5).content == data
    assert len([x for x in stack.records() if x["upload_id"] == form["upload_id"]]) == 1


def test_the_invocation_server_answers_as_fc_does(stack):
    bad = requests.post(stack.process_url, data=b'{"not": "an oss event"}', timeout=10)
    assert bad.status_code == 500 and bad.headers["X-Fc-Error-Type"] == "UnhandledInvocationError"
    assert bad.json()["errorType"] == "ValueError"
    assert requests.get(stack.process_url, timeout=10).status_code == 405
    event = {"events": [{"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "region": "cn-hangzhou",
                         "oss": {"bucket": {"name": "ossdirect-local"},
                                 "object": {"key": "site/other.txt", "eTag": "", "size": 0}}}]}
    ok = requests.post(stack.process_url, data=json.dumps(event).encode(), timeout=10)
    assert ok.status_code == 200 and ok.json()["results"][0]["action"] == "skipped"


def test_page_files_raise_no_events(stack):
    """The trigger's rule is the deployed one: only objects under the upload prefix."""
    before = stack.process.invocations
    stack.put_page_config(stack.page_config())
    time.sleep(1.0)
    assert stack.process.invocations == before
