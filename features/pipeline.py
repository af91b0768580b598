"""The batch pipeline: the only module that joins extract, transform and load together.

Each source is read once per run, however many groups use it, and released when the run ends.
Validation and the online push slot in between the transform and the offline write (later
stages); nothing is written anywhere until the whole group has been computed.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import asdict
from datetime import datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.config import FileSourceConf, PipelineConf
from features.constants import QUARANTINE_REASON
from features.definitions import FeatureGroup, parse_duration
from features.io import fs
from features.io.extract import Extracted, read_event_log, read_table
from features.io.jdbc import read_jdbc_table
from features.load.offline import snapshot_tag, write_snapshot
from features.online.client import control_client
from features.online.embedded import online_endpoint
from features.online.push import PushError, PushSettings, push_snapshot
from features.online.registration import register_groups
from features.report import GroupReport, RunReport, SourceReport
from features.transform.windows import snapshot

log = logging.getLogger(__name__)


def source_conf(conf: PipelineConf, name: str) -> FileSourceConf:
    value = getattr(conf.sources, name, None)
    if not isinstance(value, FileSourceConf):
        raise KeyError(f"no configuration for source {name!r} under sources.{name}")
    return value


def read_window(group: FeatureGroup, as_of: datetime, lookback: timedelta) -> datetime | None:
    """The earliest event time a snapshot of ``group`` can use; None when it needs all history."""
    largest = group.largest_window
    if largest is None or any(not a.windowed for a in group.aggregations):
        return None
    return as_of - largest.length - lookback


def build_features(
    spark: SparkSession,
    conf: PipelineConf,
    groups: list[FeatureGroup],
    as_of: datetime,
    report: RunReport,
) -> None:
    """Build ``groups`` at ``as_of``, validate them, write them offline and push them online.

    Every group is computed and validated before anything is written: a blocking validation
    failure in any group (strict policy) fails the run with nothing written offline or online,
    so the stores never hold half a run.
    """
    lookback = parse_duration(conf.snapshot.dropout_lookback, "snapshot.dropout_lookback")
    extracted: dict[str, Extracted] = {}
    built: list[tuple[FeatureGroup, DataFrame, GroupReport]] = []
    online = conf.online_store
    try:
        for group in groups:
            source = group.source
            if source.name not in extracted:
                starts = [read_window(g, as_of, lookback) for g in groups if g.source.name == source.name]
                start = None if None in starts else min(s for s in starts if s is not None)
                extracted[source.name] = _extract(spark, conf, group, as_of, start, report)
            result = GroupReport(group=group.name, source=group.source.name, features=len(group.features))
            report.groups.append(result)
            built.append((group, _compute(group, extracted[source.name], as_of, lookback, result), result))
            if conf.validation.enabled:
                _validate(spark, conf, group, built[-1][1], extracted[source.name], as_of, report, result)
        blocked = [r for _, _, r in built if r.validation and r.validation.get("blocking")]
        if blocked:
            raise ValidationFailedError(
                "validation failed, nothing written: "
                + "; ".join(str(r.validation.get("reason") if r.validation else "") for r in blocked)
            )
        with online_endpoint(online) if online.enabled else nullcontext(None) as endpoint:
            push = _push_settings(conf, endpoint) if online.enabled else None
            if push is not None and online.register:
                outcome = register_groups(
                    control_client(endpoint_url=endpoint, region=online.region),
                    groups,
                    offline_s3_uri=online.offline_s3_uri,
                    role_arn=online.role_arn,
                )
                log.info("feature groups registered: %s", outcome)
            for group, features, result in built:
                _write(spark, conf, group, features, as_of, push, report, result)
    finally:
        for _, features, _ in built:
            features.unpersist()
        for ex in extracted.values():
            ex.release()


class ValidationFailedError(RuntimeError):
    """A strict validation gate (or a drift / freshness check set to fail) blocked the run."""


def _compute(
    group: FeatureGroup, ex: Extracted, as_of: datetime, lookback: timedelta, result: GroupReport
) -> DataFrame:
    """The group's snapshot, cached: validation, the offline write and the push all read it."""
    with result.timed("transform"):
        features = snapshot(ex.accepted, group=group, as_of=as_of, dropout_lookback=lookback).persist()
        result.entities = features.count()
    return features


def _validate(
    spark: SparkSession,
    conf: PipelineConf,
    group: FeatureGroup,
    features: DataFrame,
    ex: Extracted,
    as_of: datetime,
    report: RunReport,
    result: GroupReport,
) -> None:
    from features.validate.gate import newest_event_before, previous_snapshot, validate_snapshot

    with result.timed("validate"):
        ts = group.source.timestamp
        newest = newest_event_before(ex.accepted, ts, as_of) if group.aggregations and ts else None
        checked = validate_snapshot(
            spark,
            features,
            group=group,
            as_of=as_of,
            conf=conf.validation,
            previous=previous_snapshot(spark, conf.offline_store.root, group.name, as_of),
            inputs_latest_event=newest,
            report_dir=f"{conf.reports.root.rstrip('/')}/validation/{report.run_id}",
        )
    result.validation = {**checked.to_dict(), "reason": checked.summary()}
    log.log(
        logging.INFO if checked.success else logging.WARNING,
        "%s: validation %s",
        group.name,
        checked.summary(),
    )


