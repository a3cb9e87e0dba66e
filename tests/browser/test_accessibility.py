"""axe-core (from npm, tests/browser/package.json) finds no accessibility violation on the upload page.

Checked at a desktop width (1000 px) and a phone width (360 px), on the idle page, on the signed-out
page of a stack that requires sign-in (Test user field, "Sign in to upload" link, an item that needs
sign-in), and on a signed-in page with finished, stored-but-unrecorded, refused, failed and in-progress
items. axe runs its default rule set (WCAG 2.x A/AA and best practices) in Debian's chromium.
"""

import json
import os
from pathlib import Path

import pytest
from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"desktop": 1000, "phone": 360}
LONG_NAME = "finished-with-a-rather-long-file-name-that-must-wrap-on-a-phone.txt"


def new_page(browser, width):
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed ({AXE}): run `npm ci` in tests/browser (make test does it)")
    phone = width < 600
    context = browser.new_context(viewport={"width": width, "height": 900 if not phone else 740}, is_mobile=phone)
    return context, context.new_page()


def open_page(page, stack):
    page.goto(stack.page_url)
    page.wait_for_selector("body[data-ready=true]")


def wait_state(page, name, states, timeout=20000):
    page.wait_for_function(
        "([n, s]) => [...document.querySelectorAll('li.item')].some(li => "
        "li.querySelector('.name').textContent.startsWith(n + ' (') && s.includes(li.dataset.state))",
        arg=[name, states], timeout=timeout)


def drop(page, files):
    """Drop generated files on the drop zone: [(name, type, size in bytes)]."""
    page.evaluate("""files => {
        const dt = new DataTransfer();
        for (const [name, type, size] of files)
            dt.items.add(new File([new Uint8Array(size).fill(97)], name, {type}));
        document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                                                  cancelable: true}));
    }""", files)


def axe_violations(page, name):
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"a11y-{name}.png"), full_page=True)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [{"target": n["target"], "summary": n.get("failureSummary", "")} for n in v["nodes"]]}
            for v in result["violations"]]


def assert_no_violations(page, name):
    violations = axe_violations(page, name)
    assert violations == [], f"axe found {len(violations)} violation(s) on {name}:\n" + json.dumps(violations, indent=1)


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_idle_page(browser, make_stack, width):
    stack = make_stack()
    context, page = new_page(browser, width)
    try:
        open_page(page, stack)
        assert_no_violations(page, f"idle-{width}")
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_signed_out_page_with_an_item_that_needs_sign_in(browser, tmp_path, width):
    from devstack import LocalStack

    with LocalStack(tmp_path / "stack", auth="jwt") as stack:
        context, page = new_page(browser, width)
        try:
            open_page(page, stack)
            assert page.locator("#test-user-form").is_visible() and page.locator("#sign-in a").is_visible()
            drop(page, [("anonymous.txt", "text/plain", 20)])
            wait_state(page, "anonymous.txt", ["signin"])
            assert_no_violations(page, f"signed-out-{width}")
        finally:
            context.close()


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_signed_in_page_with_finished_failed_and_running_items(browser, tmp_path, width):
    from devstack import LocalStack

    with LocalStack(tmp_path / "stack", auth="jwt") as stack:
        context, page = new_page(browser, width)
        try:
            open_page(page, stack)
            page.fill("#test-user", "alice")
            page.press("#test-user", "Enter")
            page.wait_for_selector("#signed-in-as")
            # a form request that cannot reach the service: failed, retryable
            page.route(stack.signature_url + "?*", lambda route: route.abort() if "filename=offline.txt" in
                       route.request.url else route.continue_())
            drop(page, [(LONG_NAME, "text/plain", 300),
                        ("page.html", "text/html", 40),  # refused before upload: type not accepted
                        ("offline.txt", "text/plain", 30)])
            wait_state(page, LONG_NAME, ["done"])
            wait_state(page, "page.html", ["refused"])
            wait_state(page, "offline.txt", ["failed"])
            stack.stop_callback()  # stored, but not recorded
            # and it stays so while axe runs (the page polls for the record the event path may write)
            page.route(stack.signature_url + "records/*", lambda route: route.fulfill(
                status=404, content_type="application/json", headers={"Access-Control-Allow-Origin": "*"},
                body='{"code": "RecordNotFound", "message": "not yet"}'))
            drop(page, [("unrecorded.txt", "text/plain", 50)])
            wait_state(page, "unrecorded.txt", ["unrecorded"], timeout=30000)
            # one upload still running, slowed down
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                          "uploadThroughput": 256 * 1024})
            drop(page, [("running.mp4", "video/mp4", 16 * 1024 * 1024)])
            page.wait_for_function("() => [...document.querySelectorAll('li.item[data-state=uploading] progress')]"
                                   ".some(p => p.value > 0)", timeout=20000)
            states = page.evaluate("[...document.querySelectorAll('li.item')].map(li => li.dataset.state).sort()")
            assert states == ["done", "failed", "refused", "unrecorded", "uploading"]
            assert_no_violations(page, f"items-{width}")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        finally:
            context.close()
