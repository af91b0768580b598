"""The as-of join's bitmask presence past one 63-bit word, against a plain-Python oracle.

The store-backed tests hold a few snapshots per group; these hold 150 (three presence words), with
several snapshots on some UTC days and none on others, entities present only in early words, and
labels on, between and far from snapshot times.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from features.training.join import GroupRows, as_of_joined, snapshot_time_column
from features.training.labels import LABEL_TS, ROW_ID

BASE = datetime(2026, 6, 1, tzinfo=UTC)
ENTITIES = [f"C{i:02d}" for i in range(8)]
GROUP = "customer_activity"


def _times(rng: random.Random) -> list[datetime]:
    """150 instants: gaps of 0.5h to 3 days, so some days hold several and some none."""
    out, t = [], BASE
    for _ in range(150):
        t += timedelta(minutes=rng.choice([30, 60, 7 * 60, 24 * 60, 3 * 24 * 60]))
        out.append(t)
    return out


def _store(rng: random.Random, times: list[datetime]) -> dict[datetime, dict[str, int]]:
    store: dict[datetime, dict[str, int]] = {}
    for i, t in enumerate(times):
        members = {e for e in ENTITIES[:6] if rng.random() < 0.3}
        if i < 20:
            members.add("C06")  # only in the first word: labels late in the range fall back to it
        store[t] = {e: rng.randint(0, 10**6) for e in sorted(members)}
    return store


def _labels(rng: random.Random, times: list[datetime]) -> list[tuple[int, str, datetime]]:
    out = []
    for i in range(400):
        kind = rng.random()
        if kind < 0.3:
            at = rng.choice(times)  # a tie
        elif kind < 0.4:
            at = rng.choice(times) - timedelta(microseconds=1)
        elif kind < 0.5:
            at = times[0] - timedelta(days=1)
        elif kind < 0.55:
            at = times[-1] + timedelta(days=rng.randint(0, 4))
        else:
            at = times[0] + (times[-1] - times[0]) * rng.random()
        out.append((i, rng.choice(ENTITIES), at))  # C07 is in no snapshot
    return out


def _oracle(
    labels: list[tuple[int, str, datetime]], store: dict[datetime, dict[str, int]], max_age: timedelta | None
) -> list[tuple[Any, ...]]:
    rows = []
    for row_id, entity, at in labels:
        usable = [
            t for t, held in store.items() if entity in held and t <= at and (max_age is None or at - t <= max_age)
        ]
        t = max(usable) if usable else None
        rows.append((row_id, entity, at, t, store[t][entity] if t is not None else None))
    return rows


@pytest.mark.parametrize(
    ("max_age", "broadcast"), [(None, True), (timedelta(days=2), True), (timedelta(hours=5), False)]
)
def test_many_snapshots_match_the_oracle(spark: SparkSession, max_age: timedelta | None, broadcast: bool) -> None:
    rng = random.Random(63)
    times = _times(rng)
    store = _store(rng, times)
    labels = _labels(rng, times)
    assert len({t.date() for t in times}) < len(times), "some day must hold several snapshots"
    rows = spark.createDataFrame(
        [(e, t.strftime("%Y-%m-%dT%H:%M:%SZ"), v) for t, held in store.items() for e, v in held.items()],
        "customer_id string, event_time string, event_count_1d bigint",
    )
    label_frame = spark.createDataFrame(labels, f"{ROW_ID} long, customer_id string, {LABEL_TS} timestamp")
    sources = {GROUP: GroupRows(rows, ["event_count_1d"])}
    with as_of_joined(label_frame, sources, key="customer_id", max_age=max_age, broadcast=broadcast) as joined:
        got = joined.select(ROW_ID, "customer_id", LABEL_TS, snapshot_time_column(GROUP), "event_count_1d")
        expected = spark.createDataFrame(_oracle(labels, store, max_age), got.schema)
        assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    matched = sum(1 for r in _oracle(labels, store, max_age) if r[3] is not None)
    assert 0 < matched < len(labels)
    assert any(r[1] == "C06" and r[3] is not None and r[2] > times[70] for r in _oracle(labels, store, None))
