"""web/adapters/*: the real upload widgets from npm (Uppy 5, FilePond, antd, Element Plus) upload through
our signed forms in Chromium. The widgets are bundled for these tests only (tests/browser/widgets, esbuild,
dist/ git-ignored); the adapters and the pages load as plain ES modules, published into the emulated
bucket like the upload page (same origin as the page, so CORS is as deployed)."""

import json
import os
import subprocess
from pathlib import Path

import oss2
import pytest

from devstack import BUCKET, LocalStack
from tools.bucket_setup import content_type

pytestmark = pytest.mark.browser
WIDGETS = Path(__file__).resolve().parent / "widgets"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # 10 KiB
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _newest(paths):
    return max(p.stat().st_mtime for p in paths)


@pytest.fixture(scope="session")
def widget_bundles():
    """dist/*.js from the pinned packages: `npm ci` once (skipped when installed: offline-tolerant), then
    esbuild again only when an entry, build.mjs or the lock is newer than the bundles."""
    if not (WIDGETS / "node_modules" / "esbuild").is_dir():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=WIDGETS, check=True, timeout=600)
    sources = [*WIDGETS.glob("entries/*.js"), WIDGETS / "build.mjs", WIDGETS / "package-lock.json"]
    dist = WIDGETS / "dist"
    bundles = [dist / p.name for p in WIDGETS.glob("entries/*.js")]
    if not all(b.exists() for b in bundles) or _newest(sources) > min(b.stat().st_mtime for b in bundles):
        subprocess.run(["node", "build.mjs"], cwd=WIDGETS, check=True, timeout=300)
    return dist


def publish_widgets(stack, dist):
    """Test pages and bundles into the bucket under widgets/ (web/ itself, adapters included, is already there)."""
    sdk = oss2.Bucket(oss2.StsAuth(*stack.credentials), stack.emulator.url, BUCKET)
    for path in [*WIDGETS.glob("pages/*.html"), *dist.glob("*.js"), *dist.glob("*.css")]:
        key = "widgets/" + ("" if path.suffix == ".html" else "dist/") + path.name
        sdk.put_object(key, path.read_bytes(), headers={"Content-Type": content_type(path.name),
                                                        "x-oss-object-acl": "public-read"})  # site files


@pytest.fixture
def widget_stack(make_stack, widget_bundles):
    def make(**env):
        stack = make_stack(**env)
        publish_widgets(stack, widget_bundles)
        return stack
    return make


@pytest.fixture
def open_widget(browser):
    contexts = []

    def open_(stack, name, query=""):
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.goto(f"{stack.bucket_url}/widgets/{name}.html{query}")
        page.wait_for_function("() => window.ready === true", timeout=15000)
        return page

    yield open_
    for c in contexts:
        c.close()


def wait_events(page, count=1, kind=None, timeout=20000):
    page.wait_for_function(
        "([n, kind]) => window.events.filter((e) => !kind || e.event === kind).length >= n",
        arg=[count, kind], timeout=timeout)
    return page.evaluate("window.events")


def record_for(stack, upload_id):
    [record] = [r for r in stack.records() if r["upload_id"] == upload_id]
    return record


def png(name="photo.png", data=PNG):
    return {"name": name, "mimeType": "image/png", "buffer": data}


