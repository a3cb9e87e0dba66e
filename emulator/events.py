"""OSS trigger events: after every upload that creates an object, the event Function Compute hands an
OSS-triggered function is POSTed to each configured local function URL.

The body is FC's documented OSS-trigger event (FC "Formats of event for different triggers", OSS
triggers)::

    {"events": [{"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss",
                 "eventTime": "2022-08-13T06:45:43.000Z", "eventVersion": "1.0",
                 "oss": {"bucket": {"arn": "acs:oss:<region>:<uid>:<bucket>", "name": ..., "ownerIdentity": uid},
                         "object": {"deltaSize": ..., "eTag": "<upper-case hex, no quotes>", "key": ...,
                                    "objectMeta": {"mimeType": ..., "userMeta": {"x-oss-meta-*": ...}},
                                    "size": ...},
                         "ossSchemaVersion": "1.0", "ruleId": ...},
                 "region": ..., "requestParameters": {"sourceIPAddress": ...},
                 "responseElements": {"requestId": ...}, "userIdentity": {"principalId": uid}}]}

Delivery is asynchronous (one queue and worker thread per target; with ``delay``, each event no sooner
than that many seconds after its object was stored, as a real trigger takes a moment), at least once (a failed POST or a
non-2xx answer is retried with exponential backoff), and never blocks nor fails the upload that
raised it. A test mode delivers every event ``duplicates`` times and, with ``shuffle``, in a random
order (what a real trigger may do). Only loopback URLs are accepted: the emulator never reaches out.
"""

import hashlib
import ipaddress
import json
import logging
import queue
import random
import threading
import time
from urllib.parse import urlsplit

import requests

log = logging.getLogger("emulator.events")
BATCH_WINDOW = 0.05  # shuffle mode: events arriving this close together are delivered in a random order
STOP = object()


def is_loopback_url(url):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_event(name, bucket, key, etag, size, delta_size, region, account_id, request_id, source_ip,
                mime_type="", user_meta=None, rule_id="", when=None):
    """The FC OSS-trigger event (a dict) for one object; ``name`` without the ``oss:`` prefix."""
    when = time.time() if when is None else when
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + ".%03dZ" % int((when % 1) * 1000)
    return {"events": [{
        "eventName": name,
        "eventSource": "acs:oss",
        "eventTime": stamp,
        "eventVersion": "1.0",
        "oss": {
            "bucket": {"arn": f"acs:oss:{region}:{account_id}:{bucket}", "name": bucket,
                       "ownerIdentity": account_id},
            "object": {"deltaSize": delta_size, "eTag": etag, "key": key,
                       "objectMeta": {"mimeType": mime_type, "userMeta": dict(user_meta or {})},
                       "size": size},
            "ossSchemaVersion": "1.0",
            "ruleId": rule_id,
        },
        "region": region,
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"requestId": request_id},
        "userIdentity": {"principalId": account_id},
    }]}


class EventSender:
    """Per-target queues and workers. ``emit`` only enqueues: it never blocks and never raises."""

    def __init__(self, targets, duplicates=1, shuffle=False, timeout=5.0, attempts=4, backoff=0.2, delay=0.0):
        bad = [t for t in targets if not is_loopback_url(t)]
        if bad:
            raise ValueError(f"event targets must be loopback http(s) URLs (the emulator never reaches out): {bad}")
        if int(duplicates) < 1:
            raise ValueError("event duplicates must be at least 1")
        self.targets = list(targets)
        self.duplicates, self.shuffle = int(duplicates), shuffle
        self.timeout, self.attempts, self.backoff = timeout, max(1, int(attempts)), backoff
        if not 0 <= float(delay) <= 60:
            raise ValueError("event delay must be between 0 and 60 seconds")
        self.delay = float(delay)
        self.random = random.Random(shuffle) if isinstance(shuffle, int) and not isinstance(shuffle, bool) \
            else random.Random()
        self.delivered = 0  # successful POSTs (all targets), for tests and logs
        self.failed = 0  # events given up on after every attempt
        self._queues = []
        self._threads = []
        for url in self.targets:
            q = queue.Queue()
            thread = threading.Thread(target=self._work, args=(url, q), daemon=True, name=f"oss-events {url}")
            thread.start()
            self._queues.append(q)
            self._threads.append(thread)

    def rule_id(self, url):
        return hashlib.sha1(url.encode("utf-8")).hexdigest()

    def emit(self, event_for_rule):
        """Queue an event for every target; ``event_for_rule(rule_id)`` builds it (the rule id differs
        per target, as each trigger is its own rule)."""
        try:
            due = time.monotonic() + self.delay
            for url, q in zip(self.targets, self._queues):
                body = json.dumps(event_for_rule(self.rule_id(url)), ensure_ascii=False).encode("utf-8")
                for _ in range(self.duplicates):
                    q.put((due, body))
        except Exception:  # noqa: BLE001 - an event must never fail the upload that raised it
            log.exception("could not queue an OSS event")

    def _work(self, url, q):
        session = requests.Session()
        while True:
            item = q.get()
            if item is STOP:
                return
            wait = item[0] - time.monotonic()  # events are queued in due order: only the first waits
            if wait > 0:
                time.sleep(wait)
            batch = [item]
            if self.shuffle:
                while True:  # gather what arrives close together, then deliver it in a random order
                    try:
                        more = q.get(timeout=BATCH_WINDOW)
                    except queue.Empty:
                        break
                    if more is STOP:
                        q.put(STOP)
                        break
                    batch.append(more)
                self.random.shuffle(batch)
            for _, body in batch:
                self._deliver(session, url, body)

    def _deliver(self, session, url, body):
        for attempt in range(self.attempts):
            try:
                response = session.post(url, data=body, timeout=self.timeout, allow_redirects=False,
                                        headers={"Content-Type": "application/json"})
                if 200 <= response.status_code < 300:
                    self.delivered += 1
                    return True
                log.warning("OSS event to %s: HTTP %s (attempt %d of %d)", url, response.status_code, attempt + 1,
                            self.attempts)
            except requests.RequestException as exc:
                log.warning("OSS event to %s failed: %s (attempt %d of %d)", url, exc.__class__.__name__,
                            attempt + 1, self.attempts)
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff * (2 ** attempt))
        self.failed += 1
        return False

    def close(self, timeout=1.0):
        for q in self._queues:
            q.put(STOP)
        for thread in self._threads:
            thread.join(timeout)
