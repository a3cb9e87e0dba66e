"""Prepare the bucket for the web client (run after `s deploy`; the local stack runs it against the emulator).

    python -m tools.bucket_setup --endpoint https://oss-cn-hangzhou.aliyuncs.com --bucket my-bucket \\
        --signature-url https://ossdirect-signature-xxxx.cn-hangzhou.fcapp.run/ --origin https://upload.example.com

Applies a CORS rule for the site's origin(s) (POST/GET/HEAD, exposing ETag, x-oss-request-id and x-oss-hash-crc64ecma), uploads
web/ with the right content types and object ACL public-read (so the bucket can stay private) plus a
config.json naming the signature URL, and sets the index document. Idempotent: unchanged files (same MD5) are not uploaded again. Uses the official oss2 SDK;
credentials come from the environment (ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN) or the
alibabacloud-credentials default chain, never from arguments.
"""

import argparse
import base64
import hashlib
import json
import mimetypes
import os
import sys
from pathlib import Path

import oss2

ROOT = Path(__file__).resolve().parent.parent
# the part CRC: the page compares each part OSS stored with what it read (web/multipart.js)
EXPOSE = ["ETag", "x-oss-request-id", "x-oss-hash-crc64ecma"]
SITE_ACL = "public-read"  # x-oss-object-acl of every published site file
TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8", ".json": "application/json",
         ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}


def content_type(name):
    suffix = Path(name).suffix.lower()
    return TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def credentials_from_runtime():
    """(key id, secret, token) from the environment, else the default credential chain."""
    key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if key_id and secret:
        return key_id, secret, os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None
    from alibabacloud_credentials.client import Client

    cred = Client().get_credential()
    return cred.get_access_key_id(), cred.get_access_key_secret(), cred.get_security_token() or None


def site_files(web_dir, signature_url, page_config=None):
    """(key, bytes, content type) for every file to publish, config.json generated (``page_config`` adds
    the page's other settings, e.g. ``{"auth": {"tokenUrl": ..., "signInUrl": ...}}``)."""
    files = []
    for path in sorted(Path(web_dir).rglob("*")):
        if path.is_file() and path.name not in ("config.json", "config.example.json"):
            key = path.relative_to(web_dir).as_posix()
            files.append((key, path.read_bytes(), content_type(key)))
    config = json.dumps(dict(page_config or {}, signatureUrl=signature_url)).encode()
    files.append(("config.json", config, "application/json"))
    return files


LIFECYCLE_RULE_ID = "ossdirect-abort-incomplete-multipart"


def abort_incomplete_multipart(bucket, prefix, days):
    """A lifecycle rule that aborts multipart uploads left unfinished under ``prefix`` after ``days`` days
    (parts cost storage until then). Other rules on the bucket are kept; ours is replaced by its id."""
    try:
        rules = [r for r in bucket.get_bucket_lifecycle().rules if r.id != LIFECYCLE_RULE_ID]
    except oss2.exceptions.NoSuchLifecycle:
        rules = []
    rules.append(oss2.models.LifecycleRule(
        LIFECYCLE_RULE_ID, prefix, status=oss2.models.LifecycleRule.ENABLED,
        abort_multipart_upload=oss2.models.AbortMultipartUpload(days=days)))
    bucket.put_bucket_lifecycle(oss2.models.BucketLifecycle(rules))


def setup_bucket(endpoint, bucket_name, credentials, web_dir, signature_url, origins, index="index.html",
                 page_config=None, prefix="uploads/", abort_incomplete_days=7):
    """Apply CORS, publish the site, set the index document. Returns {"uploaded": [...], "unchanged": [...]}."""
    key_id, secret, token = credentials
    auth = oss2.StsAuth(key_id, secret, token) if token else oss2.Auth(key_id, secret)
    bucket = oss2.Bucket(auth, endpoint, bucket_name, connect_timeout=10)
    # POST: form uploads; PUT: multipart parts (presigned URLs); ETag is exposed for both
    rule = oss2.models.CorsRule(allowed_origins=list(origins), allowed_methods=["POST", "PUT", "GET", "HEAD"],
                                allowed_headers=["*"], expose_headers=EXPOSE, max_age_seconds=600)
    bucket.put_bucket_cors(oss2.models.BucketCors([rule]))  # replaces every rule: ours is the only one
    report = {"uploaded": [], "unchanged": []}
    for key, data, ctype in site_files(web_dir, signature_url, page_config):
        md5 = hashlib.md5(data)
        try:
            current = bucket.head_object(key).etag
        except oss2.exceptions.NotFound:
            current = None
        if current and current.upper() == md5.hexdigest().upper():
            if bucket.get_object_acl(key).acl != SITE_ACL:  # published before the site files were public-read
                bucket.put_object_acl(key, SITE_ACL)
            report["unchanged"].append(key)
            continue
        # the page's own files are public-read: the bucket itself (and so every upload) can stay private
        headers = {"Content-Type": ctype, "Content-MD5": base64.b64encode(md5.digest()).decode(),
                   "x-oss-object-acl": SITE_ACL,
                   "Cache-Control": "no-cache" if key in ("index.html", "config.json") else "max-age=300"}
        bucket.put_object(key, data, headers=headers)
        report["uploaded"].append(key)
    bucket.put_bucket_website(oss2.models.BucketWebsite(index, index))
    if abort_incomplete_days:
        abort_incomplete_multipart(bucket, prefix, abort_incomplete_days)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prepare an OSS bucket to host the ossdirect web client.")
    parser.add_argument("--endpoint", required=True, help="e.g. https://oss-cn-hangzhou.aliyuncs.com")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--signature-url", required=True, help="the signature function's public URL")
    parser.add_argument("--origin", action="append", required=True, help="the site's origin (repeatable)")
    parser.add_argument("--web-dir", default=str(ROOT / "web"))
    parser.add_argument("--token-url", help="sign-in: a URL answering {\"token\": <JWT>} with the site's cookies")
    parser.add_argument("--get-token", help="sign-in: the name of a function on window that returns a token")
    parser.add_argument("--sign-in-url", help="where the page sends people who are not signed in")
    parser.add_argument("--private-files", action="store_true",
                        help="uploads are not publicly readable (a private bucket): the page shows no public "
                             "link; signed in, it downloads through the signature function's /files route")
    parser.add_argument("--prefix", default="uploads/", help="the upload prefix (OSSDIRECT_PREFIX's fixed part)")
    parser.add_argument("--abort-incomplete-days", type=int, default=7,
                        help="abort multipart uploads left unfinished this many days (0: no lifecycle rule)")
    args = parser.parse_args(argv)
    auth = {k: v for k, v in (("tokenUrl", args.token_url), ("getToken", args.get_token),
                              ("signInUrl", args.sign_in_url)) if v}
    page_config = dict({"auth": auth} if auth else {}, **({"privateFiles": True} if args.private_files else {}))
    try:
        report = setup_bucket(args.endpoint, args.bucket, credentials_from_runtime(), args.web_dir,
                              args.signature_url, args.origin, page_config=page_config or None,
                              prefix=args.prefix, abort_incomplete_days=args.abort_incomplete_days)
    except oss2.exceptions.OssError as exc:
        print(f"bucket setup failed: {exc.status} {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(f"uploaded {len(report['uploaded'])} file(s), {len(report['unchanged'])} unchanged; "
          f"CORS allows {', '.join(args.origin)}; index document set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
