"""Column helpers, each checked on one-line DataFrames with chispa's column equality."""

from __future__ import annotations

from datetime import UTC, date, datetime

from chispa import assert_column_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.transform.columns import age_bucket, flag, whole_days_between, whole_years_between


def test_whole_years_handles_birthdays_and_leap_days(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            (date(1996, 2, 29), date(2027, 2, 28), 30),  # leap-day birthday not yet reached on 28 Feb
            (date(1996, 2, 29), date(2027, 3, 1), 31),
            (date(1996, 2, 29), date(2028, 2, 29), 32),
            (date(2000, 10, 31), date(2026, 10, 31), 26),
            (date(2000, 11, 1), date(2026, 10, 31), 25),
            (None, date(2026, 10, 31), None),
        ],
        "birth date, on date, expected bigint",
    )
    rows = []
    for r in df.collect():
        one = spark.createDataFrame([(r["birth"], r["expected"])], "birth date, expected bigint")
        rows.append(one.withColumn("age", whole_years_between(F.col("birth"), r["on"])))
    for one in rows:
        assert_column_equality(one, "age", "expected")


def test_age_bucket(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            (17, "unknown"),
            (18, "18-29"),
            (29, "18-29"),
            (30, "30-39"),
            (59, "50-59"),
            (69, "60-69"),
            (70, "70-plus"),
            (120, "70-plus"),
            (None, "unknown"),
        ],
        "age bigint, expected string",
    ).withColumn("bucket", age_bucket(F.col("age")))
    assert_column_equality(df, "bucket", "expected")


def test_whole_days_rounds_down(spark: SparkSession) -> None:
    end = datetime(2026, 10, 31, tzinfo=UTC)
    df = spark.createDataFrame(
        [
            (datetime(2026, 10, 30, 0, 0, 1), 0),
            (datetime(2026, 10, 30, 0, 0, 0), 1),
            (datetime(2025, 10, 31, 0, 0, 0), 365),
            (None, None),
        ],
        "start timestamp, expected bigint",
    ).withColumn("days", whole_days_between(F.col("start"), end))
    assert_column_equality(df, "days", "expected")


def test_flag(spark: SparkSession) -> None:
    df = spark.createDataFrame([(True, 1), (False, 0), (None, None)], "b boolean, expected bigint")
    assert_column_equality(df.withColumn("f", flag(F.col("b"))), "f", "expected")
