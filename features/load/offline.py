"""The offline store, the single entry point the pipeline calls: write a snapshot, read one back.

Two formats (``offline_store.format``). ``parquet``: SageMaker Feature Store's own layout
``<root>/<group>/data/year=YYYY/month=MM/day=DD/hour=HH/`` with SageMaker's metadata columns, so
tools written for SageMaker offline stores read it unchanged. ``delta``: one Delta table per group
(features/load/delta.py). Readers take either; with no format given they read the Delta table
when the group has one. Design and guarantees: docs/offline-store.md.

Parquet writes: files are named after their snapshot and run
(``snapshot-<T>-<run>-NNNNN.parquet``), so a rerun of T replaces exactly that snapshot and another
T in the same hour survives. Without a transaction log the swap cannot be atomic for every reader;
it is for this module's readers, through two hidden markers per run in the hour directory:
``_writing-<T>-<run>`` before any new file becomes visible, ``_committed-<T>-<stamp>-<run>`` once
they all are (the commit point). Per T a reader takes the files of the newest committed run, else
of runs never marked writing (stores written before markers existed); files of a run that is
writing but not committed are ignored. So after a crash at any step the snapshot read is the old
one or the new one, never neither (when an earlier run had written it), never both. The next write
of the same T heals what a crash left: uncommitted runs' files, superseded runs' files, markers,
``_pending-`` files and staging (:func:`remove_stale_staging`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

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
from features.load import delta
from features.transform.columns import utc_timestamp

log = logging.getLogger(__name__)

Format = Literal["parquet", "delta"]

ROWS_PER_FILE = 1_000_000
#: A staging directory of another snapshot this old belongs to a run that died: no write takes a day.
STALE_STAGING = timedelta(hours=24)

#: The partition directories under ``<root>/<group>/data``, outermost first.
_LEVELS = ("year", "month", "day", "hour")
_TAG = r"\d{8}T\d{6}Z"
#: A file :func:`write_snapshot` named: ``snapshot-<snapshot_tag(T)>-<run>-NNNNN.parquet``.
_SNAPSHOT_FILE = re.compile(rf"^snapshot-({_TAG})-(.+)-\d{{5}}\.parquet$")
#: ``_writing-<T>-<run>``: the run is making its files of T visible; not committed yet.
_WRITING = re.compile(rf"^_writing-({_TAG})-(.+)$")
#: ``_committed-<T>-<commit stamp>-<run>``: every file of the run is visible; the newest stamp wins.
_COMMITTED = re.compile(rf"^_committed-({_TAG})-(\d{{8}}T\d{{12}}Z)-(.+)$")
#: The partition column :func:`write_snapshots` stages each snapshot's files under.
_STAGED_BY = "snapshot"


@dataclass(frozen=True)
class OfflineWrite:
    path: str
    rows: int
    files: int
    #: The Delta table version the write committed (None for Parquet).
    version: int | None = None


def snapshot_tag(as_of: datetime) -> str:
    return as_of.strftime("%Y%m%dT%H%M%SZ")


def partition_path(root: str, group: str, as_of: datetime) -> str:
    return f"{root.rstrip('/')}/{group}/data/year={as_of:%Y}/month={as_of:%m}/day={as_of:%d}/hour={as_of:%H}"


def store_location(root: str, group: str, format: Format) -> str:
    """Where ``group``'s offline data lives: the Parquet layout's ``data`` directory or the Delta table."""
    return delta.table_path(root, group) if format == "delta" else f"{root.rstrip('/')}/{group}/data"


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
    format: Format = "parquet",
    commit_attempts: int = 5,
    on_stage: Callable[[str], None] | None = None,
) -> OfflineWrite:
    """Replace the snapshot of ``group`` at ``as_of`` with ``df`` (``rows`` records).

    ``on_stage`` (crash tests) is called with the name of each step as it completes.
    """
    records = with_offline_metadata(df, write_time)
    if format == "delta":
        done = delta.write_snapshot(
            spark,
            records,
            root=root,
            group=group,
            as_of=as_of,
            run_id=run_id,
            rows=rows,
            attempts=commit_attempts,
            files_per_rows=ROWS_PER_FILE,
            on_stage=on_stage,
        )
        return OfflineWrite(path=done.path, rows=rows, files=done.files, version=done.version)
    stage = on_stage or (lambda _: None)
    target = partition_path(root, group, as_of)
    tag = snapshot_tag(as_of)
    staging_root = f"{root.rstrip('/')}/{group}/_staging"
    staging = f"{staging_root}/{tag}-{run_id}"
    remove_stale_staging(spark, staging_root, target, tag, now=write_time)
    previous = heal_snapshot(spark, target, tag)
    files = max(1, math.ceil(rows / ROWS_PER_FILE))
    records.coalesce(files).write.mode("overwrite").parquet(staging)
    stage("staged")

    final_names = _publish_staged(spark, staging, target, tag, run_id, rows, previous, stage)
    fs.delete(spark, staging)
    if previous:
        log.info("%s: replaced the earlier run's snapshot at %s (%d file(s) removed)", group, tag, len(previous))
    return OfflineWrite(path=target, rows=rows, files=len(final_names))


def _publish_staged(
    spark: SparkSession,
    staging: str,
    target: str,
    tag: str,
    run_id: str,
    rows: int,
    previous: list[str],
    stage: Callable[[str], None],
) -> list[str]:
    """Make the Parquet files staged in ``staging`` snapshot ``tag`` of ``target``, by the marker
    protocol of the module docstring, and remove ``previous`` (the names it supersedes)."""
    staged = [name for name in fs.list_files(spark, staging) if name.endswith(".parquet")]
    final_names = [f"snapshot-{tag}-{run_id}-{i:05d}.parquet" for i in range(len(staged))]
    for name, final in zip(staged, final_names, strict=True):
        fs.rename(spark, f"{staging}/{name}", f"{target}/_pending-{final}")
    stage("pending")
    writing = f"{target}/_writing-{tag}-{run_id}"
    fs.write_text(spark, writing, json.dumps({"run_id": run_id, "files": final_names}))
    stage("writing")
    for final in final_names:
        fs.rename(spark, f"{target}/_pending-{final}", f"{target}/{final}")
    stage("visible")
    commit = f"_committed-{tag}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{run_id}"
    fs.write_text(spark, f"{target}/{commit}", json.dumps({"run_id": run_id, "files": final_names, "rows": rows}))
    stage("committed")
    for name in previous:
        fs.delete(spark, f"{target}/{name}", recursive=False)
    fs.delete(spark, writing, recursive=False)
    stage("cleaned")
    return final_names


def write_snapshots(
    spark: SparkSession,
    df: DataFrame,
    *,
    root: str,
    group: str,
    rows: dict[datetime, int],
    run_id: str,
    write_time: datetime,
    format: Format = "parquet",
    commit_attempts: int = 5,
) -> dict[datetime, OfflineWrite]:
    """Replace the snapshots of ``group`` at every time of ``rows`` (T -> its record count) with
    ``df``, whose ``event_time`` tells the snapshots apart: what :func:`write_snapshot` writes at
    each T, file names, markers and rerun rule included.

    Parquet: every snapshot's files come from one Spark job (staged per T, then made visible T
    by T, oldest first, by :func:`write_snapshot`'s marker protocol, so a crash leaves each T old
    or new). Delta: one ``replaceWhere`` commit per snapshot, oldest first, as :func:`write_snapshot`.
    """
    times = sorted(rows)
    if format == "delta":
        return {
            t: write_snapshot(
                spark,
                df.where(F.col(EVENT_TIME) == F.lit(t.strftime(EVENT_TIME_FORMAT))),
                root=root,
                group=group,
                as_of=t,
                run_id=run_id,
                rows=rows[t],
                write_time=write_time,
                format="delta",
                commit_attempts=commit_attempts,
            )
            for t in times
        }
    staging_root = f"{root.rstrip('/')}/{group}/_staging"
    staging = f"{staging_root}/backfill-{run_id}"
    previous: dict[datetime, list[str]] = {}
    for t in times:
        target, tag = partition_path(root, group, t), snapshot_tag(t)
        remove_stale_staging(spark, staging_root, target, tag, now=write_time)
        previous[t] = heal_snapshot(spark, target, tag)
    wanted = F.col(EVENT_TIME).isin([t.strftime(EVENT_TIME_FORMAT) for t in times])
    records = with_offline_metadata(df.where(wanted), write_time)
    tagged = records.withColumn(_STAGED_BY, F.regexp_replace(F.col(EVENT_TIME), "[-:]", ""))
    # One task per snapshot (hash of its tag), split at ROWS_PER_FILE: write_snapshot's file count.
    (
        tagged.repartition(F.col(_STAGED_BY))
        .write.mode("overwrite")
        .option("maxRecordsPerFile", ROWS_PER_FILE)
        .partitionBy(_STAGED_BY)
        .parquet(staging)
    )
    done: dict[datetime, OfflineWrite] = {}
    for t in times:
        tag, target = snapshot_tag(t), partition_path(root, group, t)
        here = f"{staging}/{_STAGED_BY}={tag}"
        if not fs.exists(spark, here):  # no records: write_snapshot's one empty file
            done[t] = write_snapshot(
                spark,
                df.where(F.lit(False)),
                root=root,
                group=group,
                as_of=t,
                run_id=run_id,
                rows=0,
                write_time=write_time,
            )
            continue
        names = _publish_staged(spark, here, target, tag, run_id, rows[t], previous[t], lambda _: None)
        if previous[t]:
            log.info("%s: replaced the earlier run's snapshot at %s (%d file(s) removed)", group, tag, len(previous[t]))
        done[t] = OfflineWrite(path=target, rows=rows[t], files=len(names))
    fs.delete(spark, staging)
    return done


def heal_snapshot(spark: SparkSession, target: str, tag: str) -> list[str]:
    """Remove what crashed runs left of snapshot ``tag`` in ``target``; the names that make up the
    snapshot now (its files and its run's markers), which the write about to start supersedes.

    Left behind: files and markers of a run that never committed, and those of a run a later
    commit superseded. Kept: the snapshot readers see (:func:`_snapshots`).
    """
    names = fs.list_files(spark, target)
    current = set(_snapshots(names, keep_markers=True).get(tag, []))
    for name in names:
        if name in current or not _of_snapshot(name, tag):
            continue
        log.warning("removing %s/%s, left by a run that did not finish", target, name)
        fs.delete(spark, f"{target}/{name}", recursive=False)
    return sorted(current)


def _of_snapshot(name: str, tag: str) -> bool:
    """Whether ``name`` is a file or marker of snapshot ``tag`` written by :func:`write_snapshot`."""
    return any(
        name.startswith(f"{prefix}{tag}-") for prefix in ("snapshot-", "_pending-snapshot-", "_writing-", "_committed-")
    )


def _snapshots(names: list[str], *, keep_markers: bool = False) -> dict[str, list[str]]:
    """Per snapshot tag, the names of the one run readers take, by the rule in the module docstring.

    Visible files not named by :func:`write_snapshot` are ignored here (see :func:`_named`).
    With ``keep_markers`` the chosen run's markers are listed too.
    """
    files: dict[str, dict[str, list[str]]] = {}
    writing: dict[tuple[str, str], str] = {}
    committed: dict[tuple[str, str], tuple[str, str]] = {}
    for name in names:
        if found := _SNAPSHOT_FILE.match(name):
            files.setdefault(found[1], {}).setdefault(found[2], []).append(name)
        elif found := _WRITING.match(name):
            writing[(found[1], found[2])] = name
        elif found := _COMMITTED.match(name):
            stamp, earlier = found[2], committed.get((found[1], found[3]))
            if earlier is None or stamp > earlier[0]:
                committed[(found[1], found[3])] = (stamp, name)
    chosen: dict[str, list[str]] = {}
    for tag, runs in files.items():
        done = {run: committed[(tag, run)] for run in runs if (tag, run) in committed}
        if done:
            run = max(done, key=lambda r: done[r][0])
            picked = list(runs[run])
            if keep_markers:
                picked.append(done[run][1])
        else:
            picked = [name for run, listed in runs.items() if (tag, run) not in writing for name in listed]
        if picked:
            chosen[tag] = sorted(picked)
    return chosen


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


def _format_of(spark: SparkSession, root: str, group: str, format: Format | None) -> Format:
    """The format to read: as given, else Delta when the group has a Delta table."""
    if format is not None:
        return format
    return "delta" if delta.is_table(spark, root, group) else "parquet"


def newest_snapshot_time(
    spark: SparkSession, root: str, group: str, *, format: Format | None = None
) -> datetime | None:
    """The time T of the newest snapshot of ``group`` in the store, or None when it has none.

    Parquet: found by file names when :func:`write_snapshot` named them (LISTs only), else by the
    newest ``event_time`` of the newest hour directory. Delta: the newest hour partition in the log.
    """
    if _format_of(spark, root, group, format) == "delta":
        if not delta.is_table(spark, root, group):
            return None
        newest = delta.newest_snapshot(delta.read_table(spark, root, group), None)
        return _event_time(newest.select(EVENT_TIME).first()) if newest is not None else None
    for directory in _hour_dirs_newest_first(spark, f"{root.rstrip('/')}/{group}/data", None, ()):
        named = _named(fs.list_files(spark, directory))
        if named is None:
            newest = spark.read.parquet(directory).agg(F.max(EVENT_TIME)).first()
            if newest is not None and newest[0] is not None:
                return _event_time(newest)
        elif named:
            return datetime.strptime(max(named), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return None


def _event_time(row: object) -> datetime | None:
    value = row[0] if row is not None else None  # type: ignore[index]
    return datetime.strptime(str(value), EVENT_TIME_FORMAT).replace(tzinfo=UTC) if value is not None else None


def snapshot_before(
    spark: SparkSession, root: str, group: str, before: datetime | None, *, format: Format | None = None
) -> DataFrame | None:
    """The newest snapshot of ``group`` with ``event_time < before`` (any time if None), or None.

    Returns the record columns (join key, ``event_time``, features), without the offline
    metadata columns and without soft-deleted records.
    """
    return read_snapshot(spark, root, group, before=before, format=format)


def read_snapshot(
    spark: SparkSession,
    root: str,
    group: str,
    as_of: datetime | None = None,
    *,
    before: datetime | None = None,
    version: int | None = None,
    timestamp: datetime | None = None,
    format: Format | None = None,
) -> DataFrame | None:
    """One snapshot of ``group``: the newest with ``event_time <= as_of`` (or ``< before``; the
    newest of all when neither is given), or None when the store has none.

    ``version`` / ``timestamp`` read a Delta table as it was at that version or time (time travel;
    the snapshot chosen is then the newest in that version); Parquet has no versions. Record
    columns only, as :func:`snapshot_before` says.
    """
    if as_of is not None and before is not None:
        raise ValueError("give as_of or before, not both")
    bound = as_of + timedelta(seconds=1) if as_of is not None else before
    if _format_of(spark, root, group, format) == "delta":
        if not delta.is_table(spark, root, group):
            return None
        snapshot = delta.newest_snapshot(
            delta.read_table(spark, root, group, version=version, timestamp=timestamp), bound
        )
    elif version is not None or timestamp is not None:
        raise ValueError(
            f"{group}: the Parquet offline store keeps no versions; read as of a version needs format delta"
        )
    else:
        snapshot = _parquet_snapshot(spark, root, group, bound)
    if snapshot is None:
        return None
    if IS_DELETED in snapshot.columns:
        snapshot = snapshot.where(~F.col(IS_DELETED))
    return snapshot.drop(*OFFLINE_METADATA_COLUMNS)


def _parquet_snapshot(spark: SparkSession, root: str, group: str, before: datetime | None) -> DataFrame | None:
    bound = tuple(int(before.strftime(f)) for f in ("%Y", "%m", "%d", "%H")) if before is not None else None
    for directory in _hour_dirs_newest_first(spark, f"{root.rstrip('/')}/{group}/data", bound, ()):
        named = _named(fs.list_files(spark, directory))
        if named is None:
            snapshot = _newest_snapshot(spark, directory, before)
        else:
            snapshot = _named_snapshot(spark, directory, named, before)
        if snapshot is not None:
            return snapshot
    return None


def _named(names: list[str]) -> dict[str, list[str]] | None:
    """The snapshots in an hour directory by tag (:func:`_snapshots`), or None when a visible
    Parquet file is not named by snapshot (a store another tool wrote: read the data instead)."""
    visible = [n for n in names if n.endswith(".parquet") and not fs.hidden(n)]
    if not all(_SNAPSHOT_FILE.match(n) for n in visible):
        return None
    return _snapshots(names)


def _named_snapshot(
    spark: SparkSession, directory: str, named: dict[str, list[str]], before: datetime | None
) -> DataFrame | None:
    """The files of the newest snapshot before ``before``, chosen by their names (no data read)."""
    limit = snapshot_tag(before) if before is not None else None
    older = [t for t in named if limit is None or t < limit]
    if not older:
        return None
    return spark.read.parquet(*(f"{directory}/{n}" for n in named[max(older)]))


@dataclass(frozen=True)
class SnapshotFiles:
    """What :func:`snapshot_files` found: the files readers take per snapshot, and what it cannot name."""

    #: Per snapshot tag (:func:`snapshot_tag`) in range, the full paths of the run readers take.
    files: dict[str, list[str]]
    #: Hour directories holding Parquet files not named by :func:`write_snapshot` (another tool
    #: wrote them): read them whole and filter by ``event_time``.
    folders: list[str]
    #: A file of the newest named snapshot in or out of range, for the schema when none is in range.
    any_file: str | None


def snapshot_files(
    spark: SparkSession, root: str, group: str, *, earliest: datetime | None = None, latest: datetime | None = None
) -> SnapshotFiles:
    """The Parquet files of every snapshot of ``group`` with ``earliest <= T <= latest`` (either
    bound may be None), chosen by the readers' rule (module docstring) from LISTs only: no data read.

    One LIST per hour directory; the range prunes by the T in the file names, not by directory.
    """
    low = snapshot_tag(earliest) if earliest is not None else None
    high = snapshot_tag(latest) if latest is not None else None
    files: dict[str, list[str]] = {}
    folders: list[str] = []
    any_file: str | None = None
    for directory in _hour_dirs_newest_first(spark, f"{root.rstrip('/')}/{group}/data", None, ()):
        named = _named(fs.list_files(spark, directory))
        if named is None:
            folders.append(directory)
            continue
        for tag, names in named.items():
            paths = [f"{directory}/{n}" for n in names]
            any_file = any_file or paths[0]
            if (low is None or tag >= low) and (high is None or tag <= high):
                files.setdefault(tag, []).extend(paths)
    return SnapshotFiles(files=files, folders=folders, any_file=any_file)


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
