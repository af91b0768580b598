"""The offline store as one Delta table per group: transactional snapshot writes, history, time travel.

A group's table is ``<root>/<group>/delta`` (beside the Parquet layout's ``<root>/<group>/data``,
so switching ``offline_store.format`` never mixes the two), partitioned like the Parquet layout by
``year, month, day, hour`` of the snapshot time T, with the same columns. Writing snapshot T is one
``replaceWhere`` overwrite of its hour partition and ``event_time = T``: one commit, so a crash
leaves the old snapshot or the new one, and a rerun replaces instead of duplicating. The commit
carries ``{"snapshot", "run_id", "rows"}`` as Delta's ``userMetadata``, which :func:`history`
reads back. Only Spark SQL and the DataFrame API are used (no ``delta`` Python package), so the
code runs wherever Delta's jars and SQL extension are on the session. See docs/offline-store.md.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.constants import EVENT_TIME, EVENT_TIME_FORMAT, PARTITION_COLUMNS
from features.io import fs

log = logging.getLogger(__name__)

#: Commit conflicts a retry resolves: another writer committed first (two snapshots in one hour
#: partition, two first writes creating the table). Anything else is a real failure.
_RETRYABLE = re.compile(
    r"Concurrent(Append|DeleteRead|DeleteDelete|Transaction|Write)Exception|MetadataChangedException|"
    r"ProtocolChangedException"
)
#: A commit file of the log: ``_delta_log/<20-digit version>.json``.
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
#: How far back in the log a writer looks for its own commit (others may have committed since).
_OWN_COMMIT_LOOKBACK = 20
#: The columns Delta keeps min/max statistics for (a table property set when the table is
#: created): the record identifier and ``event_time`` are the only ones any reader filters on, and
#: statistics for every feature column are work on every write (bench/OFFLINE_RESULTS.md).
STATS_COLUMNS_PROPERTY = "delta.dataSkippingStatsColumns"

#: Partition directories in a data file's path, as Delta writes them (``hour=0``, not ``hour=00``).
_PARTITION_DIRS = re.compile(r"/year=(\d+)/month=(\d+)/day=(\d+)/hour=(\d+)/[^/]+$")


@dataclass(frozen=True)
class Committed:
    """One write's commit: the table, its version and the data files it added."""

    path: str
    version: int
    files: int


@dataclass(frozen=True)
class Version:
    """One entry of a table's history; ``snapshot`` and ``run_id`` only for this pipeline's writes."""

    version: int
    timestamp: datetime
    operation: str
    snapshot: str | None
    run_id: str | None
    rows: int | None


def table_path(root: str, group: str) -> str:
    return f"{root.rstrip('/')}/{group}/delta"


def is_table(spark: SparkSession, root: str, group: str) -> bool:
    return fs.exists(spark, f"{table_path(root, group)}/_delta_log")


def _sql_path(path: str) -> str:
    return "delta.`" + path.replace("`", "``") + "`"


