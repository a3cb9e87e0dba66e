"""Attacks on the upload path, performed for real against the local stack (emulator + both real
handlers over loopback HTTP, records in SQLite, Chromium where a stored object is opened).

Each test is an attack that once worked (or would, with one line of pinning gone) and asserts the
refusal and that nothing was stored or recorded. The attacker has an OSS account of their own
(here: a second bucket in the same emulated OSS, which signs every customer's callbacks with one
key, as OSS does) and reads our forms.
"""

import base64
import json
import types

import pytest
import requests
from fixtures import base_env

from devstack import LocalStack
from ossdirect.settings import load_config
from ossdirect.oss.credentials import Credentials
from ossdirect.core.forms import issue_form

SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" onload="document.title=\'pwned\'">'
       b'<script>document.title="pwned"</script></svg>')
HTML = b"<!doctype html><title>x</title><script>document.title='pwned'</script>"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("sec"), env={"OSSDIRECT_MAX_BYTES": "65536"}) as s:
        yield s


def get_form(stack, **query):
    r = requests.get(stack.signature_url, params=query, headers={"Origin": stack.page_origin}, timeout=10)
    return r.status_code, r.json()


def post(host, fields, data, filename="f.bin", content_type="application/octet-stream"):
    return requests.post(host, data=fields, files={"file": (filename, data, content_type)}, timeout=15)


def keys_in_bucket(stack):
    root = stack.data_dir / "oss" / "buckets"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def records_for(stack, upload_id):
    return [r for r in stack.records() if r["upload_id"] == upload_id]


# --- 1. Active content on the site's origin ----------------------------------------------------------
@pytest.mark.parametrize("content_type", [
    "image/svg+xml", "text/html", "application/xhtml+xml", "text/xml", "application/xml",
    "image/x-foo+xml", "application/javascript", "text/javascript", "IMAGE/SVG+XML",
])
def test_active_types_are_never_admitted_by_a_wildcard(stack, content_type):
    status, body = get_form(stack, filename="a.svg", size=10, content_type=content_type)
    assert (status, body["code"]) == (415, "UnsupportedContentType")


@pytest.mark.parametrize("content_type", ["image/x,text/html", "image/png; charset=x", "image/png\ntext/html"])
def test_type_smuggling_in_the_declared_type_is_refused(stack, content_type):
    status, body = get_form(stack, filename="a.png", size=10, content_type=content_type)
    assert (status, body["code"]) == (400, "InvalidContentType")


def test_prefix_forms_never_bind_the_type_with_starts_with(tmp_path):
    with LocalStack(tmp_path, env={"OSSDIRECT_PREFIX_FORMS": "true", "OSSDIRECT_CONTENT_TYPES": "image/*"}) as s:
        status, body = get_form(s)
        assert (status, body["code"]) == (400, "ContentTypeRequired")
        # with a declared type the form pins exactly that type: "image/x,text/html" is refused by OSS
        status, form = get_form(s, content_type="image/png")
        assert status == 200
        policy = json.loads(base64.b64decode(form["policy"]))
        assert not any(isinstance(c, list) and c[0] == "starts-with" and "type" in c[1].lower()
                       for c in policy["conditions"])
        fields = [[n, "image/x,text/html" if n in ("x-oss-content-type", "Content-Type") else v]
                  for n, v in form["field_list"]]
        fields = [[n, form["dir"] + "evil.html" if n == "key" else v] for n, v in fields]
        r = post(form["host"], fields, HTML, "evil.html", "image/x,text/html")
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
        assert not any(k.endswith("evil.html") for k in keys_in_bucket(s))


