"""The verified-token cache of the sign-in check: a token seen before under the same keys skips the
signature (RS256 in the standard library costs ~0.2 ms), never its expiry, never a key rotation."""

import time

from test_auth import ISS, AUD, JwksServer, bearer, env, fails, jwk_of, token  # noqa: F401 (fixtures below)
from test_auth import rsa_key, rsa_key2  # noqa: F401  (pytest fixtures)

from ossdirect.core import jwt_check
from ossdirect.core.auth import Authenticator, load_auth_settings


def pem_auth(rsa_key, **values):
    from test_auth import _pem

    return Authenticator(load_auth_settings(env(JWT_PUBLIC_KEY=_pem(rsa_key.public_key()), **values)))


def test_a_repeated_token_is_answered_from_the_cache_with_its_claims(rsa_key):
    auth = pem_auth(rsa_key)
    tok = token(rsa_key, "RS256")
    first = auth.authenticate(bearer(tok))
    assert len(auth._verified) == 1
    again = auth.authenticate(bearer(tok))
    assert again == first and again is not first  # a copy: a hook changing its claims changes no cache
    again["sub"] = "someone-else"
    assert auth.authenticate(bearer(tok))["sub"] == "user-123"


def test_a_cached_token_still_expires(rsa_key):
    auth = pem_auth(rsa_key, JWT_LEEWAY_SECONDS="0")
    exp = int(time.time()) + 1
    tok = token(rsa_key, "RS256", exp=exp)
    assert auth.authenticate(bearer(tok)) and len(auth._verified) == 1
    time.sleep(max(0.0, exp - time.time()) + 0.05)  # past exp
    fails(auth, bearer(tok), "TokenExpired")


def test_one_changed_character_is_never_a_hit(rsa_key):
    auth = pem_auth(rsa_key)
    tok = token(rsa_key, "RS256")
    auth.authenticate(bearer(tok))
    h, p, s = tok.split(".")
    tampered = f"{h}.{p}.{s[:-2]}{'A' if s[-2] != 'A' else 'B'}{s[-1]}"
    fails(auth, bearer(tampered), "InvalidTokenSignature")


def test_a_key_removed_from_the_jwks_stops_its_cached_tokens_at_the_refetch(rsa_key, rsa_key2):
    server = JwksServer([jwk_of(rsa_key, "k1", "RS256")])
    try:
        settings = load_auth_settings(env(JWT_JWKS_URL=server.url))
        settings.jwks_min_refresh_seconds = 0.0
        settings.jwks_max_age_seconds = 0.2
        auth = Authenticator(settings)
        tok = token(rsa_key, "RS256", kid="k1")
        assert auth.authenticate(bearer(tok))
        assert auth.authenticate(bearer(tok)) and server.fetches == 1  # the cache, no fetch
        server.keys = [jwk_of(rsa_key2, "k2", "RS256")]  # the issuer rotated k1 out
        time.sleep(0.3)
        fails(auth, bearer(tok), "UnknownSigningKey")
        assert server.fetches == 3  # the due refetch, then one more for the unknown kid
    finally:
        server.close()


def test_the_cache_is_bounded(rsa_key):
    auth = pem_auth(rsa_key)
    for i in range(jwt_check.VERIFIED_CACHE_SIZE + 20):
        auth.authenticate(bearer(token(rsa_key, "RS256", sub=f"user-{i}")))
    assert len(auth._verified) == jwt_check.VERIFIED_CACHE_SIZE
