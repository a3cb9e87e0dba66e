"""Sign-in before signing (issue 10), in a real browser against the local stack with auth on.

The stack (``LocalStack(auth="jwt")``, ``make stack ARGS="--auth jwt"``) runs a stand-in token issuer
on loopback: a JWKS the signature function trusts and ``/token?user=NAME`` for test users. Its
config.json points the page's token provider at it and shows the page's Test user field.
"""

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


from test_upload_page import item, open_page, wait_state  # noqa: E402  (the page's shared test helpers)

pytestmark = pytest.mark.browser


def sign_in_as(page, user):
    page.fill("#test-user", user)
    page.press("#test-user", "Enter")  # the keyboard submits the small form
    page.wait_for_function("u => document.getElementById('signed-in-as')?.textContent === `Signed in as ${u}.`",
                           arg=user)


def form_requests(page, stack):
    """Every GET for a form (not /limits) the page sends to the signature function: (Authorization, status)."""
    seen = []

    def on_response(response):
        request = response.request
        if request.method == "GET" and request.url.startswith(stack.signature_url + "?"):
            seen.append((request.headers.get("authorization", ""), response.status))

    page.on("response", on_response)
    return seen


def host_auth(page, token, refreshed=None):
    """The host site's token function, window.hostAuth.getToken: async, logs its calls; a refresh gets
    ``refreshed`` (or the same token again). ``hostAuth.current`` is what a plain call answers."""
    page.add_init_script(f"""
        window.hostAuth = {{calls: [], current: {json.dumps(token)},
            getToken(options) {{
                this.calls.push(options);
                const token = options && options.refresh ? ({json.dumps(refreshed)} || this.current) : this.current;
                return new Promise(resolve => setTimeout(() => resolve(token), 10));
            }}}};""")


def add_file(page, name, content):
    page.evaluate("""([name, content]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([content], name, {type: 'text/plain'}));
        document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                                                  cancelable: true}));
    }""", [name, content])


@pytest.fixture
def auth_stack(make_stack_with_auth):
    return make_stack_with_auth()


@pytest.fixture
def make_stack_with_auth(tmp_path):
    from devstack import LocalStack

    stacks = []

    def make(**env):
        stack = LocalStack(tmp_path / f"auth-stack{len(stacks)}", env=env, auth="jwt").start()
        stacks.append(stack)
        return stack

    yield make
    for s in stacks:
        s.stop()


# --- the page ---------------------------------------------------------------------------------------
def test_signed_in_test_user_uploads_into_their_own_folder(page, auth_stack):
    stack = auth_stack
    forms = form_requests(page, stack)
    open_page(page, stack)
    assert page.locator("#test-user-form").is_visible()  # config.json says: local stack
    assert page.locator("label[for=test-user]").text_content() == "Test user"
    sign_in_as(page, "alice")
    assert page.locator("#user-folder").text_content() == "Your uploads go to uploads/alice/."
    page.wait_for_function("document.getElementById('announcer').textContent.startsWith('Signed in as alice.')")
    add_file(page, "note.txt", "alice's note")
    wait_state(page, "note.txt", ["done"])
    li = item(page, "note.txt")
    assert li.locator(".status").text_content() == "Uploaded and recorded"
    [record] = stack.records()
    assert record["key"].startswith("uploads/alice/") and record["filename"] == "note.txt"
    assert record["user"] == "alice"
    assert stack.get_object(record["key"]) == b"alice's note"
    assert li.locator("dd[data-field=key]").text_content() == record["key"]
    assert li.locator("dd[data-field=user]").text_content() == "alice"
    # one form request, with alice's bearer token from the stack's token endpoint
    [(authorization, status)] = forms
    assert status == 200 and authorization.startswith("Bearer ey")

    # another test user lands in another folder
    sign_in_as(page, "bob")
    add_file(page, "bob.txt", "bob's")
    wait_state(page, "bob.txt", ["done"])
    keys = {r["user"]: r["key"] for r in stack.records()}
    assert keys["bob"].startswith("uploads/bob/") and keys["alice"].startswith("uploads/alice/")


