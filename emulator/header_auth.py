"""Header signatures on object and bucket calls, written from the OSS docs ("Include signatures in the
Authorization header", V1 and V4). PostObject's form signatures are in auth.py.

V1:  Authorization: OSS <AccessKeyId>:<base64 HMAC-SHA1(secret, StringToSign)>
     StringToSign = VERB \\n Content-MD5 \\n Content-Type \\n Date \\n
                    CanonicalizedOSSHeaders (lowercase x-oss-* "name:value\\n", sorted) + CanonicalizedResource
     CanonicalizedResource = /<bucket>/<key, not encoded> [? sorted sub-resources, "k=v" or "k", values decoded]
V4:  Authorization: OSS4-HMAC-SHA256 Credential=<id>/<yyyymmdd>/<region>/oss/aliyun_v4_request,
                    [AdditionalHeaders=<h1;h2>,]Signature=<hex>
     CanonicalRequest = VERB \\n URI-encoded "/<bucket>/<key>" ('/' kept) \\n canonical query \\n
                        canonical headers \\n additional header names \\n x-oss-content-sha256
     StringToSign = "OSS4-HMAC-SHA256" \\n x-oss-date \\n <scope> \\n hex(SHA256(CanonicalRequest))
     Signature = hex(HMAC-SHA256(signing key, StringToSign)), the signing key as for V4 POST.

Presigned URLs (signature in the query string; "Add signatures to URLs", V1 and V4):
V1:  ?OSSAccessKeyId=<id>&Expires=<unix seconds>&Signature=<base64 HMAC-SHA1>[&security-token=<token>]
     StringToSign as for the V1 header, with Expires in the Date slot; security-token is a sub-resource.
V4:  ?x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=<id>/<yyyymmdd>/<region>/oss/aliyun_v4_request
     &x-oss-date=<yyyymmddTHHMMSSZ>&x-oss-expires=<seconds, 1..604800>[&x-oss-security-token=<token>]
     [&x-oss-additional-headers=<h1;h2>]&x-oss-signature=<hex>
     CanonicalRequest as for the V4 header, its canonical query being every parameter sent except
     x-oss-signature (so the x-oss-* query parameters above are signed), and the payload hash the
     x-oss-content-sha256 header or UNSIGNED-PAYLOAD. A URL is refused ("Request has expired.") once
     x-oss-date + x-oss-expires (V4) or Expires (V1) has passed.
"""

import base64
import calendar
import email.utils
import hashlib
import hmac
import re
import time
from urllib.parse import quote, unquote

from .auth import SIGNATURE_MISMATCH, v4_key
from .errors import OSSError

MAX_SKEW = 15 * 60
UNSIGNED = "UNSIGNED-PAYLOAD"
V4_ALGORITHM = "OSS4-HMAC-SHA256"

# Query parameters that are part of V1's CanonicalizedResource (the sub-resources the docs list).
SUBRESOURCES = frozenset("""
acl uploads location cors logging website referer lifecycle delete append tagging objectMeta uploadId partNumber
security-token position img style styleName replication replicationProgress replicationLocation cname bucketInfo
comp qos live status vod startTime endTime symlink x-oss-process response-content-type response-content-language
response-expires response-cache-control response-content-disposition response-content-encoding udf udfName
udfImage udfId udfImageDesc udfApplication udfApplicationLog restore callback callback-var policy stat encryption
versions versioning versionId requestPayment x-oss-request-payer sequential inventory inventoryId
continuation-token asyncFetch worm wormId wormExtend withHashContext x-oss-enable-md5 x-oss-enable-sha1
x-oss-enable-sha256 x-oss-hash-ctx x-oss-md5-ctx transferAcceleration regionList cloudboxes x-oss-ac-source-ip
x-oss-ac-subnet-mask x-oss-ac-vpc-id x-oss-ac-forward-allow metaQuery resourceGroup rtc x-oss-async-process
responseHeader objectInfo link group qosInfo x-oss-traffic-limit x-oss-write-get-object-response
""".split())
V4_QUERY_PARAMS = ("x-oss-signature-version", "x-oss-credential", "x-oss-date", "x-oss-expires", "x-oss-signature")
MAX_V4_EXPIRES = 7 * 24 * 3600


def _bytes(text):
    """UTF-8 bytes; header values arrive as surrogate-escaped UTF-8 (see app.signed_headers)."""
    return text.encode("utf-8", "surrogateescape")


def _shown(text):
    return _bytes(text).decode("utf-8", "replace")


