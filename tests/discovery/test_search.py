"""Issue 13 §2: catalog entries and search, and the catalog list / search commands. Expected
results are typed by hand from the definitions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from features.cli.catalog import CATALOG
from features.config import load_conf
from features.discovery.entries import catalog_entries
from features.discovery.search import search
from features.registry import all_groups
from tests.discovery.groups import TRAITS_V1, TRAITS_V2

ROOT = Path(__file__).resolve().parents[2]
CONF = load_conf(ROOT / "conf/local.yaml")
ENTRIES = catalog_entries([*all_groups().values(), TRAITS_V2, TRAITS_V1], CONF)


def found(matches: list[Any]) -> list[tuple[str, str, str | None]]:
    return [(m.kind, m.group.name, m.feature.name if m.feature else None) for m in matches]


def test_entries_carry_metadata_lineage_and_versions_side_by_side() -> None:
    by_name = {e.name: e for e in ENTRIES}
    assert [e.name for e in ENTRIES] == [
        "customer_activity",
        "customer_orders",
        "customer_profile",
        "customer_traits",
        "customer_traits_v2",
    ]
    v1, v2 = by_name["customer_traits"], by_name["customer_traits_v2"]
    assert (v1.family, v1.version, v1.deprecated) == (
        "customer_traits",
        1,
        "use customer_traits_v2, which adds is_prime_member",
    )
    assert (v2.family, v2.version, v2.deprecated) == ("customer_traits", 2, None)
    activity = by_name["customer_activity"]
    assert activity.source_location == "json files at data/sample/clickstream/events"
    assert by_name["customer_orders"].source_location == "parquet files at data/sample/rds/orders"
    distinct = next(f for f in activity.features if f.name == "distinct_products_viewed_7d")
    assert (distinct.type, distinct.window, distinct.unit) == ("Integral", "7d", "products")
    assert distinct.aggregation == "count_distinct(product_id) where event_type in (product_view)"
    age = next(f for f in by_name["customer_profile"].features if f.name == "age")
    assert (age.aggregation, age.window, age.unit) == ("derived from birth_date", None, "years")


def test_search_matches_name_description_tag_and_owner() -> None:
    assert found(search(ENTRIES, "cart")) == [
        ("feature", "customer_activity", "add_to_cart_count_1h"),
        ("feature", "customer_activity", "add_to_cart_count_1d"),
        ("feature", "customer_activity", "add_to_cart_count_7d"),
        ("feature", "customer_activity", "add_to_cart_count_30d"),
    ]
    assert found(search(ENTRIES, "MEMBERSHIP")) == [
        ("group", "customer_profile", None),  # its description and tag
        ("group", "customer_traits_v2", None),  # its description and tag
    ]
    assert search(ENTRIES, "membership")[0].matched_on == ("description", "tag")
    assert found(search(ENTRIES, "prime")) == [
        ("feature", "customer_profile", "is_prime_member"),
        ("feature", "customer_traits_v2", "is_prime_member"),
    ]
    assert found(search(ENTRIES, "commerce")) == [("group", "customer_orders", None)]
    assert search(ENTRIES, "commerce")[0].matched_on == ("owner",)
    assert search(ENTRIES, "no such thing") == []


def test_tag_and_owner_narrow_the_groups() -> None:
    assert found(search(ENTRIES, tag="traits")) == [
        ("group", "customer_traits", None),
        ("group", "customer_traits_v2", None),
    ]
    assert found(search(ENTRIES, "country", owner="ML-Platform")) == [
        ("feature", "customer_traits", "country"),
        ("feature", "customer_traits_v2", "country"),
    ]
    assert found(search(ENTRIES, "country", tag="membership")) == [
        ("feature", "customer_profile", "country"),
        ("feature", "customer_traits_v2", "country"),
    ]
    assert found(search(ENTRIES, tag="tier:gold", owner="someone-else")) == []


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    CATALOG.add_arguments(parser)
    code = CATALOG.run(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_catalog_list_prints_a_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--conf", "conf/local.yaml")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["GROUP", "VERSION", "OWNER", "TAGS", "FEATURES", "DESCRIPTION"]
    assert lines[2].split()[:5] == ["customer_orders", "1", "commerce-analytics", "orders,purchases,revenue", "16"]
    code, out, _ = run(capsys, "list", "--conf", "conf/local.yaml", "--json")
    groups = json.loads(out)
    assert [g["name"] for g in groups] == ["customer_activity", "customer_orders", "customer_profile"]
    assert groups[2]["features"][0] == {
        "name": "age",
        "type": "Integral",
        "description": "Age in whole years at the snapshot date (UTC)",
        "unit": "years",
        "window": None,
        "aggregation": "derived from birth_date",
    }
    assert (groups[0]["freshness_sla"], groups[0]["update_frequency"], groups[0]["deprecated"]) == ("26h", "1d", None)


def test_catalog_search_prints_matches_and_refuses_an_empty_query(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "largest", "--conf", "conf/local.yaml", "--json")
    assert code == 0
    assert [(m["kind"], m["group"], m["feature"]) for m in json.loads(out)] == [
        ("feature", "customer_orders", "order_amount_max_7d"),
        ("feature", "customer_orders", "order_amount_max_30d"),
        ("feature", "customer_orders", "order_amount_max_90d"),
    ]
    code, out, _ = run(capsys, "search", "--owner", "customer-data", "--conf", "conf/local.yaml")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["group", "customer_profile"]
    code, out, _ = run(capsys, "search", "zzz", "--conf", "conf/local.yaml")
    assert (code, out) == (0, "no group or feature matches\n")
    code, _, err = run(capsys, "search", "--conf", "conf/local.yaml")
    assert code == 2 and err == "error: catalog search needs TEXT, --tag or --owner, e.g. catalog search orders\n"
    code, _, err = run(capsys, "list", "--conf", "conf/nope.yaml")
    assert code == 2 and "nope.yaml" in err and len(err.splitlines()) == 1
