"""The as-of join of labels to every group's snapshots, and the leakage check: pure DataFrame code.

Two passes over the snapshot rows, neither parsing a timestamp per row nor sorting them: a narrow
one (key, snapshot index) builds, per entity, the indexes of the snapshots holding it, one structure
for all groups; per label the newest usable index is picked from that small array; a wide one
fetches the features by an equi-join on (key, index). Design, cost and limits: docs/training.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from features.constants import EVENT_TIME
from features.training.labels import LABEL_TS, ROW_ID
from features.training.snapshots import Snapshots

_INDEX, _GROUP, _LABELS = "_training_snapshot_index", "_training_group", "_training_labels"


class LeakageError(RuntimeError):
    """A label was given a snapshot taken after its label time: the set would leak the future."""


def snapshot_time_column(group: str) -> str:
    return f"{group}__snapshot_time"


@dataclass(frozen=True)
class AsOf:
    """The labels with every group's snapshot time and features; :meth:`release` frees what the
    join persisted once the caller is done with ``frame``."""

    frame: DataFrame
    persisted: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        for df in self.persisted:
            df.unpersist()


def as_of_join(
    labels: DataFrame,
    sources: Mapping[str, Snapshots],
    *,
    key: str,
    features: Mapping[str, Sequence[str]],
    max_age: timedelta | None,
    broadcast_requests: bool,
) -> AsOf:
    """Per label row (:data:`ROW_ID`), for every group of ``sources``: ``<group>__snapshot_time``
    and ``features[group]`` of the latest snapshot holding the entity with ``T <= label time`` and
    ``label time - T <= max_age``, nulls when there is none.

    ``labels`` has ``key``, :data:`LABEL_TS` and :data:`ROW_ID` (unique); the result has every
    column of ``labels`` and exactly one row per label row. ``broadcast_requests`` streams the
    snapshot rows past the broadcast (row id, key, index) requests instead of shuffling them: for
    label sets that fit in executor memory (about 40 bytes a label per group).
    """
    groups = list(sources)
    indexed = {g: _indexed(labels, sources[g]) for g in groups}
    requests = _requests(labels, indexed, sources, key=key, max_age=max_age).persist(StorageLevel.MEMORY_AND_DISK)
    found: list[DataFrame] = []
    for i, g in enumerate(groups):
        wanted = requests.select(ROW_ID, key, _chosen(i)).where(F.col(_chosen(i)).isNotNull())
        if broadcast_requests:
            wanted = F.broadcast(wanted)
        rows = indexed[g].select(key, F.col(_INDEX).alias(_chosen(i)), *(F.col(f"`{f}`") for f in features[g]))
        values = F.struct(
            F.timestamp_micros(F.element_at(_times(sources[g]), F.col(_chosen(i)) + 1)).alias(snapshot_time_column(g)),
            *(F.col(f"`{f}`") for f in features[g]),
        )
        found.append(rows.join(wanted, [key, _chosen(i)]).select(ROW_ID, values.alias(f"_g{i}")))
    label_struct = F.struct(*(F.col(f"`{c}`") for c in labels.columns))
    types = [labels.select(label_struct.alias(_LABELS)).schema[_LABELS].dataType]
    types += [f.schema[f"_g{i}"].dataType for i, f in enumerate(found)]
    parts = [labels.select(ROW_ID, label_struct.alias(_LABELS)).select(ROW_ID, *_nulls(types, 0))]
    parts += [f.select(ROW_ID, *_nulls(types, i + 1)) for i, f in enumerate(found)]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    # One row per label: its label row and at most one match per group (a duplicated (key, T) in
    # the store cannot multiply label rows).
    merged = union.groupBy(ROW_ID).agg(
        F.first(_LABELS, ignorenulls=True).alias(_LABELS),
        *(F.first(f"_g{i}", ignorenulls=True).alias(f"_g{i}") for i in range(len(groups))),
    )
    out = merged.select(
        *(F.col(f"{_LABELS}.`{c}`").alias(c) for c in labels.columns),
        *(
            F.col(f"_g{i}.`{c}`").alias(c)
            for i, g in enumerate(groups)
            for c in (snapshot_time_column(g), *features[g])
        ),
    )
    return AsOf(frame=out, persisted=[requests])


def _indexed(labels: DataFrame, found: Snapshots) -> DataFrame:
    """The group's snapshot rows with the index of their T in ``found.times`` instead of the text
    (a broadcast join with the tiny list: a hash lookup per row, no timestamp parsing)."""
    spark = labels.sparkSession
    index = spark.createDataFrame(
        [(text, i) for i, (text, _) in enumerate(found.times)], f"{EVENT_TIME} string, {_INDEX} int"
    )
    return found.frame.join(F.broadcast(index), EVENT_TIME).drop(EVENT_TIME)


def _requests(
    labels: DataFrame,
    indexed: Mapping[str, DataFrame],
    sources: Mapping[str, Snapshots],
    *,
    key: str,
    max_age: timedelta | None,
) -> DataFrame:
    """Per label: row id, key, and per group the index of the snapshot to use (null for none)."""
    groups = list(indexed)
    narrow = None
    for i, g in enumerate(groups):
        part = indexed[g].select(key, F.lit(i).alias(_GROUP), _INDEX)
        narrow = part if narrow is None else narrow.unionByName(part)
    assert narrow is not None
    presence = narrow.groupBy(key).agg(
        *(F.collect_set(F.when(F.col(_GROUP) == i, F.col(_INDEX))).alias(f"_p{i}") for i in range(len(groups)))
    )
    at = F.unix_micros(F.col(LABEL_TS))
    oldest = at - F.lit(_micros(max_age)) if max_age is not None else None
    chosen = [
        F.array_max(F.filter(F.col(f"_p{i}"), _usable(_times(sources[g]), at, oldest))).alias(_chosen(i))
        for i, g in enumerate(groups)
    ]
    return labels.select(ROW_ID, key, LABEL_TS).join(presence, key, "left").select(ROW_ID, key, *chosen)


def _usable(times: Column, at: Column, oldest: Column | None) -> Callable[[Column], Column]:
    """Whether the snapshot at an index is usable for a label at ``at`` (no later, no older than ``oldest``)."""

    def usable(index: Column) -> Column:
        t = F.element_at(times, index + 1)
        return (t <= at) & (t >= oldest) if oldest is not None else t <= at

    return usable


def _times(found: Snapshots) -> Column:
    """The group's snapshot instants (epoch microseconds), oldest first, as a literal array."""
    return (
        F.array(*(F.lit(m).cast("bigint") for _, m in found.times)) if found.times else F.array().cast("array<bigint>")
    )


