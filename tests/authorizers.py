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
