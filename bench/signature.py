"""The signature handler (FC3 event → signed form) vs boto3's generate_presigned_post."""

import json

from bench.common import SIG_ENV, STS, Benchmark, compare, met, timed_loop


def bench_signature(n):
    from ossdirect.app.handlers import SignatureApp

    app = SignatureApp(dict(SIG_ENV))
    event = json.dumps({"version": "v1", "rawPath": "/", "headers": {"Origin": ""},
                        "queryParameters": {"filename": "photo.jpg", "size": "123456", "content_type": "image/jpeg"},
                        "body": "", "isBase64Encoded": False,
                        "requestContext": {"http": {"method": "GET", "path": "/"}}}).encode()
    assert app(event, STS)["statusCode"] == 200

    import boto3

    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret",
                      aws_session_token="bench-token-" + "x" * 400)

    def presign():
        s3.generate_presigned_post(
            "bench-bucket", "uploads/abc.jpg",
            Fields={"Content-Type": "image/jpeg", "x-amz-meta-upload-id": "u"},
            Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 123456, 123456],
                        {"x-amz-meta-upload-id": "u"}],
            ExpiresIn=300)

    presign()
    out = compare(lambda: app(event, STS), presign, n)
    out["boto3"] = out.pop("peer")
    return out


def signed_in_env():
    """OSSDIRECT_AUTH=jwt with an RS256 PEM key (cached: no JWKS fetch on the hot path) and per-user folders."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    env = dict(SIG_ENV, OSSDIRECT_AUTH="jwt", OSSDIRECT_JWT_PUBLIC_KEY=pem, OSSDIRECT_JWT_ISSUER="https://id.example/",
               OSSDIRECT_JWT_AUDIENCE="bench", OSSDIRECT_PREFIX="uploads/{sub}/")
    return env, key


def bench_signature_jwt(n):
    import time

    import jwt

    from ossdirect.app.handlers import SignatureApp

    env, key = signed_in_env()
    token = jwt.encode({"sub": "user-42", "iss": "https://id.example/", "aud": "bench",
                        "exp": int(time.time()) + 3600}, key, algorithm="RS256")
    query = {"filename": "photo.jpg", "size": "123456", "content_type": "image/jpeg"}

    def event(headers):
        return json.dumps({"version": "v1", "rawPath": "/", "headers": headers, "queryParameters": query,
                           "body": "", "isBase64Encoded": False,
                           "requestContext": {"http": {"method": "GET", "path": "/"}}}).encode()

    signed_in, anonymous = SignatureApp(env), SignatureApp(dict(SIG_ENV))
    with_token, without = event({"Authorization": f"Bearer {token}"}), event({})
    assert signed_in(with_token, STS)["statusCode"] == 200 and anonymous(without, STS)["statusCode"] == 200
    out = compare(lambda: signed_in(with_token, STS), lambda: anonymous(without, STS), n)
    out["jwt"], out["none"] = out.pop("ours"), out.pop("peer")
    # A token the instance has not seen yet (the first request of each sign-in): the RS256 check itself.
    fresh = iter([event({"Authorization": "Bearer " + jwt.encode(
        {"sub": f"user-{i}", "iss": "https://id.example/", "aud": "bench", "exp": int(time.time()) + 3600}, key,
        algorithm="RS256")}) for i in range(n // 5 + 2)])
    out["new_token"] = timed_loop(lambda: signed_in(next(fresh), STS), n // 5)
    return out


def row(s):
    return (f"| signature handler (FC3 event → form, hints + callback) | {s['ours']['per_s']:,.0f} req/s, "
            f"p50 {s['ours']['p50_ms']:.3f} ms, p99 {s['ours']['p99_ms']:.3f} ms | boto3 generate_presigned_post "
            f"{s['boto3']['per_s']:,.0f} req/s | {s['ratio']:.1f}× | ≥ 3× | {met(s['ratio'] >= 3)} |")


def jwt_row(s):
    added_us = (1 / s["jwt"]["per_s"] - 1 / s["none"]["per_s"]) * 1e6
    new = s["new_token"]
    return (f"| signature handler signed in (RS256 JWT, cached key, `uploads/{{sub}}/`; the same token again, as a "
            f"browser sends it) | {s['jwt']['per_s']:,.0f} req/s, p99 {s['jwt']['p99_ms']:.3f} ms; a token not seen "
            f"before {new['per_s']:,.0f} req/s, p50 {new['p50_ms']:.3f} ms | same handler, `OSSDIRECT_AUTH=none` "
            f"{s['none']['per_s']:,.0f} req/s | {s['ratio']:.0%} (+{added_us:.0f} µs) | — | — |")


BENCHMARKS = [Benchmark("signature", lambda args: bench_signature(2000 if args.quick else 10000), row),
              Benchmark("signature_jwt", lambda args: bench_signature_jwt(1000 if args.quick else 5000), jwt_row)]
