"""``feature-pipeline get-features``: the vector a model endpoint gets, read across groups.

Records are written straight to a local runtime with boto3 (hand-made values, not the pipeline's),
then read back through the command under throttling and unprocessed identifiers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from featurestore_local import FaultConfig, LocalFeatureStore

from features.cli import main
from features.groups.customer_orders import customer_orders
from features.groups.customer_profile import customer_profile
from features.online.client import control_client, runtime_client
from features.online.registration import feature_group_request

PROFILES = 250  # more than BatchGetRecord's 100 per call
ORDERS = 120  # C000121.. have no customer_orders record


def cid(i: int) -> str:
    return f"C{i:06d}"


def record(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFeatureStore]:
    faults = FaultConfig(throttle_rate=0.2, unprocessed_rate=0.3, seed=11)
    with LocalFeatureStore(db_path=str(tmp_path_factory.mktemp("fs") / "fs.sqlite"), port=0) as local:
        control = control_client(endpoint_url=local.endpoint_url, region="us-east-1")
        for group in (customer_profile, customer_orders):
            control.create_feature_group(**feature_group_request(group, offline_s3_uri=None, role_arn=None))
        runtime = runtime_client(endpoint_url=local.endpoint_url, region="us-east-1", botocore_retries=True)
        for i in range(1, PROFILES + 1):
            runtime.put_record(
                FeatureGroupName="customer_profile",
                Record=record(
                    {
                        "customer_id": cid(i),
                        "event_time": "2026-10-31T00:00:00Z",
                        "age": str(20 + i % 50),
                        "country": "FR" if i % 2 else "DE",
                    }
                ),
            )
        for i in range(1, ORDERS + 1):
            runtime.put_record(
                FeatureGroupName="customer_orders",
                Record=record(
                    {
                        "customer_id": cid(i),
                        "event_time": "2026-10-30T00:00:00Z",
                        "order_count_7d": str(i % 3),
                        "order_amount_sum_7d": f"{i}.25",
                    }
                ),
            )
        local.set_faults(faults)  # faults only for the reads under test
        yield local


def get_features(store: LocalFeatureStore, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["get-features", "--endpoint-url", store.endpoint_url, *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_vectors_across_groups_typed_with_nulls_for_absent_records(
    store: LocalFeatureStore, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [cid(i) for i in range(1, PROFILES + 1)]
    code, vectors, _ = get_features(
        store, capsys, *[a for i in ids for a in ("--id", i)], "--groups", "customer_profile,customer_orders"
    )
    assert code == 0
    assert [v["customer_id"] for v in vectors] == ids
    assert vectors[0] == {
        "customer_id": "C000001",
        "features": {
            "age": 21,
            "age_bucket": None,
            "tenure_days": None,
            "is_prime_member": None,
            "marital_status": None,
            "country": "FR",
            **{spec.name: None for spec in customer_orders.features},
            "order_count_7d": 1,
            "order_amount_sum_7d": 1.25,
        },
        "snapshot_times": {"customer_profile": "2026-10-31T00:00:00Z", "customer_orders": "2026-10-30T00:00:00Z"},
    }
    absent = vectors[ORDERS]  # C000121: a profile, no orders record
    assert absent["snapshot_times"] == {"customer_profile": "2026-10-31T00:00:00Z", "customer_orders": None}
    assert absent["features"]["age"] == 20 + 121 % 50 and absent["features"]["order_count_7d"] is None
    assert all(v["features"]["age"] == 20 + i % 50 for i, v in enumerate(vectors, start=1))
    stats = store.stats()
    assert stats["throttled"] > 0 and stats["unprocessed"] > 0  # the reads were retried through both


def test_selected_features_and_unknown_names(store: LocalFeatureStore, capsys: pytest.CaptureFixture[str]) -> None:
    two = ["--groups", "customer_profile,customer_orders"]
    code, vectors, _ = get_features(
        store, capsys, "--id", "C000002", "--id", "C999999", *two, "--features", "country,order_count_7d"
    )
    assert code == 0
    assert [v["features"] for v in vectors] == [
        {"country": "DE", "order_count_7d": 2},
        {"country": None, "order_count_7d": None},
    ]
    assert vectors[1]["snapshot_times"] == {"customer_profile": None, "customer_orders": None}

    assert main(["get-features", "--endpoint-url", store.endpoint_url, "--id", "C000001", "--features", "agee"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("get-features failed: unknown feature 'agee'; the chosen groups have:")


def test_a_group_that_cannot_be_read_is_named_and_the_rest_still_printed(
    store: LocalFeatureStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """customer_activity was never registered in this store: exit 1 naming it, the other groups' values printed."""
    code, vectors, err = get_features(store, capsys, "--id", "C000003", "--features", "age,event_count_1d")
    assert code == 1
    assert vectors[0]["features"] == {"age": 23, "event_count_1d": None}
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "get-features failed: customer_activity: 1 unread (e.g. ResourceNotFound"
    )