def test_without_a_token_the_page_says_sign_in_to_upload(page, auth_stack):
    stack = auth_stack
    forms = form_requests(page, stack)
    open_page(page, stack)
    link = page.locator("#sign-in a")
    assert link.text_content() == "Sign in to upload"
    assert link.get_attribute("href") == stack.auth.sign_in_url
    add_file(page, "anon.txt", "no token")
    wait_state(page, "anon.txt", ["signin"])
    li = item(page, "anon.txt")
    assert li.locator(".status").text_content() == "Sign in to upload."
    assert not li.locator("button.retry").is_hidden()
    page.wait_for_function("document.getElementById('announcer').textContent === 'anon.txt: Sign in to upload.'")
    assert forms == [("", 401)]  # no Authorization header at all; the service said TokenMissing
    assert stack.records() == []
    # signing in finishes it: the file waited for it (issue 22), no Retry needed
    sign_in_as(page, "carol")
    wait_state(page, "anon.txt", ["done"])
    [record] = stack.records()
    assert record["key"].startswith("uploads/carol/") and record["user"] == "carol"


def test_a_token_the_service_refuses_is_sign_in_to_upload(page, auth_stack):
    """A token from another issuer (signed with another key): 401 InvalidTokenSignature, no refresh."""
    stack = auth_stack
    stack.put_page_config({"signatureUrl": stack.signature_url,
                           "auth": {"getToken": "hostAuth.getToken", "signInUrl": "/login?next=upload"}})
    host_auth(page, _foreign_token())
    forms = form_requests(page, stack)
    open_page(page, stack)
    add_file(page, "forged.txt", "forged")
    wait_state(page, "forged.txt", ["signin"])
    assert item(page, "forged.txt").locator(".status").text_content() == "Sign in to upload."
    assert [s for _, s in forms] == [401]
    assert page.evaluate("hostAuth.calls.filter(c => c.refresh).length") == 0
    assert page.locator("#sign-in a").get_attribute("href").endswith("/login?next=upload")
    assert stack.records() == []


def test_expired_token_is_refreshed_exactly_once_then_uploads(page, auth_stack):
    """auth.getToken names a host function: it first hands out an expired token, then a fresh one on refresh."""
    stack = auth_stack
    stack.put_page_config({"signatureUrl": stack.signature_url, "auth": {"getToken": "hostAuth.getToken"}})
    fresh, expired, refreshed = stack.token("alice"), stack.token("alice", expired=True), stack.token("alice")
    host_auth(page, fresh, refreshed)
    forms = form_requests(page, stack)
    open_page(page, stack)
    assert page.locator("#signed-in-as").text_content() == "Signed in as alice."
    assert page.locator("#test-user-form").is_hidden()  # not the local stack's token URL: no test user field
    page.evaluate("t => { hostAuth.current = t; hostAuth.calls = []; }", expired)
    add_file(page, "late.txt", "token ran out")
    wait_state(page, "late.txt", ["done"])
    calls = page.evaluate("hostAuth.calls")
    assert [bool(c and c.get("refresh")) for c in calls][:2] == [False, True]
    assert sum(bool(c and c.get("refresh")) for c in calls) == 1  # exactly one refresh
    assert forms == [(f"Bearer {expired}", 401), (f"Bearer {refreshed}", 200)]
    [record] = stack.records()
    assert record["filename"] == "late.txt" and record["key"].startswith("uploads/alice/")
    assert record["user"] == "alice"


def test_a_refresh_that_is_still_expired_is_not_retried_again(page, auth_stack):
    stack = auth_stack
    stack.put_page_config({"signatureUrl": stack.signature_url, "auth": {"getToken": "hostAuth.getToken"}})
    host_auth(page, stack.token("alice", expired=True))
    forms = form_requests(page, stack)
    open_page(page, stack)
    page.evaluate("hostAuth.calls = []")
    add_file(page, "stale.txt", "never")
    wait_state(page, "stale.txt", ["signin"])
    assert item(page, "stale.txt").locator(".status").text_content() == "Sign in to upload."
    assert page.evaluate("hostAuth.calls.filter(c => c && c.refresh).length") == 1
    assert [s for _, s in forms] == [401, 401]
    assert stack.records() == []


