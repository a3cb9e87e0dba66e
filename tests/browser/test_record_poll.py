"""Issue 11, the page: "stored, but not recorded" turns into "recorded" once the record exists.

After OSS answers 203 (the callback failed) the page polls GET <signature-url>/records/<upload_id> with
backoff (1, 2, 4, 8, 16, 29 s: about a minute), stops on 501/401/403, and shows the record when it appears.
The first two tests fake the record endpoint with Playwright routing (the rest of the stack is real); the
last one runs the event path of the local stack (the process function behind the emulator's OSS trigger).
"""

import json
import os
import time

import pytest
from conftest import ARTIFACTS
from test_upload_page import item, open_page, wait_state

pytestmark = pytest.mark.browser

CORS = {"Access-Control-Allow-Origin": "*"}


def upload_ids(page, stack):
    """upload_id of every form the page received (observed, not altered)."""
    ids = []
    page.on("response", lambda r: ids.append(r.json()["upload_id"]) if r.request.method == "GET" and
            r.url.startswith(stack.signature_url + "?") and r.ok else None)
    return ids


def test_unrecorded_item_turns_recorded_when_the_record_appears(page, make_stack, tmp_path):
    stack = make_stack()
    open_page(page, stack)
    ids = upload_ids(page, stack)
    looks = []

    def record_endpoint(route):  # not there twice, then the event path's record
        looks.append((time.monotonic(), route.request.url))
        upload_id = route.request.url.rsplit("/", 1)[-1]
        if len(looks) <= 2:
            return route.fulfill(status=404, content_type="application/json", headers=CORS,
                                 body=json.dumps({"code": "RecordNotFound", "message": "not yet"}))
        return route.fulfill(status=200, content_type="application/json", headers=CORS, body=json.dumps({
            "upload_id": upload_id, "record_id": "rec-from-event", "key": "uploads/late.txt", "size": 11,
            "etag": "X", "content_type": "text/plain", "created_at": "2026-01-01T00:00:00Z",
            "source": "event", "status": "recorded"}))

    page.route(stack.signature_url + "records/*", record_endpoint)
    stack.stop_callback()
    (tmp_path / "late.txt").write_bytes(b"kept anyway")
    page.set_input_files("#picker", str(tmp_path / "late.txt"))
    wait_state(page, "late.txt", ["unrecorded"])
    li = item(page, "late.txt")
    assert li.locator(".status").text_content().startswith("Stored, but the server did not record it.")
    assert li.locator(".note").text_content() == "Checking whether it gets recorded…"
    assert li.locator("dd[data-field=record]").text_content() == "\u2014"
    page.screenshot(path=os.path.join(ARTIFACTS, "record-poll-unrecorded.png"), full_page=True)
    wait_state(page, "late.txt", ["recorded"], timeout=15000)
    assert li.locator(".status").text_content() == "Stored and recorded (by the storage event)."
    assert li.locator(".note").is_hidden()
    assert li.locator("dd[data-field=record]").text_content() == "rec-from-event"
    assert li.locator("dd[data-field=recorded-by]").text_content() == "event"
    page.wait_for_function("document.getElementById('announcer').textContent === "
                           "'late.txt: recorded now (by the storage event), record rec-from-event.'")
    # it asked for this upload's id, with backoff (1 s, then 2 s, then 4 s apart), and stopped once found
    assert len(ids) == 1 and all(url == f"{stack.signature_url}records/{ids[0]}" for _, url in looks)
    gaps = [b - a for (a, _), (b, _) in zip(looks, looks[1:])]
    assert len(looks) == 3 and 1.6 < gaps[0] < 3 and 3.5 < gaps[1] < 5.5, gaps
    time.sleep(2)
    assert len(looks) == 3
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "record-poll-recorded.png"), full_page=True)


def test_poll_stops_where_records_cannot_be_looked_up(page, make_stack, tmp_path):
    # an append-only store (stdout): the real signature function answers 501 RecordLookupUnsupported
    stack = make_stack(OSSDIRECT_RECORDS="stdout")
    open_page(page, stack)
    looks = []
    page.on("request", lambda r: looks.append(r.url) if "/records/" in r.url else None)
    stack.stop_callback()
    (tmp_path / "late.txt").write_bytes(b"kept anyway")
    page.set_input_files("#picker", str(tmp_path / "late.txt"))
    wait_state(page, "late.txt", ["unrecorded"])
    li = item(page, "late.txt")
    page.wait_for_function("() => document.querySelector('li.item .note').textContent.startsWith('This service')")
    assert li.locator(".note").text_content() == "This service cannot look records up; the file is stored."
    time.sleep(3.5)  # past the next two looks it would have made
    assert len(looks) == 1 and li.get_attribute("data-state") == "unrecorded"


def test_poll_stops_when_the_record_is_not_the_callers(page, make_stack, tmp_path):
    # the service says "sign in" (401; 403 alike): the poll stops instead of asking on and on
    stack = make_stack()
    open_page(page, stack)
    looks = []

    def unauthorised(route):
        looks.append(route.request.url)
        route.fulfill(status=401, content_type="application/json", headers=CORS,
                      body=json.dumps({"code": "Unauthorized", "message": "sign in"}))

    page.route(stack.signature_url + "records/*", unauthorised)
    stack.stop_callback()
    (tmp_path / "late.txt").write_bytes(b"kept anyway")
    page.set_input_files("#picker", str(tmp_path / "late.txt"))
    wait_state(page, "late.txt", ["unrecorded"])
    page.wait_for_function("() => document.querySelector('li.item .note').textContent.startsWith('The record')")
    assert item(page, "late.txt").locator(".note").text_content() == \
        "The record cannot be checked from this page; the file is stored."
    time.sleep(3.5)
    assert len(looks) == 1


def test_event_path_records_what_the_callback_missed(page, make_stack, tmp_path):
    """The real thing: callback down, the local stack's event path writes the record, the page finds it."""
    stack = make_stack()
    open_page(page, stack)
    stack.stop_callback()
    (tmp_path / "late.txt").write_bytes(b"kept anyway")
    page.set_input_files("#picker", str(tmp_path / "late.txt"))
    wait_state(page, "late.txt", ["unrecorded"])
    li = item(page, "late.txt")
    assert li.locator(".status").text_content().startswith("Stored, but the server did not record it.")
    wait_state(page, "late.txt", ["recorded"], timeout=40000)
    assert li.locator(".status").text_content() == "Stored and recorded (by the storage event)."
    records = [r for r in stack.records() if r["filename"] == "late.txt" or r["key"].endswith("late.txt")]
    assert len(records) == 1 and records[0]["source"] == "event"
    assert li.locator("dd[data-field=record]").text_content() == records[0]["record_id"]
    assert stack.get_object(records[0]["key"]) == b"kept anyway"