def test_uppy_xhr_upload_hands_the_callback_record_to_upload_success(widget_stack, open_widget):
    stack = widget_stack()
    page = open_widget(stack, "uppy-xhr")
    # /limits became Uppy's restrictions
    restrictions = page.evaluate("window.restrictions")
    assert {k: restrictions[k] for k in ("minFileSize", "maxFileSize", "allowedFileTypes")} == {
        "minFileSize": 1, "maxFileSize": 104857600,
        "allowedFileTypes": ["image/*", "video/*", "audio/*", "application/pdf", "text/plain"]}
    page.set_input_files("#pick", files=[png("one.png"), {"name": "two.txt", "mimeType": "text/plain",
                                                          "buffer": b"hello uppy"}])
    events = wait_events(page, kind="complete")
    assert not page.problems
    done = {e["name"]: e for e in events if e["event"] == "success"}
    assert set(done) == {"one.png", "two.txt"}, events
    assert {"event": "complete", "successful": 2, "failed": 0} in events
    for name, data in (("one.png", PNG), ("two.txt", b"hello uppy")):
        body = done[name]["body"]
        assert done[name]["status"] == 200 and body["ok"] is True
        assert body["upload_id"] == done[name]["upload_id"] and body["size"] == len(data)
        assert done[name]["uploadURL"] == body["url"]            # Uppy reads the record's url
        record = record_for(stack, body["upload_id"])
        assert record["record_id"] == body["record_id"] and record["key"] == body["key"]
        assert stack.get_object(body["key"]) == data               # stored, exactly these bytes


def test_uppy_restrictions_from_limits_refuse_before_any_form(widget_stack, open_widget):
    stack = widget_stack(OSSDIRECT_MAX_BYTES="1000")
    page = open_widget(stack, "uppy-xhr")
    page.set_input_files("#pick", files=[png("big.png"), {"name": "page.zip", "mimeType": "application/zip",
                                                          "buffer": b"PK\x03\x04"}])
    events = wait_events(page, kind="complete")
    assert [e["name"] for e in events if e["event"] == "restricted"] == ["big.png", "page.zip"]
    assert not [e for e in events if e["event"] == "success"] and stack.records() == []


def test_uppy_xhr_upload_flags_203_stored_not_recorded(widget_stack, open_widget):
    stack = widget_stack()
    stack.stop_callback()                                          # OSS answers 203 CallbackFailed
    page = open_widget(stack, "uppy-xhr")
    page.set_input_files("#pick", files=[png("lonely.png")])
    [event] = [e for e in wait_events(page, kind="complete") if e["event"] == "success"]
    body = event["body"]
    assert event["status"] == 203
    assert body["ok"] is False and body["code"] == "CallbackFailed" and body["unrecorded"] is True
    assert body["upload_id"] == event["upload_id"] and body["key"].startswith("uploads/")
    assert stack.get_object(body["key"]) == PNG
    assert not [r for r in stack.records() if r["source"] == "callback"]  # the event path may record it later


def test_uppy_xhr_upload_surfaces_oss_refusals_as_sentences(widget_stack, open_widget):
    stack = widget_stack()
    stack.set_clock_offset(3600)                                   # OSS's clock: every form has expired
    page = open_widget(stack, "uppy-xhr")
    page.set_input_files("#pick", files=[png("late.png")])
    events = wait_events(page, kind="complete")
    [error] = [e for e in events if e["event"] == "error"]
    assert error["message"] == "The upload form expired before the file was sent."
    assert {"event": "complete", "successful": 0, "failed": 1} in events and stack.records() == []


def test_uppy_aws_s3_post_mode_uploads_and_the_record_is_looked_up(widget_stack, open_widget, tmp_path):
    # the record poll reads the callback's store: point the signature function at the same SQLite file
    stack = widget_stack(OSSDIRECT_RECORDS=f"sqlite:///{tmp_path / 'stack0' / 'records.sqlite3'}")
    page = open_widget(stack, "uppy-awss3")
    page.set_input_files("#pick", files=[png("s3.png")])
    [event] = wait_events(page, kind="success")
    assert not page.problems
    # AwsS3 passes on response headers only: no record in the body ...
    assert "record_id" not in event["body"] and event["body"]["key"] == event["record"]["key"]
    # ... so the page fetched it: GET <signature-url>/records/<upload_id>
    record = record_for(stack, event["upload_id"])
    assert event["record"]["record_id"] == record["record_id"] and event["record"]["size"] == len(PNG)
    assert stack.get_object(record["key"]) == PNG


