"""The upload page in a real browser against the local stack (emulator + both real functions)."""

import hashlib
import os
import re
import urllib.error

import pytest
from conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def open_page(page, stack, query=""):
    page.goto(stack.page_url + query)
    page.wait_for_selector("body[data-ready=true]")


def item(page, name):
    return page.locator("li.item", has=page.locator(".name", has_text=name))


def wait_state(page, name, states, timeout=20000):
    page.wait_for_function(
        "([n, s]) => [...document.querySelectorAll('li.item')].some(li => "
        "li.querySelector('.name').textContent.startsWith(n + ' (') && s.includes(li.dataset.state))",
        arg=[name, states], timeout=timeout)


def test_three_files_by_picker_and_drop_are_stored_recorded_and_shown(page, make_stack, tmp_path):
    stack = make_stack()
    open_page(page, stack)
    # end-user mode names kinds ("images"); developer details (the local stack may turn them on) MIME types
    assert re.search(r"Accepted: (images, |image/\*)", page.locator("#limits").text_content())
    files = {
        "one.txt": b"first file\n",
        "two.png": b"\x89PNG\r\n\x1a\n" + bytes(200),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    page.set_input_files("#picker", [str(tmp_path / n) for n in files])
    # the third one arrives by drag and drop
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File([new TextEncoder().encode('dropped content')], 'three.txt', {type: 'text/plain'}));
        const zone = document.getElementById('dropzone');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""")
    files["three.txt"] = b"dropped content"
    for name in files:
        wait_state(page, name, ["done"])
    records = {r["filename"]: r for r in stack.records()}
    assert set(records) == set(files)
    for name, data in files.items():
        rec = records[name]
        assert stack.get_object(rec["key"]) == data
        assert rec["etag"] == hashlib.md5(data).hexdigest().upper() and rec["size"] == len(data)
        li = item(page, name)
        assert li.locator(".status").text_content() == "Uploaded and recorded"
        assert li.locator("button.cancel").is_hidden() and li.locator("button.retry").is_hidden()
        assert li.locator("dd[data-field=key]").text_content() == rec["key"]
        assert li.locator("dd[data-field=record]").text_content() == rec["record_id"]
        href = li.locator("a", has_text="Open file").get_attribute("href")
        assert href.endswith(rec["key"])
    assert page.locator("#overall-text").text_content() == "100%"
    assert page.locator("#cancel-all").is_disabled()
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "upload-page.png"), full_page=True)


def test_keep_original_name_into_a_folder(page, make_stack, tmp_path):
    stack = make_stack()
    open_page(page, stack)
    page.check("input[name=naming][value=original]")
    page.fill("#folder", "team/2026")
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 test")
    page.set_input_files("#picker", str(tmp_path / "report.pdf"))
    wait_state(page, "report.pdf", ["done"])
    assert [r["key"] for r in stack.records()] == ["uploads/team/2026/report.pdf"]


def test_too_large_is_refused_before_upload_and_by_the_server_when_bypassed(page, make_stack, tmp_path):
    stack = make_stack(OSSDIRECT_MAX_BYTES="1000")
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 5000)
    open_page(page, stack)
    page.set_input_files("#picker", str(big))
    wait_state(page, "big.txt", ["refused"])
    assert "Too large" in item(page, "big.txt").locator(".status").text_content()
    assert stack.records() == []
    # with the client check bypassed the signature function refuses it, and the page says why
    open_page(page, stack, "?precheck=off")
    page.set_input_files("#picker", str(big))
    wait_state(page, "big.txt", ["refused"])
    assert "larger than the site accepts" in item(page, "big.txt").locator(".status").text_content()


def test_storage_refusal_is_explained(page, make_stack, tmp_path):
    # The browser declares a small size, then sends more bytes: the emulator (OSS) refuses the upload.
    stack = make_stack()
    open_page(page, stack)
    page.evaluate("""async () => {
        const { fetchForm, postForm, readOutcome } = await import('./uploader.js');
        const small = new File(['abc'], 'lie.txt', {type: 'text/plain'});
        const form = await fetchForm(window.__sig = (await (await fetch('config.json')).json()).signatureUrl, small);
        const r = await postForm(form, new File(['abcdefgh'], 'lie.txt', {type: 'text/plain'}));
        window.__outcome = r;
        try { readOutcome(form, small, r); } catch (e) { window.__sentence = e.sentence; }
    }""")
    outcome = page.evaluate("window.__outcome")
    assert outcome["status"] == 400 and "EntityTooLarge" in outcome["text"]
    assert page.evaluate("window.__sentence") == "The storage refused the file: it is larger than allowed."
    sentence = page.evaluate("""async () => {
        const { uploadFile } = await import('./uploader.js');
        // a type the server refuses outright
        try { await uploadFile(window.__sig, new File(['<b>x</b>'], 'x.html', {type: 'text/html'})); }
        catch (e) { return e.sentence; }
    }""")
    assert sentence == "Files of this type are not accepted here."
    assert stack.records() == []


def signed_keys(page):
    """Keys of every form the page received from the signature function (observed, not altered)."""
    keys = []

    def on_response(response):
        if response.request.method == "GET" and "filename=" in response.url and response.ok:
            keys.append(response.json()["key"])

    page.on("response", on_response)
    return keys


def assert_absent(stack, key):
    with pytest.raises(urllib.error.HTTPError) as err:
        stack.get_object(key)
    assert err.value.code == 404


def test_no_callback_201_then_duplicate_and_wrong_type_are_explained(page, make_stack, tmp_path):
    # no callback configured, OSS answers 201 with an XML PostResponse: done, but nothing recorded
    stack = make_stack(OSSDIRECT_CALLBACK_URL="", OSSDIRECT_SUCCESS_STATUS="201")
    open_page(page, stack)
    page.check("input[name=naming][value=original]")
    (tmp_path / "same.txt").write_bytes(b"only once")
    page.set_input_files("#picker", str(tmp_path / "same.txt"))
    wait_state(page, "same.txt", ["done"])
    li = item(page, "same.txt")
    assert li.locator(".status").text_content() == "Uploaded"
    assert li.locator("dd[data-field=key]").text_content() == "uploads/same.txt"
    assert li.locator("dd[data-field=record]").text_content() == "\u2014"
    assert stack.get_object("uploads/same.txt") == b"only once" and stack.records() == []
    # the same original name again: OSS refuses to overwrite (409 FileAlreadyExists)
    page.set_input_files("#picker", str(tmp_path / "same.txt"))
    page.wait_for_function("document.querySelectorAll('li.item[data-state=refused]').length === 1")
    assert page.locator("li.item[data-state=refused] .status").text_content() == \
        "A file with this name already exists; it was not replaced."
    # a form whose pinned Content-Type is changed on the way: OSS's policy check refuses the type
    sentence = page.evaluate("""async () => {
        const { fetchForm, postForm, readOutcome } = await import('./uploader.js');
        const sig = (await (await fetch('config.json')).json()).signatureUrl;
        const file = new File(['plain'], 'typed.txt', {type: 'text/plain'});
        const form = await fetchForm(sig, file);
        form.field_list = form.field_list.map(([k, v]) => [k, k === 'Content-Type' ? 'image/png' : v]);
        const raw = await postForm(form, file);
        try { readOutcome(form, file, raw); } catch (e) { return [raw.status, e.code, e.sentence]; }
    }""")
    assert sentence == [403, "AccessDenied", "The storage refused the file: this type of file is not accepted."]
    assert stack.get_object("uploads/same.txt") == b"only once"


def test_cancel_one_then_all_leaves_no_object(page, make_stack):
    stack = make_stack(OSSDIRECT_MAX_BYTES=str(400 * 1024 * 1024))
    open_page(page, stack)
    keys = signed_keys(page)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                  "downloadThroughput": -1, "uploadThroughput": 2 * 1024 * 1024})
    # four large files, generated in the page: three upload at once, the fourth waits its turn
    page.evaluate("""() => {
        const dt = new DataTransfer();
        for (const [name, mib] of [['huge.txt', 40], ['b.txt', 8], ['c.txt', 8], ['d.txt', 8]])
            dt.items.add(new File([new Uint8Array(mib * 1024 * 1024)], name, {type: 'text/plain'}));
        document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                                                  cancelable: true}));
    }""")
    page.wait_for_function("() => { const p = document.querySelector('li.item progress'); return p && p.value > 0; }",
                           timeout=20000)
    assert item(page, "d.txt").get_attribute("data-state") == "queued"
    item(page, "huge.txt").locator("button.cancel").click()
    wait_state(page, "huge.txt", ["cancelled"])
    assert item(page, "huge.txt").locator(".status").text_content() == "Cancelled"
    assert not item(page, "huge.txt").locator("button.retry").is_hidden()
    page.wait_for_function("document.getElementById('announcer').textContent === 'huge.txt: Cancelled'")
    page.click("#cancel-all")
    for name in ("b.txt", "c.txt", "d.txt"):
        wait_state(page, name, ["cancelled"])
    assert page.locator("#cancel-all").is_disabled()
    assert stack.records() == []
    assert len(keys) >= 3  # the running ones had their forms: none of those keys exists
    for key in keys:
        assert_absent(stack, key)


def test_parallel_limit_and_retry_after_network_failure(page, make_stack, tmp_path):
    stack = make_stack()
    open_page(page, stack)
    # count how many items are uploading at once, for the whole run
    page.evaluate("""() => {
        window.__maxRunning = 0;
        new MutationObserver(() => {
            const n = document.querySelectorAll('li.item[data-state=uploading]').length;
            window.__maxRunning = Math.max(window.__maxRunning, n);
        }).observe(document.getElementById('queue'), {subtree: true, attributes: true, childList: true});
    }""")
    names = [f"f{i}.txt" for i in range(6)]
    for name in names:
        (tmp_path / name).write_bytes(name.encode() * 1000)
    page.set_input_files("#picker", [str(tmp_path / n) for n in names])
    for name in names:
        wait_state(page, name, ["done"])
    assert page.evaluate("window.__maxRunning") == 3
    assert sorted(r["filename"] for r in stack.records()) == names

    # offline: the form cannot be fetched, the file fails as retryable; back online, Retry finishes it
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                  "downloadThroughput": -1, "uploadThroughput": -1})
    (tmp_path / "again.txt").write_bytes(b"second try")
    page.set_input_files("#picker", str(tmp_path / "again.txt"))
    wait_state(page, "again.txt", ["failed"])
    assert "Check your connection" in item(page, "again.txt").locator(".status").text_content()
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                  "downloadThroughput": -1, "uploadThroughput": -1})
    item(page, "again.txt").locator("button.retry").click()
    wait_state(page, "again.txt", ["done"])
    rec = [r for r in stack.records() if r["filename"] == "again.txt"]
    assert len(rec) == 1 and stack.get_object(rec[0]["key"]) == b"second try"


def test_expired_form_is_fetched_again_once(page, make_stack, tmp_path):
    stack = make_stack()
    open_page(page, stack)
    stack.set_clock_offset(3600)  # the emulated OSS's clock, moved past the forms' expiry
    fetched = []

    def signature_get(route):
        fetched.append(route.request.url)
        if "filename=fresh.txt" in route.request.url and sum("fresh.txt" in u for u in fetched) == 2:
            stack.set_clock_offset(0)  # the second form for fresh.txt arrives in time
        route.continue_()

    page.route(stack.signature_url + "?*", signature_get)
    (tmp_path / "stale.txt").write_bytes(b"never in time")
    page.set_input_files("#picker", str(tmp_path / "stale.txt"))
    wait_state(page, "stale.txt", ["refused"])
    assert item(page, "stale.txt").locator(".status").text_content() == \
        "The upload form expired before the file was sent."
    assert sum("stale.txt" in u for u in fetched) == 2  # one fresh form, then it gives up
    (tmp_path / "fresh.txt").write_bytes(b"second form in time")
    page.set_input_files("#picker", str(tmp_path / "fresh.txt"))
    wait_state(page, "fresh.txt", ["done"])
    assert sum("fresh.txt" in u for u in fetched) == 2
    assert [r["filename"] for r in stack.records()] == ["fresh.txt"]


def test_callback_failure_shows_stored_not_recorded(page, make_stack, tmp_path):
    stack = make_stack()
    open_page(page, stack)
    stack.stop_callback()
    (tmp_path / "late.txt").write_bytes(b"kept anyway")
    page.set_input_files("#picker", str(tmp_path / "late.txt"))
    wait_state(page, "late.txt", ["unrecorded"])
    status = item(page, "late.txt").locator(".status").text_content()
    assert status.startswith("Stored, but the server did not record it.")
    key = item(page, "late.txt").locator("dd[data-field=key]").text_content()
    assert stack.get_object(key) == b"kept anyway"
    assert not [r for r in stack.records() if r["source"] == "callback"]  # the event path may record it later


def test_keyboard_and_labels(page, make_stack):
    stack = make_stack()
    open_page(page, stack)
    for control in ("#picker", "#folder", "#overall"):
        label = page.locator(f"label[for={control[1:]}]")
        assert label.count() == 1, control
    assert page.locator("#announcer").get_attribute("aria-live") == "polite"
    # keyboard only: Tab reaches the drop zone (through the options)
    seen = []
    for _ in range(8):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.name"))
        if seen[-1] == "dropzone":
            break
    assert seen[-1] == "dropzone" and "naming" in seen, seen
    # Enter on the drop zone opens the file picker (observed as the click it receives; whether headless
    # chromium then shows a chooser depends on window focus, which is not what is under test)
    page.evaluate("window.__pickerClicks = 0; document.getElementById('picker')"
                  ".addEventListener('click', () => window.__pickerClicks++)")
    page.keyboard.press("Enter")
    page.keyboard.press(" ")
    assert page.evaluate("window.__pickerClicks") == 2
    assert page.locator("#picker").get_attribute("multiple") is not None


def test_phone_sized_screen_has_no_horizontal_scroll(browser, make_stack):
    stack = make_stack()
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    open_page(page, stack)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()
