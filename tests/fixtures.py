"""The OSSDIRECT_ environments the tests hand the functions, built in one place.

Each builder returns a fresh dict (callers may update it). Keywords name settings without the
OSSDIRECT_ prefix: ``base_env(PREFIX="uploads/")`` is ``{..., "OSSDIRECT_PREFIX": "uploads/"}``;
a keyword set to None leaves that setting out (removing a builder's own default).
"""

from __future__ import annotations

import os
from typing import Protocol

BUCKET = "photo-bucket"
REGION = "cn-hangzhou"


class _Served(Protocol):  # support.StaticServer, a JWKS server, an emulator: anything with a base url
    url: str


class _Bucket(Protocol):  # support.EmulatedBucket
    bucket: str
    bucket_url: str


def settings(**values: str | None) -> dict[str, str]:
    """OSSDIRECT_<NAME> for each keyword; a None value leaves the setting out."""
    return {f"OSSDIRECT_{name}": value for name, value in values.items() if value is not None}


def with_settings(env: dict[str, str], **values: str | None) -> dict[str, str]:
    """env with each keyword set as OSSDIRECT_<NAME> (None: removed), as a new dict."""
    out = dict(env)
    for name, value in values.items():
        if value is None:
            out.pop(f"OSSDIRECT_{name}", None)
        else:
            out[f"OSSDIRECT_{name}"] = value
    return out


def base_env(bucket: str = BUCKET, region: str = REGION, **values: str | None) -> dict[str, str]:
    """The two settings every function needs (bucket and region), plus the keywords."""
    return with_settings({"OSSDIRECT_BUCKET": bucket, "OSSDIRECT_REGION": region}, **values)


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """An OSSDIRECT_RECORDS / OSSDIRECT_LIMITS_STORE value for an SQLite file."""
    return f"sqlite:///{path}"


def trusted_keys(server: _Served) -> str:
    """The OSSDIRECT_TRUSTED_KEY_PREFIXES value that trusts a loopback key server's callback key."""
    return f"{server.url}/_emulator/"


def jwks_url(server: _Served) -> str:
    """The OSSDIRECT_JWT_JWKS_URL value for a loopback JWKS server."""
    return f"{server.url}/jwks.json"


def emulated_env(bucket: _Bucket, records: str | os.PathLike[str] | None = None, key_server: _Served | None = None,
                 **values: str | None) -> dict[str, str]:
    """base_env for functions talking to an emulated bucket (support.EmulatedBucket).

    records: a store URL, or a path (an SQLite file); key_server: the server whose callback key is trusted.
    """
    env = base_env(bucket.bucket, OSS_ENDPOINT=bucket.bucket_url)
    if records is not None:
        env["OSSDIRECT_RECORDS"] = records if isinstance(records, str) else sqlite_url(records)
    if key_server is not None:
        env["OSSDIRECT_TRUSTED_KEY_PREFIXES"] = trusted_keys(key_server)
    return with_settings(env, **values)


def jwt_env(jwks: _Served | None, issuer: str, audience: str, **values: str | None) -> dict[str, str]:
    """OSSDIRECT_AUTH=jwt with an issuer and audience (and a JWKS URL when jwks is given), no bucket."""
    env = settings(AUTH="jwt", JWT_JWKS_URL=jwks_url(jwks) if jwks is not None else None, JWT_ISSUER=issuer,
                   JWT_AUDIENCE=audience)
    return with_settings(env, **values)
