"""Authorizer hooks the signature-function tests load through OSSDIRECT_AUTHORIZER=authorizers:<name>."""


def deny_bob(request, claims):
    return {"allow": False, "message": "bob may not upload"} if claims["sub"] == "bob" else True


def narrow(request, claims):
    return {"prefix": f"uploads/{claims['sub']}/avatars/", "max_bytes": 1000, "content_types": ["image/png"],
            "naming": "random", "payload": {"plan": claims.get("plan", "free"), "team": "blue"}}


def widen_size(request, claims):
    return {"max_bytes": 10**12}


def widen_prefix(request, claims):
    return {"prefix": "uploads/"}  # outside the user's own folder


def widen_types(request, claims):
    return {"content_types": ["text/html"]}


def explode(request, claims):
    raise RuntimeError("database down")


# Security round 3: values a careless hook returns. None of them may allow (tests/security/test_round3_attacks.py).
def returns_allow_zero(request, claims):
    return {"allow": 0}


def returns_allow_none(request, claims):
    return {"allow": None}


def returns_allow_string(request, claims):
    return {"allow": "false"}


def returns_none(request, claims):
    return None


def returns_string_false(request, claims):
    return "false"


def returns_empty_string(request, claims):
    return ""


def returns_one(request, claims):
    return 1


def dot_segment_prefix(request, claims):
    return {"prefix": "uploads/./x/"}


def dotdot_prefix(request, claims):
    return {"prefix": "uploads/a/../b/"}


def percent_prefix(request, claims):
    return {"prefix": "uploads/%2e%2e/"}


def double_slash_prefix(request, claims):
    return {"prefix": "uploads//x/"}
