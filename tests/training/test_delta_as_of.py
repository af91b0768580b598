"""``training-set`` on a Delta offline store, now and as of an older version or time (time travel).

Version 0 holds snapshot T1, version 1 adds T2, version 2 reruns T2 with other values. Expected
values are the hand-typed ones written at each version.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from features.cli import main
from features.load.offline import write_snapshot

ROOT = Path(__file__).resolve().parents[2]
T1 = datetime(2026, 10, 1, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
SCHEMA = "customer_id string, event_time string, age int, country string"


def _write(spark: SparkSession, root: Path, as_of: datetime, run: str, ages: dict[str, int]) -> None:
    stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    df = spark.createDataFrame([(c, stamp, a, "DE") for c, a in ages.items()], SCHEMA)
    write_snapshot(
        spark, df, root=str(root), group="customer_profile", as_of=as_of, run_id=run, rows=len(ages),
        write_time=as_of, format="delta",
    )  # fmt: skip


def _wait_past(moment: datetime) -> None:
    while datetime.now(tz=UTC) <= moment:  # commit timestamps have millisecond precision
        pass


def test_now_as_of_a_version_and_as_of_a_time(spark: SparkSession, tmp_path: Path) -> None:
    root = tmp_path / "store"
    _write(spark, root, T1, "r1", {"C1": 30, "C2": 40})
    _write(spark, root, T2, "r2", {"C1": 31, "C2": 41})
    between = datetime.now(tz=UTC).replace(microsecond=0) + timedelta(seconds=1)
    _wait_past(between)
    _write(spark, root, T2, "r3", {"C1": 99})  # rerun of T2: C2 dropped out
    labels = tmp_path / "labels.csv"
    labels.write_text("customer_id,label_time\nC1,2026-10-02T12:00:00Z\nC2,2026-10-02T12:00:00Z\n")
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    base = [
        "training-set",
        "--conf",
        str(ROOT / "conf/local.yaml"),
        "--set",
        f"offline_store.root={root}",
        "--set",
        "offline_store.format=delta",
        "--set",
        "online_store.enabled=false",
        "--labels",
        str(labels),
        "--groups",
        "customer_profile",
    ]

    def ages(out: str, *extra: str) -> tuple[dict[str, tuple[int | None, str | None]], dict[str, object]]:
        assert main([*base, "--out", str(tmp_path / out), *extra]) == 0
        rows = spark.read.parquet(str(tmp_path / out)).collect()
        used = {
            r["customer_id"]: (
                r["age"],
                r["customer_profile__snapshot_time"].astimezone(UTC).strftime("%dT%H")
                if r["age"] is not None
                else None,
            )
            for r in rows
        }
        manifest = json.loads((tmp_path / out / "_manifest.json").read_text())
        return used, manifest

    try:
        now, manifest = ages("now")
        assert now == {"C1": (99, "02T00"), "C2": (40, "01T00")}  # C2 is not in the rerun of T2: T1's value
        assert manifest["groups"]["customer_profile"]["offline_store"]["version"] == 2
        v1, manifest = ages("v1", "--as-of-version", "1")
        assert v1 == {"C1": (31, "02T00"), "C2": (41, "02T00")}
        assert manifest["as_of_version"] == 1
        v0, _ = ages("v0", "--as-of-version", "0")
        assert v0 == {"C1": (30, "01T00"), "C2": (40, "01T00")}
        stamp = between.strftime("%Y-%m-%dT%H:%M:%SZ")
        at, manifest = ages("at", "--as-of-timestamp", stamp)
        assert at == v1
        assert manifest["as_of_timestamp"] == stamp
        assert manifest["groups"]["customer_profile"]["offline_store"]["version"] == 1
        assert main([*base, "--out", str(tmp_path / "x"), "--as-of-version", "7"]) == 1  # newer than the table
        assert main([*base, "--out", str(tmp_path / "y"), "--as-of-timestamp", "yesterday"]) == 2
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", saved or "2")
