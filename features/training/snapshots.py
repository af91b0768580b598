"""A group's snapshots from the offline store, every T at once, for the as-of join.

:func:`snapshots` is the one place that knows the store's formats. Parquet: the files are chosen
per hour directory by the store's own rule (the committed run of each T,
``features.load.offline.snapshot_files``), pruned by the T in their names to the label times'
range, and read in one scan. Delta: the group's table (now, or ``as_of_version``), filtered to the same range.
Both return the join key, ``event_time`` (T as the store's text; the join parses only its distinct
values) and the features; soft-deleted records and the offline metadata columns are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.config import OfflineStoreConf
from features.constants import EVENT_TIME, EVENT_TIME_FORMAT, IS_DELETED, OFFLINE_METADATA_COLUMNS, PARTITION_COLUMNS
from features.load import delta, offline


class NoSnapshotsError(RuntimeError):
    """The group has nothing in the offline store to join."""


@dataclass(frozen=True)
class Snapshots:
    """A group's snapshot records and what the manifest records about where they came from."""

    frame: DataFrame
    features: list[str]
    store: dict[str, Any] = field(default_factory=dict)
    #: The ``event_time`` texts of the snapshots in range when the listing names them all (Parquet
    #: files this product wrote); None when only the rows can tell (Delta, another tool's folders).
    times: list[str] | None = None


def snapshots(
    spark: SparkSession,
    store: OfflineStoreConf,
    group: str,
    *,
    key: str,
    earliest: datetime | None = None,
    latest: datetime | None = None,
    version: int | None = None,
    timestamp: datetime | None = None,
) -> Snapshots:
    """Every snapshot of ``group`` with ``earliest <= T <= latest`` (either bound may be None).

    ``version`` / ``timestamp`` read the Delta table as of that version or time; the Parquet store
    keeps no versions.
    """
    if store.format == "delta":
        raw, info = _delta(spark, store.root, group, version, timestamp)
        listed = None
    elif version is not None or timestamp is not None:
        raise ValueError(
            "reading as of a version or time needs a Delta table; this offline store is Parquet (no versions)"
        )
    else:
        raw, info, listed = _parquet(spark, store.root, group, earliest, latest)
    if IS_DELETED in raw.columns:
        raw = raw.where(~F.coalesce(F.col(IS_DELETED), F.lit(False)))
    frame = raw.drop(*OFFLINE_METADATA_COLUMNS, *PARTITION_COLUMNS)
    if earliest is not None:
        frame = frame.where(F.col(EVENT_TIME) >= F.lit(earliest.strftime(EVENT_TIME_FORMAT)))
    if latest is not None:
        frame = frame.where(F.col(EVENT_TIME) <= F.lit(latest.strftime(EVENT_TIME_FORMAT)))
    features = [c for c in frame.columns if c not in (key, EVENT_TIME)]
    frame = frame.select(F.col(key).cast("string").alias(key), EVENT_TIME, *features)
    return Snapshots(frame=frame, features=features, store=info, times=listed)


def _delta(
    spark: SparkSession, root: str, group: str, version: int | None, timestamp: datetime | None
) -> tuple[DataFrame, dict[str, Any]]:
    if not delta.is_table(spark, root, group):
        raise NoSnapshotsError(f"{group}: no Delta table at {delta.table_path(root, group)}; build the group first")
    history = delta.history(spark, root, group, limit=1)
    current = history[0].version if history else None
    if version is not None and current is not None and version > current:
        raise ValueError(f"{group}: --as-of-version {version} is newer than the table's current version {current}")
    table = delta.read_table(spark, root, group, version=version, timestamp=timestamp)
    if timestamp is not None:
        version = delta.version_at(spark, root, group, timestamp)
    return table, {
        "format": "delta",
        "path": delta.table_path(root, group),
        "version": version if version is not None else current,
        "current_version": current,
    }


def _parquet(
    spark: SparkSession, root: str, group: str, earliest: datetime | None, latest: datetime | None
) -> tuple[DataFrame, dict[str, Any], list[str] | None]:
    found = offline.snapshot_files(spark, root, group, earliest=earliest, latest=latest)
    chosen = [path for paths in found.files.values() for path in paths]
    folders = found.folders  # written by another tool: read whole, filtered by event_time in snapshots()
    data = offline.store_location(root, group, "parquet")
    if not chosen and not folders:
        if found.any_file is None:
            raise NoSnapshotsError(
                f"{group}: no snapshots under {data}; build the group first or leave it out (--groups)"
            )
        # Nothing in range: read one file for the schema only; the time filter leaves no rows.
        table = spark.read.parquet(found.any_file)
        return table, {"format": "parquet", "path": data, "files": 0, "newest_file": None, "file_list": []}, []
    table = spark.read.option("mergeSchema", "true").parquet(*chosen, *folders)
    info: dict[str, Any] = {
        "format": "parquet",
        "path": data,
        "files": len(chosen),
        "newest_file": found.files[max(found.files)][-1] if found.files else None,
        "file_list": sorted(chosen),
    }
    if folders:
        info["unnamed_folders"] = sorted(folders)
        return table, info, None
    # The writer names a snapshot's files by its event_time (offline.snapshot_tag), so the tags are the times.
    return table, info, [_tag_time(tag) for tag in found.files]


def _tag_time(tag: str) -> str:
    return datetime.strptime(tag, "%Y%m%dT%H%M%SZ").strftime(EVENT_TIME_FORMAT)
