"""A record's status strings are spelled once: ossdirect.store.Status / HookStatus (issue 19)."""

import os
import re

from ossdirect.store import RECORD_FIELDS, HookStatus, Status

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "shared", "ossdirect")
HOME = os.path.join(PACKAGE, "store", "__init__.py")


def values(cls):
    return {v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)}


STATUSES, HOOK_STATUSES = values(Status), values(HookStatus)
# a quoted status value on a line that speaks of a status: `"status": "recorded"`, `status == "corrupt"`,
# `.get("hook_status") == "running"`, `status in ("quarantined", ...)`
SPELLED = re.compile(r"""["'](%s)["']""" % "|".join(sorted(STATUSES | HOOK_STATUSES)))


def spellings(text):
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if "status" in line.lower() and SPELLED.search(line.split("#", 1)[0])]


def test_the_constants_are_plain_distinct_strings():
    assert {"recorded", "corrupt", "quarantined", "uploading", "aborted", "deleted"} <= STATUSES
    assert HOOK_STATUSES == {"running", "done", "retry", "failed"}
    assert all(type(v) is str for v in STATUSES | HOOK_STATUSES)  # stored, logged and compared as text
    assert len(values(Status)) == len([k for k in vars(Status) if k.isupper() and k != "SESSIONS"])
    assert set(Status.SESSIONS) == {Status.UPLOADING, Status.ABORTED}
    assert {"status", "hook_status"} <= set(RECORD_FIELDS)


def test_the_check_finds_a_spelled_status():  # the negative control for the test below
    assert spellings('x = {"status": "recorded"}\nif r.get("hook_status") == "running":\nok = "done"') == [
        (1, 'x = {"status": "recorded"}'), (2, 'if r.get("hook_status") == "running":')]
    assert spellings('changes.update(status=Status.CORRUPT)  # was "corrupt"') == []


def test_no_module_spells_a_status_itself():
    found = []
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(".py") and path != HOME:
                with open(path, encoding="utf-8") as f:
                    found += [(os.path.relpath(path, ROOT), n, line) for n, line in spellings(f.read())]
    assert found == []


class _Settings:
    def __init__(self, records, record_log=None):
        self.records, self.record_log = records, record_log


def test_open_record_store_puts_the_log_after_the_authoritative_store(tmp_path, capsys):
    from ossdirect.store import open_record_store
    from ossdirect.store.chain import ChainStore
    from ossdirect.store.sqlite import SqliteStore
    from ossdirect.store.stdout import StdoutStore

    url = f"sqlite:///{tmp_path}/records.sqlite3"
    alone = open_record_store(_Settings(url))
    assert type(alone) is SqliteStore
    chained = open_record_store(_Settings(url, "stdout"))
    assert isinstance(chained, ChainStore) and type(chained.primary) is SqliteStore
    assert isinstance(chained.log, StdoutStore)
    stored, created = chained.put({"upload_id": "u1", "status": Status.RECORDED})
    assert created and '"upload_id":"u1"' in capsys.readouterr().out  # logged after the table took it
    unlogged = open_record_store(_Settings(url, "stdout"), log=False)  # the signature app's sessions and lookups
    assert type(unlogged) is SqliteStore and unlogged.get("u1")["status"] == "recorded"
