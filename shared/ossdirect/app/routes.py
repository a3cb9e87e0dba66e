"""Route tables: method + pattern -> route function, one table per function (the model: the resolver
of AWS Lambda Powertools, without the framework).

A function's routes are grouped under *mounts*. A mount is found in the request path the way a
deployed function sees it (behind FC's or a custom domain's own prefix, so never anchored at ``/``):

- ``/multipart...``, ``/files...``: the path's first ``/multipart`` (``/files``) followed by ``/`` or
  nothing; the rest, split on ``/`` with empty segments dropped, is matched against the patterns;
- a *tail* mount (``limits``, ``records``): the path ending in ``/limits``; the path holding
  ``/records/`` (the last segment is the upload id);
- the default mount: any other path.

Each mount has a *guard* (run before its patterns are matched: the sign-in or method check that must
answer first), its own not-found and wrong-method answers, and optional checks of path parameters
(run on a segment before the literal segments are compared). A pattern's segments are literals,
``{name}`` (any segment) or ``{name:digits}`` (ASCII digits). The wrong-method answer lists the
methods of every route whose pattern matched, in table order.
"""

from __future__ import annotations

from .. import errors as E
from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Sequence

    from .http import Request

    Check = Callable[[str], None]


class Route:
    """``method`` + ``pattern`` -> the route function's name (an attribute of the app's routes object)."""

    __slots__ = ("method", "pattern", "name", "segments")

    def __init__(self, method: str, pattern: str, name: str) -> None:
        self.method, self.pattern, self.name = method, pattern, name
        self.segments = tuple(s for s in pattern.split("/") if s)[1:]  # after the mount's own segment

    def matches(self, segments: Sequence[str]) -> bool:
        if len(segments) != len(self.segments):
            return False
        for want, got in zip(self.segments, segments):
            if want.startswith("{"):
                if want.endswith(":digits}") and not (got.isascii() and got.isdigit()):
                    return False
            elif want != got:
                return False
        return True

    def params(self, segments: Sequence[str]) -> dict[str, str]:
        return {want.strip("{}").split(":")[0]: got for want, got in zip(self.segments, segments)
                if want.startswith("{")}

    def __repr__(self) -> str:
        return f"Route({self.method!r}, {self.pattern!r}, {self.name!r})"


class Mount:
    """One group of routes: where it sits in the path, its guard, its answers for no route / method."""

    def __init__(self, name: str, routes: Sequence[Route], *, find: str = "segment", guard: str | None = None,
                 not_found: tuple[str, str] = ("NoSuchRoute", "no such route"),
                 method_message: Callable[[Route, tuple[str, ...]], str] | None = None,
                 checks: dict[str, Check] | None = None) -> None:
        self.name, self.routes, self.find, self.guard = name, tuple(routes), find, guard
        self.not_found, self.method_message, self.checks = not_found, method_message, checks or {}
        self._by_length: dict[int, list[Route]] = {}  # routes by segment count: resolve's first filter, once
        for route in self.routes:
            self._by_length.setdefault(len(route.segments), []).append(route)

    def locate(self, path: str) -> list[str] | None:
        """The path segments under this mount, or None when the path is not under it."""
        if self.find == "segment":  # /<name>[/...]: the first occurrence decides
            _, found, rest = path.partition("/" + self.name)
            if found and (not rest or rest.startswith("/")):
                return [s for s in rest.split("/") if s]
            return None
        tail = path.rstrip("/")
        if self.find == "suffix":  # .../<name>
            return [] if tail.endswith("/" + self.name) else None
        if self.find == "contains":  # .../<name>/.../<last>: the last segment
            return [tail.rsplit("/", 1)[-1]] if f"/{self.name}/" in tail else None
        return []  # "any": the default mount

    def resolve(self, method: str, segments: Sequence[str]) -> tuple[Route, dict[str, str]]:
        """The route for ``method`` and ``segments``, or a not-found / wrong-method domain error."""
        shaped = self._by_length.get(len(segments), [])
        if not shaped:
            raise self._no_route()
        for want, got in zip(shaped[0].segments, segments):
            check = self.checks.get(want.strip("{}").split(":")[0]) if want.startswith("{") else None
            if check is not None:
                check(got)
        matched = [r for r in shaped if r.matches(segments)]
        if not matched:
            raise self._no_route()
        for route in matched:
            if route.method == method:
                return route, route.params(segments)
        allowed = tuple(dict.fromkeys(r.method for r in matched))
        message = self.method_message(matched[0], allowed) if self.method_message else \
            f"use {' or '.join(allowed)} here"
        raise OssdirectError("MethodNotAllowed", message, E.METHOD_NOT_ALLOWED)

    def _no_route(self) -> OssdirectError:
        return OssdirectError(self.not_found[0], self.not_found[1], E.NOT_FOUND)


