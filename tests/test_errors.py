"""ossdirect.errors: one root for every exception of the package; the edge's one kind -> status mapping."""

import json

import pytest

import ossdirect
from ossdirect import errors as E
from ossdirect.app.http import STATUS_BY_KIND, answerable, error_response, status_for
from ossdirect.client import UploadError
from ossdirect.core.auth import AuthError, AuthorizerError
from ossdirect.core.events import HookBusy, HookFailed, ProcessConfigError
from ossdirect.core.limits import LimitStoreError
from ossdirect.oss.callback_auth import CallbackAuthError
from ossdirect.oss.client import OssError
from ossdirect.oss.credentials import CredentialsUnavailable
from ossdirect.settings import ConfigError
from ossdirect.store import RecordStoreError


def test_every_kind_has_one_status():
    assert set(STATUS_BY_KIND) == set(E.KINDS)
    assert sorted(STATUS_BY_KIND.values()) == [400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 501, 503]
    assert set(E.DENIED) == {E.UNAUTHENTICATED, E.FORBIDDEN, E.TOO_MANY}
    with pytest.raises(ValueError):
        E.OssdirectError("X", "y", "no-such-kind")


def test_a_domain_error_answers_its_status_code_message_and_headers():
    err = E.OssdirectError("TooManyOpenUploads", "wait", E.TOO_MANY, headers={"Retry-After": "7"}, open=8)
    assert (err.code, err.message, err.kind, err.status, err.details, str(err)) == (
        "TooManyOpenUploads", "wait", "too_many", 429, {"open": 8}, "wait")
    answer = error_response(err, {"Vary": "Origin"})
    assert answer["statusCode"] == 429 and answer["body"] == '{"code":"TooManyOpenUploads","message":"wait"}'
    assert answer["headers"]["Retry-After"] == "7" and answer["headers"]["Vary"] == "Origin"


def test_api_error_is_the_older_name_and_still_builds_one():
    assert ossdirect.ApiError is ossdirect.OssdirectError is E.OssdirectError
    err = ossdirect.ApiError(409, "UploadCompleted", "done")
    assert (err.kind, err.status, err.code, err.message) == (E.CONFLICT, 409, "UploadCompleted", "done")
    odd = ossdirect.ApiError(502, "Upstream", "bad gateway")
    assert status_for(odd) == 502 and answerable(odd)


@pytest.mark.parametrize("error", [
    ConfigError("OSSDIRECT_BUCKET is required"), RecordStoreError("disk full"), OssError(503, "ServiceUnavailable", "x"),
    CallbackAuthError("signature does not match"), CredentialsUnavailable("none"), LimitStoreError("down"),
    ProcessConfigError("bad"), HookBusy("busy"), HookFailed("failed"),
    UploadError("refused", kind="refused", status=403, code="AccessDenied"),
])
def test_every_package_exception_has_the_root_and_keeps_its_own_shape(error):
    assert isinstance(error, ossdirect.OssdirectError)
    assert not answerable(error)  # not a domain error: a 500 at the edge, its text never sent
    assert str(error)  # its own text, as before


def test_plain_errors_keep_their_arguments_and_types():
    err = OssError(0, "ConnectionFailed", "refused")
    assert (err.status, err.code, err.args) == (0, "ConnectionFailed", (0, "ConnectionFailed", "refused"))
    assert str(err) == "OSS - ConnectionFailed: refused"
    assert isinstance(ConfigError("x"), ValueError) and str(ConfigError("x")) == "x"
    assert isinstance(ProcessConfigError("y"), ValueError)
    assert UploadError("no", kind="network").kind == "network"


def test_auth_errors_are_domain_errors():
    assert (AuthorizerError("hook failed").kind, AuthorizerError("hook failed").status) == (E.INTERNAL, 500)
    err = AuthError("TokenExpired", "the token has expired", E.UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    assert answerable(err) and err.status == 401
    assert json.loads(error_response(err)["body"]) == {"code": "TokenExpired", "message": "the token has expired"}
