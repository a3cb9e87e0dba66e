"""The functions on the Tablestore record store (a stand-in that speaks its protocol): the callback
records through it, and the page's poll (GET <signature>/records/<id>) is one GetRow."""

import base64
import json
import types
from urllib.parse import urlencode

import pytest
from fixtures import emulated_env
from support import EmulatedBucket, fc_event
from tablestore_standin import TablestoreStandIn

from ossdirect.oss.credentials import Credentials
from ossdirect.app.handlers import CallbackApp, SignatureApp
from ossdirect.store.tablestore import TablestoreStore
from tools.tablestore_setup import setup_table

ROLE = Credentials("STS.function-role", "function-role-secret", "function-role-token")
CONTEXT = types.SimpleNamespace(credentials=types.SimpleNamespace(
    access_key_id=ROLE.access_key_id, access_key_secret=ROLE.access_key_secret, security_token=ROLE.security_token))


@pytest.fixture
def standin():
    server = TablestoreStandIn(credentials={ROLE.access_key_id: (ROLE.access_key_secret, ROLE.security_token)})
    setup_table(TablestoreStore("ossd", "records", server.endpoint, region="cn-hangzhou", timeout=2), ROLE)
    yield server
    server.close()


@pytest.fixture
def bucket(tmp_path):
    emulated = EmulatedBucket(tmp_path / "oss", "photo-bucket",
                              account=(ROLE.access_key_id, ROLE.access_key_secret, ROLE.security_token))
    yield emulated
    emulated.close()


def env(standin, bucket, key_server):
    return emulated_env(bucket, f"tablestore://ossd/records?endpoint={standin.endpoint}&region=cn-hangzhou", key_server)


def test_callback_records_once_in_tablestore_and_the_poll_is_one_getrow(standin, bucket, key_server, rsa_signer):
    bucket.put("uploads/t1.png", b"tablestore", upload_id="t1", filename="t.png")
    body = urlencode({"bucket": "photo-bucket", "object": "uploads/t1.png", "upload_id": "t1"}).encode()
    key_url = base64.b64encode(f"{key_server.url}/_emulator/callback_pub_key.pem".encode()).decode()
    event = fc_event("POST", "/cb", headers={"Authorization": rsa_signer.sign("/cb", "", body),
                                             "X-Oss-Pub-Key-Url": key_url,
                                             "Content-Type": "application/x-www-form-urlencoded"}, body=body)
    callback = CallbackApp(env(standin, bucket, key_server))
    first = callback(event, CONTEXT)
    again = CallbackApp(env(standin, bucket, key_server))(event, CONTEXT)  # another instance, same table
    assert first["statusCode"] == again["statusCode"] == 200
    a, b = json.loads(first["body"]), json.loads(again["body"])
    assert a["replayed"] is False and b["replayed"] is True and a["record_id"] == b["record_id"]
    assert a["size"] == 10 and a["filename"] == "t.png"

    signature = SignatureApp(env(standin, bucket, key_server))
    before = len(standin.requests)
    poll = signature(fc_event("GET", "/records/t1"), CONTEXT)
    assert poll["statusCode"] == 200 and json.loads(poll["body"])["record_id"] == a["record_id"]
    assert [api for api, *_ in standin.requests[before:]] == ["GetRow"]  # one round trip to the store