class RouteTable:
    """A function's mounts, tried in order; the first whose ``locate`` takes the path answers."""

    CACHE_SIZE = 256  # a function sees few distinct routes; a flood of new paths only empties the cache

    def __init__(self, mounts: Sequence[Mount]) -> None:
        self.mounts = tuple(mounts)
        # (method, path) -> (mount, route, params) of a path that resolved: the hot path skips the search
        self._resolved: dict[tuple[str, str], tuple[Mount, Route, dict[str, str]]] = {}

    def find(self, path: str) -> tuple[Mount, list[str]]:
        for mount in self.mounts:
            segments = mount.locate(path)
            if segments is not None:
                return mount, segments
        raise OssdirectError("NoSuchRoute", "no such route", E.NOT_FOUND)

    def routes(self) -> list[tuple[Mount, Route]]:
        return [(m, r) for m in self.mounts for r in m.routes]

    def dispatch(self, request: Request, target: Any, **context: Any) -> Any:
        """Find the mount, run its guard, resolve the route and call ``target.<route.name>``.

        ``target.<guard>(request, **context)`` returns keyword arguments for the route function (the
        grant, the claims); the route function gets ``(request, **guarded, **params, **context)``."""
        key = (request.method, request.path)
        hit = self._resolved.get(key)
        if hit is not None:  # resolved before: same mount, route and params (all read from the path)
            mount, route, params = hit
            guarded = getattr(target, mount.guard)(request, **context) if mount.guard else {}
            return getattr(target, route.name)(request, **guarded, **params, **context)
        mount, segments = self.find(request.path)
        guarded = getattr(target, mount.guard)(request, **context) if mount.guard else {}  # before not-found
        route, params = mount.resolve(request.method, segments)
        if len(self._resolved) >= self.CACHE_SIZE:
            self._resolved.clear()
        self._resolved[key] = (mount, route, params)
        return getattr(target, route.name)(request, **guarded, **params, **context)


# ------------------------------------------------------------------------------------------------
# the tables (route functions: ossdirect.app.handlers.SignatureApp / CallbackApp)


def _oss_upload_id(segment: str) -> None:
    if not (segment.isascii() and segment.isprintable() and 1 <= len(segment) <= 256):
        raise OssdirectError("NoSuchUpload", "not an upload id", E.NOT_FOUND)


def _multipart_method(route: Route, allowed: tuple[str, ...]) -> str:
    if route.pattern == "/multipart":
        return "POST /multipart starts a multipart upload"
    return f"use {' or '.join(allowed)} here"


def _form_method(route: Route, allowed: tuple[str, ...]) -> str:
    return "use GET to request an upload form"


SIGNATURE_ROUTES = RouteTable([
    Mount("multipart", [  # ossdirect.core.multipart; guard: the same sign-in and authorizer as forms
        Route("POST", "/multipart", "multipart_create"),
        Route("GET", "/multipart/{uploadId}", "multipart_list_parts"),
        Route("DELETE", "/multipart/{uploadId}", "multipart_abort"),
        Route("GET", "/multipart/{uploadId}/parts", "multipart_sign_parts"),
        Route("POST", "/multipart/{uploadId}/complete", "multipart_complete"),
        Route("GET", "/multipart/{uploadId}/{partNumber:digits}", "multipart_sign_part"),
    ], guard="granted", not_found=("NoSuchRoute", "no such multipart route"), method_message=_multipart_method,
        checks={"uploadId": _oss_upload_id}),
    Mount("files", [  # ossdirect.core.files; guard: signed in
        Route("GET", "/files", "files_list"),
        Route("GET", "/files/{upload_id}/url", "files_url"),
        Route("DELETE", "/files/{upload_id}", "files_delete"),
    ], guard="signed_in", not_found=("NoSuchRoute", "no such files route")),
    Mount("limits", [Route("GET", "/limits", "limits_route")], find="suffix", method_message=_form_method),
    Mount("records", [Route("GET", "/records/{upload_id}", "record_route")], find="contains",
          method_message=_form_method),
    Mount("", [Route("GET", "/", "form")], find="any", method_message=_form_method),
])

CALLBACK_ROUTES = RouteTable([
    Mount("", [Route("POST", "/", "callback")], find="any",
          method_message=lambda route, allowed: "OSS callbacks are POST requests"),
])
