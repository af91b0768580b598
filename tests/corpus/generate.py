"""A deterministic corpus of bad input, and the verdict each kind of it must get.

``KINDS`` is the single table of expectations: for every kind, how many input rows it
contributes and how they must end up (accepted, duplicates, quarantined by reason).
``write_corpus`` lays the files out under a directory; nothing is random, so a failure points at
a rule, not at luck. Files are named ``<kind>[.<n>].<ext>`` and accepted rows carry ids
``<kind>-<n>``, so the test can attribute every outcome to its kind.

Layout (snapshot T = 2026-10-31T00:00:00Z, 30-day window, ``lateness_days`` 1):

- ``events/dt=YYYY-MM-DD/``: clickstream JSON lines (some gzip), read with
  ``on_corrupt_file=quarantine``;
- ``parquet_events/dt=YYYY-MM-DD/``: clickstream Parquet files whose schemas drifted;
- ``orders/``: an orders snapshot export (Parquet, ``total_amount`` as double).
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

T = datetime(2026, 10, 31, tzinfo=UTC)
START = datetime(2026, 10, 1, tzinfo=UTC)
DAY = "2026-10-15"
MEGABYTE = "x" * (1 << 20)


@dataclass(frozen=True)
class Kind:
    """What one kind of bad input must turn into."""

    #: ``events`` (JSON log), ``parquet_events`` (Parquet log) or ``orders`` (table export).
    root: str
    rows: int
    accepted: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.rows == self.accepted + self.duplicates + sum(self.reasons.values()), self


KINDS: dict[str, Kind] = {
    # The sixth line is a whole event followed by junk: Spark parses the first JSON value of a
    # line and ignores what follows, so it is accepted (docs/inputs.md).
    "broken_json": Kind("events", 6, accepted=1, reasons={"unparseable record": 5}),
    "null_keys": Kind("events", 6, reasons={"null event_id": 2, "null customer_id": 3, "null event_time": 1}),
    "unparseable_timestamps": Kind("events", 4, reasons={"unparseable event_time": 4}),
    "out_of_range_timestamps": Kind(
        "events", 5, accepted=1, reasons={"out of range event_time": 3, "unparseable event_time": 1}
    ),
    "future_timestamps": Kind("events", 4, accepted=2, reasons={"event_time in the future": 2}),
    "duplicates": Kind("events", 6, accepted=2, duplicates=4),
    "wrong_types": Kind(
        "events",
        7,
        accepted=1,
        reasons={"unparseable event_time": 3, "invalid customer_id": 2, "unknown event_type": 1},
    ),
    "oversized": Kind(
        "events",
        5,
        accepted=1,
        reasons={
            "oversized event_id": 1,
            "oversized customer_id": 1,
            "oversized product_id": 1,
            "unparseable record": 1,
        },
    ),
    "empty_files": Kind("events", 0),
    "drifted_schema": Kind("events", 4, accepted=3, reasons={"null event_time": 1}),
    "invalid_utf8": Kind("events", 4, accepted=1, reasons={"unparseable record": 2, "invalid customer_id": 1}),
    "metacharacters": Kind("events", 7, accepted=1, reasons={"invalid customer_id": 6}),
    "corrupt_gzip": Kind("events", 2, reasons={"corrupt file": 2}),
    "late_events": Kind("events", 2, accepted=2),
    "parquet_extra_fields": Kind("parquet_events", 2, accepted=2),
    "parquet_missing_column": Kind("parquet_events", 2, reasons={"null customer_id": 2}),
    "parquet_changed_types": Kind(
        "parquet_events", 3, accepted=1, reasons={"invalid customer_id": 1, "unparseable event_time": 1}
    ),
    "parquet_corrupt": Kind("parquet_events", 1, reasons={"corrupt file": 1}),
    "order_amounts": Kind(
        "orders",
        9,
        accepted=3,
        reasons={"out of range total_amount": 5, "out of range item_count": 1},
    ),
}

#: Files that exist but must never be read: the partition is beyond T's day + lateness margin.
NOT_READ = ("late_events-beyond",)


def event(eid: str | None, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": eid,
        "customer_id": "C000001",
        "session_id": "S1",
        "event_type": "page_view",
        "product_id": None,
        "event_time": f"{DAY}T10:00:00Z",
    }
    base.update(fields)
    return base


def _lines(*records: dict[str, Any] | str | bytes) -> bytes:
    out = []
    for record in records:
        if isinstance(record, bytes):
            out.append(record)
        elif isinstance(record, str):
            out.append(record.encode())
        else:
            out.append(json.dumps(record).encode())
    return b"\n".join(out) + b"\n"


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _json_files() -> dict[str, bytes]:
    """Relative path under ``events/`` -> content (``.gz`` names are gzip-compressed here)."""
    no_time = event("drifted_schema-3")
    del no_time["event_time"]
    minimal = {"event_id": "drifted_schema-2", "customer_id": "C1", "event_time": f"{DAY}T09:00:00Z"}
    return {
        f"dt={DAY}/broken_json.json": _lines(
            '{"event_id": "broken_json-1", "customer_id": ',
            "not json at all",
            "[1, 2]",
            "42",
            "null",
            json.dumps(event("broken_json-6")) + " trailing junk",
        ),
        f"dt={DAY}/null_keys.json.gz": _gzip(
            _lines(
                event(None),
                event(""),
                event("null_keys-3", customer_id=None),
                event("null_keys-4", customer_id="   "),
                {k: v for k, v in event("null_keys-5").items() if k != "customer_id"},
                event("null_keys-6", event_time=None),
            )
        ),
        f"dt={DAY}/unparseable_timestamps.json": _lines(
            event("unparseable_timestamps-1", event_time="yesterday"),
            event("unparseable_timestamps-2", event_time=f"{DAY} 10:00:00"),  # no zone
            event("unparseable_timestamps-3", event_time=f"{DAY}"),
            event("unparseable_timestamps-4", event_time="2026-10-32T10:00:00Z"),
        ),
        f"dt={DAY}/out_of_range_timestamps.json": _lines(
            event("out_of_range_timestamps-1", event_time="0001-01-01T00:00:00Z"),
            event("out_of_range_timestamps-2", event_time="9999-12-31T23:59:59Z"),
            event("out_of_range_timestamps-3", event_time="1969-12-31T23:59:59Z"),
            event("out_of_range_timestamps-4", event_time="2026-13-01T00:00:00Z"),
            event("out_of_range_timestamps-5", event_time="1970-01-01T00:00:00Z"),  # the lower bound is in
        ),
        f"dt={DAY}/future_timestamps.json": _lines(
            event("future_timestamps-1", event_time="2026-10-16T00:59:59Z"),  # clock skew within 1h
            event("future_timestamps-2", event_time="2026-10-16T01:00:01Z"),
            event("future_timestamps-3", event_time="2027-01-01T00:00:00Z"),
        ),
        # Arrived on T's day, happened after T: a legitimate event a backfill at T never uses.
        "dt=2026-10-31/future_timestamps.json": _lines(
            event("future_timestamps-4", event_time="2026-10-31T12:00:00Z"),
        ),
        f"dt={DAY}/duplicates.json": _lines(
            event("duplicates-1"), event("duplicates-1"), event("duplicates-1"), event("duplicates-2")
        ),
        "dt=2026-10-16/duplicates.json": _lines(event("duplicates-1"), event("duplicates-2")),  # replayed a day on
        f"dt={DAY}/wrong_types.json": _lines(
            event("wrong_types-1", event_time=1760000000),
            event("wrong_types-2", event_time={"seconds": 1760000000}),
            event("wrong_types-3", event_time=[f"{DAY}T10:00:00Z"]),
            event("wrong_types-4", customer_id=["C000001"]),
            event("wrong_types-5", customer_id={"id": "C000001"}),
            event("wrong_types-6", event_type=5),
            event("wrong_types-7", customer_id=42),  # rendered as "42": an opaque id that passes
        ),
        f"dt={DAY}/oversized.json": _lines(
            event(MEGABYTE),
            event("oversized-2", customer_id="C" + MEGABYTE),
            event("oversized-3", product_id="P" * 257),
            '{"event_id": "oversized-4", "customer_id": "' + MEGABYTE,  # a broken megabyte line
            event("oversized-5", session_id="S" * 256),  # exactly at the limit
        ),
        f"dt={DAY}/empty_files.json": b"",
        f"dt={DAY}/empty_files.2.json.gz": _gzip(b""),  # a valid gzip of nothing
        f"dt={DAY}/empty_files.3.json": b"\n\n   \n",  # blank lines are not records
        f"dt={DAY}/drifted_schema.json": _lines(
            event("drifted_schema-1", new_field="x", nested={"a": [1, 2]}, app_version=7),
            minimal,  # session_id, event_type and product_id absent: nullable, fine
            no_time,
            event("drifted_schema-4", EVENT_TIME="ignored: field names are case-sensitive"),
        ),
        f"dt={DAY}/invalid_utf8.json": _lines(
            b'{"event_id": "invalid_utf8-1", "customer_id": "C\xff\xfe1", "event_time": "2026-10-15T10:00:00Z"}',
            b'{"event_id": "invalid_utf8-2", "customer_id": "C1", "note": "\xc3\x28", '
            b'"event_time": "2026-10-15T10:00:00Z"}',
            event("invalid_utf8-3", product_id="caf\u00e9"),  # valid UTF-8, non-ASCII: fine
            event("invalid_utf8-4", customer_id="C\u00e91"),  # valid UTF-8 but outside the id pattern
        ),
        f"dt={DAY}/metacharacters.json": _lines(
            event("metacharacters-1", customer_id="C1'; DROP TABLE x;--"),
            event("metacharacters-2", customer_id="../../etc"),
            event("metacharacters-3", customer_id="C1/.."),
            event("metacharacters-4", customer_id="C1\n"),
            event("metacharacters-5", customer_id=" C1"),
            event("metacharacters-6", customer_id="C1%00"),
            event("metacharacters-7", customer_id="tenant:eu-west_1.C000001"),
        ),
        # Truncated mid-stream: the first rows decompress, then the stream ends early.
        f"dt={DAY}/corrupt_gzip.json.gz": _gzip(_lines(*(event(f"corrupt_gzip-{i}") for i in range(500))))[:300],
        f"dt={DAY}/corrupt_gzip.2.json.gz": b"this is not gzip at all",
        # Read: dt=2026-10-31 is T's day (2026-10-30 + 1 day of lateness); the event is a day late.
        "dt=2026-10-31/late_events.json": _lines(
            event("late_events-1", event_time="2026-10-30T23:00:00Z"),
            event("late_events-2", event_time="2026-10-01T00:00:00Z"),  # a month late, still in the band
        ),
        # Not read: two days late is beyond the margin.
        "dt=2026-11-01/late_events.json": _lines(event("late_events-beyond", event_time="2026-10-30T23:00:00Z")),
    }


def write_corpus(spark: SparkSession, root: Path) -> None:
    """Write every kind's files under ``root`` (which must not exist yet)."""
    for relative, content in _json_files().items():
        path = root / "events" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (root / "events" / "dt=2026-10-20").mkdir()  # an empty partition
    _write_parquet_events(spark, root / "parquet_events" / f"dt={DAY}")
    _write_orders(spark, root / "orders")


