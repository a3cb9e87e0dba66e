"""OSS POST policy documents.

OSS accepts form fields that the policy does not mention, so whatever the
server means to enforce must be a condition here. Conditions keep their order,
and the JSON is compact with non-ASCII kept as is (the bytes ali-oss signs).
"""

from __future__ import annotations

import base64
import json
from operator import itemgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime
    from typing import Any, Union

EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%S.000Z"


def format_expiration(when: datetime) -> str:
    """OSS's ISO 8601 UTC expiration, with milliseconds as the docs show."""
    from datetime import timezone  # here: the functions' forms format their expiry with time.strftime

    if when.tzinfo is None:
        raise ValueError("expiration must be timezone-aware")
    return when.astimezone(timezone.utc).strftime(EXPIRATION_FORMAT)


def _var(field: str) -> str:
    return field if field.startswith("$") else "$" + field


class PostPolicy:
    """Builder for ``{"expiration": ..., "conditions": [...]}``."""

    def __init__(self, expiration: Union[datetime, str, Slot]) -> None:
        self.expiration = expiration if isinstance(expiration, (str, Slot)) else format_expiration(expiration)
        self.conditions: list[Any] = []

    def exact(self, field: str, value: Any) -> PostPolicy:
        """Map form ``{"field": "value"}`` (the only form OSS allows for ``bucket``)."""
        self.conditions.append({field: value})
        return self

    def eq(self, field: str, value: Any) -> PostPolicy:
        self.conditions.append(["eq", _var(field), value])
        return self

    def starts_with(self, field: str, prefix: Any) -> PostPolicy:
        self.conditions.append(["starts-with", _var(field), prefix])
        return self

    def in_(self, field: str, values: Union[Iterable[Any], Slot]) -> PostPolicy:
        self.conditions.append(["in", _var(field), values if isinstance(values, Slot) else list(values)])
        return self

    def not_in(self, field: str, values: Iterable[Any]) -> PostPolicy:
        self.conditions.append(["not-in", _var(field), list(values)])
        return self

    def content_length_range(self, minimum: Union[int, Slot], maximum: Union[int, Slot]) -> PostPolicy:
        if isinstance(minimum, Slot) or isinstance(maximum, Slot):
            self.conditions.append(["content-length-range", minimum, maximum])
            return self
        if not 0 <= minimum <= maximum:
            raise ValueError("content-length-range needs 0 <= min <= max")
        self.conditions.append(["content-length-range", int(minimum), int(maximum)])
        return self

    def pinned_fields(self) -> list[tuple[str, Any]]:
        """The form fields these conditions pin, in order: every exact or ``eq`` condition but the
        bucket (which OSS takes from the host). A form sends each of them with exactly this value."""
        fields = []
        for cond in self.conditions:
            if isinstance(cond, dict):
                (name, value), = cond.items()
                if name != "bucket":
                    fields.append((name, value))
            elif cond[0] == "eq":
                fields.append((cond[1][1:], cond[2]))
        return fields

    def to_dict(self) -> dict[str, Any]:
        return {"expiration": self.expiration, "conditions": self.conditions}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    def to_base64(self) -> str:
        return base64.b64encode(self.to_json().encode("utf-8")).decode("ascii")


def utc_now() -> datetime:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


class Slot:
    """A per-request value inside a document compiled once (see :class:`JsonTemplate`)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


_escape = json.encoder.encode_basestring  # JSON string with non-ASCII kept: what json.dumps(ensure_ascii=False) writes
json_string = _escape  # (the public name: forms fill their templates' texts with it)
_SLOT_MARK = "\x00"  # config values never contain NUL, so the marker cannot collide with real text


class JsonTemplate:
    """A JSON document written once with :class:`Slot` holes, filled per request.

    ``render(values)`` gives exactly ``json.dumps(doc_with_values, separators=(",", ":"),
    ensure_ascii=False)`` (tests check it) at the cost of escaping only the per-request values.
    """

    def __init__(self, doc: Any) -> None:
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False,
                          default=lambda slot: _SLOT_MARK + slot.name + _SLOT_MARK)
        mark = json.dumps(_SLOT_MARK)[1:-1]
        pieces = text.split(f'"{mark}')
        self._head = pieces[0]
        self._parts: list[tuple[str, str]] = []  # (slot name, literal text after it)
        for piece in pieces[1:]:
            name, _, rest = piece.partition(f'{mark}"')
            self._parts.append((name, rest))
        # Filling is two C calls on the hot path: itemgetter picks the slots' texts, str.join interleaves
        # them with the literals (3x faster than one %-format string, which scans every literal char).
        self._pieces: list[Any] = [self._head]
        for _, literal in self._parts:
            self._pieces += [None, literal]
        names = [name for name, _ in self._parts]
        self._pick = itemgetter(*names) if len(names) > 1 else (lambda texts: (texts[names[0]],)) if names else \
            (lambda texts: ())

    @property
    def slots(self) -> list[str]:
        return [name for name, _ in self._parts]

    def render(self, values: Mapping[str, Any]) -> str:
        """Fill the slots from ``values`` (see :func:`json_values`), each written as JSON."""
        return self.render_json(json_values(values))

    def render_json(self, json_texts: Mapping[str, str]) -> str:
        """Fill the slots with ready JSON texts (see :func:`json_values`): what the hot path uses,
        so a value that fills several slots (policy and answer) is escaped once."""
        pieces = self._pieces[:]
        pieces[1::2] = self._pick(json_texts)
        return "".join(pieces)


def json_values(values: Mapping[str, Any]) -> dict[str, str]:
    """Each value as JSON text: strings escaped (non-ASCII kept), ints as digits, None as null, lists
    as compact arrays, and a ``str`` subclass (already JSON text) as it is."""
    out = {}
    for name, v in values.items():
        kind = type(v)
        if kind is str:
            out[name] = _escape(v)
        elif v is None:
            out[name] = "null"
        elif kind is int:
            out[name] = str(v)
        elif isinstance(v, str):  # RawJson
            out[name] = str(v)
        elif isinstance(v, list):
            out[name] = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
        else:
            out[name] = str(int(v))
    return out