def write_snapshot(
    spark: SparkSession,
    records: DataFrame,
    *,
    root: str,
    group: str,
    as_of: datetime,
    run_id: str,
    rows: int,
    attempts: int,
    files_per_rows: int,
    on_stage: Callable[[str], None] | None = None,
) -> Committed:
    """Replace the rows of snapshot ``as_of`` with ``records`` (metadata columns already added).

    A commit that loses a race with another writer is retried up to ``attempts`` times in all;
    ``on_stage`` (tests) is called with ``"prepared"`` before the write and ``"committed"`` after.
    """
    path = table_path(root, group)
    stamp = as_of.strftime(EVENT_TIME_FORMAT)
    parts = dict(zip(PARTITION_COLUMNS, (as_of.year, as_of.month, as_of.day, as_of.hour), strict=True))
    predicate = " AND ".join(f"{k} = {v}" for k, v in parts.items()) + f" AND {EVENT_TIME} = '{stamp}'"
    metadata = json.dumps({"snapshot": stamp, "run_id": run_id, "rows": rows}, sort_keys=True)
    files = max(1, math.ceil(rows / files_per_rows))
    table = records.select("*", *(F.lit(v).alias(k) for k, v in parts.items())).coalesce(files)
    # The record identifier (every snapshot's first column) and event_time.
    stats_columns = ",".join(dict.fromkeys([records.columns[0], EVENT_TIME]))
    if on_stage:
        on_stage("prepared")
    for attempt in range(1, attempts + 1):
        try:
            (
                table.write.format("delta")
                .mode("overwrite")
                .option("replaceWhere", predicate)
                .option("userMetadata", metadata)
                # A feature added to the group adds a column; older snapshots read it as null.
                .option("mergeSchema", "true")
                # Applies when this write creates the table; an existing table keeps its own.
                .option(STATS_COLUMNS_PROPERTY, stats_columns)
                .partitionBy(*PARTITION_COLUMNS)
                .save(path)
            )
            break
        except Exception as exc:
            conflict = _RETRYABLE.search(f"{type(exc).__name__}: {exc}")
            if conflict is None or attempt == attempts:
                raise
            log.warning(
                "%s: commit of snapshot %s to %s lost to a concurrent writer (%s); retrying, attempt %d of %d",
                group,
                stamp,
                path,
                conflict.group(0),
                attempt + 1,
                attempts,
            )
            time.sleep(0.2 * attempt)
    if on_stage:
        on_stage("committed")
    return _own_commit(spark, path, run_id, stamp)


def _own_commit(spark: SparkSession, path: str, run_id: str, stamp: str) -> Committed:
    """This run's commit among the newest few (another writer may have committed since).

    Read from the log's newest commit files rather than ``DESCRIBE HISTORY``, which would rebuild
    the table's state first (a second or more per write, bench/OFFLINE_RESULTS.md).
    """
    log_dir = f"{path}/_delta_log"
    versions = sorted(
        (int(m[1]) for m in map(_COMMIT_FILE.match, fs.list_files(spark, log_dir)) if m is not None), reverse=True
    )
    for version in versions[:_OWN_COMMIT_LOOKBACK]:
        for line in fs.read_text(spark, f"{log_dir}/{version:020d}.json").splitlines():
            info = json.loads(line).get("commitInfo") if line.strip() else None
            if info is None:
                continue
            meta = _user_metadata(info.get("userMetadata"))
            if meta.get("run_id") == run_id and meta.get("snapshot") == stamp:
                metrics = info.get("operationMetrics") or {}
                return Committed(path=path, version=version, files=int(metrics.get("numFiles", 0)))
            break
    raise RuntimeError(f"{path}: the commit of run {run_id} at {stamp} is not in the table's recent history")


