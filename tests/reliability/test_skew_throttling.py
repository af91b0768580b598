"""Issue 10, item 7: ``skew-check`` under throttling checks every group and reports each one.

Both stores are written here, independently of the push and of the check: the offline snapshots
with ``write_snapshot`` (Parquet in the offline layout), the online records with boto3
``batch_write_record`` in the documented wire format (Integral as an integer string, Fractional as
``repr(float)``, nulls left out, the event time as text). Expected values come from the rows
written. The local runtime injects the faults with a seeded generator, so the answers the check
meets are reproducible: with seed 7 and half the requests throttled, the old check (botocore's 3
attempts) gave up in the first group with ``ThrottlingException ... reached max retries: 2``.
What is asserted holds for any seed, given the 16-attempt budget the conf sets.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from featurestore_local import FaultConfig, LocalFeatureStore
from pyspark.sql import SparkSession

from features.cli.skew import SKEW_CHECK
from features.definitions import FeatureGroup
from features.groups.customer_activity import customer_activity
from features.groups.customer_orders import customer_orders
from features.groups.customer_profile import customer_profile
from features.load.offline import write_snapshot
from features.online.client import control_client, runtime_client
from features.online.registration import register_groups

T = datetime(2026, 10, 31, tzinfo=UTC)
EVENT_TIME = "2026-10-31T00:00:00Z"
REGION = "us-east-1"
GROUPS = (customer_activity, customer_orders, customer_profile)
ENTITIES = 250  # three BatchGetRecord calls per group (100 + 100 + 50)
SPARK_TYPES = {"Integral": "bigint", "Fractional": "double", "String": "string"}
#: Wall-clock bound of one test: 16 attempts with backoff capped at 0.5 s cannot come near it.
DEADLINE_SECONDS = 240


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    """Fail a test that hangs instead of letting it block the suite (``pytest.fail`` raises a
    BaseException, which the check's per-group handling does not swallow)."""

    def expired(signum: int, frame: FrameType | None) -> None:
        pytest.fail(f"test ran longer than {DEADLINE_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(DEADLINE_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def value(dtype: str, entity: int, feature: int) -> int | float | str | None:
    """A deterministic feature value; every ninth one is null."""
    if (entity + feature) % 9 == 0:
        return None
    if dtype == "Integral":
        return entity * 31 + feature
    if dtype == "Fractional":
        return entity / 7 + feature  # not a short decimal: repr() must round-trip it
    return f"v{entity}-{feature}"


def group_rows(group: FeatureGroup) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": f"C{i:06d}",
            "event_time": EVENT_TIME,
            **{f.name: value(f.dtype, i, j) for j, f in enumerate(group.features)},
        }
        for i in range(ENTITIES)
    ]


def wire(group: FeatureGroup, row: dict[str, Any]) -> list[dict[str, str]]:
    types = {f.name: f.dtype for f in group.features}
    record = []
    for name, v in row.items():
        if v is None:
            continue
        dtype = types.get(name, "String")
        text = str(int(v)) if dtype == "Integral" else repr(float(v)) if dtype == "Fractional" else str(v)
        record.append({"FeatureName": name, "ValueAsString": text})
    return record


@dataclass(frozen=True)
class Offline:
    root: Path
    rows: dict[str, list[dict[str, Any]]]  # group -> rows written


@pytest.fixture(scope="module")
def offline(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Offline:
    """One snapshot at T per reference group, 250 entities each; read-only for the tests."""
    root = tmp_path_factory.mktemp("skew-offline") / "offline"
    rows = {}
    for group in GROUPS:
        rows[group.name] = group_rows(group)
        schema = ", ".join(
            ["customer_id string", "event_time string", *(f"{f.name} {SPARK_TYPES[f.dtype]}" for f in group.features)]
        )
        df = spark.createDataFrame([tuple(r.values()) for r in rows[group.name]], schema)
        write_snapshot(spark, df, root=str(root), group=group.name, as_of=T, run_id="r1", rows=ENTITIES, write_time=T)
    return Offline(root, rows)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalFeatureStore]:
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", host="127.0.0.1", port=0) as server:
        yield server


def publish(
    store: LocalFeatureStore, offline: Offline, *, register: tuple[FeatureGroup, ...], push: tuple[FeatureGroup, ...]
) -> None:
    """Register ``register`` and write the offline rows of ``push`` online, with no faults."""
    register_groups(
        control_client(endpoint_url=store.endpoint_url, region=REGION),
        list(register),
        offline_s3_uri=None,
        role_arn=None,
    )
    client = runtime_client(endpoint_url=store.endpoint_url, region=REGION)
    for group in push:
        records = [wire(group, row) for row in offline.rows[group.name]]
        for start in range(0, len(records), 25):
            response = client.batch_write_record(
                Entries=[
                    {"FeatureGroupName": group.name, "Record": r, "TargetStores": ["OnlineStore"]}
                    for r in records[start : start + 25]
                ]
            )
            assert not response["Errors"] and not response["UnprocessedEntries"]
    client.close()
    store.reset_stats()


@dataclass(frozen=True)
class Check:
    code: int
    report: dict[str, dict[str, Any]]  # group -> its outcome
    out: str
    err: str


