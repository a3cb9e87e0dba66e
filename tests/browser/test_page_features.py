"""Issue 14, the page: thumbnails, paste, remove, automatic retry, one unit convention (Debian chromium)."""

import os
import re
import time

import pytest
from conftest import ARTIFACTS
from test_accessibility import WIDTHS, assert_no_violations, new_page
from test_upload_page import assert_absent, item, open_page, signed_keys, wait_state

pytestmark = pytest.mark.browser

CORS = {"Access-Control-Allow-Origin": "*"}


def drop_in_page(page, script):
    """Build a DataTransfer in the page (script fills `dt`, may await) and drop it on the drop zone."""
    page.evaluate("async () => { const dt = new DataTransfer(); " + script + """
        document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                                                  cancelable: true})); }""")


RED_PNG = """const c = Object.assign(document.createElement('canvas'), {width: 40, height: 30});
    const g = c.getContext('2d'); g.fillStyle = '#c00'; g.fillRect(0, 0, 40, 30);
    const png = await new Promise(r => c.toBlob(r, 'image/png'));"""


def form_requests(page, stack):
    """(monotonic time, filename) of every form request the page makes to the signature function."""
    seen = []
    page.on("request", lambda r: seen.append((time.monotonic(), r.url)) if r.url.startswith(
        stack.signature_url + "?") else None)
    return seen


def times_for(seen, name):
    return [t for t, url in seen if f"filename={name}" in url]


def test_image_thumbnails_come_from_the_local_file_before_upload(page, make_stack):
    stack = make_stack()
    open_page(page, stack)
    held = []  # form requests held back: the files stay "uploading" (nothing sent yet) while we look
    page.route(stack.signature_url + "?*", lambda route: held.append(route))
    drop_in_page(page, RED_PNG + """
        dt.items.add(new File([png], 'red.png', {type: 'image/png'}));
        dt.items.add(new File(['<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'],
                              'logo.svg', {type: 'image/svg+xml'}));
        dt.items.add(new File(['not a picture'], 'broken.png', {type: 'image/png'}));
        dt.items.add(new File(['plain'], 'notes.txt', {type: 'text/plain'}));""")
    page.wait_for_function("document.querySelector('li.item img.thumb')?.complete === true")
    page.wait_for_function("() => !document.querySelector('li.item[data-id=\"3\"] img')")  # broken.png: dropped
    thumb = item(page, "red.png").locator("img.thumb")
    assert thumb.get_attribute("alt") == "Preview of red.png"
    assert thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [40, 30]
    src = thumb.get_attribute("src")
    assert src.startswith("blob:" + stack.page_origin)  # a local object URL, not a download
    # shown, then revoked: the URL no longer resolves, the picture stays
    assert page.evaluate("src => fetch(src).then(() => 'alive', () => 'revoked')", src) == "revoked"
    assert thumb.is_visible()
    for name in ("logo.svg", "broken.png", "notes.txt"):
        assert item(page, name).locator("img").count() == 0, name
    assert item(page, "red.png").get_attribute("data-state") == "uploading" and len(held) >= 3  # before upload
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "features-thumbnails.png"), full_page=True)
    for route in held:
        route.continue_()
    page.unroute(stack.signature_url + "?*")
    wait_state(page, "red.png", ["done"])
    assert item(page, "red.png").locator("img.thumb").is_visible()


