"""Issue 24 in the browser (Debian chromium): a byte flipped by a real proxy between the page and OSS is
shown as a failed upload with a clear sentence (English and zh-CN), never as a success, and that state has
no axe-core violation; in a private bucket a finished upload is downloaded through GET /files/<id>/url
when signed in, and signed out the page shows no (broken) public link."""

import pytest
from support import FlippingProxy
from test_accessibility import assert_no_violations
from test_auth_page import sign_in_as
from test_page_files import drop_bytes, new_page, record_of
from test_upload_page import item, open_page, wait_state

from devstack import BUCKET, LocalStack

pytestmark = pytest.mark.browser

DATA = b"The quick brown fox jumps over the lazy dog.\n" * 40
CORRUPT = {"en-US": "arrived changed on the way", "zh-CN": "在传输中被改变"}


@pytest.fixture
def proxied(tmp_path):
    """A signed-in stack whose forms name a byte-flipping proxy as the upload host (a bad link on the way)."""
    proxy = FlippingProxy("")
    stack = LocalStack(tmp_path / "proxied", auth="jwt",
                       env={"OSSDIRECT_UPLOAD_HOST": f"{proxy.url}/{BUCKET}"}).start()
    proxy.target = stack.emulator.url  # known once the emulator is up
    yield stack, proxy
    stack.stop()
    proxy.close()


@pytest.mark.parametrize("locale", CORRUPT)
def test_a_byte_flipped_by_a_proxy_shows_a_failed_upload_with_no_violation(browser, proxied, locale):
    stack, proxy = proxied
    context = browser.new_context(locale=locale, viewport={"width": 1000, "height": 900}, accept_downloads=True)
    page = context.new_page()
    try:
        open_page(page, stack)
        sign_in_as(page, "frank") if locale == "en-US" else _sign_in_any_language(page, "frank")
        drop_bytes(page, [("fox.txt", DATA)])
        wait_state(page, "fox.txt", ["failed", "refused", "done"])
        li = item(page, "fox.txt")
        assert proxy.flipped == 1 and proxy.answers, "the proxy never changed the upload"
        assert li.get_attribute("data-state") in ("failed", "refused")  # never "done"
        status = li.locator(".status").text_content()
        assert CORRUPT[locale] in status, status
        assert li.locator("a").count() == 0 and li.locator("button.open-file").count() == 0  # nothing to open
        assert record_of(stack, "fox.txt")["status"] == "corrupt"
        assert_no_violations(page, f"corrupt-{locale}")
    finally:
        context.close()


def _sign_in_any_language(page, user):
    page.fill("#test-user", user)
    page.press("#test-user", "Enter")
    page.wait_for_function("() => !document.getElementById('files').hidden")


def test_signed_in_a_finished_upload_downloads_through_the_files_route(browser, tmp_path):
    with LocalStack(tmp_path / "private", auth="jwt") as stack:
        assert stack.bucket_acl == "private"
        context, page = new_page(browser)
        try:
            open_page(page, stack)
            sign_in_as(page, "alice")
            drop_bytes(page, [("report.txt", DATA)])
            wait_state(page, "report.txt", ["done"])
            li = item(page, "report.txt")
            record = record_of(stack, "report.txt")
            assert stack.public_get(record["key"])[0] == 403  # the plain URL: refused in a private bucket
            assert li.locator("a").count() == 0  # no public link that would answer 403
            button = li.get_by_role("button", name="Open file report.txt", exact=True)
            with page.expect_download() as info:
                button.click()
            download = info.value
            assert download.suggested_filename == "report.txt"
            with open(download.path(), "rb") as f:
                assert f.read() == DATA
        finally:
            context.close()


def test_signed_out_in_a_private_bucket_no_broken_link(browser, tmp_path):
    with LocalStack(tmp_path / "anon", bucket_acl="private") as stack:
        context, page = new_page(browser)
        try:
            open_page(page, stack)
            drop_bytes(page, [("anon.txt", b"anonymous bytes")])
            wait_state(page, "anon.txt", ["done"])
            li = item(page, "anon.txt")
            assert li.locator("a").count() == 0
            assert li.locator("dd[data-field=link]").text_content() == "Stored privately: there is no public link."
            assert stack.public_get(record_of(stack, "anon.txt")["key"])[0] == 403
        finally:
            context.close()
