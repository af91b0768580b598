"""The bad-input corpus: every kind ends in the verdict tests/corpus/generate.py declares for it.

Nothing crashes and nothing disappears: per kind, the accepted rows and the quarantine reasons
match the table exactly, and over each source ``input rows = accepted + quarantined +
duplicates``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from features.config import SourceConf
from features.constants import QUARANTINE_REASON
from features.definitions import DefinitionError, Source
from features.io.extract import FILE_ERROR, INPUT_FILE, Extracted, InputError, read_event_log, read_table
from features.pipeline import quarantine_samples
from features.sources import CLICKSTREAM, ORDERS
from tests.corpus.generate import KINDS, NOT_READ, START, T, write_corpus

#: ``dir/dt=.../<kind>[.<n>].<ext>`` -> kind; ``<kind>-<n>`` ids -> kind.
_KIND_OF_FILE = r"([^/.]+)[^/]*$"
_KIND_OF_ID = r"^([a-z0-9_]+)-"


@dataclass
class Outcome:
    accepted: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def corpus(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(spark, root)
    return root


def _outcomes(ex: Extracted, key: str, kind_of_quarantined: Column) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for row in ex.accepted.groupBy(F.regexp_extract(key, _KIND_OF_ID, 1).alias("kind")).count().collect():
        out.setdefault(row["kind"], Outcome()).accepted = row["count"]
    for row in ex.quarantined.groupBy(kind_of_quarantined.alias("kind"), QUARANTINE_REASON).count().collect():
        out.setdefault(row["kind"], Outcome()).reasons[row[QUARANTINE_REASON]] = row["count"]
    return out


@pytest.fixture(scope="module")
def extracted(spark: SparkSession, corpus: Path) -> Iterator[dict[str, tuple[Extracted, dict[str, Outcome]]]]:
    by_file = F.regexp_extract(INPUT_FILE, _KIND_OF_FILE, 1)
    results: dict[str, tuple[Extracted, dict[str, Outcome]]] = {}
    formats: tuple[tuple[str, Literal["json", "parquet"]], ...] = (("events", "json"), ("parquet_events", "parquet"))
    for root, fmt in formats:
        conf = SourceConf(path=str(corpus / root), format=fmt, partitioning="dt", lateness_days=1)
        ex = read_event_log(spark, conf, CLICKSTREAM, start=START, end=T, on_corrupt_file="quarantine")
        results[root] = (ex, _outcomes(ex, "event_id", by_file))
    ex = read_table(spark, SourceConf(path=str(corpus / "orders")), ORDERS)
    results["orders"] = (ex, _outcomes(ex, "order_id", F.regexp_extract("order_id", _KIND_OF_ID, 1)))
    yield results
    for ex, _ in results.values():
        ex.release()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_gets_its_verdict(kind: str, extracted: dict[str, tuple[Extracted, dict[str, Outcome]]]) -> None:
    expected = KINDS[kind]
    got = extracted[expected.root][1].get(kind, Outcome())
    assert dict(got.reasons) == expected.reasons
    assert got.accepted == expected.accepted
    # What is neither accepted nor quarantined must be a duplicate of an accepted row.
    assert expected.rows - got.accepted - sum(got.reasons.values()) == expected.duplicates


@pytest.mark.parametrize("root", ["events", "parquet_events", "orders"])
def test_every_input_row_is_accounted_for(
    root: str, extracted: dict[str, tuple[Extracted, dict[str, Outcome]]]
) -> None:
    ex, outcomes = extracted[root]
    kinds = {name: kind for name, kind in KINDS.items() if kind.root == root}
    assert set(outcomes) <= set(kinds), "rows attributed to no declared kind"
    assert ex.input_rows == sum(k.rows for k in kinds.values())
    assert ex.duplicate_rows == sum(k.duplicates for k in kinds.values())
    assert ex.input_rows == ex.accepted_rows + ex.quarantined_rows + ex.duplicate_rows
    assert ex.quarantined_rows == ex.quarantined.count()


def test_late_events_beyond_the_margin_are_not_read(
    extracted: dict[str, tuple[Extracted, dict[str, Outcome]]], corpus: Path
) -> None:
    ex, _ = extracted["events"]
    assert not any("dt=2026-11-01" in p for p in ex.input_paths)
    assert str(corpus / "events" / "dt=2026-10-31") in ex.input_paths
    ids = {r["event_id"] for r in ex.accepted.select("event_id").collect()}
    ids |= {r["event_id"] for r in ex.quarantined.select("event_id").collect()}
    assert {"late_events-1", "late_events-2"} <= ids
    assert not ids & set(NOT_READ)


def test_corrupt_files_are_quarantined_by_name(extracted: dict[str, tuple[Extracted, dict[str, Outcome]]]) -> None:
    for root, names in (
        ("events", {"corrupt_gzip.json.gz", "corrupt_gzip.2.json.gz"}),
        ("parquet_events", {"parquet_corrupt.parquet"}),
    ):
        ex, _ = extracted[root]
        rows = ex.quarantined.where(F.col(QUARANTINE_REASON) == "corrupt file").collect()
        assert {r[INPUT_FILE].rsplit("/", 1)[-1] for r in rows} == names
        assert all(r[FILE_ERROR] for r in rows)


def test_corrupt_file_fails_the_run_naming_it_by_default(spark: SparkSession, corpus: Path) -> None:
    conf = SourceConf(path=str(corpus / "events"), format="json", partitioning="dt", lateness_days=1)
    with pytest.raises(InputError, match=r"cannot read \S*corrupt_gzip(\.2)?\.json\.gz: .*on_corrupt_file"):
        read_event_log(spark, conf, CLICKSTREAM, start=START, end=T)


def test_report_samples_stay_small(extracted: dict[str, tuple[Extracted, dict[str, Outcome]]]) -> None:
    ex, _ = extracted["events"]
    samples = quarantine_samples(ex)
    assert {"oversized event_id", "unparseable record", "corrupt file"} <= set(samples)
    assert all(len(v) <= 120 for rows in samples.values() for row in rows for v in row.values() if v is not None)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"patterns": {"amount": "[0-9]+"}}, "patterns apply to string columns only"),
        ({"patterns": {"id": "[unclosed"}}, "is not a regex"),
        ({"ranges": {"id": (0.0, 1.0)}}, "ranges apply to numeric columns only"),
        ({"ranges": {"amount": (2.0, 1.0)}}, "lower bound 2.0 is above 1.0"),
        ({"max_lengths": {"nope": 5}}, "unknown column 'nope'"),
        ({"max_length": 0}, "use a positive number"),
        ({"time_range": (datetime(2000, 1, 1), datetime(2100, 1, 1))}, "zone-aware"),
    ],
)
def test_value_rules_are_checked_when_a_source_is_defined(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(message)):
        Source(name="s", description="d", columns={"id": "string", "amount": "double"}, key="id", **rules)
