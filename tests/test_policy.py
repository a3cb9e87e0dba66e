import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from ossdirect.oss.policy import PostPolicy, format_expiration


def test_expiration_is_utc_with_milliseconds():
    local = datetime(2024, 3, 2, 4, 30, tzinfo=timezone(timedelta(hours=8)))
    assert format_expiration(local) == "2024-03-01T20:30:00.000Z"
    with pytest.raises(ValueError):
        format_expiration(datetime(2024, 1, 1))


def test_every_condition_kind_in_order_and_compact_json():
    p = (PostPolicy("2030-01-01T00:00:00.000Z").exact("bucket", "b").eq("key", "a/é.png")
         .starts_with("$x-oss-meta-tag", "t").in_("content-type", ["image/png"]).not_in("cache-control", ["no-cache"])
         .content_length_range(0, 10))
    text = p.to_json()
    assert text == ('{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{"bucket":"b"},["eq","$key","a/é.png"],'
                    '["starts-with","$x-oss-meta-tag","t"],["in","$content-type",["image/png"]],'
                    '["not-in","$cache-control",["no-cache"]],["content-length-range",0,10]]}')
    assert json.loads(base64.b64decode(p.to_base64()).decode("utf-8")) == p.to_dict()


def test_bad_range_is_refused():
    with pytest.raises(ValueError):
        PostPolicy("2030-01-01T00:00:00.000Z").content_length_range(5, 4)


def test_a_template_renders_exactly_what_json_dumps_writes():
    """JsonTemplate fills its slots by str.join: the text equals json.dumps of the filled document, whatever
    the values (quotes, backslashes, %, non-ASCII, control characters) and however many slots."""
    from ossdirect.oss.policy import JsonTemplate, Slot, json_values

    values = {"a": 'x "%s" %% \\ é 照片 \x01\n', "b": 7, "c": None, "d": ["%(a)s", "ü"], "e": ""}
    for doc in ({"k": "no slot", "%": "%%"}, {"only": Slot("a")},
                {"p": Slot("a"), "q": [Slot("b"), Slot("c"), "%(b)s"], "r": {"s": Slot("d"), "t": Slot("a")},
                 "u": Slot("e")}):
        def fill(x):
            if isinstance(x, Slot):
                return values[x.name]
            if isinstance(x, dict):
                return {k: fill(v) for k, v in x.items()}
            return [fill(v) for v in x] if isinstance(x, list) else x

        expected = json.dumps(fill(doc), separators=(",", ":"), ensure_ascii=False)
        template = JsonTemplate(doc)
        assert template.render(values) == expected
        assert template.render_json(json_values(values)) == expected