def test_token_url_provider_refreshes_an_expired_token_once_and_reuses_the_fresh_one(page, auth_stack):
    """The page's own provider (config.json auth.tokenUrl): the first token it gets has expired."""
    stack = auth_stack
    token_requests = []

    def token_route(route):
        token_requests.append(route.request.url)
        if len(token_requests) == 1:
            return route.continue_(url=route.request.url + "&expired=1")
        return route.continue_()

    page.route(stack.auth.token_url + "?*", token_route)
    forms = form_requests(page, stack)
    open_page(page, stack)
    assert token_requests == []  # no test user yet: no token asked for
    sign_in_as(page, "dave")  # /limits with the expired token: 401 TokenExpired, one refresh, then signed in
    assert len(token_requests) == 2
    for name in ("a.txt", "b.txt", "c.txt"):
        add_file(page, name, name)
    for name in ("a.txt", "b.txt", "c.txt"):
        wait_state(page, name, ["done"])
    assert len(token_requests) == 2  # the fresh token is reused until it nears its expiry
    assert [s for _, s in forms] == [200, 200, 200]
    assert {r["user"] for r in stack.records()} == {"dave"}


def test_remaining_allowance_and_a_used_up_allowance_are_shown(page, auth_stack):
    """The page's side of per-user limits, with the service's answers altered on the way (status, body,
    Retry-After) while the real service's CORS headers are kept."""
    stack = auth_stack
    resets = "2030-01-02T03:04:00Z"

    def limits_route(route):
        response = route.fetch()
        body = response.json()
        if "user" in body:
            body["remaining"] = {"forms": 3, "bytes": 10 * 1024 * 1024, "resets_at": resets}
        route.fulfill(response=response, body=json.dumps(body))

    def form_route(route):
        response = route.fetch()
        if "filename=over.txt" in route.request.url:
            return route.fulfill(response=response, status=429, headers={**response.headers, "retry-after": "120"},
                                 body=json.dumps({"code": "UserLimitExceeded", "message": "limit reached"}))
        route.fulfill(response=response)

    page.route(stack.signature_url + "limits", limits_route)
    page.route(stack.signature_url + "?*", form_route)
    open_page(page, stack)
    sign_in_as(page, "frank")
    remaining = page.locator("#remaining").text_content()
    assert remaining.startswith("Remaining: 3 uploads and 10.0 MiB (resets ") and "2030" in remaining
    add_file(page, "over.txt", "one too many")
    wait_state(page, "over.txt", ["failed"])
    assert item(page, "over.txt").locator(".status").text_content() == \
        "You have reached your upload allowance. Try again in 2 minutes."
    assert not item(page, "over.txt").locator("button.retry").is_hidden()
    assert page.locator("#signed-in-as").is_visible()  # a 429 is not a sign-out


def test_per_user_allowance_counts_down_then_refuses_with_retry_after(page, make_stack_with_auth, tmp_path):
    """End to end with the service's own per-user limits (OSSDIRECT_USER_LIMITS): one form per hour."""
    stack = make_stack_with_auth(OSSDIRECT_USER_LIMITS="forms=1,bytes=1048576,window=3600",
                                 OSSDIRECT_LIMITS_STORE=f"sqlite:///{tmp_path / 'limits.sqlite3'}")
    open_page(page, stack)
    sign_in_as(page, "gina")
    assert page.locator("#remaining").text_content().startswith("Remaining: 1 upload and 1.0 MiB (resets ")
    add_file(page, "first.txt", "fits")
    wait_state(page, "first.txt", ["done"])
    page.wait_for_function("document.getElementById('remaining').textContent.startsWith('Remaining: 0 uploads and ')")
    add_file(page, "second.txt", "over")
    wait_state(page, "second.txt", ["failed"])
    status = item(page, "second.txt").locator(".status").text_content()
    # the window is fixed (one hour): what is left of it depends on the clock
    assert re.fullmatch(r"You have reached your upload allowance\. Try again in \d+ (seconds|minutes?)\.", status), status
    assert [r["filename"] for r in stack.records()] == ["first.txt"]
    # another user has their own allowance
    sign_in_as(page, "hank")
    assert page.locator("#remaining").text_content().startswith("Remaining: 1 upload and ")


