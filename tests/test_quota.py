"""Stored-bytes quota per user (issue 24, ``OSSDIRECT_USER_LIMITS`` ``stored=``): reservations at signing,
settled to OSS's real size when the upload is recorded, released on delete / expiry; the proof that
4 processes x 4 threads reserving at once never overshoot (SQLite file and the Tablestore stand-in);
and the same through the real handlers of the local stack."""

import multiprocessing
import os
import sqlite3
import sys
import threading
import time

import pytest
import requests
from tablestore_standin import TablestoreStandIn

from devstack import LocalStack
from ossdirect.core.limits import RESERVE_GRACE, LimitSettings, open_limiter, subject_key
from ossdirect.oss.credentials import Credentials

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools.limits_setup import SetupRefused, setup_limits_table  # noqa: E402

A = Credentials("STS.ak-a", "secret-a", "token-a")
T0 = 1_800_000_000


# ---------------------------------------------------------------- the store, both backends

@pytest.fixture(scope="module")
def standin():
    server = TablestoreStandIn(credentials={A.access_key_id: (A.access_key_secret, A.security_token)})
    yield server
    server.close()


_tables = iter(range(10**6))


@pytest.fixture(params=["sqlite", "tablestore"])
def make(request, tmp_path):
    """make(stored=N, **limits) -> (limiter, credentials) on a fresh store."""
    opened = []

    def factory(**limits):
        if request.param == "sqlite":
            store, creds = f"sqlite:///{tmp_path}/quota-{len(opened)}.sqlite3", None
        else:
            server = request.getfixturevalue("standin")
            store, creds = f"tablestore://ossd/quota{next(_tables)}?endpoint={server.endpoint}&region=cn-hangzhou", A
        limiter = open_limiter(LimitSettings(store=store, **limits))
        if creds is not None:
            setup_limits_table(limiter, A)
        opened.append(limiter)
        return limiter, creds

    yield factory
    for limiter in opened:
        limiter.close()


def test_reserve_settle_release(make):
    q, creds = make(stored=1000)
    first = q.reserve("alice", "u1", 600, T0 + 300, creds, now=T0)
    assert (first.ok, first.held, first.reserved, first.limit) == (True, 0, 0, 1000)
    refused = q.reserve("alice", "u2", 401, T0 + 300, creds, now=T0)
    assert (refused.ok, refused.held, refused.reserved) == (False, 0, 600)  # 600 + 401 > 1000: nothing written
    assert q.reserve("alice", "u2", 400, T0 + 300, creds, now=T0).ok  # exactly the limit fits
    assert q.quota("alice", creds, now=T0).as_dict() == {"used": 0, "reserved": 1000, "limit": 1000, "remaining": 0}

    q.settle("alice", "u1", 250, creds, now=T0)  # OSS's real size: the 350 declared but unused go back
    assert q.quota("alice", creds, now=T0).as_dict() == {"used": 250, "reserved": 400, "limit": 1000,
                                                          "remaining": 350}
    q.settle("alice", "u1", 250, creds, now=T0)  # the callback and the event path may both settle
    assert (q.quota("alice", creds, now=T0).held, q.quota("alice", creds, now=T0).reserved) == (250, 400)
    assert not q.reserve("alice", "u3", 351, T0 + 300, creds, now=T0).ok
    q.release("alice", "u1", creds, now=T0)  # deleted
    q.release("alice", "u1", creds, now=T0)  # twice: nothing more
    assert (q.quota("alice", creds, now=T0).held, q.quota("alice", creds, now=T0).reserved) == (0, 400)
    assert q.reserve("alice", "u3", 600, T0 + 300, creds, now=T0).ok


def test_users_are_counted_apart(make):
    q, creds = make(stored=100)
    assert q.reserve("alice", "a1", 100, T0 + 300, creds, now=T0).ok
    q.settle("alice", "a1", 100, creds, now=T0)
    assert not q.reserve("alice", "a2", 1, T0 + 300, creds, now=T0).ok
    bob = q.reserve("bob", "b1", 100, T0 + 300, creds, now=T0)  # alice's bytes are not bob's
    assert (bob.ok, bob.held, bob.reserved) == (True, 0, 0)
    q.settle("bob", "b1", 100, creds, now=T0)
    q.release("bob", "a1", creds, now=T0)  # bob cannot release alice's upload id
    assert q.quota("alice", creds, now=T0).held == 100


