"""Naive PySpark baselines for customer_activity.

Why: a speed-up is only meaningful against what a competent engineer would
write first.  These are the two obvious shapes, written plainly and without
tricks, so the benchmark can report the pipeline's gain over them:

* ``naive_countdistinct_one_groupby``: one ``groupBy(customer_id)`` with a
  conditional sum and a ``countDistinct(when(...))`` per window and feature.
  Spark plans several ``COUNT(DISTINCT)`` columns with an ``Expand`` that
  replicates every row once per distinct expression, which is what makes this
  shape slow.
* ``naive_groupby_per_window_joined``: one filtered ``groupBy`` per window,
  joined back onto the entity set (customers with an event in
  ``[T - 30d - L, T)``) and zero-filled.

Semantics are the spec's (window ``T - w <= event_time < T``; output columns
in oracle order, counts BIGINT, ``event_time`` = T as ``yyyy-MM-ddTHH:mm:ssZ``).
They are correct under ``spark.sql.ansi.enabled=true``.  ``as_of`` must be a
timezone-aware datetime; the session time zone must be UTC if ``event_time``
is ``timestamp_ntz``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampNTZType

WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("1h", timedelta(hours=1)),
    ("1d", timedelta(days=1)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
)
FEATURES = (
    "event_count",
    "product_view_count",
    "add_to_cart_count",
    "distinct_products_viewed",
    "session_count",
)
OUTPUT_COLUMNS = ["customer_id", "event_time"] + [f"{f}_{w}" for f in FEATURES for w, _ in WINDOWS]


def _ts(events_df: DataFrame, ts: datetime) -> Column:
    """A literal comparable with ``event_time`` without a timezone surprise."""
    if ts.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    lit = F.lit(ts.astimezone(UTC))  # TimestampType: an exact instant
    if isinstance(events_df.schema["event_time"].dataType, TimestampNTZType):
        lit = lit.cast(TimestampNTZType())  # uses the (UTC) session time zone
    return lit


def _stamp(as_of: datetime) -> Column:
    return F.lit(as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _band(events_df: DataFrame, as_of: datetime, lookback: timedelta) -> DataFrame:
    t = F.col("event_time")
    start = as_of - timedelta(days=30) - lookback
    return events_df.where((t >= _ts(events_df, start)) & (t < _ts(events_df, as_of)))


def naive_countdistinct_one_groupby(events_df: DataFrame, as_of: datetime, lookback: timedelta) -> DataFrame:
    """One groupBy over the band; every window is a condition inside the aggregates."""
    band = _band(events_df, as_of, lookback)
    in_w = {w: F.col("event_time") >= _ts(events_df, as_of - d) for w, d in WINDOWS}
    is_pv = F.col("event_type") == "product_view"
    is_atc = F.col("event_type") == "add_to_cart"
    aggs: list[Column] = []
    for w, _ in WINDOWS:
        aggs.append(F.sum(F.when(in_w[w], 1).otherwise(0)).alias(f"event_count_{w}"))
    for w, _ in WINDOWS:
        aggs.append(F.sum(F.when(in_w[w] & is_pv, 1).otherwise(0)).alias(f"product_view_count_{w}"))
    for w, _ in WINDOWS:
        aggs.append(F.sum(F.when(in_w[w] & is_atc, 1).otherwise(0)).alias(f"add_to_cart_count_{w}"))
    for w, _ in WINDOWS:
        # when() without otherwise() is NULL outside the window; NULLs are
        # not counted, and neither are NULL product_ids.
        aggs.append(
            F.countDistinct(F.when(in_w[w] & is_pv, F.col("product_id"))).alias(f"distinct_products_viewed_{w}")
        )
    for w, _ in WINDOWS:
        aggs.append(F.countDistinct(F.when(in_w[w], F.col("session_id"))).alias(f"session_count_{w}"))
    out = band.groupBy("customer_id").agg(*aggs)
    return out.select(
        "customer_id",
        _stamp(as_of).alias("event_time"),
        *[F.col(c).cast("bigint").alias(c) for c in OUTPUT_COLUMNS[2:]],
    )


def naive_groupby_per_window_joined(events_df: DataFrame, as_of: datetime, lookback: timedelta) -> DataFrame:
    """One filtered groupBy per window, LEFT JOINed onto the band's customers."""
    entities = _band(events_df, as_of, lookback).select("customer_id").distinct()
    t = F.col("event_time")
    is_pv = F.col("event_type") == "product_view"
    is_atc = F.col("event_type") == "add_to_cart"
    result = entities
    for w, d in WINDOWS:
        in_window = events_df.where((t >= _ts(events_df, as_of - d)) & (t < _ts(events_df, as_of)))
        per_w = in_window.groupBy("customer_id").agg(
            F.count(F.lit(1)).alias(f"event_count_{w}"),
            F.sum(F.when(is_pv, 1).otherwise(0)).alias(f"product_view_count_{w}"),
            F.sum(F.when(is_atc, 1).otherwise(0)).alias(f"add_to_cart_count_{w}"),
            F.countDistinct(F.when(is_pv, F.col("product_id"))).alias(f"distinct_products_viewed_{w}"),
            F.countDistinct("session_id").alias(f"session_count_{w}"),
        )
        result = result.join(per_w, on="customer_id", how="left")
    return result.select(
        "customer_id",
        _stamp(as_of).alias("event_time"),
        *[F.coalesce(F.col(c), F.lit(0)).cast("bigint").alias(c) for c in OUTPUT_COLUMNS[2:]],
    )
