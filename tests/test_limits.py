"""Abuse limits per user (issue 10): settings, SQLite and Tablestore (official SDK against the
loopback stand-in), and the proof that concurrent spends from 4 processes never exceed the limit."""

import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from fixtures import settings as env
from tablestore_standin import TablestoreStandIn

from ossdirect.settings import ConfigError
from ossdirect.oss.credentials import Credentials
from ossdirect.core.limits import (LIMIT_ENV_NAMES, LimitSettings, LimitStoreError, SqliteLimiter, TablestoreLimiter,
                              load_limit_settings, open_limiter, subject_for, subject_key)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools.limits_setup import SetupRefused, setup_limits_table  # noqa: E402

A = Credentials("STS.ak-a", "secret-a", "token-a")
B = Credentials("STS.ak-b", "secret-b", "token-b")
T0 = 1_800_000_000  # a window boundary for 3600 s windows (500000 * 3600)
TABLE = "limits"


# ---------------------------------------------------------------- settings

def test_settings_parse_with_defaults():
    assert load_limit_settings({}) is None
    assert load_limit_settings(env(USER_LIMITS=" ")) is None
    s = load_limit_settings(env(USER_LIMITS="forms=20,bytes=1073741824,window=3600"))
    assert (s.forms, s.bytes, s.window, s.store, s.anonymous_by_ip) == (
        20, 1073741824, 3600, "sqlite:///ossdirect-limits.sqlite3", True)
    cloud = "tablestore://ossd/limits?endpoint=https://ossd.cn-hangzhou.ots.aliyuncs.com"
    s = load_limit_settings(env(USER_LIMITS=" Forms = 5 , ", ANONYMOUS_LIMITS_BY_IP="off", LIMITS_STORE=cloud))
    assert (s.forms, s.bytes, s.window, s.anonymous_by_ip) == (5, None, 3600, False)
    assert load_limit_settings(env(USER_LIMITS="bytes=10,window=60")).forms is None
    assert set(LIMIT_ENV_NAMES) == {"USER_LIMITS", "LIMITS_STORE", "ANONYMOUS_LIMITS_BY_IP"}
    assert s.public() == {"forms": 5, "bytes": None, "window_seconds": 3600}


@pytest.mark.parametrize("values,variable", [
    ({"USER_LIMITS": "forms=0"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "forms=-1"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "forms=ten"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "forms=1.5"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "uploads=3"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "forms"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "forms=1,forms=2"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "window=60"}, "OSSDIRECT_USER_LIMITS"),  # limits nothing: surely a mistake
    ({"USER_LIMITS": "forms=1,window=0"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "forms=1,window=99999999"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "bytes=99999999999999999999"}, "OSSDIRECT_USER_LIMITS"),
    ({"USER_LIMITS": "forms=1", "LIMITS_STORE": "redis://x"}, "OSSDIRECT_LIMITS_STORE"),
    ({"USER_LIMITS": "forms=1", "LIMITS_STORE": "sqlite:///"}, "OSSDIRECT_LIMITS_STORE"),
    ({"USER_LIMITS": "forms=1", "LIMITS_STORE": "tablestore://ossd/limits"}, "OSSDIRECT_LIMITS_STORE"),
    ({"USER_LIMITS": "forms=1", "LIMITS_STORE": "tablestore://ossd/a/b?endpoint=x.com"}, "OSSDIRECT_LIMITS_STORE"),
    ({"USER_LIMITS": "forms=1", "LIMITS_STORE": "tablestore://ossd/t?endpoint=ftp://x"}, "OSSDIRECT_LIMITS_STORE"),
    ({"USER_LIMITS": "forms=1", "LIMITS_STORE": "tablestore://ossd/t?endpoint=x.com&timeout=z"},
     "OSSDIRECT_LIMITS_STORE"),
    ({"USER_LIMITS": "forms=1", "ANONYMOUS_LIMITS_BY_IP": "maybe"}, "OSSDIRECT_ANONYMOUS_LIMITS_BY_IP"),
    ({"ANONYMOUS_LIMITS_BY_IP": "maybe"}, "OSSDIRECT_ANONYMOUS_LIMITS_BY_IP"),  # checked even when off
])
def test_bad_settings_name_the_variable(values, variable):
    with pytest.raises(ConfigError, match=variable):
        load_limit_settings(env(**values))