def test_unused_reservations_expire(make):
    q, creds = make(stored=1000)
    assert q.reserve("alice", "never-used", 1000, T0 + 300, creds, now=T0).ok
    last = T0 + 300 + RESERVE_GRACE  # the form's expiry, plus the grace for an upload still in flight
    assert not q.reserve("alice", "second", 1, T0 + 900, creds, now=last - 1).ok
    assert q.quota("alice", creds, now=last).reserved == 0  # released at expiry, without any write
    after = q.reserve("alice", "second", 1000, last + 300, creds, now=last)
    assert (after.ok, after.held, after.reserved) == (True, 0, 0)
    q.settle("alice", "late", 10, creds, now=last)  # a recorded upload counts even with no reservation left
    assert q.quota("alice", creds, now=last + 10**6).as_dict()["used"] == 10  # held bytes never expire


def test_stored_alone_counts_no_window(make, tmp_path):
    q, creds = make(stored=10)
    assert q.settings.forms is None and q.settings.bytes is None
    assert q.reserve("alice", "u1", 10, T0 + 300, creds, now=T0).ok
    rows = {}
    if creds is None:  # the counters are keyed by the user's SHA-256, as the window counters are
        path = q.settings.store[len("sqlite:///"):]
        rows = dict(sqlite3.connect(path).execute("SELECT subject, bytes FROM holdings").fetchall())
        assert rows == {subject_key("user:alice"): 10}


def test_tablestore_holds_bytes_in_a_table_without_ttl(standin):
    """The window counters' table has a TTL (ended windows go); held bytes must not: their own table."""
    import tablestore as ts

    store = f"tablestore://ossd/heldsetup?endpoint={standin.endpoint}&region=cn-hangzhou"
    limiter = open_limiter(LimitSettings(store=store, forms=5, stored=100))
    assert setup_limits_table(limiter, A) == {"table": "created", "ttl": 86400, "held": "created"}
    assert setup_limits_table(limiter, A) == {"table": "exists", "ttl": 86400, "held": "exists"}
    assert limiter.client(A).describe_table("heldsetup_held").table_options.time_to_live == -1
    assert limiter.reserve("alice", "u1", 60, T0 + 300, A, now=T0).ok and limiter.spend("user:alice", 60, A, T0).ok
    assert set(standin.keyed_rows("heldsetup_held")) == {(subject_key("user:alice"), 0)}
    assert set(standin.keyed_rows("heldsetup")) == {(subject_key("user:alice"), T0)}  # the window row only
    without = open_limiter(LimitSettings(store=store.replace("heldsetup", "nostored"), forms=5))
    assert "held" not in setup_limits_table(without, A)  # no stored=: no second table
    limiter.client(A).create_table(ts.TableMeta("ttl_held", list(limiter.store.PK)),
                                   ts.TableOptions(time_to_live=86400, max_version=1),
                                   ts.ReservedThroughput(ts.CapacityUnit(0, 0)))
    with pytest.raises(SetupRefused, match="held bytes would expire"):
        setup_limits_table(open_limiter(LimitSettings(store=store.replace("heldsetup", "ttl"), stored=1)), A)


# ---------------------------------------------------------------- the race: 4 processes x 4 threads

SIZE = 1000


def _reserve_process(store, stored, index, threads, per_thread, barrier, out):
    """One 'function instance': its own limiter, several concurrent form requests from one user."""
    limiter = open_limiter(LimitSettings(store=store, stored=stored))
    creds = A if store.startswith("tablestore://") else None
    limiter.quota("warm-up", creds, now=T0)  # connections open before the race starts
    results = []
    gate = threading.Barrier(threads)

    def worker(t):
        gate.wait()
        for i in range(per_thread):
            q = limiter.reserve("mallory", f"p{index}-t{t}-{i}", SIZE, T0 + 300, creds, now=T0 + 5)
            results.append((q.ok, q.held, q.reserved))

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    barrier.wait(timeout=60)
    [t.start() for t in pool]
    [t.join() for t in pool]
    out.put(results)


