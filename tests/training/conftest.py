"""A small offline store written by the real writer, and its snapshots as plain Python (the oracle's input).

Three groups with a few feature columns each, several snapshot times T per group, a different
subset of entities in every snapshot (so entities are absent from some snapshots and groups).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from features.load.offline import write_snapshot

BASE = datetime(2026, 10, 1, tzinfo=UTC)
ENTITIES = [f"C{i:03d}" for i in range(12)]
#: group -> (feature columns DDL, snapshot times)
GROUPS: dict[str, tuple[str, list[datetime]]] = {
    "customer_profile": ("age int, country string", [BASE + timedelta(days=d) for d in (0, 3, 7)]),
    "customer_orders": (
        "order_count_7d bigint, order_amount_sum_7d double",
        [BASE + timedelta(days=1, hours=h) for h in (0, 12, 36, 37, 96)],
    ),
    "customer_activity": ("event_count_1d bigint", [BASE + timedelta(hours=h) for h in (6, 30, 31, 150)]),
}
FEATURES = {g: [c.split()[0] for c in ddl.split(", ")] for g, (ddl, _) in GROUPS.items()}


@dataclass(frozen=True)
class Store:
    root: Path
    #: group -> T -> entity -> feature values (tuple in FEATURES order)
    records: dict[str, dict[datetime, dict[str, tuple[Any, ...]]]]


def _values(rng: random.Random, group: str) -> tuple[Any, ...]:
    if group == "customer_profile":
        return (rng.randint(18, 80), rng.choice(["DE", "FR", None]))
    if group == "customer_orders":
        return (rng.randint(0, 9), rng.choice([None, round(rng.uniform(0, 500), 2)]))
    return (rng.randint(0, 50),)


@pytest.fixture(scope="session")
def store(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("training-store")
    rng = random.Random(12)
    records: dict[str, dict[datetime, dict[str, tuple[Any, ...]]]] = {}
    for group, (ddl, times) in GROUPS.items():
        records[group] = {}
        for as_of in times:
            # C011 is in no snapshot of any group; C010 only in customer_profile.
            pool = ENTITIES[:10] + (["C010"] if group == "customer_profile" else [])
            members = sorted(rng.sample(pool, rng.randint(4, len(pool))))
            rows = {e: _values(rng, group) for e in members}
            records[group][as_of] = rows
            text = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
            df = spark.createDataFrame(
                [(e, text, *v) for e, v in rows.items()], f"customer_id string, event_time string, {ddl}"
            )
            write_snapshot(
                spark, df, root=str(root), group=group, as_of=as_of, run_id="r1", rows=len(rows), write_time=BASE
            )
    # A rerun of one T replaces it: the reader must see the second run's values only.
    group, as_of = "customer_orders", GROUPS["customer_orders"][1][2]
    rows = {e: _values(rng, group) for e in ENTITIES[:6]}
    records[group][as_of] = rows
    text = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    df = spark.createDataFrame(
        [(e, text, *v) for e, v in rows.items()], f"customer_id string, event_time string, {GROUPS[group][0]}"
    )
    write_snapshot(spark, df, root=str(root), group=group, as_of=as_of, run_id="r2", rows=len(rows), write_time=BASE)
    return Store(root=root, records=records)