def test_subjects():
    on, off = LimitSettings(forms=1), LimitSettings(forms=1, anonymous_by_ip=False)
    assert subject_for(on, "alice", "10.0.0.1") == "user:alice"
    assert subject_for(on, None, "10.0.0.1") == "ip:10.0.0.1"
    assert subject_for(off, None, "10.0.0.1") is None and subject_for(on, None, "") is None
    # a user named like an address does not share the address's allowance
    assert subject_key(subject_for(on, "ip:10.0.0.1")) != subject_key(subject_for(on, None, "10.0.0.1"))
    odd = ["x", "x\x00", "\ud800", "é", "a" * 100_000, "' OR 1=1 --", "/../"]
    assert len({subject_key(s) for s in odd}) == len(odd)
    assert all(len(subject_key(s)) == 64 for s in odd)
    with pytest.raises(ValueError):
        subject_key("")


# ---------------------------------------------------------------- both backends, same behaviour

def new_standin():
    return TablestoreStandIn(credentials={c.access_key_id: (c.access_key_secret, c.security_token) for c in (A, B)})


@pytest.fixture(scope="module")
def standin():
    server = new_standin()
    yield server
    server.close()


_tables = iter(range(10**6))


@pytest.fixture(params=["sqlite", "tablestore"])
def make(request, tmp_path):
    """make(**limits) -> (limiter, credentials): a fresh store for each call."""
    opened = []

    def factory(**limits):
        if request.param == "sqlite":
            store = f"sqlite:///{tmp_path}/limits-{len(opened)}.sqlite3"
            creds = None
        else:
            server = request.getfixturevalue("standin")
            store = f"tablestore://ossd/{TABLE}{next(_tables)}?endpoint={server.endpoint}&region=cn-hangzhou"
            creds = A
        limiter = open_limiter(LimitSettings(store=store, **limits))
        if request.param == "tablestore":
            setup_limits_table(limiter, A)
        opened.append(limiter)
        return limiter, creds

    factory.kind = request.param
    yield factory
    for limiter in opened:
        limiter.close()


def test_n_forms_then_refusal_with_retry_after(make):
    limiter, creds = make(forms=3, window=3600)
    now = T0 + 100.5
    got = [limiter.spend("user:alice", 10, creds, now=now) for _ in range(3)]
    assert [a.ok for a in got] == [True] * 3 and [a.remaining_forms for a in got] == [2, 1, 0]
    assert all(a.retry_after is None and a.remaining_bytes is None and a.resets_at == T0 + 3600 for a in got)
    refused = limiter.spend("user:alice", 10, creds, now=now)
    assert not refused.ok and refused.reason == "forms" and refused.remaining_forms == 0
    assert refused.retry_after == 3500 and refused.headers() == {"Retry-After": "3500"}
    assert got[0].headers() == {}
    assert limiter.spend("user:alice", 10, creds, now=T0 + 3599.2).retry_after == 1  # rounded up, never 0
    assert limiter.spend("user:bob", 10, creds, now=now).ok  # per subject
    peek = limiter.peek("user:alice", creds, now=now)
    assert not peek.ok and peek.remaining_forms == 0 and peek.retry_after == 3500
    fresh = limiter.peek("user:carol", creds, now=now)
    assert fresh.ok and fresh.remaining_forms == 3 and limiter.peek("user:carol", creds, now=now).remaining_forms == 3
    assert fresh.as_dict() == {"ok": True, "forms": 3, "bytes": None, "window_seconds": 3600, "remaining_forms": 3,
                               "remaining_bytes": None, "resets_at": T0 + 3600, "retry_after": None, "reason": None}


