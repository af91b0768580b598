"""A group's snapshots from the offline store, every T at once, for the as-of join.

:func:`snapshots` is the one place that knows the store's formats. Parquet: the files are chosen
per hour directory by the store's own rule (the committed run of each T,
``features.load.offline.snapshot_files``), pruned by the T in their names to the label times'
range, and read in one scan. Delta: the group's table (now, or ``as_of_version``), filtered to the same range.
Both return the join key, ``event_time`` (T as the store's text, not parsed per row: parsing 18M
timestamps costs more than the join) and the features, soft-deleted records and the offline
metadata columns dropped, and the sorted list of the snapshot times T in range: from the file names
for Parquet, from one narrow distinct query for Delta and for folders another tool wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
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

    #: ``key``, ``event_time`` (the store's text) and the features.
    frame: DataFrame
    features: list[str]
    #: The snapshot times in range, oldest first: (``event_time`` text as stored, T in epoch microseconds).
    times: list[tuple[str, int]] = field(default_factory=list)
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
    timestamp: datetime | None = None,
) -> Snapshots:
    """Every snapshot of ``group`` with ``earliest <= T <= latest`` (either bound may be None).

    ``version`` / ``timestamp`` read the Delta table as of that version or time; the Parquet store
    keeps no versions.
    """
    tags: list[str] | None = None
    if store.format == "delta":
        raw, info = _delta(spark, store.root, group, version, timestamp)
    elif version is not None or timestamp is not None:
        raise ValueError(
            "reading as of a version or time needs a Delta table; this offline store is Parquet (no versions)"
        )
    else:
        raw, info, tags = _parquet(spark, store.root, group, earliest, latest)
    if IS_DELETED in raw.columns:
        raw = raw.where(~F.coalesce(F.col(IS_DELETED), F.lit(False)))
    frame = raw.drop(*OFFLINE_METADATA_COLUMNS, *PARTITION_COLUMNS)
    if earliest is not None:
        frame = frame.where(F.col(EVENT_TIME) >= F.lit(earliest.strftime(EVENT_TIME_FORMAT)))
    if latest is not None:
        frame = frame.where(F.col(EVENT_TIME) <= F.lit(latest.strftime(EVENT_TIME_FORMAT)))
    features = [c for c in frame.columns if c not in (key, EVENT_TIME)]
    frame = frame.select(F.col(key).cast("string").alias(key), F.col(EVENT_TIME).cast("string"), *features)
    times = _from_tags(tags) if tags is not None else _from_data(frame)
    return Snapshots(frame=frame, features=features, times=times, store=info)


def _from_tags(tags: list[str]) -> list[tuple[str, int]]:
    """The times named by ``write_snapshot``'s files: it writes ``event_time`` as EVENT_TIME_FORMAT text."""
    instants = sorted(datetime.strptime(t, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for t in set(tags))
    return [(t.strftime(EVENT_TIME_FORMAT), _micros(t)) for t in instants]


def _from_data(frame: DataFrame) -> list[tuple[str, int]]:
    """The distinct ``event_time`` values of ``frame`` with their instants (one narrow job; a text
    that is not a zoned ISO-8601 time is left out, its rows are never joined)."""
    parsed = F.unix_micros(F.to_timestamp(F.col(EVENT_TIME), "yyyy-MM-dd'T'HH:mm:ssXXX"))
    rows = frame.select(EVENT_TIME).distinct().select(EVENT_TIME, parsed.alias("micros")).collect()
    return sorted(((r[EVENT_TIME], int(r["micros"])) for r in rows if r["micros"] is not None), key=lambda p: p[1])


def _micros(instant: datetime) -> int:
    return int(instant.timestamp()) * 1_000_000 + instant.microsecond


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
    """The files, what the manifest records, and the snapshot tags when the file names give every T
    (None when another tool's folders must be read to know them)."""
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
    return table, info, None if folders else list(found.files)
