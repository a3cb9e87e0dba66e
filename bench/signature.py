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


def bench_part_signing(n, batch=8):
    """The part-signing routes through the handler, as FC calls it (an FC3 event: the SQLite session lookup,
    the presigned UploadPart URLs bound to each part's size, the JSON answer) per part, next to boto3's
    ``generate_presigned_url("upload_part")`` per part, in the same run. ``batch`` parts per request is
    what the web client asks (2 × its 4 streams); one part per request is Uppy's ``signPart``, measured
    both as it mostly runs (the session read by this instance less than SESSION_CACHE_SECONDS ago) and
    with the session read from SQLite every time (the first request of an upload on an instance)."""
    import tempfile
    import time

    import boto3

    from ossdirect.app.handlers import SignatureApp
    from ossdirect.core.multipart import UPLOADING
    from ossdirect.store import new_record_id
    from ossdirect.store.sqlite import SqliteStore

    size = 1 << 30  # 128 parts of 8 MiB
    with tempfile.TemporaryDirectory() as tmp:
        app = SignatureApp(dict(SIG_ENV, OSSDIRECT_RECORDS=f"sqlite:///{tmp}/r.sqlite3", OSSDIRECT_MAX_BYTES=str(size)))
        upload_id, key, oss_id = "b" * 32, "uploads/" + "b" * 32 + ".bin", "0004B9894A22E5B1888A1E29F823" + "0" * 4
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())  # as records write it; fresh: not touched
        SqliteStore(f"{tmp}/r.sqlite3").put({
            "record_id": new_record_id(), "upload_id": upload_id, "bucket": SIG_ENV["OSSDIRECT_BUCKET"], "key": key,
            "size": size, "content_type": "application/octet-stream", "filename": "big.bin", "created_at": now,
            "source": "multipart", "status": UPLOADING, "user": None, "payload": None, "multipart_id": oss_id,
            "client_ip": "203.0.113.7", "updated_at": now})

        def event(path, query):
            return json.dumps({"version": "v1", "rawPath": path, "headers": {}, "body": "", "isBase64Encoded": False,
                               "queryParameters": dict(query, key=key, upload_id=upload_id),
                               "requestContext": {"http": {"method": "GET", "path": path, "sourceIp": "203.0.113.7"}}}
                              ).encode()

        batched = event(f"/multipart/{oss_id}/parts", {"partNumbers": ",".join(str(i) for i in range(1, batch + 1))})
        single = event(f"/multipart/{oss_id}/3", {})
        answer = app(batched, STS)
        assert answer["statusCode"] == 200 and len(json.loads(answer["body"])["presignedUrls"]) == batch, answer
        assert app(single, STS)["statusCode"] == 200

        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret",
                          aws_session_token="bench-token-" + "x" * 400)
        parts = iter(range(10 ** 9))

        def presign():
            s3.generate_presigned_url("upload_part", Params={"Bucket": "bench-bucket", "Key": key, "UploadId": oss_id,
                                                              "PartNumber": next(parts) % 10000 + 1}, ExpiresIn=900)

        presign()

        def per_part(out, count):  # a request signs ``count`` parts: its rate times count
            out["ours"]["parts_per_s"] = out["ours"]["per_s"] * count
            out["ratio"] = out["ours"]["parts_per_s"] / out["peer"]["per_s"]
            out["boto3"] = out.pop("peer")
            return out

        many = per_part(compare(lambda: app(batched, STS), presign, n), batch)
        one = per_part(compare(lambda: app(single, STS), presign, n), 1)
        remembered = app.multipart._sessions

        def unremembered():
            remembered.clear()
            return app(single, STS)

        one["read_every_time"] = {k: v for k, v in timed_loop(unremembered, n // 5).items() if k != "_lat"}
    return {"batch": batch, "batched": many, "single": one}


def row(s):
    return (f"| signature handler (FC3 event → form, hints + callback) | {s['ours']['per_s']:,.0f} req/s, "
            f"p50 {s['ours']['p50_ms']:.3f} ms, p99 {s['ours']['p99_ms']:.3f} ms | boto3 generate_presigned_post "
            f"{s['boto3']['per_s']:,.0f} req/s | {s['ratio']:.1f}× | ≥ 4× | {met(s['ratio'] >= 4)} |")


def jwt_row(s):
    added_us = (1 / s["jwt"]["per_s"] - 1 / s["none"]["per_s"]) * 1e6
    new = s["new_token"]
    return (f"| signature handler signed in (RS256 JWT, cached key, `uploads/{{sub}}/`; the same token again, as a "
            f"browser sends it) | {s['jwt']['per_s']:,.0f} req/s, p99 {s['jwt']['p99_ms']:.3f} ms; a token not seen "
            f"before {new['per_s']:,.0f} req/s, p50 {new['p50_ms']:.3f} ms | same handler, `OSSDIRECT_AUTH=none` "
            f"{s['none']['per_s']:,.0f} req/s | {s['ratio']:.0%} (+{added_us:.0f} µs) | — | — |")


def parts_row(s):
    many, one = s["batched"], s["single"]
    return (f"| part signing through the handler (FC3 event → session lookup → presigned UploadPart URLs) | "
            f"{many['ours']['parts_per_s']:,.0f} parts/s ({s['batch']} a request, the web client's batch; "
            f"p50 {many['ours']['p50_ms']:.3f} ms); one a request (Uppy signPart) "
            f"{one['ours']['parts_per_s']:,.0f}/s (the session read from SQLite each time "
            f"{one['read_every_time']['per_s']:,.0f}/s) | "
            f"boto3 generate_presigned_url upload_part {many['boto3']['per_s']:,.0f}/s | {many['ratio']:.1f}× "
            f"(one a request {one['ratio']:.1f}×) | ≥ 3× per part | {met(many['ratio'] >= 3)} |")


BENCHMARKS = [Benchmark("signature", lambda args: bench_signature(2000 if args.quick else 10000), row),
              Benchmark("part_signing", lambda args: bench_part_signing(1000 if args.quick else 5000), parts_row),
              Benchmark("signature_jwt", lambda args: bench_signature_jwt(1000 if args.quick else 5000), jwt_row)]