def _user_metadata(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def history(spark: SparkSession, root: str, group: str, limit: int | None = None) -> list[Version]:
    """The table's versions, newest first (``DESCRIBE HISTORY``)."""
    query = f"DESCRIBE HISTORY {_sql_path(table_path(root, group))}" + (f" LIMIT {int(limit)}" if limit else "")
    versions = []
    for entry in spark.sql(query).collect():
        meta = _user_metadata(entry["userMetadata"])
        metrics = entry["operationMetrics"] or {}
        rows = meta.get("rows", metrics.get("numOutputRows"))
        versions.append(
            Version(
                version=int(entry["version"]),
                timestamp=_utc(entry["timestamp"]),
                operation=str(entry["operation"]),
                snapshot=meta.get("snapshot"),
                run_id=meta.get("run_id"),
                rows=int(rows) if rows is not None else None,
            )
        )
    return versions


def version_at(spark: SparkSession, root: str, group: str, timestamp: datetime) -> int | None:
    """The version a read as of ``timestamp`` sees: the newest committed at or before it (None: none)."""
    return next((v.version for v in history(spark, root, group) if v.timestamp <= timestamp), None)


def _utc(value: datetime) -> datetime:
    """Spark hands timestamps over as naive datetimes in the process's zone."""
    return value.astimezone(UTC) if value.tzinfo else value.astimezone().astimezone(UTC)


def read_table(
    spark: SparkSession, root: str, group: str, *, version: int | None = None, timestamp: datetime | None = None
) -> DataFrame:
    """The group's table now, or as of ``version`` / ``timestamp`` (time travel; at most one)."""
    reader = spark.read.format("delta")
    if version is not None and timestamp is not None:
        raise ValueError("give a version or a timestamp to read as of, not both")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    if timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    return reader.load(table_path(root, group))


def newest_snapshot(table: DataFrame, before: datetime | None) -> DataFrame | None:
    """The rows of the newest ``event_time`` before ``before`` (any if None), or None.

    Hour partitions are taken from the data files' paths in the log (no data read), newest
    first; only the first hour holding an older snapshot is scanned for its newest event time.
    """
    bound = tuple(int(before.strftime(f)) for f in ("%Y", "%m", "%d", "%H")) if before is not None else None
    for hour in _hours_newest_first(table, bound):
        records = table.where(
            " AND ".join(f"{k} = {v}" for k, v in zip(PARTITION_COLUMNS, hour, strict=True))
            if hour is not None
            else "true"
        )
        times = records.select(EVENT_TIME)
        if before is not None:
            times = times.where(F.col(EVENT_TIME) < F.lit(before.strftime(EVENT_TIME_FORMAT)))
        newest = times.agg(F.max(EVENT_TIME)).first()
        if newest is not None and newest[0] is not None:
            return records.where(F.col(EVENT_TIME) == F.lit(newest[0])).drop(*PARTITION_COLUMNS)
    return None


def _hours_newest_first(table: DataFrame, bound: tuple[int, ...] | None) -> Iterator[tuple[int, ...] | None]:
    """Hour partitions not after ``bound``, newest first; one None (scan it all) when the paths do
    not name partitions (column mapping's random prefixes)."""
    hours = set()
    for path in table.inputFiles():
        found = _PARTITION_DIRS.search(path)
        if found is None:
            yield None
            return
        hours.add(tuple(int(v) for v in found.groups()))
    yield from (h for h in sorted(hours, reverse=True) if bound is None or h <= bound)


def optimize(spark: SparkSession, root: str, group: str, zorder_by: str | None = None) -> dict[str, Any]:
    """Compact small files (and Z-order by ``zorder_by`` within each partition); Delta's metrics."""
    query = f"OPTIMIZE {_sql_path(table_path(root, group))}" + (f" ZORDER BY (`{zorder_by}`)" if zorder_by else "")
    row = spark.sql(query).first()
    metrics = row["metrics"].asDict() if row is not None and row["metrics"] is not None else {}
    return {k: metrics[k] for k in ("numFilesAdded", "numFilesRemoved") if k in metrics}


def vacuum(spark: SparkSession, root: str, group: str, retain: timedelta, floor: timedelta) -> int:
    """Delete data files no version newer than ``retain`` needs; the number deleted.

    ``retain`` below ``floor`` raises ValueError: versions older than ``retain`` lose their files,
    so reading them as of a version or time would fail. At or above the floor Delta's own
    seven-day check is not needed (the floor is the check), so it is off for this statement.
    """
    if retain < floor:
        raise ValueError(
            f"--retain {_hours(retain)} is below offline_store.vacuum_retention_floor ({_hours(floor)}): "
            "time travel to older versions would break; retain at least the floor or lower it in the conf"
        )
    # Delta's own seven-day check, and the listing's parallelism: 10,000 tasks by default (Spark's
    # partition discovery setting), minutes of scheduling on a small cluster for a few directories.
    settings = {
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            max(8, 2 * spark.sparkContext.defaultParallelism)
        ),
    }
    saved = {key: spark.conf.get(key, None) for key in settings}
    path = table_path(root, group)
    files = len(fs.data_files(spark, [path]))
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        spark.sql(f"VACUUM {_sql_path(path)} RETAIN {retain.total_seconds() / 3600:g} HOURS").collect()
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
    return files - len(fs.data_files(spark, [path]))


def _hours(value: timedelta) -> str:
    return f"{value.total_seconds() / 3600:g}h"