def _single_parquet(spark: SparkSession, rows: list[tuple[Any, ...]], ddl: str, target: Path) -> None:
    """Write ``rows`` as exactly one Parquet file named ``target``."""
    scratch = target.parent / f"_tmp_{target.name}"
    spark.createDataFrame(rows, ddl).coalesce(1).write.parquet(str(scratch))
    (part,) = scratch.glob("part-*.parquet")
    target.parent.mkdir(parents=True, exist_ok=True)
    part.rename(target)
    shutil.rmtree(scratch)


def _write_parquet_events(spark: SparkSession, folder: Path) -> None:
    """One file per schema: extra columns, a missing column, changed types, a broken file."""
    at = datetime(2026, 10, 15, 10, tzinfo=UTC)
    text_time = f"{DAY}T10:00:00Z"
    files: dict[str, tuple[list[tuple[Any, ...]], str]] = {
        # event_time as a Parquet TIMESTAMP (an instant), plus columns nobody declared.
        "parquet_extra_fields": (
            [
                ("parquet_extra_fields-1", "C1", "S1", "page_view", None, at, "v7", 3),
                ("parquet_extra_fields-2", "C2", "S2", "search", None, at, "v7", 4),
            ],
            "event_id string, customer_id string, session_id string, event_type string, product_id string, "
            "event_time timestamp, app_version string, screen_width int",
        ),
        "parquet_missing_column": (
            [("parquet_missing_column-1", "S1", "page_view", text_time)] * 2,
            "event_id string, session_id string, event_type string, event_time string",
        ),
        # Numbers where text ids were: rendered as "42", opaque ids that pass.
        "parquet_changed_types": (
            [("parquet_changed_types-1", 42, 7, "page_view", at)],
            "event_id string, customer_id bigint, session_id bigint, event_type string, event_time timestamp",
        ),
        "parquet_changed_types.2": (
            [("parquet_changed_types-2", ["C1"], "page_view", text_time)],
            "event_id string, customer_id array<string>, event_type string, event_time string",
        ),
        "parquet_changed_types.3": (
            [("parquet_changed_types-3", "C1", "page_view", 1760000000)],
            "event_id string, customer_id string, event_type string, event_time bigint",
        ),
    }
    for name, (rows, ddl) in files.items():
        _single_parquet(spark, rows, ddl, folder / f"{name}.parquet")
    (folder / "parquet_corrupt.parquet").write_bytes(b"PAR1 this is not a parquet file")


def _write_orders(spark: SparkSession, folder: Path) -> None:
    """An orders export whose amounts arrive as double, so NaN and infinity can occur."""
    at = datetime(2026, 10, 10, 12, tzinfo=UTC)
    amounts = [10.5, 999_999_999.99, 0.0, float("nan"), -5.0, 2e9, 1e15, float("inf")]
    rows = [(f"order_amounts-{i}", "C1", at, amount, 1, "completed") for i, amount in enumerate(amounts, 1)]
    rows.append(("order_amounts-9", "C1", at, 10.0, -1, "completed"))
    _single_parquet(
        spark,
        rows,
        "order_id string, customer_id string, order_time timestamp, total_amount double, item_count int, status string",
        folder / "part-0.parquet",
    )