# --- the stack's token tooling (no browser) ------------------------------------------------------------
def _foreign_token():
    """A well-formed RS256 token from an issuer the stack does not trust (its own throwaway key)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from devstack.auth import mint_token

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return mint_token(key, "other-kid", "https://elsewhere.example/", "ossdirect-local", "mallory")[0]


def _get(url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_devstack_serves_jwks_and_test_tokens_and_configures_the_page(auth_stack):
    stack = auth_stack
    status, jwks = _get(stack.auth.jwks_url)
    assert status == 200 and [k["kty"] for k in jwks["keys"]] == ["RSA"] and "d" not in jwks["keys"][0]
    status, body = _get(stack.auth.token_url + "?user=alice")
    assert status == 200 and body["user"] == "alice" and body["token"].count(".") == 2
    assert _get(stack.auth.token_url)[0] == 400  # a user must be named
    with urllib.request.urlopen(stack.bucket_url + "/config.json", timeout=10) as response:
        config = json.loads(response.read())
    assert config == {"signatureUrl": stack.signature_url, "localStack": True, "developer": True,
                      "privateFiles": True,  # sign-in on: the bucket is private
                      "auth": {"tokenUrl": stack.auth.token_url, "signInUrl": stack.auth.sign_in_url}}
    limits = stack.signature_url + "limits"
    form = stack.signature_url + "?filename=a.txt&size=3&content_type=text/plain"
    assert _get(limits)[1]["auth"] == "jwt"
    assert _get(form)[0:2] == (401, {"code": "TokenMissing", "message": _get(form)[1]["message"]})
    assert _get(form, stack.token("alice", expired=True))[1]["code"] == "TokenExpired"
    status, signed = _get(form, body["token"])
    assert status == 200 and signed["key"].startswith("uploads/alice/") and signed["user"] == "alice"
    status, mine = _get(limits, body["token"])
    assert (mine["user"], mine["folder"]) == ("alice", "uploads/alice/")


def test_devstack_token_command_prints_a_token_the_running_stack_accepts(auth_stack):
    stack = auth_stack
    run = [sys.executable, "-m", "devstack", "token", "erin", "--data-dir", str(stack.data_dir)]
    env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    out = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    form = stack.signature_url + "?filename=a.txt&size=3&content_type=text/plain"
    status, signed = _get(form, token)
    assert status == 200 and signed["key"].startswith("uploads/erin/")
    out = subprocess.run(run + ["--expired"], cwd=ROOT, capture_output=True, text=True, timeout=30, env=env)
    assert _get(form, out.stdout.strip())[1]["code"] == "TokenExpired"
    missing = subprocess.run([sys.executable, "-m", "devstack", "token", "erin", "--data-dir",
                              str(stack.data_dir / "nowhere")], cwd=ROOT, capture_output=True, text=True,
                             timeout=30, env=env)
    assert missing.returncode == 1 and '--auth jwt' in missing.stderr


def test_make_stack_with_auth_prints_the_test_user_hint_and_logs_token_requests(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1", ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    proc = subprocess.Popen([sys.executable, "-m", "devstack", "--auth", "jwt", "--emulator-port", "0",
                             "--signature-port", "0", "--callback-port", "0", "--token-port", "0",
                             "--data-dir", str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not lines or lines[-1] != "Open the upload page in a browser. Ctrl-C stops everything.":
            line = proc.stdout.readline()
            assert line, f"devstack exited: {lines}"
            lines.append(line.rstrip("\n"))
        assert lines[0] == "" and lines[1] == "ossdirect local stack is running", lines  # nothing before it
        banner = "\n".join(lines)
        assert "type any name (e.g. alice) in the page's Test user field; uploads go to uploads/<name>/" in banner
        assert f"python -m devstack token alice --data-dir {tmp_path}" in banner
        issuer = next(line.split()[2] for line in lines if line.startswith("  token issuer:"))
        status, body = _get(issuer + "/token?user=alice")
        assert status == 200 and body["user"] == "alice"
        assert proc.stdout.readline() == "\n"  # the banner's closing blank line
        assert proc.stdout.readline().rstrip("\n") == "auth GET /token 200"  # one line per request, no token in it
    finally:
        proc.terminate()
        proc.wait(timeout=15)
