"""The training-serving skew check against the local Feature Store runtime.

The online records are written here with boto3 ``put_record`` in the documented wire format
(Integral as an integer string, Fractional as ``repr(float)``, nulls left out, the event time as
a string), independently of the push code, so the check is tested against the format itself.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from featurestore_local import FaultConfig, LocalFeatureStore
from pyspark.sql import DataFrame, SparkSession

from features.cli.skew import SKEW_CHECK
from features.groups.customer_orders import customer_orders
from features.load.offline import write_snapshot
from features.online.client import control_client, runtime_client
from features.online.reader import ReadRetry, RecordReader
from features.online.registration import register_groups
from features.transform.windows import snapshot
from features.validate.skew import check_skew, values_match

T = datetime(2026, 10, 31, tzinfo=UTC)
DAY = timedelta(days=1)
ORDERS = "order_id string, customer_id string, order_time timestamp, total_amount decimal(12,2), item_count int, status string"
REGION = "us-east-1"
GROUP = customer_orders.name


def at(delta: timedelta) -> datetime:
    return (T + delta).replace(tzinfo=None)


def offline_snapshot(spark: SparkSession) -> DataFrame:
    """Six customers with whole, fractional and null features (empty windows, never-completed)."""
    rows = []
    for n in range(1, 7):
        rows += [
            (f"o{n}a", f"C{n}", at(-n * DAY), Decimal(f"{n}.25"), 1, "completed"),
            (f"o{n}b", f"C{n}", at(-10 * n * DAY), Decimal("19.99"), 2, "completed" if n != 6 else "cancelled"),
        ]
    rows[-2] = ("o6a", "C6", at(-6 * DAY), Decimal("3.33"), 1, "cancelled")  # C6 never completed
    orders = spark.createDataFrame(rows, ORDERS)
    return snapshot(orders, group=customer_orders, as_of=T, dropout_lookback=DAY)


def wire(row: dict[str, Any]) -> list[dict[str, str]]:
    types = {f.name: f.dtype for f in customer_orders.features}
    record = []
    for name, value in row.items():
        if value is None:
            continue
        dtype = types.get(name, "String")
        text = str(int(value)) if dtype == "Integral" else repr(float(value)) if dtype == "Fractional" else str(value)
        record.append({"FeatureName": name, "ValueAsString": text})
    return record


@pytest.fixture
def stores(spark: SparkSession, tmp_path: Path) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(offline root, online runtime client, offline rows by entity), both stores holding the same snapshot."""
    root = str(tmp_path / "offline")
    df = offline_snapshot(spark)
    rows = {r["customer_id"]: r.asDict() for r in df.collect()}
    write_snapshot(spark, df, root=root, group=GROUP, as_of=T, run_id="r1", rows=len(rows), write_time=T)
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0) as server:
        register_groups(
            control_client(endpoint_url=server.endpoint_url, region=REGION),
            [customer_orders],
            offline_s3_uri=None,
            role_arn=None,
        )
        client = runtime_client(endpoint_url=server.endpoint_url, region=REGION)
        for row in rows.values():
            client.put_record(FeatureGroupName=GROUP, Record=wire(row))
        yield root, client, rows
        client.close()


def test_identical_stores_then_three_planted_differences(
    spark: SparkSession, stores: tuple[str, Any, dict[str, Any]]
) -> None:
    root, client, rows = stores
    endpoint = client.meta.endpoint_url
    clean = check_skew(
        spark, group=customer_orders, offline_root=root, endpoint_url=endpoint, region=REGION, sample=100, seed=1
    )
    assert (clean.ok, clean.sampled, clean.compared, clean.mismatches, clean.missing) == (True, 6, 6, [], [])
    assert clean.snapshot_event_time == "2026-10-31T00:00:00Z"
    assert rows["C6"]["days_since_last_order"] is None and rows["C6"]["order_amount_avg_7d"] is None

    later = (T + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = {**rows["C1"], "event_time": later, "order_count_30d": rows["C1"]["order_count_30d"] + 1}
    client.put_record(FeatureGroupName=GROUP, Record=wire(changed))  # Integral value differs
    filled = {**rows["C6"], "event_time": later, "days_since_last_order": 3}
    client.put_record(FeatureGroupName=GROUP, Record=wire(filled))  # null offline, present online
    client.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="C4", EventTime=later)

    skew = check_skew(
        spark, group=customer_orders, offline_root=root, endpoint_url=endpoint, region=REGION, sample=100, seed=1
    )
    assert not skew.ok
    assert sorted(skew.mismatches, key=lambda m: str(m["entity"])) == [
        {"entity": "C1", "feature": "order_count_30d", "offline": 2, "online": "3"},
        {"entity": "C6", "feature": "days_since_last_order", "offline": None, "online": "3"},
    ]
    assert skew.missing == ["C4"]
    assert sorted(m["entity"] for m in skew.event_time_mismatches) == ["C1", "C6"]
    assert (skew.sampled, skew.compared, skew.errors) == (6, 5, [])
    assert json.loads(json.dumps(skew.to_dict()))["ok"] is False