def run_race(store, stored, per_thread):
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_reserve_process, args=(store, stored, i, 4, per_thread, barrier, out))
             for i in range(4)]
    [p.start() for p in procs]
    try:
        results = [r for _ in procs for r in out.get(timeout=240)]
    finally:
        [p.join(timeout=30) for p in procs]
    assert [p.exitcode for p in procs] == [0] * 4
    return results


def test_four_processes_on_one_sqlite_file_never_overshoot(tmp_path):
    store = f"sqlite:///{tmp_path}/race.sqlite3"
    stored = 37 * SIZE + SIZE // 2  # room for floor(stored / size) = 37 forms, and half of another
    results = run_race(store, stored, per_thread=10)  # 160 attempts
    granted = [r for r in results if r[0]]
    assert len(results) == 160 and len(granted) == 37  # exactly floor(stored/size): never more, none lost
    assert sorted(r[2] for r in granted) == [i * SIZE for i in range(37)]  # each slot handed out once
    assert all(r[2] == 37 * SIZE for r in results if not r[0])
    total = sqlite3.connect(store[len("sqlite:///"):]).execute(
        "SELECT COUNT(*), SUM(bytes) FROM holdings WHERE subject=?", (subject_key("user:mallory"),)).fetchone()
    assert total == (37, 37 * SIZE)


def test_four_processes_on_one_tablestore_table_never_overshoot(standin):
    limiter = open_limiter(LimitSettings(stored=15 * SIZE + 1, store=f"tablestore://ossd/quotarace?endpoint="
                                                                      f"{standin.endpoint}&region=cn-hangzhou"))
    setup_limits_table(limiter, A)
    before = dict(standin.calls)
    results = run_race(limiter.settings.store, limiter.settings.stored, per_thread=3)  # 48 attempts
    granted = [r for r in results if r[0]]
    assert len(results) == 48 and len(granted) == 15
    assert sorted(r[2] for r in granted) == [i * SIZE for i in range(15)]
    q = limiter.quota("mallory", A, now=T0 + 5)
    assert (q.held, q.reserved) == (0, 15 * SIZE)
    writes = sum(standin.calls.get(op, 0) - before.get(op, 0) for op in ("PutRow", "UpdateRow"))
    assert writes > 15  # the instances did collide; the version condition turned the losers away
    assert standin.problems == []


# ---------------------------------------------------------------- through the handlers (local stack)

MAX = 4000
STORED = 10000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("quota")
    env = {"OSSDIRECT_USER_LIMITS": f"stored={STORED}", "OSSDIRECT_LIMITS_STORE": f"sqlite:///{data}/limits.sqlite3",
           "OSSDIRECT_MAX_BYTES": str(MAX)}
    with LocalStack(data, env=env, auth="jwt") as s:
        yield s


def headers(stack, user):
    return {"Origin": stack.page_origin, "Authorization": f"Bearer {stack.token(user)}"}


def sign(stack, user, name, size=None):
    params = {"filename": name, "content_type": "text/plain"}
    if size is not None:
        params["size"] = size
    return requests.get(stack.signature_url, params=params, headers=headers(stack, user), timeout=10)


def post(form, data, name="f.txt"):
    return requests.post(form["url"], data=form["field_list"], files={"file": (name, data, "text/plain")}, timeout=15)


