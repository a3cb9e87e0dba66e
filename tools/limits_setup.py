"""Create the Tablestore table for abuse limits (once, before deploy; idempotent).

    OSSDIRECT_USER_LIMITS=forms=20,window=3600 \\
    python -m tools.limits_setup \\
        'tablestore://<instance>/<table>?endpoint=https://<instance>.cn-hangzhou.ots.aliyuncs.com'

Without the URL argument, ``OSSDIRECT_LIMITS_STORE`` is used. The table: primary key
``subject`` (STRING) + ``window_start`` (INTEGER); max versions 1; on-demand capacity (reserved 0/0);
a TTL that removes ended windows: ``max(86400, window + 600)`` seconds (86400 is the service's
minimum, and a row must outlive its window). An existing table is described and checked: a
different primary key is refused, and so is a TTL shorter than the window (rows would expire while
their window still counts; raise it in the console or with UpdateTable). A sqlite:/// store needs
no setup (the file and table are created on first use). With a ``stored=`` quota, a second table
``<table>_held`` (same primary key, no TTL: held bytes never expire) holds each user's stored bytes.

Credentials from the environment or the default chain, never arguments (the setup identity needs
ots:CreateTable and ots:DescribeTable on the table).
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "shared"))

from ossdirect.core.limits import TTL_MIN  # noqa: E402
from ossdirect.store.allowances import TablestoreAllowances  # noqa: E402

TTL_MARGIN = 600


def wanted_ttl(window):
    return max(TTL_MIN, window + TTL_MARGIN)


class SetupRefused(Exception):
    pass


def setup_limits_table(limiter, credentials):
    """Returns {"table": "created"|"exists", "ttl": seconds} (and "held": "created"|"exists" with a
    ``stored=`` quota); raises SetupRefused on a wrong table."""
    report = _setup_table(limiter, credentials, limiter.table, wanted_ttl(limiter.window))
    if limiter.settings.stored is not None:
        report["held"] = _setup_table(limiter, credentials, limiter.store.holdings_table, -1)["table"]
    return report


def _setup_table(limiter, credentials, table, ttl):
    ts = limiter.store.sdk
    client = limiter.client(credentials)
    try:
        described = client.describe_table(table)
    except ts.OTSServiceError as exc:
        if exc.get_error_code() != "OTSObjectNotExist":
            raise
        meta = ts.TableMeta(table, list(TablestoreAllowances.PK))
        try:
            client.create_table(meta, ts.TableOptions(time_to_live=ttl, max_version=1),
                                ts.ReservedThroughput(ts.CapacityUnit(0, 0)))
        except ts.OTSServiceError as race:  # another setup run won: check what it made
            if race.get_error_code() != "OTSObjectAlreadyExist":
                raise
            return _setup_table(limiter, credentials, table, ttl)
        return {"table": "created", "ttl": ttl}
    pk = [tuple(c[:2]) for c in described.table_meta.schema_of_primary_key]
    if pk != [tuple(c) for c in TablestoreAllowances.PK]:
        raise SetupRefused(f"table {table} exists with primary key {pk}, not (subject STRING, window_start INTEGER)")
    have = described.table_options.time_to_live
    if ttl == -1 and have != -1:
        raise SetupRefused(f"table {table} has a TTL of {have} s: held bytes would expire (set it to -1)")
    if have != -1 and have < limiter.window + 60:
        raise SetupRefused(f"table {table} has a TTL of {have} s, shorter than the {limiter.window} s window: "
                           f"rows would expire while they still count (raise it to {ttl})")
    return {"table": "exists", "ttl": have}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Create the ossdirect limits table in Tablestore (idempotent).")
    parser.add_argument("url", nargs="?", help="the OSSDIRECT_LIMITS_STORE value (default: that variable)")
    args = parser.parse_args(argv)
    from ossdirect.settings import ConfigError
    from ossdirect.oss.credentials import CredentialsUnavailable, resolve_credentials
    from ossdirect.core.limits import LimitStoreError, load_limit_settings, open_limiter

    env = dict(os.environ)
    if args.url:
        env["OSSDIRECT_LIMITS_STORE"] = args.url
    try:
        settings = load_limit_settings(env)
        if settings is None:  # the window decides the TTL; without limits, the default window
            settings = load_limit_settings(dict(env, OSSDIRECT_USER_LIMITS="forms=1"))
    except ConfigError as exc:
        print(f"limits setup: {exc}", file=sys.stderr)
        return 2
    if not settings.store.startswith("tablestore://"):
        print(f"limits setup: {settings.store} needs no setup (created on first use)")
        return 0
    try:
        credentials = resolve_credentials(None, os.environ)
    except CredentialsUnavailable as exc:
        print(f"limits setup: no credentials ({exc})", file=sys.stderr)
        return 1
    try:
        limiter = open_limiter(settings)
    except LimitStoreError as exc:
        print(f"limits setup failed: {exc}", file=sys.stderr)
        return 1
    ts = limiter.store.sdk
    try:
        report = setup_limits_table(limiter, credentials)
    except (LimitStoreError, SetupRefused) as exc:
        print(f"limits setup failed: {exc}", file=sys.stderr)
        return 1
    except ts.OTSServiceError as exc:
        print(f"limits setup failed: {exc.get_http_status()} {exc.get_error_code()}: "
              f"{exc.get_error_message()}", file=sys.stderr)
        return 1
    except ts.OTSClientError as exc:
        print(f"limits setup failed: {exc.get_error_message()}", file=sys.stderr)
        return 1
    print(f"limits table {limiter.table}: {report['table']} (TTL {report['ttl']} s)")
    if "held" in report:
        print(f"stored-bytes table {limiter.store.holdings_table}: {report['held']} (no TTL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
