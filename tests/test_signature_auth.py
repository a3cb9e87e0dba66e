"""Sign-in before signing, per-user folders and the authorizer hook, through the real signature
handler with FC3 events; tokens made here, keys served by a real JWKS server on loopback."""

import base64
import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fixtures import base_env, jwt_env, sqlite_url
from support import StaticServer, fc_event

from devstack import LocalStack
from ossdirect.app.handlers import SignatureApp

ISSUER, AUDIENCE = "https://id.example.com/", "ossdirect-test"
SECRET = "test-secret-not-real"
CONTEXT = type("Ctx", (), {"credentials": type("C", (), {"access_key_id": "STS.k", "access_key_secret": SECRET,
                                                           "security_token": "tok"})()})()


@pytest.fixture(scope="module")
def keys():
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2")}


def jwk(kid, key):
    numbers = key.public_key().public_numbers()

    def b64(n):
        return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(numbers.n), "e": b64(numbers.e)}


@pytest.fixture
def jwks(keys):
    server = StaticServer({"/jwks.json": json.dumps({"keys": [jwk("k1", keys["k1"])]}).encode()})
    yield server
    server.close()


def env(jwks, **extra):
    base = dict(base_env(), **jwt_env(jwks, ISSUER, AUDIENCE, PREFIX="uploads/{sub}/",
                                      ALLOWED_ORIGINS="https://app.example.com"))
    base.update(extra)
    return base


def token(keys, sub="alice", kid="k1", alg="RS256", key=None, **claims):
    body = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "iat": int(time.time())}
    body.update(claims)
    return jwt.encode(body, key if key is not None else keys[kid], algorithm=alg, headers={"kid": kid})


def call(app, tok=None, path="/", query=None, method="GET", headers=None):
    hdrs = dict(headers or {})
    if tok is not None:
        hdrs["Authorization"] = f"Bearer {tok}"
    r = app(fc_event(method, path, query or {"filename": "a.png", "size": "10", "content_type": "image/png"},
                     hdrs), CONTEXT)
    return r["statusCode"], r["headers"], json.loads(r["body"]) if r["body"] else None


def conditions(form):
    return json.loads(base64.b64decode(form["policy"]))["conditions"]


def test_signed_in_user_gets_a_form_for_their_own_folder_only(jwks, keys):
    app = SignatureApp(env(jwks))
    status, _, form = call(app, token(keys, "alice"))
    assert status == 200 and form["user"] == "alice"
    assert form["key"].startswith("uploads/alice/") and form["dir"] == "uploads/alice/"
    conds = conditions(form)
    assert ["eq", "$key", form["key"]] in conds
    assert ["eq", "$x-oss-meta-user", "alice"] in conds and ["eq", "$x:user", "alice"] in conds
    # a folder parameter stays inside the user's folder
    app = SignatureApp(env(jwks, OSSDIRECT_ALLOW_FOLDERS="true"))
    status, _, form = call(app, token(keys, "alice"), query={"filename": "a.png", "content_type": "image/png",
                                                              "folder": "../bob"})
    assert status == 400 or form["key"].startswith("uploads/alice/")


@pytest.mark.parametrize("sub", ["../bob", "bob/../../x", "/", "..", "a/b", "\u202ebob", "ü" * 300, "x" * 5000, "."])
def test_hostile_subs_stay_one_segment_inside_the_prefix(jwks, keys, sub):
    status, _, form = call(SignatureApp(env(jwks)), token(keys, sub))
    assert status == 200
    rest = form["key"][len("uploads/"):]
    segment, _, name = rest.partition("/")
    assert "/" not in name and segment not in ("", ".", "..") and ".." not in segment
    assert len(segment.encode()) <= 64 and form["dir"] == f"uploads/{segment}/"


@pytest.mark.parametrize("make,code", [
    (lambda k: None, "TokenMissing"),
    (lambda k: token(k, exp=int(time.time()) - 3600), "TokenExpired"),
    (lambda k: token(k, aud="someone-else"), "InvalidAudience"),
    (lambda k: token(k, iss="https://evil.example/"), "InvalidIssuer"),
    (lambda k: token(k)[:-4] + "AAAA", "InvalidTokenSignature"),
    (lambda k: jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, None,
                          algorithm="none"), None),
    (lambda k: "not.a.token", "TokenMalformed"),
])
def test_bad_tokens_get_401_with_www_authenticate_and_no_form(jwks, keys, make, code):
    status, headers, body = call(SignatureApp(env(jwks)), make(keys))
    assert status == 401 and "policy" not in body
    assert headers["WWW-Authenticate"].startswith("Bearer")
    if code:
        assert body["code"] == code
    assert "test-secret" not in json.dumps(body)


