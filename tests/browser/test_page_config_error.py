"""A misconfigured signature function reaches the person (issue 20): its answer carries CORS, so the page
shows the server's own sentence naming the setting, not "could not be reached"."""

import pytest
from test_accessibility import drop, wait_state

pytestmark = pytest.mark.browser


def test_the_page_shows_which_setting_is_wrong(page, make_stack):
    stack = make_stack(OSSDIRECT_MAX_BYTES="lots")
    page.goto(stack.page_url)
    page.wait_for_selector("body[data-ready=true]")
    drop(page, [("notes.txt", "text/plain", 20)])
    wait_state(page, "notes.txt", ["failed", "refused"])
    text = page.locator("li.item .status").first.inner_text()
    assert "The upload service is misconfigured: OSSDIRECT_MAX_BYTES must be an integer" in text, text
    assert "could not be reached" not in text
