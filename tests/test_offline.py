"""Offline store, both formats: layout, reruns replace their own snapshot only, the snapshot before a time."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.load.offline import newest_snapshot_time, read_snapshot, snapshot_before, write_snapshot

T1 = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 10, 31, 0, 30, tzinfo=UTC)  # same hour partition as T1
T3 = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
DAY = timedelta(days=1)
FORMATS = pytest.mark.parametrize("fmt", ["parquet", "delta"])


def snap(spark: SparkSession, as_of: datetime, values: list[int]) -> DataFrame:
    text = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    return spark.createDataFrame(
        [(f"C{v}", text, v) for v in values], "customer_id string, event_time string, n bigint"
    )


def write(spark: SparkSession, root: Path, as_of: datetime, values: list[int], run: str, fmt: str = "parquet") -> str:
    df = snap(spark, as_of, values)
    out = write_snapshot(
        spark,
        df,
        root=str(root),
        group="g",
        as_of=as_of,
        run_id=run,
        rows=len(values),
        write_time=datetime.now(UTC),
        format=fmt,  # type: ignore[arg-type]
    )
    return out.path


def store(spark: SparkSession, root: Path, fmt: str) -> DataFrame:
    """Everything a reader of the whole store sees (Spark's Parquet reader, or the Delta table)."""
    if fmt == "delta":
        return spark.read.format("delta").load(str(root / "g" / "delta"))
    return spark.read.parquet(str(root / "g" / "data"))


@FORMATS
def test_columns_partitions_and_idempotent_reruns(spark: SparkSession, tmp_path: Path, fmt: str) -> None:
    write(spark, tmp_path, T1, [1, 2, 3], "run1", fmt)
    write(spark, tmp_path, T1, [1, 2, 3], "run2", fmt)  # rerun: replaces
    write(spark, tmp_path, T2, [7], "run3", fmt)  # another T in the same hour: kept beside
    write(spark, tmp_path, T3, [8, 9], "run4", fmt)

    records = store(spark, tmp_path, fmt)
    assert {"write_time", "api_invocation_time", "is_deleted", "year", "month", "day", "hour"} <= set(records.columns)
    counts = {r["event_time"]: r["count"] for r in records.groupBy("event_time").count().collect()}
    assert counts == {"2026-10-31T00:00:00Z": 3, "2026-10-31T00:30:00Z": 1, "2026-11-01T13:00:00Z": 2}
    assert records.where(F.col("is_deleted")).count() == 0
    hours = records.select("event_time", "year", "month", "day", "hour").distinct()
    expected = spark.createDataFrame(
        [
            ("2026-10-31T00:00:00Z", 2026, 10, 31, 0),
            ("2026-10-31T00:30:00Z", 2026, 10, 31, 0),
            ("2026-11-01T13:00:00Z", 2026, 11, 1, 13),
        ],
        "event_time string, year int, month int, day int, hour int",
    )
    assert_df_equality(hours, expected, ignore_row_order=True, ignore_nullable=True)


def test_parquet_layout_is_sagemakers_with_files_named_by_snapshot(spark: SparkSession, tmp_path: Path) -> None:
    path = write(spark, tmp_path, T1, [1, 2, 3], "run1")
    assert path == f"{tmp_path}/g/data/year=2026/month=10/day=31/hour=00"
    write(spark, tmp_path, T1, [1, 2, 3], "run2")  # rerun: replaces
    write(spark, tmp_path, T2, [7], "run3")  # another T in the same hour: kept beside
    write(spark, tmp_path, T3, [8, 9], "run4")

    store = spark.read.parquet(str(tmp_path / "g" / "data"))
    assert {"write_time", "api_invocation_time", "is_deleted", "year", "month", "day", "hour"} <= set(store.columns)
    counts = {r["event_time"]: r["count"] for r in store.groupBy("event_time").count().collect()}
    assert counts == {"2026-10-31T00:00:00Z": 3, "2026-10-31T00:30:00Z": 1, "2026-11-01T13:00:00Z": 2}
    assert store.where(F.col("is_deleted")).count() == 0
    hour = (
        store.where("event_time = '2026-11-01T13:00:00Z'").select("year", "month", "day", "hour").distinct().collect()
    )
    assert [tuple(r) for r in hour] == [(2026, 11, 1, 13)]
    files = sorted(p.name for p in (tmp_path / "g/data/year=2026/month=10/day=31/hour=00").glob("*.parquet"))
    assert [f.split("-")[2] for f in files] == ["run2", "run3"]
    assert not (tmp_path / "g" / "_staging").exists() or not any((tmp_path / "g" / "_staging").iterdir())


@FORMATS
def test_rerun_with_fewer_rows_leaves_no_stale_rows(spark: SparkSession, tmp_path: Path, fmt: str) -> None:
    write(spark, tmp_path, T1, [1, 2, 3], "a", fmt)
    write(spark, tmp_path, T1, [1], "b", fmt)
    assert store(spark, tmp_path, fmt).select("customer_id").collect() == [("C1",)]


@FORMATS
def test_snapshot_before_is_the_latest_one_before_as_of(spark: SparkSession, tmp_path: Path, fmt: str) -> None:
    root = str(tmp_path / "offline")
    times = [T1 - 2 * DAY, T1 - timedelta(minutes=30), T1, T1 + timedelta(hours=1)]
    for n, moment in enumerate(times):
        df = snap(spark, moment, list(range(n + 1)))
        write_snapshot(
            spark, df, root=root, group="g", as_of=moment, run_id="r1", rows=n + 1, write_time=T1, format=fmt
        )

    def rows_of(as_of: datetime) -> int | None:
        found = snapshot_before(spark, root, "g", as_of, format=fmt)
        if found is None:
            return None
        assert found.columns == snap(spark, T1, [1]).columns  # metadata columns dropped
        return found.count()

    assert rows_of(T1) == 2  # T1 - 30min, in the previous day's hour 23
    assert rows_of(T1 - timedelta(minutes=30)) == 1
    assert rows_of(T1 + timedelta(hours=2)) == 4
    assert rows_of(T1 - 2 * DAY) is None
    assert snapshot_before(spark, str(tmp_path / "nothing"), "g", T1, format=fmt) is None
    assert newest_snapshot_time(spark, root, "g", format=fmt) == T1 + timedelta(hours=1)
    assert newest_snapshot_time(spark, str(tmp_path / "nothing"), "g", format=fmt) is None


@FORMATS
def test_read_snapshot_at_or_before_a_time_with_record_columns_only(
    spark: SparkSession, tmp_path: Path, fmt: str
) -> None:
    write(spark, tmp_path, T1, [1, 2], "a", fmt)
    write(spark, tmp_path, T2, [3], "b", fmt)
    found = read_snapshot(spark, str(tmp_path), "g", T1, format=fmt)  # exactly T1: at or before
    assert found is not None
    assert_df_equality(found, snap(spark, T1, [1, 2]), ignore_row_order=True, ignore_nullable=True)
    newest = read_snapshot(spark, str(tmp_path), "g", format=fmt)
    assert newest is not None
    assert_df_equality(newest, snap(spark, T2, [3]), ignore_nullable=True)
    # Without a format the reader finds the group's Delta table, or reads the Parquet layout.
    detected = read_snapshot(spark, str(tmp_path), "g", T1)
    assert detected is not None and sorted(r["n"] for r in detected.collect()) == [1, 2]


def test_snapshot_before_in_files_not_named_by_snapshot(spark: SparkSession, tmp_path: Path) -> None:
    """A store written by someone else (Spark's part-* names): the newest event_time before as_of wins."""
    hour = tmp_path / "offline" / "plain" / "data" / "year=2026" / "month=10" / "day=30" / "hour=23"
    early = snap(spark, datetime(2026, 10, 30, 23, 30, tzinfo=UTC), [1, 2])
    late = snap(spark, datetime(2026, 10, 30, 23, 50, tzinfo=UTC), [1, 2, 3])
    early.unionByName(late).write.parquet(str(hour))
    found = snapshot_before(spark, str(tmp_path / "offline"), "plain", T1)
    assert found is not None and found.count() == 3
    found = snapshot_before(spark, str(tmp_path / "offline"), "plain", T1 - timedelta(minutes=15))
    assert found is not None and found.count() == 2


def test_what_killed_runs_left_is_removed_by_the_next_write(spark: SparkSession, tmp_path: Path) -> None:
    """Staging and ``_pending-`` files of a killed run: same T removed, another T's only once stale."""
    staging = tmp_path / "g" / "_staging"
    hour = tmp_path / "g/data/year=2026/month=10/day=31/hour=00"
    killed_same_t = staging / "20261031T000000Z-killed"
    killed_long_ago = staging / "20261030T000000Z-old"
    running_other_t = staging / "20261031T003000Z-busy"  # a concurrent run of T2: fresh, kept
    for directory in (killed_same_t, killed_long_ago, running_other_t):
        directory.mkdir(parents=True)
        (directory / "part-00000.parquet").write_bytes(b"partial")
    day_ago = time.time() - 25 * 3600
    os.utime(killed_long_ago, (day_ago, day_ago))
    hour.mkdir(parents=True)
    pending = hour / "_pending-snapshot-20261031T000000Z-killed-00000.parquet"
    pending.write_bytes(b"partial")
    other_pending = hour / "_pending-snapshot-20261031T003000Z-busy-00000.parquet"
    other_pending.write_bytes(b"partial")

    write(spark, tmp_path, T1, [1, 2], "next")

    assert sorted(p.name for p in staging.iterdir()) == ["20261031T003000Z-busy"]
    assert sorted(p.name for p in hour.iterdir() if p.name.startswith("_pending")) == [other_pending.name]
    assert spark.read.parquet(str(hour)).count() == 2
