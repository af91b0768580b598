"""The validation gate on hand-typed data: expectations, policy, drift, freshness, row-count band."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.config import DriftConf, ValidationConf
from features.definitions import DefinitionError, Derived, FeatureGroup, FeatureType, Source
from features.groups.customer_activity import customer_activity
from features.groups.customer_orders import customer_orders
from features.groups.customer_profile import customer_profile
from features.registry import all_groups
from features.sources import CUSTOMER
from features.transform.windows import snapshot
from features.validate.drift import psi
from features.validate.expectations import build_suite, group_specs
from features.validate.gate import ValidationResult, newest_event_before, validate_snapshot
from features.validate.report import write_validation_report
from features.validate.spec import NOT_EXCEED_COLUMN, ExpectationSpec, declared_specs, derived_specs

T = datetime(2026, 10, 31, tzinfo=UTC)
T_TEXT = "2026-10-31T00:00:00Z"
DAY = timedelta(days=1)
EVENTS = (
    "event_id string, customer_id string, session_id string, event_type string, product_id string, event_time timestamp"
)
ORDERS = "order_id string, customer_id string, order_time timestamp, total_amount decimal(12,2), item_count int, status string"
CUSTOMERS = "customer_id string, birth_date date, active_since timestamp, marital_status string, is_prime_member boolean, country string"


def at(delta: timedelta) -> datetime:
    """A naive UTC datetime (the session zone is UTC) at T + delta."""
    return (T + delta).replace(tzinfo=None)


def activity(spark: SparkSession) -> DataFrame:
    events = spark.createDataFrame(
        [
            ("e1", "C1", "s1", "page_view", None, at(-timedelta(minutes=30))),
            ("e2", "C1", "s1", "product_view", "p1", at(-timedelta(minutes=20))),
            ("e3", "C1", "s1", "product_view", "p1", at(-timedelta(minutes=10))),  # same product again
            ("e4", "C1", "s1", "add_to_cart", "p1", at(-timedelta(minutes=5))),
            ("e5", "C1", "s2", "product_view", "p2", at(-2 * DAY)),
            ("e6", "C1", "s3", "search", None, at(-10 * DAY)),
            ("e7", "C2", "s4", "product_view", "p3", at(-timedelta(hours=3))),
            ("e8", "C2", "s4", "product_view", "p4", at(-timedelta(hours=3) + timedelta(minutes=1))),
            ("e9", "C3", "s5", "page_view", None, at(-20 * DAY)),
        ],
        EVENTS,
    )
    return snapshot(events, group=customer_activity, as_of=T, dropout_lookback=DAY)


def orders(spark: SparkSession) -> DataFrame:
    rows = spark.createDataFrame(
        [
            ("o1", "C1", at(-DAY), Decimal("10.00"), 1, "completed"),
            ("o2", "C1", at(-3 * DAY), Decimal("30.00"), 2, "completed"),
            ("o3", "C1", at(-40 * DAY), Decimal("5.00"), 1, "completed"),
            ("o4", "C1", at(-2 * DAY), Decimal("7.00"), 1, "cancelled"),
            ("o5", "C2", at(-60 * DAY), Decimal("100.00"), 3, "completed"),  # 7d and 30d empty: null avg/max
            ("o6", "C3", at(-5 * DAY), Decimal("20.00"), 1, "cancelled"),  # never completed: null days since
        ],
        ORDERS,
    )
    return snapshot(rows, group=customer_orders, as_of=T, dropout_lookback=DAY)


def profile(spark: SparkSession) -> DataFrame:
    rows = spark.createDataFrame(
        [
            ("C1", date(1990, 5, 1), at(-400 * DAY), "married", True, "DE"),
            ("C2", date(1960, 12, 31), at(-30 * DAY), "single", False, "FR"),
            ("C3", None, at(-DAY), None, None, "US"),
        ],
        CUSTOMERS,
    )
    return snapshot(rows, group=customer_profile, as_of=T, dropout_lookback=DAY)


def local(df: DataFrame) -> DataFrame:
    """The same rows as a plain local DataFrame, so corruptions do not recompute the snapshot."""
    return df.sparkSession.createDataFrame(df.collect(), df.schema)


@pytest.fixture(scope="module")
def snapshots(spark: SparkSession) -> dict[str, DataFrame]:
    return {"activity": local(activity(spark)), "orders": local(orders(spark)), "profile": local(profile(spark))}


def run(
    spark: SparkSession,
    df: DataFrame,
    group: FeatureGroup,
    tmp_path: Path,
    conf: ValidationConf | None = None,
    previous: DataFrame | None = None,
    newest: datetime | None = None,
) -> ValidationResult:
    return validate_snapshot(
        df.cache(),
        group=group,
        as_of=T,
        conf=conf or ValidationConf(),
        previous=previous,
        inputs_latest_event=newest,
        report_dir=str(tmp_path / "reports"),
    )


def failed(result: ValidationResult) -> list[dict[str, Any]]:
    return [e for e in result.expectations if not e["success"]]


@pytest.mark.parametrize(
    ("name", "group"),
    [("activity", customer_activity), ("orders", customer_orders), ("profile", customer_profile)],
)
def test_clean_snapshot_passes_every_expectation(
    spark: SparkSession, tmp_path: Path, snapshots: dict[str, DataFrame], name: str, group: FeatureGroup
) -> None:
    result = run(spark, snapshots[name], group, tmp_path, newest=T - timedelta(minutes=5))
    assert failed(result) == []
    assert (result.success, result.blocking, result.policy) == (True, False, "strict")
    assert len(result.expectations) == len(group_specs(group, previous_rows=None, row_count_band=0.5))
    assert all(e["unexpected_count"] == 0 for e in result.expectations)
    assert result.freshness["status"] == "ok" and result.drift == {}
    assert not Path(result.json_report).exists() and not Path(result.html_report).exists()  # validating writes nothing
    write_validation_report(spark, result)
    assert "report" in result.timings
    saved = json.loads(Path(result.json_report).read_text())
    assert saved["success"] is True and saved["html_report"] == result.html_report
    page = Path(result.html_report).read_text()
    assert page.startswith("<!DOCTYPE html>") and group.name in page and "<script" not in page


def _set(column: str, value: Any, who: str = "C1") -> Callable[[DataFrame], DataFrame]:
    def corrupt(df: DataFrame) -> DataFrame:
        cast = dict(df.dtypes)[column]
        return df.withColumn(
            column, F.when(F.col("customer_id") == who, F.lit(value)).otherwise(F.col(column)).cast(cast)
        )

    return corrupt


def _raise_distinct(df: DataFrame) -> DataFrame:
    return df.withColumn(
        "distinct_products_viewed_30d",
        F.when(F.col("customer_id") == "C2", F.col("product_view_count_30d") + 5).otherwise(
            F.col("distinct_products_viewed_30d")
        ),
    )


@pytest.mark.parametrize(
    ("snapshot_name", "group", "corrupt", "name", "columns", "samples"),
    [
        (
            "activity",
            customer_activity,
            _set("add_to_cart_count_1h", -1),
            "expect_column_values_to_be_between",
            ["add_to_cart_count_1h"],
            [{"customer_id": "C1", "add_to_cart_count_1h": -1}],
        ),
        (
            "activity",
            customer_activity,
            lambda df: df.unionByName(df.where(F.col("customer_id") == "C2")),
            "expect_column_values_to_be_unique",
            ["customer_id"],
            ["C2", "C2"],
        ),
        (
            "activity",
            customer_activity,
            _raise_distinct,
            NOT_EXCEED_COLUMN,
            ["distinct_products_viewed_30d", "product_view_count_30d"],
            [{"customer_id": "C2", "product_view_count_30d": 2, "distinct_products_viewed_30d": 7}],
        ),
        (
            "profile",
            customer_profile,
            _set("age", 150, who="C2"),
            "expect_column_values_to_be_between",
            ["age"],
            [{"customer_id": "C2", "age": 150}],
        ),
    ],
    ids=["negative-count", "duplicate-key", "distinct-above-count", "age-150"],
)
def test_a_failing_expectation_is_found_with_samples_and_blocks_under_strict(
    spark: SparkSession,
    tmp_path: Path,
    snapshots: dict[str, DataFrame],
    snapshot_name: str,
    group: FeatureGroup,
    corrupt: Callable[[DataFrame], DataFrame],
    name: str,
    columns: list[str],
    samples: list[Any],
) -> None:
    result = run(spark, corrupt(snapshots[snapshot_name]), group, tmp_path)
    [bad] = failed(result)
    assert (bad["name"], bad["columns"], bad["sample_values"]) == (name, columns, samples)
    assert bad["unexpected_count"] == len(samples)
    assert (result.success, result.blocking) == (False, True)
    assert name in result.summary() and "BLOCKING" in result.summary()
    write_validation_report(spark, result)
    assert json.dumps(samples[0]) in Path(result.html_report).read_text().replace("&quot;", '"')


def test_a_missing_column_fails_its_expectations_with_the_error(
    spark: SparkSession, tmp_path: Path, snapshots: dict[str, DataFrame]
) -> None:
    result = run(spark, snapshots["activity"].drop("add_to_cart_count_1h"), customer_activity, tmp_path)
    bad = failed(result)
    assert bad and all("add_to_cart_count_1h" in e["columns"] and e["error"] for e in bad)
    assert result.blocking


def test_warn_policy_reports_but_does_not_block(
    spark: SparkSession, tmp_path: Path, snapshots: dict[str, DataFrame]
) -> None:
    conf = ValidationConf(policy="strict", group_policies={"customer_profile": "warn"})
    result = run(spark, _set("age", 150, who="C2")(snapshots["profile"]), customer_profile, tmp_path, conf)
    assert (result.policy, result.success, result.blocking) == ("warn", False, False)
    assert [e["columns"] for e in failed(result)] == [["age"]]


# A tiny group of derived features: its suite has three expectations, so drift tests run fast.
PEOPLE = Source(name="people", description="test source", columns={"customer_id": "string"}, key="customer_id")


def _feature(name: str, dtype: FeatureType) -> Derived:
    return Derived(name=name, dtype=dtype, inputs=(), expr=lambda t: F.lit(None), description=f"test {name}")


TINY = FeatureGroup(
    name="tiny",
    description="drift test group",
    entity=CUSTOMER,
    source=PEOPLE,
    derived=(_feature("visits", "Integral"), _feature("spend", "Fractional"), _feature("segment", "String")),
)
TINY_SCHEMA = "customer_id string, event_time string, visits bigint, spend double, segment string"


def people(spark: SparkSession, n: int = 200, *, shifted: bool = False) -> DataFrame:
    rows = []
    for i in range(n):
        if shifted:  # more visits, bigger spend, half of it missing, nearly everyone in segment a
            rows.append((f"C{i}", T_TEXT, i % 10 + 5, None if i % 2 else i + 150.0, "a" if i % 10 else "b"))
        else:
            rows.append((f"C{i}", T_TEXT, i % 10, None if i % 20 == 0 else float(i), "abcd"[i % 4]))
    return spark.createDataFrame(rows, TINY_SCHEMA)


def test_psi_formula_by_hand() -> None:
    assert psi([50, 50], [50, 50]) == 0.0
    assert psi([90, 10], [10, 90]) == pytest.approx(2 * 0.8 * math.log(9))
    # an empty bin counts as a share of 1e-4
    assert psi([100, 0], [50, 50]) == pytest.approx(-0.5 * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4))
    assert psi([0, 0], [1, 1]) is None


def test_no_drift_on_an_identical_snapshot(spark: SparkSession, tmp_path: Path) -> None:
    result = run(spark, people(spark), TINY, tmp_path, previous=people(spark), newest=T - DAY)
    assert set(result.drift) == {"visits", "spend", "segment"}
    for name, drift in result.drift.items():
        assert drift["psi"] == pytest.approx(0.0, abs=1e-12), name
        assert drift["status"] == "ok"
    assert result.drift["spend"]["null_rate"] == result.drift["spend"]["previous_null_rate"] == 0.05
    assert (result.success, result.blocking, result.previous_rows) == (True, False, 200)


def test_drift_on_a_shifted_snapshot_and_a_stale_input(spark: SparkSession, tmp_path: Path) -> None:
    conf = ValidationConf(
        policy="warn",
        drift=DriftConf(psi_action="fail", null_rate_action="warn"),
        freshness_max_age="2d",
        freshness_action="warn",
    )
    result = run(spark, people(spark, shifted=True), TINY, tmp_path, conf, previous=people(spark), newest=T - 3 * DAY)
    assert all(d["psi"] > 0.25 for d in result.drift.values())
    assert {n: d["status"] for n, d in result.drift.items()} == {"visits": "fail", "spend": "fail", "segment": "fail"}
    assert (result.drift["spend"]["previous_null_rate"], result.drift["spend"]["null_rate"]) == (0.05, 0.5)
    assert result.freshness == {
        "newest_event": "2026-10-28T00:00:00Z",
        "age_seconds": 3 * 86400.0,
        "max_age_seconds": 2 * 86400.0,
        "status": "warn",
    }
    # expectations pass and the policy is warn, but a drift check whose action is fail blocks
    assert (result.success, result.blocking) == (True, True)
    assert "drift fail: segment, spend, visits" in result.summary()


@pytest.mark.parametrize(
    ("newest", "action", "status", "blocking"),
    [(T - DAY, "fail", "ok", False), (T - 3 * DAY, "fail", "fail", True), (None, "fail", "unknown", False)],
)
def test_freshness(
    spark: SparkSession, tmp_path: Path, newest: datetime | None, action: Any, status: str, blocking: bool
) -> None:
    conf = ValidationConf(freshness_max_age="2d", freshness_action=action)
    result = run(spark, people(spark, 5), TINY, tmp_path, conf, newest=newest)
    assert (result.freshness["status"], result.blocking) == (status, blocking)


def test_newest_input_event_before_as_of(spark: SparkSession) -> None:
    events = spark.createDataFrame(
        [("e1", "C1", "s1", "page_view", None, at(-timedelta(minutes=5))), ("e2", "C1", "s1", "search", None, at(DAY))],
        EVENTS,
    )
    assert newest_event_before(events, "event_time", T) == T - timedelta(minutes=5)
    assert newest_event_before(events, "event_time", T - DAY) is None


@pytest.mark.parametrize(("rows", "passes"), [(150, True), (80, False)])
def test_row_count_band_against_the_previous_snapshot(
    spark: SparkSession, tmp_path: Path, rows: int, passes: bool
) -> None:
    result = run(spark, people(spark, rows), TINY, tmp_path, ValidationConf(row_count_band=0.5), previous=people(spark))
    [band] = [e for e in result.expectations if e["name"] == "expect_table_row_count_to_be_between"]
    assert (band["success"], result.blocking) == (passes, not passes)
    assert band["description"] == "within 50% of the previous snapshot's 200 rows"
    if not passes:
        assert band["observed_value"] == 80


def test_pairing_rule_follows_the_definitions() -> None:
    pairs = {
        (s.kwargs["column"], s.kwargs["other_column"])
        for s in derived_specs(customer_activity)
        if s.type == NOT_EXCEED_COLUMN and s.description.startswith("distinct")
    }
    assert pairs == {
        *((f"distinct_products_viewed_{w}", f"product_view_count_{w}") for w in ("1h", "1d", "7d", "30d")),
        *((f"session_count_{w}", f"event_count_{w}") for w in ("1h", "1d", "7d", "30d")),
    }
    averages = {
        (s.kwargs["column"], s.kwargs["other_column"])
        for s in derived_specs(customer_orders)
        if s.type == NOT_EXCEED_COLUMN and "average" in s.description
    }
    assert averages == {(f"order_amount_avg_{w}", f"order_amount_max_{w}") for w in ("7d", "30d", "90d")}


def test_every_registered_group_builds_a_valid_suite() -> None:
    for group in all_groups().values():
        specs = group_specs(group, previous_rows=100, row_count_band=0.5)
        assert len(build_suite(group.name, specs).expectations) == len(specs)
    assert [s.columns for s in declared_specs(customer_profile)] == [["age"]]


def test_bad_declarations_fail_with_a_fix_it_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import features.groups.customer_profile as module

    with pytest.raises(DefinitionError, match="add a description"):
        ExpectationSpec(type="expect_column_values_to_be_between", kwargs={"column": "age"}, description=" ")
    monkeypatch.setattr(
        module,
        "EXPECTATIONS",
        [ExpectationSpec(type="expect_column_values_to_not_be_null", kwargs={"column": "agee"}, description="x")],
    )
    with pytest.raises(DefinitionError, match=r"unknown column\(s\) agee; group customer_profile has .*age"):
        declared_specs(customer_profile)
    bogus = ExpectationSpec(type="expect_column_values_to_be_purple", kwargs={"column": "age"}, description="x")
    with pytest.raises(DefinitionError, match="expect_column_values_to_be_purple"):
        build_suite("profile", [bogus])


def test_a_drift_error_is_raised_in_the_caller(spark: SparkSession, tmp_path: Path) -> None:
    # model_construct: the config itself now rejects bins=1, and this is about the thread's error
    conf = ValidationConf(drift=DriftConf.model_construct(bins=1))
    with pytest.raises(ValueError, match="bins must be between 2 and 1000"):
        run(spark, people(spark, 5), TINY, tmp_path, conf, previous=people(spark, 5))