def _denied_signature(key_id, **extra):
    return OSSError(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH, "0002-00000040", OSSAccessKeyId=key_id,
                    **extra)


def _invalid_auth(detail):
    return OSSError(400, "InvalidArgument", f"Authorization header is invalid: {detail}", "0002-00000001")


def _secret(accounts, key_id, headers, token_sent=None):
    """The key's secret; an STS key also needs its token (header x-oss-security-token, or ``token_sent``
    from a presigned URL's query)."""
    account = accounts.get(key_id)
    if account is None:
        raise OSSError(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.",
                       "0002-00000902", OSSAccessKeyId=key_id)
    secret, token = account
    sent = token_sent if token_sent is not None else headers.get("x-oss-security-token")
    if token is not None and sent != token:
        raise OSSError(403, "InvalidAccessKeyId", "The security token you provided is invalid or expired.",
                       "0002-00000903", OSSAccessKeyId=key_id)
    return secret


def _check_skew(signed_at, now):
    if abs(signed_at - now) > MAX_SKEW:
        raise OSSError(403, "RequestTimeTooSkewed", "The difference between the request time and the current "
                       "time is too large.", "0002-00000504", MaxAllowedSkewMilliseconds=str(MAX_SKEW * 1000))


def authenticate(method, bucket, key, headers, raw_query, accounts, region, now):
    """Verify the request's header signature: the signer's key id, or None for an anonymous request.

    ``headers``: lower-case name -> value as received; ``raw_query``: the query string as sent;
    ``now``: the wall clock (a header signature more than 15 minutes off is refused, as OSS does; a
    presigned URL is refused once it has expired).
    Raises OSSError (403 SignatureDoesNotMatch, InvalidAccessKeyId, RequestTimeTooSkewed, AccessDenied
    "Request has expired."; 400 for a malformed header or query signature)."""
    pairs = _query_pairs(raw_query)
    names = {name.lower() for name, _ in pairs}
    value = headers.get("authorization")
    if names & {"signature", "ossaccesskeyid", "x-oss-signature", "x-oss-credential", "x-oss-signature-version"}:
        if value is not None:
            raise OSSError(400, "InvalidArgument", "Only one authentication method may be used: the Authorization "
                           "header or a signature in the query string, not both.")
        if names & {"x-oss-signature", "x-oss-credential", "x-oss-signature-version"}:
            return _verify_v4_query(method, bucket, key, headers, pairs, accounts, region, now)
        return _verify_v1_query(method, bucket, key, headers, pairs, accounts, now)
    if value is None:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme == "OSS":
        return _verify_v1(method, bucket, key, headers, pairs, rest.strip(), accounts, now)
    if scheme == V4_ALGORITHM:
        return _verify_v4(method, bucket, key, headers, pairs, rest.strip(), accounts, region, now)
    raise _invalid_auth(f"unsupported scheme {scheme!r} (use OSS or {V4_ALGORITHM}).")


def _query_pairs(raw_query):
    """[(name, value)] decoded (%XX only, as the SDKs encode with quote), in the order sent."""
    out = []
    for piece in (raw_query or "").split("&"):
        if piece:
            name, _, value = piece.partition("=")
            out.append((unquote(name), unquote(value)))
    return out


# --- V1 ---------------------------------------------------------------------------------------------
def v1_string_to_sign(method, bucket, key, headers, pairs):
    oss_headers = sorted((k, v) for k, v in headers.items() if k.startswith("x-oss-"))
    canon_headers = "".join(f"{k}:{v}\n" for k, v in oss_headers)
    resource = f"/{bucket}/{key}" if bucket else "/"
    subs = sorted((k, v) for k, v in pairs if k in SUBRESOURCES)
    if subs:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subs)
    date = headers.get("x-oss-date") or headers.get("date", "")
    return "\n".join([method, headers.get("content-md5", ""), headers.get("content-type", ""), date,
                      canon_headers + resource])


def _verify_v1(method, bucket, key, headers, pairs, credential, accounts, now):
    key_id, sep, signature = credential.rpartition(":")
    if not sep or not key_id or not signature or " " in key_id:
        raise _invalid_auth("expected 'OSS <AccessKeyId>:<Signature>'.")
    date = headers.get("x-oss-date") or headers.get("date")
    if not date:
        raise OSSError(403, "AccessDenied", "Authorization requires a Date (or x-oss-date) header.")
    try:
        signed_at = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        raise OSSError(403, "AccessDenied", f"Invalid Date header: {date!r}.") from None
    secret = _secret(accounts, key_id, headers)
    string_to_sign = v1_string_to_sign(method, bucket, key, headers, pairs)
    digest = hmac.new(secret.encode(), _bytes(string_to_sign), hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(digest), _bytes(signature)):
        raise _denied_signature(key_id, StringToSign=_shown(string_to_sign), SignatureProvided=_shown(signature))
    _check_skew(signed_at, now)
    return key_id