def test_hs_rs_confusion_is_refused(jwks, keys):
    pem = keys["k1"].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac

    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "x", "iss": ISSUER, "aud": AUDIENCE,
                                                   "exp": int(time.time()) + 60}).encode()).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(pem, header + b"." + payload, hashlib.sha256).digest()).rstrip(b"=")
    status, _, body = call(SignatureApp(env(jwks)), (header + b"." + payload + b"." + sig).decode())
    assert status == 401 and "policy" not in body


def test_unknown_kid_refreshes_the_jwks_once_then_401(jwks, keys):
    app = SignatureApp(env(jwks))
    assert call(app, token(keys, kid="k1"))[0] == 200
    fetched = len(jwks.hits)
    status, _, body = call(app, token(keys, kid="k2"))
    assert status == 401 and body["code"] == "UnknownSigningKey"
    assert len(jwks.hits) - fetched <= 1
    for _ in range(5):
        call(app, token(keys, kid="k2"))
    assert len(jwks.hits) - fetched <= 1  # never a fetch per request


def test_jwks_down_is_503_and_never_a_form(keys):
    down = StaticServer({})
    down.close()
    app = SignatureApp(dict(base_env(), **jwt_env(down, ISSUER, AUDIENCE)))  # down's URL, now closed
    status, _, body = call(app, token(keys))
    assert status == 503 and body["code"] == "AuthKeysUnavailable" and "policy" not in body


def test_preflight_allows_authorization_without_a_token(jwks):
    r = SignatureApp(env(jwks))(fc_event("OPTIONS", "/", headers={"Origin": "https://app.example.com",
                                                                  "Access-Control-Request-Headers": "authorization"}))
    assert r["statusCode"] == 204
    assert "Authorization" in r["headers"]["Access-Control-Allow-Headers"]
    assert "WWW-Authenticate" in r["headers"]["Access-Control-Expose-Headers"]


def test_limits_are_public_and_per_user_with_a_token(jwks, keys):
    app = SignatureApp(env(jwks))
    status, _, anon = call(app, path="/limits")
    assert status == 200 and anon["auth"] == "jwt" and "folder" not in anon
    status, _, mine = call(app, token(keys, "alice"), path="/limits")
    assert status == 200 and mine["user"] == "alice" and mine["folder"] == "uploads/alice/"
    assert call(app, "garbage", path="/limits")[0] == 401


def test_hook_denies(jwks, keys):
    app = SignatureApp(env(jwks, OSSDIRECT_AUTHORIZER="authorizers:deny_bob"))
    assert call(app, token(keys, "alice"))[0] == 200
    status, _, body = call(app, token(keys, "bob"))
    assert (status, body["code"], body["message"]) == (403, "UploadDenied", "bob may not upload")


def test_hook_narrows_and_pins_its_payload(jwks, keys):
    app = SignatureApp(env(jwks, OSSDIRECT_AUTHORIZER="authorizers:narrow", OSSDIRECT_KEY_NAMING="random,original"))
    status, _, form = call(app, token(keys, "alice", plan="pro"))
    assert status == 200 and form["key"].startswith("uploads/alice/avatars/")
    assert form["payload"] == {"plan": "pro", "team": "blue"}
    conds = conditions(form)
    assert ["eq", "$x:payload", '{"plan":"pro","team":"blue"}'] in conds
    assert any(c[:2] == ["eq", "$x-oss-meta-payload"] for c in conds if isinstance(c, list))
    assert call(app, token(keys), query={"filename": "a.png", "size": "1001", "content_type": "image/png"})[2]["code"] \
        == "EntityTooLarge"
    assert call(app, token(keys), query={"filename": "a.jpg", "content_type": "image/jpeg"})[0] == 415
    assert call(app, token(keys), query={"filename": "a.png", "content_type": "image/png", "naming": "original"})[0] \
        == 400
    status, _, limits = call(app, token(keys, "alice"), path="/limits")
    assert limits["max_bytes"] == 1000 and limits["folder"] == "uploads/alice/avatars/"


@pytest.mark.parametrize("hook", ["widen_size", "widen_prefix", "widen_types", "explode"])
def test_hook_cannot_widen_and_its_failure_is_never_a_form(jwks, keys, hook, caplog):
    app = SignatureApp(env(jwks, OSSDIRECT_AUTHORIZER=f"authorizers:{hook}"))
    status, _, body = call(app, token(keys))
    assert (status, body["code"]) == (500, "AuthorizerFailed") and "policy" not in body
    assert "authorizers:" + hook in caplog.text


