"""Deployed = local: the product as `s deploy -y` deployed it, not just the commands.

The real `s` deploys s.yaml (with a .env) against the FC API stand-in; then the uploaded zips are served as
FC would run them (fc_standin/runtime.py): each trigger's methods, the function's timeout, a read-only code
directory with only /tmp writable, exactly the environment FC received, the runtime's CPython. Around them:
the OSS emulator (uploads, OSS callbacks, OSS trigger events with retries) and the Tablestore stand-in,
the one record store the deployed configuration gives all three functions. The .env points the
endpoints at them with the deploy variables a user has for that (OSSDIRECT_DEPLOY_OSS_ENDPOINT,
_UPLOAD_HOST, _SLS_ENDPOINT, _TABLESTORE_RECORDS). One difference from the cloud, stated: the callback
trusts the emulator's callback key (OSSDIRECT_TRUSTED_KEY_PREFIXES), since the emulator is not OSS.

Then the local stack's end-to-end scenarios run through it: a form upload recorded and polled, a multipart
upload paused and resumed, the event path with the callback down, a refused type, /limits, and the
signed-in /files routes (list, presigned download, delete). As the deploy recommends: sign-in on (a
loopback token issuer's JWKS URL) and a private bucket, so an upload's plain URL is refused."""

import json
import os
import socket
import sys
from pathlib import Path

import oss2
import pytest
import requests
from fc_standin.rehearse import Rehearsal
from fc_standin.runtime import FcRuntime, wait_for
from tablestore_standin import TablestoreStandIn
from test_bundle import INTERPRETERS
from test_rehearsal import copy_project

from devstack.auth import TokenService
from emulator import EmulatorConfig, serve
from ossdirect.oss.credentials import Credentials
from ossdirect.store.tablestore import TablestoreStore
from tools.tablestore_setup import setup_table

BUCKET, REGION, PREFIX = "rehearsal-bucket", "cn-shanghai", "incoming/"
ROLE = Credentials("STS.rehearsal-role", "rehearsal-role-secret", "rehearsal-role-token")  # the functions' role
SIG, CB, PROC = "ossdirect-signature", "ossdirect-callback", "ossdirect-process"
MiB = 1 << 20


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    base = tmp_path_factory.mktemp("product")
    python = INTERPRETERS["3.10"]  # the runtime s.yaml names
    assert os.path.exists(python), f"CPython 3.10 is needed at {python} for this proof"
    tablestore = TablestoreStandIn(instance="rehearsal-ots", region=REGION,
                                   credentials={ROLE.access_key_id: (ROLE.access_key_secret, ROLE.security_token)})
    setup_table(TablestoreStore("rehearsal-ots", "upload_records", tablestore.endpoint, region=REGION, timeout=2),
                ROLE)
    runtime = FcRuntime([SIG, CB], [PROC])
    emu = serve(EmulatorConfig(data_dir=str(base / "oss"), buckets=[BUCKET], region=REGION,
                               accounts={ROLE.access_key_id: (ROLE.access_key_secret, ROLE.security_token)},
                               event_targets=[runtime.fronts[PROC].url + "/invoke"], event_delay=0.2,
                               bucket_acl="private"))  # what deploy/setup.py makes of the bucket
    issuer = TokenService(origins=[emu.url])  # the site's sign-in: tokens checked against its JWKS URL
    bucket_url = f"{emu.url}/{BUCKET}"
    project = copy_project(base / "project")
    dotenv = {
        "OSSDIRECT_DEPLOY_REGION": REGION, "OSSDIRECT_DEPLOY_BUCKET": BUCKET, "OSSDIRECT_DEPLOY_PREFIX": PREFIX,
        "OSSDIRECT_DEPLOY_SITE_ORIGIN": emu.url, "OSSDIRECT_DEPLOY_SLS_PROJECT": "rehearsal-project",
        "OSSDIRECT_DEPLOY_TABLESTORE_RECORDS":
            f"tablestore://rehearsal-ots/upload_records?endpoint={tablestore.endpoint}&region={REGION}",
        "OSSDIRECT_DEPLOY_OSS_ENDPOINT": bucket_url, "OSSDIRECT_DEPLOY_UPLOAD_HOST": bucket_url,
        # no SLS here: appends to the record Logstore fail (logged), the records stay in Tablestore
        "OSSDIRECT_DEPLOY_SLS_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "OSSDIRECT_DEPLOY_AUTH": "jwt", "OSSDIRECT_DEPLOY_JWT_JWKS_URL": issuer.jwks_url,
        "OSSDIRECT_DEPLOY_JWT_ISSUER": issuer.issuer, "OSSDIRECT_DEPLOY_JWT_AUDIENCE": issuer.audience,
    }
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSSDIRECT_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    account = Rehearsal(project, base / "account", env, trigger_urls=runtime.trigger_urls())
    try:
        run = account.run("deploy", "-y")
        assert run["rc"] == 0, run["log"][-3000:]
        state = run["state"]
        zips = {r["body"]["functionName"]: account.out / r["body"]["code"]["ossObjectName"].rsplit("/", 1)[-1]
                for r in run["requests"] if r["method"] == "POST" and r["path"] == "/2023-03-30/functions"}
        fc_env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": ROLE.access_key_id,  # the role's keys, as FC sets them
                  "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ROLE.access_key_secret,
                  "ALIBABA_CLOUD_SECURITY_TOKEN": ROLE.security_token,
                  "FC_REGION": REGION, "FC_ACCOUNT_ID": "1234567890123456"}
        functions = runtime.attach(state, zips, base / "code", python, fc_env)
        functions[CB].env["OSSDIRECT_TRUSTED_KEY_PREFIXES"] = f"{emu.url}/_emulator/"  # the one difference
        # the OSS trigger as deployed: its events and prefix filter
        trigger = functions[PROC].trigger
        config = trigger["triggerConfig"]
        config = json.loads(config) if isinstance(config, str) else config
        emu.emulator.config.event_names = [e.removeprefix("oss:") for e in config["events"]]
        emu.emulator.config.event_prefix = config["filter"]["key"]["prefix"]
        yield {"runtime": runtime, "functions": functions, "emu": emu, "tablestore": tablestore,
               "signature": state["triggers"][SIG + "\nhttp"]["httpTrigger"]["urlInternet"],
               "callback": state["triggers"][CB + "\nhttp"]["httpTrigger"]["urlInternet"],
               "origin": emu.url, "bucket_url": bucket_url, "issuer": issuer, "deployed_env": {
                   name: dict(state["functions"][name]["environmentVariables"]) for name in (SIG, CB, PROC)}}
    finally:
        account.close()
        runtime.close()
        emu.shutdown()
        tablestore.close()
        issuer.stop()


