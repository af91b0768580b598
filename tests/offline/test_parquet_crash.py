"""The Parquet layout's swap after a crash at each step: readers see the old snapshot or the new one,
never neither, never both, and the next write of the same T heals what was left."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from features.load import offline
from features.load.offline import newest_snapshot_time, read_snapshot, write_snapshot

T1 = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 10, 31, 0, 30, tzinfo=UTC)  # same hour directory as T1
HOUR = "g/data/year=2026/month=10/day=31/hour=00"


class CrashError(Exception):
    """Stands for the process dying at a step: nothing after it runs."""


def crash_at(stage: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == stage:
            raise CrashError(stage)

    return hook


def snap(spark: SparkSession, as_of: datetime, values: list[int]) -> DataFrame:
    text = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    return spark.createDataFrame(
        [(f"C{v}", text, v) for v in values], "customer_id string, event_time string, n bigint"
    )


def write(
    spark: SparkSession,
    root: Path,
    as_of: datetime,
    values: list[int],
    run: str,
    on_stage: Callable[[str], None] | None = None,
) -> None:
    write_snapshot(
        spark,
        snap(spark, as_of, values),
        root=str(root),
        group="g",
        as_of=as_of,
        run_id=run,
        rows=len(values),
        write_time=datetime.now(UTC),
        on_stage=on_stage,
    )


def read(spark: SparkSession, root: Path, as_of: datetime) -> DataFrame | None:
    return read_snapshot(spark, str(root), "g", as_of, format="parquet")


@pytest.fixture(autouse=True)
def one_row_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several files per run, so a run's files can be half visible."""
    monkeypatch.setattr(offline, "ROWS_PER_FILE", 1)


@pytest.mark.parametrize(
    ("stage", "survivor"),
    [
        ("staged", "old"),
        ("pending", "old"),
        ("writing", "old"),
        ("visible", "old"),  # old and new files both visible; the new run is not committed
        ("committed", "new"),  # committed; the old run's files still there
        ("cleaned", "new"),
    ],
)
def test_a_crash_at_any_step_leaves_the_old_or_the_new_snapshot(
    spark: SparkSession, tmp_path: Path, stage: str, survivor: str
) -> None:
    write(spark, tmp_path, T1, [1, 2, 3], "old")
    write(spark, tmp_path, T2, [7], "other")
    with pytest.raises(CrashError):
        write(spark, tmp_path, T1, [4, 5], "new", on_stage=crash_at(stage))

    found = read(spark, tmp_path, T1)
    assert found is not None
    expected = {"old": [1, 2, 3], "new": [4, 5]}[survivor]
    assert_df_equality(found, snap(spark, T1, expected), ignore_row_order=True, ignore_nullable=True)
    other = read(spark, tmp_path, T2)
    assert other is not None and [r["n"] for r in other.collect()] == [7]
    assert newest_snapshot_time(spark, str(tmp_path), "g", format="parquet") == T2

    write(spark, tmp_path, T1, [6], "next")  # the next run of T1 heals what the crash left
    healed = read(spark, tmp_path, T1)
    assert healed is not None and [r["n"] for r in healed.collect()] == [6]
    names = sorted(p.name for p in (tmp_path / HOUR).iterdir() if not p.name.startswith("."))
    assert ["-".join(n.split("-")[:2]) if n.startswith("_committed") else n for n in names] == [
        "_committed-20261031T000000Z",
        "_committed-20261031T003000Z",
        "snapshot-20261031T000000Z-next-00000.parquet",
        "snapshot-20261031T003000Z-other-00000.parquet",
    ]
    assert not any((tmp_path / "g" / "_staging").iterdir())
    # What any Parquet reader of the hour sees: no leftovers of the crashed run.
    assert spark.read.parquet(str(tmp_path / HOUR)).count() == 2


def test_half_visible_files_of_an_uncommitted_run_are_ignored(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash falls between two renames of the new run's files into view."""
    write(spark, tmp_path, T1, [1, 2, 3], "old")
    rename = offline.fs.rename
    moved: list[str] = []

    def dies_on_second_reveal(spark_: SparkSession, src: str, dst: str) -> None:
        if "/_pending-" in src:
            moved.append(dst)
            if len(moved) == 2:
                raise CrashError("rename")
        rename(spark_, src, dst)

    monkeypatch.setattr(offline.fs, "rename", dies_on_second_reveal)
    with pytest.raises(CrashError):
        write(spark, tmp_path, T1, [4, 5, 6], "new")
    monkeypatch.setattr(offline.fs, "rename", rename)
    assert len(list((tmp_path / HOUR).glob("snapshot-*-new-*.parquet"))) == 1  # one new file is visible

    found = read(spark, tmp_path, T1)
    assert found is not None and sorted(r["n"] for r in found.collect()) == [1, 2, 3]


def test_a_first_write_that_crashed_half_visible_is_no_snapshot(spark: SparkSession, tmp_path: Path) -> None:
    """No earlier run wrote T1: the uncommitted files are not a (partial) snapshot; the older one is read."""
    earlier = T1 - timedelta(hours=1)
    write(spark, tmp_path, earlier, [9], "earlier")
    with pytest.raises(CrashError):
        write(spark, tmp_path, T1, [4, 5], "new", on_stage=crash_at("visible"))
    found = read(spark, tmp_path, T1)
    assert found is not None and [r["n"] for r in found.collect()] == [9]
    assert newest_snapshot_time(spark, str(tmp_path), "g", format="parquet") == earlier


def test_a_store_written_before_markers_is_swapped_safely(spark: SparkSession, tmp_path: Path) -> None:
    """Snapshots written by the earlier swap (no markers) count as committed until a new run commits."""
    write(spark, tmp_path, T1, [1, 2], "legacy")
    for marker in (tmp_path / HOUR).glob("_committed-*"):
        marker.unlink()
    with pytest.raises(CrashError):
        write(spark, tmp_path, T1, [4], "new", on_stage=crash_at("visible"))
    found = read(spark, tmp_path, T1)
    assert found is not None and sorted(r["n"] for r in found.collect()) == [1, 2]
    with pytest.raises(CrashError):
        write(spark, tmp_path, T1, [5], "newer", on_stage=crash_at("committed"))
    found = read(spark, tmp_path, T1)
    assert found is not None and [r["n"] for r in found.collect()] == [5]