def test_paste_adds_files_but_not_into_a_text_field(page, make_stack):
    stack = make_stack()
    open_page(page, stack)
    assert "paste" in page.locator("#dropzone").text_content()
    hint = page.locator("#dropzone-hint").text_content()
    assert "paste files or a screenshot" in hint and "Ctrl+V" in hint
    # keyboard: Tab to the drop zone (the paste target), then paste a screenshot and a text file
    page.locator("#dropzone").focus()
    # every announcement, kept: the uploads' own announcements may replace this one before a poll sees it
    page.evaluate("""() => { window.announced = [];
        new MutationObserver(() => window.announced.push(document.getElementById('announcer').textContent))
            .observe(document.getElementById('announcer'), {childList: true, characterData: true, subtree: true}); }""")
    page.evaluate(RED_PNG.join(["async () => {", """
        const dt = new DataTransfer();
        dt.items.add(new File([png], 'image.png', {type: 'image/png'}));  // what a pasted screenshot is called
        dt.items.add(new File(['from the clipboard'], 'clip.txt', {type: 'text/plain'}));
        document.activeElement.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true,
                                                                          cancelable: true}));
    }"""]))
    page.wait_for_function("window.announced.includes('2 files added from the clipboard.')")
    names = page.eval_on_selector_all("li.item .name", "els => els.map(e => e.textContent)")
    assert len(names) == 2 and names[1].startswith("clip.txt (")
    pasted = names[0].split(" (")[0]
    assert re.fullmatch(r"pasted-\d{4}-\d\d-\d\d-\d{6}\.png", pasted), pasted  # a name of its own
    wait_state(page, pasted, ["done"])
    wait_state(page, "clip.txt", ["done"])
    assert item(page, pasted).locator("img.thumb").count() == 1
    assert sorted(r["filename"] for r in stack.records()) == sorted([pasted, "clip.txt"])
    # pasting into the folder field pastes its text there, and adds no file
    page.locator("#folder").focus()
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.setData('text/plain', 'photos');
        dt.items.add(new File(['x'], 'not-added.txt', {type: 'text/plain'}));
        document.activeElement.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true,
                                                                          cancelable: true}));
    }""")
    assert page.locator("li.item").count() == 2


def test_remove_before_during_and_after_upload(page, make_stack):
    stack = make_stack(OSSDIRECT_MAX_BYTES=str(64 * 1024 * 1024))
    open_page(page, stack)
    keys = signed_keys(page)
    seen = form_requests(page, stack)
    drop_in_page(page, "dt.items.add(new File(['kept in storage'], 'finished.txt', {type: 'text/plain'}));")
    wait_state(page, "finished.txt", ["done"])
    finished_key = item(page, "finished.txt").locator("dd[data-field=key]").text_content()
    # after upload: removed from the list only, said so, by keyboard
    remove = item(page, "finished.txt").locator("button.remove")
    assert remove.text_content() == "Remove from list"
    assert remove.get_attribute("aria-label") == "Remove from list: finished.txt (the stored file is kept)"
    remove.focus()
    page.keyboard.press("Enter")
    assert item(page, "finished.txt").count() == 0
    page.wait_for_function("document.getElementById('announcer').textContent === "
                           "'finished.txt removed from the list; the stored file is kept.'")
    assert stack.get_object(finished_key) == b"kept in storage"
    assert page.evaluate("document.activeElement.id") == "dropzone"  # focus goes somewhere sensible

    # during and before upload: slow uploads, four files; three run, the fourth waits
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                  "downloadThroughput": -1, "uploadThroughput": 1024 * 1024})
    drop_in_page(page, """for (const name of ['run1.bin', 'run2.bin', 'run3.bin', 'waiting.bin'])
        dt.items.add(new File([new Uint8Array(8 * 1024 * 1024)], name, {type: 'text/plain'}));""")
    page.wait_for_function("() => { const p = document.querySelector('li.item progress'); return p && p.value > 0; }",
                           timeout=20000)
    assert item(page, "waiting.bin").get_attribute("data-state") == "queued"
    # one of Cancel or Remove, never both (issue 22): Cancel while waiting or uploading, then Remove
    waiting = item(page, "waiting.bin")
    assert waiting.locator("button.remove").is_hidden() and waiting.locator("button.cancel").is_visible()
    assert waiting.locator("button.cancel").get_attribute("aria-label") == "Cancel waiting.bin"
    waiting.locator("button.cancel").click()
    wait_state(page, "waiting.bin", ["cancelled"])
    assert waiting.locator("button.cancel").is_hidden()
    assert waiting.locator("button.remove").get_attribute("aria-label") == "Remove waiting.bin"
    waiting.locator("button.remove").click()
    assert item(page, "waiting.bin").count() == 0
    # focus moves to the next item's one visible button
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Cancel run3.bin"
    item(page, "run1.bin").locator("button.cancel").focus()
    page.keyboard.press("Space")
    wait_state(page, "run1.bin", ["cancelled"])
    item(page, "run1.bin").locator("button.remove").focus()
    page.keyboard.press("Space")
    assert item(page, "run1.bin").count() == 0
    page.wait_for_function("document.getElementById('announcer').textContent === "
                           "'run1.bin removed from the list.'")
    # the others still upload; nothing waits for the removed ones
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                  "downloadThroughput": -1, "uploadThroughput": -1})
    wait_state(page, "run2.bin", ["done"], timeout=60000)
    wait_state(page, "run3.bin", ["done"], timeout=60000)
    assert page.locator("li.item").count() == 2
    assert page.locator("#overall-text").text_content() == "100%"
    assert sorted(r["filename"] for r in stack.records()) == ["finished.txt", "run2.bin", "run3.bin"]
    assert times_for(seen, "waiting.bin") == []  # removed before it started: never asked for a form
    recorded = {r["key"] for r in stack.records()}
    for key in set(keys) - recorded:  # run1.bin's form: cancelled mid-upload, nothing stored
        assert_absent(stack, key)


def test_network_errors_retry_automatically_then_offer_retry(page, make_stack):
    stack = make_stack()
    open_page(page, stack)
    seen = form_requests(page, stack)
    failures = {"flaky.txt": 2, "down.txt": 99, "stopped.txt": 99}

    def flaky(route):
        name = re.search(r"filename=([^&]+)", route.request.url).group(1)
        if failures.get(name, 0) > 0:
            failures[name] -= 1
            return route.abort()
        return route.continue_()

    page.route(stack.signature_url + "?*", flaky)
    # storage unreachable once (the POST to OSS fails): retried automatically too
    storage_failures = [1]

    def storage(route):
        if route.request.method == "POST" and storage_failures[0]:
            storage_failures[0] -= 1
            return route.abort()
        return route.continue_()

    drop_in_page(page, "dt.items.add(new File(['flaky but fine'], 'flaky.txt', {type: 'text/plain'}));")
    page.wait_for_selector("li.item[data-state=retrying]")
    li = item(page, "flaky.txt")
    assert li.locator(".status").text_content() == \
        "Could not reach the upload service. Retrying automatically (retry 1 of 3)."
    assert re.fullmatch(r"Next try in [12] s\.", li.locator(".note").text_content())
    assert not li.locator("button.cancel").is_hidden() and li.locator("button.retry").text_content() == "Retry now"
    page.screenshot(path=os.path.join(ARTIFACTS, "features-retrying.png"), full_page=True)
    wait_state(page, "flaky.txt", ["done"])
    t = times_for(seen, "flaky.txt")
    assert len(t) == 3 and 0.8 < t[1] - t[0] < 2.5 and 1.8 < t[2] - t[1] < 3.5, t  # backoff: 1 s, then 2 s
    assert li.locator(".note").is_hidden()

    page.route(stack.bucket_url + "/", storage)
    drop_in_page(page, "dt.items.add(new File(['storage once down'], 'stored.txt', {type: 'text/plain'}));")
    page.wait_for_function("[...document.querySelectorAll('li.item .status')].some(s => "
                           "s.textContent.startsWith('The connection to the storage failed. Retrying'))")
    wait_state(page, "stored.txt", ["done"])

    # always down: 1 + 3 tries (1, 2, 4 s apart), then the manual Retry
    drop_in_page(page, "dt.items.add(new File(['never'], 'down.txt', {type: 'text/plain'}));")
    wait_state(page, "down.txt", ["failed"], timeout=20000)
    t = times_for(seen, "down.txt")
    assert len(t) == 4 and 3.5 < t[3] - t[2] < 5.5, t
    down = item(page, "down.txt")
    assert down.locator(".status").text_content() == \
        "Could not reach the upload service. Check your connection and retry. (Tried 4 times.)"
    assert not down.locator("button.retry").is_hidden() and down.locator("button.retry").text_content() == "Retry"
    # Cancel during the countdown stops it: no further tries
    drop_in_page(page, "dt.items.add(new File(['never'], 'stopped.txt', {type: 'text/plain'}));")
    page.wait_for_function("[...document.querySelectorAll('li.item[data-state=retrying] .name')].some(n => "
                           "n.textContent.startsWith('stopped.txt'))")
    item(page, "stopped.txt").locator("button.cancel").click()
    wait_state(page, "stopped.txt", ["cancelled"])
    time.sleep(2.5)
    assert len(times_for(seen, "stopped.txt")) == 1 and item(page, "stopped.txt").get_attribute("data-state") == \
        "cancelled"
    assert sorted(r["filename"] for r in stack.records()) == ["flaky.txt", "stored.txt"]


def test_refusals_are_not_retried_and_offer_no_retry(page, make_stack):
    stack = make_stack(OSSDIRECT_MAX_BYTES="1000")
    open_page(page, stack, "?precheck=off")  # the server refuses, not the page
    seen = form_requests(page, stack)
    page.check("input[name=naming][value=original]")
    drop_in_page(page, """dt.items.add(new File([new Uint8Array(5000)], 'big.txt', {type: 'text/plain'}));
        dt.items.add(new File(['<b>x</b>'], 'page.html', {type: 'text/html'}));
        dt.items.add(new File(['once'], 'same.txt', {type: 'text/plain'}));""")
    wait_state(page, "same.txt", ["done"])
    drop_in_page(page, "dt.items.add(new File(['once'], 'same.txt', {type: 'text/plain'}));")
    page.wait_for_function("document.querySelectorAll('li.item[data-state=refused]').length === 3")
    time.sleep(1.5)  # longer than the first automatic retry would wait
    for name in ("big.txt", "page.html"):
        assert len(times_for(seen, name)) == 1, name
    sentences = page.eval_on_selector_all("li.item[data-state=refused] .status", "els => els.map(e => e.textContent)")
    assert sentences == ["This file is larger than the site accepts. It is 4.9 KiB; the limit is 1000 bytes.",
                         "Files of this type are not accepted here.",
                         "A file with this name already exists; it was not replaced."]
    for li in page.locator("li.item[data-state=refused]").all():
        assert li.locator("button.retry").is_hidden() and li.locator("button.remove").is_visible()
    # a refusal that another try may fix (the form expired) keeps its Retry
    stack.set_clock_offset(3600)
    drop_in_page(page, "dt.items.add(new File(['late'], 'late.txt', {type: 'text/plain'}));")
    wait_state(page, "late.txt", ["refused"])
    assert not item(page, "late.txt").locator("button.retry").is_hidden()


def test_one_unit_convention_in_the_limit_line_the_precheck_and_the_server_refusal(page, make_stack):
    stack = make_stack(OSSDIRECT_MAX_BYTES="1000000")  # the example: 976.6 KiB vs "1000000 bytes"
    open_page(page, stack)
    assert page.locator("#limits").text_content().startswith("Up to 976.6 KiB per file")
    drop_in_page(page, """dt.items.add(new File([new Uint8Array(2000000)], 'two-mb.bin', {type: 'text/plain'}));
        dt.items.add(new File([new Uint8Array(1000001)], 'one-over.bin', {type: 'text/plain'}));""")
    wait_state(page, "one-over.bin", ["refused"])
    assert item(page, "two-mb.bin").locator(".name").text_content() == "two-mb.bin (1.9 MiB)"
    assert item(page, "two-mb.bin").locator(".status").text_content() == \
        "Too large: 1.9 MiB; the limit is 976.6 KiB."
    # when both round to the same figure, the exact bytes tell them apart
    assert item(page, "one-over.bin").locator(".status").text_content() == \
        "Too large: 976.6 KiB (1000001 bytes); the limit is 976.6 KiB (1000000 bytes)."
    open_page(page, stack, "?precheck=off")
    drop_in_page(page, "dt.items.add(new File([new Uint8Array(2000000)], 'two-mb.bin', {type: 'text/plain'}));")
    wait_state(page, "two-mb.bin", ["refused"])
    status = item(page, "two-mb.bin").locator(".status").text_content()
    assert status == "This file is larger than the site accepts. It is 1.9 MiB; the limit is 976.6 KiB."
    assert "1000000" not in status  # never the server's raw byte count


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_new_item_states_have_no_accessibility_violation(browser, make_stack, width):
    """axe: a thumbnail, an automatic retry counting down, a refusal without Retry, a recorded-after-all item."""
    stack = make_stack(OSSDIRECT_MAX_BYTES="100000")
    context, page = new_page(browser, width)
    try:
        open_page(page, stack)
        page.route(stack.signature_url + "?*", lambda route: route.abort() if "filename=offline.txt" in
                   route.request.url else route.continue_())
        page.route(stack.signature_url + "records/*", lambda route: route.fulfill(
            status=200, content_type="application/json", headers=CORS,
            body='{"record_id": "rec-1", "key": "uploads/x", "size": 9, "source": "event", "status": "recorded"}'))
        drop_in_page(page, RED_PNG + """dt.items.add(new File([png], 'photo-with-a-long-name-for-a-phone.png',
                                                                  {type: 'image/png'}));
            dt.items.add(new File([new Uint8Array(200000)], 'huge.txt', {type: 'text/plain'}));""")
        wait_state(page, "photo-with-a-long-name-for-a-phone.png", ["done"])
        stack.stop_callback()
        drop_in_page(page, "dt.items.add(new File(['recorded later'], 'later.txt', {type: 'text/plain'}));")
        wait_state(page, "later.txt", ["recorded"], timeout=30000)
        drop_in_page(page, "dt.items.add(new File(['x'], 'offline.txt', {type: 'text/plain'}));")
        page.wait_for_selector("li.item[data-state=retrying]")
        states = page.evaluate("[...document.querySelectorAll('li.item')].map(li => li.dataset.state).sort()")
        assert states == ["done", "recorded", "refused", "retrying"]
        assert_no_violations(page, f"features-{width}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