def test_comparison_rules() -> None:
    tol = 1e-9
    assert values_match("Fractional", 0.1 + 0.2, repr(0.30000000000000004), tol)
    assert values_match("Fractional", 1.0, "1.0000000000001", tol)
    assert not values_match("Fractional", 1.0, "1.000001", tol)
    assert values_match("Integral", 7, "7", tol) and not values_match("Integral", 7, "7.5", tol)
    assert values_match("String", "DE", "DE", tol) and not values_match("String", "DE", "de", tol)
    assert values_match("Integral", None, None, tol)
    assert not values_match("Integral", None, "0", tol) and not values_match("Integral", 0, None, tol)


def test_cli_exit_codes_and_report(
    spark: SparkSession, stores: tuple[str, Any, dict[str, Any]], tmp_path: Path
) -> None:
    root, client, _ = stores
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
offline_store: {{root: "{root}"}}
quarantine: {{root: "{tmp_path / "quarantine"}"}}
reports: {{root: "{tmp_path / "reports"}"}}
online_store: {{endpoint_url: "{client.meta.endpoint_url}", region: {REGION}}}
"""
    )
    parser = argparse.ArgumentParser()
    SKEW_CHECK.add_arguments(parser)
    args = parser.parse_args(["--conf", str(conf), "--group", GROUP, "--sample", "3", "--seed", "5"])
    assert SKEW_CHECK.run(args) == 0
    client.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="C1", EventTime="2026-11-01T00:00:00Z")
    args = parser.parse_args(
        ["--conf", str(conf), "--group", GROUP, "--sample", "100", "--set", "online_store.region=us-east-1"]
    )
    assert SKEW_CHECK.run(args) == 1
    [report] = sorted((tmp_path / "reports" / "skew_check").glob("*.json"))[-1:]
    [result] = json.loads(report.read_text())
    assert (result["group"], result["missing"], result["ok"]) == (GROUP, ["C1"], False)
    bad = parser.parse_args(["--conf", str(conf), "--group", "nope"])
    assert SKEW_CHECK.run(bad) == 2
    spark.sparkContext.setLogLevel("ERROR")  # get_spark set WARN on the shared test session


class _AnswersWithErrors:
    """Wraps a runtime client: the first answer turns C2 and C3 into a throttled and a transient
    ``Errors`` entry; every answer turns C5 into a ValidationError."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[list[str]] = []

    def batch_get_record(self, **kwargs: Any) -> Any:
        asked = kwargs["Identifiers"][0]["RecordIdentifiersValueAsString"]
        self.calls.append(list(asked))
        response = self._client.batch_get_record(**kwargs)
        codes = {"C5": "ValidationError"} | (
            {"C2": "ThrottlingException", "C3": "InternalFailure"} if len(self.calls) == 1 else {}
        )
        response["Records"] = [r for r in response["Records"] if r["RecordIdentifierValueAsString"] not in codes]
        response["Errors"] = [
            {
                "FeatureGroupName": GROUP,
                "RecordIdentifierValueAsString": e,
                "ErrorCode": c,
                "ErrorMessage": f"injected {c}",
            }
            for e, c in codes.items()
            if e in asked
        ]
        return response


def test_reader_retries_retryable_error_entries_only(stores: tuple[str, Any, dict[str, Any]]) -> None:
    _, client, _ = stores
    wrapped = _AnswersWithErrors(client)
    reader = RecordReader(wrapped, ReadRetry(max_attempts=3, base_backoff_ms=1, max_backoff_ms=1))

    reads = reader.read(GROUP, ["C1", "C2", "C3", "C4", "C5", "C6", "C9"])

    assert wrapped.calls == [["C1", "C2", "C3", "C4", "C5", "C6", "C9"], ["C2", "C3"]]
    assert sorted(reads.found) == ["C1", "C2", "C3", "C4", "C6"]  # C9 has no record: absent, not failed
    assert {e: (f.code, f.message) for e, f in reads.failed.items()} == {
        "C5": ("ValidationError", "injected ValidationError")
    }
    assert (reads.requests, reads.retried, reads.throttled) == (2, 2, 1)


