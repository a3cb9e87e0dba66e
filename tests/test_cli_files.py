"""`ossdirect ls / get / rm` (issue 24): a signed-in user's own files from the command line, against the
local stack with sign-in on and private objects."""

import io
import json

import pytest

from devstack import LocalStack
from ossdirect import Client
from ossdirect.client.cli import main


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("cli-files"), env={"OSSDIRECT_OBJECT_ACL": "private"}, auth="jwt") as s:
        yield s


def run(stack, user, *argv):
    out, err = io.StringIO(), io.StringIO()
    token = ["--token", stack.token(user)] if user else []
    code = main([*argv, "--signature-url", stack.signature_url, *token], out, err)
    return code, out.getvalue(), err.getvalue()


def test_ls_get_rm_are_the_owners_alone(stack, tmp_path):
    alice = Client(stack.signature_url, token=stack.token("alice"))
    first = alice.upload(b"alpha bytes", filename="alpha.txt", content_type="text/plain")
    second = alice.upload(b"beta bytes", filename="beta notes.txt", content_type="text/plain")
    code, out, err = run(stack, "alice", "ls", "--json")
    assert code == 0
    listed = [f["upload_id"] for f in json.loads(out)["files"]]
    assert listed[:2] == [second.upload_id, first.upload_id]
    code, out, _ = run(stack, "alice", "ls")
    assert code == 0 and "beta notes.txt" in out and "11 bytes" in out

    code, out, err = run(stack, "alice", "get", second.upload_id, "-o", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "beta notes.txt").read_bytes() == b"beta bytes"

    code, _, err = run(stack, "bob", "rm", second.upload_id)  # not bob's: the same answer as an unknown id
    assert code == 1 and "you have no file with this upload id" in err
    code, _, err = run(stack, "bob", "get", first.upload_id, "-o", str(tmp_path / "x.txt"))
    assert code == 1 and not (tmp_path / "x.txt").exists()

    code, out, _ = run(stack, "alice", "rm", second.upload_id)
    assert code == 0 and out.startswith("deleted ")
    code, out, _ = run(stack, "alice", "ls", "--json")
    assert second.upload_id not in [f["upload_id"] for f in json.loads(out)["files"]]


def test_without_a_token_the_command_says_how_to_sign_in(stack):
    code, _, err = run(stack, None, "ls")
    assert code == 2 and "--token TOKEN" in err and err.count("\n") == 1
    code, _, err = run(stack, "alice", "get", "a", "b", "-o", "/nonexistent-folder-for-test")
    assert code == 2 and "is not a folder" in err
