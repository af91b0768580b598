"""Issue 13 §1 and §3: feature metadata published to SageMaker (against the local runtime) and to Glue.

Expected descriptions and parameters are typed by hand from the definitions in features/groups/,
never derived from the code under test.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from featurestore_local import LocalFeatureStore
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features.catalog.table import table_spec
from features.config import load_conf
from features.definitions import Aggregation, Derived
from features.online.client import control_client, runtime_client
from features.online.registration import Registration, RegistrationError, check_registered, register_groups
from features.pipeline import RunFailedError, build_features
from features.registry import all_groups
from tests.test_jobs import overrides

ROOT = Path(__file__).resolve().parents[2]

ORDERS = all_groups()["customer_orders"]
ACTIVITY = all_groups()["customer_activity"]
PROFILE = all_groups()["customer_profile"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalFeatureStore]:
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0) as server:
        yield server


@pytest.fixture
def sm(store: LocalFeatureStore) -> Any:
    return control_client(endpoint_url=store.endpoint_url, region="us-east-1")


class Calls:
    """Counts the API operations a client sends, by name (botocore's before-call event)."""

    def __init__(self, client: Any) -> None:
        self.seen: Counter[str] = Counter()
        client.meta.events.register("before-call.sagemaker", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.seen[model.name] += 1

    def take(self) -> dict[str, int]:
        seen, self.seen = dict(self.seen), Counter()
        return seen


def register(sm: Any, *groups: Any) -> dict[str, Registration]:
    return register_groups(sm, list(groups), offline_s3_uri=None, role_arn=None, poll_s=0.01)


def parameters(sm: Any, group: str, feature: str) -> tuple[str, dict[str, str]]:
    got = sm.describe_feature_metadata(FeatureGroupName=group, FeatureName=feature)
    return got.get("Description", ""), {p["Key"]: p["Value"] for p in got.get("Parameters", [])}


def test_register_publishes_each_features_description_and_parameters(sm: Any) -> None:
    assert register(sm, ORDERS, ACTIVITY, PROFILE) == dict.fromkeys(
        ["customer_orders", "customer_activity", "customer_profile"], "created"
    )

    assert parameters(sm, "customer_activity", "distinct_products_viewed_7d") == (
        "Distinct products viewed (exact) (last 7d)",
        {
            "owner": "personalisation-data",
            "source": "clickstream",
            "version": "1",
            "tags": "browsing engagement clickstream",
            "window": "7d",
            "aggregation": "count_distinct of product_id where event_type = product_view",
            "unit": "products",
        },
    )
    assert parameters(sm, "customer_orders", "days_since_last_order") == (
        "Whole days since the last completed order before the snapshot; null if none ever",
        {
            "owner": "commerce-analytics",
            "source": "orders",
            "version": "1",
            "tags": "orders purchases revenue",
            "aggregation": "days_since_last where status = completed",
            "unit": "days",
        },
    )
    assert parameters(sm, "customer_profile", "age_bucket") == (
        "Age band: 18-29, 30-39, 40-49, 50-59, 60-69, 70-plus or unknown",
        {
            "owner": "customer-data",
            "source": "customers",
            "version": "1",
            "tags": "profile demographics membership",
            "inputs": "birth_date",
        },
    )
    group = sm.describe_feature_group(FeatureGroupName="customer_orders")
    assert group["Description"] == "How often and how much a customer buys; completed orders unless said otherwise."


def test_the_seeds_search_call_finds_features_by_owner_and_text(sm: Any) -> None:
    register(sm, ORDERS, ACTIVITY, PROFILE)

    by_owner = sm.search(
        Resource="FeatureMetadata",
        SearchExpression={
            "Filters": [{"Name": "Parameters.owner", "Operator": "Equals", "Value": "commerce-analytics"}]
        },
        MaxResults=100,
    )
    names = sorted(r["FeatureMetadata"]["FeatureName"] for r in by_owner["Results"])
    assert len(names) == 16 and "order_amount_avg_90d" in names and "days_since_last_order" in names
    assert {r["FeatureMetadata"]["FeatureGroupName"] for r in by_owner["Results"]} == {"customer_orders"}

    carts = sm.search(
        Resource="FeatureMetadata",
        SearchExpression={
            "Filters": [
                {"Name": "Description", "Operator": "Contains", "Value": "Add-to-cart"},
                {"Name": "Parameters.window", "Operator": "Equals", "Value": "30d"},
            ]
        },
    )
    assert [r["FeatureMetadata"]["FeatureName"] for r in carts["Results"]] == ["add_to_cart_count_30d"]


def test_a_rerun_changes_nothing_and_costs_two_calls_per_group(sm: Any) -> None:
    calls = Calls(sm)
    register(sm, ORDERS)
    first = calls.take()
    # Describe (missing), Create, Describe (Created), one UpdateFeatureMetadata per feature: 16.
    assert first == {
        "DescribeFeatureGroup": 2,
        "CreateFeatureGroup": 1,
        "UpdateFeatureMetadata": 16,
    }
    before = sm.describe_feature_metadata(FeatureGroupName="customer_orders", FeatureName="order_count_7d")
    calls.take()

    assert register(sm, ORDERS) == {"customer_orders": "exists"}
    assert calls.take() == {"DescribeFeatureGroup": 1, "Search": 1}
    after = sm.describe_feature_metadata(FeatureGroupName="customer_orders", FeatureName="order_count_7d")
    assert after["LastModifiedTime"] == before["LastModifiedTime"]


def test_a_changed_description_or_unit_updates_only_those_features(sm: Any) -> None:
    register(sm, ORDERS)
    sm.update_feature_metadata(
        FeatureGroupName="customer_orders",
        FeatureName="order_count_7d",
        ParameterAdditions=[{"Key": "reviewed_by", "Value": "data-governance"}],
    )
    aggregations = tuple(
        replace(a, description="Orders completed", unit=None) if a.name == "order_count" else a
        for a in ORDERS.aggregations
    )
    changed = replace(ORDERS, aggregations=aggregations)
    calls = Calls(sm)

    assert register(sm, changed) == {"customer_orders": "updated"}
    assert calls.take()["UpdateFeatureMetadata"] == 3  # order_count_7d, _30d, _90d
    description, params = parameters(sm, "customer_orders", "order_count_30d")
    assert description == "Orders completed (last 30d)"
    assert "unit" not in params and params["window"] == "30d"
    # A parameter someone added by hand is not ours to remove.
    assert parameters(sm, "customer_orders", "order_count_7d")[1]["reviewed_by"] == "data-governance"
    assert register(sm, changed) == {"customer_orders": "exists"}


def test_a_changed_feature_set_without_a_new_version_is_refused_naming_the_fix(sm: Any) -> None:
    register(sm, ORDERS)
    refunds = Aggregation(name="refund_count", op="count", description="Refunded orders")
    changed = replace(ORDERS, aggregations=(*ORDERS.aggregations, refunds))
    calls = Calls(sm)

    with pytest.raises(RegistrationError) as info:
        register(sm, changed)
    message = str(info.value)
    assert "\n" not in message
    assert "not in the registered group: refund_count_30d, refund_count_7d, refund_count_90d" in message
    assert "set version=2 in the definition of customer_orders to publish customer_orders_v2 side by side" in message
    assert "UpdateFeatureMetadata" not in calls.take()  # refused before anything was changed

    with pytest.raises(RegistrationError, match=re.escape("set version=2")):
        check_registered(sm, [changed])


def test_a_new_version_is_a_new_group_side_by_side(sm: Any) -> None:
    register(sm, ORDERS)
    refunds = Aggregation(name="refund_count", op="count", description="Refunded orders")
    v2 = replace(ORDERS, version=2, aggregations=(*ORDERS.aggregations, refunds))

    assert register(sm, v2) == {"customer_orders_v2": "created"}
    names = {g["FeatureGroupName"] for g in sm.list_feature_groups()["FeatureGroupSummaries"]}
    assert names == {"customer_orders", "customer_orders_v2"}
    assert parameters(sm, "customer_orders_v2", "refund_count_7d")[1]["version"] == "2"
    assert parameters(sm, "customer_orders", "order_count_7d")[1]["version"] == "1"
    check_registered(sm, [ORDERS, v2])


def test_the_build_check_names_a_group_that_is_not_registered(sm: Any) -> None:
    with pytest.raises(RegistrationError, match=re.escape("feature group customer_profile is not registered online")):
        check_registered(sm, [PROFILE])


def test_the_glue_table_carries_the_same_metadata() -> None:
    spec = table_spec(
        database="feature_store",
        name="customer_orders",
        group=ORDERS,
        schema=T.StructType([T.StructField("customer_id", T.StringType())]),
        location="s3://bucket/offline-store/customer_orders/data",
        format="parquet",
    )
    assert spec.owner == "commerce-analytics"
    assert spec.parameters == {
        "EXTERNAL": "TRUE",
        "classification": "parquet",
        "feature_group": "customer_orders",
        "feature_family": "customer_orders",
        "version": "1",
        "description": "How often and how much a customer buys; completed orders unless said otherwise.",
        "owner": "commerce-analytics",
        "tags": "orders,purchases,revenue",
        "freshness_sla": "26h",
        "update_frequency": "1d",
        "online": "true",
        "source": "orders",
        "entity": "customer",
        "entity_key": "customer_id",
        "event_time_column": "event_time",
        "managed_by": "feature-pipeline",
    }
    v2 = table_spec(
        database="feature_store",
        name="customer_orders_v2",
        group=replace(ORDERS, version=2, deprecated="superseded by v3"),
        schema=T.StructType([T.StructField("order_amount_sum_7d", T.DoubleType())]),
        location="s3://bucket/offline-store/customer_orders_v2/data",
        format="parquet",
    )
    assert (v2.parameters["feature_group"], v2.parameters["feature_family"]) == (
        "customer_orders_v2",
        "customer_orders",
    )
    assert (v2.parameters["version"], v2.parameters["deprecated"]) == ("2", "superseded by v3")
    comments = {c.name: c.comment for c in v2.columns}
    assert comments["order_amount_sum_7d"] == "Total amount of completed orders (last 7d) (unit: order currency)"


def test_the_build_refuses_a_changed_definition_before_pushing_a_record(
    spark: SparkSession, sample: Path, tmp_path: Path, store: LocalFeatureStore, sm: Any
) -> None:
    """register: true (conf/local.yaml): the build checks the registered group before its push."""
    register(sm, PROFILE)
    flags = [*overrides(sample, tmp_path), "--set", f"online_store.endpoint_url={store.endpoint_url}"]
    conf = load_conf(ROOT / "conf/local.yaml", [v for v in flags if v != "--set"])
    extra = Derived(
        name="age_days", dtype="Integral", inputs=("birth_date",), expr=lambda t: F.lit(1), description="Age in days"
    )
    changed = replace(PROFILE, derived=(*PROFILE.derived, extra))

    with pytest.raises(RunFailedError) as info:
        build_features(spark, conf, [changed], datetime(2026, 10, 31, tzinfo=UTC), run_id="refused")
    report = info.value.result.groups["customer_profile"]
    assert report.status == "push_incomplete" and report.online is None and report.error is not None
    assert report.error.startswith("not pushed: registration failed: feature group customer_profile is registered")
    assert "not in the registered group: age_days" in report.error and "set version=2" in report.error
    runtime = runtime_client(endpoint_url=store.endpoint_url, region="us-east-1")
    assert "Record" not in runtime.get_record(
        FeatureGroupName="customer_profile", RecordIdentifierValueAsString="C000001"
    )
