"""Reading snapshots back from the offline store, and writing reports, for the gate and skew check.

The offline layout is ``<root>/<group>/data/year=YYYY/month=MM/day=DD/hour=HH/`` with the snapshot
time T as ``event_time``. To find the newest snapshot before a time, the directories are walked
newest first and only the first hour directory holding an older snapshot is read: a LIST per
level instead of scanning the whole history (on S3 a full scan of a year of hourly snapshots is
thousands of files). Inside that hour directory the snapshot is chosen by file name when every
file is named ``snapshot-<T>-...`` (``features/load/offline.py``), which costs no Spark job and
reads only that snapshot's files; otherwise (e.g. a store SageMaker wrote) by the newest
``event_time`` before the bound, read from the data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.constants import EVENT_TIME, EVENT_TIME_FORMAT, IS_DELETED, OFFLINE_METADATA_COLUMNS
from features.io import fs
from features.load.offline import snapshot_tag

_LEVELS = ("year", "month", "day", "hour")
#: ``snapshot-<T as snapshot_tag>-<run>-NNNNN.parquet``, as features/load/offline.py names files.
_SNAPSHOT_FILE = re.compile(r"^snapshot-(\d{8}T\d{6}Z)-.+\.parquet$")


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