def _chosen(i: int) -> str:
    return f"_training_chosen_{i}"


def _nulls(types: Sequence[DataType], keep: int) -> list[Column]:
    """A union part's struct columns (labels, then one per group): its own at ``keep``, typed nulls elsewhere."""
    names = [_LABELS, *(f"_g{i}" for i in range(len(types) - 1))]
    return [
        (F.col(n) if i == keep else F.lit(None).cast(t)).alias(n)
        for i, (n, t) in enumerate(zip(names, types, strict=True))
    ]


def _micros(age: timedelta) -> int:
    return (age.days * 86_400 + age.seconds) * 1_000_000 + age.microseconds


def leaked(training: DataFrame, groups: Sequence[str], *, label_time: str = LABEL_TS) -> Column:
    """Per row, 1 when any group's snapshot time is after ``label_time``, else 0 (for a sum)."""
    late = [F.col(snapshot_time_column(g)) > F.col(label_time) for g in groups]
    if not late:
        return F.lit(0)
    any_late = late[0]
    for other in late[1:]:
        any_late = any_late | other
    return F.when(F.coalesce(any_late, F.lit(False)), 1).otherwise(0)


def check_no_leakage(training: DataFrame, groups: Sequence[str], *, label_time: str = LABEL_TS) -> None:
    """Fail loudly when any row used a snapshot taken after its label time (one small job).

    The join cannot produce such a row; this re-checks the written result independently of it, so a
    change to the join, the reader or the store that would leak is caught before anyone trains.
    """
    row = training.agg(F.sum(leaked(training, groups, label_time=label_time)).alias("n")).first()
    raise_if_leaked(int(row["n"] or 0) if row is not None else 0, training, groups, label_time=label_time)


def raise_if_leaked(count: int, training: DataFrame, groups: Sequence[str], *, label_time: str = LABEL_TS) -> None:
    if not count:
        return
    example = training.where(leaked(training, groups, label_time=label_time) == 1).first()
    shown = ""
    if example is not None:
        late = [
            g
            for g in groups
            if example[snapshot_time_column(g)] is not None and example[snapshot_time_column(g)] > example[label_time]
        ]
        shown = (
            f"; e.g. label time {example[label_time]} got {late[0]} snapshot {example[snapshot_time_column(late[0])]}"
            if late
            else ""
        )
    raise LeakageError(
        f"leakage check failed: {count} row(s) use a snapshot taken after their label time{shown}; nothing was written"
    )
