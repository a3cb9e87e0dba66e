"""OSS POST signatures: V4 (OSS4-HMAC-SHA256) and V1 (HMAC-SHA1).

The V4 string to sign is just the base64 policy text; the signing key is derived
from the secret, the UTC date and the region, and cached so the hot path costs
one HMAC.
"""

import base64
import hashlib
import hmac
from functools import lru_cache

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"


def normalize_region(region):
    """OSS scopes use the general region id: ``cn-hangzhou``, not ``oss-cn-hangzhou``."""
    return region[4:] if region.startswith("oss-") else region


@lru_cache(maxsize=64)
def v4_signing_key(secret, date, region):
    """Derive the V4 signing key for a YYYYMMDD ``date`` and ``region``."""

    def mac(key, msg):
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    k = mac(("aliyun_v4" + secret).encode("utf-8"), date)
    k = mac(k, normalize_region(region))
    k = mac(k, "oss")
    return mac(k, V4_TERMINATOR)


def v4_credential(access_key_id, date, region):
    return f"{access_key_id}/{date}/{normalize_region(region)}/oss/{V4_TERMINATOR}"


def v4_signature(secret, date, region, policy_b64):
    """Lowercase hex HMAC-SHA256 of the base64 policy with the derived key."""
    key = v4_signing_key(secret, date, region)
    return hmac.new(key, policy_b64.encode("ascii"), hashlib.sha256).hexdigest()


def v1_signature(secret, policy_b64):
    """Base64 HMAC-SHA1 of the base64 policy (legacy ``Signature`` field)."""
    digest = hmac.new(secret.encode("utf-8"), policy_b64.encode("ascii"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")