def _expired(expires_at, now):
    return OSSError(403, "AccessDenied", "Request has expired.", "0002-00000069",
                    Expires=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires_at)),
                    ServerTime=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)))


def _query_value(pairs, name):
    """The first value of a query parameter (name compared case-sensitively, as OSS does), else None."""
    for k, v in pairs:
        if k == name:
            return v
    return None


def _verify_v1_query(method, bucket, key, headers, pairs, accounts, now):
    key_id, expires, signature = (_query_value(pairs, n) for n in ("OSSAccessKeyId", "Expires", "Signature"))
    if not key_id or not signature or expires is None:
        raise OSSError(400, "InvalidArgument", "A presigned URL (V1) needs OSSAccessKeyId, Expires and Signature.",
                       "0002-00000001")
    if not expires.isascii() or not expires.isdigit():
        raise OSSError(403, "AccessDenied", f"Invalid Expires: {expires!r}.")
    if now > int(expires):
        raise _expired(int(expires), now)
    secret = _secret(accounts, key_id, headers, _query_value(pairs, "security-token") or "")
    canon_headers = dict(headers, date=expires)
    canon_headers.pop("x-oss-date", None)
    string_to_sign = v1_string_to_sign(method, bucket, key, canon_headers, pairs)
    digest = hmac.new(secret.encode(), _bytes(string_to_sign), hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(digest), _bytes(signature)):
        raise _denied_signature(key_id, StringToSign=_shown(string_to_sign), SignatureProvided=_shown(signature))
    return key_id


def _verify_v4_query(method, bucket, key, headers, pairs, accounts, region, now):
    values = {n: _query_value(pairs, n) for n in V4_QUERY_PARAMS}
    missing = [n for n, v in values.items() if not v]
    if missing:
        raise OSSError(400, "InvalidArgument", f"A presigned URL (V4) needs {', '.join(missing)}.", "0002-00000001")
    if values["x-oss-signature-version"] != V4_ALGORITHM:
        raise OSSError(400, "InvalidArgument", f"x-oss-signature-version must be {V4_ALGORITHM}.", "0002-00000001")
    scope = values["x-oss-credential"].split("/")
    if len(scope) != 5 or not scope[0] or scope[3] != "oss" or scope[4] != "aliyun_v4_request":
        raise OSSError(400, "InvalidArgument", "x-oss-credential must be "
                       "<AccessKeyId>/<yyyymmdd>/<region>/oss/aliyun_v4_request.", "0002-00000001")
    key_id, date, cred_region = scope[0], scope[1], scope[2]
    x_oss_date, expires = values["x-oss-date"], values["x-oss-expires"]
    if not re.fullmatch(r"\d{8}T\d{6}Z", x_oss_date):
        raise OSSError(403, "AccessDenied", "x-oss-date must be yyyymmddTHHMMSSZ.")
    if x_oss_date[:8] != date:
        raise OSSError(403, "AccessDenied", "The date in x-oss-credential does not match x-oss-date.")
    if cred_region != region:
        raise OSSError(400, "InvalidArgument", f"Invalid region in x-oss-credential, expected {region}.")
    if not expires.isascii() or not expires.isdigit() or not 1 <= int(expires) <= MAX_V4_EXPIRES:
        raise OSSError(400, "InvalidArgument", f"x-oss-expires must be an integer from 1 to {MAX_V4_EXPIRES}.",
                       "0002-00000001", ArgumentName="x-oss-expires", ArgumentValue=expires)
    signed_at = calendar.timegm(time.strptime(x_oss_date, "%Y%m%dT%H%M%SZ"))
    if now > signed_at + int(expires):
        raise _expired(signed_at + int(expires), now)
    if signed_at - now > MAX_SKEW:  # signed in the future
        _check_skew(signed_at, now)
    additional = sorted({h.strip().lower() for h in (_query_value(pairs, "x-oss-additional-headers") or "").split(";")
                         if h.strip()})
    absent = [h for h in additional if h not in headers]
    if absent:
        raise OSSError(400, "InvalidArgument", f"x-oss-additional-headers names {', '.join(absent)}, absent from "
                       "the request.", "0002-00000001")
    secret = _secret(accounts, key_id, headers, _query_value(pairs, "x-oss-security-token") or "")
    signed_pairs = [(k, v) for k, v in pairs if k != "x-oss-signature"]
    canonical = v4_canonical_request(method, bucket, key, headers, signed_pairs, additional)
    string_to_sign = "\n".join([V4_ALGORITHM, x_oss_date, "/".join(scope[1:]),
                                hashlib.sha256(_bytes(canonical)).hexdigest()])
    expected = hmac.new(v4_key(secret, date, region), _bytes(string_to_sign), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), _bytes(values["x-oss-signature"])):
        raise _denied_signature(key_id, StringToSign=_shown(string_to_sign), CanonicalRequest=_shown(canonical),
                                SignatureProvided=_shown(values["x-oss-signature"]))
    return key_id


