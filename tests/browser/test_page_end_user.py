"""Issue 22, the page for end users (Debian chromium): no jargon unless the developer switch is on, one
Cancel-or-Remove button per state, pause keeps the progress, a file dropped while signed out uploads after
sign-in, and the item's buttons stay on one line beside a long name on a phone."""

import os

import pytest
from conftest import ARTIFACTS
from test_accessibility import WIDTHS, assert_no_violations, drop, new_page
from test_upload_page import item, open_page, wait_state

pytestmark = pytest.mark.browser

TECHNICAL = ("key", "record", "time")


def deployed_config(stack):
    """config.json as a deploy writes it (no "developer" flag): the page's own default, end-user mode,
    whatever the local stack's config turns on."""
    stack.put_page_config({"signatureUrl": stack.signature_url})


def test_end_user_mode_by_default_and_developer_details_behind_a_remembered_switch(browser, make_stack):
    stack = make_stack()
    deployed_config(stack)
    context, page = new_page(browser, 1000)
    try:
        open_page(page, stack)
        switch = page.get_by_role("switch", name="Developer details")
        assert switch.is_visible() and not switch.is_checked()
        limits = page.locator("#limits").inner_text()
        assert limits == "Up to 100.0 MiB per file. Accepted: images, videos, audio, PDF files, text files."
        assert "/" not in limits  # no MIME types
        drop(page, [("notes.txt", "text/plain", 12)])
        wait_state(page, "notes.txt", ["done"])
        li = item(page, "notes.txt")
        for field in TECHNICAL:  # in the page (developer mode shows them), not on screen
            assert li.locator(f"dd[data-field={field}]").count() == 1 and not li.locator(f"dd[data-field={field}]").is_visible()
        assert "Key" not in li.inner_text() and "Record" not in li.inner_text() and " s\n" not in li.inner_text()
        assert li.locator("dd[data-field=size]").is_visible() and li.get_by_text("Open file").is_visible()
        drop(page, [("page.html", "text/html", 10)])  # the page's own type check, before any upload
        wait_state(page, "page.html", ["refused"])
        assert item(page, "page.html").locator(".status").inner_text() == ("Files of this type are not accepted "
            "here. Accepted: images, videos, audio, PDF files, text files.")
        switch.click()
        assert "Accepted: image/*, video/*, audio/*, application/pdf, text/plain" in page.locator("#limits").inner_text()
        drop(page, [("other.html", "text/html", 10)])
        wait_state(page, "other.html", ["refused"])
        assert item(page, "other.html").locator(".status").inner_text().startswith(
            "Files of type text/html are not accepted")  # developer details: the MIME types
        [record] = stack.records()
        assert li.locator("dd[data-field=key]").is_visible()
        assert li.locator("dd[data-field=key]").inner_text() == record["key"]
        assert li.locator("dd[data-field=record]").inner_text() == record["record_id"]
        assert li.locator("dd[data-field=time]").inner_text().endswith(" s")
        page.reload()  # remembered in this browser
        page.wait_for_selector("body[data-ready=true]")
        assert switch.is_checked() and "application/pdf" in page.locator("#limits").inner_text()
        switch.press("Space")  # the keyboard works too
        assert not switch.is_checked()
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert not switch.is_checked() and "application/pdf" not in page.locator("#limits").inner_text()
    finally:
        context.close()


def test_page_config_may_turn_developer_mode_on_and_the_person_may_turn_it_off(browser, make_stack):
    stack = make_stack()
    stack.put_page_config({"signatureUrl": stack.signature_url, "developer": True})  # e.g. the local stack
    context, page = new_page(browser, 1000)
    try:
        open_page(page, stack)
        switch = page.get_by_role("switch", name="Developer details")
        assert switch.is_checked() and "text/plain" in page.locator("#limits").inner_text()
        switch.click()
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert not switch.is_checked()  # the person's choice wins over the page's default
        assert page.evaluate("localStorage.getItem('ossdirect.developer')") == "0"
    finally:
        context.close()


