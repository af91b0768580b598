"""The offline store in SageMaker Feature Store's layout: write a snapshot, find one to read back.

Layout ``<root>/<group>/data/year=YYYY/month=MM/day=DD/hour=HH/`` by the snapshot time T, with
SageMaker's metadata columns on every record, so tools written for SageMaker offline stores read
it unchanged (docs/semantics.md, "Offline store").

Writing: a rerun of the same T must replace, never duplicate, and a snapshot at another T in the
same hour must survive. Spark's partition overwrite works on whole hour directories, so it cannot
do both; instead every file is named after its snapshot (``snapshot-<T>-<run>-NNNNN.parquet``) and
a rerun swaps exactly that snapshot's files: new files are staged, moved in under hidden names
(readers skip names starting with ``_``), the previous run's files of the same T are deleted, and
the new files are made visible. A crash between the last two steps leaves that snapshot missing
(and a rerun fixes it), never doubled. A run killed mid-write leaves its staging directory and
hidden ``_pending-`` files behind; the next write of the same group removes those of the same T,
and staging directories of other snapshots once they are older than :data:`STALE_STAGING`.

Reading (:func:`snapshot_before`): hour directories are listed newest first and only the first one
holding an older snapshot is read (a LIST per level, not a scan of the history). In it the
snapshot is chosen by file name when every file is named as above (no Spark job), otherwise (a
store another tool wrote) by the newest ``event_time`` in the data. See docs/validation.md.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.constants import (
    API_INVOCATION_TIME,
    EVENT_TIME,
    EVENT_TIME_FORMAT,
    IS_DELETED,
    OFFLINE_METADATA_COLUMNS,
    WRITE_TIME,
)
from features.io import fs
from features.transform.columns import utc_timestamp

log = logging.getLogger(__name__)

ROWS_PER_FILE = 1_000_000
#: A staging directory of another snapshot this old belongs to a run that died: no write takes a day.
STALE_STAGING = timedelta(hours=24)

#: The partition directories under ``<root>/<group>/data``, outermost first.
_LEVELS = ("year", "month", "day", "hour")
#: A file :func:`write_snapshot` named: ``snapshot-<snapshot_tag(T)>-<run>-NNNNN.parquet``.
_SNAPSHOT_FILE = re.compile(r"^snapshot-(\d{8}T\d{6}Z)-.+\.parquet$")


@dataclass(frozen=True)
class OfflineWrite:
    path: str
    rows: int
    files: int


def snapshot_tag(as_of: datetime) -> str:
    return as_of.strftime("%Y%m%dT%H%M%SZ")


def partition_path(root: str, group: str, as_of: datetime) -> str:
    return f"{root.rstrip('/')}/{group}/data/year={as_of:%Y}/month={as_of:%m}/day={as_of:%d}/hour={as_of:%H}"


def with_offline_metadata(df: DataFrame, write_time: datetime) -> DataFrame:
    """Add the columns SageMaker adds to every offline record."""
    now = utc_timestamp(write_time)
    return df.select("*", now.alias(WRITE_TIME), now.alias(API_INVOCATION_TIME), F.lit(False).alias(IS_DELETED))


def write_snapshot(
    spark: SparkSession,
    df: DataFrame,
    *,
    root: str,
    group: str,
    as_of: datetime,
    run_id: str,
    rows: int,
    write_time: datetime,
) -> OfflineWrite:
    """Replace the snapshot of ``group`` at ``as_of`` with ``df`` (``rows`` records)."""
    target = partition_path(root, group, as_of)
    tag = snapshot_tag(as_of)
    staging_root = f"{root.rstrip('/')}/{group}/_staging"
    staging = f"{staging_root}/{tag}-{run_id}"
    remove_stale_staging(spark, staging_root, target, tag, now=write_time)
    files = max(1, math.ceil(rows / ROWS_PER_FILE))
    with_offline_metadata(df, write_time).coalesce(files).write.mode("overwrite").parquet(staging)

    staged = [name for name in fs.list_files(spark, staging) if name.endswith(".parquet")]
    prefix = f"snapshot-{tag}-"
    previous = [n for n in fs.list_files(spark, target) if n.startswith(prefix)]
    final_names = [f"{prefix}{run_id}-{i:05d}.parquet" for i in range(len(staged))]
    for name, final in zip(staged, final_names, strict=True):
        fs.rename(spark, f"{staging}/{name}", f"{target}/_pending-{final}")
    for name in previous:
        fs.delete(spark, f"{target}/{name}", recursive=False)
    for final in final_names:
        fs.rename(spark, f"{target}/_pending-{final}", f"{target}/{final}")
    fs.delete(spark, staging)
    if previous:
        log.info("%s: replaced %d file(s) of the earlier run at %s", group, len(previous), tag)
    return OfflineWrite(path=target, rows=rows, files=len(final_names))


def remove_stale_staging(spark: SparkSession, staging_root: str, target: str, tag: str, *, now: datetime) -> None:
    """Delete what killed runs left: staging of snapshot ``tag`` and its ``_pending-`` files in ``target``,
    and staging of other snapshots older than :data:`STALE_STAGING` (a concurrent run of another T
    keeps its fresh staging)."""
    fs_, path = fs.filesystem(spark, staging_root)
    if fs_.exists(path):
        for status in fs_.listStatus(path):
            name = str(status.getPath().getName())
            modified = datetime.fromtimestamp(status.getModificationTime() / 1000, tz=UTC)
            if name.startswith(f"{tag}-") or now - modified > STALE_STAGING:
                log.warning("removing %s/%s, left by a run that did not finish", staging_root, name)
                fs_.delete(status.getPath(), True)
    for name in fs.list_files(spark, target):
        if name.startswith(f"_pending-snapshot-{tag}-"):
            log.warning("removing %s/%s, left by a run that did not finish", target, name)
            fs.delete(spark, f"{target}/{name}", recursive=False)


def newest_snapshot_time(spark: SparkSession, root: str, group: str) -> datetime | None:
    """The time T of the newest snapshot of ``group`` in the store, or None when it has none.

    Found by file names when :func:`write_snapshot` named them (LISTs only), else by the newest
    ``event_time`` of the newest hour directory.
    """
    for directory in _hour_dirs_newest_first(spark, f"{root.rstrip('/')}/{group}/data", None, ()):
        files = [n for n in fs.list_files(spark, directory) if n.endswith(".parquet") and not n.startswith(("_", "."))]
        if not files:
            continue
        tags = [m.group(1) if (m := _SNAPSHOT_FILE.match(n)) else None for n in files]
        if all(tags):
            return datetime.strptime(max(t for t in tags if t), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        newest = spark.read.parquet(directory).agg(F.max(EVENT_TIME)).first()
        if newest is not None and newest[0] is not None:
            return datetime.strptime(str(newest[0]), EVENT_TIME_FORMAT).replace(tzinfo=UTC)
    return None


def snapshot_before(spark: SparkSession, root: str, group: str, before: datetime | None) -> DataFrame | None:
    """The newest snapshot of ``group`` with ``event_time < before`` (any time if None), or None.

    Returns the record columns (join key, ``event_time``, features), without the offline
    metadata columns and without soft-deleted records.
    """
    bound = tuple(int(before.strftime(f)) for f in ("%Y", "%m", "%d", "%H")) if before is not None else None
    for directory in _hour_dirs_newest_first(spark, f"{root.rstrip('/')}/{group}/data", bound, ()):
        files = [n for n in fs.list_files(spark, directory) if n.endswith(".parquet") and not n.startswith(("_", "."))]
        if not files:
            continue
        tags = [m.group(1) if (m := _SNAPSHOT_FILE.match(n)) else None for n in files]
        if all(tags):
            snapshot = _named_snapshot(spark, directory, files, [t for t in tags if t], before)
        else:
            snapshot = _newest_snapshot(spark, directory, before)
        if snapshot is not None:
            if IS_DELETED in snapshot.columns:
                snapshot = snapshot.where(~F.col(IS_DELETED))
            return snapshot.drop(*OFFLINE_METADATA_COLUMNS)
    return None


def _named_snapshot(
    spark: SparkSession, directory: str, files: list[str], tags: list[str], before: datetime | None
) -> DataFrame | None:
    """The files of the newest snapshot before ``before``, chosen by their names (no data read)."""
    limit = snapshot_tag(before) if before is not None else None
    older = [t for t in tags if limit is None or t < limit]
    if not older:
        return None
    newest = max(older)
    return spark.read.parquet(*(f"{directory}/{n}" for n, t in zip(files, tags, strict=True) if t == newest))


def _newest_snapshot(spark: SparkSession, directory: str, before: datetime | None) -> DataFrame | None:
    """The rows of the newest ``event_time`` before ``before`` in ``directory`` (one small job)."""
    records = spark.read.parquet(directory)
    times = records.select(EVENT_TIME)
    if before is not None:
        times = times.where(F.col(EVENT_TIME) < F.lit(before.strftime(EVENT_TIME_FORMAT)))
    newest = times.agg(F.max(EVENT_TIME)).first()
    if newest is None or newest[0] is None:
        return None
    return records.where(F.col(EVENT_TIME) == F.lit(newest[0]))


def _hour_dirs_newest_first(
    spark: SparkSession, path: str, bound: tuple[int, ...] | None, prefix: tuple[int, ...]
) -> Iterator[str]:
    """``.../hour=HH`` directories not after ``bound`` (year, month, day, hour), newest first."""
    depth = len(prefix)
    if depth == len(_LEVELS):
        yield path
        return
    values = []
    for name in fs.list_dirs(spark, path) or []:
        label, _, text = name.partition("=")
        if label == _LEVELS[depth] and text.isdigit():
            values.append((int(text), name))
    for value, name in sorted(values, reverse=True):
        here = (*prefix, value)
        if bound is not None and here > bound[: depth + 1]:
            continue
        yield from _hour_dirs_newest_first(spark, f"{path}/{name}", bound, here)
