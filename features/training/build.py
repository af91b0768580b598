"""Build a training set: read and check the labels, as-of join every group, check, write, manifest.

The helpers return values; :func:`build_training_set` returns the manifest it wrote, which the
command prints a summary of. Semantics and the manifest's fields: docs/training.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.config import OfflineStoreConf
from features.definitions import FeatureGroup
from features.io import fs
from features.training.join import (
    BROADCAST_LABELS,
    GroupRows,
    as_of_joined,
    leaked,
    raise_if_leaked,
    snapshot_time_column,
)
from features.training.labels import LABEL_TS, LabelsError, prepared, read_labels
from features.training.snapshots import Snapshots, snapshots

log = logging.getLogger(__name__)

OutputFormat = Literal["parquet", "csv"]
MANIFEST = "_manifest.json"


class SelectionError(LabelsError):
    """The requested features or groups cannot make a training set with these labels."""


@dataclass(frozen=True, kw_only=True)
class TrainingRequest:
    labels: str
    out: str
    groups: Sequence[FeatureGroup]
    format: OutputFormat = "parquet"
    features: Sequence[str] | None = None
    max_age: timedelta | None = None
    #: Read Delta tables as of this version or this time (at most one; Delta only).
    version: int | None = None
    timestamp: datetime | None = None
    overwrite: bool = False


def manifest_path(out: str) -> str:
    return f"{out.rstrip('/')}/{MANIFEST}"


def build_training_set(spark: SparkSession, store: OfflineStoreConf, request: TrainingRequest) -> dict[str, Any]:
    """Write the training set of ``request`` and its manifest; the manifest.

    Raises :class:`LabelsError` / :class:`SelectionError` for inputs that cannot be used (nothing
    read from the store yet), :class:`~features.training.join.LeakageError` when the check fails
    (nothing written).
    """
    started = datetime.now(UTC)
    keys = {g.entity.join_key for g in request.groups}
    if len(keys) != 1:
        raise SelectionError(
            f"the groups have different join keys ({', '.join(sorted(keys))}); pick groups of one entity"
        )
    key = keys.pop()
    if not request.overwrite and fs.exists(spark, request.out):
        raise SelectionError(f"{request.out} exists; pass --overwrite to replace it or choose another --out")
    raw = read_labels(spark, request.labels)
    label_columns = list(raw.columns)
    labels = prepared(raw, key=key)
    try:
        return _build(spark, store, request, labels, label_columns, key, started)
    finally:
        labels.unpersist()


def _build(
    spark: SparkSession,
    store: OfflineStoreConf,
    request: TrainingRequest,
    labels: DataFrame,
    label_columns: list[str],
    key: str,
    started: datetime,
) -> dict[str, Any]:
    micros = F.unix_micros(F.col(LABEL_TS))
    bounds = labels.agg(F.count(F.lit(1)).alias("n"), F.min(micros).alias("lo"), F.max(micros).alias("hi")).first()
    assert bounds is not None
    labels_read = int(bounds["n"])
    lo, hi = _instant(bounds["lo"]), _instant(bounds["hi"])
    earliest = lo - request.max_age if lo is not None and request.max_age is not None else None
    latest = hi

    sources: dict[str, Snapshots] = {}
    chosen: dict[str, list[str]] = {}
    wanted = set(request.features) if request.features is not None else None
    for group in request.groups:
        found = snapshots(
            spark,
            store,
            group.name,
            key=key,
            earliest=earliest,
            latest=latest,
            version=request.version,
            timestamp=request.timestamp,
        )
        names = [f for f in found.features if wanted is None or f in wanted]
        if names or wanted is None:
            sources[group.name], chosen[group.name] = found, names
    _check_names(chosen, label_columns, wanted)

    group_rows = {name: GroupRows(found.frame, chosen[name], found.times) for name, found in sources.items()}
    broadcast = labels_read <= BROADCAST_LABELS
    training: DataFrame | None = None
    try:
        with as_of_joined(labels, group_rows, key=key, max_age=request.max_age, broadcast=broadcast) as joined:
            training = joined.persist(StorageLevel.MEMORY_AND_DISK)
            stats = _stats(training, chosen)  # computes the join while its narrow part is cached
        raise_if_leaked(int(stats["leaked"] or 0), training, list(chosen))
        rows = int(stats["rows"])
        if rows != labels_read:
            raise RuntimeError(
                f"training set has {rows} rows for {labels_read} label rows; expected one per label (an offline "
                "store holding an entity twice at one snapshot time gives a label two matches)"
            )
        columns = [*label_columns, *(c for g, fs_ in chosen.items() for c in (snapshot_time_column(g), *fs_))]
        _write(training.select(*columns), request.out, request.format)
    finally:
        if training is not None:
            training.unpersist()
    manifest = _manifest(request, labels_read, rows, stats, chosen, sources, started)
    fs.write_text(spark, manifest_path(request.out), json.dumps(manifest, indent=2, default=str))
    return manifest


def _check_names(chosen: dict[str, list[str]], label_columns: list[str], wanted: set[str] | None) -> None:
    if wanted is not None:
        unknown = sorted(wanted - {f for names in chosen.values() for f in names})
        if unknown:
            raise SelectionError(
                f"--features {', '.join(unknown)}: not in the offline store of the selected groups "
                f"({', '.join(chosen) or 'none'}); check the names or --groups"
            )
        if not chosen:
            raise SelectionError("no feature selected; --features names none of the groups' features")
    taken = {c: "a label column" for c in label_columns}
    for group, names in chosen.items():
        for name in (snapshot_time_column(group), *names):
            if name in taken:
                raise SelectionError(
                    f"column {name!r} of {group} clashes with {taken[name]}; rename the label column or "
                    "leave the feature out with --features"
                )
            taken[name] = f"a feature of {group}"


def _stats(training: DataFrame, chosen: dict[str, list[str]]) -> Any:
    """Row count, leakage count, per group snapshot times used, per feature nulls: one job."""
    aggs = [F.count(F.lit(1)).alias("rows"), F.sum(leaked(training, list(chosen))).alias("leaked")]
    for i, (group, names) in enumerate(chosen.items()):
        t = F.col(snapshot_time_column(group))
        aggs += [
            F.min(F.unix_micros(t)).alias(f"g{i}_min"),
            F.max(F.unix_micros(t)).alias(f"g{i}_max"),
            F.count_distinct(t).alias(f"g{i}_distinct"),
            F.count(t).alias(f"g{i}_matched"),
        ]
        aggs += [F.sum(F.when(F.col(n).isNull(), 1).otherwise(0)).alias(f"g{i}_f{j}") for j, n in enumerate(names)]
    row = training.agg(*aggs).first()
    assert row is not None
    return row


def _write(df: DataFrame, out: str, fmt: OutputFormat) -> None:
    writer = df.write.mode("overwrite")
    if fmt == "csv":
        writer.option("header", "true").option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX").csv(out)
    else:
        writer.parquet(out)


def _manifest(
    request: TrainingRequest,
    labels_read: int,
    rows: int,
    stats: Any,
    chosen: dict[str, list[str]],
    sources: dict[str, Snapshots],
    started: datetime,
) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for i, (group, names) in enumerate(chosen.items()):
        groups[group] = {
            "snapshot_time_column": snapshot_time_column(group),
            "snapshots_used": {
                "min": _iso(_instant(stats[f"g{i}_min"])),
                "max": _iso(_instant(stats[f"g{i}_max"])),
                "distinct": int(stats[f"g{i}_distinct"]),
                "labels_matched": int(stats[f"g{i}_matched"]),
            },
            "offline_store": sources[group].store,
            "null_rate": {n: (int(stats[f"g{i}_f{j}"]) / rows if rows else None) for j, n in enumerate(names)},
        }
    return {
        "labels": request.labels,
        "labels_read": labels_read,
        "rows_written": rows,
        "output": request.out,
        "format": request.format,
        "max_age_seconds": request.max_age.total_seconds() if request.max_age is not None else None,
        "as_of_version": request.version,
        "as_of_timestamp": _iso(request.timestamp),
        "leakage_check": "passed",
        "started": _iso(started),
        "finished": _iso(datetime.now(UTC)),
        "groups": groups,
    }


def _instant(micros: int | None) -> datetime | None:
    """A timestamp taken to the driver as epoch microseconds: PySpark would turn a timestamp into a
    naive datetime in the driver process's local zone, which on a cluster need not be UTC."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros)) if micros is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z") if value else None
