"""The local WSGI adapter delivers real FC3 events to the real handlers over real HTTP."""

import json
import threading

import pytest
import requests
from werkzeug.serving import make_server

from ossdirect.app.wsgi import environ_to_event, wsgi_app


@pytest.fixture
def echo_server():
    seen = []

    def handler(event, context):
        seen.append((json.loads(event), context))
        return {"statusCode": 201, "headers": {"X-Test": "yes"}, "body": "done"}

    server = make_server("127.0.0.1", 0, wsgi_app(handler, "echo"), threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_event_shape_matches_fc3(echo_server):
    url, seen = echo_server
    r = requests.post(url + "/cb%20x/y?a=1&a=2&b=%2F", data=b"k=v&w=%2F",
                      headers={"Content-Type": "application/x-www-form-urlencoded", "X-Custom": "c"})
    assert r.status_code == 201 and r.text == "done" and r.headers["X-Test"] == "yes"
    event, context = seen[0]
    assert event["version"] == "v1"
    assert event["rawPath"] == "/cb%20x/y"
    assert event["requestContext"]["http"]["path"] == "/cb x/y"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["queryParameters"] == {"a": "1,2", "b": "/"}  # FC3 joins repeats with commas
    assert event["body"] == "k=v&w=%2F" and event["isBase64Encoded"] is False
    assert event["headers"]["X-Custom"] == "c"
    assert context.request_id == event["requestContext"]["requestId"]


def test_binary_body_is_base64(echo_server):
    url, seen = echo_server
    requests.post(url + "/", data=b"\xff\x00\x01", headers={"Content-Type": "application/octet-stream"})
    event, _ = seen[0]
    assert event["isBase64Encoded"] is True and event["body"] == "/wAB"


def test_environ_to_event_without_body():
    import io

    event = json.loads(environ_to_event({"REQUEST_METHOD": "GET", "PATH_INFO": "/limits", "QUERY_STRING": "",
                                         "wsgi.input": io.BytesIO()}))
    assert event["rawPath"] == "/limits" and event["body"] == "" and event["queryParameters"] == {}
