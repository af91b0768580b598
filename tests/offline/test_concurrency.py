"""Delta: two jobs writing at once both succeed; a commit that loses a race is retried, within bounds."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.readwriter import DataFrameWriter

from features.load.delta import history
from features.load.offline import read_snapshot, write_snapshot

T1 = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 10, 31, 0, 30, tzinfo=UTC)  # the same hour partition as T1
T3 = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def snap(spark: SparkSession, as_of: datetime, values: list[int]) -> DataFrame:
    text = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    return spark.createDataFrame(
        [(f"C{v}", text, v) for v in values], "customer_id string, event_time string, n bigint"
    )


def write(spark: SparkSession, root: Path, group: str, as_of: datetime, values: list[int], attempts: int = 5) -> None:
    write_snapshot(
        spark,
        snap(spark, as_of, values),
        root=str(root),
        group=group,
        as_of=as_of,
        run_id=f"run-{as_of:%H%M}",
        rows=len(values),
        write_time=datetime.now(UTC),
        format="delta",
        commit_attempts=attempts,
    )


def at_once(*jobs: tuple[Any, ...]) -> list[BaseException]:
    """Run ``write(*job)`` for every job in its own thread, started together; the errors raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: tuple[Any, ...]) -> None:
        barrier.wait()
        try:
            write(*job)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


def values(spark: SparkSession, root: Path, group: str, as_of: datetime) -> list[int]:
    found = read_snapshot(spark, str(root), group, as_of, format="delta")
    assert found is not None
    return sorted(r["n"] for r in found.collect())


def test_two_groups_and_two_snapshots_of_one_group_written_at_once(spark: SparkSession, tmp_path: Path) -> None:
    write(spark, tmp_path, "one", T3, [0])  # an existing table, and a new one ("two") created by a writer
    errors = at_once(
        (spark, tmp_path, "one", T1, [1, 2]),
        (spark, tmp_path, "one", T2, [3]),  # same table, same hour partition
        (spark, tmp_path, "two", T1, [4]),
    )
    assert errors == []
    assert values(spark, tmp_path, "one", T1) == [1, 2]
    assert values(spark, tmp_path, "one", T2) == [3]
    assert values(spark, tmp_path, "one", T3) == [0]
    assert values(spark, tmp_path, "two", T1) == [4]
    assert sorted(v.snapshot or "" for v in history(spark, str(tmp_path), "one")) == [
        "2026-10-31T00:00:00Z",
        "2026-10-31T00:30:00Z",
        "2026-11-01T13:00:00Z",
    ]


def test_two_first_writes_racing_to_create_a_table_both_land(spark: SparkSession, tmp_path: Path) -> None:
    errors = at_once((spark, tmp_path, "new", T1, [1]), (spark, tmp_path, "new", T3, [2]))
    assert errors == []
    assert values(spark, tmp_path, "new", T1) == [1]
    assert values(spark, tmp_path, "new", T3) == [2]


class FakeConflictError(Exception):
    """Named like Delta's: the retry recognises Delta's conflicts by class name and message."""

    def __init__(self) -> None:
        super().__init__("io.delta.exceptions.ConcurrentAppendException: Files were added to partition [...]")


def losing_save(monkeypatch: pytest.MonkeyPatch, losses: int) -> list[int]:
    """``DataFrameWriter.save`` that loses ``losses`` races before it commits; the calls, counted."""
    save = DataFrameWriter.save
    calls: list[int] = []

    def racing(self: DataFrameWriter, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= losses:
            raise FakeConflictError()
        save(self, *args, **kwargs)

    monkeypatch.setattr(DataFrameWriter, "save", racing)
    return calls


def test_a_lost_commit_race_is_retried_with_a_log_line(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = losing_save(monkeypatch, losses=2)
    with caplog.at_level(logging.WARNING, logger="features.load.delta"):
        write(spark, tmp_path, "g", T1, [1], attempts=3)
    assert len(calls) == 3
    assert values(spark, tmp_path, "g", T1) == [1]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "lost to a concurrent writer (ConcurrentAppendException)" in lines[0]
    assert lines[1].endswith("retrying, attempt 3 of 3")


def test_retries_are_bounded(spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = losing_save(monkeypatch, losses=5)
    with pytest.raises(FakeConflictError):
        write(spark, tmp_path, "g", T1, [1], attempts=2)
    assert len(calls) == 2
