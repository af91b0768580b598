"""Delta: a writer killed while writing data files or right after its commit leaves the old snapshot
or the new one, never neither, never both; the table stays readable and writable."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from features.load.delta import history
from features.load.offline import read_snapshot, write_snapshot
from tests.offline.crash_writer import NEW, T1

ROOT = Path(__file__).resolve().parents[2]
T2 = datetime(2026, 10, 31, 0, 30, tzinfo=UTC)


def snap(spark: SparkSession, as_of: datetime, values: list[int]) -> DataFrame:
    text = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    return spark.createDataFrame(
        [(f"C{v}", text, v) for v in values], "customer_id string, event_time string, n bigint"
    )


def write(spark: SparkSession, root: Path, as_of: datetime, values: list[int], run: str) -> None:
    write_snapshot(
        spark,
        snap(spark, as_of, values),
        root=str(root),
        group="g",
        as_of=as_of,
        run_id=run,
        rows=len(values),
        write_time=datetime.now(UTC),
        format="delta",
    )


def test_a_killed_delta_writer_leaves_the_old_or_the_new_snapshot(spark: SparkSession, tmp_path: Path) -> None:
    stages = {"files": [1, 2, 3], "committed": NEW}  # what a reader must see after the kill
    for stage in stages:
        write(spark, tmp_path / stage, T1, [1, 2, 3], "old")
        write(spark, tmp_path / stage, T2, [7], "other")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env["PYSPARK_PYTHON"] = sys.executable
    killed = {
        stage: subprocess.Popen(
            [sys.executable, "-m", "tests.offline.crash_writer", str(tmp_path / stage), stage],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for stage in stages
    }
    for stage, process in killed.items():
        out, _ = process.communicate(timeout=300)
        assert process.returncode == -9, f"{stage}: the writer was not killed ({process.returncode}):\n{out[-3000:]}"
        assert "writing" in out, out[-3000:]

    for stage, survivor in stages.items():
        root = tmp_path / stage
        found = read_snapshot(spark, str(root), "g", T1, format="delta")
        assert found is not None
        assert_df_equality(found, snap(spark, T1, survivor), ignore_row_order=True, ignore_nullable=True)
        other = read_snapshot(spark, str(root), "g", T2, format="delta")
        assert other is not None and [r["n"] for r in other.collect()] == [7]
        runs = [v.run_id for v in history(spark, str(root), "g")]
        assert runs == (["crashed", "other", "old"] if stage == "committed" else ["other", "old"])
        write(spark, root, T1, [5], "next")  # the table takes the next write as usual
        again = read_snapshot(spark, str(root), "g", T1, format="delta")
        assert again is not None and [r["n"] for r in again.collect()] == [5]
