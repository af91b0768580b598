"""The local Feature Store runtime, driven end to end with real boto3 clients.

Everything goes over HTTP through botocore's serializers and parsers, so these
tests also prove the wire shapes (routes, query members, error codes) match
what production code will send and expect.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import (
    RetryContext,
    RetryEventAdapter,
    ThrottlingErrorDetector,
)
from featurestore_local import FaultConfig, LocalFeatureStore, main

REPO_ROOT = Path(__file__).resolve().parents[2]
GROUP = "customers"
FEATURES = [
    {"FeatureName": "customer_id", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "String"},
    {"FeatureName": "orders", "FeatureType": "Integral"},
    {"FeatureName": "spend", "FeatureType": "Fractional"},
    {"FeatureName": "segment", "FeatureType": "String"},
]


class FakeClock:
    """Injected wall clock so TTL tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(customer_id: str, event_time: str, **values: str) -> list[dict[str, str]]:
    features = {"customer_id": customer_id, "event_time": event_time, **values}
    return [{"FeatureName": name, "ValueAsString": value} for name, value in features.items()]


def as_dict(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["FeatureName"]: item["ValueAsString"] for item in features}


def client(service: str, endpoint: str, **retries: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries=retries or {"total_max_attempts": 1, "mode": "standard"}),
    )


def create_group(sm: Any, name: str = GROUP, **online: Any) -> str:
    response = sm.create_feature_group(
        FeatureGroupName=name,
        RecordIdentifierFeatureName="customer_id",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=FEATURES,
        OnlineStoreConfig={"EnableOnlineStore": True, **online},
    )
    return str(response["FeatureGroupArn"])


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


# -- control plane ----------------------------------------------------------


def test_feature_group_lifecycle(sm: Any) -> None:
    arn = sm.create_feature_group(
        FeatureGroupName=GROUP,
        RecordIdentifierFeatureName="customer_id",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=FEATURES,
        OnlineStoreConfig={
            "EnableOnlineStore": True,
            "TtlDuration": {"Unit": "Days", "Value": 7},
        },
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bucket/offline"}},
        Description="per-customer features",
    )["FeatureGroupArn"]
    assert arn.endswith(f":feature-group/{GROUP}") and ":us-east-1:" in arn

    described = sm.describe_feature_group(FeatureGroupName=GROUP)
    assert described["FeatureGroupStatus"] == "Created"
    assert described["FeatureGroupArn"] == arn
    assert described["FeatureDefinitions"] == FEATURES
    assert described["RecordIdentifierFeatureName"] == "customer_id"
    assert described["EventTimeFeatureName"] == "event_time"
    assert described["OnlineStoreConfig"]["TtlDuration"] == {"Unit": "Days", "Value": 7}
    offline = described["OfflineStoreConfig"]
    assert offline["S3StorageConfig"]["ResolvedOutputS3Uri"].startswith("s3://bucket/offline/")
    assert described["OfflineStoreStatus"] == {"Status": "Active"}
    assert described["Description"] == "per-customer features"
    assert isinstance(described["CreationTime"], datetime)

    with pytest.raises(ClientError) as excinfo:
        create_group(sm)
    assert error_of(excinfo)[0] == "ResourceInUse"
    assert isinstance(excinfo.value, sm.exceptions.ResourceInUse)

    create_group(sm, "orders")
    create_group(sm, "other")
    first = sm.list_feature_groups(MaxResults=2, SortBy="Name", SortOrder="Ascending")
    assert [g["FeatureGroupName"] for g in first["FeatureGroupSummaries"]] == [
        GROUP,
        "orders",
    ]
    rest = sm.list_feature_groups(MaxResults=2, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"])
    assert [g["FeatureGroupName"] for g in rest["FeatureGroupSummaries"]] == ["other"]
    assert "NextToken" not in rest
    named = sm.list_feature_groups(NameContains="ORD")["FeatureGroupSummaries"]
    assert [g["FeatureGroupName"] for g in named] == ["orders"]

    sm.delete_feature_group(FeatureGroupName=GROUP)
    with pytest.raises(ClientError) as excinfo:
        sm.describe_feature_group(FeatureGroupName=GROUP)
    code, _, message = error_of(excinfo)
    assert code == "ResourceNotFound" and GROUP in message
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.delete_feature_group(FeatureGroupName=GROUP)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"EventTimeFeatureName": "missing"}, "EventTimeFeatureName"),
        ({"EventTimeFeatureName": "orders"}, "String or Fractional"),
        (
            {
                "FeatureDefinitions": [
                    *FEATURES,
                    {"FeatureName": "is_deleted", "FeatureType": "String"},
                ]
            },
            "reserved",
        ),
        ({"OnlineStoreConfig": None}, "at least one of"),
    ],
)
def test_create_feature_group_validation(sm: Any, overrides: dict[str, Any], fragment: str) -> None:
    request: dict[str, Any] = {
        "FeatureGroupName": GROUP,
        "RecordIdentifierFeatureName": "customer_id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": FEATURES,
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        **overrides,
    }
    with pytest.raises(ClientError) as excinfo:
        sm.create_feature_group(**{k: v for k, v in request.items() if v is not None})
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert fragment in message