def test_byte_budget_and_refusals_spend_nothing(make):
    limiter, creds = make(bytes=1000, window=60)
    now = T0 + 1
    a = limiter.spend("ip:10.0.0.1", 600, creds, now=now)
    assert a.ok and a.remaining_bytes == 400 and a.remaining_forms is None
    b = limiter.spend("ip:10.0.0.1", 500, creds, now=now)
    assert not b.ok and b.reason == "bytes" and b.remaining_bytes == 400 and b.retry_after == 59
    assert limiter.spend("ip:10.0.0.1", 400, creds, now=now).remaining_bytes == 0  # the refusal took nothing
    assert limiter.spend("ip:10.0.0.1", 0, creds, now=now).ok  # a zero-byte form still fits a bytes-only limit
    assert limiter.spend("ip:10.0.0.1", 1, creds, now=now).reason == "bytes"
    too_big = limiter.spend("ip:10.0.0.2", 1001, creds, now=now)
    assert not too_big.ok and too_big.reason == "too_large" and limiter.peek("ip:10.0.0.2", creds, now=now).ok
    with pytest.raises(ValueError):
        limiter.spend("ip:10.0.0.1", -1, creds, now=now)
    with pytest.raises(ValueError):
        limiter.spend("", 1, creds, now=now)


def test_both_budgets_and_either_refuses(make):
    limiter, creds = make(forms=3, bytes=100, window=60)
    assert limiter.spend("s", 90, creds, now=T0).ok
    assert limiter.spend("s", 20, creds, now=T0).reason == "bytes"
    assert limiter.spend("s", 5, creds, now=T0).ok and limiter.spend("s", 5, creds, now=T0).ok
    last = limiter.spend("s", 0, creds, now=T0)
    assert last.reason == "forms" and (last.remaining_forms, last.remaining_bytes) == (0, 0)


def test_window_rollover(make):
    limiter, creds = make(forms=2, window=60)
    assert limiter.spend("u", 1, creds, now=T0 + 59.9).ok
    assert limiter.spend("u", 1, creds, now=T0 + 59.9).ok
    assert limiter.spend("u", 1, creds, now=T0 + 59.9).retry_after == 1
    nxt = limiter.spend("u", 1, creds, now=T0 + 60)  # a new window, a new allowance
    assert nxt.ok and nxt.remaining_forms == 1 and nxt.resets_at == T0 + 120
    assert limiter.peek("u", creds, now=T0 + 30).remaining_forms == 0  # the old window is unchanged
    assert limiter.spend("u", 1, creds, now=T0 + 119).ok and not limiter.spend("u", 1, creds, now=T0 + 119).ok
    assert limiter.spend("u", 1, creds, now=T0 + 120.0).ok


def test_subjects_are_stored_hashed(make, standin):
    limiter, creds = make(forms=5)
    secret_sub = "user:alice@example.com|" + "\u2028\x00'\""
    limiter.spend(secret_sub, 1, creds, now=T0)
    assert limiter.peek(secret_sub, creds, now=T0).remaining_forms == 4
    assert limiter.peek(secret_sub + " ", creds, now=T0).remaining_forms == 5
    if make.kind == "sqlite":
        rows = sqlite3.connect(limiter.path).execute("SELECT subject, window_start, forms FROM limits").fetchall()
        blob = open(limiter.path, "rb").read() + open(limiter.path + "-wal", "rb").read()
        assert b"alice" not in blob
    else:
        rows = [(k[0], k[1], cols["forms"]) for k, cols in standin.keyed_rows(limiter.table).items()]
    assert rows == [(subject_key(secret_sub), T0 - T0 % 3600, 1)]


# ---------------------------------------------------------------- SQLite specifics

def test_sqlite_prunes_ended_windows(tmp_path):
    limiter = open_limiter(LimitSettings(forms=5, window=60, store=f"sqlite:///{tmp_path}/l.sqlite3"))
    limiter.prune_every = 10**9  # no random pruning while filling
    for i in range(10):
        limiter.spend(f"u{i}", 1, now=T0 + i * 60)
    assert limiter.prune(now=T0 + 5 * 60) == 5  # the windows that ended by then
    count = sqlite3.connect(limiter.path).execute("SELECT count(*) FROM limits").fetchone()[0]
    assert count == 5
    limiter.prune_every = 1  # spends prune too, sparing windows that ended under a minute ago
    limiter.spend("x", 1, now=T0 + 20 * 60)
    assert sqlite3.connect(limiter.path).execute("SELECT count(*) FROM limits").fetchone()[0] == 1


