"""The as-of join against a brute-force oracle in plain Python, on seeded random labels."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from features.config import OfflineStoreConf
from features.load.offline import write_snapshot
from features.registry import all_groups
from features.training.build import TrainingRequest, build_training_set
from features.training.join import LeakageError, check_no_leakage
from tests.training.conftest import ENTITIES, FEATURES, GROUPS, Store

MAX_AGE = timedelta(days=2)
OFFSETS = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]


def random_labels(seed: int, n: int) -> list[dict[str, str]]:
    """Labels hitting every edge: ties with a T, exactly max age after a T, before the first
    snapshot, long after the last, entities in no group, duplicates, offsets other than UTC."""
    rng = random.Random(seed)
    all_times = sorted({t for _, times in GROUPS.values() for t in times})
    out: list[dict[str, str]] = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.3:
            moment = rng.choice(all_times)  # tie: label_time == T
        elif kind < 0.4:
            moment = rng.choice(all_times) + MAX_AGE  # exactly max age: still used
        elif kind < 0.5:
            moment = rng.choice(all_times) - timedelta(seconds=1)
        elif kind < 0.6:
            moment = all_times[0] - timedelta(days=rng.randint(1, 5))  # before any snapshot
        else:
            moment = all_times[0] + timedelta(seconds=rng.randint(0, 12 * 86_400), microseconds=rng.randint(0, 999))
        local = moment.astimezone(rng.choice(OFFSETS))
        text = local.isoformat().replace("+00:00", "Z") if rng.random() < 0.5 else local.isoformat()
        row = {"label_id": str(i), "customer_id": rng.choice(ENTITIES), "label_time": text, "churned": str(i % 2)}
        out.append(row)
        if rng.random() < 0.1:
            out.append(dict(row))  # duplicate label row
    return out


def oracle(labels: list[dict[str, str]], store: Store, max_age: timedelta | None) -> list[tuple[Any, ...]]:
    """Per label, per group: the latest T <= label time with label time - T <= max age that holds the entity."""
    rows = []
    for label in labels:
        at = datetime.fromisoformat(label["label_time"].replace("Z", "+00:00")).astimezone(UTC)
        out: list[Any] = [label["label_id"], label["customer_id"], label["label_time"], label["churned"]]
        for group in GROUPS:
            usable = [
                t
                for t, entities in store.records[group].items()
                if label["customer_id"] in entities and t <= at and (max_age is None or at - t <= max_age)
            ]
            if usable:
                t = max(usable)
                out += [t, *store.records[group][t][label["customer_id"]]]
            else:
                out += [None] * (1 + len(FEATURES[group]))
        rows.append(tuple(out))
    return sorted(rows, key=repr)


def write_csv(path: Path, labels: list[dict[str, str]]) -> str:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["label_id", "customer_id", "label_time", "churned"])
        writer.writeheader()
        writer.writerows(labels)
    return str(path)


def build(spark: SparkSession, store: Store, labels: str, out: Path, **kw: Any) -> dict[str, Any]:
    groups = all_groups()
    request = TrainingRequest(labels=labels, out=str(out), groups=[groups[g] for g in GROUPS], **kw)
    return build_training_set(spark, OfflineStoreConf(root=str(store.root)), request)


def output_rows(spark: SparkSession, out: Path) -> list[tuple[Any, ...]]:
    columns = ["label_id", "customer_id", "label_time", "churned"]
    for group in GROUPS:
        columns += [f"{group}__snapshot_time", *FEATURES[group]]
    found = []
    for row in spark.read.parquet(str(out)).select(*columns).collect():
        values = list(row)
        for i, v in enumerate(values):
            if isinstance(v, datetime):
                values[i] = v.replace(tzinfo=UTC)  # the suite's process runs in UTC
        found.append(tuple(values))
    return sorted(found, key=repr)


@pytest.mark.parametrize(("seed", "max_age"), [(1, MAX_AGE), (2, None)])
def test_matches_the_brute_force_oracle(
    spark: SparkSession, store: Store, tmp_path: Path, seed: int, max_age: timedelta | None
) -> None:
    labels = random_labels(seed, 160)
    manifest = build(spark, store, write_csv(tmp_path / "labels.csv", labels), tmp_path / "out", max_age=max_age)
    expected = oracle(labels, store, max_age)
    assert output_rows(spark, tmp_path / "out") == expected
    assert manifest["labels_read"] == manifest["rows_written"] == len(labels)
    # The data set exercises both outcomes: labels with and without a profile snapshot.
    assert any(r[4] is None for r in expected) and any(r[4] is not None for r in expected)


def test_ties_and_the_max_age_bound_are_inclusive(spark: SparkSession, store: Store, tmp_path: Path) -> None:
    t = GROUPS["customer_profile"][1][1]  # 2026-10-04T00:00:00Z
    entity = next(iter(store.records["customer_profile"][t]))
    labels = [
        {"label_id": "tie", "customer_id": entity, "label_time": t.isoformat(), "churned": "1"},
        {
            "label_id": "tie+02",
            "customer_id": entity,
            "label_time": t.astimezone(OFFSETS[1]).isoformat(),
            "churned": "1",
        },
        {"label_id": "age", "customer_id": entity, "label_time": (t + MAX_AGE).isoformat(), "churned": "0"},
        {"label_id": "before", "customer_id": entity, "label_time": "2026-09-01T00:00:00Z", "churned": "0"},
    ]
    build(spark, store, write_csv(tmp_path / "labels.csv", labels), tmp_path / "out", max_age=MAX_AGE)
    got = {
        r["label_id"]: r["customer_profile__snapshot_time"] for r in spark.read.parquet(str(tmp_path / "out")).collect()
    }
    at = t.replace(tzinfo=None)
    assert got == {"tie": at, "tie+02": at, "age": at, "before": None}


def test_the_leakage_check_fails_on_a_snapshot_after_its_label(spark: SparkSession) -> None:
    bad = spark.createDataFrame(
        [(datetime(2026, 10, 2), datetime(2026, 10, 1)), (datetime(2026, 10, 2), None)],
        "_training_label_ts timestamp, customer_orders__snapshot_time timestamp",
    )
    check_no_leakage(bad.limit(1).where("false"), ["customer_orders"])
    swapped = bad.selectExpr(
        "customer_orders__snapshot_time as _training_label_ts", "_training_label_ts as customer_orders__snapshot_time"
    )
    with pytest.raises(LeakageError, match=r"leakage check failed: 1 row\(s\) use a snapshot taken after"):
        check_no_leakage(swapped, ["customer_orders"])
    check_no_leakage(bad, ["customer_orders"])


def test_a_record_whose_time_is_not_its_files_snapshot_fails_loudly(spark: SparkSession, tmp_path: Path) -> None:
    """The Parquet reader takes the snapshot times from the file names; a record that says another
    time (not this pipeline's writer) must fail the job, not be dropped from the set."""
    as_of = datetime(2026, 10, 1, tzinfo=UTC)
    df = spark.createDataFrame([("C000", "2026-10-01T05:00:00Z", 7)], "customer_id string, event_time string, age int")
    write_snapshot(
        spark,
        df,
        root=str(tmp_path / "store"),
        group="customer_profile",
        as_of=as_of,
        run_id="r1",
        rows=1,
        write_time=as_of,
    )
    labels = write_csv(
        tmp_path / "labels.csv",
        [{"label_id": "1", "customer_id": "C000", "label_time": "2026-10-02T00:00:00Z", "churned": "0"}],
    )
    request = TrainingRequest(labels=labels, out=str(tmp_path / "out"), groups=[all_groups()["customer_profile"]])
    with pytest.raises(Exception, match="not the snapshot time its file is named by"):
        build_training_set(spark, OfflineStoreConf(root=str(tmp_path / "store")), request)