# -- runtime ----------------------------------------------------------------


def test_put_get_round_trip_and_feature_names(rt: Any, group: str) -> None:
    now = iso(time.time())
    rt.put_record(
        FeatureGroupName=GROUP,
        Record=record("c1", now, orders="3", spend="9.5", segment="a"),
    )
    got = rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    assert as_dict(got["Record"]) == {
        "customer_id": "c1",
        "event_time": now,
        "orders": "3",
        "spend": "9.5",
        "segment": "a",
    }
    assert "ExpiresAt" not in got

    subset = rt.get_record(
        FeatureGroupName=GROUP,
        RecordIdentifierValueAsString="c1",
        FeatureNames=["orders", "segment"],
    )
    assert as_dict(subset["Record"]) == {"orders": "3", "segment": "a"}

    by_arn = rt.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="c1")
    assert by_arn["Record"] == got["Record"]

    missing = rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="nope")
    assert "Record" not in missing


def test_older_event_time_never_replaces(rt: Any, group: str) -> None:
    now = time.time()
    rt.put_record(FeatureGroupName=GROUP, Record=record("c1", iso(now), orders="2"))
    rt.put_record(FeatureGroupName=GROUP, Record=record("c1", iso(now - 60), orders="1"))
    got = rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    assert as_dict(got["Record"])["orders"] == "2"

    rt.put_record(FeatureGroupName=GROUP, Record=record("c1", iso(now), orders="5"))
    got = rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    assert as_dict(got["Record"])["orders"] == "5"


