"""OSS trigger events: after PostObject, PutObject and CompleteMultipartUpload the emulator POSTs FC's
OSS-trigger event to local function URLs, asynchronously, at least once, never delaying the upload."""

import collections
import json
import socket
import socketserver
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import oss2
import pytest
import requests
from conftest import AK, BUCKET, REGION, SK, make_form, multipart, oss2_bucket

from emulator import EmulatorConfig, serve

P1 = b"p" * (100 * 1024)


class FunctionStub:
    """A loopback 'function URL' recording the event bodies it receives.

    ``fail_first``: answer that many requests with 500 first; ``hold``: an Event the first request
    waits for before it is answered (so later deliveries pile up in the emulator's queue)."""

    def __init__(self, fail_first=0, hold=None):
        self.bodies, self.fail_first, self.hold, self.attempts = [], fail_first, hold, 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.attempts += 1
                    first, failing = outer.attempts == 1, outer.attempts <= outer.fail_first
                if first and outer.hold is not None:
                    outer.hold.wait(10)
                if failing:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with outer.lock:
                    outer.bodies.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/2023-03-30/functions/process/invocations"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def events(self):
        with self.lock:
            return [json.loads(body)["events"][0] for _, body in self.bodies]

    def wait_for(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.bodies) >= count:
                return self.events()
            time.sleep(0.02)
        raise AssertionError(f"{len(self.bodies)} events arrived, {count} expected")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start(tmp_path, name, **event_config):
    config = EmulatorConfig(data_dir=str(tmp_path / name), buckets=[BUCKET], region=REGION, accounts={AK: (SK, None)},
                            callback_timeout=2.0, **event_config)
    served = serve(config)
    served.bucket_url = f"{served.url}/{BUCKET}"
    return served


@pytest.fixture
def stub():
    server = FunctionStub()
    yield server
    server.close()


def post_object(emulator, key, data):
    body, ctype = multipart(make_form(key=key), data, "a.bin", "image/png")
    return requests.post(emulator.bucket_url + "/", data=body, headers={"Content-Type": ctype}, timeout=15)


def test_an_event_for_each_kind_of_upload(tmp_path, stub):
    emulator = start(tmp_path, "emu", event_targets=[stub.url])
    try:
        posted = post_object(emulator, "uploads/post.png", b"posted bytes")
        assert posted.status_code == 204
        bucket = oss2_bucket(emulator)
        put = bucket.put_object("uploads/put.txt", b"put!", headers={"x-oss-meta-user": "ann",
                                                                      "Content-Type": "text/plain"})
        upload_id = bucket.init_multipart_upload("uploads/multi.bin").upload_id
        etag = bucket.upload_part("uploads/multi.bin", upload_id, 1, P1).etag
        done = bucket.complete_multipart_upload("uploads/multi.bin", upload_id, [oss2.models.PartInfo(1, etag)])
        bucket.put_object("uploads/put.txt", b"longer now")  # an overwrite: deltaSize is the change
        events = stub.wait_for(4)
    finally:
        emulator.shutdown()
    assert [(e["eventName"], e["oss"]["object"]["key"]) for e in events] == [
        ("ObjectCreated:PostObject", "uploads/post.png"), ("ObjectCreated:PutObject", "uploads/put.txt"),
        ("ObjectCreated:CompleteMultipartUpload", "uploads/multi.bin"), ("ObjectCreated:PutObject", "uploads/put.txt")]
    sizes = [(e["oss"]["object"]["size"], e["oss"]["object"]["deltaSize"]) for e in events]
    assert sizes == [(12, 12), (4, 4), (len(P1), len(P1)), (10, 6)]
    etags = [e["oss"]["object"]["eTag"] for e in events]
    assert etags[:3] == [posted.headers["ETag"].strip('"'), put.etag, done.etag]  # no quotes, upper case
    assert etags[2].endswith("-1") and etags[0] == etags[0].upper()
    assert [e["responseElements"]["requestId"] for e in events[:2]] == [posted.headers["x-oss-request-id"],
                                                                        put.request_id]
    for e in events:
        assert e["eventSource"] == "acs:oss" and e["eventVersion"] == "1.0" and e["region"] == REGION
        assert e["eventTime"].endswith("Z") and len(e["eventTime"]) == len("2022-08-13T06:45:43.000Z")
        b = e["oss"]["bucket"]
        assert b["name"] == BUCKET and b["arn"] == f"acs:oss:{REGION}:{b['ownerIdentity']}:{BUCKET}"
        assert e["userIdentity"]["principalId"] == b["ownerIdentity"]
        assert e["oss"]["ossSchemaVersion"] == "1.0" and e["oss"]["ruleId"]
        assert e["requestParameters"]["sourceIPAddress"] == "127.0.0.1"
    assert events[1]["oss"]["object"]["objectMeta"] == {"mimeType": "text/plain",
                                                        "userMeta": {"x-oss-meta-user": "ann"}}
    headers, _ = stub.bodies[0]
    assert headers["Content-Type"] == "application/json"


