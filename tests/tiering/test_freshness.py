"""``feature-pipeline freshness``: the age of the online records against each group's SLA.

Records are put straight into the local runtime with hand-chosen event times; ages are judged
``--at`` a fixed time, so nothing depends on the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from featurestore_local import LocalFeatureStore

from features.cli import main
from features.cli.freshness import check_group, list_ids
from features.groups.customer_profile import customer_profile
from features.online.client import control_client, runtime_client
from features.online.reader import ReadRetry, RecordReader
from features.online.registration import register_groups
from tests.tiering.conftest import make_group

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
SLA_GROUP = make_group("fresh_test", freshness_sla="26h")
NO_SLA = make_group("no_sla_test")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def put(client: Any, group: str, record_id: str, event_time: datetime) -> None:
    record = [
        {"FeatureName": "customer_id", "ValueAsString": record_id},
        {"FeatureName": "event_time", "ValueAsString": stamp(event_time)},
    ]
    client.put_record(FeatureGroupName=group, Record=record)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[LocalFeatureStore, Any]]:
    with LocalFeatureStore(db_path=str(tmp_path / "fs.sqlite"), port=0) as local:
        register_groups(
            control_client(endpoint_url=local.endpoint_url, region="us-east-1"),
            [SLA_GROUP, NO_SLA, customer_profile],
            offline_s3_uri=None,
            role_arn=None,
            poll_s=0.01,
        )
        client = runtime_client(endpoint_url=local.endpoint_url, region="us-east-1", botocore_retries=True)
        yield local, client
        client.close()


def check(client: Any, group: Any, sample: int = 100) -> Any:
    return check_group(client, RecordReader(client, ReadRetry()), group, sample=sample, at=AT)


def test_fresh_when_the_newest_record_is_within_the_sla(store: tuple[LocalFeatureStore, Any]) -> None:
    _, client = store
    put(client, SLA_GROUP.name, "C1", AT - timedelta(hours=2))
    put(client, SLA_GROUP.name, "C2", AT - timedelta(days=3))  # an entity that left every window
    result = check(client, SLA_GROUP)
    assert (result.status, result.sampled, result.read, result.over_sla) == ("fresh", 2, 2, 1)
    assert result.newest_event_time == "2026-11-02T10:00:00Z" and result.newest_age_s == 7200
    assert result.oldest_event_time == "2026-10-30T12:00:00Z" and result.oldest_age_s == 3 * 86400


def test_stale_when_even_the_newest_record_is_older_than_the_sla(store: tuple[LocalFeatureStore, Any]) -> None:
    _, client = store
    put(client, SLA_GROUP.name, "C1", AT - timedelta(hours=27))
    result = check(client, SLA_GROUP)
    assert (result.status, result.over_sla) == ("stale", 1)
    assert result.note == "newest record is 1d 3h old, over the 26h SLA"


def test_no_records_no_sla_batch_only_and_unknown_groups(store: tuple[LocalFeatureStore, Any]) -> None:
    _, client = store
    assert check(client, SLA_GROUP).status == "empty"
    put(client, NO_SLA.name, "C1", AT - timedelta(days=9))
    assert check(client, NO_SLA).status == "no_sla"
    assert check(client, make_group("batch_test", online=False)).status == "skipped"
    missing = check(client, make_group("never_registered"))
    assert missing.status == "error" and missing.note is not None
    assert missing.note.startswith("cannot list records: ResourceNotFound")


def test_the_sample_spans_list_records_pages(store: tuple[LocalFeatureStore, Any]) -> None:
    _, client = store
    for n in range(130):
        put(client, SLA_GROUP.name, f"C{n:06d}", AT - timedelta(hours=1))
    assert len(list_ids(client, SLA_GROUP.name, 120)) == 120
    assert len(set(list_ids(client, SLA_GROUP.name, 500))) == 130
    assert check(client, SLA_GROUP, sample=120).read == 120


def test_the_command_exits_1_when_stale_with_table_and_json(
    store: tuple[LocalFeatureStore, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local, client = store
    put(client, customer_profile.name, "C000001", datetime(2026, 10, 31, tzinfo=UTC))
    base = [
        "freshness",
        "--conf",
        str(ROOT / "conf/local.yaml"),
        "--set",
        f"online_store.endpoint_url={local.endpoint_url}",
        "--set",
        "online_store.embedded_db=null",
        "--groups",
        customer_profile.name,
    ]
    assert main([*base, "--at", "2026-10-31T20:00:00Z", "--json"]) == 0
    (verdict,) = json.loads(capsys.readouterr().out)
    assert verdict["status"] == "fresh" and verdict["newest_age_s"] == 20 * 3600
    assert main([*base, "--at", "2026-11-01T03:00:00Z"]) == 1
    out = capsys.readouterr()
    assert "customer_profile  stale" in out.out and "1d 3h" in out.out
    assert out.err.strip() == "freshness: customer_profile stale (newest record is 1d 3h old, over the 26h SLA)"
    assert main([*base, "--at", "yesterday"]) == 2
