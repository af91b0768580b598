"""The validation gate the pipeline runs on a snapshot before writing it: :func:`validate_snapshot`.

It runs the group's expectation suite, the drift check against the previous snapshot (in a second
thread, concurrently), the input-freshness check, and applies the policy. It writes nothing: the
caller writes the report (:func:`features.validate.report.write_validation_report`) and, unless the
result is blocking, the data. What is checked and when a result blocks: docs/validation.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark import InheritableThread
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features.config import ValidationConf
from features.definitions import FeatureGroup
from features.transform.columns import utc_timestamp
from features.validate.drift import feature_drift
from features.validate.expectations import build_suite, group_specs, run_suite


@dataclass
class ValidationResult:
    """What the gate decided about one snapshot; ``to_dict()`` goes into the run report."""

    group: str
    as_of: str
    policy: str
    success: bool
    blocking: bool
    expectations: list[dict[str, Any]]
    drift: dict[str, dict[str, Any]]
    freshness: dict[str, Any]
    previous_rows: int | None
    html_report: str
    json_report: str
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for logs and a run's error message: what failed, and whether it blocks."""
        failed = [e for e in self.expectations if not e["success"]]
        parts = []
        if failed:
            shown = "; ".join(
                f"{e['name']} on {','.join(e['columns']) or 'table'}: "
                + (e["error"] or f"{e['unexpected_count'] if e['unexpected_count'] is not None else '?'} unexpected")
                for e in failed[:3]
            )
            more = f"; +{len(failed) - 3} more" if len(failed) > 3 else ""
            parts.append(f"{len(failed)} of {len(self.expectations)} expectations failed ({shown}{more})")
        else:
            parts.append(f"all {len(self.expectations)} expectations passed")
        for status in ("fail", "warn"):
            drifted = sorted(name for name, d in self.drift.items() if d["status"] == status)
            if drifted:
                parts.append(f"drift {status}: {', '.join(drifted)}")
        if self.freshness["status"] in ("warn", "fail"):
            parts.append(f"freshness {self.freshness['status']}: newest input {self.freshness['newest_event']}")
        verdict = "BLOCKING" if self.blocking else "ok" if self.success else "warn"
        return f"{self.group} validation {verdict} (policy {self.policy}): " + "; ".join(parts)


def newest_event_before(df: DataFrame, timestamp: str, as_of: datetime) -> datetime | None:
    """The newest ``timestamp`` before ``as_of`` in ``df`` (the snapshot's input rows), for freshness.

    Computed as epoch microseconds so the answer does not depend on the driver's local time zone.
    """
    row = df.where(F.col(timestamp) < utc_timestamp(as_of)).agg(F.max(F.unix_micros(F.col(timestamp)))).first()
    if row is None or row[0] is None:
        return None
    return datetime.fromtimestamp(row[0] / 1_000_000, tz=UTC)


def validate_snapshot(
    features_df: DataFrame,
    *,
    group: FeatureGroup,
    as_of: datetime,
    conf: ValidationConf,
    previous: DataFrame | None,
    inputs_latest_event: datetime | None,
    report_dir: str,
) -> ValidationResult:
    """Check ``features_df`` (the snapshot of ``group`` at ``as_of``, already cached); writes nothing.

    ``previous`` is :func:`features.load.offline.snapshot_before`'s answer for ``as_of``;
    ``inputs_latest_event`` the newest event time among the rows the snapshot was computed from
    (None when unknown). The result names its report files under ``report_dir``;
    :func:`features.validate.report.write_validation_report` writes them.
    """
    began = time.perf_counter()
    timings: dict[str, float] = {}
    policy = conf.policy_for(group.name)
    numeric = [f.name for f in group.features if f.dtype != "String"]
    strings = [f.name for f in group.features if f.dtype == "String"]

    # Row count from Parquet metadata (and the is_deleted column), needed before the suite is built.
    previous_rows = None if previous is None else previous.count()
    specs = group_specs(group, previous_rows=previous_rows, row_count_band=conf.row_count_band)
    suite = build_suite(group.name, specs)

    # Drift runs in a second thread while GX validates: about half of GX's time is its own Python
    # between small Spark jobs, which leaves the executors idle (bench/VALIDATE_RESULTS.md).
    # InheritableThread gives the drift jobs this thread's Spark job group and description.
    drift: dict[str, dict[str, Any]] = {}
    failure: list[BaseException] = []

    def measure_drift(previous: DataFrame) -> None:
        mark = time.perf_counter()
        try:
            drift.update(feature_drift(features_df, previous, numeric=numeric, strings=strings, conf=conf.drift))
        except BaseException as exc:  # re-raised in the calling thread below
            failure.append(exc)
        timings["drift"] = round(time.perf_counter() - mark, 3)

    worker = InheritableThread(measure_drift, args=(previous,), name="validate-drift") if previous is not None else None
    if worker is not None:
        worker.start()
    try:
        mark = time.perf_counter()
        outcomes = run_suite(features_df, suite, key=group.entity.join_key)
        timings["expectations"] = round(time.perf_counter() - mark, 3)
    finally:
        if worker is not None:
            worker.join()
    if failure:
        raise failure[0]

    freshness = _freshness(inputs_latest_event, as_of, conf)
    success = all(o.success for o in outcomes)
    blocking = (
        (not success and policy == "strict")
        or any(d["status"] == "fail" for d in drift.values())
        or freshness["status"] == "fail"
    )
    stem = f"{report_dir.rstrip('/')}/{group.name}-{as_of.strftime('%Y%m%dT%H%M%SZ')}"
    return ValidationResult(
        group=group.name,
        as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy=policy,
        success=success,
        blocking=blocking,
        expectations=[o.to_dict() for o in outcomes],
        drift=drift,
        freshness=freshness,
        previous_rows=previous_rows,
        html_report=f"{stem}.html",
        json_report=f"{stem}.json",
        seconds=round(time.perf_counter() - began, 3),
        timings=timings,
    )


def _freshness(newest: datetime | None, as_of: datetime, conf: ValidationConf) -> dict[str, Any]:
    max_age = conf.freshness_max_age.total_seconds()
    if newest is None:
        return {"newest_event": None, "age_seconds": None, "max_age_seconds": max_age, "status": "unknown"}
    if newest.tzinfo is None:
        raise ValueError(f"inputs_latest_event {newest.isoformat()} has no time zone; pass an aware UTC datetime")
    age = (as_of - newest).total_seconds()
    return {
        "newest_event": newest.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "age_seconds": age,
        "max_age_seconds": max_age,
        "status": "ok" if age <= max_age else conf.freshness_action,
    }