@pytest.mark.parametrize(
    ("features", "fragment"),
    [
        (record("c1", "2024-01-01T00:00:00Z", colour="red"), "colour"),
        (record("c1", "2024-01-01T00:00:00Z", orders="3.0"), "Integral"),
        (
            record("c1", "2024-01-01T00:00:00Z", orders="9223372036854775808"),
            "Integral",
        ),
        (record("c1", "2024-01-01T00:00:00Z", spend="lots"), "Fractional"),
        (
            [{"FeatureName": "event_time", "ValueAsString": "2024-01-01T00:00:00Z"}],
            "customer_id",
        ),
        ([{"FeatureName": "customer_id", "ValueAsString": "c1"}], "event_time"),
        (record("c1", "2024-01-01 00:00:00"), "EventTime"),
        (
            [*record("c1", "2024-01-01T00:00:00Z"), {"FeatureName": "customer_id", "ValueAsString": "c2"}],
            "more than once",
        ),
    ],
)
def test_put_record_validation(rt: Any, group: str, features: list[Any], fragment: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        rt.put_record(FeatureGroupName=GROUP, Record=features)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationError", 400)
    assert fragment in message
    assert isinstance(excinfo.value, rt.exceptions.ValidationError)


def test_valid_scalar_forms_are_accepted(rt: Any, group: str) -> None:
    for orders, spend in [("-7", "1e3"), ("+4", "NaN"), ("0", "-0.25")]:
        rt.put_record(
            FeatureGroupName=GROUP,
            Record=record("c1", "2024-01-01T00:00:00.123Z", orders=orders, spend=spend),
        )


def test_unknown_group_is_resource_not_found(rt: Any) -> None:
    with pytest.raises(ClientError) as put_error:
        rt.put_record(FeatureGroupName="ghost", Record=record("c1", iso(time.time())))
    with pytest.raises(ClientError) as get_error:
        rt.get_record(FeatureGroupName="ghost", RecordIdentifierValueAsString="c1")
    for excinfo in (put_error, get_error):
        code, status, message = error_of(excinfo)
        assert (code, status) == ("ResourceNotFound", 404)
        assert "ghost" in message


def test_batch_get_record_across_groups(sm: Any, rt: Any, group: str) -> None:
    create_group(sm, "second")
    now = iso(time.time())
    rt.put_record(FeatureGroupName=GROUP, Record=record("a", now, orders="1"))
    rt.put_record(FeatureGroupName="second", Record=record("b", now, orders="2"))

    response = rt.batch_get_record(
        Identifiers=[
            {
                "FeatureGroupName": GROUP,
                "RecordIdentifiersValueAsString": ["a", "missing"],
            },
            {
                "FeatureGroupName": "second",
                "RecordIdentifiersValueAsString": ["b"],
                "FeatureNames": ["orders"],
            },
            {"FeatureGroupName": "ghost", "RecordIdentifiersValueAsString": ["x"]},
        ]
    )
    found = {
        (r["FeatureGroupName"], r["RecordIdentifierValueAsString"]): as_dict(r["Record"]) for r in response["Records"]
    }
    assert found == {
        (GROUP, "a"): {"customer_id": "a", "event_time": now, "orders": "1"},
        ("second", "b"): {"orders": "2"},
    }
    assert response["Errors"] == [
        {
            "FeatureGroupName": "ghost",
            "RecordIdentifierValueAsString": "x",
            "ErrorCode": "ResourceNotFound",
            "ErrorMessage": response["Errors"][0]["ErrorMessage"],
        }
    ]
    assert response["UnprocessedIdentifiers"] == []

    with pytest.raises(ClientError) as excinfo:
        rt.batch_get_record(
            Identifiers=[
                {
                    "FeatureGroupName": GROUP,
                    "RecordIdentifiersValueAsString": ["x"] * 60,
                },
                {
                    "FeatureGroupName": GROUP,
                    "RecordIdentifiersValueAsString": ["y"] * 41,
                },
            ]
        )
    assert error_of(excinfo)[:2] == ("ValidationError", 400)


def test_batch_write_record_partial_failure(rt: Any, store: LocalFeatureStore, group: str) -> None:
    now = iso(time.time())
    bad = {"FeatureGroupName": GROUP, "Record": record("bad", now, orders="x")}
    response = rt.batch_write_record(
        Entries=[
            {"FeatureGroupName": GROUP, "Record": record("a", now)},
            bad,
            {"FeatureGroupName": GROUP, "Record": record("b", now)},
        ]
    )
    assert response["UnprocessedEntries"] == []
    [error] = response["Errors"]
    assert error["Entry"] == bad
    assert error["ErrorCode"] == "ValidationError" and "orders" in error["ErrorMessage"]
    for record_id in ("a", "b"):
        assert "Record" in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=record_id)
    assert "Record" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="bad")
    assert store.stats()["records_written"] == 2

    too_many = [{"FeatureGroupName": GROUP, "Record": record(str(i), now)} for i in range(26)]
    with pytest.raises(ClientError) as excinfo:
        rt.batch_write_record(Entries=too_many)
    assert error_of(excinfo)[:2] == ("ValidationError", 400)


def test_batch_write_unprocessed_entries_are_retryable(rt: Any, store: LocalFeatureStore, group: str) -> None:
    now = iso(time.time())
    entries = [{"FeatureGroupName": GROUP, "Record": record(f"c{i}", now)} for i in range(20)]
    store.set_faults(FaultConfig(unprocessed_rate=0.5, seed=7))
    pending, rounds = entries, 0
    while pending and rounds < 50:
        response = rt.batch_write_record(Entries=pending)
        assert response["Errors"] == []
        pending, rounds = response["UnprocessedEntries"], rounds + 1
    assert pending == [] and rounds > 1
    listed = rt.list_records(FeatureGroupName=GROUP)["RecordIdentifiers"]
    assert len(listed) == 20


