"""Browser tests: Debian's chromium driven by Playwright, against the local stack. No browser = failure."""

import os

import pytest

from devstack import LocalStack

ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "..", "test-artifacts")
# the `browser` fixture (Debian chromium via Playwright) is in tests/conftest.py: security tests use it too
HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(items):
    """Every test under tests/browser/ carries the `browser` marker (each file sets pytestmark)."""
    unmarked = [item.nodeid for item in items if str(item.path).startswith(HERE + os.sep)
                and item.get_closest_marker("browser") is None]
    if unmarked:
        raise pytest.UsageError("tests/browser/ tests without the browser marker (pytestmark = pytest.mark.browser): "
                                + ", ".join(unmarked))


@pytest.fixture
def make_stack(tmp_path):
    stacks = []

    def make(**env):
        stack = LocalStack(tmp_path / f"stack{len(stacks)}", env=env).start()
        stacks.append(stack)
        return stack

    yield make
    for s in stacks:
        s.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    yield page
    context.close()
