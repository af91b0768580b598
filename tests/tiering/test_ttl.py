"""Online TTL: every pushed record carries the group's ``TtlDuration``; the local runtime then
stores ExpiresAt = EventTime + TTL and stops serving the record after it (docs/online-store.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from featurestore_local import LocalFeatureStore
from pyspark.sql import SparkSession

from features.online.client import control_client, runtime_client
from features.online.deadletter import DeadLetterWriter
from features.online.push import push_snapshot
from features.online.records import ttl_duration
from features.online.registration import register_groups
from features.online.settings import Item, PushSettings
from features.online.writer import Writer
from tests.tiering.conftest import make_group


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (timedelta(days=30), {"Unit": "Days", "Value": 30}),
        (timedelta(days=14), {"Unit": "Weeks", "Value": 2}),
        (timedelta(hours=36), {"Unit": "Hours", "Value": 36}),
        (timedelta(minutes=90), {"Unit": "Minutes", "Value": 90}),
        (timedelta(seconds=61), {"Unit": "Seconds", "Value": 61}),
    ],
)
def test_a_ttl_is_sent_in_the_largest_exact_unit(length: timedelta, expected: dict[str, Any]) -> None:
    assert ttl_duration(length) == expected


def test_a_ttl_below_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="whole number of seconds >= 1"):
        ttl_duration(timedelta(milliseconds=500))


class _Recorder:
    """A runtime client that accepts everything and keeps the requests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def put_record(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("put_record", kwargs))
        return {}

    def batch_write_record(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("batch_write_record", kwargs))
        return {"Errors": [], "UnprocessedEntries": []}


RECORD = [{"FeatureName": "customer_id", "ValueAsString": "C1"}]


@pytest.mark.parametrize("api", ["put_record", "batch_write_record"])
def test_the_writer_sends_ttl_per_record_and_only_when_set(api: Any, tmp_path: Path) -> None:
    client = _Recorder()
    settings = PushSettings(write_api=api, dead_letter_root=str(tmp_path), max_in_flight=1)
    ttl: dict[str, str | int] = {"Unit": "Days", "Value": 3}
    items = [Item("with_ttl", RECORD, ttl), Item("without_ttl", RECORD)]
    Writer(client, settings, DeadLetterWriter(str(tmp_path), "run", "part.jsonl", region="us-east-1")).run(items)
    sent = [kw for _, kw in client.calls] if api == "put_record" else client.calls[0][1]["Entries"]
    by_group = {entry["FeatureGroupName"]: entry for entry in sent}
    assert by_group["with_ttl"]["TtlDuration"] == {"Unit": "Days", "Value": 3}
    assert "TtlDuration" not in by_group["without_ttl"]
    assert {c for c, _ in client.calls} == {api}


@pytest.mark.parametrize("api", ["put_record", "batch_write_record"])
def test_pushed_records_expire_at_event_time_plus_ttl(spark: SparkSession, tmp_path: Path, api: Any) -> None:
    group = make_group(f"ttl_{api}", online_ttl="2d")
    # An event time an hour ago: its record expires two days later, not before.
    event_time = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    stamp = event_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [("C000001", stamp, 3, "a"), ("C000002", stamp, 5, "b")]
    df = spark.createDataFrame(rows, "customer_id string, event_time string, visits bigint, segment string")
    with LocalFeatureStore(db_path=str(tmp_path / "fs.sqlite"), port=0) as store:
        register_groups(
            control_client(endpoint_url=store.endpoint_url, region="us-east-1"),
            [group],
            offline_s3_uri=None,
            role_arn=None,
            poll_s=0.01,
        )
        settings = PushSettings(
            endpoint_url=store.endpoint_url,
            write_api=api,
            dead_letter_root=str(tmp_path / "dl"),
            placeholder_credentials=True,
            partitions=1,
        )
        assert push_snapshot(df, group=group, settings=settings, run_id="r1").written == 2
        client = runtime_client(endpoint_url=store.endpoint_url, region="us-east-1")
        response = client.get_record(
            FeatureGroupName=group.name, RecordIdentifierValueAsString="C000001", ExpirationTimeResponse="Enabled"
        )
        expires = datetime.fromisoformat(response["ExpiresAt"])
        assert expires == event_time + timedelta(days=2)
        batch = client.batch_get_record(
            Identifiers=[{"FeatureGroupName": group.name, "RecordIdentifiersValueAsString": ["C000002"]}],
            ExpirationTimeResponse="Enabled",
        )
        assert datetime.fromisoformat(batch["Records"][0]["ExpiresAt"]) == event_time + timedelta(days=2)

        store.set_clock_offset(timedelta(days=2, hours=1).total_seconds())  # past ExpiresAt
        after = client.get_record(FeatureGroupName=group.name, RecordIdentifierValueAsString="C000001")
        assert "Record" not in after or not after["Record"]
        batch = client.batch_get_record(
            Identifiers=[{"FeatureGroupName": group.name, "RecordIdentifiersValueAsString": ["C000001", "C000002"]}]
        )
        assert batch["Records"] == []
