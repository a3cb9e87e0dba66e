"""The seed samples' own clients, unchanged, against our signature function under OSSDIRECT_COMPAT=seed."""

import os
import re
import time
from pathlib import Path

import oss2
import pytest
import requests

from devstack import BUCKET

pytestmark = pytest.mark.browser

# The seed documents are third-party text that cannot live in the repository: this setting names the
# folder that holds them (.ci/run sets it). Absent: skipped locally with that reason; in CI, a failure.
SEEDS_SETTING = "OSSDIRECT_SEEDS_DIR"
NEEDS = f"{SEEDS_SETTING} must name the folder of the seed documents (002_*.txt: the V4 sample's HTML client)"


@pytest.fixture(scope="module")
def seeds():
    folder = os.environ.get(SEEDS_SETTING, "")
    if not folder:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{NEEDS}; it is not set", pytrace=False)
        pytest.skip(f"{NEEDS}; it is not set")
    path = Path(folder)
    if not list(path.glob("002_*.txt")):
        pytest.fail(f"{NEEDS}; {path} has none", pytrace=False)
    return path


def seed_v4_page(seeds):
    """The V4 sample's HTML client (fetch + FormData), exactly as the document prints it."""
    [doc] = seeds.glob("002_*.txt")
    text = doc.read_text(encoding="utf-8")
    match = re.search(r"<!DOCTYPE html>.*?</html>", text, re.S)
    assert match, "the seed's HTML client was not found"
    return match.group(0)


def test_seed_v4_html_client_unchanged_uploads_in_chromium(make_stack, browser, seeds):
    stack = make_stack(OSSDIRECT_COMPAT="seed")
    page_html = seed_v4_page(seeds)
    assert page_html.count('"/get_post_signature_for_oss_upload"') == 1
    page_html = page_html.replace('"/get_post_signature_for_oss_upload"', f'"{stack.signature_url}"')  # the one change
    sdk = oss2.Bucket(oss2.StsAuth(*stack.credentials), stack.emulator.url, BUCKET)
    sdk.put_object("seed-v4.html", page_html.encode("utf-8"), headers={"Content-Type": "text/html"})

    context = browser.new_context()
    page = context.new_page()
    try:
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
        page.goto(f"{stack.bucket_url}/seed-v4.html")
        page.set_input_files("#file", files=[{"name": "seed photo.png", "mimeType": "image/png",
                                               "buffer": b"\x89PNG\r\n\x1a\n seed"}])
        page.click("button[type=submit]")
        page.wait_for_function("() => true")
        for _ in range(50):
            if dialogs:
                break
            page.wait_for_timeout(100)
        assert dialogs == ["File uploaded."]
    finally:
        context.close()
    assert stack.get_object("uploads/seed photo.png") == b"\x89PNG\r\n\x1a\n seed"
    # recorded by the event path (the V4 client has no callback), by key + ETag, and kept
    deadline = time.monotonic() + 15
    while not [r for r in stack.records() if r["key"] == "uploads/seed photo.png" and r.get("content_type_detected")]:
        assert time.monotonic() < deadline, "the event path did not record the seed upload"
        time.sleep(0.1)
    [record] = [r for r in stack.records() if r["key"] == "uploads/seed photo.png"]
    assert record["source"] == "event" and record["status"] == "recorded" and record["upload_id"].startswith("seed:")


def test_seed_v1_client_fields_upload_and_are_recorded(make_stack):
    stack = make_stack(OSSDIRECT_COMPAT="seed")
    r = requests.get(stack.signature_url, params={"signature_version": "v1"}, timeout=10)
    assert r.status_code == 200
    data = r.json()
    for name in ("accessid", "policy", "signature", "callback", "dir", "host", "expire"):
        assert data[name], name
    # exactly the fields the V1 samples (Plupload multipart_params) send, in their order, plus the STS
    # token their STS variant sends (the function signs with its role's STS credentials, never a long-term key)
    fields = {"key": data["dir"] + "old-client.txt", "policy": data["policy"], "OSSAccessKeyId": data["accessid"],
              "success_action_status": "200", "callback": data["callback"], "signature": data["signature"],
              "x-oss-security-token": data["security_token"]}
    up = requests.post(data["host"], data=fields, files={"file": ("old-client.txt", b"hello", "text/plain")},
                       timeout=15)
    assert up.status_code == 200, up.text
    answer = up.json()
    assert answer["key"] == "uploads/old-client.txt" and answer["size"] == 5
    [rec] = [x for x in stack.records() if x["key"] == "uploads/old-client.txt"]
    assert rec["upload_id"].startswith("seed:") and rec["status_reason"].startswith("seed-compat")
    # the event path names the same record (key + ETag): still exactly one, never quarantined as foreign
    assert stack.wait_for_record(rec["upload_id"], where=lambda r: r.get("content_type_detected"))
    [again] = [x for x in stack.records() if x["key"] == "uploads/old-client.txt"]
    assert again["record_id"] == rec["record_id"] and again["status"] == "recorded"
    # what the setting gives up: a seed form may store (and record) other keys under the prefix
    second = requests.post(data["host"], data=dict(fields, key=data["dir"] + "second.txt"),
                           files={"file": ("second.txt", b"hello", "text/plain")}, timeout=15)
    assert second.status_code == 200 and second.json()["key"] == "uploads/second.txt"


@pytest.mark.parametrize("env", [{}, {"OSSDIRECT_PREFIX_FORMS": "true"}])
def test_seed_clients_are_refused_without_the_compat_setting(make_stack, env):
    stack = make_stack(**env)
    r = requests.get(stack.signature_url, params={"signature_version": "v1"}, timeout=10)
    if r.status_code == 200:  # prefix forms on: the form pins fields a seed client never sends
        data = r.json()
        fields = {"key": data["dir"] + "x.txt", "policy": data["policy"], "OSSAccessKeyId": data["accessid"],
                  "success_action_status": "200", "callback": data["callback"], "signature": data["signature"],
                  "x-oss-security-token": data["security_token"]}
        up = requests.post(data["host"], data=fields, files={"file": ("x.txt", b"hello", "text/plain")}, timeout=15)
        assert up.status_code == 403
    else:
        assert r.status_code == 400
