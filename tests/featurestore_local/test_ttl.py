"""Online-store TTL: ExpiresAt = EventTime + TtlDuration, and expired records are not served.

The record's TtlDuration overrides BatchWriteRecord's request-level one, which overrides the
group's OnlineStoreConfig.TtlDuration. Time moves through the injected clock (in process) or
``--clock-offset`` / ``POST /_local/clock`` (a server in its own process); nothing sleeps.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from featurestore_local import LocalFeatureStore

from tests.featurestore_local.test_runtime import GROUP, FakeClock, client, create_group, error_of, record

T0 = datetime(2026, 10, 31, tzinfo=UTC).timestamp()
EVENT = "2026-10-31T00:00:00Z"


@pytest.fixture
def clock() -> FakeClock:
    fake = FakeClock()
    fake.now = T0
    return fake


def get(rt: Any, record_id: str, expiry: str = "Enabled") -> dict[str, Any]:
    response = rt.get_record(
        FeatureGroupName=GROUP, RecordIdentifierValueAsString=record_id, ExpirationTimeResponse=expiry
    )
    response.pop("ResponseMetadata")
    return dict(response)


def batch_ids(rt: Any, *record_ids: str) -> dict[str, str | None]:
    response = rt.batch_get_record(
        Identifiers=[{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": list(record_ids)}],
        ExpirationTimeResponse="Enabled",
    )
    assert response["Errors"] == [] and response["UnprocessedIdentifiers"] == []
    return {r["RecordIdentifierValueAsString"]: r.get("ExpiresAt") for r in response["Records"]}


@pytest.mark.parametrize(
    ("ttl", "expires_at"),
    [
        ({"Unit": "Seconds", "Value": 90}, "2026-10-31T00:01:30Z"),
        ({"Unit": "Minutes", "Value": 90}, "2026-10-31T01:30:00Z"),
        ({"Unit": "Hours", "Value": 25}, "2026-11-01T01:00:00Z"),
        ({"Unit": "Days", "Value": 2}, "2026-11-02T00:00:00Z"),
        ({"Unit": "Weeks", "Value": 1}, "2026-11-07T00:00:00Z"),
    ],
)
def test_group_default_ttl_sets_expires_at(sm: Any, rt: Any, ttl: dict[str, Any], expires_at: str) -> None:
    create_group(sm, TtlDuration=ttl)
    rt.put_record(FeatureGroupName=GROUP, Record=record("c1", EVENT, orders="1"))
    got = get(rt, "c1")
    assert got["ExpiresAt"] == expires_at
    assert "ExpiresAt" not in get(rt, "c1", expiry="Disabled")
    assert "ExpiresAt" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")


def test_record_ttl_overrides_the_group_default(sm: Any, rt: Any, clock: FakeClock) -> None:
    create_group(sm, TtlDuration={"Unit": "Days", "Value": 1})
    rt.put_record(FeatureGroupName=GROUP, Record=record("default", EVENT))
    rt.put_record(FeatureGroupName=GROUP, Record=record("short", EVENT), TtlDuration={"Unit": "Seconds", "Value": 30})
    rt.put_record(FeatureGroupName=GROUP, Record=record("long", EVENT), TtlDuration={"Unit": "Weeks", "Value": 2})
    assert batch_ids(rt, "default", "short", "long") == {
        "default": "2026-11-01T00:00:00Z",
        "short": "2026-10-31T00:00:30Z",
        "long": "2026-11-14T00:00:00Z",
    }

    clock.now = T0 + 29.999
    assert set(batch_ids(rt, "default", "short", "long")) == {"default", "short", "long"}
    clock.now = T0 + 30  # expired once now >= ExpiresAt
    assert get(rt, "short") == {}
    assert batch_ids(rt, "default", "short", "long") == {
        "default": "2026-11-01T00:00:00Z",
        "long": "2026-11-14T00:00:00Z",
    }
    assert rt.list_records(FeatureGroupName=GROUP)["RecordIdentifiers"] == ["default", "long"]

    clock.now = T0 + 86_400
    assert batch_ids(rt, "default", "short", "long") == {"long": "2026-11-14T00:00:00Z"}
    assert rt.list_records(FeatureGroupName=GROUP, IncludeSoftDeletedRecords=True)["RecordIdentifiers"] == ["long"]


def test_ttl_counts_from_the_event_time_not_the_write_time(sm: Any, rt: Any, clock: FakeClock) -> None:
    create_group(sm, TtlDuration={"Unit": "Hours", "Value": 1})
    clock.now = T0 + 7200  # written two hours after its event time: already past EventTime + 1h
    rt.put_record(FeatureGroupName=GROUP, Record=record("late", EVENT))
    assert get(rt, "late") == {}
    rt.put_record(FeatureGroupName=GROUP, Record=record("fresh", "2026-10-31T01:30:00Z"))
    assert get(rt, "fresh")["ExpiresAt"] == "2026-10-31T02:30:00Z"


def test_fractional_event_time_keeps_its_milliseconds(sm: Any, rt: Any) -> None:
    create_group(sm, TtlDuration={"Unit": "Seconds", "Value": 1})
    rt.put_record(FeatureGroupName=GROUP, Record=record("c1", "2026-10-31T00:00:00.250Z"))
    assert get(rt, "c1")["ExpiresAt"] == "2026-10-31T00:00:01.250Z"


def test_batch_write_ttl_precedence(sm: Any, rt: Any, clock: FakeClock) -> None:
    create_group(sm, TtlDuration={"Unit": "Days", "Value": 7})
    response = rt.batch_write_record(
        Entries=[
            {"FeatureGroupName": GROUP, "Record": record("request", EVENT)},
            {
                "FeatureGroupName": GROUP,
                "Record": record("entry", EVENT),
                "TtlDuration": {"Unit": "Minutes", "Value": 5},
            },
        ],
        TtlDuration={"Unit": "Hours", "Value": 2},
    )
    assert response["Errors"] == [] and response["UnprocessedEntries"] == []
    rt.batch_write_record(Entries=[{"FeatureGroupName": GROUP, "Record": record("group", EVENT)}])
    assert batch_ids(rt, "request", "entry", "group") == {
        "request": "2026-10-31T02:00:00Z",
        "entry": "2026-10-31T00:05:00Z",
        "group": "2026-11-07T00:00:00Z",
    }
    clock.now = T0 + 300
    assert set(batch_ids(rt, "request", "entry", "group")) == {"request", "group"}


def test_no_ttl_never_expires(sm: Any, rt: Any, clock: FakeClock) -> None:
    create_group(sm)
    rt.put_record(FeatureGroupName=GROUP, Record=record("c1", EVENT, orders="3"))
    clock.advance(10 * 365 * 86_400)
    got = get(rt, "c1")
    assert "ExpiresAt" not in got
    assert {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]}["orders"] == "3"
    rt.put_record(FeatureGroupName=GROUP, Record=record("c2", EVENT), TtlDuration={"Unit": "Seconds", "Value": 1})
    assert get(rt, "c2") == {}  # a record's own TTL applies even when the group has none


def test_an_expired_record_no_longer_blocks_older_event_times(sm: Any, rt: Any, clock: FakeClock) -> None:
    create_group(sm, TtlDuration={"Unit": "Hours", "Value": 1})
    rt.put_record(FeatureGroupName=GROUP, Record=record("c1", "2026-10-31T00:10:00Z", segment="new"))
    rt.put_record(FeatureGroupName=GROUP, Record=record("c1", EVENT, segment="old"))  # older: ignored while live
    assert {f["FeatureName"]: f["ValueAsString"] for f in get(rt, "c1")["Record"]}["segment"] == "new"
    clock.now = T0 + 4200  # 00:10 + 1h: expired
    rt.put_record(
        FeatureGroupName=GROUP,
        Record=record("c1", EVENT, segment="old"),
        TtlDuration={"Unit": "Days", "Value": 1},
    )
    got = get(rt, "c1")
    assert {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]}["segment"] == "old"
    assert got["ExpiresAt"] == "2026-11-01T00:00:00Z"


@pytest.mark.parametrize(
    ("ttl", "fragment"),
    [
        ({"Unit": "Months", "Value": 1}, "TtlDuration.Unit must be one of Seconds, Minutes, Hours, Days, Weeks"),
        ({"Unit": "Days", "Value": 2**31}, "Member must have value less than or equal to 2147483647"),
    ],
)
def test_bad_ttl_is_rejected(sm: Any, rt: Any, ttl: dict[str, Any], fragment: str) -> None:
    create_group(sm)
    with pytest.raises(ClientError) as excinfo:
        rt.put_record(FeatureGroupName=GROUP, Record=record("c1", EVENT), TtlDuration=ttl)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationError", 400) and fragment in message
    with pytest.raises(ClientError) as excinfo:
        create_group(sm, "other", TtlDuration={"Unit": "Months", "Value": 1})
    assert error_of(excinfo)[0] == "ValidationException"


# -- the clock of a server in its own process -----------------------------------------------


def _admin(endpoint: str, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path, body=body or None)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_clock_offset_of_a_separate_server(tmp_path: Path) -> None:
    """``--clock-offset`` and ``POST /_local/clock`` move time for a server users start themselves."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "featurestore_local",
            "--port",
            "0",
            "--db",
            str(tmp_path / "fs.sqlite"),
            "--clock-offset",
            "-60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        status, state = _admin(endpoint, "GET", "/_local/clock")
        assert status == 200 and state["offset_seconds"] == -60.0
        sm = client("sagemaker", endpoint)
        rt = client("sagemaker-featurestore-runtime", endpoint)
        create_group(sm)
        event = datetime.now(tz=UTC).replace(microsecond=0)
        stamp = event.strftime("%Y-%m-%dT%H:%M:%SZ")
        rt.put_record(FeatureGroupName=GROUP, Record=record("c1", stamp), TtlDuration={"Unit": "Minutes", "Value": 10})
        assert "Record" in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")

        status, state = _admin(endpoint, "POST", "/_local/clock", json.dumps({"offset_seconds": 3600}).encode())
        assert status == 200 and state["offset_seconds"] == 3600.0
        assert "Record" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
        assert rt.list_records(FeatureGroupName=GROUP)["RecordIdentifiers"] == []

        assert _admin(endpoint, "POST", "/_local/clock", b'{"offset_seconds": "soon"}')[0] == 400
        assert _admin(endpoint, "POST", "/_local/clock", b'{"offset": 1}')[0] == 400
        assert _admin(endpoint, "GET", "/_local/clock")[1]["offset_seconds"] == 3600.0
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_clock_offset_in_process(tmp_path: Path) -> None:
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0, clock=lambda: T0) as store:
        sm = client("sagemaker", store.endpoint_url)
        rt = client("sagemaker-featurestore-runtime", store.endpoint_url)
        create_group(sm, TtlDuration={"Unit": "Minutes", "Value": 1})
        rt.put_record(FeatureGroupName=GROUP, Record=record("c1", EVENT))
        store.set_clock_offset(59)
        assert store.clock_status() == {"offset_seconds": 59.0, "now": "2026-10-31T00:00:59.000Z"}
        assert "Record" in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
        store.set_clock_offset(60)
        assert "Record" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
        with pytest.raises(ValueError, match="finite number"):
            store.set_clock_offset(float("inf"))