def test_sqlite_bad_path_fails_at_open(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(LimitStoreError, match="cannot be opened"):
        open_limiter(LimitSettings(forms=1, store=f"sqlite:///{tmp_path}/file/limits.sqlite3"))


def test_threads_in_one_process_share_the_file(tmp_path):
    limiter = open_limiter(LimitSettings(forms=50, store=f"sqlite:///{tmp_path}/l.sqlite3"))
    results = []

    def worker():
        results.extend(limiter.spend("u", 1, now=T0).ok for _ in range(20))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results.count(True) == 50 and len(results) == 160


# ---------------------------------------------------------------- 4 processes, one store

class _UnguardedSqlite(SqliteLimiter):
    """A negative control: the same read, check and write, but not in one BEGIN IMMEDIATE transaction."""

    def spend(self, subject, nbytes, credentials=None, now=None):
        key, (now, start, ends) = subject_key(subject), self._window(now)
        conn = self._conn()
        row = conn.execute("SELECT forms, bytes FROM limits WHERE subject=? AND window_start=?",
                           (key, start)).fetchone()
        forms, used = row if row else (0, 0)
        if self._decide(forms, used, nbytes):
            return self._allowance(False, forms, used, now, ends, "forms")
        time.sleep(0.001)  # the time a request spends between its read and its write
        conn.execute("INSERT INTO limits VALUES (?, ?, ?, 1, ?) ON CONFLICT (subject, window_start) "
                     "DO UPDATE SET forms=forms+1, bytes=bytes+excluded.bytes", (key, start, ends, nbytes))
        return self._allowance(True, forms + 1, used + nbytes, now, ends)


def _spend_process(store, limits, subject, threads, per_thread, nbytes, barrier, out, unguarded=False):
    """One 'function instance': its own limiter, several concurrent requests from one user."""
    if unguarded:
        limiter = _UnguardedSqlite(LimitSettings(store=store, **limits), store[len("sqlite:///"):])
    else:
        limiter = open_limiter(LimitSettings(store=store, **limits))
    creds = A if store.startswith("tablestore://") else None
    limiter.peek("warm-up", creds, now=T0)  # connections open before the race starts
    results = []
    gate = threading.Barrier(threads)

    def worker():
        gate.wait()
        for _ in range(per_thread):
            a = limiter.spend(subject, nbytes, creds, now=T0 + 5)
            results.append((a.ok, a.reason, a.retry_after, a.remaining_forms, a.remaining_bytes))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    barrier.wait(timeout=60)
    [t.start() for t in pool]
    [t.join() for t in pool]
    out.put(results)


def run_four_processes(store, limits, threads, per_thread, nbytes=1, unguarded=False):
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_spend_process, args=(store, limits, "user:mallory", threads, per_thread, nbytes,
                                                      barrier, out, unguarded)) for _ in range(4)]
    [p.start() for p in procs]
    try:
        results = [r for _ in procs for r in out.get(timeout=240)]
    finally:
        [p.join(timeout=30) for p in procs]
    assert [p.exitcode for p in procs] == [0] * 4
    return results


