"""PostObject signature (V4 and V1) and policy checks, written from the OSS docs."""

import base64
import binascii
import calendar
import hashlib
import hmac
import json
import time

from .errors import OSSError, invalid_policy, policy_failed

SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                      "Check your key and signing method.")


def _field(fields, name):
    """Case-insensitive form field lookup (the docs disagree on case; we accept any)."""
    return fields.get(name.lower())


def check_signature(fields, accounts, region, now):
    """Verify the form's signature; returns the policy base64 text (or None for anonymous)."""
    policy_b64 = _field(fields, "policy")
    if _field(fields, "x-oss-signature-version") is not None or _field(fields, "x-oss-signature") is not None:
        _check_v4(fields, accounts, region, now, policy_b64)
    elif any(_field(fields, n) is not None for n in ("ossaccesskeyid", "signature", "policy")):
        _check_v1(fields, accounts, policy_b64)
    else:
        raise OSSError(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
    return policy_b64


def _account(accounts, key_id, fields):
    account = accounts.get(key_id)
    if account is None:
        raise OSSError(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.",
                       OSSAccessKeyId=key_id)
    secret, token = account
    if token is not None and _field(fields, "x-oss-security-token") != token:
        raise OSSError(403, "InvalidAccessKeyId", "The security token you provided is invalid or expired.",
                       OSSAccessKeyId=key_id)
    return secret


def _check_v1(fields, accounts, policy_b64):
    key_id, signature = _field(fields, "ossaccesskeyid"), _field(fields, "signature")
    if not key_id:
        raise OSSError(400, "InvalidArgument", "Post request accessKeyId is empty.", "0002-00000706")
    if not signature:
        raise OSSError(400, "InvalidArgument", "Post request signature is empty.", "0002-00000704")
    if not policy_b64:
        raise OSSError(400, "InvalidArgument", "Post request policy is empty.")
    secret = _account(accounts, key_id, fields)
    expected = base64.b64encode(hmac.new(secret.encode(), policy_b64.encode(), hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(expected, signature):
        raise OSSError(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH, "0002-00000705", OSSAccessKeyId=key_id)


def v4_key(secret, date, region):
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _check_v4(fields, accounts, region, now, policy_b64):
    version = _field(fields, "x-oss-signature-version")
    if version != "OSS4-HMAC-SHA256":
        raise OSSError(400, "InvalidArgument", "Invalid signing algorithm in x-oss-signature-version.", "0002-00000701")
    signature = _field(fields, "x-oss-signature")
    if signature is None:
        raise OSSError(400, "InvalidArgument", "Post request x-oss-signature is missing.", "0002-00000703")
    if not signature:
        raise OSSError(400, "InvalidArgument", "Post request signature is empty.", "0002-00000704")
    credential = _field(fields, "x-oss-credential") or ""
    parts = credential.split("/")
    if len(parts) != 5 or parts[3] != "oss" or parts[4] != "aliyun_v4_request" or not parts[0]:
        raise OSSError(400, "InvalidArgument", "Invalid credential in x-oss-credential.", "0002-00000710")
    key_id, date, cred_region = parts[0], parts[1], parts[2]
    x_oss_date = _field(fields, "x-oss-date") or ""
    try:
        signed_at = calendar.timegm(time.strptime(x_oss_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise OSSError(400, "InvalidArgument", "Invalid x-oss-date.", "0002-00000709") from None
    if x_oss_date[:8] != date:
        raise OSSError(400, "InvalidArgument", "The date in x-oss-credential does not match x-oss-date.",
                       "0002-00000709")
    if signed_at > now + 15 * 60:
        raise OSSError(403, "RequestTimeTooSkewed", "The difference between the request time and the current time "
                       "is too large.", "0002-00000709")
    if signed_at < now - 7 * 24 * 3600:
        raise OSSError(403, "AccessDenied", "Request has expired.", "0002-00000709")
    if not policy_b64:
        raise OSSError(400, "InvalidArgument", "Post request policy is empty.")
    secret = _account(accounts, key_id, fields)
    if cred_region != region:
        raise OSSError(400, "InvalidArgument", f"Invalid region in x-oss-credential, expected {region}.",
                       "0002-00000710")
    expected = hmac.new(v4_key(secret, date, region), policy_b64.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise OSSError(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH, "0002-00000705", OSSAccessKeyId=key_id)


def parse_expiration(text):
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return calendar.timegm(time.strptime(text, fmt))
        except (ValueError, TypeError):
            continue
    raise invalid_policy("Invalid expiration format.")


def decode_policy(policy_b64):
    try:
        text = base64.b64decode(policy_b64, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise invalid_policy("Policy is not base64 encoded.") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise invalid_policy(f"Invalid JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise invalid_policy("Invalid JSON: the policy is not an object.")
    if "expiration" not in doc:
        raise invalid_policy("Invalid expiration: expiration is required.")
    if "conditions" not in doc:
        raise invalid_policy("Invalid conditions: conditions are required.")
    if not isinstance(doc["conditions"], list) or not doc["conditions"]:
        raise invalid_policy("Invalid conditions: conditions must be a non-empty array.")
    return doc


def _show(op, field, value):
    return json.dumps([op, "$" + field, value], ensure_ascii=False, separators=(", ", ": "))


def normalize_conditions(conditions):
    """[(op, field, value)] with field lower-case and without '$'; raises InvalidPolicyDocument."""
    out = []
    for cond in conditions:
        if isinstance(cond, dict):
            if len(cond) != 1:
                raise invalid_policy("Invalid Simple-Condition: Simple-Conditions must have exactly one property "
                                     "specified.")
            (name, value), = cond.items()
            if not isinstance(value, str):
                raise invalid_policy("Invalid Simple-Condition: value must be a string.")
            out.append(("eq", name.lstrip("$").lower(), value))
        elif isinstance(cond, list):
            if not cond or not isinstance(cond[0], str):
                raise invalid_policy("Invalid Condition: missing operator.")
            op = cond[0].lower()
            if op == "content-length-range":
                if len(cond) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in cond[1:]) \
                        or cond[1] < 0 or cond[2] < cond[1]:
                    raise invalid_policy("Invalid content-length-range.")
                out.append((op, None, (cond[1], cond[2])))
            elif op in ("eq", "starts-with", "in", "not-in"):
                if len(cond) != 3 or not isinstance(cond[1], str):
                    raise invalid_policy(f"Invalid Condition: {op} takes a field and a value.")
                value = cond[2]
                if op in ("in", "not-in"):
                    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                        raise invalid_policy(f"Invalid Condition: {op} takes a list of strings.")
                elif not isinstance(value, str):
                    raise invalid_policy(f"Invalid Condition: {op} takes a string.")
                out.append((op, cond[1].lstrip("$").lower(), value))
            else:
                raise invalid_policy(f"Invalid Condition: unknown operator {cond[0]!r}.")
        else:
            raise invalid_policy("Invalid Condition: a condition must be an object or an array.")
    return out


def _holds(op, actual, value):
    return ((op == "eq" and actual == value)
            or (op == "starts-with" and actual.startswith(value))
            or (op == "in" and actual in value)
            or (op == "not-in" and actual not in value))


def check_conditions(conditions, every, bucket):
    """Every condition must hold for every occurrence of its field (``every``: lower-case name -> list of
    the values sent), so a repeated field cannot slip a second value past it; a condition on an absent
    field fails. Returns the size range or None."""
    size_range = None
    for op, field, value in conditions:
        if op == "content-length-range":
            size_range = value
            continue
        actual = [bucket] if field == "bucket" else every.get(field.lower()) or []
        if not actual or not all(_holds(op, v, value) for v in actual):
            raise policy_failed(_show(op, field, value))
    return size_range