def test_list_records_pagination(rt: Any, group: str) -> None:
    now = iso(time.time())
    ids = [f"id-{i:02d}" for i in range(7)]
    for record_id in reversed(ids):
        rt.put_record(FeatureGroupName=GROUP, Record=record(record_id, now))

    pages, token = [], None
    while True:
        kwargs: dict[str, str] = {"NextToken": token} if token else {}
        page = rt.list_records(FeatureGroupName=GROUP, MaxResults=3, **kwargs)
        pages.append(page["RecordIdentifiers"])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == ids

    paginated = rt.get_paginator("list_records").paginate(FeatureGroupName=GROUP, PaginationConfig={"PageSize": 2})
    assert [i for page in paginated for i in page["RecordIdentifiers"]] == ids

    with pytest.raises(ClientError) as excinfo:
        rt.list_records(FeatureGroupName=GROUP, NextToken="garbage")
    assert error_of(excinfo)[0] == "ValidationError"


def test_delete_record_modes(rt: Any, group: str) -> None:
    now = time.time()
    for record_id in ("soft", "hard"):
        rt.put_record(FeatureGroupName=GROUP, Record=record(record_id, iso(now)))

    # A delete older than the stored record must not delete it.
    rt.delete_record(
        FeatureGroupName=GROUP,
        RecordIdentifierValueAsString="soft",
        EventTime=iso(now - 10),
    )
    assert "Record" in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="soft")

    rt.delete_record(
        FeatureGroupName=GROUP,
        RecordIdentifierValueAsString="soft",
        EventTime=iso(now + 1),
    )
    assert rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="soft").keys() == {"ResponseMetadata"}
    assert rt.list_records(FeatureGroupName=GROUP)["RecordIdentifiers"] == ["hard"]
    assert rt.list_records(FeatureGroupName=GROUP, IncludeSoftDeletedRecords=True)["RecordIdentifiers"] == [
        "hard",
        "soft",
    ]
    # The tombstone keeps the delete's EventTime: an older put stays deleted.
    rt.put_record(FeatureGroupName=GROUP, Record=record("soft", iso(now)))
    assert "Record" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="soft")

    with pytest.raises(ClientError) as excinfo:
        rt.delete_record(
            FeatureGroupName=GROUP,
            RecordIdentifierValueAsString="hard",
            EventTime=iso(now - 10),
            DeletionMode="HardDelete",
        )
    assert error_of(excinfo)[:2] == ("ValidationError", 400)
    rt.delete_record(
        FeatureGroupName=GROUP,
        RecordIdentifierValueAsString="hard",
        EventTime=iso(now + 1),
        DeletionMode="HardDelete",
    )
    assert "Record" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="hard")
    assert rt.list_records(FeatureGroupName=GROUP, IncludeSoftDeletedRecords=True)["RecordIdentifiers"] == ["soft"]


def test_ttl_expiry_with_injected_clock(sm: Any, rt: Any, clock: FakeClock) -> None:
    create_group(sm, TtlDuration={"Unit": "Minutes", "Value": 1})
    event = clock.now
    rt.put_record(FeatureGroupName=GROUP, Record=record("short", iso(event)))
    rt.put_record(
        FeatureGroupName=GROUP,
        Record=record("long", iso(event)),
        TtlDuration={"Unit": "Hours", "Value": 1},
    )
    got = rt.get_record(
        FeatureGroupName=GROUP,
        RecordIdentifierValueAsString="short",
        ExpirationTimeResponse="Enabled",
    )
    assert got["ExpiresAt"] == iso(int(event) + 60)

    clock.advance(61)
    assert "Record" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="short")
    batch = rt.batch_get_record(
        Identifiers=[
            {
                "FeatureGroupName": GROUP,
                "RecordIdentifiersValueAsString": ["short", "long"],
            }
        ],
        ExpirationTimeResponse="Enabled",
    )
    [alive] = batch["Records"]
    assert alive["RecordIdentifierValueAsString"] == "long"
    assert alive["ExpiresAt"] == iso(int(event) + 3600)
    assert rt.list_records(FeatureGroupName=GROUP)["RecordIdentifiers"] == ["long"]

    # An expired record is gone, so even an older event can be written again.
    rt.put_record(FeatureGroupName=GROUP, Record=record("short", iso(event - 1)))
    assert "Record" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="short")
    rt.put_record(
        FeatureGroupName=GROUP,
        Record=record("short", iso(event - 1)),
        TtlDuration={"Unit": "Weeks", "Value": 1},
    )
    assert "Record" in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="short")