# --- V4 ---------------------------------------------------------------------------------------------
def v4_canonical_request(method, bucket, key, headers, pairs, additional):
    uri = quote(f"/{bucket}/{key}" if bucket else "/", safe="/")
    encoded = sorted((quote(k, safe=""), quote(v, safe="")) for k, v in pairs)
    query = "&".join(f"{k}={v}" if v else k for k, v in encoded)
    signed = sorted((k, v) for k, v in headers.items()
                    if k.startswith("x-oss-") or k in ("content-type", "content-md5") or k in additional)
    canon_headers = "".join(f"{k}:{v}\n" for k, v in signed)
    return "\n".join([method, uri, query, canon_headers, ";".join(additional),
                      headers.get("x-oss-content-sha256", UNSIGNED)])


def _parse_v4(rest):
    parts = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise _invalid_auth(f"{item.strip()!r} is not name=value.")
        parts[name.strip()] = value.strip()
    for required in ("Credential", "Signature"):
        if not parts.get(required):
            raise _invalid_auth(f"{required} is missing.")
    return parts


def _verify_v4(method, bucket, key, headers, pairs, rest, accounts, region, now):
    parts = _parse_v4(rest)
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or not scope[0] or scope[3] != "oss" or scope[4] != "aliyun_v4_request":
        raise _invalid_auth("Credential must be <AccessKeyId>/<yyyymmdd>/<region>/oss/aliyun_v4_request.")
    key_id, date, cred_region = scope[0], scope[1], scope[2]
    x_oss_date = headers.get("x-oss-date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", x_oss_date):
        raise OSSError(403, "AccessDenied", "V4 signatures need an x-oss-date header (yyyymmddTHHMMSSZ).")
    if x_oss_date[:8] != date:
        raise OSSError(403, "AccessDenied", "The date in Credential does not match x-oss-date.")
    if cred_region != region:
        raise OSSError(400, "InvalidArgument", "Invalid signing region in Authorization header.", "0002-00000226",
                       ArgumentName="Credential", ArgumentValue=cred_region)
    payload = headers.get("x-oss-content-sha256")
    if payload is None:
        raise OSSError(400, "InvalidArgument", "V4 signatures need an x-oss-content-sha256 header.")
    if payload != UNSIGNED:
        raise OSSError(400, "InvalidArgument", "This emulator only accepts x-oss-content-sha256: UNSIGNED-PAYLOAD.")
    additional = sorted({h.strip().lower() for h in parts.get("AdditionalHeaders", "").split(";") if h.strip()})
    missing = [h for h in additional if h not in headers]
    if missing:
        raise _invalid_auth(f"AdditionalHeaders names {', '.join(missing)}, absent from the request.")
    secret = _secret(accounts, key_id, headers)
    canonical = v4_canonical_request(method, bucket, key, headers, pairs, additional)
    string_to_sign = "\n".join([V4_ALGORITHM, x_oss_date, "/".join(scope[1:]),
                                hashlib.sha256(_bytes(canonical)).hexdigest()])
    expected = hmac.new(v4_key(secret, date, region), _bytes(string_to_sign), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), _bytes(parts["Signature"])):
        raise _denied_signature(key_id, StringToSign=_shown(string_to_sign), CanonicalRequest=_shown(canonical),
                                SignatureProvided=_shown(parts["Signature"]))
    _check_skew(calendar.timegm(time.strptime(x_oss_date, "%Y%m%dT%H%M%SZ")), now)
    return key_id
