"""GET <signature-url>/records/<upload_id>: the page's poll, scoped to what the caller may see."""

import pytest
import requests
from fixtures import jwt_env, sqlite_url
from test_signature_auth import AUDIENCE, ISSUER, jwks, keys, token  # noqa: F401 (fixtures)

from devstack import LocalStack


def upload(stack, headers=None):
    r = requests.get(stack.signature_url, params={"filename": "secret-plan.pdf", "size": 5,
                                                  "content_type": "application/pdf"},
                     headers=dict(headers or {}, Origin=stack.page_origin), timeout=10)
    assert r.status_code == 200, r.text
    form = r.json()
    up = requests.post(form["host"], data=form["field_list"], files={"file": ("x.pdf", b"%PDF-", "application/pdf")},
                       timeout=10)
    assert up.status_code == 200, up.text
    return form


def test_anonymous_lookup_shows_only_what_the_object_already_tells(tmp_path):
    with LocalStack(tmp_path, env={"OSSDIRECT_RECORDS": f"sqlite:///{tmp_path / 'r.sqlite3'}"}) as s:
        form = upload(s)
        r = requests.get(f"{s.signature_url}records/{form['upload_id']}", timeout=10)
        assert r.status_code == 200
        rec = r.json()
        assert rec["key"] == form["key"] and rec["size"] == 5 and rec["status"] == "recorded"
        assert "filename" not in rec and "user" not in rec
        missing = requests.get(f"{s.signature_url}records/{'0' * 32}", timeout=10)
        assert (missing.status_code, missing.json()["code"]) == (404, "RecordNotFound")
        bad = requests.get(f"{s.signature_url}records/..%2F..%2Fetc", timeout=10)
        assert bad.status_code in (400, 404)


def test_signed_in_lookup_is_the_owners_only(tmp_path, jwks, keys):  # noqa: F811
    env = jwt_env(jwks, ISSUER, AUDIENCE, RECORDS=sqlite_url(tmp_path / "r.sqlite3"), PREFIX="uploads/{sub}/")
    with LocalStack(tmp_path, env=env) as s:
        alice = {"Authorization": f"Bearer {token(keys, 'alice')}"}
        form = upload(s, alice)
        url = f"{s.signature_url}records/{form['upload_id']}"
        mine = requests.get(url, headers=alice, timeout=10)
        assert mine.status_code == 200 and mine.json()["filename"] == "secret-plan.pdf"
        assert mine.json()["user"] == "alice"
        bobs = requests.get(url, headers={"Authorization": f"Bearer {token(keys, 'bob')}"}, timeout=10)
        assert bobs.status_code == 404
        assert requests.get(url, timeout=10).status_code == 401


@pytest.mark.parametrize("records", ["stdout"])
def test_append_only_stores_say_they_cannot_look_up(tmp_path, records):
    with LocalStack(tmp_path, env={"OSSDIRECT_RECORDS": records}) as s:
        r = requests.get(f"{s.signature_url}records/{'0' * 32}", timeout=10)
        assert (r.status_code, r.json()["code"]) == (501, "RecordLookupUnsupported")
