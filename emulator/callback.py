"""Upload callbacks: parse the `callback` field, render the body, POST it signed like OSS."""

import base64
import binascii
import email.utils
import hashlib
import ipaddress
import json
import re
import struct
from urllib.parse import quote, unquote, urlsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .errors import OSSError

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_RESPONSE = 1024 * 1024
_VAR = re.compile(r"\$\{([^}]*)\}")


def _bad(message, value=""):
    return OSSError(400, "InvalidArgument", message, ArgumentName="callback", ArgumentValue=value)


def parse_callback(b64):
    """The decoded callback parameter, validated as OSS does before anything is stored."""
    if len(b64) > 5 * 1024:
        raise _bad("The length of callback exceed max value.")
    try:
        text = base64.b64decode(b64, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _bad("The callback configuration is not base64 encoded.") from None
    try:
        conf = json.loads(text)
        if not isinstance(conf, dict):
            raise ValueError
    except ValueError:
        raise _bad("The callback configuration is not json format.", text) from None
    urls = [u.strip() for u in str(conf.get("callbackUrl") or "").split(";") if u.strip()]
    if not urls:
        raise _bad("The callback url is empty.", text)
    if len(urls) > 5:
        raise _bad("The number of callback url exceed max value.", text)
    for url in urls:
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad("The callback url is invalid.", text)
        try:
            parts.port
        except ValueError:
            raise _bad("The callback url port is invalid.", text) from None
    if not conf.get("callbackBody"):
        raise _bad("The callback body is empty.", text)
    body_type = conf.get("callbackBodyType") or FORM
    if body_type not in (FORM, JSON):
        raise _bad("The callbackBodyType is invalid, it must be application/x-www-form-urlencoded or "
                   "application/json.", text)
    return {"urls": urls, "host": conf.get("callbackHost") or "", "body": str(conf["callbackBody"]),
            "body_type": body_type}


def parse_callback_var(b64):
    """The decoded callback-var parameter (PutObject / CompleteMultipartUpload): base64 JSON of custom
    variables ``{"x:name": "value"}``; names are matched lower-case, like PostObject's x: fields."""
    def bad(message, value=""):
        return OSSError(400, "InvalidArgument", message, ArgumentName="callback-var", ArgumentValue=value)

    if len(b64) > 5 * 1024:
        raise bad("The length of callback-var exceed max value.")
    try:
        text = base64.b64decode(b64, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise bad("The callback-var is not base64 encoded.") from None
    try:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError
    except ValueError:
        raise bad("The callback-var is not json format.", text) from None
    return {str(k).lower(): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()
            if str(k).lower().startswith("x:")}


def image_info(path):
    """(width, height, format) for PNG, GIF, JPEG and WebP files, else None."""
    with open(path, "rb") as f:
        head = f.read(256 * 1024)
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            return w, h, "png"
        if head[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", head[6:10])
            return w, h, "gif"
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            kind = head[12:16]
            if kind == b"VP8X":
                w = int.from_bytes(head[24:27], "little") + 1
                h = int.from_bytes(head[27:30], "little") + 1
            elif kind == b"VP8L":
                bits = int.from_bytes(head[21:25], "little")
                w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            else:
                w, h = struct.unpack("<HH", head[26:30])
                w, h = w & 0x3FFF, h & 0x3FFF
            return w, h, "webp"
        if head[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(head):
                if head[i] != 0xFF:
                    i += 1
                    continue
                marker = head[i + 1]
                if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">HH", head[i + 5:i + 9])
                    return w, h, "jpg"
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                i += 2 + struct.unpack(">H", head[i + 2:i + 4])[0]
    except struct.error:
        return None
    return None


def render(template, body_type, system, custom):
    """Replace ${var}: URL-encoded values for form bodies, JSON values for JSON bodies."""
    numeric = {"size", "imageInfo.height", "imageInfo.width"}

    def value(match):
        name = match.group(1)
        if name.startswith("x:"):
            val = custom.get(name.lower(), "")
        elif name in system:
            val = system[name]
        else:
            return match.group(0)  # not a variable OSS knows: left as written
        if body_type == JSON:
            if name in numeric and str(val).isdigit():
                return str(val)
            return json.dumps(str(val), ensure_ascii=False)
        return quote(str(val), safe="-_.~")

    return _VAR.sub(value, template)


def sign(private_key, path, query, body):
    message = unquote(path).encode("utf-8") + (("?" + query) if query else "").encode("utf-8") + b"\n" + body
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.MD5())).decode()


def _is_loopback(host):
    if host in ("localhost", "::1") or (host or "").endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_allowed(parts, allowed):
    """``allowed`` None: any URL; else the URL's scheme, host, port and path must be one of them."""
    if allowed is None:
        return True
    def base(p):
        try:
            port = p.port or (443 if p.scheme.lower() == "https" else 80)
        except ValueError:
            return None
        return (p.scheme.lower(), (p.hostname or "").lower(), port, p.path or "/")
    mine = base(parts)
    return mine is not None and any(mine == base(urlsplit(a)) for a in allowed)


def deliver(conf, body, private_key, pubkey_url, bucket, req_id, timeout, allowed=None):
    """POST to each URL in order until one succeeds. Returns (True, response) or (False, message).
    ``allowed``: the only callback URLs that may be called (others fail as unreachable, uncalled)."""
    message = "Error status : -1. OSS can not connect to your callbackUrl, please check it."
    for url in conf["urls"]:
        full = url if "://" in url else "http://" + url
        parts = urlsplit(full)
        path = parts.path or "/"
        if not _is_loopback(parts.hostname) or not _url_allowed(parts, allowed):
            # A local emulator never reaches out: only loopback callback servers are called.
            message = "Error status : -1. OSS can not connect to your callbackUrl, please check it."
            continue
        headers = {
            "Authorization": sign(private_key, path, parts.query, body),
            "x-oss-pub-key-url": base64.b64encode(pubkey_url.encode()).decode(),
            "Content-Type": conf["body_type"],
            "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
            "Date": email.utils.formatdate(usegmt=True),
            "User-Agent": "aliyun-oss-callback",
            "x-oss-bucket": bucket,
            "x-oss-request-id": req_id,
            "x-oss-signature-version": "1.0",
            "x-oss-tag": "CALLBACK",
            "Connection": "close",
        }
        if conf["host"]:
            headers["Host"] = conf["host"]
        try:
            response = requests.post(full, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        except requests.Timeout:
            message = (f"error status:-1 {parts.hostname}:{parts.port or 80} reply timeout, "
                       f"cost: {int(timeout * 1000)} MS, timeout: {int(timeout * 1000)} MS")
            continue
        except requests.RequestException:
            message = "Error status : -1. OSS can not connect to your callbackUrl, please check it."
            continue
        if response.status_code != 200:
            message = f"Error status : {response.status_code}."
            continue
        length = response.headers.get("Content-Length")
        if length is None:
            message = "Error status : 400.User server missing content-length."
            continue
        if not length.isdigit() or int(length) != len(response.content):
            message = "Error status : 400.User server return invalid conent-length value."
            continue
        if int(length) > MAX_RESPONSE:
            message = "Error status : 400.User server return too long content-length value."
            continue
        try:
            if response.content.startswith(b"\xef\xbb\xbf"):
                raise ValueError("BOM")
            json.loads(response.content.decode("utf-8"))
        except ValueError:
            message = "Response body is not valid json format."
            continue
        return True, response
    return False, message
