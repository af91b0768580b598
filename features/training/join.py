"""The as-of join of labels to one group's snapshots, and the leakage check: pure DataFrame code.

One pass per group, no cross join: snapshot rows and label rows are unioned, sorted per entity by
time (a snapshot before a label at the same time, since a snapshot at T holds only events before T)
and the latest snapshot is carried forward to every label by a running ``last(..., ignorenulls)``.
Cost and limits: docs/training.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from features.training.labels import LABEL_TS, ROW_ID
from features.training.snapshots import SNAPSHOT_TIME

_TIME, _KIND, _SNAP = "_training_time", "_training_kind", "_training_snapshot"


class LeakageError(RuntimeError):
    """A label was given a snapshot taken after its label time: the set would leak the future."""


def snapshot_time_column(group: str) -> str:
    return f"{group}__snapshot_time"


def as_of_join(
    labels: DataFrame,
    snapshots: DataFrame,
    *,
    group: str,
    key: str,
    features: Sequence[str],
    max_age: timedelta | None,
) -> DataFrame:
    """Per label (:data:`ROW_ID`): ``<group>__snapshot_time`` and ``features`` of the latest
    snapshot with ``T <= label time`` and ``label time - T <= max_age``, nulls when there is none.

    ``labels`` has ``key``, :data:`LABEL_TS` and :data:`ROW_ID`; ``snapshots`` has ``key``,
    ``snapshot_time`` and ``features``. The result has exactly one row per label row.
    """
    carried = F.struct(F.col(SNAPSHOT_TIME).alias(SNAPSHOT_TIME), *(F.col(f) for f in features))
    snap_rows = snapshots.select(
        F.col(key).cast("string").alias(key),
        F.col(SNAPSHOT_TIME).alias(_TIME),
        F.lit(0).alias(_KIND),
        carried.alias(_SNAP),
        F.lit(None).cast("long").alias(ROW_ID),
    ).where(F.col(_TIME).isNotNull())
    label_rows = labels.select(
        F.col(key).cast("string").alias(key),
        F.col(LABEL_TS).alias(_TIME),
        F.lit(1).alias(_KIND),
        F.lit(None).cast(snap_rows.schema[_SNAP].dataType).alias(_SNAP),
        F.col(ROW_ID),
    )
    window = Window.partitionBy(key).orderBy(_TIME, _KIND).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    latest = F.last(_SNAP, ignorenulls=True).over(window)
    joined = (
        snap_rows.unionByName(label_rows).select(ROW_ID, _KIND, _TIME, latest.alias(_SNAP)).where(F.col(_KIND) == 1)
    )
    fresh = F.col(f"{_SNAP}.{SNAPSHOT_TIME}").isNotNull()
    if max_age is not None:
        age = F.unix_micros(F.col(_TIME)) - F.unix_micros(F.col(f"{_SNAP}.{SNAPSHOT_TIME}"))
        fresh = fresh & (age <= F.lit(_micros(max_age)))
    return joined.select(
        ROW_ID,
        _kept(fresh, F.col(f"{_SNAP}.{SNAPSHOT_TIME}")).alias(snapshot_time_column(group)),
        *(_kept(fresh, F.col(f"{_SNAP}.{f}")).alias(f) for f in features),
    )


def _kept(fresh: Column, value: Column) -> Column:
    return F.when(fresh, value)


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