def test_filepond_server_process_loads_the_record_as_server_id(widget_stack, open_widget):
    stack = widget_stack()
    page = open_widget(stack, "filepond")
    page.set_input_files("input.filepond--browser", files=[png("pond.png")])
    [event] = [e for e in wait_events(page, kind="success") if e["event"] == "success"]
    assert not page.problems
    body = json.loads(event["serverId"])
    assert body["ok"] is True and body["size"] == len(PNG) and body["filename"] == "pond.png"
    assert record_for(stack, body["upload_id"])["record_id"] == body["record_id"]
    assert stack.get_object(body["key"]) == PNG
    assert any(e["event"] == "progress" for e in page.evaluate("window.events"))
    page.wait_for_selector(".filepond--item[data-filepond-item-state='processing-complete']")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "adapter-filepond.png"))


def test_filepond_shows_the_refusal_sentence(widget_stack, open_widget):
    stack = widget_stack()
    page = open_widget(stack, "filepond")
    page.set_input_files("input.filepond--browser", files=[{"name": "x.zip", "mimeType": "application/zip",
                                                             "buffer": b"PK\x03\x04"}])
    [event] = [e for e in wait_events(page, kind="error") if e["event"] == "error"]
    assert event["error"] == "Files of this type are not accepted here."
    page.wait_for_selector("text=Files of this type are not accepted here.")
    assert stack.records() == []


def test_antd_upload_custom_request_hands_the_record_to_on_success(widget_stack, open_widget):
    stack = widget_stack()
    page = open_widget(stack, "antd")
    assert page.get_attribute("input[type=file]", "accept") == "image/*,video/*,audio/*,application/pdf,text/plain"
    page.set_input_files("input[type=file]", files=[png("ant.png")])
    [event] = wait_events(page, kind="success")
    assert not page.problems
    response = event["response"]
    assert response["ok"] is True and response["filename"] == "ant.png"
    assert record_for(stack, response["upload_id"])["record_id"] == response["record_id"]
    assert stack.get_object(response["key"]) == PNG
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "adapter-antd.png"))


def test_antd_upload_reports_a_refusal_as_an_error(widget_stack, open_widget):
    stack = widget_stack(OSSDIRECT_MAX_BYTES="1000")
    page = open_widget(stack, "antd")
    page.set_input_files("input[type=file]", files=[png("big.png")])
    [event] = wait_events(page, kind="error")
    assert event["status"] == 413 and event["message"] == "This file is larger than the site accepts."
    assert stack.records() == []


def test_element_plus_upload_http_request_hands_the_record_to_on_success(widget_stack, open_widget):
    stack = widget_stack()
    page = open_widget(stack, "element")
    page.set_input_files("input[type=file]", files=[png("el.png")])
    [event] = wait_events(page, kind="success")
    assert not page.problems
    response = event["response"]
    assert response["ok"] is True and response["filename"] == "el.png"
    assert record_for(stack, response["upload_id"])["record_id"] == response["record_id"]
    assert stack.get_object(response["key"]) == PNG


def test_uppy_xhr_upload_signs_in_with_get_token(tmp_path, widget_bundles, open_widget):
    with LocalStack(tmp_path / "jwt", auth="jwt") as stack:
        publish_widgets(stack, widget_bundles)
        page = open_widget(stack, "uppy-xhr", f"?token={stack.token('alice')}")
        page.set_input_files("#pick", files=[png("mine.png")])
        [event] = [e for e in wait_events(page, kind="complete") if e["event"] == "success"]
        body = event["body"]
        assert body["user"] == "alice" and body["key"].startswith("uploads/alice/")
        assert record_for(stack, body["upload_id"])["user"] == "alice"
        # without a token the signature function refuses: the file fails with the sign-in sentence
        page = open_widget(stack, "uppy-xhr")
        page.set_input_files("#pick", files=[png("anon.png")])
        [error] = [e for e in wait_events(page, kind="complete") if e["event"] == "error"]
        assert error["message"] == "Sign in to upload."