def test_data_survives_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "persist" / "fs.sqlite")
    with LocalFeatureStore(db_path=db, port=0) as first:
        create_group(client("sagemaker", first.endpoint_url))
        rt = client("sagemaker-featurestore-runtime", first.endpoint_url)
        rt.put_record(FeatureGroupName=GROUP, Record=record("c1", iso(time.time()), orders="4"))
    with LocalFeatureStore(db_path=db, port=0) as second:
        sm = client("sagemaker", second.endpoint_url)
        assert sm.describe_feature_group(FeatureGroupName=GROUP)["FeatureGroupStatus"] == "Created"
        rt = client("sagemaker-featurestore-runtime", second.endpoint_url)
        got = rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
        assert as_dict(got["Record"])["orders"] == "4"


# -- fault injection --------------------------------------------------------


def test_throttling_is_classified_by_botocore(store: LocalFeatureStore, sm: Any, rt: Any, group: str) -> None:
    store.set_faults(FaultConfig(throttle_rate=1.0))
    with pytest.raises(ClientError) as excinfo:
        rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    assert error_of(excinfo)[:2] == ("ThrottlingException", 400)

    detector = ThrottlingErrorDetector(RetryEventAdapter())
    context = RetryContext(
        attempt_number=1,
        operation_model=rt.meta.service_model.operation_model("GetRecord"),
        parsed_response=excinfo.value.response,
    )
    assert detector.is_throttling_error_from_context(context)

    # Standard retry mode retries it; the control plane is never faulted.
    store.reset_stats()
    retrying = client(
        "sagemaker-featurestore-runtime",
        store.endpoint_url,
        total_max_attempts=2,
        mode="standard",
    )
    with pytest.raises(ClientError) as excinfo:
        retrying.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    stats = store.stats()
    assert stats["requests_by_op"] == {"GetRecord": 2}
    assert stats["throttled"] == 2
    assert sm.describe_feature_group(FeatureGroupName=GROUP)["FeatureGroupName"] == GROUP

    # Legacy retry mode, as configured by retries={"max_attempts": 1}: one retry.
    legacy = client("sagemaker-featurestore-runtime", store.endpoint_url, max_attempts=1)
    with pytest.raises(ClientError) as excinfo:
        legacy.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 1


def test_5xx_faults_are_retried(store: LocalFeatureStore, rt: Any, group: str) -> None:
    store.set_faults(FaultConfig(error_5xx_rate=1.0, seed=1))
    retrying = client(
        "sagemaker-featurestore-runtime",
        store.endpoint_url,
        total_max_attempts=3,
        mode="standard",
    )
    with pytest.raises(ClientError) as excinfo:
        retrying.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    code, status, _ = error_of(excinfo)
    assert (code, status) in {("InternalFailure", 500), ("ServiceUnavailable", 503)}
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert store.stats()["errors_5xx"] == 3

    store.set_faults(FaultConfig(error_5xx_rate=0.5, seed=3))
    patient = client(
        "sagemaker-featurestore-runtime",
        store.endpoint_url,
        total_max_attempts=10,
        mode="standard",
    )
    retries = 0
    for _ in range(10):
        response = patient.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
        retries += response["ResponseMetadata"]["RetryAttempts"]
    assert retries > 0


def test_tps_quota_throttles_beyond_rate(store: LocalFeatureStore, rt: Any, group: str) -> None:
    quota = 5.0
    store.set_faults(FaultConfig(tps_quota=quota))
    ok = throttled = 0
    started = time.monotonic()
    for _ in range(40):
        try:
            rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
            ok += 1
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ThrottlingException"
            throttled += 1
    elapsed = time.monotonic() - started
    assert throttled > 0
    assert ok <= quota + quota * elapsed + 1
    assert store.stats()["throttled"] == throttled


def test_latency_does_not_serialise_requests(store: LocalFeatureStore, group: str) -> None:
    latency_ms, threads, per_thread = 50, 8, 5
    store.set_faults(FaultConfig(latency_ms=latency_ms))
    clients = [client("sagemaker-featurestore-runtime", store.endpoint_url) for _ in range(threads)]

    def work(rt: Any) -> None:
        for _ in range(per_thread):
            rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")

    workers = [threading.Thread(target=work, args=(rt,)) for rt in clients]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    serial = threads * per_thread * latency_ms / 1000
    assert per_thread * latency_ms / 1000 <= elapsed < 0.5 * serial
    assert store.stats()["requests_by_op"]["GetRecord"] == threads * per_thread


