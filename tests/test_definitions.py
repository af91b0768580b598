"""Definitions fail at load with messages that say how to fix them; the reference groups match DESIGN.md."""

from __future__ import annotations

import re

import pytest

from features.definitions import Aggregation, Derived, FeatureGroup, Window, where
from features.registry import all_groups, resolve
from features.sources import CLICKSTREAM, CUSTOMER, CUSTOMERS


def group(**overrides: object) -> FeatureGroup:
    kwargs: dict[str, object] = {
        "name": "probe",
        "description": "probe",
        "entity": CUSTOMER,
        "source": CLICKSTREAM,
        "windows": ("1d",),
        "aggregations": (Aggregation(name="event_count", op="count", description="events"),),
    }
    kwargs.update(overrides)
    return FeatureGroup(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"windows": ("7x",)}, "window '7x' in feature group probe: use a whole number and one of m, h, d"),
        ({"windows": ("0d",)}, "window '0d'"),
        ({"windows": ("1d", "24h")}, "repeat the same length"),
        ({"windows": ()}, "windowed aggregations need windows"),
        (
            {"aggregations": (Aggregation(name="x", op="sum", column="amount", description="d"),)},
            "unknown column 'amount' in aggregation x of feature group probe: source clickstream has event_id",
        ),
        (
            {"aggregations": (Aggregation(name="x", op="count", filter=where("kind", "a"), description="d"),)},
            "unknown column 'kind'",
        ),
        (
            {
                "aggregations": (
                    Aggregation(name="n", op="count", description="a"),
                    Aggregation(name="n", op="count", description="b"),
                )
            },
            "duplicate output name 'n_1d'",
        ),
        ({"aggregations": (Aggregation(name="write", op="days_since_last", description="d"),)}, None),
        (
            {"aggregations": (Aggregation(name="write_time", op="days_since_last", description="d"),)},
            "feature 'write_time' in feature group probe uses a reserved name",
        ),
        (
            {"aggregations": (Aggregation(name="is_deleted", op="days_since_last", description="d"),)},
            "reserved name",
        ),
        ({"aggregations": (Aggregation(name="hour", op="days_since_last", description="d"),)}, "reserved name"),
        ({"aggregations": (Aggregation(name="n", op="sum", column="event_type", description="d"),)}, "numeric column"),
        ({"aggregations": (Aggregation(name="n", op="avg", description="d"),)}, "needs column="),
        ({"aggregations": (Aggregation(name="n", op="count", description=" "),)}, "add a description"),
        ({"aggregations": (Aggregation(name="Bad-Name", op="count", description="d"),)}, "lower_snake_case"),
        ({"aggregations": ()}, "declare either aggregations"),
    ],
)
def test_bad_definitions_say_how_to_fix(overrides: dict[str, object], message: str | None) -> None:
    if message is None:
        group(**overrides)
        return
    with pytest.raises(ValueError, match=re.escape(message)):
        group(**overrides)


def test_derived_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match=re.escape("unknown column 'birthday' in feature age of feature group p")):
        FeatureGroup(
            name="p",
            description="p",
            entity=CUSTOMER,
            source=CUSTOMERS,
            derived=(
                Derived(name="age", dtype="Integral", inputs=("birthday",), expr=lambda t: None, description="d"),
            ),  # type: ignore[arg-type,return-value]
        )


def test_windows_parse_and_sort() -> None:
    assert Window.parse("90m").seconds == 5400
    assert [w.name for w in group(windows=("30d", "1h", "7d")).parsed_windows] == ["1h", "7d", "30d"]


def test_reference_groups_are_discovered_with_exact_names() -> None:
    groups = all_groups()
    assert sorted(groups) == ["customer_activity", "customer_orders", "customer_profile"]
    activity = [
        f"{base}_{w}"
        for base in (
            "event_count",
            "product_view_count",
            "add_to_cart_count",
            "distinct_products_viewed",
            "session_count",
        )
        for w in ("1h", "1d", "7d", "30d")
    ]
    assert groups["customer_activity"].feature_names == activity
    orders = [
        f"{base}_{w}"
        for base in (
            "order_count",
            "order_amount_sum",
            "order_amount_avg",
            "order_amount_max",
            "cancelled_order_count",
        )
        for w in ("7d", "30d", "90d")
    ]
    assert groups["customer_orders"].feature_names == [*orders, "days_since_last_order"]
    assert groups["customer_profile"].feature_names == [
        "age",
        "age_bucket",
        "tenure_days",
        "is_prime_member",
        "marital_status",
        "country",
    ]
    types = {f.name: f.dtype for f in groups["customer_orders"].features}
    assert types["order_count_7d"] == "Integral"
    assert types["order_amount_avg_90d"] == "Fractional"
    assert types["days_since_last_order"] == "Integral"
    assert all(f.description for g in groups.values() for f in g.features)


def test_resolve_unknown_group_lists_choices() -> None:
    assert [g.name for g in resolve("customer_orders")] == ["customer_orders"]
    assert len(resolve("all")) == 3
    with pytest.raises(KeyError, match="unknown feature group 'nope'; choose one of: all, customer_activity"):
        resolve("nope")
