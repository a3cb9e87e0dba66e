"""The function's own role credentials, resolved per request.

Order: the FC context (``context.credentials``, python3.10 and older), the
``ALIBABA_CLOUD_*`` environment variables (python3.12 has no
``context.credentials``), then the ``alibabacloud-credentials`` default chain,
imported only when the first two give nothing (it costs ~0.3 s to import).
Role keys rotate, so nothing here is cached across requests except the chain
client itself (which refreshes on its own).
"""

from __future__ import annotations

import os
from collections import namedtuple
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Optional

# (dataclasses would cost ~10 ms of cold start for nothing: plain tuples here)


class Credentials(namedtuple("Credentials", "access_key_id access_key_secret security_token source",
                             defaults=(None, ""))):
    __slots__ = ()

    def __repr__(self) -> str:  # never print the secret or the token
        return f"Credentials(access_key_id={self.access_key_id!r}, source={self.source!r})"


class CredentialsUnavailable(OssdirectError):
    """No credentials from the context, the environment or the default chain."""


def _from_context(context: Any) -> Optional[Credentials]:
    creds = getattr(context, "credentials", None) if context is not None else None
    if creds is None:
        return None
    if isinstance(creds, dict):
        key_id, secret, token = creds.get("access_key_id"), creds.get("access_key_secret"), creds.get("security_token")
    else:
        key_id = getattr(creds, "access_key_id", None)
        secret = getattr(creds, "access_key_secret", None)
        token = getattr(creds, "security_token", None)
    if key_id and secret:
        return Credentials(key_id, secret, token or None, "context")
    return None


def _from_environ(environ: Mapping[str, str]) -> Optional[Credentials]:
    key_id = environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if key_id and secret:
        return Credentials(key_id, secret, environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None, "environment")
    return None


_chain_client: Any = None


def _from_default_chain() -> Optional[Credentials]:
    global _chain_client
    try:
        if _chain_client is None:
            from alibabacloud_credentials.client import Client  # lazy: heavy import

            _chain_client = Client()
        cred = _chain_client.get_credential()
    except Exception:  # missing package, no provider, metadata disabled...
        return None
    key_id = cred.get_access_key_id()
    secret = cred.get_access_key_secret()
    if key_id and secret:
        return Credentials(key_id, secret, cred.get_security_token() or None, "default-chain")
    return None


def resolve_credentials(context: Any = None, environ: Optional[Mapping[str, str]] = None) -> Credentials:
    """Return the request's credentials or raise :class:`CredentialsUnavailable`."""
    environ = os.environ if environ is None else environ
    creds = _from_context(context) or _from_environ(environ) or _from_default_chain()
    if creds is None:
        raise CredentialsUnavailable("no credentials in the function context, environment or default chain")
    return creds
