"""The batch pipeline: the only module that joins extract, transform, validate and load.

The stages run in a fixed order (docs/architecture.md): plan one read window per source, extract
each source once, compute every group, validate every group (writing nothing), write the
evidence (quarantine, validation reports: under this run's id, so no run replaces another's),
then publish: every group offline, then every group online. Each stage returns values;
:func:`build_features` assembles the run's reports from them and checkpoints them after each.

What a failure leaves (docs/reliability.md): a blocking validation result stops the run before
anything is published. Once publishing starts, one group's failure does not stop the others: each
validated group is written offline, each group written offline is pushed, what cannot be pushed is
dead-lettered, and the run then fails naming every group that is not published.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.catalog.glue import catalog_offline_write
from features.config import PipelineConf, SourceConf
from features.constants import CORRUPT_RECORD, QUARANTINE_REASON
from features.definitions import FeatureGroup, Source
from features.errors import one_line
from features.io import fs
from features.io.extract import Extracted, read_event_log, read_table
from features.io.jdbc import read_jdbc_table
from features.load.offline import OfflineWrite, newest_snapshot_time, snapshot_before, snapshot_tag, write_snapshot
from features.online.client import control_client, placeholder_credentials_needed, usable_write_api
from features.online.embedded import online_endpoint
from features.online.push import push_snapshot
from features.online.registration import check_registered, register_groups
from features.online.settings import PushError, PushResult, PushSettings, WriteApi
from features.privacy.columns import pseudonymisation
from features.privacy.keys import load_pseudonymiser
from features.privacy.pseudonym import Pseudonymiser, check_declarations, pseudonymised_columns
from features.report import GroupReport, SourceReport
from features.transform.quarantine import CONFLICTING_DUPLICATE
from features.transform.windows import snapshot

if TYPE_CHECKING:
    from features.validate.gate import ValidationResult

log = logging.getLogger(__name__)

#: Quarantined rows per reason copied into the run report, and their width.
SAMPLES_PER_REASON, SAMPLE_WIDTH = 3, 120


#: The file naming the latest run whose snapshot reached the offline store, per source and T.
LATEST_EVIDENCE = "_LATEST.json"


class ValidationFailedError(RuntimeError):
    """A strict validation gate (or a drift / freshness check set to fail) blocked the run."""


class PublishIncompleteError(RuntimeError):
    """Publishing went through every group, and some are not published (GroupReport.status says how far)."""


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
    #: The columns whose accepted values are pseudonyms, and the pseudonymiser (for report samples).
    pseudonymised: tuple[str, ...] = ()
    pseudonymiser: Pseudonymiser | None = field(default=None, repr=False)


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
    #: Called after every stage with this result (the job rewrites the run report with it).
    on_progress: Callable[[BuildResult], None] | None = field(default=None, repr=False, compare=False)

    def checkpoint(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self)


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
    spark: SparkSession,
    conf: PipelineConf,
    groups: list[FeatureGroup],
    as_of: datetime,
    *,
    run_id: str,
    on_progress: Callable[[BuildResult], None] | None = None,
) -> BuildResult:
    """Build ``groups`` at ``as_of``, validate them, write the evidence, then publish them.

    Raises :class:`RunFailedError` (with what was done so far) when any stage fails; a blocking
    validation result anywhere fails the run with nothing published offline or online.
    ``on_progress`` is called with the result so far after every stage.
    """
    result = BuildResult(on_progress=on_progress)
    extracts: dict[str, Extract] = {}
    computed: list[Computed] = []
    write_api: WriteApi = conf.online_store.write_api
    if conf.online_store.enabled:  # before any work: no executor may meet an old botocore (AttributeError)
        write_api, warning = usable_write_api(write_api)
        if warning:
            log.warning(warning)
            result.warnings.append(warning)
    try:
        for group in groups:
            result.groups[group.name] = GroupReport(
                group=group.name, source=group.source.name, features=len(group.features)
            )
        result.checkpoint()
        pseudonymiser = privacy_check(conf, groups)  # before any Spark work: a missing key is one line
        for name, plan in plan_reads(conf, groups, as_of).items():
            extracts[name] = extract(spark, conf, plan, run_id, pseudonymiser=pseudonymiser, groups=groups)
            result.sources[name] = source_report(extracts[name], written=False)
            result.checkpoint()
        for group in groups:
            report = result.groups[group.name]
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
        blocked = [name for name, r in checked.items() if r.blocking]
        if blocked:
            for name in result.groups:
                result.groups[name].status = "blocked"
                result.groups[name].error = checked[name].summary() if name in blocked else "another group is blocked"
            raise ValidationFailedError(
                "validation failed, nothing written: " + "; ".join(checked[name].summary() for name in blocked)
            )
        result.checkpoint()
        try:
            publish(spark, conf, computed, as_of, run_id, result, write_api=write_api)
        finally:  # also when some group is not published: the others' snapshots are in the store
            mark_latest_evidence(spark, extracts, result, run_id)
    except Exception as exc:
        raise RunFailedError(result) from exc
    finally:
        for snap in computed:
            snap.features.unpersist()
        for ex in extracts.values():
            ex.data.release()
    return result


def privacy_check(conf: PipelineConf, groups: list[FeatureGroup]) -> Pseudonymiser | None:
    """The pseudonymiser when ``privacy.pseudonymisation`` is on, its key read now (docs/privacy.md)."""
    pseudonymiser = load_pseudonymiser(conf.privacy.pseudonymisation)
    if pseudonymiser is not None:
        check_declarations(groups)
        log.info("pseudonymising declared identifiers (key fingerprint %s)", pseudonymiser.fingerprint)
    return pseudonymiser


def extract(
    spark: SparkSession,
    conf: PipelineConf,
    plan: ReadPlan,
    run_id: str,
    *,
    pseudonymiser: Pseudonymiser | None = None,
    groups: list[FeatureGroup] | None = None,
) -> Extract:
    """Read one source for ``plan``: a live JDBC table, an event log by ``dt`` day, or a table extract.

    With a ``pseudonymiser``, the source's personal columns (its ``pii`` and the keys of the
    pseudonymised entities of ``groups``) reach everything after extract as pseudonyms.
    """
    source = plan.source
    sconf: SourceConf = conf.source(source.name)
    began = time.perf_counter()
    hidden = pseudonymised_columns(source, groups or []) if pseudonymiser is not None else ()
    pseudonymise = pseudonymisation(pseudonymiser, hidden)
    if sconf.jdbc is not None:
        data = read_jdbc_table(
            spark,
            sconf.jdbc,
            source,
            start=plan.start,
            end=plan.end,
            on_conflicting_duplicate=sconf.on_conflicting_duplicate,
            pseudonymise=pseudonymise,
        )
    elif sconf.partitioning == "dt":
        data = read_event_log(
            spark,
            sconf,
            source,
            start=plan.start or datetime.min.replace(tzinfo=UTC),
            end=plan.end,
            future_tolerance=sconf.future_tolerance,
            on_corrupt_file=sconf.on_corrupt_file,
            on_conflicting_duplicate=sconf.on_conflicting_duplicate,
            pseudonymise=pseudonymise,
        )
    else:
        data = read_table(
            spark, sconf, source, on_conflicting_duplicate=sconf.on_conflicting_duplicate, pseudonymise=pseudonymise
        )
    path = f"{quarantine_dir(conf, source.name, plan.end)}/run={run_id}"
    return Extract(
        data=data,
        quarantine_path=path,
        seconds=round(time.perf_counter() - began, 3),
        pseudonymised=hidden,
        pseudonymiser=pseudonymiser,
    )


def quarantine_dir(conf: PipelineConf, source: str, as_of: datetime) -> str:
    """Where the quarantines of ``source`` at ``as_of`` go: one ``run=<run_id>`` directory per run."""
    return f"{conf.quarantine.root.rstrip('/')}/{source}/as_of={snapshot_tag(as_of)}"


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
        previous=snapshot_before(spark, conf.offline_store.root, group.name, as_of, format=conf.offline_store.format),
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
        samples = quarantine_samples(ex.data, pseudonymiser=ex.pseudonymiser, pseudonymised=ex.pseudonymised)
        result.sources[name] = source_report(ex, written=True, samples=samples)
    if not checked:
        return
    from features.validate.report import write_validation_report  # imports GX

    for name, verdict in checked.items():
        write_validation_report(spark, verdict)
        result.groups[name].validation = {**verdict.to_dict(), "reason": verdict.summary()}


def write_quarantine(spark: SparkSession, ex: Extract) -> None:
    """Write this run's quarantine of one source (nothing when nothing was quarantined).

    Every run has its own directory, so a rerun that fails validation keeps the evidence behind
    the snapshot still in the stores; :func:`mark_latest_evidence` names the one that is.
    """
    if ex.data.quarantined_rows:
        ex.data.quarantined.write.mode("overwrite").json(ex.quarantine_path)
        log.warning("%s: %d rows quarantined -> %s", ex.data.source, ex.data.quarantined_rows, ex.quarantine_path)


def mark_latest_evidence(spark: SparkSession, extracts: dict[str, Extract], result: BuildResult, run_id: str) -> None:
    """Point ``<quarantine.root>/<source>/as_of=<T>/_LATEST.json`` at this run's quarantine, for every
    source one of whose groups this run wrote offline: the evidence behind what the store holds."""
    for name, ex in extracts.items():
        if not any(g.source == name and g.offline_path for g in result.groups.values()):
            continue
        pointer = {
            "run_id": run_id,
            "quarantine_path": ex.quarantine_path if ex.data.quarantined_rows else None,
            "quarantined": ex.data.quarantined_rows,
        }
        fs.write_text(spark, f"{ex.quarantine_path.rsplit('/', 1)[0]}/{LATEST_EVIDENCE}", json.dumps(pointer))


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
        conflicting_duplicates=data.conflicting_duplicates,
        conflict_samples=data.conflict_samples,
        quarantine_reasons=data.quarantine_reasons,
        quarantine_path=ex.quarantine_path if written and data.quarantined_rows else None,
        quarantine_samples=samples or {},
        seconds=ex.seconds,
    )


def quarantine_samples(
    data: Extracted, *, pseudonymiser: Pseudonymiser | None = None, pseudonymised: tuple[str, ...] = ()
) -> dict[str, list[dict[str, str | None]]]:
    """A few quarantined rows per reason, values shortened: enough to recognise the problem
    without opening the quarantine files (one small job per reason over the cached rows).

    The quarantine files keep raw rows; the run report does not: with a ``pseudonymiser`` the
    ``pseudonymised`` columns show pseudonyms and a corrupt line's raw text is withheld.
    """
    out: dict[str, list[dict[str, str | None]]] = {}
    for reason in data.quarantine_reasons:
        rows = data.quarantined.where(F.col(QUARANTINE_REASON) == reason).limit(SAMPLES_PER_REASON).collect()
        out[reason] = [
            {
                k: _sample_value(k, v, reason, pseudonymiser, pseudonymised)
                for k, v in row.asDict().items()
                if k != QUARANTINE_REASON
            }
            for row in rows
        ]
    return out


def _sample_value(
    column: str, value: object, reason: str, pseudonymiser: Pseudonymiser | None, pseudonymised: tuple[str, ...]
) -> str | None:
    if value is None:
        return None
    if pseudonymiser is not None:
        if column == CORRUPT_RECORD:
            return "(withheld: may hold personal identifiers; see the quarantine files)"
        # Conflicting duplicates are quarantined after extract pseudonymised them.
        if column in pseudonymised and reason != CONFLICTING_DUPLICATE:
            return pseudonymiser.pseudonym(str(value))
    return _cut(str(value))


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
    """Write every group offline, then push every group written offline with ``write_api``.

    A group whose offline write fails is not pushed (online must never hold what offline does
    not); a group whose push fails or dead-letters over tolerance keeps its offline snapshot and
    its dead letters. Raises :class:`PublishIncompleteError` after the last group when any group
    is not published.
    """
    for snap in computed:
        report = result.groups[snap.group.name]
        try:
            with report.timed("offline"):
                written = write_offline(spark, conf, snap, as_of, run_id)
        except Exception as exc:
            log.debug("offline write of %s failed", snap.group.name, exc_info=True)
            report.status, report.error = "offline_failed", f"offline write failed: {one_line(exc)}"
        else:
            report.offline_path, report.offline_files = written.path, written.files
            # A batch-only group (online=False) is published once it is offline: nothing is registered or pushed.
            report.status = "offline_written" if conf.online_store.enabled and snap.group.online else "published"
            if conf.catalog.glue.enabled:  # a Glue failure keeps the write; the run fails naming it
                with report.timed("catalog"):
                    report.catalog = catalog_offline_write(conf, snap.group, snap.features.schema, as_of)
        result.checkpoint()
    to_push = [snap for snap in computed if result.groups[snap.group.name].status == "offline_written"]
    if to_push:
        push_all(spark, conf, to_push, as_of, run_id, result, write_api=write_api)
    unpublished = [g for g in result.groups.values() if g.status != "published"]
    if unpublished:
        offline = sum(1 for g in result.groups.values() if g.offline_path)
        raise PublishIncompleteError(
            f"{len(unpublished)} of {len(result.groups)} groups not published "
            f"({offline} written offline): " + "; ".join(f"{g.group}: {g.error}" for g in unpublished)
        )
    # Published, but not findable in the catalog: the stores hold the snapshot, a rerun registers it.
    uncatalogued = [g for g in result.groups.values() if g.catalog and g.catalog.get("error")]
    if uncatalogued:
        raise PublishIncompleteError(
            f"{len(uncatalogued)} of {len(result.groups)} groups published but not in the catalog: "
            + "; ".join(f"{g.group}: {g.catalog['error']}" for g in uncatalogued if g.catalog)
        )


def push_all(
    spark: SparkSession,
    conf: PipelineConf,
    computed: list[Computed],
    as_of: datetime,
    run_id: str,
    result: BuildResult,
    *,
    write_api: WriteApi,
) -> None:
    """Push each group (registering the groups first when asked); record each group's outcome."""
    online = conf.online_store
    with online_endpoint(online) as endpoint:
        # Decided here, on the driver, and carried to the executors in the settings.
        placeholder = placeholder_credentials_needed(endpoint)
        push = PushSettings.from_conf(online, endpoint, write_api=write_api, placeholder_credentials=placeholder)
        client = control_client(
            endpoint_url=endpoint, region=online.region, placeholder_credentials=push.placeholder_credentials
        )
        if online.register_groups:
            try:
                outcome = register_groups(
                    client,
                    [snap.group for snap in computed],
                    offline_s3_uri=online.offline_s3_uri,
                    role_arn=online.role_arn,
                )
            except Exception as exc:
                for snap in computed:
                    report = result.groups[snap.group.name]
                    report.status, report.error = "push_incomplete", f"not pushed: registration failed: {one_line(exc)}"
                raise
            log.info("feature groups registered: %s", outcome)
        for snap in computed:
            report = result.groups[snap.group.name]
            if not online.register_groups:
                # Registered elsewhere (`feature-pipeline register`): a group missing online or
                # defined differently is refused here, before its first record, not per record.
                try:
                    check_registered(client, [snap.group])
                except Exception as exc:
                    report.status, report.error = "push_incomplete", f"not pushed: {one_line(exc)}"
                    result.checkpoint()
                    continue
            warn_if_superseded(spark, conf, snap.group, as_of, result)
            report.status = "pushing"
            result.checkpoint()
            try:
                with report.timed("online"):
                    pushed = push_online(snap, push, run_id)
            except PushError as exc:
                report.online = asdict(exc.result) if exc.result is not None else None
                report.status, report.error = "push_incomplete", str(exc)
            except Exception as exc:
                log.debug("online push of %s failed", snap.group.name, exc_info=True)
                report.status, report.error = "push_incomplete", f"online push failed: {one_line(exc)}"
            else:
                report.online = asdict(pushed)
                report.status = "published"
            result.checkpoint()


def warn_if_superseded(
    spark: SparkSession, conf: PipelineConf, group: FeatureGroup, as_of: datetime, result: BuildResult
) -> None:
    """Warn when the store holds a newer snapshot of ``group``: the online store keeps its records
    (a record with an older event time never replaces a newer one), so pushing this one changes nothing."""
    newest = newest_snapshot_time(spark, conf.offline_store.root, group.name, format=conf.offline_store.format)
    if newest is None or newest <= as_of:
        return
    stamp = newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    result.groups[group.name].superseded_by = stamp
    warning = (
        f"{group.name}: this snapshot ({as_of:%Y-%m-%dT%H:%M:%SZ}) is older than the newest offline one ({stamp}); "
        "the online store keeps the newer records, so the records pushed now are not what it serves"
    )
    log.warning(warning)
    result.warnings.append(warning)


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
        format=conf.offline_store.format,
        commit_attempts=conf.offline_store.commit_attempts,
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
