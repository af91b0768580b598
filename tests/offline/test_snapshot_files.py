"""offline.snapshot_files: which Parquet files readers take per snapshot, from LISTs only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from features.load.offline import snapshot_files, snapshot_tag, write_snapshot

T1 = datetime(2026, 10, 1, tzinfo=UTC)
T2 = T1 + timedelta(minutes=30)  # same hour directory as T1
T3 = T1 + timedelta(days=1)
GROUP = "g"


def _write(spark: SparkSession, root: Path, as_of: datetime, run: str) -> None:
    stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    df = spark.createDataFrame([("C1", stamp, 1)], "customer_id string, event_time string, n bigint")
    write_snapshot(spark, df, root=str(root), group=GROUP, as_of=as_of, run_id=run, rows=1, write_time=as_of)


def test_committed_runs_per_tag_in_range_and_folders_of_other_tools(spark: SparkSession, tmp_path: Path) -> None:
    root = tmp_path / "store"
    _write(spark, root, T1, "r1")
    _write(spark, root, T1, "r2")  # a rerun of T1: readers take r2's files only
    _write(spark, root, T2, "r1")
    _write(spark, root, T3, "r1")
    foreign = root / GROUP / "data" / "year=2026" / "month=10" / "day=05" / "hour=00"
    spark.createDataFrame([("C9", "2026-10-05T00:00:00Z", 7)], "customer_id string, event_time string, n bigint") \
        .write.parquet(str(foreign))  # fmt: skip

    found = snapshot_files(spark, str(root), GROUP)
    assert sorted(found.files) == sorted(snapshot_tag(t) for t in (T1, T2, T3))
    t1 = found.files[snapshot_tag(T1)]
    assert t1 and all("-r2-" in Path(p).name for p in t1), t1
    assert all(Path(p).name.startswith(f"snapshot-{snapshot_tag(T2)}-r1-") for p in found.files[snapshot_tag(T2)])
    assert [Path(f).name for f in found.folders] == ["hour=00"] and "day=05" in found.folders[0]
    assert found.any_file is not None

    only_day_one = snapshot_files(spark, str(root), GROUP, earliest=T1, latest=T2)
    assert sorted(only_day_one.files) == sorted([snapshot_tag(T1), snapshot_tag(T2)])
    after = snapshot_files(spark, str(root), GROUP, earliest=T3 + timedelta(seconds=1))
    assert after.files == {} and after.any_file is not None  # the schema fallback still has a file
    assert snapshot_files(spark, str(tmp_path / "empty"), GROUP) == type(after)(files={}, folders=[], any_file=None)