@pytest.mark.browser
def test_svg_bytes_under_a_pinned_png_type_do_not_run_on_the_origin(stack, browser):
    """The best an attacker can do is store SVG bytes as image/png: opened on the page's origin,
    Chromium treats them as an image and no script runs."""
    status, form = get_form(stack, filename="cat.png", size=len(SVG), content_type="image/png")
    assert status == 200
    # the attacker also tries to make the stored type SVG: refused by the pinned type
    fields = [[n, "image/svg+xml" if n == "x-oss-content-type" else v] for n, v in form["field_list"]]
    assert post(form["host"], fields, SVG, "cat.svg", "image/svg+xml").status_code == 403
    r = post(form["host"], form["field_list"], SVG, "cat.svg", "image/svg+xml")  # the file part's own type loses
    assert r.status_code == 200, r.text
    url = f"{stack.bucket_url}/{form['key']}"
    assert requests.head(url, timeout=5).headers["Content-Type"] == "image/png"
    context = browser.new_context()
    page = context.new_page()
    try:
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.wait_for_timeout(300)
        assert page.title() != "pwned" and dialogs == []
        # and embedded in the page's own origin as an <img>, it is an image: no script either
        page.goto(stack.page_url)
        page.evaluate("u => new Promise(r => { const i = new Image(); i.onload = i.onerror = r; i.src = u; "
                      "document.body.append(i); })", url)
        assert page.title() != "pwned"
    finally:
        context.close()


# --- 2. Forged callbacks from another OSS account ---------------------------------------------------
def _attacker_bucket(stack):
    """A stranger's own bucket and account on the same (emulated) OSS."""
    emu = stack.emulator.emulator
    if "stranger-bucket" not in emu.config.buckets:
        emu.config.buckets.append("stranger-bucket")
        emu.cors["stranger-bucket"], emu.index["stranger-bucket"] = [], "index.html"
        emu.config.accounts["STRANGER"] = ("stranger-secret", None)
    return f"{stack.emulator.url}/stranger-bucket", Credentials("STRANGER", "stranger-secret")


def _stranger_form(stack, callback_body, upload_id):
    host, creds = _attacker_bucket(stack)
    config = load_config(base_env("stranger-bucket", UPLOAD_HOST=host, CALLBACK_URL=stack.callback_url,
                                  CALLBACK_BODY=callback_body, CONTENT_TYPES="*"))
    return issue_form(config, creds, {"filename": "x.bin", "size": "1", "content_type": "application/pdf"},
                      upload_id=upload_id)


def test_forged_callback_for_an_object_we_never_stored_is_refused(stack):
    before = stack.records()
    body = ("bucket=ossdirect-local&object=uploads%2Fceo-payroll.pdf&size=123456789&etag=X"
            "&mimeType=application%2Fpdf&upload_id=${x:upload_id}")
    form = _stranger_form(stack, body, "0" * 32)
    r = post(form["host"], form["field_list"], b"1", "x.bin", "application/pdf")
    # OSS relays our refusal as 203 CallbackFailed to the stranger; nothing is recorded
    assert r.status_code == 203 and "<Code>CallbackFailed</Code>" in r.text
    assert stack.records() == before
    assert not any("ceo-payroll" in (rec["key"] or "") for rec in stack.records())


def test_forged_callback_naming_a_real_object_with_another_upload_id_is_refused(stack):
    data = b"%PDF-1.4 real"
    status, form = get_form(stack, filename="real.pdf", size=len(data), content_type="application/pdf")
    assert post(form["host"], form["field_list"], data, "real.pdf", "application/pdf").status_code == 200
    before = stack.records()
    from urllib.parse import quote

    body = (f"bucket=ossdirect-local&object={quote(form['key'], safe='')}&size=999999&etag=X"
            "&mimeType=text%2Fhtml&upload_id=${x:upload_id}")
    forged = _stranger_form(stack, body, "f" * 32)
    r = post(forged["host"], forged["field_list"], b"1", "x.bin", "application/pdf")
    assert r.status_code == 203
    assert stack.records() == before
    # replaying the genuine upload id only gets the genuine record back: its facts are OSS's, not the body's
    forged = _stranger_form(stack, body, form["upload_id"])
    r = post(forged["host"], forged["field_list"], b"1", "x.bin", "application/pdf")
    assert stack.records() == before
    [rec] = records_for(stack, form["upload_id"])
    assert rec["size"] == len(data) and rec["content_type"] == "application/pdf"


