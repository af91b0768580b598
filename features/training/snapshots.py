"""A group's snapshots from the offline store, every T at once, for the as-of join.

:func:`snapshots` is the one place that knows the store's formats. Parquet: the files are chosen
per hour directory by the store's own rule (the committed run of each T,
``features.load.offline``), pruned by the T in their names to the label times' range, and read in
one scan. Delta: the group's table (now, or ``as_of_version``), filtered to the same range.
Both return the join key, ``snapshot_time`` (T as a UTC timestamp) and the features; soft-deleted
records and the offline metadata columns are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.config import OfflineStoreConf
from features.constants import EVENT_TIME, EVENT_TIME_FORMAT, IS_DELETED, OFFLINE_METADATA_COLUMNS, PARTITION_COLUMNS
from features.io import fs
from features.load import delta, offline

SNAPSHOT_TIME = "snapshot_time"
_TAG = re.compile(r"^snapshot-(\d{8}T\d{6}Z)-")


class NoSnapshotsError(RuntimeError):
    """The group has nothing in the offline store to join."""


@dataclass(frozen=True)
class Snapshots:
    """A group's snapshot records and what the manifest records about where they came from."""

    frame: DataFrame
    features: list[str]
    store: dict[str, Any] = field(default_factory=dict)


def snapshots(
    spark: SparkSession,
    store: OfflineStoreConf,
    group: str,
    *,
    key: str,
    earliest: datetime | None = None,
    latest: datetime | None = None,
    version: int | None = None,
) -> Snapshots:
    """Every snapshot of ``group`` with ``earliest <= T <= latest`` (either bound may be None).

    ``version`` reads the Delta table as of that version; the Parquet store keeps no versions.
    """
    if store.format == "delta":
        raw, info = _delta(spark, store.root, group, version)
    elif version is not None:
        raise ValueError("--as-of-version reads a Delta table as it was; this offline store is Parquet (no versions)")
    else:
        raw, info = _parquet(spark, store.root, group, earliest, latest)
    if IS_DELETED in raw.columns:
        raw = raw.where(~F.coalesce(F.col(IS_DELETED), F.lit(False)))
    frame = raw.drop(*OFFLINE_METADATA_COLUMNS, *PARTITION_COLUMNS)
    if earliest is not None:
        frame = frame.where(F.col(EVENT_TIME) >= F.lit(earliest.strftime(EVENT_TIME_FORMAT)))
    if latest is not None:
        frame = frame.where(F.col(EVENT_TIME) <= F.lit(latest.strftime(EVENT_TIME_FORMAT)))
    features = [c for c in frame.columns if c not in (key, EVENT_TIME)]
    frame = frame.select(
        F.col(key).cast("string").alias(key),
        F.to_timestamp(F.col(EVENT_TIME), "yyyy-MM-dd'T'HH:mm:ssXXX").alias(SNAPSHOT_TIME),
        *features,
    )
    return Snapshots(frame=frame, features=features, store=info)


def _delta(spark: SparkSession, root: str, group: str, version: int | None) -> tuple[DataFrame, dict[str, Any]]:
    if not delta.is_table(spark, root, group):
        raise NoSnapshotsError(f"{group}: no Delta table at {delta.table_path(root, group)}; build the group first")
    history = delta.history(spark, root, group, limit=1)
    current = history[0].version if history else None
    if version is not None and current is not None and version > current:
        raise ValueError(f"{group}: --as-of-version {version} is newer than the table's current version {current}")
    table = delta.read_table(spark, root, group, version=version)
    return table, {
        "format": "delta",
        "path": delta.table_path(root, group),
        "version": version if version is not None else current,
        "current_version": current,
    }


def _parquet(
    spark: SparkSession, root: str, group: str, earliest: datetime | None, latest: datetime | None
) -> tuple[DataFrame, dict[str, Any]]:
    low = offline.snapshot_tag(earliest) if earliest is not None else None
    high = offline.snapshot_tag(latest) if latest is not None else None
    chosen: list[str] = []
    folders: list[str] = []
    any_file: str | None = None
    data = f"{root.rstrip('/')}/{group}/data"
    for directory in offline._hour_dirs_newest_first(spark, data, None, ()):
        named = offline._named(fs.list_files(spark, directory))
        if named is None:
            folders.append(directory)  # written by another tool: read it whole, filter by event_time
            continue
        for tag, names in named.items():
            paths = [f"{directory}/{n}" for n in names]
            any_file = any_file or paths[0]
            if (low is None or tag >= low) and (high is None or tag <= high):
                chosen.extend(paths)
    if not chosen and not folders:
        if any_file is None:
            raise NoSnapshotsError(
                f"{group}: no snapshots under {data}; build the group first or leave it out (--groups)"
            )
        # Nothing in range: read one file for the schema only; the time filter leaves no rows.
        table = spark.read.parquet(any_file)
        return table, {"format": "parquet", "path": data, "files": 0, "newest_file": None, "file_list": []}
    table = spark.read.option("mergeSchema", "true").parquet(*chosen, *folders)
    in_range = sorted(chosen, key=lambda p: _tag_of(p) or "")
    info: dict[str, Any] = {
        "format": "parquet",
        "path": data,
        "files": len(chosen),
        "newest_file": in_range[-1] if in_range else None,
        "file_list": sorted(chosen),
    }
    if folders:
        info["unnamed_folders"] = sorted(folders)
    return table, info


def _tag_of(path: str) -> str | None:
    found = _TAG.match(path.rsplit("/", 1)[-1])
    return found[1] if found else None
