"""Definitions fail at load with messages that say how to fix them; the reference groups match DESIGN.md."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from features.definitions import Aggregation, Derived, FeatureGroup, Window, where
from features.registry import all_groups, check_published, resolve
from features.sources import CLICKSTREAM, CUSTOMER, CUSTOMERS


def group(**overrides: object) -> FeatureGroup:
    kwargs: dict[str, object] = {
        "name": "probe",
        "description": "probe",
        "owner": "tests",
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
            owner="tests",
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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"description": ""}, "feature group probe: add a description, e.g. description="),
        ({"description": "  "}, "feature group probe: add a description"),
        ({"owner": "ml@example.com"}, "owner 'ml@example.com' of feature group probe: use a team name"),
        ({"tags": "browsing"}, "tags of feature group probe: use a tuple of strings"),
        ({"tags": ("Browsing",)}, "tag 'Browsing' in feature group probe: use lower-case letters"),
        ({"tags": ("a", "a")}, "repeat a tag"),
        ({"freshness_sla": "26 hours"}, "freshness_sla '26 hours' in feature group probe: use a whole number"),
        ({"update_frequency": "daily"}, "update_frequency 'daily' in feature group probe"),
        ({"freshness_sla": "12h", "update_frequency": "1d"}, "is shorter than update_frequency '1d'"),
        ({"version": 0}, "version 0 of feature group probe: use a whole number >= 1"),
        ({"version": "2"}, "version '2' of feature group probe"),
        ({"name": "probe_v2"}, "feature group probe_v2: drop the '_v2' suffix and declare name='probe', version=2"),
        ({"name": "probe_v3", "version": 2}, "drop the '_v3' suffix"),
        ({"online": "yes"}, "online of feature group probe: use True"),
        ({"online": False, "online_ttl": "30d"}, "the group is offline-only (online=False); drop online_ttl"),
        ({"online_ttl": "30 days"}, "online_ttl '30 days' in feature group probe"),
        (
            {"deprecated": ""},
            "deprecated of feature group probe: use False, True or a one-line reason such as 'use probe_v2'",
        ),
        ({"deprecated": 1}, "deprecated of feature group probe: use False, True or a one-line reason"),
    ],
)
def test_bad_metadata_says_how_to_fix(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        group(**overrides)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Aggregation(name="n", op="count"), "aggregation n: add a description, e.g. description="),
        (lambda: Aggregation(name="n", op="count", description=" "), "aggregation n: add a description"),
        (
            lambda: Derived(name="age", dtype="Integral", inputs=(), expr=lambda t: None),
            "feature age: add a description",
        ),
        (lambda: Aggregation(name="n", op="count", description="d", unit=""), "unit '' of aggregation n"),
        (lambda: Aggregation(name="n", op="count", description="two\nlines"), "description of aggregation n: keep it"),
    ],
)
def test_a_feature_without_a_description_is_a_one_line_error_naming_it(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        build()  # type: ignore[operator]
    assert "\n" not in str(caught.value)


def test_metadata_is_parsed_and_defaults_are_the_documented_ones() -> None:
    plain = group()
    assert (plain.tags, plain.version, plain.online, plain.online_ttl, plain.deprecated) == ((), 1, True, None, False)
    assert (plain.freshness_sla_length, plain.update_interval, plain.online_ttl_length) == (None, None, None)
    assert plain.deprecation_reason is None
    full = group(
        tags=["browsing", "tier:gold", "ads-ranking"],
        freshness_sla="26h",
        update_frequency="1d",
        online_ttl="90m",
        deprecated="use probe_v2",
        aggregations=(Aggregation(name="event_count", op="count", description="events", unit="events"),),
    )
    assert full.tags == ("browsing", "tier:gold", "ads-ranking")
    assert full.freshness_sla_length == timedelta(hours=26)
    assert full.update_interval == timedelta(days=1)
    assert full.online_ttl_length == timedelta(minutes=90)
    assert full.deprecation_reason == "use probe_v2"
    assert group(deprecated=True).deprecation_reason == "deprecated"
    assert [f.unit for f in full.features] == ["events"]


def test_version_one_keeps_its_name_and_later_versions_publish_side_by_side() -> None:
    v1, v2 = group(), group(version=2)
    assert (v1.name, v1.family) == ("probe", "probe")
    assert (v2.name, v2.family, v2.version) == ("probe_v2", "probe", 2)
    again = replace(v2)  # replace() re-runs the checks: the suffix is not added twice
    assert (again.name, again.family) == ("probe_v2", "probe")
    with pytest.raises(ValueError, match=re.escape("drop the '_v2' suffix and declare name='probe', version=2")):
        replace(v2, version=3)


def test_a_published_group_without_an_owner_is_a_one_line_error_naming_it() -> None:
    check_published(group(), "features.groups.probe")
    with pytest.raises(ValueError, match=re.escape("feature group probe in features.groups.probe: add an owner")):
        check_published(group(owner=""), "features.groups.probe")


def test_reference_groups_declare_their_governance_metadata() -> None:
    for g in all_groups().values():
        assert g.owner in ("personalisation-data", "commerce-analytics", "customer-data"), g.name
        assert g.tags and g.freshness_sla == "26h" and g.update_frequency == "1d", g.name
        assert (g.version, g.name, g.online, g.deprecated) == (1, g.family, True, False), g.name
