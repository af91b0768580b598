"""All three groups against an independent oracle: the same features written as DuckDB SQL.

The random inputs (tests/oracle/random_data.py) put rows exactly on window edges, at T, after T,
in the drop-out band, with nulls and leap-day birthdays, so off-by-one errors show up here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import DataFrame, SparkSession

from features.groups.customer_activity import customer_activity
from features.groups.customer_orders import customer_orders
from features.groups.customer_profile import customer_profile
from features.registry import all_sources
from features.transform.windows import SPARK_TYPES, snapshot
from tests.oracle import duckdb_features as oracle
from tests.oracle.random_data import as_aware_utc, load_into_duckdb, random_customers, random_events, random_orders

LOOKBACK = timedelta(days=1)
CASES = [
    (11, datetime(2026, 10, 31, tzinfo=UTC)),
    (12, datetime(2026, 3, 1, 13, 45, 7, tzinfo=UTC)),  # not midnight; the day after 28 Feb
]


def source_df(spark: SparkSession, source: str, columns: list[str], rows: list[tuple]) -> DataFrame:
    types = all_sources()[source].columns
    assert list(types) == columns
    return spark.createDataFrame(as_aware_utc(rows), ", ".join(f"{c} {t}" for c, t in types.items()))


def expected_df(spark: SparkSession, group_features: dict[str, str], rows: list[dict]) -> DataFrame:
    columns = ["customer_id", "event_time", *group_features]
    schema = ", ".join(f"{c} {group_features.get(c, 'string')}" for c in columns)
    return spark.createDataFrame([tuple(r[c] for c in columns) for r in rows], schema)


@pytest.mark.parametrize(("seed", "as_of"), CASES)
def test_all_groups_match_duckdb(spark: SparkSession, seed: int, as_of: datetime) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    inputs = {
        "clickstream": ("events", random_events(seed, as_of, lookback=LOOKBACK)),
        "orders": ("orders", random_orders(seed, as_of, lookback=LOOKBACK)),
        "customers": ("customers", random_customers(seed, as_of)),
    }
    frames = {}
    for source, (kind, (columns, rows)) in inputs.items():
        load_into_duckdb(con, kind, kind, rows)
        frames[source] = source_df(spark, source, columns, rows)
    want_rows = {
        "customer_activity": oracle.customer_activity(con, events="events", as_of=as_of, lookback=LOOKBACK),
        "customer_orders": oracle.customer_orders(con, orders="orders", as_of=as_of, lookback=LOOKBACK),
        "customer_profile": oracle.customer_profile(con, customers="customers", as_of=as_of),
    }
    for group in (customer_activity, customer_orders, customer_profile):
        types = {f.name: SPARK_TYPES[f.dtype] for f in group.features}
        got = snapshot(frames[group.source.name], group=group, as_of=as_of, dropout_lookback=LOOKBACK)
        want = expected_df(spark, types, want_rows[group.name])
        assert len(want_rows[group.name]) > 5, f"oracle produced too few {group.name} rows to mean anything"
        assert_approx_df_equality(got, want, 1e-9, ignore_row_order=True, ignore_nullable=True)
