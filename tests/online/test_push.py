"""The online push end to end: Spark foreachPartition -> boto3 -> the local Feature Store runtime.

Every test starts its own LocalFeatureStore on a temporary SQLite file (port 0) and stops it.
The executors build the production client (``default_client_factory``) with the placeholder keys
the settings carry for a loopback endpoint, exactly as a run without AWS credentials does; the
driver's own clients decide the same rule themselves.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from featurestore_local import FaultConfig, LocalFeatureStore
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.definitions import Derived, FeatureGroup, Source
from features.online.client import control_client, default_client_factory, record_as_dict, runtime_client
from features.online.push import push_snapshot
from features.online.registration import register_groups
from features.online.replay import replay_dead_letters
from features.online.settings import PushError, PushResult, PushSettings
from features.sources import CUSTOMER

SCHEMA = "customer_id string, event_time string, visits bigint, spend double, segment string"
T1 = "2026-10-30T00:00:00Z"
T2 = "2026-10-31T00:00:00Z"


def make_group(name: str = "push_test", *extra: Derived) -> FeatureGroup:
    source = Source(name="people", description="test source", columns={"customer_id": "string"}, key="customer_id")

    def feature(fname: str, dtype: Any) -> Derived:
        return Derived(name=fname, dtype=dtype, inputs=(), expr=lambda t: F.lit(None), description=f"test {fname}")

    return FeatureGroup(
        name=name,
        description="Features for push tests",
        entity=CUSTOMER,
        source=source,
        derived=(feature("visits", "Integral"), feature("spend", "Fractional"), feature("segment", "String"), *extra),
    )


GROUP = make_group()


class _DiesMidPartition:
    """Wraps a client; the first attempt of every task kills its Python worker after ``calls`` calls."""

    def __init__(self, client: Any, calls: int) -> None:
        self._client = client
        self._left = calls
        context = TaskContext.get()
        self._first_attempt = context is not None and context.attemptNumber() == 0

    def _tick(self) -> None:
        self._left -= 1
        if self._first_attempt and self._left < 0:
            os._exit(1)

    def put_record(self, **kwargs: Any) -> Any:
        self._tick()
        return self._client.put_record(**kwargs)

    def batch_write_record(self, **kwargs: Any) -> Any:
        self._tick()
        return self._client.batch_write_record(**kwargs)


@dataclass(frozen=True)
class DieAfter:
    calls: int

    def __call__(self, settings: PushSettings) -> Any:
        return _DiesMidPartition(default_client_factory(settings), self.calls)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalFeatureStore]:
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0) as server:
        register_groups(
            control_client(endpoint_url=server.endpoint_url, region="us-east-1"),
            [GROUP],
            offline_s3_uri=None,
            role_arn=None,
        )
        yield server


def settings_for(store: LocalFeatureStore, tmp_path: Path, **overrides: Any) -> PushSettings:
    values: dict[str, Any] = {
        "endpoint_url": store.endpoint_url,
        "region": "us-east-1",
        "dead_letter_root": str(tmp_path / "dead-letters"),
        "base_backoff_ms": 2,
        "max_backoff_ms": 50,
        "max_in_flight": 8,
        "placeholder_credentials": True,
        **overrides,
    }
    return PushSettings(**values)


def push(
    df: DataFrame, store: LocalFeatureStore, tmp_path: Path, *, group: FeatureGroup = GROUP, **kw: Any
) -> PushResult:
    factory = kw.pop("client_factory", default_client_factory)
    run_id = kw.pop("run_id", "run-1")
    return push_snapshot(
        df, group=group, settings=settings_for(store, tmp_path, **kw), run_id=run_id, client_factory=factory
    )


def sample_rows(n: int, event_time: str = T2, scale: int = 1) -> list[tuple[Any, ...]]:
    """Values that exercise formatting: big/negative ints, awkward doubles, unicode, empty, nulls."""
    doubles = [0.1, 1 / 3, -1e-300, 1.7976931348623157e308, 2.5e16, -0.0, 123456.789]
    strings = ["gold", "Zürich 東京", "", 'quote " and \\ slash', "x" * 300]
    rows = []
    for i in range(n):
        visits = None if i % 11 == 0 else (i * scale if i % 7 else -(2**62) + i)
        spend = None if i % 13 == 0 else doubles[(i + scale) % len(doubles)]
        segment = None if i % 17 == 0 else strings[(i + scale) % len(strings)]
        rows.append((f"C{i:06d}", event_time, visits, spend, segment))
    return rows


def read_online(store: LocalFeatureStore, spark: SparkSession, group: str, ids: list[str], schema: str) -> DataFrame:
    """Every online record of ``ids`` (BatchGetRecord, 100 ids per call) as a DataFrame of ``schema``."""
    store.set_faults(FaultConfig())
    client = runtime_client(endpoint_url=store.endpoint_url, region="us-east-1")
    found: list[dict[str, str]] = []
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        response = client.batch_get_record(
            Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": chunk}]
        )
        assert not response["Errors"] and not response["UnprocessedIdentifiers"]
        found.extend(record_as_dict(r["Record"]) for r in response["Records"])
    fields = [f.split() for f in schema.split(", ")]
    parse = {"bigint": int, "double": float, "string": str}
    rows = [tuple(parse[t](r[n]) if n in r else None for n, t in fields) for r in found]
    return spark.createDataFrame(rows, schema)


def dead_letter_lines(result: PushResult) -> list[dict[str, Any]]:
    assert result.dead_letter_path is not None
    return [json.loads(line) for f in sorted(Path(result.dead_letter_path).glob("*.jsonl")) for line in f.open()]


@pytest.mark.parametrize("write_api", ["batch_write_record", "put_record"])
def test_push_under_faults_writes_every_record_or_dead_letters_it(
    spark: SparkSession, store: LocalFeatureStore, tmp_path: Path, write_api: str
) -> None:
    rows = sample_rows(300)
    df = spark.createDataFrame(rows, SCHEMA)
    store.set_faults(
        FaultConfig(throttle_rate=0.2, error_5xx_rate=0.05, unprocessed_rate=0.05, latency_ms=2, jitter_ms=5, seed=7)
    )

    result = push(df, store, tmp_path, write_api=write_api, max_attempts=10, dead_letter_tolerance=300)

    assert result.records == 300 == result.written + result.dead_lettered
    assert result.throttled > 0 and result.retried >= result.throttled
    failed = (
        {line["record"][0]["ValueAsString"] for line in dead_letter_lines(result)} if result.dead_lettered else set()
    )
    assert len(failed) == result.dead_lettered
    expected = df.where(~F.col("customer_id").isin(list(failed)))
    online = read_online(store, spark, GROUP.name, [r[0] for r in rows], SCHEMA)
    assert_df_equality(online, expected, ignore_row_order=True)


def test_task_killed_mid_partition_loses_nothing(spark: SparkSession, store: LocalFeatureStore, tmp_path: Path) -> None:
    rows = sample_rows(400)
    df = spark.createDataFrame(rows, SCHEMA)

    result = push(df, store, tmp_path, client_factory=DieAfter(calls=3), partitions=2)

    assert (result.records, result.written, result.dead_lettered) == (400, 400, 0)
    assert store.stats()["records_written"] > 400  # the killed attempts had written some already
    assert_df_equality(read_online(store, spark, GROUP.name, [r[0] for r in rows], SCHEMA), df, ignore_row_order=True)


def test_older_snapshot_never_replaces_newer_values(
    spark: SparkSession, store: LocalFeatureStore, tmp_path: Path
) -> None:
    newer = spark.createDataFrame(sample_rows(50, T2, scale=2), SCHEMA)
    older = spark.createDataFrame(sample_rows(50, T1, scale=3), SCHEMA).withColumn(
        "event_time",
        F.to_timestamp("event_time"),  # a timestamp column is accepted and written as UTC text
    )

    push(newer, store, tmp_path, run_id="newer")
    result = push(older, store, tmp_path, run_id="older", write_api="put_record")

    assert result.written == 50
    online = read_online(store, spark, GROUP.name, [f"C{i:06d}" for i in range(50)], SCHEMA)
    assert_df_equality(online, newer, ignore_row_order=True)


def test_latest_record_per_entity_is_pushed(spark: SparkSession, store: LocalFeatureStore, tmp_path: Path) -> None:
    df = spark.createDataFrame(
        [("C1", T1, 1, None, "old"), ("C1", T2, 2, None, "new"), ("C2", T1, 3, 0.5, None)], SCHEMA
    )

    result = push(df, store, tmp_path)

    assert (result.records, result.written) == (2, 2)
    online = read_online(store, spark, GROUP.name, ["C1", "C2"], SCHEMA)
    assert sorted(online.collect()) == sorted(df.where("segment IS NULL OR segment = 'new'").collect())


INVALID_SCHEMA = (
    "customer_id string, event_time string, visits decimal(20,0), spend double, segment string, tier string"
)
TIER = Derived(name="tier", dtype="String", inputs=(), expr=lambda t: F.lit(None), description="not registered")


def invalid_rows() -> list[tuple[Any, ...]]:
    """30 good rows, 4 with a feature the registered group lacks, one int64 overflow, one NaN."""
    rows: list[tuple[Any, ...]] = [(f"C{i:06d}", T2, Decimal(i), i / 4, "ok", None) for i in range(30)]
    rows += [(f"T{i}", T2, Decimal(1), 1.0, "ok", "gold") for i in range(4)]
    rows.append(("BIG", T2, Decimal(2**63), 1.0, "ok", None))
    rows.append(("NAN", T2, Decimal(1), math.nan, "ok", None))
    return rows


@pytest.mark.parametrize("write_api", ["batch_write_record", "put_record"])
def test_invalid_records_are_dead_lettered_with_the_service_message(
    spark: SparkSession, store: LocalFeatureStore, tmp_path: Path, write_api: str
) -> None:
    df = spark.createDataFrame(invalid_rows(), INVALID_SCHEMA)

    with pytest.raises(PushError, match=r"dead-lettered 6 of 36 records \(tolerance 0\): ValidationError x5") as info:
        push(df, store, tmp_path, group=make_group("push_test", TIER), write_api=write_api)

    result = info.value.result
    assert result is not None
    assert (result.records, result.written, result.dead_lettered, result.retried) == (36, 30, 6, 0)
    assert result.dead_letter_reasons == {"ValidationError": 5, "InvalidValue": 1}
    requests = store.stats()["requests_by_op"].get("PutRecord" if write_api == "put_record" else "BatchWriteRecord")
    assert requests <= (35 if write_api == "put_record" else 4)  # one try each: nothing retried
    lines = {line["record"][0]["ValueAsString"]: line for line in dead_letter_lines(result)}
    assert set(lines) == {"T0", "T1", "T2", "T3", "BIG", "NAN"}
    assert lines["T0"] == {
        "group": "push_test",
        "record": [
            {"FeatureName": "customer_id", "ValueAsString": "T0"},
            {"FeatureName": "event_time", "ValueAsString": T2},
            {"FeatureName": "visits", "ValueAsString": "1"},
            {"FeatureName": "spend", "ValueAsString": "1.0"},
            {"FeatureName": "segment", "ValueAsString": "ok"},
            {"FeatureName": "tier", "ValueAsString": "gold"},
        ],
        "reason": "ValidationError: Feature tier is not defined in FeatureGroup push_test",
        "attempts": 1,
    }
    assert lines["BIG"]["reason"] == (
        "ValidationError: Value '9223372036854775808' of feature visits is not a valid Integral (64-bit integer)"
    )
    assert lines["NAN"]["attempts"] == 0 and "spend is nan" in lines["NAN"]["reason"]


def test_replay_after_the_fix_writes_the_records_and_is_idempotent(
    spark: SparkSession, store: LocalFeatureStore, tmp_path: Path
) -> None:
    df = spark.createDataFrame([r for r in invalid_rows() if r[0] != "NAN"], INVALID_SCHEMA)
    variant = make_group("push_test", TIER)
    with pytest.raises(PushError) as info:
        push(df, store, tmp_path, group=variant)
    first = info.value.result
    assert first is not None and first.dead_letter_path is not None and first.dead_lettered == 5
    original = sorted(Path(first.dead_letter_path).glob("*.jsonl"))
    before = [f.read_text() for f in original]

    # The fix: the group is re-created with the new feature (the int64 overflow stays unfixable).
    sm = control_client(endpoint_url=store.endpoint_url, region="us-east-1")
    sm.delete_feature_group(FeatureGroupName="push_test")
    register_groups(sm, [variant], offline_s3_uri=None, role_arn=None)
    settings = settings_for(store, tmp_path, dead_letter_root=str(tmp_path / "replayed"), dead_letter_tolerance=1)

    def online() -> list[Any]:
        ids = ["T0", "T1", "T2", "T3", "BIG"]
        return sorted(
            read_online(store, spark, "push_test", ids, INVALID_SCHEMA.replace("decimal(20,0)", "bigint")).collect()
        )

    results = []
    states = []
    for _ in range(2):
        results.append(replay_dead_letters(first.dead_letter_path, settings=settings))
        states.append(online())

    for result in results:
        assert (result.records, result.written, result.dead_lettered) == (5, 4, 1)
        assert result.dead_letter_path is not None and result.dead_letter_path.startswith(str(tmp_path / "replayed"))
        [line] = dead_letter_lines(result)
        assert line["record"][0]["ValueAsString"] == "BIG" and "64-bit integer" in line["reason"]
    assert results[0].dead_letter_path != results[1].dead_letter_path
    assert states[0] == states[1] and len(states[0]) == 4
    assert {row.customer_id: row.tier for row in states[0]} == {f"T{i}": "gold" for i in range(4)}
    assert [f.read_text() for f in original] == before  # the input is left as it was


def test_missing_group_stops_the_push_with_one_line(
    spark: SparkSession, store: LocalFeatureStore, tmp_path: Path
) -> None:
    df = spark.createDataFrame(sample_rows(10), SCHEMA)

    with pytest.raises(PushError, match=r"^online push of nowhere stopped: ResourceNotFound: .*nowhere$"):
        push(df, store, tmp_path, group=make_group("nowhere"))


def test_columns_are_checked_before_anything_is_sent(
    spark: SparkSession, store: LocalFeatureStore, tmp_path: Path
) -> None:
    df = spark.createDataFrame(
        [("C1", T2, 1.5, "x")], "customer_id string, event_time string, visits double, extra string"
    )

    with pytest.raises(ValueError, match="columns not defined in feature group push_test: extra; visits is double"):
        push(df, store, tmp_path)
    assert "PutRecord" not in store.stats()["requests_by_op"]
