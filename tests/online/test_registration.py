"""Feature group registration and the register / get-record commands, against the local runtime."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from featurestore_local import LocalFeatureStore

from features.cli.online import GET_RECORD, REGISTER
from features.definitions import FeatureSpec
from features.online.client import control_client, runtime_client
from features.online.registration import RegistrationError, feature_group_request, register_groups
from features.registry import all_groups

ORDERS = all_groups()["customer_orders"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalFeatureStore]:
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0) as server:
        yield server


def parse(add: Any, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(list(argv))


def test_request_follows_the_definitions() -> None:
    request = feature_group_request(
        ORDERS, offline_s3_uri="s3://bucket/offline", role_arn="arn:aws:iam::123456789012:role/fs"
    )

    assert request["RecordIdentifierFeatureName"] == "customer_id"
    assert request["EventTimeFeatureName"] == "event_time"
    types = {d["FeatureName"]: d["FeatureType"] for d in request["FeatureDefinitions"]}
    assert types["customer_id"] == types["event_time"] == "String"
    assert types["order_count_7d"] == "Integral" and types["order_amount_avg_30d"] == "Fractional"
    assert len(types) == 2 + len(ORDERS.features)
    assert request["OnlineStoreConfig"] == {"EnableOnlineStore": True}
    assert request["OfflineStoreConfig"] == {"S3StorageConfig": {"S3Uri": "s3://bucket/offline"}}
    assert request["RoleArn"].endswith(":role/fs") and request["Description"] == ORDERS.description
    without = feature_group_request(ORDERS, offline_s3_uri=None, role_arn=None, enable_online=False)
    assert "OfflineStoreConfig" not in without and without["OnlineStoreConfig"] == {"EnableOnlineStore": False}
    with pytest.raises(ValueError, match="needs role_arn"):
        feature_group_request(ORDERS, offline_s3_uri="s3://bucket/offline", role_arn=None)


def test_registration_is_idempotent_and_rejects_a_changed_definition(store: LocalFeatureStore) -> None:
    sm = control_client(endpoint_url=store.endpoint_url, region="us-east-1")
    groups = list(all_groups().values())

    assert register_groups(sm, groups, offline_s3_uri=None, role_arn=None) == dict.fromkeys(all_groups(), "created")
    assert register_groups(sm, groups, offline_s3_uri=None, role_arn=None) == dict.fromkeys(all_groups(), "exists")

    retyped = [replace(f, dtype="Fractional") if f.name == "order_count_7d" else f for f in ORDERS.features]
    features = (*retyped, FeatureSpec(name="refund_count_7d", dtype="Integral", description="new"))
    changed = replace(ORDERS)
    object.__setattr__(changed, "features", features)
    with pytest.raises(RegistrationError) as info:
        register_groups(sm, [changed], offline_s3_uri=None, role_arn=None)
    message = str(info.value)
    assert "not in the registered group: refund_count_7d" in message
    assert "type changed: order_count_7d (Integral -> Fractional)" in message
    assert "customer_orders_v2" in message


def test_register_and_get_record_commands(store: LocalFeatureStore, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = ["--endpoint-url", store.endpoint_url]
    assert REGISTER.run(parse(REGISTER.add_arguments, *endpoint, "--group", "customer_profile")) == 0
    assert json.loads(capsys.readouterr().out) == {"customer_profile": "created"}
    assert REGISTER.run(parse(REGISTER.add_arguments, *endpoint, "--group", "nope")) == 2
    assert "unknown feature group 'nope'" in capsys.readouterr().err

    record = {"customer_id": "C000042", "event_time": "2026-10-31T00:00:00Z", "age": "41", "country": "DE"}
    runtime_client(endpoint_url=store.endpoint_url, region="us-east-1").put_record(
        FeatureGroupName="customer_profile",
        Record=[{"FeatureName": k, "ValueAsString": v} for k, v in record.items()],
    )
    get = GET_RECORD.add_arguments
    assert GET_RECORD.run(parse(get, *endpoint, "--group", "customer_profile", "--id", "C000042")) == 0
    assert json.loads(capsys.readouterr().out) == record
    assert GET_RECORD.run(parse(get, *endpoint, "--group", "customer_profile", "--id", "C1")) == 1
    assert "no online record 'C1'" in capsys.readouterr().err
    assert GET_RECORD.run(parse(get, *endpoint, "--group", "missing", "--id", "C1")) == 1
    assert "get-record failed: ResourceNotFound" in capsys.readouterr().err
