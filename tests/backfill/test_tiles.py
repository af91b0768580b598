"""Tiles against the DuckDB oracle at several snapshots of a range, and the refusals.

The inputs are the oracle's nasty random data (tests/oracle/random_data.py) built around the
last snapshot T1: rows exactly on T1's window edges (which are tile and window edges of every
other snapshot too, the grid being aligned), at T1, after it, in the drop-out band. Extra rows
sit exactly on the earlier snapshots' edges.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import DataFrame, SparkSession

from features.definitions import Aggregation, FeatureGroup, where
from features.groups.customer_activity import customer_activity
from features.groups.customer_orders import customer_orders
from features.transform.tiles import (
    TileError,
    backfill_partials,
    snapshot_at,
    snapshot_times,
    tile_grid,
)
from features.transform.windows import SPARK_TYPES, window_aggregates
from tests.oracle import duckdb_features as oracle
from tests.oracle.random_data import load_into_duckdb, random_events, random_orders
from tests.test_oracle import expected_df, source_df

LOOKBACK = timedelta(days=1)
T1 = datetime(2026, 10, 31, tzinfo=UTC)


def _types(group: FeatureGroup) -> dict[str, str]:
    return {f.name: SPARK_TYPES[f.dtype] for f in group.features}


def _with_edges(rows: list[tuple], times: list[datetime], make: object) -> list[tuple]:
    """Rows exactly on each snapshot's 1h and 1d edges and 1 us before them (naive UTC)."""
    extra = []
    for n, t in enumerate(times):
        naive = t.replace(tzinfo=None)
        for m, moment in enumerate((naive - timedelta(hours=1), naive - timedelta(days=1), naive)):
            for d, shift in enumerate((timedelta(0), -timedelta(microseconds=1))):
                extra.append(make(f"{n}_{m}_{d}", moment + shift))  # type: ignore[operator]
    return rows + extra


def _check(
    spark: SparkSession,
    group: FeatureGroup,
    frame: DataFrame,
    times: list[datetime],
    indexes: list[int],
    want_rows: object,
) -> None:
    grid = tile_grid(group, times, dropout_lookback=LOOKBACK)
    partials = backfill_partials(frame, group=group, grid=grid, dropout_lookback=LOOKBACK).persist()
    try:
        for k in indexes:
            rows = want_rows(times[k])  # type: ignore[operator]
            assert len(rows) > 5, f"the oracle produced too few rows at {times[k]} to mean anything"
            got = snapshot_at(partials, group=group, grid=grid, index=k)
            want = expected_df(spark, _types(group), rows)
            assert got.columns == want.columns
            assert_approx_df_equality(got, want, 1e-9, ignore_row_order=True, ignore_nullable=True)
    finally:
        partials.unpersist()


