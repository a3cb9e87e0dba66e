"""ossdirect: sign OSS PostObject forms, verify OSS upload callbacks, record uploads, upload files.

The public API (everything else is internal and may change)::

    import ossdirect

    config = ossdirect.load_config(environ)                     # OSSDIRECT_* settings, or ConfigError
    form = ossdirect.issue_form(config, credentials, params)    # one signed form (a dict), or OssdirectError
    ossdirect.verify_callback(headers, path, raw_query, body)   # None, or CallbackAuthError
    store = ossdirect.open_store("sqlite:///records.sqlite3")   # the record store (put/get/update)
    ossdirect.Client(signature_url, token).upload(path)         # UploadResult, or UploadError (cli extra)

Every error the package raises derives from ``OssdirectError`` (``ApiError`` is its older name); one
the caller may be told about has a ``code``, a ``message`` and a ``kind`` (invalid, unauthenticated,
forbidden, not_found, conflict, unavailable, ...: :mod:`ossdirect.errors`).

Kept import-light on purpose: the names above are loaded on first use (PEP 562), so the
Function Compute handlers, which import only the submodules they need, pay nothing for them.
"""

from __future__ import annotations

# typing.TYPE_CHECKING without importing typing on the functions' cold start (type checkers read it as True)
TYPE_CHECKING = False

__version__ = "0.2.0"

# public name -> submodule that defines it
_EXPORTS = {
    "Config": "settings", "ConfigError": "settings", "load_config": "settings",
    "Credentials": "oss.credentials", "resolve_credentials": "oss.credentials",
    "issue_form": "core.forms", "FormIssuer": "core.forms", "Grant": "core.forms",
    "ApiError": "app.http", "OssdirectError": "errors",
    "verify_callback": "oss.callback_auth", "CallbackAuthError": "oss.callback_auth",
    "RecordStore": "store", "RecordStoreError": "store", "open_store": "store", "RECORD_FIELDS": "store",
    "Client": "client", "UploadResult": "client", "UploadError": "client",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # what a type checker sees; at run time each name is imported on first use
    from typing import Any

    from .oss.callback_auth import CallbackAuthError, verify_callback
    from .client import Client, UploadError, UploadResult
    from .settings import Config, ConfigError, load_config
    from .oss.credentials import Credentials, resolve_credentials
    from .core.forms import FormIssuer, Grant, issue_form
    from .app.http import ApiError
    from .errors import OssdirectError
    from .store import RECORD_FIELDS, RecordStore, RecordStoreError, open_store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ossdirect' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