def stored(stack, user):
    r = requests.get(stack.signature_url + "limits", headers=headers(stack, user), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["stored"]


def test_signing_reserves_recording_settles_deleting_releases(stack):
    assert stored(stack, "dora") == {"used": 0, "reserved": 0, "limit": STORED, "remaining": STORED}
    # no size: the form allows up to MAX bytes, so MAX is reserved; the object holds only what OSS stores
    form = sign(stack, "dora", "small.txt").json()
    assert stored(stack, "dora")["reserved"] == MAX
    assert post(form, b"x" * 123).status_code == 200
    assert stack.wait_for_record(form["upload_id"]) is not None
    assert stored(stack, "dora") == {"used": 123, "reserved": 0, "limit": STORED, "remaining": STORED - 123}

    sized = sign(stack, "dora", "sized.txt", size=3000).json()
    assert stored(stack, "dora")["reserved"] == 3000
    assert post(sized, b"y" * 3000).status_code == 200
    assert stored(stack, "dora")["used"] == 3123

    deleted = requests.delete(stack.signature_url + f"files/{form['upload_id']}", headers=headers(stack, "dora"),
                              timeout=10)
    assert deleted.status_code == 200
    assert stored(stack, "dora") == {"used": 3000, "reserved": 0, "limit": STORED, "remaining": STORED - 3000}


def test_refusal_is_a_clear_403_and_bob_does_not_count_against_alice(stack):
    for i in range(2):
        assert sign(stack, "erin", f"e{i}.txt", size=MAX).status_code == 200  # 8000 reserved
    r = sign(stack, "erin", "e2.txt", size=MAX)
    body = r.json()
    assert (r.status_code, body["code"]) == (403, "StorageQuotaExceeded")
    assert f"storage limit of {STORED} bytes" in body["message"] and "8000 more are reserved" in body["message"]
    assert stored(stack, "erin")["reserved"] == 2 * MAX  # the refusal reserved nothing
    assert sign(stack, "erin", "e3.txt", size=STORED - 2 * MAX).status_code == 200  # what is left still fits

    bobs = sign(stack, "bob", "b.txt", size=MAX)  # erin's storage is not bob's
    assert bobs.status_code == 200 and stored(stack, "bob")["reserved"] == MAX


def test_the_counter_holds_what_oss_stores_not_what_was_declared(stack):
    """A bigger object than declared is refused by OSS (the policy pins the size): nothing is held; the
    declared size is replaced by the stored object's size once recorded."""
    form = sign(stack, "mal", "m.txt", size=100).json()
    r = post(form, b"z" * 101)  # one byte more than the form allows
    assert r.status_code == 400 and "EntityTooLarge" in r.text
    assert stored(stack, "mal") == {"used": 0, "reserved": 100, "limit": STORED, "remaining": STORED - 100}
    assert post(form, b"z" * 100).status_code == 200
    record = stack.wait_for_record(form["upload_id"])
    assert record["size"] == 100 and stored(stack, "mal")["used"] == 100 and stored(stack, "mal")["reserved"] == 0


def test_the_event_path_settles_when_the_callback_is_down(tmp_path):
    env = {"OSSDIRECT_USER_LIMITS": f"stored={STORED}", "OSSDIRECT_LIMITS_STORE": f"sqlite:///{tmp_path}/l.sqlite3"}
    with LocalStack(tmp_path / "stack", env=env, auth="jwt") as s:
        s.stop_callback()
        form = sign(s, "fay", "f.txt", size=42).json()
        post(form, b"f" * 42)  # OSS answers CallbackFailed; the object is stored, the trigger records it
        assert s.wait_for_record(form["upload_id"]) is not None
        deadline = time.monotonic() + 10  # the process function settles just after it writes the record
        while stored(s, "fay")["used"] != 42 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored(s, "fay") == {"used": 42, "reserved": 0, "limit": STORED, "remaining": STORED - 42}


def test_multipart_reserves_and_abort_releases(stack):
    def create(name):
        return requests.post(stack.signature_url + "multipart", params={"filename": name, "size": 3500,
                                                                         "content_type": "text/plain"},
                             headers=headers(stack, "gus"), timeout=10)

    sessions = [create(f"big{i}.txt") for i in range(2)]
    assert [r.status_code for r in sessions] == [201, 201]
    assert stored(stack, "gus")["reserved"] == 7000
    third = create("big2.txt")  # 7000 + 3500 > 10000
    assert (third.status_code, third.json()["code"]) == (403, "StorageQuotaExceeded")
    for r in sessions:
        session = r.json()
        aborted = requests.delete(stack.signature_url + f"multipart/{session['uploadId']}",
                                  params={"key": session["key"], "upload_id": session["upload_id"]},
                                  headers=headers(stack, "gus"), timeout=10)
        assert aborted.status_code == 200, aborted.text
    assert stored(stack, "gus") == {"used": 0, "reserved": 0, "limit": STORED, "remaining": STORED}


def test_a_quarantined_file_counts_until_its_owner_deletes_it(stack):
    """Quarantine moves the object out of the public prefix, but it still occupies storage: it stays held."""
    html = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    params = {"filename": "evil.png", "content_type": "image/png", "size": len(html)}
    form = requests.get(stack.signature_url, params=params, headers=headers(stack, "hal"), timeout=10).json()
    assert requests.post(form["url"], data=form["field_list"], files={"file": ("evil.png", html, "image/png")},
                         timeout=15).status_code == 200
    record = stack.wait_for_record(form["upload_id"], timeout=20, where=lambda r: r["status"] != "recorded")
    assert record is not None and record["status"] == "quarantined", record
    assert stored(stack, "hal")["used"] == len(html)
    r = requests.delete(stack.signature_url + f"files/{form['upload_id']}", headers=headers(stack, "hal"), timeout=10)
    assert r.status_code == 200, r.text
    assert stored(stack, "hal")["used"] == 0


# ---------------------------------------------------------------- the callback function on a Tablestore quota

ROLE = Credentials("STS.function-role", "function-role-secret", "function-role-token")


def test_callback_settles_in_tablestore_and_a_failing_quota_store_never_fails_the_upload(tmp_path, key_server,
                                                                                      rsa_signer, caplog):
    import base64
    import json
    import logging
    import types
    from urllib.parse import urlencode

    from fixtures import emulated_env
    from support import EmulatedBucket, fc_event

    from ossdirect.app.handlers import CallbackApp

    server = TablestoreStandIn(credentials={ROLE.access_key_id: (ROLE.access_key_secret, ROLE.security_token)})
    bucket = EmulatedBucket(tmp_path / "oss", "photo-bucket",
                            account=(ROLE.access_key_id, ROLE.access_key_secret, ROLE.security_token))
    context = types.SimpleNamespace(credentials=types.SimpleNamespace(
        access_key_id=ROLE.access_key_id, access_key_secret=ROLE.access_key_secret,
        security_token=ROLE.security_token))
    try:
        store = f"tablestore://ossd/cbquota?endpoint={server.endpoint}&region=cn-hangzhou"
        limiter = open_limiter(LimitSettings(store=store, stored=1000))
        setup_limits_table(limiter, ROLE)
        env = emulated_env(bucket, tmp_path / "records.sqlite3", key_server,
                           USER_LIMITS="stored=1000", LIMITS_STORE=store)
        callback = CallbackApp(env)
        key_url = base64.b64encode(f"{key_server.url}/_emulator/callback_pub_key.pem".encode()).decode()

        def upload(upload_id, data, reserve=True):
            bucket.sdk.put_object(f"uploads/{upload_id}.png", data, headers={
                "Content-Type": "image/png", "x-oss-meta-upload-id": upload_id, "x-oss-meta-user": "ida"})
            if reserve:  # as the signature function did when it signed the form
                assert limiter.reserve("ida", upload_id, 900, 2**40, ROLE).ok
            body = urlencode({"bucket": "photo-bucket", "object": f"uploads/{upload_id}.png",
                              "upload_id": upload_id}).encode()
            return callback(fc_event("POST", "/cb", headers={
                "Authorization": rsa_signer.sign("/cb", "", body), "X-Oss-Pub-Key-Url": key_url,
                "Content-Type": "application/x-www-form-urlencoded"}, body=body), context)

        first = upload("q1", b"p" * 70)
        assert first["statusCode"] == 200 and json.loads(first["body"])["user"] == "ida"
        q = limiter.quota("ida", ROLE)
        assert (q.held, q.reserved) == (70, 0)  # the 900 reserved became the 70 OSS holds

        server.fail_ops.update({"GetRow", "PutRow", "UpdateRow"})  # the quota store goes down
        with caplog.at_level(logging.WARNING, logger="ossdirect"):
            second = upload("q2", b"r" * 30, reserve=False)
        assert second["statusCode"] == 200  # stored and recorded: the upload does not fail for the quota
        assert any('"quota_not_settled":"q2"' in r.getMessage().replace(" ", "") for r in caplog.records)
        server.fail_ops.clear()
        assert limiter.quota("ida", ROLE).held == 70  # q2 is not counted (the documented price)
    finally:
        bucket.close()
        server.close()