WATCH_BUTTONS = """() => {
    window.seenButtons = new Set();
    const look = () => {
        for (const li of document.querySelectorAll('li.item')) {
            const cancel = !li.querySelector('button.cancel').hidden, remove = !li.querySelector('button.remove').hidden;
            window.seenButtons.add(li.dataset.state + ':' + (cancel && remove ? 'both' : cancel ? 'cancel'
                                                                    : remove ? 'remove' : 'none'));
        }
    };
    new MutationObserver(look).observe(document.getElementById('queue'),
        {subtree: true, childList: true, attributes: true, attributeFilter: ['hidden', 'data-state']});
}"""


def test_one_cancel_or_remove_button_per_state(page, make_stack):
    stack = make_stack()
    open_page(page, stack)
    page.evaluate(WATCH_BUTTONS)
    held = []

    def route(r):
        url = r.request.url
        if "filename=broken.txt" in url:
            r.fulfill(status=503, content_type="application/json", headers={"Access-Control-Allow-Origin": "*"},
                      body='{"code": "ServiceUnavailable", "message": "down"}')
        elif "filename=offline.txt" in url:
            r.abort()
        elif "filename=held" in url:
            held.append(r)
        else:
            r.continue_()

    page.route(stack.signature_url + "?*", route)
    drop(page, [("notes.txt", "text/plain", 10), ("page.html", "text/html", 10)])
    wait_state(page, "notes.txt", ["done"])
    wait_state(page, "page.html", ["refused"])
    drop(page, [("broken.txt", "text/plain", 10)])
    wait_state(page, "broken.txt", ["failed"])
    drop(page, [("offline.txt", "text/plain", 10)])
    wait_state(page, "offline.txt", ["retrying"])
    drop(page, [("held1.txt", "text/plain", 10), ("held2.txt", "text/plain", 10), ("held3.txt", "text/plain", 10)])
    wait_state(page, "offline.txt", ["queued"], timeout=10000)  # every slot is taken: it waits its turn
    item(page, "held1.txt").locator("button.cancel").click()
    wait_state(page, "held1.txt", ["cancelled"])
    seen = set(page.evaluate("[...window.seenButtons]"))
    expected = {"queued:cancel", "uploading:cancel", "retrying:cancel", "done:remove", "refused:remove",
                "failed:remove", "cancelled:remove"}
    assert expected <= seen, seen
    assert not [s for s in seen if s.endswith((":both", ":none"))], seen
    for route_ in held:
        route_.abort()


def test_pause_and_resume_keep_the_progress_where_it_was(page, make_stack, tmp_path):
    big = tmp_path / "video.mp4"
    big.write_bytes(bytes(range(256)) * (72 * 4096))  # 72 MiB: 9 parts of 8 MiB
    stack = make_stack(OSSDIRECT_MAX_BYTES=str(200 * 1024 * 1024))
    open_page(page, stack)
    # every change of the item's bar and the overall bar (a <progress> reflects value to its attribute)
    page.evaluate("""() => {
        window.bars = [];
        const watch = (el, name) => new MutationObserver(() => window.bars.push([name, el.value, performance.now()]))
            .observe(el, {attributes: true, attributeFilter: ['value']});
        watch(document.getElementById('overall'), 'overall');
        new MutationObserver(() => { const p = document.querySelector('li.item progress');
            if (p && !p.dataset.watched) { p.dataset.watched = '1'; watch(p, 'item'); } })
            .observe(document.getElementById('queue'), {childList: true});
    }""")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")  # real byte-level progress, slowed: the parts are in flight when paused
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 8 * 1024 * 1024})
    page.set_input_files("#picker", str(big))
    li = item(page, "video.mp4")
    li.locator("button.pause").wait_for(state="visible", timeout=20000)
    page.wait_for_function("document.querySelector('li.item progress').value >= 3", timeout=30000)
    li.locator("button.pause").click()
    wait_state(page, "video.mp4", ["paused"])
    page.wait_for_timeout(500)
    at_pause = page.evaluate("[document.querySelector('li.item progress').value, document.getElementById('overall').value]")
    assert min(at_pause) >= 3, at_pause  # not back to 0
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    li.locator("button.pause").click()  # Resume
    wait_state(page, "video.mp4", ["done"], timeout=120000)
    bars = page.evaluate("window.bars")
    for name in ("item", "overall"):
        values = [v for n, v, _ in bars if n == name]
        assert values and values[-1] == 100, name
        drops = [(a, b) for a, b in zip(values, values[1:]) if b < a]
        assert drops == [], f"the {name} bar went back: {drops} in {values}"
    [rec] = [r for r in stack.records() if r["key"].endswith(".mp4")]
    assert rec["size"] == 72 * 1024 * 1024 and rec["etag"].endswith("-9")


