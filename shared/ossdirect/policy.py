"""OSS POST policy documents.

OSS accepts form fields that the policy does not mention, so whatever the
server means to enforce must be a condition here. Conditions keep their order,
and the JSON is compact with non-ASCII kept as is (the bytes ali-oss signs).
"""

import base64
import json
from datetime import datetime, timezone

EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%S.000Z"


def format_expiration(when):
    """OSS's ISO 8601 UTC expiration, with milliseconds as the docs show."""
    if when.tzinfo is None:
        raise ValueError("expiration must be timezone-aware")
    return when.astimezone(timezone.utc).strftime(EXPIRATION_FORMAT)


def _var(field):
    return field if field.startswith("$") else "$" + field


class PostPolicy:
    """Builder for ``{"expiration": ..., "conditions": [...]}``."""

    def __init__(self, expiration):
        self.expiration = expiration if isinstance(expiration, str) else format_expiration(expiration)
        self.conditions = []

    def exact(self, field, value):
        """Map form ``{"field": "value"}`` (the only form OSS allows for ``bucket``)."""
        self.conditions.append({field: value})
        return self

    def eq(self, field, value):
        self.conditions.append(["eq", _var(field), value])
        return self

    def starts_with(self, field, prefix):
        self.conditions.append(["starts-with", _var(field), prefix])
        return self

    def in_(self, field, values):
        self.conditions.append(["in", _var(field), list(values)])
        return self

    def not_in(self, field, values):
        self.conditions.append(["not-in", _var(field), list(values)])
        return self

    def content_length_range(self, minimum, maximum):
        if not 0 <= minimum <= maximum:
            raise ValueError("content-length-range needs 0 <= min <= max")
        self.conditions.append(["content-length-range", int(minimum), int(maximum)])
        return self

    def to_dict(self):
        return {"expiration": self.expiration, "conditions": self.conditions}

    def to_json(self):
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    def to_base64(self):
        return base64.b64encode(self.to_json().encode("utf-8")).decode("ascii")


def utc_now():
    return datetime.now(timezone.utc)
