"""pytest plugin for the child run of the upstream suite: deselects exactly the test ids named (one a
line) in OSSDIRECT_UPSTREAM_SKIP (pytest's own --deselect matches prefixes, which would also drop
test_list_objects_v2 for test_list_objects), and stops if a named id is not in the suite at all."""

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    wanted = {line.strip() for line in os.environ.get("OSSDIRECT_UPSTREAM_SKIP", "").splitlines() if line.strip()}
    found = {item.nodeid for item in items} & wanted
    if found != wanted:
        raise pytest.UsageError(f"skipped upstream tests not in the suite: {sorted(wanted - found)}")
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid in wanted])
    items[:] = [item for item in items if item.nodeid not in wanted]
