"""python -m emulator: run the OSS emulator until Ctrl-C."""

import argparse
import logging
import threading

from .app import EmulatorConfig, serve


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Local OSS emulator: PostObject + upload callback, multipart upload, OSS trigger events. "
                    "Object and bucket writes (PUT, DELETE, multipart, ?cors, ?website, ?acl) need an OSS signature "
                    "(V1 or V4, Authorization header or presigned URL) from an --account; "
                    "anonymous GET/HEAD follows the object's and the bucket's ACL (--bucket-acl). Only Host 127.0.0.1/localhost/[::1]/*.localhost with the "
                    "emulator's port is answered.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--bucket", action="append", required=True, help="repeatable")
    parser.add_argument("--region", default="cn-hangzhou")
    parser.add_argument("--account", action="append", default=[], help="KEYID:SECRET[:TOKEN], repeatable")
    parser.add_argument("--cors-origin", action="append", default=[])
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--callback-timeout", type=float, default=5.0)
    parser.add_argument("--event-target", action="append", default=[], metavar="URL",
                        help="a loopback function URL that receives the OSS trigger event (FC's OSS-trigger JSON, "
                             "POSTed) after every PostObject, PutObject and CompleteMultipartUpload; repeatable")
    parser.add_argument("--event-duplicates", type=int, default=1, metavar="N",
                        help="test mode: deliver every event N times (at-least-once delivery)")
    parser.add_argument("--event-shuffle", action="store_true",
                        help="test mode: deliver events that arrive close together in a random order")
    parser.add_argument("--callback-url", action="append", default=None, metavar="URL",
                        help="call back only this URL (scheme, host, port, path); repeatable. Without it: any "
                             "loopback URL")
    parser.add_argument("--post-origin", action="append", default=None, metavar="ORIGIN",
                        help="refuse PostObject sent with another Origin header (403 AccessForbidden); repeatable")
    parser.add_argument("--bucket-acl", choices=("private", "public-read", "public-read-write"),
                        default="public-read", help="the buckets' ACL (default public-read; PutBucketAcl changes it)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    accounts = {}
    for spec in args.account:
        parts = spec.split(":", 2)
        if len(parts) < 2:
            parser.error(f"--account {spec!r}: expected KEYID:SECRET[:TOKEN]")
        accounts[parts[0]] = (parts[1], parts[2] if len(parts) == 3 else None)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(name)s %(message)s")
    config = EmulatorConfig(data_dir=args.data_dir, buckets=args.bucket, region=args.region, accounts=accounts,
                            cors_origins=args.cors_origin, clock_offset=args.clock_offset,
                            callback_timeout=args.callback_timeout, event_targets=args.event_target,
                            event_duplicates=args.event_duplicates, event_shuffle=args.event_shuffle,
                            callback_urls=args.callback_url, post_origins=args.post_origin,
                            bucket_acl=args.bucket_acl)
    served = serve(config, args.host, args.port)
    print(f"OSS emulator at {served.url} (buckets: {', '.join(args.bucket)}); public key {served.pubkey_url}",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        served.shutdown()


if __name__ == "__main__":
    main()
