"""The signature handler (FC3 event → signed form) vs boto3's generate_presigned_post."""

import json

from bench.common import SIG_ENV, STS, Benchmark, compare, met


def bench_signature(n):
    from ossdirect.handlers import SignatureApp

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


def row(s):
    return (f"| signature handler (FC3 event → form, hints + callback) | {s['ours']['per_s']:,.0f} req/s, "
            f"p50 {s['ours']['p50_ms']:.3f} ms, p99 {s['ours']['p99_ms']:.3f} ms | boto3 generate_presigned_post "
            f"{s['boto3']['per_s']:,.0f} req/s | {s['ratio']:.1f}× | ≥ 5× | {met(s['ratio'] >= 5)} |")


BENCHMARKS = [Benchmark("signature", lambda args: bench_signature(2000 if args.quick else 10000), row)]