def test_a_file_dropped_while_signed_out_uploads_after_sign_in(browser, tmp_path):
    from devstack import LocalStack

    with LocalStack(tmp_path / "stack", auth="jwt") as stack:
        context, page = new_page(browser, 1000)
        try:
            open_page(page, stack)
            drop(page, [("early.txt", "text/plain", 20), ("early2.txt", "text/plain", 30)])
            wait_state(page, "early.txt", ["signin"])
            wait_state(page, "early2.txt", ["signin"])
            li = item(page, "early.txt")
            assert li.locator(".note").inner_text() == "It uploads once you sign in."
            assert stack.records() == []
            page.fill("#test-user", "dana")
            page.press("#test-user", "Enter")  # signing in is all it takes: no second drop, no Retry
            wait_state(page, "early.txt", ["done"])
            wait_state(page, "early2.txt", ["done"])
            assert li.locator(".note").is_hidden()
            records = stack.records()
            assert sorted(r["filename"] for r in records) == ["early.txt", "early2.txt"]
            assert {r["user"] for r in records} == {"dana"}
        finally:
            context.close()


def test_signing_in_elsewhere_then_coming_back_uploads_the_waiting_file(browser, tmp_path):
    """A host site's token function: signed out at the drop; signed in (say, in another tab) when the
    person comes back to the page, which looks again on focus."""
    from devstack import LocalStack

    with LocalStack(tmp_path / "stack", auth="jwt") as stack:
        stack.put_page_config({"signatureUrl": stack.signature_url,
                               "auth": {"getToken": "hostAuth.getToken", "signInUrl": "/login"}})
        context, page = new_page(browser, 1000)
        try:
            page.add_init_script("window.hostAuth = {current: '', getToken() { return this.current; }};")
            open_page(page, stack)
            assert page.locator("#sign-in a").is_visible()
            drop(page, [("later.txt", "text/plain", 20)])
            wait_state(page, "later.txt", ["signin"])
            page.wait_for_timeout(300)
            assert item(page, "later.txt").get_attribute("data-state") == "signin"  # waits, does not loop
            page.evaluate("t => { hostAuth.current = t; window.dispatchEvent(new Event('focus')); }",
                          stack.token("erin"))
            wait_state(page, "later.txt", ["done"])
            [record] = stack.records()
            assert record["user"] == "erin" and record["filename"] == "later.txt"
            assert page.locator("#signed-in-as").inner_text() == "Signed in as erin."
        finally:
            context.close()


LONG = "holiday-photos-from-the-trip-to-the-mountains-with-a-very-long-descriptive-name-2026-07-14.txt"


def button_layout(page):
    """Per item: the name's box and the boxes of its visible buttons (page coordinates)."""
    return page.evaluate("""() => [...document.querySelectorAll('li.item')].map(li => {
        const box = el => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, right: r.right, bottom: r.bottom}; };
        return {state: li.dataset.state, name: box(li.querySelector('.name')),
                buttons: [...li.querySelectorAll('.actions button')].filter(b => !b.hidden).map(box)};
    })""")


