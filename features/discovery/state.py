"""What the stores hold for a group: the newest snapshot, its age against the freshness SLA, its
row count and null rates, and the verdict of the last validation report.

Row count and null rates are measured on the newest offline snapshot itself (one aggregation per
group): the validation report has null rates only where drift compared two snapshots, and the
catalog must show them from the first one on. The validation verdict comes from the newest report
under ``reports.root/validation/<run id>/<group>-<T>.json`` that build-features wrote.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.config import PipelineConf
from features.definitions import FeatureGroup
from features.io import fs
from features.load.offline import newest_snapshot_time, read_snapshot

log = logging.getLogger(__name__)

Freshness = Literal["fresh", "stale", "no SLA declared", "no snapshot"]
#: Validation runs looked through for a group's last report, newest first.
REPORT_RUNS_SCANNED = 50


@dataclass(frozen=True)
class Validation:
    """The last validation report's verdict on a group."""

    as_of: str
    success: bool
    blocking: bool
    expectations: int
    failed: tuple[str, ...]
    drift_flagged: tuple[str, ...]
    report: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "success": self.success,
            "blocking": self.blocking,
            "expectations": self.expectations,
            "failed": list(self.failed),
            "drift_flagged": list(self.drift_flagged),
            "report": self.report,
        }


@dataclass(frozen=True)
class GroupState:
    snapshot_time: datetime | None
    age: timedelta | None
    freshness: Freshness
    rows: int | None
    null_rates: dict[str, float]
    validation: Validation | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_time": self.snapshot_time.strftime("%Y-%m-%dT%H:%M:%SZ") if self.snapshot_time else None,
            "age_seconds": self.age.total_seconds() if self.age is not None else None,
            "freshness": self.freshness,
            "rows": self.rows,
            "null_rates": self.null_rates,
            "validation": self.validation.to_dict() if self.validation else None,
        }


def freshness(snapshot_time: datetime | None, sla: timedelta | None, now: datetime) -> Freshness:
    """``fresh`` while the newest snapshot is at most ``sla`` old, ``stale`` after."""
    if snapshot_time is None:
        return "no snapshot"
    if sla is None:
        return "no SLA declared"
    return "fresh" if now - snapshot_time <= sla else "stale"


def summarize_validation(report: dict[str, Any]) -> Validation:
    """The verdict of one validation JSON report (``ValidationResult.to_dict()``)."""
    expectations = report.get("expectations") or []
    failed = tuple(
        f"{e.get('name')} on {','.join(e.get('columns') or []) or 'table'}"
        for e in expectations
        if not e.get("success")
    )
    drift = report.get("drift") or {}
    flagged = tuple(sorted(n for n, d in drift.items() if (d or {}).get("status") in ("warn", "fail")))
    return Validation(
        as_of=str(report.get("as_of")),
        success=bool(report.get("success")),
        blocking=bool(report.get("blocking")),
        expectations=len(expectations),
        failed=failed,
        drift_flagged=flagged,
        report=str(report.get("html_report") or report.get("json_report") or ""),
    )


def last_validation(spark: SparkSession, reports_root: str, group: str) -> Validation | None:
    """The newest validation report of ``group``: newest run first, newest snapshot within a run."""
    root = f"{reports_root.rstrip('/')}/validation"
    runs = fs.list_dirs(spark, root) or []
    for run in sorted(runs, reverse=True)[:REPORT_RUNS_SCANNED]:
        # <group>-<T>.json: group names have no '-', so customer_orders_v2-... is not customer_orders'.
        names = [n for n in fs.list_files(spark, f"{root}/{run}") if n.startswith(f"{group}-") and n.endswith(".json")]
        if names:
            return summarize_validation(json.loads(fs.read_text(spark, f"{root}/{run}/{max(names)}")))
    return None


def snapshot_stats(
    spark: SparkSession, conf: PipelineConf, group: FeatureGroup
) -> tuple[datetime | None, int | None, dict[str, float]]:
    """(time, rows, null rate per feature) of the newest offline snapshot, in one aggregation."""
    root, fmt = conf.offline_store.root, conf.offline_store.format
    when = newest_snapshot_time(spark, root, group.name, format=fmt)
    if when is None:
        return None, None, {}
    snapshot = read_snapshot(spark, root, group.name, when, format=fmt)
    if snapshot is None:
        return when, None, {}
    present = [n for n in group.feature_names if n in snapshot.columns]
    row = snapshot.agg(F.count(F.lit(1)).alias("_rows"), *(F.count(F.col(n)).alias(n) for n in present)).first()
    rows = int(row["_rows"]) if row is not None else 0
    rates = {n: round(1 - row[n] / rows, 6) if rows and row is not None else 0.0 for n in present}
    return when, rows, rates


def read_state(spark: SparkSession, conf: PipelineConf, group: FeatureGroup, now: datetime) -> GroupState:
    when, rows, rates = snapshot_stats(spark, conf, group)
    return GroupState(
        snapshot_time=when,
        age=now - when if when is not None else None,
        freshness=freshness(when, group.freshness_sla_length, now),
        rows=rows,
        null_rates=rates,
        validation=last_validation(spark, conf.reports.root, group.name),
    )
