"""Issue 13 §2: what the catalog reads from the stores, and the HTML catalog in a real headless
browser (Debian's Chromium driven by Playwright): the search box filters, every group page opens,
nothing requests the network.

The snapshots and the validation report are typed by hand here; null rates and counts follow
from those rows by hand, not from the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright
from pyspark.sql import SparkSession

from features.config import PipelineConf, load_conf
from features.discovery.entries import catalog_entries
from features.discovery.html import write_catalog
from features.discovery.state import GroupState, read_state
from features.load.offline import write_snapshot
from features.registry import all_groups
from tests.discovery.browser import launch
from tests.discovery.groups import TRAITS_V1, TRAITS_V2

ROOT = Path(__file__).resolve().parents[2]
T1 = datetime(2026, 10, 30, tzinfo=UTC)
T2 = datetime(2026, 10, 31, tzinfo=UTC)
SCHEMA = "customer_id string, event_time string, tenure_days bigint, country string, is_prime_member bigint"
#: The newest snapshot of customer_traits_v2: 4 rows; country null once, is_prime_member twice.
ROWS_T2 = [
    ("C000001", "2026-10-31T00:00:00Z", 10, "DE", 1),
    ("C000002", "2026-10-31T00:00:00Z", 20, None, None),
    ("C000003", "2026-10-31T00:00:00Z", 30, "FR", 0),
    ("C000004", "2026-10-31T00:00:00Z", 40, "DE", None),
]
ROWS_T1 = [("C000001", "2026-10-30T00:00:00Z", 9, None, None)]


def _report(group: str, as_of: str, *, success: bool, drift: dict[str, Any]) -> dict[str, Any]:
    return {
        "group": group,
        "as_of": as_of,
        "policy": "strict",
        "success": success,
        "blocking": False,
        "expectations": [
            {"name": "expect_column_values_to_not_be_null", "columns": ["customer_id"], "success": True},
            {"name": "expect_column_values_to_be_between", "columns": ["tenure_days"], "success": success},
        ],
        "drift": drift,
        "freshness": {"status": "ok"},
        "html_report": f"out/reports/validation/x/{group}-{as_of}.html",
        "json_report": f"out/reports/validation/x/{group}-{as_of}.json",
    }


@pytest.fixture(scope="module")
def stores(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> PipelineConf:
    root = tmp_path_factory.mktemp("stores")
    conf = load_conf(ROOT / "conf/local.yaml", [f"offline_store.root={root}/offline", f"reports.root={root}/reports"])
    for as_of, rows in ((T1, ROWS_T1), (T2, ROWS_T2)):
        write_snapshot(
            spark,
            spark.createDataFrame(rows, SCHEMA),
            root=conf.offline_store.root,
            group="customer_traits_v2",
            as_of=as_of,
            run_id=f"run-{as_of:%d}",
            rows=len(rows),
            write_time=as_of + timedelta(minutes=5),
        )
    reports = root / "reports" / "validation"
    older = reports / "20261030T001000-aaaaaa"
    newer = reports / "20261031T001000-bbbbbb"
    for folder in (older, newer):
        folder.mkdir(parents=True)
    (older / "customer_traits-20261030T000000Z.json").write_text(
        json.dumps(_report("customer_traits", "2026-10-30T00:00:00Z", success=True, drift={}))
    )
    (older / "customer_traits_v2-20261030T000000Z.json").write_text(
        json.dumps(_report("customer_traits_v2", "2026-10-30T00:00:00Z", success=True, drift={}))
    )
    drift = {"country": {"status": "warn"}, "tenure_days": {"status": "ok"}}
    (newer / "customer_traits_v2-20261031T000000Z.json").write_text(
        json.dumps(_report("customer_traits_v2", "2026-10-31T00:00:00Z", success=False, drift=drift))
    )
    return conf


def test_the_state_is_the_newest_snapshot_and_the_last_report(spark: SparkSession, stores: PipelineConf) -> None:
    state = read_state(spark, stores, TRAITS_V2, T2 + timedelta(hours=25))
    assert (state.snapshot_time, state.age, state.freshness) == (T2, timedelta(hours=25), "fresh")
    assert state.rows == 4
    assert state.null_rates == {"tenure_days": 0.0, "country": 0.25, "is_prime_member": 0.5}
    assert state.validation is not None
    assert (state.validation.as_of, state.validation.success, state.validation.expectations) == (
        "2026-10-31T00:00:00Z",
        False,
        2,
    )
    assert state.validation.failed == ("expect_column_values_to_be_between on tenure_days",)
    assert state.validation.drift_flagged == ("country",)

    assert read_state(spark, stores, TRAITS_V2, T2 + timedelta(hours=27)).freshness == "stale"
    v1 = read_state(spark, stores, TRAITS_V1, T2)
    # No snapshot of v1; its last report is the older run's (the newer run has only v2's).
    assert (v1.snapshot_time, v1.rows, v1.freshness, v1.null_rates) == (None, None, "no snapshot", {})
    assert v1.validation is not None and v1.validation.as_of == "2026-10-30T00:00:00Z"


@pytest.fixture(scope="module")
def catalog(spark: SparkSession, stores: PipelineConf, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("catalog")
    entries = catalog_entries([*all_groups().values(), TRAITS_V1, TRAITS_V2], stores)
    now = T2 + timedelta(hours=30)
    states: dict[str, GroupState] = {
        g.name: read_state(spark, stores, g, now) for g in (TRAITS_V1, TRAITS_V2, all_groups()["customer_orders"])
    }
    written = write_catalog(out, entries, states, generated_at=now, env="local")
    assert sorted(p.name for p in written) == [
        "catalog.json",
        "customer_activity.html",
        "customer_orders.html",
        "customer_profile.html",
        "customer_traits.html",
        "customer_traits_v2.html",
        "index.html",
    ]
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


class Offline:
    """A page whose every request is logged, and any that is not a file under the catalog refused."""

    def __init__(self, browser: Any, catalog: Path) -> None:
        self.context = browser.new_context()
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.allowed = catalog.resolve().as_uri() + "/"
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.allowed):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()


def about(page: Page) -> dict[str, str]:
    """The group page's About list, term -> its text."""
    terms = page.locator("dl dt").all_inner_texts()
    return dict(zip(terms, page.locator("dl dd").all_inner_texts(), strict=True))


