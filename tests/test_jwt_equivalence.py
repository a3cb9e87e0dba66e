"""The stdlib JWT check (ossdirect.core.jwt_check) gives PyJWT's answer on every token here.

The oracle is the check as it was built on ``jwt.decode`` (PyJWT 2.x with cryptography), kept below
verbatim in meaning: the same header pre-checks, the same options, the same exception-to-code mapping.
Every token, valid or broken in one way (each registered claim, types, the header, the signature, the
encoding), goes through both, for HS256/384/512 with a secret and RS256/384/512 with a PEM key and with
a JWKS; the codes must be equal, and a good token's claims too."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from fixtures import jwt_env

from ossdirect.core import jwt_check
from ossdirect.core.auth import REQUIRED_CLAIMS, AuthError, Authenticator, load_auth_settings

ISS, AUD = "https://issuer.example.com/", "ossdirect-api"
SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEFGHIJ"


def pyjwt_check(token, key, settings):
    """The former Authenticator.authenticate after the bearer parsing, on PyJWT."""
    errors = jwt.exceptions
    segment = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError, RecursionError):
        header = None
    if not isinstance(header, dict):
        return "TokenMalformed"
    alg = header.get("alg")
    if type(alg) is not str or alg not in settings.algorithms:
        return "AlgorithmNotAllowed"
    kid = header.get("kid")
    if kid is not None and type(kid) is not str:
        return "TokenMalformed"
    options = {"require": list(REQUIRED_CLAIMS), "verify_signature": True, "verify_exp": True, "verify_nbf": True,
               "verify_iat": True, "verify_aud": True, "verify_iss": True}
    try:
        claims = jwt.decode(token, key=key, algorithms=[alg], audience=settings.audience, issuer=settings.issuer,
                            leeway=settings.leeway, options=options)
    except errors.ExpiredSignatureError:
        return "TokenExpired"
    except errors.ImmatureSignatureError:
        return "TokenNotYetValid"
    except errors.InvalidAudienceError:
        return "InvalidAudience"
    except errors.InvalidIssuerError:
        return "InvalidIssuer"
    except errors.MissingRequiredClaimError:
        return "MissingClaim"
    except errors.InvalidSubjectError:
        return "MissingClaim"
    except errors.InvalidAlgorithmError:
        return "AlgorithmNotAllowed"
    except (errors.InvalidSignatureError, errors.InvalidKeyError):
        return "InvalidTokenSignature"
    except (errors.InvalidTokenError, ValueError, TypeError, OverflowError):
        return "TokenMalformed"
    sub = claims.get("sub")
    if type(sub) is not str or not sub:
        return "MissingClaim"
    if not jwt_check._scalar_strings(claims):
        return "TokenMalformed"
    return claims


def ours(authenticator, token):
    try:
        return authenticator.authenticate({"authorization": f"Bearer {token}"})
    except AuthError as exc:
        return exc.code


def b64(data):
    if not isinstance(data, bytes):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claim_sets():
    now = int(time.time())
    good = {"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now, "exp": now + 300}
    yield "good", good
    for name in ("iss", "aud", "sub", "exp"):
        yield f"no {name}", {k: v for k, v in good.items() if k != name}
        yield f"{name} null", dict(good, **{name: None})
    for value in (now - 100, now - 31, now - 29, now + 10**6, str(now + 300), "soon", float(now + 300), True,
                  [now + 300], 1e400, -1, 2 ** 70):
        yield f"exp={value!r}", dict(good, exp=value)
    for name in ("nbf", "iat"):
        for value in (now + 20, now + 40, now + 10**6, "later", str(now + 100), None, [], 1e400):
            yield f"{name}={value!r}", dict(good, **{name: value})
    for value in ("https://evil.example/", ISS.rstrip("/"), 7, [ISS], "", ISS.upper()):
        yield f"iss={value!r}", dict(good, iss=value)
    for value in ("other", [AUD], ["other", AUD], ["other"], [], "", [AUD, 7], 7, {"a": AUD}, [[AUD]]):
        yield f"aud={value!r}", dict(good, aud=value)
    for value in ("", 0, 42, ["u"], {"a": 1}, False, "u\ud800"):
        yield f"sub={value!r}", dict(good, sub=value)
    for value in ("j-1", 5, None, ["j"]):
        yield f"jti={value!r}", dict(good, jti=value)
    yield "surrogate in another claim", dict(good, name="x\udc00y")
    yield "surrogate in a key", dict(good, **{"k\ud800": 1})


def headers_for(alg):
    yield "plain", {"alg": alg, "typ": "JWT"}
    yield "kid", {"alg": alg, "kid": "k1"}
    yield "kid int", {"alg": alg, "kid": 3}
    yield "crit", {"alg": alg, "crit": ["exp"], "exp": 1}
    yield "crit b64", {"alg": alg, "crit": ["b64"], "b64": True}
    yield "b64 false", {"alg": alg, "b64": False, "crit": ["b64"]}
    yield "no alg", {"typ": "JWT"}
    yield "alg none", {"alg": "none"}
    yield "alg lowercase", {"alg": alg.lower()}
    yield "alg other family", {"alg": "HS256" if alg.startswith("RS") else "RS256"}


def signed(header, payload, sign):
    h = b64(header) if not isinstance(header, str) else header
    p = b64(payload) if not isinstance(payload, str) else payload
    return f"{h}.{p}.{b64(sign((h + '.' + p).encode()))}"


def variants(sign, alg):
    """(name, token) for every claim set and header, and the encoding and signature breakages."""
    for name, payload in claim_sets():
        yield f"claims {name}", signed({"alg": alg, "typ": "JWT"}, _json_safe(payload), sign)
    good = dict(next(claim_sets())[1])
    for name, header in headers_for(alg):
        yield f"header {name}", signed(header, good, sign)
    token = signed({"alg": alg}, good, sign)
    h, p, s = token.split(".")
    yield "signature empty", f"{h}.{p}."
    yield "signature of another token", f"{h}.{b64(dict(good, sub='admin'))}.{s}"
    flipped = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    flipped[len(flipped) // 2] ^= 1
    yield "signature flipped", f"{h}.{p}.{b64(bytes(flipped))}"
    yield "signature truncated", f"{h}.{p}.{s[:-4]}"
    # non-canonical base64url: the last character carries unused bits
    last = {"A": "B", "Q": "R", "g": "h", "w": "x"}
    for part in ("h", "p", "s"):
        seg = {"h": h, "p": p, "s": s}[part]
        if len(seg) % 4 in (2, 3) and seg[-1] in last:
            bent = seg[:-1] + last[seg[-1]]
            yield f"non-canonical {part}", ".".join(bent if x == part else {"h": h, "p": p, "s": s}[x] for x in "hps")
    yield "one char too many", f"{h}.{p}.{s}A" if len(s) % 4 == 0 else f"{h}.{p}.{s}"
    yield "payload not an object", signed({"alg": alg}, b64(b"[1,2]"), sign)
    yield "payload not json", signed({"alg": alg}, b64(b"{nope"), sign)
    yield "payload a huge number", signed({"alg": alg}, b64(b'{"exp": 1' + b"0" * 5000 + b"}"), sign)
    yield "header not json", signed(b64(b"{nope"), good, sign)
    yield "header a list", signed(b64(b'["alg"]'), good, sign)


def _json_safe(payload):
    # lone surrogates cannot be UTF-8 encoded by json.dumps(ensure_ascii=False); the default escapes them
    return b64(json.dumps(payload).encode())


def hs_signer(alg):
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return lambda data: hmac.new(SECRET.encode(), data, digest).digest()


def rs_signer(private, alg):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    digest = {"RS256": hashes.SHA256, "RS384": hashes.SHA384, "RS512": hashes.SHA512}[alg]
    return lambda data: private.sign(data, padding.PKCS1v15(), digest())


@pytest.fixture(scope="module")
def rsa_private():
    return crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)


def compare(authenticator, key, sign, alg):
    settings = authenticator.settings
    checked, codes = 0, set()
    for name, token in variants(sign, alg):
        expected = pyjwt_check(token, key, settings)
        got = ours(authenticator, token)
        assert got == expected, name
        checked += 1
        codes.add(got if isinstance(got, str) else "OK")
    return checked, codes


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_get_pyjwts_answers(alg):
    auth = Authenticator(load_auth_settings(jwt_env(None, ISS, AUD, JWT_SECRET=SECRET,
                                                    JWT_ALGORITHMS="HS256,HS384,HS512")))
    checked, codes = compare(auth, SECRET.encode(), hs_signer(alg), alg)
    assert checked > 80
    assert codes == {"OK", "TokenMalformed", "MissingClaim", "TokenExpired", "TokenNotYetValid", "InvalidIssuer",
                     "InvalidAudience", "InvalidTokenSignature", "AlgorithmNotAllowed"}


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_rsa_tokens_with_a_pem_key_get_pyjwts_answers(rsa_private, alg):
    pem = rsa_private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    auth = Authenticator(load_auth_settings(jwt_env(None, ISS, AUD, JWT_PUBLIC_KEY=pem,
                                                    JWT_ALGORITHMS="RS256,RS384,RS512")))
    checked, codes = compare(auth, rsa_private.public_key(), rs_signer(rsa_private, alg), alg)
    assert checked > 80 and "OK" in codes and "InvalidTokenSignature" in codes


def test_a_hand_signed_rs256_token_and_pyjwts_own_agree(rsa_private):
    """PyJWT's encoder (not ours) signs; the stdlib check accepts it, and refuses it with another key."""
    pem = rsa_private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    auth = Authenticator(load_auth_settings(jwt_env(None, ISS, AUD, JWT_PUBLIC_KEY=pem)))
    now = int(time.time())
    token = jwt.encode({"iss": ISS, "aud": AUD, "sub": "u", "exp": now + 60}, rsa_private, algorithm="RS256")
    assert ours(auth, token)["sub"] == "u"
    other = crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"iss": ISS, "aud": AUD, "sub": "u", "exp": now + 60}, other, algorithm="RS256")
    assert ours(auth, forged) == "InvalidTokenSignature"


def test_rs256_needs_no_cryptography_or_pyjwt(rsa_private, tmp_path):
    """The point of it: a signed-in cold start with an RSA PEM key imports neither."""
    import subprocess
    import sys

    pem = rsa_private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    token = jwt.encode({"iss": ISS, "aud": AUD, "sub": "u", "exp": int(time.time()) + 60}, rsa_private,
                       algorithm="RS256")
    code = ("import json, sys; from ossdirect.core.auth import Authenticator, load_auth_settings; "
            "env = json.loads(sys.argv[1]); a = Authenticator(load_auth_settings(env)); "
            "print(a.authenticate({'authorization': 'Bearer ' + sys.argv[2]})['sub']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jwt', 'cryptography', 'cffi')))")
    env = jwt_env(None, ISS, AUD, JWT_PUBLIC_KEY=pem)
    out = subprocess.run([sys.executable, "-c", code, json.dumps(env), token], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["u", "[]"]