# --- 3. Stored object headers the client could set --------------------------------------------------
@pytest.mark.parametrize("name,value", [
    ("x-oss-object-acl", "public-read-write"),
    ("x-oss-storage-class", "Archive"),
    ("x-oss-storage-class", "ColdArchive"),
    ("Content-Disposition", 'attachment; filename="Invoice-2026.exe"'),
    ("Content-Encoding", "gzip"),
    ("Cache-Control", "public, max-age=31536000, immutable"),
    ("Expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
    ("success_action_redirect", "https://evil.example/phish"),
    ("x-oss-meta-upload-id", "someone-elses"),
])
@pytest.mark.parametrize("how", ["replace", "append"])
def test_client_cannot_set_stored_headers(stack, name, value, how):
    data = b"%PDF-1.4 x"
    status, form = get_form(stack, filename="doc.pdf", size=len(data), content_type="application/pdf")
    assert status == 200
    pinned = dict(form["field_list"])
    assert name in pinned, f"{name} is not pinned by the form"
    if how == "replace":
        fields = [[n, value if n == name else v] for n, v in form["field_list"]]
    else:  # send ours and add a second value after it
        fields = form["field_list"] + [[name, value]]
    r = post(form["host"], fields, data, "doc.pdf", "application/pdf")
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, (name, r.status_code, r.text[:200])
    assert requests.head(f"{stack.bucket_url}/{form['key']}", timeout=5).status_code == 404
    assert records_for(stack, form["upload_id"]) == []


def test_stored_headers_are_the_safe_ones(stack):
    data = b"%PDF-1.4 y"
    _, form = get_form(stack, filename="Invoice 2026.pdf", size=len(data), content_type="application/pdf")
    assert post(form["host"], form["field_list"], data, "x.exe", "application/x-msdownload").status_code == 200
    head = requests.head(f"{stack.bucket_url}/{form['key']}", timeout=5).headers
    assert head["Content-Type"] == "application/pdf"
    assert head["Content-Disposition"].startswith('inline; filename="Invoice 2026.pdf"')
    assert head["Cache-Control"] == "no-cache" and head["Content-Encoding"] == "identity"
    assert head.get("x-oss-object-acl", "default") == "default"
    assert head.get("x-oss-storage-class", "Standard") == "Standard"
    assert head["x-oss-meta-upload-id"] == form["upload_id"]


def test_no_redirect_without_a_callback(tmp_path):
    with LocalStack(tmp_path, env={"OSSDIRECT_CALLBACK_URL": ""}) as s:
        # the local stack's signature env sets the callback URL; override it to none
        s.signature.stop()
        from devstack import _FunctionServer
        from ossdirect.app.handlers import SignatureApp

        env = s._env(OSSDIRECT_CALLBACK_URL="")
        s.signature = _FunctionServer(SignatureApp(env), "127.0.0.1", 0, "signature", s.credentials)
        s.signature_url = s.signature.url + "/"
        _, form = get_form(s, filename="a.txt", size=5, content_type="text/plain")
        assert form["callback"] is None
        fields = [[n, "https://evil.example/" if n == "success_action_redirect" else v] for n, v in form["field_list"]]
        r = requests.post(form["host"], data=fields, files={"file": ("a.txt", b"hello", "text/plain")},
                          allow_redirects=False, timeout=10)
        assert r.status_code == 403 and "Location" not in r.headers
        r = requests.post(form["host"], data=form["field_list"], files={"file": ("a.txt", b"hello", "text/plain")},
                          allow_redirects=False, timeout=10)
        assert r.status_code == 204 and "Location" not in r.headers


# --- 4. Prefix-scoped forms ---------------------------------------------------------------------------
def test_prefix_forms_are_off_by_default(stack):
    status, body = get_form(stack, content_type="image/png")
    assert (status, body["code"]) == (400, "FilenameRequired")


def test_one_prefix_form_records_at_most_one_object(tmp_path):
    with LocalStack(tmp_path, env={"OSSDIRECT_PREFIX_FORMS": "true"}) as s:
        status, form = get_form(s, content_type="text/plain")
        assert status == 200
        answers = []
        for name in ("one.txt", "two.txt", "three.txt"):
            fields = [[n, form["dir"] + name if n == "key" else v] for n, v in form["field_list"]]
            answers.append(post(form["host"], fields, b"hello", name, "text/plain"))
        assert answers[0].status_code == 200 and answers[0].json()["key"] == form["dir"] + "one.txt"
        assert [a.status_code for a in answers[1:]] == [203, 203]  # stored by OSS, refused by the callback
        assert [r["key"] for r in records_for(s, form["upload_id"])] == [form["dir"] + "one.txt"]


# --- 6. Smaller ones --------------------------------------------------------------------------------
def test_empty_prefix_is_refused_and_the_root_is_an_explicit_choice(tmp_path):
    from ossdirect.settings import ConfigError

    base = base_env("b-1")
    with pytest.raises(ConfigError, match="OSSDIRECT_PREFIX"):
        load_config(dict(base, OSSDIRECT_PREFIX=""))
    with pytest.raises(ConfigError, match="OSSDIRECT_PREFIX"):
        load_config(dict(base, OSSDIRECT_PREFIX="uploads"))  # not a folder: would admit uploads-evil/...
    assert load_config(dict(base, OSSDIRECT_PREFIX="/")).prefix == ""
    with LocalStack(tmp_path, env={"OSSDIRECT_PREFIX": ""}) as s:
        status, body = get_form(s, filename="config.json", size=5, content_type="text/plain")
        assert (status, body["code"]) == (503, "ConfigInvalid") and "OSSDIRECT_PREFIX" in body["message"]
        assert s.get_object("config.json") != b"hello"


def test_overwrite_allowed_keeps_the_record_true_to_the_object(tmp_path):
    with LocalStack(tmp_path, env={"OSSDIRECT_FORBID_OVERWRITE": "false"}) as s:
        _, form = get_form(s, filename="a.txt", size=5, content_type="text/plain")
        first = post(form["host"], form["field_list"], b"hello", "a.txt", "text/plain")
        second = post(form["host"], form["field_list"], b"HELLO", "a.txt", "text/plain")
        assert first.status_code == second.status_code == 200
        [rec] = records_for(s, form["upload_id"])
        head = requests.head(f"{s.bucket_url}/{form['key']}", timeout=5).headers
        assert rec["etag"] == head["ETag"].strip('"') == second.json()["etag"]
        assert rec["record_id"] == first.json()["record_id"]


def test_hostile_file_names_are_recorded_as_display_names(tmp_path, caplog):
    caplog.set_level("INFO", logger="ossdirect")
    raw = "invoice\u202egpj.exe\r\nX-Injected: 1\x07.pdf"
    with LocalStack(tmp_path) as s:
        status, form = get_form(s, filename=raw, size=5, content_type="application/pdf")
        assert status == 200
        r = post(form["host"], form["field_list"], b"%PDF-", "x.pdf", "application/pdf")
        assert r.status_code == 200, r.text
        [rec] = records_for(s, form["upload_id"])
        assert rec["filename"] == r.json()["filename"] == "invoicegpj.exe X-Injected: 1.pdf"
        our_logs = [r.getMessage() for r in caplog.records if r.name.startswith("ossdirect")]
        assert our_logs
        for ch in "\u202e\r\n\x07":
            assert ch not in rec["filename"] and not any(ch in line for line in our_logs)
        assert "\u202e" not in json.dumps(dict(form["field_list"]), ensure_ascii=False)
