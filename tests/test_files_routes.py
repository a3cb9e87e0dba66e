"""A signed-in user's own files (issue 24, part 1) through the local stack: list newest first, a
short-lived download URL for a private object, delete; nobody else can list, sign or delete them."""

import time

import pytest
import requests

from devstack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # objects stored private: only a presigned URL reads them
    with LocalStack(tmp_path_factory.mktemp("files"), env={"OSSDIRECT_OBJECT_ACL": "private"}, auth="jwt") as s:
        yield s


def upload(stack, user, name, data, content_type="text/plain"):
    headers = {"Origin": stack.page_origin, "Authorization": f"Bearer {stack.token(user)}"}
    form = requests.get(stack.signature_url, params={"filename": name, "size": len(data), "content_type": content_type},
                        headers=headers, timeout=10).json()
    r = requests.post(form["url"], data=form["field_list"], files={"file": (name, data, content_type)}, timeout=15)
    assert r.status_code == 200, r.text
    return form


def call(stack, user, method="GET", path="files", **params):
    headers = {"Origin": stack.page_origin}
    if user:
        headers["Authorization"] = f"Bearer {stack.token(user)}"
    return requests.request(method, stack.signature_url + path, params=params, headers=headers, timeout=10)


def test_owner_lists_downloads_and_deletes_and_nobody_else_can(stack):
    first = upload(stack, "alice", "notes one.txt", b"first file")
    time.sleep(0.01)
    second = upload(stack, "alice", "résumé.txt", b"second file")
    bobs = upload(stack, "bob", "bob.txt", b"bob's file")

    listed = call(stack, "alice").json()
    ids = [f["upload_id"] for f in listed["files"]]
    assert ids[:2] == [second["upload_id"], first["upload_id"]]  # newest first
    assert bobs["upload_id"] not in ids and listed["files"][0]["filename"] == "résumé.txt"
    assert [f["upload_id"] for f in call(stack, "bob").json()["files"]] == [bobs["upload_id"]]

    # the object is private: a plain GET is refused, the owner's signed URL reads it, with the original name
    assert requests.get(f"{stack.bucket_url}/{second['key']}", timeout=5).status_code == 403
    signed = call(stack, "alice", path=f"files/{second['upload_id']}/url").json()
    assert "response-content-disposition=" in signed["url"] and signed["expires_at"] > time.time()
    got = requests.get(signed["url"], timeout=5)
    assert got.status_code == 200 and got.content == b"second file"

    # bob: cannot sign, cannot delete, and cannot tell alice's id from an unknown one
    for method, path in (("GET", f"files/{second['upload_id']}/url"), ("DELETE", f"files/{second['upload_id']}")):
        r = call(stack, "bob", method, path)
        assert (r.status_code, r.json()["code"]) == (404, "FileNotFound")
    assert call(stack, "bob", "DELETE", "files/nosuchupload").json()["code"] == "FileNotFound"
    assert call(stack, None).status_code == 401  # no token, no listing

    gone = call(stack, "alice", "DELETE", f"files/{second['upload_id']}")
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert requests.get(signed["url"], timeout=5).status_code == 404  # the object is gone from the bucket
    assert second["upload_id"] not in [f["upload_id"] for f in call(stack, "alice").json()["files"]]
    [record] = [r for r in stack.records() if r["upload_id"] == second["upload_id"]]
    assert record["status"] == "deleted"
    assert call(stack, "alice", path=f"files/{second['upload_id']}/url").status_code == 404


def test_listing_pages_with_a_token(stack):
    for i in range(3):
        upload(stack, "carol", f"c{i}.txt", b"c" * (i + 1))
    page = call(stack, "carol", limit=2).json()
    assert len(page["files"]) == 2 and page["next_page_token"]
    rest = call(stack, "carol", limit=2, page_token=page["next_page_token"]).json()
    assert len(rest["files"]) == 1 and rest["next_page_token"] is None
    assert [f["filename"] for f in page["files"] + rest["files"]] == ["c2.txt", "c1.txt", "c0.txt"]
    assert call(stack, "carol", page_token="garbage").json()["code"] == "InvalidPageToken"


def test_without_sign_in_there_are_no_per_user_files(tmp_path):
    with LocalStack(tmp_path) as s:
        r = requests.get(s.signature_url + "files", headers={"Origin": s.page_origin}, timeout=10)
        assert (r.status_code, r.json()["code"]) == (403, "SignInRequired")


def test_another_users_page_token_pages_only_your_own_files(stack):
    """A page token is a cursor, not a grant: bob replaying alice's token still reads only bob's rows."""
    for i in range(3):
        upload(stack, "dave", f"d{i}.txt", b"d" * (i + 1))
    upload(stack, "erin", "erin.txt", b"erin")
    token = call(stack, "dave", limit=1).json()["next_page_token"]
    assert token
    seen = call(stack, "erin", limit=50, page_token=token)
    assert seen.status_code in (200, 400)
    if seen.status_code == 200:
        assert {f["filename"] for f in seen.json()["files"]} <= {"erin.txt"}
    else:
        assert seen.json()["code"] == "InvalidPageToken"