def test_buttons_stay_on_one_line_beside_a_long_name_on_a_phone(browser, make_stack):
    stack = make_stack()
    context, page = new_page(browser, 390)
    try:
        open_page(page, stack)
        page.route(stack.signature_url + "?*", lambda r: r.fulfill(
            status=503, content_type="application/json", headers={"Access-Control-Allow-Origin": "*"},
            body='{"code": "ServiceUnavailable", "message": "down"}') if "filename=failed-" in r.request.url
            else r.continue_())
        drop(page, [(LONG, "text/plain", 40), ("failed-" + LONG, "text/plain", 40)])
        wait_state(page, LONG, ["done"])
        wait_state(page, "failed-" + LONG, ["failed"])
        layout = button_layout(page)
        assert sorted(len(i["buttons"]) for i in layout) == [1, 2]  # Remove; Retry + Remove
        width = page.evaluate("window.innerWidth")
        for entry in layout:
            name, buttons = entry["name"], entry["buttons"]
            assert name["bottom"] - name["y"] > 40, entry  # the name does wrap over several lines
            assert len({round(b["y"]) for b in buttons}) == 1, entry  # the buttons on one line
            for b in buttons:
                assert b["y"] < name["bottom"] and b["x"] >= name["right"], entry  # beside the name, not under
                assert b["right"] <= width, entry
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "end-user-phone-390.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_axe_on_the_new_states_in_both_modes(browser, make_stack, width):
    stack = make_stack()
    deployed_config(stack)
    context, page = new_page(browser, width)
    held = []
    try:
        open_page(page, stack)

        def route(r):
            if "filename=failed.txt" in r.request.url:
                r.fulfill(status=503, content_type="application/json", headers={"Access-Control-Allow-Origin": "*"},
                          body='{"code": "ServiceUnavailable", "message": "The service is not available."}')
            elif "filename=held" in r.request.url:
                held.append(r)
            else:
                r.continue_()

        page.route(stack.signature_url + "?*", route)
        drop(page, [(LONG, "text/plain", 40), ("failed.txt", "text/plain", 10)])
        wait_state(page, LONG, ["done"])
        wait_state(page, "failed.txt", ["failed"])
        drop(page, [("held-cancelled.txt", "text/plain", 10), ("held-running.txt", "text/plain", 10)])
        wait_state(page, "held-running.txt", ["uploading"])
        item(page, "held-cancelled.txt").locator("button.cancel").click()
        wait_state(page, "held-cancelled.txt", ["cancelled"])
        assert_no_violations(page, f"end-user-{width}")
        page.get_by_role("switch", name="Developer details").click()
        assert item(page, LONG).locator("dd[data-field=key]").is_visible()
        assert_no_violations(page, f"developer-{width}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        for r in held:
            r.abort()
        context.close()


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_axe_on_a_file_waiting_for_sign_in(browser, tmp_path, width):
    from devstack import LocalStack

    with LocalStack(tmp_path / "stack", auth="jwt") as stack:
        context, page = new_page(browser, width)
        try:
            open_page(page, stack)
            drop(page, [(LONG, "text/plain", 20)])
            wait_state(page, LONG, ["signin"])
            assert item(page, LONG).locator(".note").is_visible()
            assert_no_violations(page, f"waiting-for-sign-in-{width}")
        finally:
            context.close()


def test_the_new_text_in_simplified_chinese(browser, tmp_path):
    """zh-CN: the switch, the end-user limit line and the note of a file waiting for sign-in."""
    from devstack import LocalStack

    with LocalStack(tmp_path / "stack", auth="jwt") as stack:
        context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True)
        # the person's own choice: end-user mode, whatever the stack's config.json says
        context.add_init_script("localStorage.setItem('ossdirect.developer', '0')")
        page = context.new_page()
        try:
            open_page(page, stack)
            assert page.get_by_role("switch", name="开发者详情").is_visible()
            assert page.locator("#limits").inner_text() == \
                "每个文件最大 100.0 MiB。接受:图片、视频、音频、PDF 文件、文本文件。"
            drop(page, [("早.txt", "text/plain", 20)])
            wait_state(page, "早.txt", ["signin"])
            assert item(page, "早.txt").locator(".note").inner_text() == "登录后会自动上传。"
            assert item(page, "早.txt").locator("button.remove").inner_text() == "移除"
            assert item(page, "早.txt").locator("button.cancel").is_hidden()
            assert_no_violations(page, "zh-CN-waiting-390")
        finally:
            context.close()
