"""Create the Tablestore record table and its two global secondary indexes (once, before deploy).

    python -m tools.tablestore_setup 'tablestore://<instance>/<table>?endpoint=https://<instance>.cn-hangzhou.ots.aliyuncs.com'

Idempotent, like the bucket setup: an existing table is described and only missing indexes are
created; a table whose primary key is not (upload_id STRING) is refused. The table: primary key
``upload_id`` (STRING); defined columns ``user``/``created_at`` (STRING, the index keys); max versions
1, no TTL (both required by secondary indexes); on-demand capacity (reserved 0/0). Indexes
``<table>_by_user`` (user, created_at, upload_id) and ``<table>_by_time`` (created_at, upload_id),
keys only. Credentials from the environment or the default chain, never arguments (the setup
identity needs ots:CreateTable, ots:CreateIndex, ots:DescribeTable on the table and its indexes).
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "shared"))

from ossdirect.store.tablestore import BY_TIME, BY_USER, INDEX_KEYS, TablestoreStore  # noqa: E402

DEFINED = [("user", "STRING"), ("created_at", "STRING")]


def index_metas(ts, table):
    return [ts.SecondaryIndexMeta(table + suffix, list(INDEX_KEYS[suffix]), [], ts.SecondaryIndexType.GLOBAL_INDEX)
            for suffix in (BY_USER, BY_TIME)]


def setup_table(store, credentials):
    """Returns {"table": "created"|"exists", "indexes_created": [...]}."""
    ts = store.sdk
    client = store.client(credentials)
    wanted = index_metas(ts, store.table)
    try:
        described = client.describe_table(store.table)
    except ts.OTSServiceError as exc:
        if exc.get_error_code() != "OTSObjectNotExist":
            raise
        meta = ts.TableMeta(store.table, [("upload_id", "STRING")], DEFINED)
        try:
            client.create_table(meta, ts.TableOptions(time_to_live=-1, max_version=1),
                                ts.ReservedThroughput(ts.CapacityUnit(0, 0)), secondary_indexes=wanted)
        except ts.OTSServiceError as race:  # another setup run won: fall through to the check
            if race.get_error_code() != "OTSObjectAlreadyExist":
                raise
            return setup_table(store, credentials)
        return {"table": "created", "indexes_created": [m.index_name for m in wanted]}
    pk = [tuple(c[:2]) for c in described.table_meta.schema_of_primary_key]
    if pk != [("upload_id", "STRING")]:
        raise SystemExit(f"table {store.table} exists with primary key {pk}, not (upload_id STRING)")
    have = {m.index_name for m in (described.secondary_indexes or [])}
    created = []
    for meta in wanted:
        if meta.index_name not in have:
            try:
                client.create_secondary_index(store.table, meta, include_base_data=True)
                created.append(meta.index_name)
            except ts.OTSServiceError as exc:
                if exc.get_error_code() != "OTSObjectAlreadyExist":
                    raise
    return {"table": "exists", "indexes_created": created}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Create the ossdirect Tablestore record table (idempotent).")
    parser.add_argument("url", help="the OSSDIRECT_RECORDS value: tablestore://<instance>/<table>?endpoint=...")
    args = parser.parse_args(argv)
    from ossdirect.oss.credentials import CredentialsUnavailable, resolve_credentials

    try:
        credentials = resolve_credentials(None, os.environ)
    except CredentialsUnavailable as exc:
        print(f"tablestore setup: no credentials ({exc})", file=sys.stderr)
        return 1
    store = TablestoreStore.from_url(args.url)
    try:
        report = setup_table(store, credentials)
    except store.sdk.OTSServiceError as exc:
        print(f"tablestore setup failed: {exc.get_http_status()} {exc.get_error_code()}: "
              f"{exc.get_error_message()}", file=sys.stderr)
        return 1
    print(f"table {store.table}: {report['table']}; indexes created: {', '.join(report['indexes_created']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
