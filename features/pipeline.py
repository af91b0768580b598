"""The batch pipeline: the only module that joins extract, transform, validate and load.

The stages run in a fixed order (docs/architecture.md): plan one read window per source, extract
each source once, compute every group, validate every group (writing nothing), write the
evidence (quarantine, validation reports), then publish (offline, then online). Each stage
returns values; :func:`build_features` assembles the run's reports from them. A blocking
validation result stops the run before anything is published.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.config import PipelineConf, SourceConf
from features.constants import QUARANTINE_REASON
from features.definitions import FeatureGroup, Source
from features.io import fs
from features.io.extract import Extracted, read_event_log, read_table
from features.io.jdbc import read_jdbc_table
from features.load.offline import OfflineWrite, snapshot_before, snapshot_tag, write_snapshot
from features.online.client import control_client, placeholder_credentials_needed, usable_write_api
from features.online.embedded import online_endpoint
from features.online.push import push_snapshot
from features.online.registration import register_groups
from features.online.settings import PushError, PushResult, PushSettings, WriteApi
from features.report import GroupReport, SourceReport
from features.transform.windows import snapshot

if TYPE_CHECKING:
    from features.validate.gate import ValidationResult

log = logging.getLogger(__name__)

#: Quarantined rows per reason copied into the run report, and their width.
SAMPLES_PER_REASON, SAMPLE_WIDTH = 3, 120


class ValidationFailedError(RuntimeError):
    """A strict validation gate (or a drift / freshness check set to fail) blocked the run."""


class RunFailedError(RuntimeError):
    """The run stopped; ``result`` holds what it did until then, ``__cause__`` why it stopped."""

    def __init__(self, result: BuildResult) -> None:
        super().__init__("the run failed")
        self.result = result


@dataclass(frozen=True)
class ReadPlan:
    """What one source is read for: events with ``start <= time < end`` (``start`` None: all)."""

    source: Source
    start: datetime | None
    end: datetime


@dataclass(frozen=True)
class Extract:
    """One source's rows and where its quarantine of this snapshot goes."""

    data: Extracted
    quarantine_path: str
    seconds: float


@dataclass(frozen=True)
class Computed:
    """One group's snapshot, cached: validation, the offline write and the push all read it."""

    group: FeatureGroup
    features: DataFrame
    entities: int