def skew_check(
    spark: SparkSession,
    store: LocalFeatureStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    offline_root: Path,
) -> Check:
    """``feature-pipeline skew-check --group all`` as a user runs it, with a 16-attempt budget."""
    conf = tmp_path / "conf.yaml"
    conf.write_text(
        f"""
env: test
spark: {{master: "local[2]", shuffle_partitions: 2}}
sources:
  clickstream: {{path: unused}}
  orders: {{path: unused}}
  customers: {{path: unused}}
snapshot: {{}}
offline_store: {{root: "{offline_root}"}}
quarantine: {{root: "{tmp_path / "quarantine"}"}}
reports: {{root: "{tmp_path / "reports"}"}}
online_store: {{endpoint_url: "{store.endpoint_url}", region: {REGION}, max_attempts: 16, base_backoff_ms: 20, max_backoff_ms: 500}}
"""
    )
    parser = argparse.ArgumentParser()
    SKEW_CHECK.add_arguments(parser)
    capsys.readouterr()
    code = SKEW_CHECK.run(parser.parse_args(["--conf", str(conf), "--group", "all", "--sample", str(ENTITIES)]))
    spark.sparkContext.setLogLevel("ERROR")  # get_spark set WARN on the shared test session
    out, err = capsys.readouterr()
    reports = sorted((tmp_path / "reports" / "skew_check").glob("*.json"))
    assert len(reports) == 1, f"exit {code}, no single report; stderr: {err}"
    return Check(code, {r["group"]: r for r in json.loads(reports[0].read_text())}, out, err)


def outcome(result: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        result[k] for k in ("status", "ok", "error", "sampled", "checked", "matched", "mismatched", "missing_online")
    )


MATCHED = ("matched", True, None, ENTITIES, ENTITIES, ENTITIES, 0, 0)


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(
            FaultConfig(throttle_rate=0.5, error_5xx_rate=0.05, unprocessed_rate=0.05, seed=7), id="half-throttled"
        ),
        pytest.param(FaultConfig(tps_quota=1.0, seed=7), id="tps-quota-1"),
    ],
)
def test_throttled_check_covers_every_group_and_reports_each(
    spark: SparkSession,
    store: LocalFeatureStore,
    offline: Offline,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    faults: FaultConfig,
) -> None:
    publish(store, offline, register=GROUPS, push=GROUPS)
    store.set_faults(faults)

    check = skew_check(spark, store, tmp_path, capsys, offline.root)

    assert check.code == 0, check.err
    assert sorted(check.report) == ["customer_activity", "customer_orders", "customer_profile"]
    assert {name: outcome(r) for name, r in check.report.items()} == {g.name: MATCHED for g in GROUPS}
    stats = store.stats()
    assert stats["throttled"] > 0
    assert sum(r["throttled"] for r in check.report.values()) == stats["throttled"]
    assert sum(r["requests"] for r in check.report.values()) == stats["requests_by_op"]["BatchGetRecord"]
    assert all(r["retried"] > 0 for r in check.report.values() if r["throttled"])
    for group in GROUPS:
        assert f"{group.name}: matched" in check.out


def test_group_never_pushed_is_skew_named_and_the_others_still_checked(
    spark: SparkSession, store: LocalFeatureStore, offline: Offline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(store, offline, register=GROUPS, push=(customer_activity, customer_profile))
    store.set_faults(FaultConfig(throttle_rate=0.3, seed=7))

    check = skew_check(spark, store, tmp_path, capsys, offline.root)

    assert check.code == 1
    orders = check.report["customer_orders"]
    assert outcome(orders) == ("skew", False, None, ENTITIES, ENTITIES, 0, 0, ENTITIES)
    assert sorted(orders["missing"]) == [f"C{i:06d}" for i in range(ENTITIES)]
    assert (outcome(check.report["customer_activity"]), outcome(check.report["customer_profile"])) == (MATCHED, MATCHED)
    assert check.err.startswith("skew-check failed:") and "customer_orders" in check.err
    assert "customer_activity" not in check.err and "customer_profile" not in check.err
    assert "customer_orders: SKEW" in check.out


def test_group_unknown_online_is_an_error_for_that_group_only(
    spark: SparkSession, store: LocalFeatureStore, offline: Offline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(store, offline, register=(customer_activity, customer_orders), push=(customer_activity, customer_orders))
    store.set_faults(FaultConfig(throttle_rate=0.3, seed=7))

    check = skew_check(spark, store, tmp_path, capsys, offline.root)

    assert check.code == 1
    profile = check.report["customer_profile"]
    assert (profile["status"], profile["ok"], profile["sampled"], profile["checked"]) == ("error", False, ENTITIES, 0)
    assert "ResourceNotFound" in profile["error"] and "\n" not in profile["error"]
    assert (outcome(check.report["customer_activity"]), outcome(check.report["customer_orders"])) == (MATCHED, MATCHED)
    assert "customer_profile" in check.err and "ResourceNotFound" in check.err
    assert "customer_activity" not in check.err and "customer_orders" not in check.err


def test_group_without_offline_snapshot_is_an_error_and_the_others_still_checked(
    spark: SparkSession, store: LocalFeatureStore, offline: Offline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "offline"
    for group in (customer_orders, customer_profile):
        shutil.copytree(offline.root / group.name, root / group.name)
    publish(store, offline, register=GROUPS, push=GROUPS)

    check = skew_check(spark, store, tmp_path, capsys, root)

    assert check.code == 1
    activity = check.report["customer_activity"]
    assert (activity["status"], activity["sampled"], activity["checked"]) == ("error", 0, 0)
    assert "no snapshot of customer_activity" in activity["error"]
    assert (outcome(check.report["customer_orders"]), outcome(check.report["customer_profile"])) == (MATCHED, MATCHED)
    assert "customer_activity" in check.err and "customer_orders" not in check.err