@pytest.mark.parametrize("budget", ["forms", "bytes"])
def test_four_processes_on_one_sqlite_file_never_exceed_the_limit(tmp_path, budget):
    store = f"sqlite:///{tmp_path}/shared.sqlite3"
    limits = {"forms": 60} if budget == "forms" else {"bytes": 60 * 1000}
    results = run_four_processes(store, limits, threads=4, per_thread=25, nbytes=1000)  # 400 attempts
    assert len(results) == 400
    granted = [r for r in results if r[0]]
    assert len(granted) == 60  # exactly N: never more, and no refusal while units were left
    assert all(r[1] == budget and r[2] == 3595 for r in results if not r[0])
    left = sorted(r[3] if budget == "forms" else r[4] // 1000 for r in granted)
    assert left == list(range(60))  # each unit was handed out once
    row = sqlite3.connect(store[len("sqlite:///"):]).execute("SELECT forms, bytes FROM limits "
                                                             "WHERE subject=?", (subject_key("user:mallory"),))
    assert row.fetchone() == (60, 60_000)


def test_the_four_process_proof_catches_an_unguarded_spend(tmp_path):
    """The same race without the transaction overspends: the proof above can fail."""
    store = f"sqlite:///{tmp_path}/unguarded.sqlite3"
    results = run_four_processes(store, {"forms": 60}, threads=4, per_thread=25, nbytes=1000, unguarded=True)
    assert sum(r[0] for r in results) > 60


def test_four_processes_on_one_tablestore_table_never_exceed_the_limit(standin):
    limiter = open_limiter(LimitSettings(forms=40, store=f"tablestore://ossd/race?endpoint={standin.endpoint}"
                                                                    f"&region=cn-hangzhou"))
    setup_limits_table(limiter, A)
    before = dict(standin.calls)
    results = run_four_processes(limiter.settings.store, {"forms": 40}, threads=4, per_thread=10)  # 160
    granted = [r for r in results if r[0]]
    assert len(results) == 160 and len(granted) == 40
    assert sorted(r[3] for r in granted) == list(range(40))
    assert all(r[1] == "forms" and r[2] == 3595 for r in results if not r[0])
    (key, row), = standin.keyed_rows("race").items()
    assert key == (subject_key("user:mallory"), T0) and row["forms"] == 40
    writes = sum(standin.calls.get(op, 0) - before.get(op, 0) for op in ("PutRow", "UpdateRow"))
    assert writes > 40  # concurrent instances did collide, and the conditions turned the losers away
    assert standin.problems == []


# ---------------------------------------------------------------- Tablestore specifics

def ts_limiter(server, table, **limits):
    limiter = open_limiter(LimitSettings(store=f"tablestore://ossd/{table}?endpoint={server.endpoint}"
                                                f"&region=cn-hangzhou", **limits))
    assert isinstance(limiter, TablestoreLimiter) and limiter.needs_credentials
    return limiter


def test_two_instances_with_stale_guesses_stay_exact(standin):
    one, two = ts_limiter(standin, "pair", forms=6), ts_limiter(standin, "pair", forms=6)
    setup_limits_table(one, A)
    assert one.spend("u", 1, A, now=T0).remaining_forms == 5  # GetRow + PutRow
    calls = dict(standin.calls)
    assert one.spend("u", 1, A, now=T0).remaining_forms == 4  # warm: one conditional UpdateRow
    assert standin.calls.get("GetRow", 0) == calls.get("GetRow", 0)
    assert two.spend("u", 1, A, now=T0).remaining_forms == 3  # the other instance moves the counter
    assert one.spend("u", 1, A, now=T0).remaining_forms == 2  # stale guess: condition fails, reread, retry
    assert two.spend("u", 1, A, now=T0).remaining_forms == 1
    assert one.spend("u", 1, A, now=T0).remaining_forms == 0
    assert not two.spend("u", 1, A, now=T0).ok and not one.spend("u", 1, A, now=T0).ok
    assert standin.keyed_rows("pair")[(subject_key("u"), T0)]["forms"] == 6


def test_put_row_race_for_a_new_window(standin):
    """Both instances read 'no row': only one PutRow(EXPECT_NOT_EXIST) lands; the other rereads."""
    one, two = ts_limiter(standin, "newwin", forms=1), ts_limiter(standin, "newwin", forms=1)
    setup_limits_table(one, A)
    assert two.peek("u", A, now=T0).remaining_forms == 1  # two has read 'absent'
    assert one.spend("u", 1, A, now=T0).ok
    refused = two.spend("u", 1, A, now=T0)
    assert not refused.ok and refused.reason == "forms"


def test_credentials_per_call_and_sts_rotation(standin):
    limiter = ts_limiter(standin, "rot", forms=10)
    setup_limits_table(limiter, A)
    limiter.spend("u", 1, A, now=T0)
    client = limiter.store._client
    assert limiter.spend("u", 1, B, now=T0).remaining_forms == 8
    assert limiter.store._client is client and standin.requests[-1][1]["x-ots-accesskeyid"] == B.access_key_id
    assert standin.requests[-1][1]["x-ots-ststoken"] == "token-b" and "x-ots-signaturev4" in standin.requests[-1][1]
    with pytest.raises(LimitStoreError, match="no credentials"):
        limiter.spend("u", 1, None, now=T0)
    with pytest.raises(LimitStoreError, match="OTSAuthFailed"):
        limiter.peek("u", Credentials(A.access_key_id, "wrong", A.security_token), now=T0)


def test_missing_table_and_unreachable_service_are_store_errors(standin):
    with pytest.raises(LimitStoreError, match="OTSObjectNotExist"):
        ts_limiter(standin, "nosuchtable", forms=1).spend("u", 1, A, now=T0)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    gone = open_limiter(LimitSettings(forms=1, store=f"tablestore://ossd/t?endpoint=http://127.0.0.1:{port}"
                                                     f"&region=cn-hangzhou&timeout=0.5"))
    started = time.monotonic()
    with pytest.raises(LimitStoreError, match="failed"):
        gone.spend("u", 1, A, now=T0)
    assert time.monotonic() - started < 5


def test_setup_is_idempotent_and_refuses_a_wrong_table(standin):
    import tablestore as ts

    limiter = ts_limiter(standin, "setup", forms=1, window=3600)
    assert setup_limits_table(limiter, A) == {"table": "created", "ttl": 86400}
    assert setup_limits_table(limiter, A) == {"table": "exists", "ttl": 86400}
    assert ts_limiter(standin, "weekly", forms=1, window=7 * 86400) and \
        setup_limits_table(ts_limiter(standin, "weekly", forms=1, window=7 * 86400), A)["ttl"] == 7 * 86400 + 600
    with pytest.raises(SetupRefused, match="TTL"):  # a longer window than the table keeps rows
        setup_limits_table(ts_limiter(standin, "setup", forms=1, window=2 * 86400), A)
    client = limiter.client(A)
    client.create_table(ts.TableMeta("wrongpk", [("upload_id", "STRING")]), ts.TableOptions(),
                        ts.ReservedThroughput(ts.CapacityUnit(0, 0)))
    with pytest.raises(SetupRefused, match="primary key"):
        setup_limits_table(ts_limiter(standin, "wrongpk", forms=1), A)


def test_setup_cli(standin, tmp_path):
    url = f"tablestore://ossd/cli?endpoint={standin.endpoint}&region=cn-hangzhou"
    run_env = dict(os.environ, ALIBABA_CLOUD_ACCESS_KEY_ID=A.access_key_id,
                   ALIBABA_CLOUD_ACCESS_KEY_SECRET=A.access_key_secret, ALIBABA_CLOUD_SECURITY_TOKEN=A.security_token,
                   OSSDIRECT_USER_LIMITS="forms=3,window=60", PYTHONPATH=os.path.join(ROOT, "shared"))
    out = subprocess.run([sys.executable, "-m", "tools.limits_setup", url], cwd=ROOT, env=run_env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "created (TTL 86400 s)" in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-m", "tools.limits_setup"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(run_env, OSSDIRECT_LIMITS_STORE=f"sqlite:///{tmp_path}/x.sqlite3"), timeout=60)
    assert out.returncode == 0 and "needs no setup" in out.stdout


def test_sdk_is_imported_only_when_tablestore_is_configured(tmp_path):
    code = ("import sys; from ossdirect.core.limits import LimitSettings, open_limiter; "
            f"l = open_limiter(LimitSettings(forms=1, store='sqlite:///{tmp_path}/x.sqlite3')); "
            "l.spend('u', 1); print('tablestore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "shared")))
    assert out.stdout.strip() == "False"


def test_open_limiter_picks_the_backend(tmp_path):
    assert isinstance(open_limiter(LimitSettings(forms=1, store=f"sqlite:///{tmp_path}/a.sqlite3")), SqliteLimiter)
    with pytest.raises(ConfigError):
        open_limiter(LimitSettings(forms=1, store="memcached://x"))