@dataclass
class BuildResult:
    """What a run did, stage by stage; the job turns it into the run report."""

    sources: dict[str, SourceReport] = field(default_factory=dict)
    groups: dict[str, GroupReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_start(group: FeatureGroup, as_of: datetime, lookback: timedelta) -> datetime | None:
    """The earliest event time a snapshot of ``group`` can use; None when it needs all history."""
    largest = group.largest_window
    if largest is None or any(not a.windowed for a in group.aggregations):
        return None
    return as_of - largest.length - lookback


def plan_reads(conf: PipelineConf, groups: list[FeatureGroup], as_of: datetime) -> dict[str, ReadPlan]:
    """One read window per source: the union of what every group reading it needs."""
    lookback = conf.snapshot.dropout_lookback
    plans: dict[str, ReadPlan] = {}
    for source in {g.source.name: g.source for g in groups}.values():
        starts = [read_start(g, as_of, lookback) for g in groups if g.source.name == source.name]
        start = None if None in starts else min(s for s in starts if s is not None)
        plans[source.name] = ReadPlan(source=source, start=start, end=as_of)
    return plans


def build_features(
    spark: SparkSession, conf: PipelineConf, groups: list[FeatureGroup], as_of: datetime, *, run_id: str
) -> BuildResult:
    """Build ``groups`` at ``as_of``, validate them, write the evidence, then publish them.

    Raises :class:`RunFailedError` (with what was done so far) when any stage fails; a blocking
    validation result anywhere fails the run with nothing published offline or online.
    """
    result = BuildResult()
    extracts: dict[str, Extract] = {}
    computed: list[Computed] = []
    write_api: WriteApi = conf.online_store.write_api
    if conf.online_store.enabled:  # before any work: no executor may meet an old botocore (AttributeError)
        write_api, warning = usable_write_api(write_api)
        if warning:
            log.warning(warning)
            result.warnings.append(warning)
    try:
        for name, plan in plan_reads(conf, groups, as_of).items():
            extracts[name] = extract(spark, conf, plan)
            result.sources[name] = source_report(extracts[name], written=False)
        for group in groups:
            report = GroupReport(group=group.name, source=group.source.name, features=len(group.features))
            result.groups[group.name] = report
            with report.timed("transform"):
                computed.append(compute(group, extracts[group.source.name].data, as_of, conf.snapshot.dropout_lookback))
            report.entities = computed[-1].entities
        checked: dict[str, ValidationResult] = {}
        if conf.validation.enabled:
            report_dir = f"{conf.reports.root.rstrip('/')}/validation/{run_id}"
            for snap in computed:
                report = result.groups[snap.group.name]
                with report.timed("validate"):
                    verdict = validate(spark, conf, snap, extracts[snap.group.source.name], as_of, report_dir)
                checked[snap.group.name] = verdict
                # Set now so a failed run still reports the verdict; set again once its report is written.
                report.validation = {**verdict.to_dict(), "reason": verdict.summary()}
        write_evidence(spark, extracts, checked, result)
        blocked = [r for r in checked.values() if r.blocking]
        if blocked:
            raise ValidationFailedError(
                "validation failed, nothing written: " + "; ".join(r.summary() for r in blocked)
            )
        publish(spark, conf, computed, as_of, run_id, result, write_api=write_api)
    except Exception as exc:
        raise RunFailedError(result) from exc
    finally:
        for snap in computed:
            snap.features.unpersist()
        for ex in extracts.values():
            ex.data.release()
    return result


def extract(spark: SparkSession, conf: PipelineConf, plan: ReadPlan) -> Extract:
    """Read one source for ``plan``: a live JDBC table, an event log by ``dt`` day, or a table extract."""
    source = plan.source
    sconf: SourceConf = conf.source(source.name)
    began = time.perf_counter()
    if sconf.jdbc is not None:
        data = read_jdbc_table(spark, sconf.jdbc, source, start=plan.start, end=plan.end)
    elif sconf.partitioning == "dt":
        data = read_event_log(
            spark,
            sconf,
            source,
            start=plan.start or datetime.min.replace(tzinfo=UTC),
            end=plan.end,
            future_tolerance=sconf.future_tolerance,
            on_corrupt_file=sconf.on_corrupt_file,
        )
    else:
        data = read_table(spark, sconf, source)
    path = f"{conf.quarantine.root.rstrip('/')}/{source.name}/as_of={snapshot_tag(plan.end)}"
    return Extract(data=data, quarantine_path=path, seconds=round(time.perf_counter() - began, 3))


def compute(group: FeatureGroup, data: Extracted, as_of: datetime, lookback: timedelta) -> Computed:
    features = snapshot(data.accepted, group=group, as_of=as_of, dropout_lookback=lookback).persist()
    return Computed(group=group, features=features, entities=features.count())


def validate(
    spark: SparkSession, conf: PipelineConf, snap: Computed, ex: Extract, as_of: datetime, report_dir: str
) -> ValidationResult:
    """The gate's verdict on one snapshot; writes nothing."""
    from features.validate.gate import newest_event_before, validate_snapshot  # GX: seconds to import

    group = snap.group
    ts = group.source.timestamp
    checked = validate_snapshot(
        snap.features,
        group=group,
        as_of=as_of,
        conf=conf.validation,
        previous=snapshot_before(spark, conf.offline_store.root, group.name, as_of),
        inputs_latest_event=newest_event_before(ex.data.accepted, ts, as_of) if group.aggregations and ts else None,
        report_dir=report_dir,
    )
    log.log(logging.INFO if checked.success else logging.WARNING, "%s: validation %s", group.name, checked.summary())
    return checked


def write_evidence(
    spark: SparkSession, extracts: dict[str, Extract], checked: dict[str, ValidationResult], result: BuildResult
) -> None:
    """The quarantine of every source and the validation report of every group, whatever the gate decided."""
    for name, ex in extracts.items():
        write_quarantine(spark, ex)
        result.sources[name] = source_report(ex, written=True, samples=quarantine_samples(ex.data))
    if not checked:
        return
    from features.validate.report import write_validation_report  # imports GX

    for name, verdict in checked.items():
        write_validation_report(spark, verdict)
        result.groups[name].validation = {**verdict.to_dict(), "reason": verdict.summary()}


def write_quarantine(spark: SparkSession, ex: Extract) -> None:
    """Replace the quarantine of this source and snapshot (removing it when nothing was quarantined)."""
    if ex.data.quarantined_rows:
        ex.data.quarantined.write.mode("overwrite").json(ex.quarantine_path)
        log.warning("%s: %d rows quarantined -> %s", ex.data.source, ex.data.quarantined_rows, ex.quarantine_path)
    else:
        fs.delete(spark, ex.quarantine_path)


def source_report(
    ex: Extract, *, written: bool, samples: dict[str, list[dict[str, str | None]]] | None = None
) -> SourceReport:
    """The run report's entry for one source; it names the quarantine only once that is written."""
    data = ex.data
    paths = data.input_paths
    return SourceReport(
        source=data.source,
        input_paths=paths if len(paths) <= 10 else [*paths[:3], f"... {len(paths)} paths"],
        rows_read=data.input_rows,
        accepted=data.accepted_rows,
        quarantined=data.quarantined_rows,
        duplicates=data.duplicate_rows,
        quarantine_reasons=data.quarantine_reasons,
        quarantine_path=ex.quarantine_path if written and data.quarantined_rows else None,
        quarantine_samples=samples or {},
        seconds=ex.seconds,
    )


def quarantine_samples(data: Extracted) -> dict[str, list[dict[str, str | None]]]:
    """A few quarantined rows per reason, values shortened: enough to recognise the problem
    without opening the quarantine files (one small job per reason over the cached rows)."""
    out: dict[str, list[dict[str, str | None]]] = {}
    for reason in data.quarantine_reasons:
        rows = data.quarantined.where(F.col(QUARANTINE_REASON) == reason).limit(SAMPLES_PER_REASON).collect()
        out[reason] = [
            {k: None if v is None else _cut(str(v)) for k, v in row.asDict().items() if k != QUARANTINE_REASON}
            for row in rows
        ]
    return out


def _cut(text: str) -> str:
    return text if len(text) <= SAMPLE_WIDTH else f"{text[: SAMPLE_WIDTH - 3]}..."


def publish(
    spark: SparkSession,
    conf: PipelineConf,
    computed: list[Computed],
    as_of: datetime,
    run_id: str,
    result: BuildResult,
    *,
    write_api: WriteApi,
) -> None:
    """Write each group offline, then push it online with ``write_api`` (registering the groups first when asked)."""
    online = conf.online_store
    with online_endpoint(online) if online.enabled else nullcontext(None) as endpoint:
        push = None
        if online.enabled:
            # Decided here, on the driver, and carried to the executors in the settings.
            placeholder = placeholder_credentials_needed(endpoint)
            push = PushSettings.from_conf(online, endpoint, write_api=write_api, placeholder_credentials=placeholder)
        if push is not None and online.register_groups:
            outcome = register_groups(
                control_client(
                    endpoint_url=endpoint, region=online.region, placeholder_credentials=push.placeholder_credentials
                ),
                [snap.group for snap in computed],
                offline_s3_uri=online.offline_s3_uri,
                role_arn=online.role_arn,
            )
            log.info("feature groups registered: %s", outcome)
        for snap in computed:
            report = result.groups[snap.group.name]
            with report.timed("offline"):
                written = write_offline(spark, conf, snap, as_of, run_id)
            report.offline_path, report.offline_files = written.path, written.files
            if push is None:
                continue
            with report.timed("online"):
                try:
                    pushed = push_online(snap, push, run_id)
                except PushError as exc:
                    report.online = asdict(exc.result) if exc.result is not None else None
                    raise
            report.online = asdict(pushed)


def write_offline(
    spark: SparkSession, conf: PipelineConf, snap: Computed, as_of: datetime, run_id: str
) -> OfflineWrite:
    written = write_snapshot(
        spark,
        snap.features,
        root=conf.offline_store.root,
        group=snap.group.name,
        as_of=as_of,
        run_id=run_id,
        rows=snap.entities,
        write_time=datetime.now(tz=UTC),
    )
    log.info("%s: %d records at %s -> %s", snap.group.name, written.rows, as_of.isoformat(), written.path)
    return written


def push_online(snap: Computed, settings: PushSettings, run_id: str) -> PushResult:
    pushed = push_snapshot(snap.features, group=snap.group, settings=settings, run_id=run_id)
    log.info(
        "%s: %d records pushed online (%d retried, %d throttled, %d dead-lettered)",
        snap.group.name,
        pushed.written,
        pushed.retried,
        pushed.throttled,
        pushed.dead_lettered,
    )
    return pushed
