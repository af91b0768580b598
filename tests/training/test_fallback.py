"""The join's fallback when the entity is absent from the newest snapshot: hand-typed expectations.

The as-of join first picks, per label, the newest snapshot *holding the entity* from a per-entity
list of snapshot indexes, then fetches that snapshot's row by (key, index). These cases pin the
edges of that design: absent from the newest snapshot but present in an older one within the max
age, absent from all, a label exactly at T, and the max age bound exactly equal and 1 µs past it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from features.config import OfflineStoreConf
from features.load.offline import write_snapshot
from features.registry import all_groups
from features.training.build import TrainingRequest, build_training_set

D1, D2, D3 = (datetime(2026, 10, d, tzinfo=UTC) for d in (1, 2, 3))
#: T -> entity -> order_count_7d. E1 skips D2, E2 is only in D1, E3 is in no snapshot.
STORE = {D1: {"E1": 1, "E2": 10}, D2: {"E4": 40}, D3: {"E1": 3, "E4": 43}}


def _store(spark: SparkSession, root: Path) -> None:
    for as_of, rows in STORE.items():
        text = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
        df = spark.createDataFrame(
            [(e, text, v) for e, v in rows.items()], "customer_id string, event_time string, order_count_7d bigint"
        )
        write_snapshot(
            spark, df, root=str(root), group="customer_orders", as_of=as_of, run_id="r1", rows=len(rows), write_time=D1
        )


def _build(
    spark: SparkSession, tmp_path: Path, labels: list[tuple[str, str, str]], max_age: timedelta | None
) -> dict[str, Any]:
    root = tmp_path / "store"
    _store(spark, root)
    path = tmp_path / "labels.csv"
    path.write_text("label_id,customer_id,label_time\n" + "".join(f"{i},{e},{t}\n" for i, e, t in labels))
    out = tmp_path / "out"
    request = TrainingRequest(labels=str(path), out=str(out), groups=[all_groups()["customer_orders"]], max_age=max_age)
    build_training_set(spark, OfflineStoreConf(root=str(root)), request)
    return {
        r["label_id"]: (r["customer_orders__snapshot_time"], r["order_count_7d"])
        for r in spark.read.parquet(str(out)).collect()
    }


def test_falls_back_to_the_newest_snapshot_holding_the_entity(spark: SparkSession, tmp_path: Path) -> None:
    labels = [
        ("absent-newest", "E1", "2026-10-02T12:00:00Z"),  # D2 lacks E1: D1, 1.5 d old
        ("tie", "E1", "2026-10-03T00:00:00Z"),  # exactly at D3: D3
        ("tie-offset", "E1", "2026-10-03T02:00:00+02:00"),  # the same instant
        ("age-equal", "E2", "2026-10-03T00:00:00Z"),  # D3, D2 lack E2; D1 exactly 2 d old: used
        ("age-past", "E2", "2026-10-03T00:00:00.000001Z"),  # D1 is 2 d + 1 µs old: nothing
        ("never", "E3", "2026-10-02T00:00:00Z"),  # in no snapshot
        ("before", "E1", "2026-09-30T23:59:59Z"),  # before the first snapshot
        ("dup", "E1", "2026-10-02T12:00:00Z"),  # a duplicate label row keeps its own row
    ]
    got = _build(spark, tmp_path, labels, timedelta(days=2))
    d1, d3 = D1.replace(tzinfo=None), D3.replace(tzinfo=None)  # the suite's session runs in UTC
    assert got == {
        "absent-newest": (d1, 1),
        "tie": (d3, 3),
        "tie-offset": (d3, 3),
        "age-equal": (d1, 10),
        "age-past": (None, None),
        "never": (None, None),
        "before": (None, None),
        "dup": (d1, 1),
    }


def test_without_a_max_age_any_older_snapshot_holding_the_entity_is_used(spark: SparkSession, tmp_path: Path) -> None:
    labels = [
        ("old", "E2", "2026-10-20T00:00:00Z"),  # only D1 holds E2, 19 d before
        ("newest", "E1", "2026-10-20T00:00:00Z"),
        ("between", "E4", "2026-10-02T23:00:00Z"),
        ("never", "E3", "2026-10-20T00:00:00Z"),
    ]
    got = _build(spark, tmp_path, labels, None)
    assert got == {
        "old": (D1.replace(tzinfo=None), 10),
        "newest": (D3.replace(tzinfo=None), 3),
        "between": (D2.replace(tzinfo=None), 40),
        "never": (None, None),
    }
