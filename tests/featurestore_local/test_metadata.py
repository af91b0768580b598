"""UpdateFeatureMetadata / DescribeFeatureMetadata against a real local server, with boto3.

Expected values are typed here from the requests the tests make; limits are the sagemaker
model's (FeatureDescription 255, FeatureParameterKey/Value 255 and a pattern, at most 25
parameters and 25 changes per call).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from featurestore_local import LocalFeatureStore

from tests.featurestore_local.test_runtime import GROUP, FakeClock, client, create_group, error_of, record

T0 = datetime(2026, 10, 31, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    """Whole seconds, so timestamps compare exactly."""
    fake = FakeClock()
    fake.now = T0.timestamp()
    return fake


def describe(sm: Any, feature: str, group: str = GROUP) -> dict[str, Any]:
    response = sm.describe_feature_metadata(FeatureGroupName=group, FeatureName=feature)
    response.pop("ResponseMetadata")
    return dict(response)


def test_metadata_before_any_update_comes_from_the_definition(sm: Any, clock: FakeClock) -> None:
    arn = create_group(sm)
    assert describe(sm, "orders") == {
        "FeatureGroupArn": arn,
        "FeatureGroupName": GROUP,
        "FeatureName": "orders",
        "FeatureType": "Integral",
        "CreationTime": T0,
        "LastModifiedTime": T0,
        "Parameters": [],
    }
    assert describe(sm, "spend")["FeatureType"] == "Fractional"


def test_group_description_round_trips(sm: Any) -> None:
    sm.create_feature_group(
        FeatureGroupName=GROUP,
        RecordIdentifierFeatureName="customer_id",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=[
            {"FeatureName": "customer_id", "FeatureType": "String"},
            {"FeatureName": "event_time", "FeatureType": "String"},
        ],
        OnlineStoreConfig={"EnableOnlineStore": True},
        Description="Per-customer order aggregates, owner team-orders",
    )
    assert sm.describe_feature_group(FeatureGroupName=GROUP)["Description"] == (
        "Per-customer order aggregates, owner team-orders"
    )
    with pytest.raises(ClientError) as excinfo:
        sm.create_feature_group(
            FeatureGroupName="other",
            RecordIdentifierFeatureName="customer_id",
            EventTimeFeatureName="event_time",
            FeatureDefinitions=[
                {"FeatureName": "customer_id", "FeatureType": "String"},
                {"FeatureName": "event_time", "FeatureType": "String"},
            ],
            OnlineStoreConfig={"EnableOnlineStore": True},
            Description="x" * 129,
        )
    assert error_of(excinfo)[0] == "ValidationException"


def test_update_adds_replaces_and_removes(sm: Any, clock: FakeClock) -> None:
    arn = create_group(sm)
    clock.advance(10)
    sm.update_feature_metadata(
        FeatureGroupName=GROUP,
        FeatureName="orders",
        Description="Completed orders in the last 30 days",
        ParameterAdditions=[
            {"Key": "owner", "Value": "team-orders"},
            {"Key": "unit", "Value": "count"},
            {"Key": "source", "Value": "rds:orders"},
        ],
    )
    assert describe(sm, "orders") == {
        "FeatureGroupArn": arn,
        "FeatureGroupName": GROUP,
        "FeatureName": "orders",
        "FeatureType": "Integral",
        "CreationTime": T0,
        "LastModifiedTime": datetime(2026, 10, 31, 0, 0, 10, tzinfo=UTC),
        "Description": "Completed orders in the last 30 days",
        "Parameters": [
            {"Key": "owner", "Value": "team-orders"},
            {"Key": "unit", "Value": "count"},
            {"Key": "source", "Value": "rds:orders"},
        ],
    }

    clock.advance(5)
    # By ARN; no Description: the old one stays. owner's value is replaced in place.
    sm.update_feature_metadata(
        FeatureGroupName=arn,
        FeatureName="orders",
        ParameterAdditions=[{"Key": "owner", "Value": "team-growth"}, {"Key": "window", "Value": "30d"}],
        ParameterRemovals=["unit", "never-set"],
    )
    described = describe(sm, "orders")
    assert described["Description"] == "Completed orders in the last 30 days"
    assert described["Parameters"] == [
        {"Key": "owner", "Value": "team-growth"},
        {"Key": "source", "Value": "rds:orders"},
        {"Key": "window", "Value": "30d"},
    ]
    assert described["LastModifiedTime"] == datetime(2026, 10, 31, 0, 0, 15, tzinfo=UTC)
    # Other features are untouched.
    assert "Description" not in describe(sm, "spend")

    sm.update_feature_metadata(FeatureGroupName=GROUP, FeatureName="orders", Description="")
    assert describe(sm, "orders")["Description"] == ""


def test_unknown_group_or_feature_is_resource_not_found(sm: Any) -> None:
    create_group(sm)
    for call in (sm.describe_feature_metadata, sm.update_feature_metadata):
        with pytest.raises(sm.exceptions.ResourceNotFound) as missing_group:
            call(FeatureGroupName="nope", FeatureName="orders")
        assert error_of(missing_group)[:2] == ("ResourceNotFound", 400)
        with pytest.raises(sm.exceptions.ResourceNotFound) as missing_feature:
            call(FeatureGroupName=GROUP, FeatureName="ordrs")
        code, _, message = error_of(missing_feature)
        assert code == "ResourceNotFound" and "ordrs" in message and GROUP in message


def _parameters(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{index}", "Value": "v"} for index in range(count)]


@pytest.mark.parametrize(
    ("request_members", "fragment"),
    [
        ({"Description": "d" * 256}, "at 'description' failed to satisfy constraint: Member must have length less"),
        ({"ParameterAdditions": [{"Key": "k" * 256, "Value": "v"}]}, "parameterAdditions.1.member.key"),
        ({"ParameterAdditions": [{"Key": "k", "Value": "v" * 256}]}, "parameterAdditions.1.member.value"),
        ({"ParameterAdditions": [{"Key": "owner!", "Value": "v"}]}, "regular expression pattern"),
        ({"ParameterAdditions": [{"Key": "k", "Value": "a;b"}]}, "regular expression pattern"),
        ({"ParameterRemovals": ["bad*key"]}, "parameterRemovals.1.member"),
        ({"ParameterAdditions": _parameters(26)}, "at 'parameterAdditions' failed"),
        ({"ParameterRemovals": [f"k{i}" for i in range(26)]}, "at 'parameterRemovals' failed"),
        ({"ParameterAdditions": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]}, "more than once"),
        ({"ParameterAdditions": [{"Key": "k", "Value": "1"}], "ParameterRemovals": ["k"]}, "in both"),
    ],
)
def test_update_limits_are_validation_exceptions(sm: Any, request_members: dict[str, Any], fragment: str) -> None:
    create_group(sm)
    with pytest.raises(ClientError) as excinfo:
        sm.update_feature_metadata(FeatureGroupName=GROUP, FeatureName="orders", **request_members)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert fragment in message
    assert describe(sm, "orders")["Parameters"] == []


def test_allowed_parameter_characters(sm: Any) -> None:
    create_group(sm)
    text = "Ünïcode and spaces 42 _.:/=+-"
    sm.update_feature_metadata(
        FeatureGroupName=GROUP, FeatureName="orders", ParameterAdditions=[{"Key": text, "Value": text}]
    )
    assert describe(sm, "orders")["Parameters"] == [{"Key": text, "Value": text}]


def test_at_most_25_parameters_in_all(sm: Any) -> None:
    create_group(sm)
    sm.update_feature_metadata(FeatureGroupName=GROUP, FeatureName="orders", ParameterAdditions=_parameters(20))
    with pytest.raises(ClientError) as excinfo:
        sm.update_feature_metadata(
            FeatureGroupName=GROUP, FeatureName="orders", ParameterAdditions=_parameters(6, prefix="more")
        )
    code, _, message = error_of(excinfo)
    assert code == "ValidationException" and "26 parameters" in message
    assert len(describe(sm, "orders")["Parameters"]) == 20
    # Replacing values and swapping keys within the limit is fine.
    sm.update_feature_metadata(
        FeatureGroupName=GROUP,
        FeatureName="orders",
        ParameterAdditions=_parameters(5, prefix="more"),
        ParameterRemovals=["k0"],
    )
    assert len(describe(sm, "orders")["Parameters"]) == 24


def test_deleting_the_group_drops_its_metadata(sm: Any) -> None:
    create_group(sm)
    sm.update_feature_metadata(FeatureGroupName=GROUP, FeatureName="orders", Description="old")
    sm.delete_feature_group(FeatureGroupName=GROUP)
    create_group(sm)
    assert "Description" not in describe(sm, "orders")


def test_metadata_survives_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "fs.sqlite")
    with LocalFeatureStore(db_path=db, port=0) as first:
        sm = client("sagemaker", first.endpoint_url)
        create_group(sm)
        sm.update_feature_metadata(
            FeatureGroupName=GROUP, FeatureName="orders", ParameterAdditions=[{"Key": "owner", "Value": "a"}]
        )
    with LocalFeatureStore(db_path=db, port=0) as second:
        assert describe(client("sagemaker", second.endpoint_url), "orders")["Parameters"] == [
            {"Key": "owner", "Value": "a"}
        ]


# -- storage versions -------------------------------------------------------------------------

# The schema as featurestore-local wrote it before feature metadata (user_version 1), typed here
# rather than taken from storage.py, so that a change there cannot silently change this test.
_V1_SCHEMA = """
CREATE TABLE feature_groups (
    name        TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE records (
    group_name  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    event_time  REAL NOT NULL,
    expires_at  REAL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    features    TEXT NOT NULL,
    written_at  REAL NOT NULL,
    PRIMARY KEY (group_name, record_id)
) WITHOUT ROWID;
PRAGMA user_version = 1;
"""
_V1_GROUP = (
    '{"FeatureGroupArn": "arn:aws:sagemaker:us-east-1:000000000000:feature-group/customers", '
    '"FeatureGroupName": "customers", "RecordIdentifierFeatureName": "customer_id", '
    '"EventTimeFeatureName": "event_time", "FeatureDefinitions": ['
    '{"FeatureName": "customer_id", "FeatureType": "String"}, '
    '{"FeatureName": "event_time", "FeatureType": "String"}, '
    '{"FeatureName": "orders", "FeatureType": "Integral"}], '
    '"CreationTime": 1793404800.0, "FeatureGroupStatus": "Created", '
    '"OnlineStoreConfig": {"EnableOnlineStore": true}}'
)
_V1_RECORD = (
    '[{"FeatureName": "customer_id", "ValueAsString": "c1"}, '
    '{"FeatureName": "event_time", "ValueAsString": "2026-10-31T00:00:00Z"}, '
    '{"FeatureName": "orders", "ValueAsString": "7"}]'
)


def _v1_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1_SCHEMA)
        conn.execute("INSERT INTO feature_groups VALUES ('customers', 1793404800.0, ?)", (_V1_GROUP,))
        conn.execute(
            "INSERT INTO records VALUES ('customers', 'c1', 1793404800.0, NULL, 0, ?, 1793404800.0)", (_V1_RECORD,)
        )
    conn.close()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_a_version_1_database_is_migrated_on_open(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    _v1_database(db)
    with LocalFeatureStore(db_path=db, port=0) as store:
        sm = client("sagemaker", store.endpoint_url)
        rt = client("sagemaker-featurestore-runtime", store.endpoint_url)
        got = rt.get_record(FeatureGroupName="customers", RecordIdentifierValueAsString="c1")
        assert {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]} == {
            "customer_id": "c1",
            "event_time": "2026-10-31T00:00:00Z",
            "orders": "7",
        }
        assert describe(sm, "orders", group="customers")["LastModifiedTime"] == T0
        sm.update_feature_metadata(FeatureGroupName="customers", FeatureName="orders", Description="migrated")
        rt.put_record(FeatureGroupName="customers", Record=record("c2", "2026-10-31T01:00:00Z", orders="1"))
    assert _user_version(db) == 2
    with LocalFeatureStore(db_path=db, port=0) as again:
        assert describe(client("sagemaker", again.endpoint_url), "orders", group="customers")["Description"] == (
            "migrated"
        )


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    store = LocalFeatureStore(db_path=db, port=0)
    with pytest.raises(RuntimeError, match=r"schema v3 is newer than this featurestore-local \(v2\)"):
        store.start()
    assert _user_version(db) == 3
