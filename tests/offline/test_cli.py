"""``feature-pipeline offline history / optimize / vacuum / ddl`` on a Delta store, and the session's Delta jars."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import SparkSession

from features.cli import main
from features.load.offline import read_snapshot, write_snapshot
from features.session import delta_packages

ROOT = Path(__file__).resolve().parents[2]
T1 = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 10, 31, 0, 30, tzinfo=UTC)


@pytest.fixture
def store(spark: SparkSession, tmp_path: Path) -> Iterator[list[str]]:
    """A Delta store with two snapshots of customer_activity; the conf arguments that point at it.

    The commands build their session with features.session, which here returns the suite's one
    and sets the conf's SQL settings on it: they are put back afterwards.
    """
    saved = {
        k: spark.conf.get(k) for k in ("spark.sql.shuffle.partitions", "spark.databricks.delta.snapshotPartitions")
    }
    for n, as_of in enumerate((T1, T2)):
        text = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
        df = spark.createDataFrame([("C1", text, n), ("C2", text, n)], "customer_id string, event_time string, n int")
        write_snapshot(
            spark,
            df,
            root=str(tmp_path / "store"),
            group="customer_activity",
            as_of=as_of,
            run_id=f"run{n}",
            rows=2,
            write_time=datetime.now(UTC),
            format="delta",
        )
    yield [
        "--conf",
        str(ROOT / "conf/local.yaml"),
        "--set",
        f"offline_store.root={tmp_path / 'store'}",
        "--set",
        "offline_store.format=delta",
        "--set",
        "online_store.enabled=false",
        "--group",
        "customer_activity",
    ]
    for key, value in saved.items():
        spark.conf.set(key, value or "2")


def test_history_lists_versions_with_snapshot_run_and_rows(
    spark: SparkSession, store: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["offline", "history", *store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["version", "timestamp", "(UTC)", "operation", "snapshot", "rows", "run", "id"]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("1", "WRITE", "2026-10-31T00:30:00Z", "2", "run1"),
        ("0", "WRITE", "2026-10-31T00:00:00Z", "2", "run0"),
    ]


def test_vacuum_below_the_retention_floor_is_refused_with_exit_2(
    store: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["offline", "vacuum", *store, "--retain", "24h"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "below offline_store.vacuum_retention_floor (168h)" in err
    assert main(["offline", "vacuum", *store, "--retain", "1x"]) == 2


def test_optimize_then_vacuum_keep_every_snapshot_and_time_travel(
    spark: SparkSession, store: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["offline", "optimize", *store, "--zorder"]) == 0
    out = capsys.readouterr().out
    assert "Z-ordered by customer_id" in out and "2 file(s) compacted into 1" in out
    assert main(["offline", "vacuum", *store, "--retain", "7d"]) == 0
    assert "vacuumed: 0 file(s) deleted, history of 168h kept" in capsys.readouterr().out
    root = str(tmp_path / "store")
    for as_of, n in ((T1, 0), (T2, 1)):
        found = read_snapshot(spark, root, "customer_activity", as_of, format="delta")
        assert found is not None and sorted(r["n"] for r in found.collect()) == [n, n]
    # As of version 0 only the first snapshot existed.
    then = read_snapshot(spark, root, "customer_activity", version=0, format="delta")
    assert then is not None and {r["event_time"] for r in then.collect()} == {"2026-10-31T00:00:00Z"}


def test_delta_commands_need_a_delta_conf(store: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    parquet = [a if a != "offline_store.format=delta" else "offline_store.format=parquet" for a in store]
    assert main(["offline", "history", *parquet]) == 2
    assert "pass --set offline_store.format=delta" in capsys.readouterr().err


def test_session_fetches_the_delta_build_of_this_pyspark() -> None:
    scala = "2.13" if pyspark.__version__.startswith("4.") else "2.12"
    assert delta_packages() == [f"io.delta:delta-spark_{scala}:{importlib.metadata.version('delta-spark')}"]


def test_ddl_names_the_delta_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--conf", str(ROOT / "conf/local.yaml"), "--set", f"offline_store.root={tmp_path}"]
    args += ["--set", "offline_store.format=delta", "--set", "online_store.enabled=false"]
    assert main(["offline", "ddl", *args, "--group", "customer_activity"]) == 0
    assert f"LOCATION '{tmp_path}/customer_activity/delta'" in capsys.readouterr().out
