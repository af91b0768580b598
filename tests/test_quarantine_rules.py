"""Quarantine rules, rule by rule, on hand-typed rows: each row next to the reason it must get.

Most tests judge ``ITEMS``, a small source with one column per kind of rule, whose raw rows are
all text (as the JSON reader produces them). Columns are judged in the order they are declared,
and the rules in the order docs/inputs.md lists them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from chispa import assert_column_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.constants import CORRUPT_RECORD, FILE_ERROR, INPUT_FILE
from features.definitions import Source
from features.sources import CLICKSTREAM, ORDERS
from features.transform.quarantine import parsed, quarantine_reason

ITEMS = Source(
    name="items",
    description="One column per kind of rule.",
    columns={"id": "string", "kind": "string", "qty": "int", "price": "double", "at": "timestamp"},
    key="id",
    timestamp="at",
    required=("id", "at"),
    allowed_values={"kind": ("a", "b")},
    max_lengths={"id": 8},
    patterns={"id": r"[a-z0-9]+"},
    ranges={"price": (0.0, 100.0)},
)
#: Raw ITEMS rows as the JSON reader gives them, and the reason each must get.
TEXT = "id string, kind string, qty string, price string, at string, _corrupt_record string, expected string"
AT = "2026-10-15T10:00:00Z"


def judged(
    spark: SparkSession,
    source: Source,
    rows: list[tuple[Any, ...]],
    ddl: str,
    fill: Mapping[str, str | None] | None = None,
    *,
    future_tolerance: timedelta | None = None,
) -> DataFrame:
    """``rows`` with their ``reason``; ``fill`` holds the raw text columns the rows leave out."""
    df = spark.createDataFrame(rows, ddl)
    df = df.select("*", *(F.lit(value).cast("string").alias(column) for column, value in (fill or {}).items()))
    return df.withColumn("reason", quarantine_reason(source, df.schema, future_tolerance=future_tolerance))


def check(spark: SparkSession, rows: list[tuple[Any, ...]], ddl: str = TEXT) -> None:
    """``ITEMS`` rows, each judged as its ``expected`` column says."""
    assert_column_equality(judged(spark, ITEMS, rows, ddl), "reason", "expected")


def test_usable_rows_have_no_reason(spark: SparkSession) -> None:
    check(
        spark,
        [
            ("a1", "a", "3", "9.5", AT, None, None),
            ("a1", None, None, None, AT, None, None),  # optional columns may be null
            ("abcdefgh", "b", " 7 ", " 100 ", "2026-10-15 12:00:00.123456+02:00", None, None),
        ],
    )


def test_null_or_blank_required_value(spark: SparkSession) -> None:
    check(
        spark,
        [
            (None, "a", "3", "9.5", AT, None, "null id"),
            ("", "a", "3", "9.5", AT, None, "null id"),
            ("   ", "a", "3", "9.5", AT, None, "null id"),
            ("a1", "a", "3", "9.5", None, None, "null at"),
            ("a1", "a", "3", "9.5", "  ", None, "null at"),
            # Blank means spaces only: a tab is a value, judged by the pattern.
            ("\t", "a", "3", "9.5", AT, None, "invalid id"),
        ],
    )


def test_oversized_string(spark: SparkSession) -> None:
    check(
        spark,
        [
            ("abcdefgh", "a", "3", "9.5", AT, None, None),  # exactly max_lengths["id"]
            ("abcdefghi", "a", "3", "9.5", AT, None, "oversized id"),
            ("a1", "x" * 256, "3", "9.5", AT, None, "unknown kind"),  # the default limit, 256
            ("a1", "x" * 257, "3", "9.5", AT, None, "oversized kind"),
            ("a1", "a", "3", "9.5", AT + " " * 237, None, "oversized at"),  # typed columns too, as text
        ],
    )


def test_invalid_pattern(spark: SparkSession) -> None:
    check(
        spark,
        [
            ("A1", "a", "3", "9.5", AT, None, "invalid id"),
            ("a-1", "a", "3", "9.5", AT, None, "invalid id"),
            (" a1", "a", "3", "9.5", AT, None, "invalid id"),
            ("a1\n", "a", "3", "9.5", AT, None, "invalid id"),  # \z, not $: a trailing newline is no match
            ("é1", "a", "3", "9.5", AT, None, "invalid id"),
            ('["a1"]', "a", "3", "9.5", AT, None, "invalid id"),
        ],
    )


def test_unparseable_typed_value(spark: SparkSession) -> None:
    check(
        spark,
        [
            ("a1", "a", "three", "9.5", AT, None, "unparseable qty"),
            ("a1", "a", "1.5", "9.5", AT, None, "unparseable qty"),
            ("a1", "a", "", "9.5", AT, None, "unparseable qty"),  # blank is not null in an optional column
            ("a1", "a", "3", "cheap", AT, None, "unparseable price"),
            ("a1", "a", "3", "9.5", "yesterday", None, "unparseable at"),
            ("a1", "a", "3", "9.5", "2026-13-15T10:00:00Z", None, "unparseable at"),
            ("a1", "a", "3", "9.5", "1760000000", None, "unparseable at"),
            ("a1", "a", "3", "9.5", '{"a": 1}', None, "unparseable at"),
        ],
    )


def test_timestamp_without_zone_is_unparseable(spark: SparkSession) -> None:
    check(
        spark,
        [
            ("a1", "a", "3", "9.5", "2026-10-15T10:00:00", None, "unparseable at"),
            ("a1", "a", "3", "9.5", "2026-10-15 10:00:00", None, "unparseable at"),
            ("a1", "a", "3", "9.5", "2026-10-15", None, "unparseable at"),
            ("a1", "a", "3", "9.5", " 2026-10-15T10:00:00Z", None, "unparseable at"),
            ("a1", "a", "3", "9.5", "2026-10-15T10:00:00+0200", None, None),
            ("a1", "a", "3", "9.5", "2026-10-15T10:00:00-02:00", None, None),
            ("a1", "a", "3", "9.5", "2026-10-15T10:00:00.123456789Z", None, None),
            ("a1", "a", "3", "9.5", AT + " ", None, "unparseable at"),
            # Accepted as it stands: ISO_8601_WITH_ZONE ends in $, which Java also matches before a
            # final newline, and the cast trims it (patterns use \z and reject this).
            ("a1", "a", "3", "9.5", AT + "\n", None, None),
        ],
    )


def test_out_of_range_number(spark: SparkSession) -> None:
    check(
        spark,
        [
            ("a1", "a", "3", "0", AT, None, None),
            ("a1", "a", "3", "100", AT, None, None),  # bounds are inclusive
            ("a1", "a", "3", "-0.01", AT, None, "out of range price"),
            ("a1", "a", "3", "100.01", AT, None, "out of range price"),
            ("a1", "a", "3", "1e3", AT, None, "out of range price"),
            ("a1", "a", "3", "NaN", AT, None, "out of range price"),
            ("a1", "a", "3", " NaN ", AT, None, "out of range price"),
            ("a1", "a", "3", "Infinity", AT, None, "out of range price"),
            ("a1", "a", "3", "-Infinity", AT, None, "out of range price"),
            ("a1", "a", "3", "inf", AT, None, "out of range price"),
        ],
    )


def test_out_of_range_amount_is_judged_before_the_decimal_type(spark: SparkSession) -> None:
    """ORDERS: NaN and 1e15 are out of range, not unparseable by decimal(12,2)."""
    rows = [
        ("12.34", "1", None),
        ("1000000000", "0", None),
        ("NaN", "1", "out of range total_amount"),
        ("-Infinity", "1", "out of range total_amount"),
        ("-5", "1", "out of range total_amount"),
        ("2e9", "1", "out of range total_amount"),
        ("1e15", "1", "out of range total_amount"),
        ("12.34", "-1", "out of range item_count"),  # a lower bound only
        ("12.34", "1e3", "unparseable item_count"),  # in range as a double, not an int
    ]
    df = judged(
        spark,
        ORDERS,
        rows,
        "total_amount string, item_count string, expected string",
        {"order_id": "o1", "customer_id": "C1", "order_time": AT, "status": "completed", CORRUPT_RECORD: None},
    )
    assert_column_equality(df, "reason", "expected")


def test_out_of_range_timestamp(spark: SparkSession) -> None:
    check(
        spark,
        [
            ("a1", "a", "3", "9.5", "1970-01-01T00:00:00Z", None, None),
            ("a1", "a", "3", "9.5", "2099-12-31T23:59:59.999999Z", None, None),
            ("a1", "a", "3", "9.5", "1969-12-31T23:59:59Z", None, "out of range at"),
            ("a1", "a", "3", "9.5", "1970-01-01T00:30:00+01:00", None, "out of range at"),  # 1969 in UTC
            ("a1", "a", "3", "9.5", "2100-01-01T00:00:00Z", None, "out of range at"),  # the end is exclusive
            ("a1", "a", "3", "9.5", "0001-01-01T00:00:00Z", None, "out of range at"),
            ("a1", "a", "3", "9.5", "9999-12-31T23:59:59Z", None, "out of range at"),
        ],
    )


def test_unknown_category(spark: SparkSession) -> None:
    check(
        spark,
        [
            ("a1", "b", "3", "9.5", AT, None, None),
            ("a1", "c", "3", "9.5", AT, None, "unknown kind"),
            ("a1", "A", "3", "9.5", AT, None, "unknown kind"),
            ("a1", " a", "3", "9.5", AT, None, "unknown kind"),  # not trimmed
            ("a1", "", "3", "9.5", AT, None, "unknown kind"),
        ],
    )


#: The CLICKSTREAM columns the future tests keep constant.
EVENT: dict[str, str | None] = {
    "event_id": "e1",
    "customer_id": "C1",
    "session_id": "s1",
    "product_id": None,
    CORRUPT_RECORD: None,
}
DAY = "file:/data/events/dt=2026-10-15/part-0.json"
NESTED = "s3a://b/events/dt=2026-10-15/sub/part-0.json"


def test_future_rule_is_judged_against_the_dt_of_the_input_file(spark: SparkSession) -> None:
    rows = [  # event_time, _input_file, event_type, expected
        ("2026-10-15T10:00:00Z", DAY, "page_view", None),
        ("2026-10-01T00:00:00Z", DAY, "page_view", None),  # late arrivals are fine
        ("2026-10-16T01:00:00Z", DAY, "page_view", None),  # end of the dt day plus 1 h, exactly
        ("2026-10-16T01:00:00.000001Z", DAY, "page_view", "event_time in the future"),
        ("2026-10-16T03:00:01+02:00", DAY, "page_view", "event_time in the future"),
        ("2027-01-01T00:00:00Z", DAY, "page_view", "event_time in the future"),
        ("2027-01-01T00:00:00Z", NESTED, "page_view", "event_time in the future"),
        ("2027-01-01T00:00:00Z", "s3a://b/events/dt=2026-12-31/part-0.json", "page_view", None),
        ("2027-01-01T00:00:00Z", DAY, "purchase", "unknown event_type"),  # the last rule
    ]
    df = judged(
        spark,
        CLICKSTREAM,
        rows,
        f"event_time string, {INPUT_FILE} string, event_type string, expected string",
        EVENT,
        future_tolerance=timedelta(hours=1),
    )
    assert_column_equality(df, "reason", "expected")


def test_future_rule_needs_a_tolerance_and_an_input_file(spark: SparkSession) -> None:
    future = "2027-01-01T00:00:00Z"
    no_tolerance = judged(
        spark,
        CLICKSTREAM,
        [(future, DAY, None)],
        f"event_time string, {INPUT_FILE} string, expected string",
        {**EVENT, "event_type": "page_view"},
    )
    no_file = judged(  # a table extract: no arrival day
        spark,
        CLICKSTREAM,
        [(future, None)],
        "event_time string, expected string",
        {**EVENT, "event_type": "page_view"},
        future_tolerance=timedelta(0),
    )
    for df in (no_tolerance, no_file):
        assert_column_equality(df, "reason", "expected")


def test_corrupt_file_then_corrupt_record_come_first(spark: SparkSession) -> None:
    rows = [
        (None, None, None, None, None, None, "boom", "corrupt file"),
        (None, None, None, None, None, "{broken", None, "unparseable record"),
        (None, None, None, None, None, "{broken", "boom", "corrupt file"),
        ("A1", "c", "x", "NaN", "never", "{broken", None, "unparseable record"),
        ("a1", "a", "3", "9.5", AT, None, None, None),
    ]
    df = judged(spark, ITEMS, rows, TEXT.replace(", expected", f", {FILE_ERROR} string, expected"))
    assert_column_equality(df, "reason", "expected")


def test_a_row_breaking_two_rules_gets_the_earlier(spark: SparkSession) -> None:
    check(
        spark,
        [
            (None, "a", "3", "9.5", None, None, "null id"),  # null id, null at
            ("a1", "a", "3", "9.5", None, None, "null at"),  # null at
            ("ABCDEFGHIJ", "a", "3", "9.5", " ", None, "null at"),  # null at, oversized id, invalid id
            ("ABCDEFGHIJ", "a", "3", "9.5", AT, None, "oversized id"),  # oversized id, invalid id
            ("A1", "c", "x", "NaN", "never", None, "invalid id"),  # then every column rule
            ("a1", "c", "x", "NaN", "never", None, "unparseable qty"),  # qty is declared before price
            ("a1", "c", "3", "NaN", "never", None, "out of range price"),  # price before at
            ("a1", "c", "3", "9.5", "never", None, "unparseable at"),
            ("a1", "c", "3", "9.5", "1969-12-31T23:59:59Z", None, "out of range at"),
            ("a1", "c", "3", "9.5", AT, None, "unknown kind"),
        ],
    )


def test_typed_raw_columns_are_not_judged_as_text(spark: SparkSession) -> None:
    """A reader that typed a column (JDBC, a table export): null only, never blank or oversized."""
    at = datetime(2026, 10, 15, 10, tzinfo=UTC)
    check(
        spark,
        [
            ("a1", "a", 3, 9.5, at, None, None),
            ("a1", "a", None, None, at, None, None),
            ("a1", "a", 3, math.nan, at, None, "out of range price"),
            ("a1", "a", 3, math.inf, at, None, "out of range price"),
            ("a1", "a", 3, -1.0, at, None, "out of range price"),
            ("a1", "a", 3, 9.5, None, None, "null at"),
            ("a1", "a", 3, 9.5, datetime(1969, 12, 31, tzinfo=UTC), None, "out of range at"),
            ("a1", "a", 3, 9.5, datetime(2100, 1, 1, tzinfo=UTC), None, "out of range at"),
        ],
        "id string, kind string, qty int, price double, at timestamp, _corrupt_record string, expected string",
    )


@pytest.mark.parametrize(
    ("ctype", "rows"),
    [
        ("int", [(" 7 ", 7), ("1.5", None), ("x", None), (None, None)]),
        ("decimal(12,2)", [("12.345", Decimal("12.35")), (" 1 ", Decimal("1.00")), ("1e15", None)]),
        (
            "timestamp",
            [
                ("2026-10-15T12:00:00+02:00", datetime(2026, 10, 15, 10, tzinfo=UTC)),
                ("2026-10-15 10:00:00Z", datetime(2026, 10, 15, 10, tzinfo=UTC)),
                ("2026-10-15T10:00:00", None),
                (" 2026-10-15T10:00:00Z", None),
                ("2026-02-30T10:00:00Z", None),
            ],
        ),
    ],
)
def test_parsed_types_text_or_gives_null(spark: SparkSession, ctype: Any, rows: list[tuple[Any, Any]]) -> None:
    df = spark.createDataFrame(rows, f"value string, expected {ctype}")
    assert_column_equality(df.withColumn("typed", parsed("value", ctype, df.schema)), "typed", "expected")


def test_parsed_try_casts_typed_columns(spark: SparkSession) -> None:
    df = spark.createDataFrame([(7, 7), (2**40, None), (None, None)], "value bigint, expected int")
    assert_column_equality(df.withColumn("typed", parsed("value", "int", df.schema)), "typed", "expected")