@pytest.mark.parametrize(
    ("step", "count"),
    # 18h: the 1d window is one step plus 6h, so its counts are point columns with two intervals
    # (tiles._points) while its distinct counts are not; the 1h window is a point of the tail only.
    [(timedelta(hours=1), 30), (timedelta(days=1), 4), (timedelta(hours=18), 5)],
    ids=["1h-step", "1d-step-on-1h-tiles", "18h-step-1d-window-is-step-plus-6h"],
)
def test_activity_matches_duckdb_at_several_snapshots(spark: SparkSession, step: timedelta, count: int) -> None:
    times = snapshot_times(T1 - (count - 1) * step, T1, step)
    columns, rows = random_events(21, T1, n_events=1500, lookback=LOOKBACK)
    c = "C900000"
    rows = _with_edges(rows, times, lambda n, at: (f"X{n}", c, f"S{n}", "product_view", f"P{n[0]}", at))
    con = duckdb.connect()
    load_into_duckdb(con, "events", "events", rows)
    frame = source_df(spark, "clickstream", columns, rows)
    want = lambda t: oracle.customer_activity(con, events="events", as_of=t, lookback=LOOKBACK)
    # A customer of group 0 has rows only in T1's drop-out band: a record of zeros at T1.
    assert any(r["event_count_30d"] == 0 for r in want(T1))
    _check(spark, customer_activity, frame, times, sorted({0, 1, count // 2, count - 1}), want)


def test_orders_match_duckdb_with_lifetime_and_max(spark: SparkSession) -> None:
    step = timedelta(hours=6)  # tiles of 6h: gcd of 6h, 7d, 30d, 90d and the 1d look-back
    times = snapshot_times(T1 - 11 * step, T1, step)
    columns, rows = random_orders(22, T1, n_orders=500, lookback=LOOKBACK)
    rows = _with_edges(rows, times, lambda n, at: (f"X{n}", "C900001", at, Decimal("1.25"), 1, "completed"))
    con = duckdb.connect()
    load_into_duckdb(con, "orders", "orders", rows)
    frame = source_df(spark, "orders", columns, rows)
    want = lambda t: oracle.customer_orders(con, orders="orders", as_of=t, lookback=LOOKBACK)
    _check(spark, customer_orders, frame, times, [0, 3, 11], want)


def test_a_snapshot_where_an_entity_drops_out(spark: SparkSession) -> None:
    """Hand-typed (the group is customer_orders cut down to one window): one order at 2026-10-01T12:00 (7d window only, no look-back beyond it)."""
    group = replace(
        customer_orders,
        name="orders_7d",
        windows=("7d",),
        aggregations=(Aggregation(name="order_count", op="count", description="orders"),),
    )
    frame = spark.createDataFrame(
        [("O1", "C1", datetime(2026, 10, 1, 12, tzinfo=UTC), None, 1, "completed")],
        "order_id string, customer_id string, order_time timestamp, total_amount decimal(12,2), "
        "item_count int, status string",
    )
    times = snapshot_times(datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 11, tzinfo=UTC), timedelta(days=1))
    grid = tile_grid(group, times, dropout_lookback=LOOKBACK)
    partials = backfill_partials(frame, group=group, grid=grid, dropout_lookback=LOOKBACK)
    got = {
        times[k].day: [tuple(r) for r in snapshot_at(partials, group=group, grid=grid, index=k).collect()]
        for k in range(len(times))
    }
    # In the 7d window for T = Oct 2 .. Oct 8 (T - 7d <= 12:00 Oct 1 < T), then one record of
    # zeros on Oct 9 (the order is in the 1d look-back band: Oct 1 00:00 .. Oct 2 00:00), then gone.
    for day in range(2, 9):
        assert got[day] == [("C1", f"2026-10-{day:02d}T00:00:00Z", 1)]
    assert got[9] == [("C1", "2026-10-09T00:00:00Z", 0)]
    assert got[10] == [] and got[11] == []


def test_min_and_last_follow_the_single_snapshot_plan(spark: SparkSession) -> None:
    """No oracle covers min / last (no reference group declares them): parity with window_aggregates,
    itself checked against DuckDB, on hand-typed rows."""
    group = replace(
        customer_orders,
        name="orders_min_last",
        windows=("1d", "2d"),
        aggregations=(
            Aggregation(name="smallest", op="min", column="total_amount", description="min"),
            Aggregation(
                name="latest_items",
                op="last",
                column="item_count",
                description="last",
                filter=where("status", "completed"),
            ),
        ),
    )
    at = lambda d, h: datetime(2026, 10, d, h, tzinfo=UTC)
    frame = spark.createDataFrame(
        [
            ("O1", "C1", at(1, 0), Decimal(5), 3, "completed"),
            ("O2", "C1", at(1, 23), Decimal(2), 4, "cancelled"),
            ("O3", "C1", at(2, 0), Decimal(9), 7, "completed"),
            ("O4", "C2", at(3, 5), None, 1, "completed"),
        ],
        "order_id string, customer_id string, order_time timestamp, total_amount decimal(12,2), "
        "item_count int, status string",
    )
    times = snapshot_times(at(1, 0), at(5, 0), timedelta(hours=12))
    grid = tile_grid(group, times, dropout_lookback=LOOKBACK)
    partials = backfill_partials(frame, group=group, grid=grid, dropout_lookback=LOOKBACK).persist()
    for k, t in enumerate(times):
        want = window_aggregates(frame, group=group, as_of=t, dropout_lookback=LOOKBACK)
        got = snapshot_at(partials, group=group, grid=grid, index=k)
        assert_approx_df_equality(got, want, 1e-9, ignore_row_order=True, ignore_nullable=True)
    partials.unpersist()


def test_a_range_of_one_snapshot_matches_the_single_snapshot_plan(spark: SparkSession) -> None:
    columns, rows = random_orders(23, T1, n_orders=300, lookback=LOOKBACK)
    frame = source_df(spark, "orders", columns, rows)
    grid = tile_grid(customer_orders, [T1], dropout_lookback=LOOKBACK)
    got = snapshot_at(
        backfill_partials(frame, group=customer_orders, grid=grid, dropout_lookback=LOOKBACK),
        group=customer_orders,
        grid=grid,
        index=0,
    )
    want = window_aggregates(frame, group=customer_orders, as_of=T1, dropout_lookback=LOOKBACK)
    assert got.schema.simpleString() == want.schema.simpleString()
    assert_approx_df_equality(got, want, 1e-9, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        (T1, T1 - timedelta(days=1), timedelta(days=1), "is before --start"),
        (T1 - timedelta(days=2), T1 + timedelta(hours=5), timedelta(days=1), "use --end 2026-10-31T00:00:00Z or"),
        (T1, T1, timedelta(0), "must be a positive whole number of seconds"),
        (T1, T1, timedelta(seconds=1.5), "must be a positive whole number of seconds"),
    ],
)
def test_bad_ranges_are_refused_in_one_line(start: datetime, end: datetime, step: timedelta, message: str) -> None:
    with pytest.raises(TileError, match=message) as caught:
        snapshot_times(start, end, step)
    assert "\n" not in str(caught.value)


def test_the_tile_is_the_gcd_of_step_windows_and_lookback() -> None:
    times = snapshot_times(T1 - timedelta(days=2), T1, timedelta(days=1))
    assert tile_grid(customer_activity, times, dropout_lookback=LOOKBACK).tile == timedelta(hours=1)
    assert tile_grid(customer_orders, times, dropout_lookback=LOOKBACK).tile == timedelta(days=1)
    assert tile_grid(customer_orders, times, dropout_lookback=timedelta(hours=12)).tile == timedelta(hours=12)
