"""Window aggregates on hand-typed data: every expected value below was worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from features.definitions import Aggregation, FeatureGroup, where
from features.groups.customer_activity import customer_activity
from features.groups.customer_orders import customer_orders
from features.groups.customer_profile import customer_profile
from features.sources import CLICKSTREAM, CUSTOMER
from features.transform.windows import snapshot

T = datetime(2026, 10, 31, tzinfo=UTC)
T_TEXT = "2026-10-31T00:00:00Z"
DAY = timedelta(days=1)
EVENTS = (
    "event_id string, customer_id string, session_id string, event_type string, product_id string, event_time timestamp"
)


def at(delta: timedelta) -> datetime:
    """A naive UTC datetime (the session zone is UTC) at T + delta."""
    return (T + delta).replace(tzinfo=None)


def activity_columns() -> list[str]:
    names = ["event_count", "product_view_count", "add_to_cart_count", "distinct_products_viewed", "session_count"]
    return ["customer_id", "event_time"] + [f"{n}_{w}" for n in names for w in ("1h", "1d", "7d", "30d")]


def expected(spark: SparkSession, columns: list[str], rows: list[tuple], types: dict[str, str]) -> DataFrame:
    schema = ", ".join(f"{c} {types.get(c, 'bigint')}" for c in columns)
    return spark.createDataFrame(rows, schema)


def test_activity_windows_edges_dropouts_and_distincts(spark: SparkSession) -> None:
    events = spark.createDataFrame(
        [
            ("e1", "C1", "s1", "page_view", None, at(-timedelta(hours=1))),  # exactly T-1h: in 1h
            ("e2", "C1", "s1", "product_view", "p1", at(-timedelta(minutes=30))),
            ("e3", "C1", "s1", "product_view", "p1", at(-2 * DAY)),  # out of order on purpose
            ("e4", "C1", "s2", "product_view", "p2", at(-timedelta(hours=3))),
            ("e5", "C1", "s2", "add_to_cart", "p2", at(-6 * DAY)),
            ("e6", "C1", "s3", "page_view", None, at(timedelta(0))),  # exactly T: never used
            ("e7", "C1", "s3", "search", None, at(timedelta(hours=1))),  # after T
            ("e8", "C1", "s4", "product_view", None, at(-10 * DAY)),  # a view without a product
            ("e9", "C1", "s5", "page_view", None, at(-30 * DAY)),  # exactly T-30d: in 30d
            ("e10", "C1", "s6", "page_view", None, at(-30 * DAY - timedelta(seconds=1))),
            ("e11", "C2", "s7", "page_view", None, at(-30 * DAY - timedelta(hours=12))),  # dropped out
            ("e12", "C3", "s8", "page_view", None, at(-31 * DAY - timedelta(seconds=1))),  # long gone
            ("e13", "C4", "s9", "page_view", None, at(timedelta(0))),  # only at T
        ],
        EVENTS,
    )
    got = snapshot(events, group=customer_activity, as_of=T, dropout_lookback=DAY)
    want = expected(
        spark,
        activity_columns(),
        [
            #  event_count    pv_count      atc_count     distinct_pv   sessions
            ("C1", T_TEXT, 2, 3, 5, 7, 1, 2, 3, 4, 0, 0, 1, 1, 1, 2, 2, 2, 1, 2, 2, 4),
            ("C2", T_TEXT, *([0] * 20)),
        ],
        {"customer_id": "string", "event_time": "string"},
    )
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)


def test_empty_input_gives_empty_snapshot(spark: SparkSession) -> None:
    events = spark.createDataFrame([], EVENTS)
    got = snapshot(events, group=customer_activity, as_of=T, dropout_lookback=DAY)
    assert got.columns == activity_columns()
    assert got.count() == 0


def test_non_midnight_snapshot_uses_exact_instants(spark: SparkSession) -> None:
    t = datetime(2026, 10, 30, 15, 30, tzinfo=UTC)
    events = spark.createDataFrame(
        [
            ("a", "C1", "s1", "page_view", None, datetime(2026, 10, 30, 14, 30)),  # t-1h: in
            ("b", "C1", "s1", "page_view", None, datetime(2026, 10, 30, 14, 29, 59, 999999)),  # just out of 1h
            ("c", "C1", "s1", "page_view", None, datetime(2026, 10, 29, 15, 30)),  # t-1d: in
        ],
        EVENTS,
    )
    row = snapshot(events, group=customer_activity, as_of=t, dropout_lookback=DAY).collect()[0]
    assert (row["event_time"], row["event_count_1h"], row["event_count_1d"]) == ("2026-10-30T15:30:00Z", 1, 3)


ORDERS = "order_id string, customer_id string, order_time timestamp, total_amount decimal(12,2), item_count int, status string"


def test_orders_sums_averages_maxima_and_days_since(spark: SparkSession) -> None:
    orders = spark.createDataFrame(
        [
            ("o1", "C1", at(-timedelta(hours=23)), Decimal("10.00"), 1, "completed"),  # 23h ago: 0 whole days
            ("o2", "C1", at(-7 * DAY), Decimal("30.00"), 2, "completed"),  # exactly T-7d: in 7d
            ("o3", "C1", at(-2 * DAY), Decimal("99.99"), 1, "cancelled"),
            ("o4", "C1", at(-60 * DAY), Decimal("5.50"), 1, "completed"),
            ("o5", "C1", at(timedelta(0)), Decimal("100.00"), 1, "completed"),  # at T: never used
            ("o6", "C1", at(-20 * DAY), None, 1, "completed"),  # counted, amount unknown
            ("o7", "C1", at(-3 * DAY), Decimal("7.00"), 1, "refunded"),
            ("o8", "C2", at(-200 * DAY), Decimal("12.00"), 1, "completed"),  # outside every window
            ("o9", "C3", at(-90 * DAY - timedelta(hours=12)), Decimal("3.00"), 1, "cancelled"),  # dropped out
            ("o10", "C3", at(-300 * DAY), Decimal("8.00"), 1, "completed"),
        ],
        ORDERS,
    )
    got = snapshot(orders, group=customer_orders, as_of=T, dropout_lookback=DAY)
    names = ["order_count", "order_amount_sum", "order_amount_avg", "order_amount_max", "cancelled_order_count"]
    columns = ["customer_id", "event_time"] + [f"{n}_{w}" for n in names for w in ("7d", "30d", "90d")]
    columns.append("days_since_last_order")
    doubles = {c: "double" for c in columns if "amount" in c}
    want = expected(
        spark,
        columns,
        [
            ("C1", T_TEXT, 2, 3, 4, 40.0, 40.0, 45.5, 20.0, 20.0, 45.5 / 3, 30.0, 30.0, 30.0, 1, 1, 1, 0),
            ("C3", T_TEXT, 0, 0, 0, 0.0, 0.0, 0.0, None, None, None, None, None, None, 0, 0, 0, 300),
        ],
        {"customer_id": "string", "event_time": "string", **doubles},
    )
    assert_approx_df_equality(got, want, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_profile_ages_buckets_tenure_and_future_rows(spark: SparkSession) -> None:
    customers = spark.createDataFrame(
        [
            ("C1", date(2000, 10, 31), at(-DAY + timedelta(seconds=1)), "single", True, "DE"),  # birthday today
            ("C2", date(2000, 11, 1), at(-400 * DAY), "married", False, "US"),  # birthday tomorrow
            ("C3", date(2008, 10, 31), at(-DAY), None, None, None),  # 18 today
            ("C4", date(2008, 11, 1), at(-DAY), "single", True, "FR"),  # still 17
            ("C5", date(1956, 10, 31), at(-DAY), "widowed", True, "JP"),  # 70 today
            ("C6", date(1996, 2, 29), at(-DAY), "married", False, "BR"),
            ("C7", None, None, None, None, None),
            ("C8", date(1990, 1, 1), at(timedelta(0)), "single", True, "US"),  # active from T: not yet
        ],
        "customer_id string, birth_date date, active_since timestamp, marital_status string, "
        "is_prime_member boolean, country string",
    )
    got = snapshot(customers, group=customer_profile, as_of=T, dropout_lookback=DAY)
    want = spark.createDataFrame(
        [
            ("C1", T_TEXT, 26, "18-29", 0, 1, "single", "DE"),
            ("C2", T_TEXT, 25, "18-29", 400, 0, "married", "US"),
            ("C3", T_TEXT, 18, "18-29", 1, None, None, None),
            ("C4", T_TEXT, 17, "unknown", 1, 1, "single", "FR"),
            ("C5", T_TEXT, 70, "70-plus", 1, 1, "widowed", "JP"),
            ("C6", T_TEXT, 30, "30-39", 1, 0, "married", "BR"),
            ("C7", T_TEXT, None, "unknown", None, None, None, None),
        ],
        "customer_id string, event_time string, age bigint, age_bucket string, tenure_days bigint, "
        "is_prime_member bigint, marital_status string, country string",
    )
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)


def _one_agg_group(agg: Aggregation) -> FeatureGroup:
    return FeatureGroup(
        name="probe",
        description="one aggregation",
        entity=CUSTOMER,
        source=CLICKSTREAM,
        windows=("1d",),
        aggregations=(agg,),
    )


@pytest.mark.parametrize(
    ("agg", "want"),
    [
        (Aggregation(name="n", op="count", description="d"), 3),
        (Aggregation(name="n", op="count", filter=where("event_type", "search"), description="d"), 1),
        (Aggregation(name="n", op="count_distinct", column="product_id", description="d"), 2),
        (Aggregation(name="n", op="min", column="product_id", description="d"), "p1"),
        (Aggregation(name="n", op="max", column="product_id", description="d"), "p2"),
        (Aggregation(name="n", op="last", column="product_id", description="d"), "p1"),
        (Aggregation(name="n", op="last", column="event_type", description="d"), "search"),
    ],
)
def test_each_aggregation_op(spark: SparkSession, agg: Aggregation, want: object) -> None:
    events = spark.createDataFrame(
        [
            ("a", "C1", "s1", "product_view", "p2", at(-timedelta(hours=5))),
            ("b", "C1", "s1", "search", "p1", at(-timedelta(hours=1))),  # the latest
            ("c", "C1", "s1", "product_view", None, at(-timedelta(hours=9))),
            ("d", "C1", "s1", "product_view", "p9", at(-2 * DAY)),  # outside the 1d window
        ],
        EVENTS,
    )
    got = snapshot(events, group=_one_agg_group(agg), as_of=T, dropout_lookback=DAY).collect()
    assert [row["n_1d"] for row in got] == [want]


def test_days_since_last_on_events(spark: SparkSession) -> None:
    agg = Aggregation(
        name="days_since_view", op="days_since_last", filter=where("event_type", "product_view"), description="d"
    )
    events = spark.createDataFrame(
        [
            ("a", "C1", "s1", "product_view", "p1", at(-45 * DAY - timedelta(hours=1))),
            ("b", "C1", "s1", "search", None, at(-DAY)),  # keeps C1 in the snapshot; not a view
            ("c", "C2", "s2", "search", None, at(-DAY)),
        ],
        EVENTS,
    )
    rows = snapshot(events, group=_one_agg_group(agg), as_of=T, dropout_lookback=DAY).orderBy("customer_id").collect()
    assert [(r["customer_id"], r["days_since_view"]) for r in rows] == [("C1", 45), ("C2", None)]