def visible(page: Page, table: str) -> list[str]:
    return page.locator(f"#{table} tbody tr:not(.hidden) td:first-child").all_inner_texts()


def test_the_search_box_filters_groups_and_features(browser: Any, catalog: Path) -> None:
    tab = Offline(browser, catalog)
    page = tab.page
    page.goto((catalog / "index.html").as_uri())
    assert len(visible(page, "groups")) == 5
    assert len(visible(page, "features")) == 20 + 16 + 6 + 2 + 3
    assert page.inner_text("#count") == "52 of 52 shown"

    page.fill("#search", "prime")
    assert visible(page, "groups") == []
    assert visible(page, "features") == ["is_prime_member", "is_prime_member"]
    assert page.inner_text("#count") == "2 of 52 shown"

    page.fill("#search", "commerce-analytics avg 90d")  # every word must occur: owner, name
    assert visible(page, "features") == ["order_amount_avg_90d"]

    page.fill("#search", "tier:gold")  # a tag
    assert visible(page, "groups") == ["customer_traits deprecated"]

    page.fill("#search", "")
    assert page.inner_text("#count") == "52 of 52 shown"
    assert tab.refused == [] and all(url.startswith(tab.allowed) for url in tab.requests)
    tab.context.close()


EXPECTED_PAGES = {
    "customer_activity": 20,
    "customer_orders": 16,
    "customer_profile": 6,
    "customer_traits": 2,
    "customer_traits_v2": 3,
}


def test_every_group_page_opens_from_the_index_without_the_network(browser: Any, catalog: Path) -> None:
    tab = Offline(browser, catalog)
    page = tab.page
    for name, features in EXPECTED_PAGES.items():
        page.goto((catalog / "index.html").as_uri())
        page.click(f"#groups a[href='{name}.html']")
        page.wait_for_load_state()
        assert page.url.endswith(f"/{name}.html")
        assert page.inner_text("header h1").startswith(name)
        assert len(page.locator("#features tbody tr").all()) == features
    assert tab.refused == [] and all(url.startswith(tab.allowed) for url in tab.requests)
    assert len(tab.requests) == 2 * len(EXPECTED_PAGES)  # each index and page itself, nothing else
    tab.context.close()


def test_a_group_page_shows_metadata_lineage_state_and_versions(browser: Any, catalog: Path) -> None:
    tab = Offline(browser, catalog)
    page = tab.page
    page.goto((catalog / "customer_traits_v2.html").as_uri())
    shown = about(page)
    assert shown["owner"] == "ml-platform"
    assert shown["version"] == "2 of customer_traits · other versions: customer_traits (v1, deprecated)"
    assert shown["latest snapshot"] == "2026-10-31T00:00:00Z (30.0 h old) stale"
    assert (shown["freshness SLA"], shown["update frequency"], shown["rows in it"]) == ("26h", "1d", "4")
    assert shown["last validation"] == (
        "warnings at 2026-10-31T00:00:00Z: 1 of 2 expectations passed; failed: expect_column_values_to_be_between "
        "on tenure_days; drift flagged: country out/reports/validation/x/customer_traits_v2-2026-10-31T00:00:00Z.html"
    )
    lineage = page.inner_text(".lineage")
    assert "source customers" in lineage and "parquet files at data/sample/rds/customers" in lineage
    rows = {
        r.locator("td").nth(0).inner_text(): r.locator("td").all_inner_texts()
        for r in page.locator("#features tbody tr").all()
    }
    assert rows["country"][5] == "25.0%"
    assert rows["tenure_days"][1:6] == ["Integral", "days", "—", "derived from active_since", "0.0%"]
    assert rows["is_prime_member"][6] == "1 if a <Prime> member, 0 if not"  # escaped, shown as typed
    assert page.locator("prime").count() == 0

    page.fill("#search", "country")
    assert visible(page, "features") == ["country"]

    page.goto((catalog / "customer_traits.html").as_uri())
    assert page.inner_text(".banner") == "Deprecated: use customer_traits_v2, which adds is_prime_member"
    assert page.inner_text("header h1") == "customer_traits (deprecated)"
    assert about(page)["latest snapshot"] == "none in the offline store no snapshot"
    page.goto((catalog / "customer_activity.html").as_uri())
    assert about(page)["latest snapshot"] == "none in the offline store not read"
    assert tab.refused == []
    tab.context.close()
