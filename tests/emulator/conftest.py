"""Emulator tests build their requests with their own tiny signer (never ossdirect)."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from emulator import EmulatorConfig, serve

# the downloaded upstream oss2 suite runs only through test_upstream_oss2.py (its own process and emulator)
collect_ignore = ["upstream/cache"]

BUCKET = "emu-bucket"
REGION = "cn-hangzhou"
AK, SK = "AKIDEMULATOR", "emulator-secret"
STS_AK, STS_SK, STS_TOKEN = "STS.EMULATOR", "sts-secret", "sts-token"


def v4_key(secret, date, region):
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def make_form(conditions=(), key="uploads/a.txt", ak=AK, sk=SK, token=None, version="v4", now=None,
              expires_in=600, region=REGION, extra_fields=(), include_v4_conditions=True):
    """Ordered form fields (without file) signed with the given account."""
    now = now if now is not None else time.time()
    expiration = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now + expires_in))
    conds = [{"bucket": BUCKET}]
    fields = [("key", key)]
    if version == "v4":
        x_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        credential = f"{ak}/{x_date[:8]}/{region}/oss/aliyun_v4_request"
        if include_v4_conditions:
            conds += [{"x-oss-signature-version": "OSS4-HMAC-SHA256"}, {"x-oss-credential": credential},
                      {"x-oss-date": x_date}]
    if token:
        conds.append({"x-oss-security-token": token})
    conds += list(conditions)
    policy = base64.b64encode(json.dumps({"expiration": expiration, "conditions": conds}).encode()).decode()
    if version == "v4":
        sig = hmac.new(v4_key(sk, x_date[:8], region), policy.encode(), hashlib.sha256).hexdigest()
        fields += [("policy", policy), ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
                   ("x-oss-credential", credential), ("x-oss-date", x_date), ("x-oss-signature", sig)]
    else:
        sig = base64.b64encode(hmac.new(sk.encode(), policy.encode(), hashlib.sha1).digest()).decode()
        fields += [("OSSAccessKeyId", ak), ("policy", policy), ("Signature", sig)]
    if token:
        fields.append(("x-oss-security-token", token))
    return fields + list(extra_fields)


def multipart(fields, file=None, filename="f.bin", file_type="application/octet-stream", after=(), boundary="b0undary"):
    out = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() +
                   value.encode() + b"\r\n")
    if file is not None:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                   f"Content-Type: {file_type}\r\n\r\n".encode() + file + b"\r\n")
    for name, value in after:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() +
                   value.encode() + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def emulator(tmp_path):
    config = EmulatorConfig(data_dir=str(tmp_path / "emu"), buckets=[BUCKET], region=REGION,
                            accounts={AK: (SK, None), STS_AK: (STS_SK, STS_TOKEN)},
                            cors_origins=["https://app.example.com"], callback_timeout=2.0)
    with serve(config) as served:
        served.bucket_url = f"{served.url}/{BUCKET}"
        served.data_dir = tmp_path / "emu"
        yield served


# --- official SDKs, used only as oracles: they sign, the emulator must accept -------------------------
def recording_session():
    """A requests.Session that keeps every request it sent (method, url, headers, body as sent)."""
    import requests

    session = requests.Session()
    sent = []
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))
    return session, sent


def oss2_bucket(served, ak=AK, sk=SK, token=None, bucket=BUCKET, session=None):
    """oss2 (header signature V1, its default) pointed at the emulator; an IP endpoint makes it path-style."""
    import oss2

    auth = oss2.StsAuth(ak, sk, token) if token else oss2.Auth(ak, sk)
    oss_session = None
    if session is not None:
        oss_session = oss2.Session()
        oss_session.session = session
    return oss2.Bucket(auth, served.url, bucket, session=oss_session, connect_timeout=10)


def v2_client(served, ak=AK, sk=SK, token=None, region=REGION, session=None):
    """alibabacloud-oss-v2 (header signature V4) pointed at the emulator, path-style."""
    import alibabacloud_oss_v2 as oss
    from alibabacloud_oss_v2.transport import RequestsHttpClient

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(ak, sk, token)
    cfg.region = region
    cfg.endpoint = served.url
    cfg.use_path_style = True
    cfg.retry_max_attempts = 1
    if session is not None:
        cfg.http_client = RequestsHttpClient(session=session)
    return oss.Client(cfg)