def test_the_receiving_side_parses_what_the_emulator_sends(tmp_path, stub):
    """Contract with ossdirect's parser (the process function): the same tuples OSS would give."""
    from ossdirect.core.events import parse_oss_event  # the receiving side: the contract both keep
    emulator = start(tmp_path, "emu", event_targets=[stub.url])
    try:
        put = oss2_bucket(emulator).put_object("uploads/照片 a+b.png", b"x" * 5)
        stub.wait_for(1)
    finally:
        emulator.shutdown()
    assert parse_oss_event(stub.bodies[0][1]) == [("ObjectCreated:PutObject", BUCKET, "uploads/照片 a+b.png",
                                                   put.etag, 5)]


def test_refused_uploads_raise_no_event(tmp_path, stub):
    emulator = start(tmp_path, "emu", event_targets=[stub.url])
    try:
        body, ctype = multipart(make_form(key="uploads/a.bin", sk="wrong"), b"x")
        assert requests.post(emulator.bucket_url + "/", data=body, headers={"Content-Type": ctype},
                             timeout=5).status_code == 403
        bucket = oss2_bucket(emulator)
        bucket.put_object("uploads/b.bin", b"1")
        with pytest.raises(oss2.exceptions.OssError):
            bucket.put_object("uploads/b.bin", b"2", headers={"x-oss-forbid-overwrite": "true"})
        bucket.put_object("uploads/c.bin", b"3")
        events = stub.wait_for(2)
        time.sleep(0.2)
    finally:
        emulator.shutdown()
    assert [e["oss"]["object"]["key"] for e in stub.events()] == ["uploads/b.bin", "uploads/c.bin"]
    assert len(events) == 2


def test_failed_deliveries_are_retried(tmp_path):
    stub = FunctionStub(fail_first=2)
    emulator = start(tmp_path, "emu", event_targets=[stub.url], event_attempts=4)
    try:
        oss2_bucket(emulator).put_object("uploads/retry.bin", b"r")
        events = stub.wait_for(1)
        deadline = time.monotonic() + 5  # the stub has answered; the sender counts the delivery just after
        while emulator.emulator.events.delivered < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stub.attempts == 3 and emulator.emulator.events.delivered == 1
    finally:
        emulator.shutdown()
        stub.close()
    assert events[0]["oss"]["object"]["key"] == "uploads/retry.bin"


def test_a_dead_target_never_delays_or_fails_the_upload(tmp_path, stub):
    # a target that accepts connections and never answers (the worst case: every attempt waits the full
    # timeout), one that refuses connections, and a live one after them
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(1)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    refused_port = refused.getsockname()[1]
    refused.close()
    timeout = 2.0
    targets = [f"http://127.0.0.1:{hung.getsockname()[1]}/x", f"http://127.0.0.1:{refused_port}/x", stub.url]
    plain = start(tmp_path, "plain")
    dead = start(tmp_path, "dead", event_targets=targets, event_timeout=timeout, event_attempts=2)

    def timed(emulator, n):
        bucket = oss2_bucket(emulator)
        bucket.put_object("uploads/warm.bin", b"w")
        times = []
        for i in range(n):
            started = time.perf_counter()
            r = post_object(emulator, f"uploads/{i}.png", b"data %d" % i)
            times.append(time.perf_counter() - started)
            assert r.status_code == 204
            started = time.perf_counter()
            assert bucket.put_object(f"uploads/{i}.txt", b"put").status == 200
            times.append(time.perf_counter() - started)
        return statistics.median(times), max(times)

    try:
        normal_median, normal_max = timed(plain, 5)
        dead_median, dead_max = timed(dead, 5)
        # the live target still gets every event, whatever the dead ones do
        events = stub.wait_for(11)
    finally:
        plain.shutdown()
        dead.shutdown()
        hung.close()
    # measured against uploads to an emulator without targets, in this same test: delivering even one
    # event inline would cost a full timeout (2 s) per upload
    assert dead_median < normal_median * 3 + 0.05, (dead_median, normal_median)
    assert dead_max < normal_max + timeout / 2, (dead_max, normal_max)
    assert len(events) == 11


def test_duplicates_and_out_of_order_delivery_mode(tmp_path):
    hold = threading.Event()
    stub = FunctionStub(hold=hold)
    emulator = start(tmp_path, "emu", event_targets=[stub.url], event_duplicates=3, event_shuffle=7)
    keys = [f"uploads/{i}.bin" for i in range(5)]
    try:
        bucket = oss2_bucket(emulator)
        for key in keys:
            bucket.put_object(key, key.encode())
        hold.set()  # the first delivery was held: the rest queued up meanwhile
        events = stub.wait_for(15)
        time.sleep(0.2)
        assert len(stub.bodies) == 15
    finally:
        emulator.shutdown()
        stub.close()
    received = [e["oss"]["object"]["key"] for e in events]
    assert collections.Counter(received) == {key: 3 for key in keys}
    assert received != [key for key in keys for _ in range(3)], "delivered in order"
    # copies are the same event (same request id): a receiver must deduplicate
    assert len({e["responseElements"]["requestId"] for e in events}) == 5


def test_only_loopback_targets(tmp_path):
    with pytest.raises(ValueError):
        serve(EmulatorConfig(data_dir=str(tmp_path / "never"), event_targets=["http://example.com/fn"]))
    with pytest.raises(ValueError):
        serve(EmulatorConfig(data_dir=str(tmp_path / "never"), event_targets=["http://127.0.0.1:1/x"],
                             event_duplicates=0))
    assert not (tmp_path / "never").exists()