def test_fault_config_validation() -> None:
    with pytest.raises(ValueError, match="throttle_rate"):
        FaultConfig(throttle_rate=1.5)
    with pytest.raises(ValueError, match="tps_quota"):
        FaultConfig(tps_quota=0)
    with pytest.raises(ValueError, match="unknown"):
        FaultConfig.from_dict({"latency": 5})


# -- admin endpoints and raw protocol edges --------------------------------


def _http(
    store: LocalFeatureStore, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection(store.host, store.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return (
            response.status,
            dict(response.getheaders()),
            json.loads(raw) if raw else None,
        )
    finally:
        conn.close()


def test_admin_endpoints(store: LocalFeatureStore, rt: Any, group: str) -> None:
    status, _, faults = _http(store, "POST", "/_local/faults", json.dumps({"throttle_rate": 1.0}).encode())
    assert status == 200 and faults["throttle_rate"] == 1.0
    assert store.faults.throttle_rate == 1.0
    with pytest.raises(ClientError):
        rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")

    status, _, stats = _http(store, "GET", "/_local/stats")
    assert status == 200
    assert stats["requests_by_op"] == {"CreateFeatureGroup": 1, "GetRecord": 1}
    assert stats["throttled"] == 1 and stats["errors_5xx"] == 0
    assert stats["faults"]["throttle_rate"] == 1.0

    assert _http(store, "POST", "/_local/reset-stats")[2]["requests_total"] == 0
    assert _http(store, "POST", "/_local/faults", b"{not json")[0] == 400
    assert _http(store, "POST", "/_local/faults", b'{"throttle_rate": 7}')[0] == 400
    assert _http(store, "POST", "/_local/faults", b"{}")[2]["throttle_rate"] == 0.0


def test_malformed_requests_are_answered(store: LocalFeatureStore, group: str) -> None:
    status, headers, body = _http(store, "PUT", f"/FeatureGroup/{GROUP}", b"{oops")
    assert (status, body["__type"]) == (400, "SerializationException")
    assert headers["x-amzn-ErrorType"] == "SerializationException"

    status, headers, body = _http(store, "GET", "/no/such/path")
    assert (status, body["__type"]) == (404, "UnknownOperationException")
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"

    status, _, body = _http(store, "POST", "/", b"{}", **{"X-Amz-Target": "SageMaker.CreateModel"})
    assert (status, body["__type"]) == (400, "UnknownOperationException")

    status, _, body = _http(store, "POST", "/", b"[]", **{"X-Amz-Target": "SageMaker.DescribeFeatureGroup"})
    assert (status, body["__type"]) == (400, "SerializationException")

    conn = http.client.HTTPConnection(store.host, store.port, timeout=5)
    try:
        conn.putrequest("PUT", f"/FeatureGroup/{GROUP}")
        conn.putheader("Content-Length", str(1 << 30))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["__type"] == "ValidationError"
    finally:
        conn.close()


def test_non_loopback_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        LocalFeatureStore(db_path=str(tmp_path / "x.sqlite"), host="0.0.0.0")
    assert main(["--host", "0.0.0.0", "--db", str(tmp_path / "x.sqlite")]) == 2


def test_connection_bounds_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "x.sqlite")
    with pytest.raises(ValueError, match="socket_timeout"):
        LocalFeatureStore(db_path=db, socket_timeout=0)
    with pytest.raises(ValueError, match="max_connections"):
        LocalFeatureStore(db_path=db, max_connections=0)
    for flag in ("--socket-timeout", "--max-connections"):
        with pytest.raises(SystemExit) as exit_info:
            main([flag, "0", "--db", db])
        assert exit_info.value.code == 2
        assert f"argument {flag}: must be" in capsys.readouterr().err


def test_module_entry_point_prints_url_and_serves(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "featurestore-local"), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "featurestore_local",
            "--port",
            "0",
            "--db",
            str(tmp_path / "cli" / "fs.sqlite"),
            "--socket-timeout",
            "2",
            "--max-connections",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        sm = client("sagemaker", url)
        create_group(sm)
        rt = client("sagemaker-featurestore-runtime", url)
        rt.put_record(FeatureGroupName=GROUP, Record=record("c1", iso(time.time())))
        assert "Record" in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert url in stderr
