"""``feature-pipeline backfill`` writing every snapshot in one pass: into a Delta offline store, and
when the validation gate blocks one snapshot of the range. Inputs and expectations hand-typed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from features.cli import main
from features.load.offline import read_snapshot

ROOT = Path(__file__).resolve().parents[2]
CONF = ["--conf", str(ROOT / "conf/local.yaml"), "--set", "online_store.enabled=false"]
RANGE = ["--group", "customer_activity", "--start", "2026-10-29T00:00:00Z", "--end", "2026-10-31T00:00:00Z"]
#: (event_id, customer_id, session_id, event_type, product_id, event_time): C1 on Oct 28, C2 and
#: C3 on Oct 30; nothing on Oct 29, so the snapshot of Oct 30 has inputs 36 hours old.
EVENTS = [
    ("E1", "C1", "S1", "page_view", None, "2026-10-28T12:00:00Z"),
    ("E2", "C1", "S1", "product_view", "P1", "2026-10-28T12:10:00Z"),
    ("E3", "C2", "S2", "product_view", "P1", "2026-10-30T12:00:00Z"),
    ("E4", "C2", "S2", "add_to_cart", "P1", "2026-10-30T12:01:00Z"),
    ("E5", "C3", "S3", "product_view", "P2", "2026-10-30T23:30:00Z"),
]
#: Per snapshot, per customer: (event_count_1h, event_count_1d, event_count_30d,
#: distinct_products_viewed_30d, session_count_30d), counted by hand from EVENTS.
WANT = {
    "2026-10-29T00:00:00Z": {"C1": (0, 2, 2, 1, 1)},
    "2026-10-30T00:00:00Z": {"C1": (0, 0, 2, 1, 1)},
    "2026-10-31T00:00:00Z": {"C1": (0, 0, 2, 1, 1), "C2": (0, 2, 2, 1, 1), "C3": (1, 1, 1, 1, 1)},
}
FEATURES = ["event_count_1h", "event_count_1d", "event_count_30d", "distinct_products_viewed_30d", "session_count_30d"]


@pytest.fixture(autouse=True)
def _restore_sql_settings(spark: SparkSession) -> Iterator[None]:
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    yield
    spark.conf.set("spark.sql.shuffle.partitions", saved or "2")


@pytest.fixture
def events(tmp_path: Path) -> Path:
    root = tmp_path / "events"
    for day in ("2026-10-28", "2026-10-29", "2026-10-30"):
        lines = [
            json.dumps(
                dict(
                    zip(
                        ("event_id", "customer_id", "session_id", "event_type", "product_id", "event_time"),
                        e,
                        strict=True,
                    )
                )
            )
            for e in EVENTS
            if e[5].startswith(day)
        ]
        (root / f"dt={day}").mkdir(parents=True)
        (root / f"dt={day}" / "part-0.json").write_text("".join(f"{line}\n" for line in lines))
    return root


def _sets(events: Path, out: Path) -> list[str]:
    flags = {
        "sources.clickstream.path": str(events),
        "offline_store.root": f"{out}/store",
        "quarantine.root": f"{out}/quarantine",
        "reports.root": f"{out}/reports",
    }
    return [arg for key, value in flags.items() for arg in ("--set", f"{key}={value}")]


def _report(out: Path) -> dict:  # type: ignore[type-arg]
    (path,) = sorted((out / "reports" / "backfill").glob("*.json"))
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _stored(spark: SparkSession, out: Path, stamp: str, fmt: str) -> dict[str, tuple[int, ...]]:
    at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    df = read_snapshot(spark, f"{out}/store", "customer_activity", at, format=fmt)  # type: ignore[arg-type]
    assert df is not None
    rows = df.where(df.event_time == stamp).select("customer_id", *FEATURES).collect()
    return {r["customer_id"]: tuple(r[f] for f in FEATURES) for r in rows}


def test_a_range_into_a_delta_store_then_a_rerun(spark: SparkSession, events: Path, tmp_path: Path) -> None:
    args = ["backfill", *CONF, *RANGE, "--step", "1d", "--set", "offline_store.format=delta"]
    args += ["--set", "validation.enabled=false", *_sets(events, tmp_path)]
    assert main(args) == 0
    report = _report(tmp_path)
    assert [(s["as_of"], s["status"], s["rows"]) for s in report["snapshots"]] == [
        ("2026-10-29T00:00:00Z", "written", 1),
        ("2026-10-30T00:00:00Z", "written", 1),
        ("2026-10-31T00:00:00Z", "written", 3),
    ]
    for stamp, want in WANT.items():
        assert _stored(spark, tmp_path, stamp, "delta") == want
    table = spark.read.format("delta").load(f"{tmp_path}/store/customer_activity/delta")
    assert table.count() == 5
    assert main(args) == 0  # the range again: replaced, not duplicated
    again = spark.read.format("delta").load(f"{tmp_path}/store/customer_activity/delta")
    assert again.count() == 5 and again.select("customer_id", "event_time").distinct().count() == 5


def test_a_blocked_snapshot_stops_the_range_there(
    spark: SparkSession, events: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Freshness with action fail blocks Oct 30 (newest input 36 h old, more than 1 day): Oct 29 is
    written, Oct 30 is reported blocked, Oct 31 is neither checked nor written; exit 1."""
    gate = ["--set", "validation.freshness_max_age=1d", "--set", "validation.freshness_action=fail"]
    gate += ["--set", "validation.policy=warn"]  # a five-event data set fails the row-level expectations' bands
    args = ["backfill", *CONF, *RANGE, "--step", "1d", *gate, *_sets(events, tmp_path)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "snapshots written: 1 of 3" in captured.out
    err = captured.err.strip().splitlines()[-1]
    assert (
        err.startswith("error: ")
        and "validation failed at 2026-10-30T00:00:00Z, it and later snapshots not written" in err
    )
    report = _report(tmp_path)
    assert report["status"] == "failed"
    snaps = report["snapshots"]
    assert [(s["as_of"], s["status"]) for s in snaps] == [
        ("2026-10-29T00:00:00Z", "written"),
        ("2026-10-30T00:00:00Z", "blocked"),
    ]
    assert snaps[0]["validation"]["blocking"] is False
    assert snaps[1]["validation"]["blocking"] is True and "freshness fail" in snaps[1]["validation"]["reason"]
    assert Path(snaps[1]["validation"]["json_report"]).exists()
    assert report["groups"][0]["status"] == "blocked"
    stored = spark.read.parquet(f"{tmp_path}/store/customer_activity/data")
    assert [tuple(r) for r in stored.select("event_time", "customer_id").collect()] == [("2026-10-29T00:00:00Z", "C1")]
    assert _stored(spark, tmp_path, "2026-10-29T00:00:00Z", "parquet") == WANT["2026-10-29T00:00:00Z"]