def test_prefix_with_sub_needs_auth():
    app = SignatureApp(base_env(PREFIX="uploads/{sub}/"))
    status, _, body = call(app)
    assert status == 503 and "OSSDIRECT_AUTH" in body["message"]


def test_two_users_cannot_use_each_others_forms_end_to_end(tmp_path, jwks, keys):
    """Through the local stack: alice's form cannot put bytes under bob's key, and the record and the
    callback answer carry alice's sub and the hook's payload."""
    with LocalStack(tmp_path, env={"OSSDIRECT_AUTH": "jwt", "OSSDIRECT_JWT_JWKS_URL": f"{jwks.url}/jwks.json",
                                   "OSSDIRECT_JWT_ISSUER": ISSUER, "OSSDIRECT_JWT_AUDIENCE": AUDIENCE,
                                   "OSSDIRECT_PREFIX": "uploads/{sub}/",
                                   "OSSDIRECT_AUTHORIZER": "authorizers:narrow"}) as s:
        def form_for(sub):
            r = requests.get(s.signature_url, params={"filename": "me.png", "size": 5, "content_type": "image/png"},
                             headers={"Authorization": f"Bearer {token(keys, sub)}", "Origin": s.page_origin},
                             timeout=10)
            assert r.status_code == 200, r.text
            return r.json()

        alice, bob = form_for("alice"), form_for("bob")
        hijack = [[n, bob["key"] if n == "key" else v] for n, v in alice["field_list"]]
        r = requests.post(alice["host"], data=hijack, files={"file": ("me.png", b"\x89PNG!", "image/png")}, timeout=10)
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
        forged_user = [[n, "bob" if n in ("x:user", "x-oss-meta-user") else v] for n, v in alice["field_list"]]
        r = requests.post(alice["host"], data=forged_user, files={"file": ("me.png", b"\x89PNG!", "image/png")},
                          timeout=10)
        assert r.status_code == 403
        r = requests.post(alice["host"], data=alice["field_list"], files={"file": ("me.png", b"\x89PNG!", "image/png")},
                          timeout=10)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["user"] == "alice" and answer["payload"] == {"plan": "free", "team": "blue"}
        assert answer["key"].startswith("uploads/alice/avatars/")
        [rec] = [x for x in s.records() if x["upload_id"] == alice["upload_id"]]
        assert rec["user"] == "alice" and json.loads(rec["payload"]) == {"plan": "free", "team": "blue"}
        assert not any(x["key"] == bob["key"] for x in s.records())


def test_per_user_limits_429_with_retry_after_and_remaining_in_limits(jwks, keys, tmp_path):
    app = SignatureApp(env(jwks, OSSDIRECT_USER_LIMITS="forms=3,bytes=25,window=3600",
                           OSSDIRECT_LIMITS_STORE=f"sqlite:///{tmp_path / 'limits.sqlite3'}"))
    alice, bob = token(keys, "alice"), token(keys, "bob")
    assert [call(app, alice)[0] for _ in range(2)] == [200, 200]  # 10 declared bytes each
    status, headers, body = call(app, alice)  # 30 > 25 bytes
    assert (status, body["code"]) == (429, "UserLimitExceeded") and int(headers["Retry-After"]) >= 1
    status, _, limits = call(app, alice, path="/limits")
    assert limits["remaining"]["forms"] == 1 and limits["remaining"]["bytes"] == 5
    assert call(app, alice, query={"filename": "a.png", "size": "5", "content_type": "image/png"})[0] == 200
    assert call(app, alice, query={"filename": "a.png", "size": "1", "content_type": "image/png"})[0] == 429
    assert call(app, bob)[0] == 200  # each user has their own allowance
    # a refused request (bad type) spends nothing
    assert call(app, bob, query={"filename": "a.exe", "size": "1", "content_type": "text/html"})[0] == 415
    assert call(app, bob, path="/limits")[2]["remaining"]["forms"] == 2


def test_anonymous_limits_count_by_client_ip(tmp_path):
    app = SignatureApp(base_env(USER_LIMITS="forms=2", LIMITS_STORE=sqlite_url(tmp_path / "l.db")))
    assert [call(app)[0] for _ in range(3)] == [200, 200, 429]


def test_bad_limits_setting_is_503_naming_it():
    app = SignatureApp(base_env(USER_LIMITS="forms=lots"))
    status, _, body = call(app)
    assert status == 503 and "OSSDIRECT_USER_LIMITS" in body["message"]