def sig(product, path="", user="alice", **kwargs):
    """A call to the deployed signature function from the site, signed in as ``user`` (None: no token)."""
    headers = {"Origin": product["origin"]}
    if user:
        headers["Authorization"] = f"Bearer {product['issuer'].token(user)}"
    kwargs.setdefault("headers", headers)
    return requests.request(kwargs.pop("method", "GET"), product["signature"].rstrip("/") + "/" + path,
                            timeout=60, **kwargs)


def form_upload(product, name, data, content_type="text/plain"):
    r = sig(product, params={"filename": name, "size": len(data), "content_type": content_type})
    assert r.status_code == 200, r.text
    form = r.json()
    up = requests.post(form["host"], data=form["field_list"], files={"file": (name, data, content_type)}, timeout=30)
    return form, up


def poll_record(product, upload_id, where=lambda r: True, timeout=30):
    def found():
        r = sig(product, f"records/{upload_id}")
        return r.json() if r.status_code == 200 and where(r.json()) else None
    return wait_for(found, timeout)


def test_functions_run_with_exactly_the_environment_fc_received_and_one_record_store(product):
    for name, fn in product["functions"].items():
        ossdirect = {k: v for k, v in fn.env.items() if k.startswith("OSSDIRECT_")}
        deployed = {k: v for k, v in product["deployed_env"][name].items() if k.startswith("OSSDIRECT_")}
        if name == CB:
            deployed["OSSDIRECT_TRUSTED_KEY_PREFIXES"] = ossdirect["OSSDIRECT_TRUSTED_KEY_PREFIXES"]
        assert ossdirect == deployed, name
    stores = {fn.env["OSSDIRECT_RECORDS"] for fn in product["functions"].values()}
    assert len(stores) == 1 and stores.pop().startswith("tablestore://")


