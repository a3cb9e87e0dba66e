"""What each function's first request loads (issue 23: remove from the cold path what it does not need).

A fresh interpreter builds the App as FC's index.py does, answers one request, and lists its modules. The
heavy or unneeded ones must be absent: cryptography and PyJWT for the callback and an RS256 sign-in (they
are checked in the standard library, ossdirect.rsa), logging when nothing configured it, datetime and
random, and the sign-in module for an anonymous signature function. Timings live in bench/, not here."""

import json
import os
import subprocess
import sys
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fixtures import settings

SIG = settings(BUCKET="cold-bucket", REGION="cn-hangzhou", CALLBACK_URL="https://cb.example/oss-callback",
               ALLOWED_ORIGINS="https://app.example")
CTX = ("types.SimpleNamespace(credentials=types.SimpleNamespace(access_key_id='a', access_key_secret='b', "
       "security_token='c'))")
HEAVY = ("cryptography", "jwt", "cffi", "logging", "datetime", "random", "requests", "urllib3")


def first_request(app, env, event):
    code = (f"import sys, types; from ossdirect.app.handlers import {app}; import os; "
            f"r = {app}(dict(os.environ))(sys.argv[1].encode(), {CTX}); "
            "print(r['statusCode']); print(' '.join(sorted(m for m in sys.modules)))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OSSDIRECT_")}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(event)], capture_output=True, text=True, check=True,
                         env=dict(clean, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", **env)).stdout.splitlines()
    return out[0], set(out[1].split())


def loaded(modules, names):
    return sorted(m for m in modules if m.split(".")[0] in names or m in names)


FORM = {"rawPath": "/", "queryParameters": {"filename": "a.jpg", "size": "10", "content_type": "image/jpeg"},
        "requestContext": {"http": {"method": "GET"}}}


def test_an_anonymous_form_loads_nothing_heavy_and_no_sign_in_code():
    status, modules = first_request("SignatureApp", SIG, FORM)
    assert status == "200"
    assert loaded(modules, HEAVY) == []
    assert "ossdirect.core.auth" not in modules and "ossdirect.core.jwt_check" not in modules
    assert "ossdirect.core.forms" in modules  # the check sees what was loaded


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_an_rs256_sign_in_loads_no_cryptography_or_pyjwt(key):
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    env = dict(SIG, **settings(AUTH="jwt", JWT_PUBLIC_KEY=pem, JWT_ISSUER="https://id.example/", JWT_AUDIENCE="app"))
    token = jwt.encode({"sub": "u", "iss": "https://id.example/", "aud": "app", "exp": int(time.time()) + 60}, key,
                       algorithm="RS256")
    status, modules = first_request("SignatureApp", env, dict(FORM, headers={"authorization": f"Bearer {token}"}))
    assert status == "200"
    assert loaded(modules, HEAVY) == []
    assert "ossdirect.core.jwt_check" in modules and "ossdirect.rsa" in modules


def test_the_callback_verifies_heads_and_records_without_cryptography(tmp_path):
    """A signed callback (RSA-MD5, the key served by a loopback stand-in for OSS that also answers
    HeadObject): 200 and recorded, and nothing heavy loaded on the way."""
    from bench.callback import oss_stub, signed_events
    from bench.process import _env

    with oss_stub() as (base, oss_key):
        env = {k: v for k, v in _env(base, f"sqlite:///{tmp_path}/r.sqlite3").items()}
        status, modules = first_request("CallbackApp", env, json.loads(signed_events(oss_key, base, "cold", 1)[0]))
    assert status == "200"
    # HeadObject goes through ossdirect.http1: neither http.client nor the email package it parses headers
    # with (random and friends come with that) are loaded; datetime only with sqlite3 (its adapters), which
    # the cloud's Tablestore records do not use
    assert loaded(modules, HEAVY) == ["datetime"] and "sqlite3" in modules
    assert "ossdirect.rsa" in modules and "ossdirect.store.sqlite" in modules and "ossdirect.http1" in modules
    assert [m for m in ("http.client", "email.parser", "email.utils") if m in modules] == []


def test_record_stamps_are_what_datetime_writes():
    """utc_stamp (records' created_at, updated_at) spares the cold start datetime: the same text, rounding
    included, for any instant."""
    import random
    from datetime import datetime, timezone

    from ossdirect.store import utc_stamp

    instants = [0.0, 1.0000005, 1.9999999, 2.9999995, 1700000000.5, 1700000000.000001]
    instants += [random.uniform(0, 4e9) for _ in range(20000)]
    assert [utc_stamp(t) for t in instants] == \
        [datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in instants]
