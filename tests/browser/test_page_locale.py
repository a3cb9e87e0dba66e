"""The page in Simplified Chinese: Chromium launched with locale zh-CN (navigator.languages ["zh-CN"])
gets Chinese text from web/i18n.js (static page, limits line, statuses, the clients' refusal sentences)
and axe-core still finds no violation. An English browser keeps English (the other browser tests)."""

import pytest
from test_accessibility import AXE, assert_no_violations, drop, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture
def zh_page(browser):
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed ({AXE}): run `npm ci` in tests/browser (make test does it)")
    context = browser.new_context(locale="zh-CN", viewport={"width": 1000, "height": 900})
    yield context.new_page()
    context.close()


def status_of(page, name):
    return page.evaluate("n => [...document.querySelectorAll('li.item')].find(li => "
                         "li.querySelector('.name').textContent.startsWith(n + ' (')).querySelector('.status')"
                         ".textContent", name)


def test_chinese_page_uploads_and_has_no_axe_violations(zh_page, make_stack):
    page = zh_page
    stack = make_stack()
    stack.put_page_config({"signatureUrl": stack.signature_url})  # a deployed page: end-user mode
    page.goto(stack.page_url)
    page.wait_for_selector("body[data-ready=true]")
    assert page.evaluate("navigator.languages[0]") == "zh-CN"
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.title() == "上传文件"
    assert page.locator("h1").inner_text() == "上传文件"
    assert page.locator("#dropzone strong").inner_text() == "将文件拖放到这里"
    assert page.locator("label[for=picker]").inner_text() == "选择文件"
    assert page.locator("#cancel-all").inner_text() == "全部取消"
    assert page.locator("#limits").inner_text().startswith("每个文件最大 100.0 MiB")
    drop(page, [("hello.txt", "text/plain", 20),
                ("page.html", "text/html", 40)])        # refused before upload: type not accepted
    wait_state(page, "hello.txt", ["done"])
    wait_state(page, "page.html", ["refused"])
    assert status_of(page, "hello.txt") == "已上传并记录"
    assert status_of(page, "page.html") == "此处不接受这种类型的文件。接受:图片、视频、音频、PDF 文件、文本文件。"  # end-user mode
    item = page.locator("li.item", has_text="hello.txt")
    assert item.locator("button.remove").inner_text() == "从列表移除"
    assert item.locator("dt").first.inner_text() == "对象键"
    assert stack.records()[0]["size"] == 20                 # the upload itself is the same in any language
    assert_no_violations(page, "zh-CN")


def test_english_browser_keeps_english(page, make_stack):
    stack = make_stack()
    page.goto(stack.page_url)
    page.wait_for_selector("body[data-ready=true]")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("h1").inner_text() == "Upload files"
    assert page.locator("#limits").inner_text().startswith("Up to 100.0 MiB per file")