def test_the_trigger_refuses_a_method_it_does_not_list_as_fc_does(product):
    r = sig(product, method="PUT", data=b"x")
    assert r.status_code == 403 and r.headers["X-Fc-Error-Type"] == "FcCommonError", (r.status_code, r.text)
    r = requests.get(product["callback"], timeout=10)  # the callback's trigger lists POST only
    assert r.status_code == 403 and r.headers["X-Fc-Error-Type"] == "FcCommonError"
    pre = sig(product, "multipart", method="OPTIONS", headers={
        "Origin": product["origin"], "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code in (200, 204) and "POST" in pre.headers["Access-Control-Allow-Methods"], pre.headers


def test_limits_publish_the_multipart_threshold_the_deployed_store_supports(product):
    r = sig(product, "limits")
    assert r.status_code == 200, r.text
    assert r.json()["multipart_threshold"] == 64 * MiB and r.json()["prefix"] == PREFIX


def test_form_upload_is_recorded_by_the_callback_and_polled_via_records(product):
    form, up = form_upload(product, "hello.txt", b"hello deployed")
    assert up.status_code == 200, up.text
    answer = up.json()
    assert answer["key"] == form["key"] and answer["key"].startswith(PREFIX)
    record = poll_record(product, form["upload_id"])
    assert record and record["key"] == form["key"] and record["status"] == "recorded", record


def test_refused_type_is_refused_with_a_code(product):
    r = sig(product, params={"filename": "tool.exe", "size": 10, "content_type": "application/x-msdownload"})
    assert 400 <= r.status_code < 500 and r.json()["code"], r.text


def test_multipart_upload_paused_and_resumed_through_list_parts(product):
    size = 8 * MiB + 4321
    data = os.urandom(size)
    r = sig(product, "multipart", method="POST", json={"filename": "big.bin", "size": size,
                                                       "content_type": "video/mp4"})
    assert r.status_code == 201, r.text
    up = r.json()
    ids = {"key": up["key"], "upload_id": up["upload_id"]}
    assert up["part_count"] == 2
    signed = sig(product, f"multipart/{up['uploadId']}/parts", params=dict(ids, partNumbers="1,2"))
    assert signed.status_code == 200, signed.text
    urls = signed.json()["presignedUrls"]
    part_size = up["part_size"]
    first = requests.put(urls["1"], data=data[:part_size], timeout=60)
    assert first.status_code == 200, first.text
    # pause: the page stops here; resume: all it keeps is the ids, listParts says what OSS holds
    held = sig(product, f"multipart/{up['uploadId']}", params=ids)
    assert held.status_code == 200, held.text
    assert [p["PartNumber"] for p in held.json()] == [1]
    again = sig(product, f"multipart/{up['uploadId']}/2", params=ids)  # a fresh URL for the missing part
    assert again.status_code == 200, again.text
    second = requests.put(again.json()["url"], data=data[part_size:], timeout=60)
    assert second.status_code == 200, second.text
    parts = [{"PartNumber": 1, "ETag": first.headers["ETag"]}, {"PartNumber": 2, "ETag": second.headers["ETag"]}]
    done = sig(product, f"multipart/{up['uploadId']}/complete", method="POST", params=ids, json={"parts": parts})
    assert done.status_code == 200, done.text
    assert done.json()["ok"] is True and done.json()["key"] == up["key"]
    assert requests.get(f"{product['bucket_url']}/{up['key']}", timeout=60).status_code == 403  # private
    role = oss2.Bucket(oss2.StsAuth(ROLE.access_key_id, ROLE.access_key_secret, ROLE.security_token),
                       product["emu"].url, BUCKET)
    assert role.get_object(up["key"]).read() == data
    record = poll_record(product, up["upload_id"])
    assert record and record["source"] == "multipart" and record["size"] == size, record


def test_event_path_records_the_upload_when_the_callback_is_down(product):
    callback = product["functions"][CB]
    callback.stopped = True  # the callback's URL answers nothing useful: OSS says 203 CallbackFailed
    try:
        form, up = form_upload(product, "no-callback.txt", b"recorded by the event")
        assert up.status_code == 203, (up.status_code, up.text)
        record = poll_record(product, form["upload_id"], where=lambda r: r.get("source") == "event")
        assert record and record["key"] == form["key"], record
    finally:
        callback.stopped = False


def test_no_request_ran_past_its_timeout_and_memory_stayed_within_the_functions_size(product):
    print({name: {"cold_starts": fn.cold_starts, "peak_rss_mb": round(fn.peak_rss_mb() or 0, 1),
                  "memory_mb": fn.memory, "timeout_s": fn.timeout} for name, fn in product["functions"].items()})
    for name, fn in product["functions"].items():
        assert fn.timeouts == 0, name
        assert fn.cold_starts >= 1, name
        peak = fn.peak_rss_mb()
        assert peak and peak <= fn.memory, (name, peak, fn.memory)


def test_files_routes_list_sign_and_delete_and_the_plain_url_is_refused(product):
    data = os.urandom(1000) + b"files route"
    form, up = form_upload(product, "Ledger 2026.txt", data)
    assert up.status_code == 200, up.text
    assert poll_record(product, form["upload_id"])
    plain = requests.get(f"{product['bucket_url']}/{form['key']}", timeout=10)
    assert plain.status_code == 403 and "<Code>AccessDenied</Code>" in plain.text  # the bucket is private

    listed = sig(product, "files")
    assert listed.status_code == 200, listed.text
    assert form["upload_id"] in [f["upload_id"] for f in listed.json()["files"]]
    assert form["upload_id"] not in [f["upload_id"] for f in sig(product, "files", user="bob").json()["files"]]
    assert sig(product, "files", user=None).status_code == 401

    signed = sig(product, f"files/{form['upload_id']}/url")
    assert signed.status_code == 200, signed.text
    got = requests.get(signed.json()["url"], timeout=30)  # signed with the role's keys: oss:GetObject
    assert got.status_code == 200 and got.content == data
    assert "Ledger%202026.txt" in got.headers["Content-Disposition"]
    refused = sig(product, f"files/{form['upload_id']}/url", user="bob")
    assert (refused.status_code, refused.json()["code"]) == (404, "FileNotFound")

    gone = sig(product, f"files/{form['upload_id']}", method="DELETE")  # the role's oss:DeleteObject
    assert gone.status_code == 200 and gone.json()["deleted"] is True, gone.text
    assert requests.get(signed.json()["url"], timeout=30).status_code == 404
    assert form["upload_id"] not in [f["upload_id"] for f in sig(product, "files").json()["files"]]