def test_reader_gives_up_per_call_after_the_budget_and_reads_the_next_call(tmp_path: Path) -> None:
    ids = [f"X{i:03d}" for i in range(150)]  # two calls: 100 + 50
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0, faults=FaultConfig(throttle_rate=1.0)) as server:
        register_groups(
            control_client(endpoint_url=server.endpoint_url, region=REGION),
            [customer_orders],
            offline_s3_uri=None,
            role_arn=None,
        )
        reader = RecordReader(
            runtime_client(endpoint_url=server.endpoint_url, region=REGION),
            ReadRetry(max_attempts=3, base_backoff_ms=1, max_backoff_ms=1),
        )
        reads = reader.read(GROUP, ids)
        stats = server.stats()

    assert (reads.found, reads.requests, reads.throttled, reads.retried) == ({}, 6, 6, 2 * 100 + 2 * 50)
    assert stats["requests_by_op"]["BatchGetRecord"] == 6
    assert sorted(reads.failed) == ids
    assert {(f.code, f.message) for f in reads.failed.values()} == {
        (
            "RetriesExhausted(ThrottlingException)",
            "gave up after 3 attempts; last error ThrottlingException: Rate exceeded",
        )
    }


def test_reads_a_delta_table_as_of_a_version_or_time(spark: SparkSession, tmp_path: Path) -> None:
    """Online holds the first write of T; a rerun of T changed C1 offline. The current table shows
    the skew; the table as of version 0, or as of a time before the rerun, matches."""
    root = str(tmp_path / "offline")
    df = offline_snapshot(spark)
    rows = {r["customer_id"]: r.asDict() for r in df.collect()}
    write_snapshot(spark, df, root=root, group=GROUP, as_of=T, run_id="r1", rows=6, write_time=T, format="delta")
    between = datetime.now(tz=UTC).replace(microsecond=0) + timedelta(seconds=1)
    while datetime.now(tz=UTC) <= between:  # commit timestamps have millisecond precision
        pass
    changed = df.withColumn("order_count_30d", df["order_count_30d"] + (df["customer_id"] == "C1").cast("bigint"))
    write_snapshot(spark, changed, root=root, group=GROUP, as_of=T, run_id="r2", rows=6, write_time=T, format="delta")
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0) as server:
        register_groups(
            control_client(endpoint_url=server.endpoint_url, region=REGION),
            [customer_orders],
            offline_s3_uri=None,
            role_arn=None,
        )
        client = runtime_client(endpoint_url=server.endpoint_url, region=REGION)
        for row in rows.values():
            client.put_record(FeatureGroupName=GROUP, Record=wire(row))
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
offline_store: {{root: "{root}", format: delta}}
quarantine: {{root: "{tmp_path / "quarantine"}"}}
reports: {{root: "{tmp_path / "reports"}"}}
online_store: {{endpoint_url: "{server.endpoint_url}", region: {REGION}}}
"""
        )
        parser = argparse.ArgumentParser()
        SKEW_CHECK.add_arguments(parser)
        base = ["--conf", str(conf), "--group", GROUP, "--sample", "100"]
        assert SKEW_CHECK.run(parser.parse_args(base)) == 1
        assert SKEW_CHECK.run(parser.parse_args([*base, "--as-of-version", "0"])) == 0
        stamp = between.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert SKEW_CHECK.run(parser.parse_args([*base, "--as-of-timestamp", stamp])) == 0
        reports = sorted((tmp_path / "reports" / "skew_check").glob("*.json"))
        [result] = json.loads(reports[-1].read_text())
        assert result["offline_as_of"] == f"as of {stamp}" and result["ok"] is True
        assert SKEW_CHECK.run(parser.parse_args([*base, "--as-of-version", "-1"])) == 2
        parquet = ["--set", "offline_store.format=parquet"]
        assert SKEW_CHECK.run(parser.parse_args([*base, *parquet, "--as-of-version", "0"])) == 2
        client.close()
    spark.sparkContext.setLogLevel("ERROR")
