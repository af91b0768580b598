"""Many snapshots of feature groups in one job: ``feature-pipeline backfill`` (docs/backfill.md).

The same stages as :func:`features.pipeline.build_features`, reused function by function, with
two differences of shape: each source is extracted **once** for the whole range (read window
``[T0 - largest - look-back, T1)``, or all history for lifetime aggregations), and each windowed
group's snapshots all come from one tile computation (features/transform/tiles.py). Then, per
snapshot in time order, the single-snapshot path: validate (against the previous snapshot in the
store, which for every T after T0 is the one this run just wrote), write the validation report,
write offline (``write_snapshot``: a rerun of a T replaces it, in either format), register it in
Glue when asked. Derived groups (row-level, no windows) are built per T with the build job's
own function: there is nothing to share between their snapshots.

A blocking validation result stops the backfill at that snapshot: the earlier snapshots are in
the store (each passed its own gate, as if the daily job had run), nothing after it is written,
and the run fails naming it. ``--push-latest`` pushes the newest snapshot of each group through
the build job's push path once every snapshot is written; without it nothing goes online.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession

from features.catalog.glue import catalog_offline_write
from features.config import PipelineConf
from features.constants import EVENT_TIME_FORMAT
from features.definitions import FeatureGroup
from features.online.client import usable_write_api
from features.online.settings import WriteApi
from features.pipeline import (
    BuildResult,
    Computed,
    Extract,
    PublishIncompleteError,
    RunFailedError,
    ValidationFailedError,
    extract,
    mark_latest_evidence,
    plan_reads,
    push_all,
    source_report,
    validate,
    write_evidence,
    write_offline,
)
from features.report import GroupReport
from features.transform.tiles import TileGrid, backfill_partials, snapshot_at, tile_grid
from features.transform.windows import derived_features

log = logging.getLogger(__name__)


@dataclass
class SnapshotReport:
    """One snapshot of the range in the run report."""

    group: str
    as_of: str
    rows: int = 0
    #: written (offline), blocked (validation; nothing written for it), failed (the write failed).
    status: str = "pending"
    offline_path: str | None = None
    offline_files: int = 0
    #: The gate's verdict: success, blocking, the one-line reason and the JSON / HTML report paths.
    validation: dict[str, object] | None = None
    seconds: float = 0.0


@dataclass
class BackfillResult(BuildResult):
    """A :class:`BuildResult` plus every snapshot of the range, in the order they were written."""

    snapshots: list[SnapshotReport] = field(default_factory=list)
    #: The tile each windowed group was computed from, e.g. ``{"customer_activity": "1h"}``.
    tiles: dict[str, str] = field(default_factory=dict)


@dataclass
class _Progress:
    """One log line per completed stage: snapshots done / total and the time since the start."""

    total: int
    began: float = field(default_factory=time.perf_counter)
    done: int = 0

    def __call__(self, stage: str) -> None:
        log.info(
            "backfill: %s (%d/%d snapshots, %.1fs elapsed)",
            stage,
            self.done,
            self.total,
            time.perf_counter() - self.began,
        )


def grids(conf: PipelineConf, groups: list[FeatureGroup], times: list[datetime]) -> dict[str, TileGrid]:
    """The tile grid of every windowed group (derived groups have none); a TileError when one cannot be cut."""
    lookback = conf.snapshot.dropout_lookback
    return {g.name: tile_grid(g, times, dropout_lookback=lookback) for g in groups if not g.derived}


def backfill(
    spark: SparkSession,
    conf: PipelineConf,
    groups: list[FeatureGroup],
    times: list[datetime],
    *,
    run_id: str,
    push_latest: bool = False,
    on_progress: Callable[[BuildResult], None] | None = None,
) -> BackfillResult:
    """Build, validate and write ``groups`` at every time of ``times`` (evenly spaced, oldest first).

    Raises :class:`~features.pipeline.RunFailedError` carrying what was done when a stage fails.
    """
    result = BackfillResult(on_progress=on_progress)
    progress = _Progress(total=len(groups) * len(times))
    tiles = grids(conf, groups, times)
    result.tiles = {name: _duration(grid) for name, grid in tiles.items()}
    write_api: WriteApi = conf.online_store.write_api
    pushing = push_latest and conf.online_store.enabled
    if pushing:
        write_api, warning = usable_write_api(write_api)
        if warning:
            log.warning(warning)
            result.warnings.append(warning)
    extracts: dict[str, Extract] = {}
    latest: list[Computed] = []
    try:
        for group in groups:
            result.groups[group.name] = GroupReport(
                group=group.name, source=group.source.name, features=len(group.features)
            )
        result.checkpoint()
        for name, plan in plan_reads(conf, groups, times[0]).items():
            extracts[name] = extract(spark, conf, replace(plan, end=times[-1]), run_id)
            result.sources[name] = source_report(extracts[name], written=False)
            progress(f"extracted {name}: {extracts[name].data.accepted_rows} rows accepted")
            result.checkpoint()
        write_evidence(spark, extracts, {}, result)  # the quarantine of the whole read, once
        for group in groups:
            snap = _group(spark, conf, group, tiles.get(group.name), times, extracts, run_id, result, progress)
            result.groups[group.name].status = "offline_written" if pushing else "published"
            if pushing:
                latest.append(snap)
            else:
                snap.features.unpersist()
        if latest:
            push_all(spark, conf, latest, times[-1], run_id, result, write_api=write_api)
            progress("pushed the newest snapshot online")
        unpublished = [g for g in result.groups.values() if g.status != "published"]
        if unpublished:
            raise PublishIncompleteError(
                f"{len(unpublished)} of {len(result.groups)} groups not published: "
                + "; ".join(f"{g.group}: {g.error}" for g in unpublished)
            )
    except Exception as exc:
        raise RunFailedError(result) from exc
    finally:
        try:
            mark_latest_evidence(spark, extracts, result, run_id)
        finally:
            for snap in latest:
                snap.features.unpersist()
            for ex in extracts.values():
                ex.data.release()
    return result


def _group(
    spark: SparkSession,
    conf: PipelineConf,
    group: FeatureGroup,
    grid: TileGrid | None,
    times: list[datetime],
    extracts: dict[str, Extract],
    run_id: str,
    result: BackfillResult,
    progress: _Progress,
) -> Computed:
    """Every snapshot of one group, in time order; returns the newest, still cached."""
    report = result.groups[group.name]
    ex = extracts[group.source.name]
    lookback = conf.snapshot.dropout_lookback
    partials: DataFrame | None = None
    if grid is not None:
        with report.timed("tiles"):
            partials = backfill_partials(ex.data.accepted, group=group, grid=grid, dropout_lookback=lookback).persist()
            records = partials.count()
        progress(f"{group.name}: {records} records of {len(times)} snapshots computed from {_duration(grid)} tiles")
    report_dir = f"{conf.reports.root.rstrip('/')}/validation/{run_id}"
    snap: Computed | None = None
    began = time.perf_counter()
    try:
        for k, as_of in enumerate(times):
            if snap is not None:
                snap.features.unpersist()
            mark = time.perf_counter()
            features = (
                snapshot_at(partials, group=group, grid=grid, index=k)
                if partials is not None and grid is not None
                else derived_features(ex.data.accepted, group=group, as_of=as_of)
            ).persist()
            snap = Computed(group=group, features=features, entities=features.count())
            entry = SnapshotReport(group=group.name, as_of=as_of.strftime(EVENT_TIME_FORMAT), rows=snap.entities)
            result.snapshots.append(entry)
            if conf.validation.enabled:
                _validate(spark, conf, snap, ex, as_of, report_dir, entry, report)
            try:
                written = write_offline(spark, conf, snap, as_of, run_id)
            except Exception:
                entry.status = "failed"
                report.status = "offline_failed"
                raise
            entry.status, entry.offline_path, entry.offline_files = "written", written.path, written.files
            entry.seconds = round(time.perf_counter() - mark, 3)
            report.entities, report.offline_path, report.offline_files = snap.entities, written.path, written.files
            if conf.catalog.glue.enabled:
                report.catalog = catalog_offline_write(conf, group, snap.features.schema, as_of)
            progress.done += 1
            progress(f"{group.name} at {entry.as_of}: {snap.entities} records -> {written.path}")
            result.checkpoint()
    except Exception:
        if snap is not None:
            snap.features.unpersist()
        raise
    finally:
        report.timings["snapshots"] = round(time.perf_counter() - began, 3)
        if partials is not None:
            partials.unpersist()
    assert snap is not None
    return snap


def _validate(
    spark: SparkSession,
    conf: PipelineConf,
    snap: Computed,
    ex: Extract,
    as_of: datetime,
    report_dir: str,
    entry: SnapshotReport,
    report: GroupReport,
) -> None:
    """The build job's gate on one snapshot, its report written; a blocking verdict stops the backfill."""
    from features.validate.report import write_validation_report  # imports GX

    verdict = validate(spark, conf, snap, ex, as_of, report_dir)
    write_validation_report(spark, verdict)
    entry.validation = {
        "success": verdict.success,
        "blocking": verdict.blocking,
        "reason": verdict.summary(),
        "json_report": verdict.json_report,
        "html_report": verdict.html_report,
    }
    report.validation = {**verdict.to_dict(), "reason": verdict.summary()}
    if verdict.blocking:
        entry.status = report.status = "blocked"
        report.error = f"snapshot {entry.as_of}: {verdict.summary()}"
        raise ValidationFailedError(
            f"validation failed at {entry.as_of}, it and later snapshots not written: {verdict.summary()}"
        )


def _duration(grid: TileGrid) -> str:
    seconds = int(grid.tile.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