def _push_settings(conf: PipelineConf, endpoint: str | None) -> PushSettings:
    online = conf.online_store
    return PushSettings(
        endpoint_url=endpoint,
        region=online.region,
        write_api=online.write_api,
        max_in_flight=online.max_in_flight,
        max_attempts=online.max_attempts,
        base_backoff_ms=online.base_backoff_ms,
        max_backoff_ms=online.max_backoff_ms,
        partitions=online.partitions,
        dead_letter_root=online.dead_letter_root,
        dead_letter_tolerance=online.dead_letter_tolerance,
    )


def _extract(
    spark: SparkSession,
    conf: PipelineConf,
    group: FeatureGroup,
    as_of: datetime,
    start: datetime | None,
    report: RunReport,
) -> Extracted:
    source = group.source
    sconf = source_conf(conf, source.name)
    began = time.perf_counter()
    if sconf.jdbc is not None:
        ex = read_jdbc_table(spark, sconf.jdbc, source, start=start, end=as_of)
    elif sconf.partitioning == "dt":
        ex = read_event_log(
            spark,
            sconf,
            source,
            start=start or datetime.min.replace(tzinfo=as_of.tzinfo),
            end=as_of,
            future_tolerance=parse_duration(sconf.future_tolerance, f"sources.{source.name}.future_tolerance"),
            on_corrupt_file=sconf.on_corrupt_file,
        )
    else:
        ex = read_table(spark, sconf, source)
    quarantine_path = f"{conf.quarantine.root.rstrip('/')}/{source.name}/as_of={snapshot_tag(as_of)}"
    samples: dict[str, list[dict[str, str | None]]] = {}
    if ex.quarantined_rows:
        ex.quarantined.write.mode("overwrite").json(quarantine_path)
        log.warning("%s: %d rows quarantined -> %s", source.name, ex.quarantined_rows, quarantine_path)
        samples = quarantine_samples(ex)
    else:
        fs.delete(spark, quarantine_path)
    report.sources[source.name] = SourceReport(
        source=source.name,
        input_paths=ex.input_paths
        if len(ex.input_paths) <= 10
        else [*ex.input_paths[:3], f"... {len(ex.input_paths)} paths"],
        rows_read=ex.input_rows,
        accepted=ex.accepted_rows,
        quarantined=ex.quarantined_rows,
        duplicates=ex.duplicate_rows,
        quarantine_reasons=ex.quarantine_reasons,
        quarantine_path=quarantine_path if ex.quarantined_rows else None,
        quarantine_samples=samples,
        seconds=round(time.perf_counter() - began, 3),
    )
    return ex


def quarantine_samples(ex: Extracted, per_reason: int = 3, width: int = 120) -> dict[str, list[dict[str, str | None]]]:
    """A few quarantined rows per reason for the run report, values cut to ``width`` characters.

    Enough for an on-call engineer to recognise the problem without opening the quarantine files;
    one small job per reason over the cached classification.
    """
    out: dict[str, list[dict[str, str | None]]] = {}
    for reason in ex.quarantine_reasons:
        rows = ex.quarantined.where(F.col(QUARANTINE_REASON) == reason).limit(per_reason).collect()
        out[reason] = [
            {k: None if v is None else _cut(str(v), width) for k, v in row.asDict().items() if k != QUARANTINE_REASON}
            for row in rows
        ]
    return out


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else f"{text[: width - 3]}..."


def _write(
    spark: SparkSession,
    conf: PipelineConf,
    group: FeatureGroup,
    features: DataFrame,
    as_of: datetime,
    push: PushSettings | None,
    report: RunReport,
    result: GroupReport,
) -> None:
    with result.timed("offline"):
        written = write_snapshot(
            spark,
            features,
            root=conf.offline_store.root,
            group=group.name,
            as_of=as_of,
            run_id=report.run_id,
            rows=result.entities,
            write_time=datetime.now(tz=as_of.tzinfo),
        )
    result.offline_path = written.path
    result.offline_files = written.files
    log.info("%s: %d records at %s -> %s", group.name, written.rows, as_of.isoformat(), written.path)
    if push is None:
        return
    with result.timed("online"):
        try:
            pushed = push_snapshot(features, group=group, settings=push, run_id=report.run_id)
        except PushError as exc:
            result.online = asdict(exc.result) if exc.result is not None else None
            raise
    result.online = asdict(pushed)
    log.info(
        "%s: %d records pushed online (%d retried, %d throttled, %d dead-lettered)",
        group.name,
        pushed.written,
        pushed.retried,
        pushed.throttled,
        pushed.dead_lettered,
    )
