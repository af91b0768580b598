"""Replays with the same key and other values (issue 10, item 8).

A key that arrives more than once with identical values is a harmless replay: one copy is kept,
the others are counted as duplicates. A key that arrives with different values is a conflict:
it is counted, sampled and, by policy, either resolved to one documented winner (the latest
timestamp, then the smallest values in declared column order) or quarantined whole. Which copy
wins never depends on file order or partitioning.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.config import SourceConf
from features.constants import CORRUPT_RECORD, QUARANTINE_REASON
from features.io.extract import classify, read_event_log, read_table
from features.sources import CLICKSTREAM, CUSTOMERS, ORDERS

T = datetime(2026, 10, 31, tzinfo=UTC)
START = datetime(2026, 9, 30, tzinfo=UTC)
EVENT_DDL = (
    "event_id string, customer_id string, session_id string, event_type string, product_id string, event_time timestamp"
)
CUSTOMER_DDL = (
    "customer_id string, birth_date date, active_since timestamp, marital_status string, "
    "is_prime_member boolean, country string"
)


def _event(eid: str, *, customer: str = "C1", kind: str = "page_view", product: str | None = None, at: str) -> str:
    return json.dumps(
        {
            "event_id": eid,
            "customer_id": customer,
            "session_id": "s1",
            "event_type": kind,
            "product_id": product,
            "event_time": at,
        }
    )


@pytest.fixture
def replayed_events(tmp_path: Path) -> SourceConf:
    """Eleven events over two days: exact replays (e1), and three ids with two payloads each."""
    root = tmp_path / "events"
    days = {
        "2026-10-15": [
            _event("e1", at="2026-10-15T10:00:00Z"),
            _event("e1", at="2026-10-15T10:00:00Z"),  # exact replay
            _event("e2", at="2026-10-15T10:00:00Z"),
            _event("e2", customer="C2", at="2026-10-15T13:00:00+02:00"),  # later: 11:00Z wins
            _event("e3", at="2026-10-15T10:00:00Z"),
            _event("e3", kind="add_to_cart", at="2026-10-15T10:00:00Z"),  # same time: add_to_cart < page_view
            _event("e4", kind="product_view", product="P1", at="2026-10-15T10:00:00Z"),
            _event("e4", kind="product_view", at="2026-10-15T10:00:00Z"),  # same time: a null sorts first
        ],
        "2026-10-16": [
            _event("e1", at="2026-10-15T10:00:00Z"),  # exact replay, in another partition
            _event("e2", at="2026-10-15T10:00:00Z"),  # the losing payload of e2 once more
            _event("e5", at="2026-10-16T09:00:00Z"),
        ],
    }
    for day, lines in days.items():
        (root / f"dt={day}").mkdir(parents=True)
        (root / f"dt={day}" / "part-0.json").write_text("\n".join(lines) + "\n")
    return SourceConf(path=str(root), format="json", partitioning="dt")


CONFLICT_SAMPLES = [
    {
        "key": "e2",
        "differs": {"customer_id": ["C2", "C1"], "event_time": ["2026-10-15 11:00:00", "2026-10-15 10:00:00"]},
    },
    {"key": "e3", "differs": {"event_type": ["add_to_cart", "page_view"]}},
    {"key": "e4", "differs": {"product_id": [None, "P1"]}},
]


def test_exact_replays_are_duplicates_and_conflicts_keep_the_documented_winner(
    spark: SparkSession, replayed_events: SourceConf
) -> None:
    ex = read_event_log(spark, replayed_events, CLICKSTREAM, start=START, end=T)

    # 11 rows: 5 kept; 2 exact copies of e1; 4 conflicting copies (e2 x2, e3, e4) dropped.
    assert (ex.input_rows, ex.accepted_rows, ex.quarantined_rows, ex.duplicate_rows) == (11, 5, 0, 6)
    assert ex.conflicting_duplicates == 4
    want = spark.createDataFrame(
        [
            ("e1", "C1", "s1", "page_view", None, datetime(2026, 10, 15, 10)),
            ("e2", "C2", "s1", "page_view", None, datetime(2026, 10, 15, 11)),
            ("e3", "C1", "s1", "add_to_cart", None, datetime(2026, 10, 15, 10)),
            ("e4", "C1", "s1", "product_view", None, datetime(2026, 10, 15, 10)),
            ("e5", "C1", "s1", "page_view", None, datetime(2026, 10, 16, 9)),
        ],
        EVENT_DDL,
    )
    assert_df_equality(ex.accepted, want, ignore_row_order=True, ignore_nullable=True)
    assert ex.conflict_samples == CONFLICT_SAMPLES
    ex.release()


def test_quarantine_policy_quarantines_every_row_of_a_conflicting_key(
    spark: SparkSession, replayed_events: SourceConf
) -> None:
    ex = read_event_log(spark, replayed_events, CLICKSTREAM, start=START, end=T, on_conflicting_duplicate="quarantine")

    # 11 rows: e1 and e5 kept; e1's 2 exact copies dropped; all 7 rows of e2, e3, e4 quarantined.
    assert (ex.input_rows, ex.accepted_rows, ex.quarantined_rows, ex.duplicate_rows) == (11, 2, 7, 2)
    assert ex.conflicting_duplicates == 7
    assert ex.quarantine_reasons == {"conflicting_duplicate": 7}
    want = spark.createDataFrame(
        [
            ("e1", "C1", "s1", "page_view", None, datetime(2026, 10, 15, 10)),
            ("e5", "C1", "s1", "page_view", None, datetime(2026, 10, 16, 9)),
        ],
        EVENT_DDL,
    )
    assert_df_equality(ex.accepted, want, ignore_row_order=True, ignore_nullable=True)
    # Quarantined rows keep their raw text and their file, as every quarantined row does.
    got = ex.quarantined.select(
        "event_id",
        "customer_id",
        "event_type",
        "product_id",
        "event_time",
        F.regexp_extract("_input_file", r"(dt=[^/]+)/", 1).alias("partition"),
        QUARANTINE_REASON,
    )
    reason = "conflicting_duplicate"
    expected = spark.createDataFrame(
        [
            ("e2", "C1", "page_view", None, "2026-10-15T10:00:00Z", "dt=2026-10-15", reason),
            ("e2", "C2", "page_view", None, "2026-10-15T13:00:00+02:00", "dt=2026-10-15", reason),
            ("e2", "C1", "page_view", None, "2026-10-15T10:00:00Z", "dt=2026-10-16", reason),
            ("e3", "C1", "page_view", None, "2026-10-15T10:00:00Z", "dt=2026-10-15", reason),
            ("e3", "C1", "add_to_cart", None, "2026-10-15T10:00:00Z", "dt=2026-10-15", reason),
            ("e4", "C1", "product_view", "P1", "2026-10-15T10:00:00Z", "dt=2026-10-15", reason),
            ("e4", "C1", "product_view", None, "2026-10-15T10:00:00Z", "dt=2026-10-15", reason),
        ],
        "event_id string, customer_id string, event_type string, product_id string, event_time string, "
        f"partition string, {QUARANTINE_REASON} string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert ex.conflict_samples == CONFLICT_SAMPLES
    ex.release()


def _customers_export(spark: SparkSession, folder: Path, files: list[list[tuple[Any, ...]]]) -> SourceConf:
    """A customers export with one Parquet file per list of rows, in that order."""
    for n, rows in enumerate(files):
        staging = folder.parent / f".staging-{n}"
        spark.createDataFrame(rows, CUSTOMER_DDL).coalesce(1).write.parquet(str(staging))
        (part,) = staging.glob("part-*.parquet")
        folder.mkdir(parents=True, exist_ok=True)
        part.rename(folder / f"part-{n}.parquet")
        shutil.rmtree(staging)
    return SourceConf(path=str(folder))


@pytest.mark.parametrize("layout", ["FR first", "DE first"])
def test_a_customer_twice_with_another_country_resolves_the_same_whatever_the_file_order(
    spark: SparkSession, tmp_path: Path, layout: str
) -> None:
    since = datetime(2020, 1, 1, tzinfo=UTC)
    fr = ("C1", date(1990, 5, 1), since, "single", True, "FR")
    de = ("C1", date(1990, 5, 1), since, "single", True, "DE")
    c2 = ("C2", date(1985, 1, 1), since, "married", False, "US")
    first, second = (fr, de) if layout == "FR first" else (de, fr)
    conf = _customers_export(spark, tmp_path / "customers", [[first, c2], [second, c2]])

    ex = read_table(spark, conf, CUSTOMERS)

    # Same active_since: the tie goes to the smallest values in column order, so DE beats FR.
    assert (ex.input_rows, ex.accepted_rows, ex.duplicate_rows, ex.conflicting_duplicates) == (4, 2, 2, 1)
    want = spark.createDataFrame(
        [(*de[:2], datetime(2020, 1, 1), *de[3:]), (*c2[:2], datetime(2020, 1, 1), *c2[3:])], CUSTOMER_DDL
    )
    assert_df_equality(ex.accepted, want, ignore_row_order=True, ignore_nullable=True)
    assert ex.conflict_samples == [{"key": "C1", "differs": {"country": ["DE", "FR"]}}]
    ex.release()


def test_typed_rows_as_jdbc_reads_them_resolve_to_the_latest_order_time(spark: SparkSession) -> None:
    """JDBC reads hand classify typed columns, not text; the same verdicts apply."""
    rows = [
        ("o1", "C1", datetime(2026, 10, 1, 10), Decimal("10.00"), 1, "completed", None),
        ("o1", "C1", datetime(2026, 10, 1, 12), Decimal("10.00"), 1, "refunded", None),
        ("o2", "C2", datetime(2026, 10, 2, 10), Decimal("5.00"), 1, "completed", None),
        ("o2", "C2", datetime(2026, 10, 2, 10), Decimal("5.00"), 1, "completed", None),
    ]
    raw = spark.createDataFrame(
        rows,
        "order_id string, customer_id string, order_time timestamp, total_amount decimal(12,2), item_count int, "
        f"status string, {CORRUPT_RECORD} string",
    )

    ex = classify(spark, ORDERS, raw, ["jdbc:postgresql://db/shop table=orders"])

    assert (ex.input_rows, ex.accepted_rows, ex.duplicate_rows, ex.conflicting_duplicates) == (4, 2, 2, 1)
    want = spark.createDataFrame(
        [
            ("o1", "C1", datetime(2026, 10, 1, 12), Decimal("10.00"), 1, "refunded"),
            ("o2", "C2", datetime(2026, 10, 2, 10), Decimal("5.00"), 1, "completed"),
        ],
        "order_id string, customer_id string, order_time timestamp, total_amount decimal(12,2), item_count int, "
        "status string",
    )
    assert_df_equality(ex.accepted, want, ignore_row_order=True, ignore_nullable=True)
    assert ex.conflict_samples == [
        {
            "key": "o1",
            "differs": {
                "order_time": ["2026-10-01 12:00:00", "2026-10-01 10:00:00"],
                "status": ["refunded", "completed"],
            },
        }
    ]
    ex.release()
