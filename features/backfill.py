"""Many snapshots of feature groups in one job: ``feature-pipeline backfill`` (docs/backfill.md).

The same stages as :func:`features.pipeline.build_features`, with three differences of shape:
each source is extracted **once** for the whole range (read window ``[T0 - largest - look-back,
T1)``, or all history for lifetime aggregations); each group's snapshots are **one DataFrame**
(windowed groups from stride buckets, features/transform/tiles.py; derived groups from the build
job's own ``derived_features`` per T, unioned); and every snapshot that passed the gate is written
in **one pass** (``write_snapshots``). The gate runs per snapshot, oldest first, as the build job
would: drift for T0 against the store, for every later T against this run's snapshot before it.

A blocking validation result stops the backfill at that snapshot: the earlier snapshots are
written (each passed its own gate, as if the daily job had run), nothing from it on, and the run
fails naming it. ``--push-latest`` pushes the newest snapshot of each group through the build
job's push path once every snapshot is written; without it nothing goes online.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.catalog.glue import catalog_offline_write
from features.config import PipelineConf
from features.constants import EVENT_TIME, EVENT_TIME_FORMAT
from features.definitions import FeatureGroup
from features.load.offline import snapshot_before, write_snapshots
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
    write_evidence,
)
from features.report import GroupReport
from features.transform.tiles import TileGrid, all_snapshots, backfill_partials, tile_grid
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
    #: The bucket (the step) each windowed group was computed from, e.g. ``{"customer_activity": "1d"}``.
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
    """Every snapshot of one group: computed as one DataFrame, checked oldest first, written in
    one pass; returns the newest, cached."""
    report = result.groups[group.name]
    ex = extracts[group.source.name]
    lookback = conf.snapshot.dropout_lookback
    with report.timed("compute"):
        if grid is not None:
            partials = backfill_partials(ex.data.accepted, group=group, grid=grid, dropout_lookback=lookback)
            every = all_snapshots(partials, group=group, grid=grid)
        else:
            every = reduce(
                DataFrame.unionByName, (derived_features(ex.data.accepted, group=group, as_of=t) for t in times)
            )
        every = every.persist()
        counts = {str(r[EVENT_TIME]): int(r["count"]) for r in every.groupBy(EVENT_TIME).count().collect()}
    rows = {t: counts.get(t.strftime(EVENT_TIME_FORMAT), 0) for t in times}
    how = f"from {_duration(grid)} buckets" if grid is not None else "row by row"
    progress(f"{group.name}: {sum(rows.values())} records of {len(times)} snapshots computed {how}")
    entries = [SnapshotReport(group=group.name, as_of=t.strftime(EVENT_TIME_FORMAT), rows=rows[t]) for t in times]
    try:
        passed = times
        if conf.validation.enabled:
            with report.timed("validation"):
                passed = _validate_all(spark, conf, group, every, rows, ex, run_id, entries, report, progress)
        result.snapshots.extend(entries[: len(passed) + (len(passed) < len(times))])
        if passed:
            with report.timed("offline_write"):
                try:
                    written = write_snapshots(
                        spark,
                        every,
                        root=conf.offline_store.root,
                        group=group.name,
                        rows={t: rows[t] for t in passed},
                        run_id=run_id,
                        write_time=datetime.now(tz=UTC),
                        format=conf.offline_store.format,
                        commit_attempts=conf.offline_store.commit_attempts,
                    )
                except Exception:
                    for entry in entries[: len(passed)]:
                        entry.status = "failed"
                    report.status = "offline_failed"
                    raise
            for entry, t in zip(entries, passed, strict=False):
                done = written[t]
                entry.status, entry.offline_path, entry.offline_files = "written", done.path, done.files
                if conf.catalog.glue.enabled:
                    report.catalog = catalog_offline_write(conf, group, every.schema, t)
                progress.done += 1
            newest = written[passed[-1]]
            report.entities, report.offline_path, report.offline_files = rows[passed[-1]], newest.path, newest.files
            progress(f"{group.name}: {len(passed)} snapshots written in one pass -> {newest.path}")
            result.checkpoint()
        if len(passed) < len(times):
            blocked = entries[len(passed)]
            raise ValidationFailedError(
                f"validation failed at {blocked.as_of}, it and later snapshots not written: "
                f"{(blocked.validation or {}).get('reason')}"
            )
        stamp = times[-1].strftime(EVENT_TIME_FORMAT)
        latest = every.where(F.col(EVENT_TIME) == F.lit(stamp)).persist()
        latest.count()
    finally:
        every.unpersist()
    return Computed(group=group, features=latest, entities=rows[times[-1]])


def _validate_all(
    spark: SparkSession,
    conf: PipelineConf,
    group: FeatureGroup,
    every: DataFrame,
    rows: dict[datetime, int],
    ex: Extract,
    run_id: str,
    entries: list[SnapshotReport],
    report: GroupReport,
    progress: _Progress,
) -> list[datetime]:
    """The build job's gate on each snapshot, oldest first, reports written; the times that passed
    before the first blocking one (all of them when none blocks).

    The previous snapshot of T0 is the store's; of every later T, this run's snapshot before it:
    what the store holds before T once that one is written, as in a run of the build job per T.
    """
    from features.validate.gate import newest_event_before, validate_snapshot  # imports GX
    from features.validate.report import write_validation_report

    report_dir = f"{conf.reports.root.rstrip('/')}/validation/{run_id}"
    ts = group.source.timestamp
    root, fmt = conf.offline_store.root, conf.offline_store.format
    previous: DataFrame | None = snapshot_before(spark, root, group.name, min(rows), format=fmt)
    passed: list[datetime] = []
    for entry, t in zip(entries, sorted(rows), strict=True):
        mark = time.perf_counter()
        features = every.where(F.col(EVENT_TIME) == F.lit(entry.as_of))
        verdict = validate_snapshot(
            features,
            group=group,
            as_of=t,
            conf=conf.validation,
            previous=previous,
            inputs_latest_event=newest_event_before(ex.data.accepted, ts, t) if group.aggregations and ts else None,
            report_dir=report_dir,
        )
        log.log(
            logging.INFO if verdict.success else logging.WARNING, "%s: validation %s", group.name, verdict.summary()
        )
        write_validation_report(spark, verdict)
        entry.validation = {
            "success": verdict.success,
            "blocking": verdict.blocking,
            "reason": verdict.summary(),
            "json_report": verdict.json_report,
            "html_report": verdict.html_report,
        }
        entry.seconds = round(time.perf_counter() - mark, 3)
        report.validation = {**verdict.to_dict(), "reason": verdict.summary()}
        if verdict.blocking:
            entry.status = report.status = "blocked"
            report.error = f"snapshot {entry.as_of}: {verdict.summary()}"
            return passed
        passed.append(t)
        previous = features
        progress(f"{group.name} at {entry.as_of}: {entry.rows} records passed validation")
    return passed


def _duration(grid: TileGrid) -> str:
    """The bucket (the step) a group's snapshots are derived from, e.g. ``1d``."""
    seconds = int(grid.stride.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
