"""One snapshot of a feature group at time T: every window from one pass over the source.

Window semantics (DESIGN.md): window w covers ``T - w <= time < T``; nothing at or after T is
used. A snapshot holds every entity with a row in ``[T - largest - lookback, T)``: entities whose
last row fell out of the largest window within the look-back get one record with zero counts and
null averages, so the online store stops serving stale non-zero values.

The plan was chosen by measurement (bench/RESULTS.md). Exact distinct counts dominate the cost,
so they are never computed with ``countDistinct`` per window (an Expand of the input per distinct
column). Because every window ends at T, a value is in window w exactly when its latest time
before T is ``>= T - w``; so each distinct column is de-duplicated once to (entity, value, latest
time) and then counted per window with a comparison:

* the *unfiltered distinct* branch groups by (entity, value) of the first distinct column
  without a filter (``session_id``): it de-duplicates that column and, in the same pass,
  pre-aggregates every plain aggregation per value (per session), so the second aggregation
  by entity only merges small partial results;
* every other distinct column (``product_id`` of product views) is its own branch of
  (entity, value) pairs, joined to the first by entity.

Conditional counts use ``count(when(...))``: with ANSI on, ``sum`` checks every addition for
overflow and measured twice as slow. Groups without distinct counts take a single aggregation.
The partial/merge/final split is the one multi-snapshot "tiles" use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features.constants import EVENT_TIME, EVENT_TIME_FORMAT
from features.definitions import Aggregation, FeatureGroup, FeatureSpec, FeatureType, Window
from features.transform.columns import utc_timestamp, whole_days_between

SPARK_TYPES: dict[FeatureType, str] = {"Integral": "bigint", "Fractional": "double", "String": "string"}

#: The latest time before T of one (entity, distinct value) pair.
_PAIR_LAST_SEEN = "_pair_last_seen"
#: The latest time before T of any row of the entity (decides who drops out of the snapshot).
_ENTITY_LAST_SEEN = "_entity_last_seen"


@dataclass(frozen=True)
class _Partial:
    """An aggregate split so it can be computed in parts and merged (sum of sums, max of maxes)."""

    name: str
    partial: Column
    merge: Callable[[Column], Column]


def snapshot(df: DataFrame, *, group: FeatureGroup, as_of: datetime, dropout_lookback: timedelta) -> DataFrame:
    """The group's records at ``as_of``: the join key, ``event_time`` (= as_of) and every feature."""
    if group.derived:
        return derived_features(df, group=group, as_of=as_of)
    return window_aggregates(df, group=group, as_of=as_of, dropout_lookback=dropout_lookback)


def derived_features(df: DataFrame, *, group: FeatureGroup, as_of: datetime) -> DataFrame:
    """Row-level features; rows whose own time is at or after T did not exist yet and are skipped."""
    rows = df
    if group.source.timestamp is not None:
        ts = F.col(group.source.timestamp)
        rows = rows.where(ts.isNull() | (ts < utc_timestamp(as_of)))
    features = [d.expr(as_of).cast(SPARK_TYPES[d.dtype]).alias(d.name) for d in group.derived]
    return rows.select(F.col(group.entity.join_key), _event_time(as_of), *features)


def window_aggregates(df: DataFrame, *, group: FeatureGroup, as_of: datetime, dropout_lookback: timedelta) -> DataFrame:
    """Every windowed aggregation of ``group`` at ``as_of`` (see the module docstring for the plan)."""
    if dropout_lookback < timedelta(0):
        raise ValueError(f"dropout look-back must not be negative, got {dropout_lookback}")
    plan = _Plan(group, as_of)
    key = group.entity.join_key
    ts = F.col(plan.ts)
    rows = df.where(ts < utc_timestamp(as_of))
    largest = group.largest_window
    band_start = as_of - largest.length - dropout_lookback if largest else None
    if band_start is not None and not plan.has_lifetime:
        rows = rows.where(ts >= utc_timestamp(band_start))

    partials = [p.partial.alias(p.name) for p in plan.partials]
    if plan.unfiltered_distinct is not None:
        assert plan.unfiltered_distinct.column is not None
        per_value = rows.groupBy(key, plan.unfiltered_distinct.column).agg(
            F.max(plan.ts).alias(_PAIR_LAST_SEEN), *partials
        )
        merged = per_value.groupBy(key).agg(
            F.max(_PAIR_LAST_SEEN).alias(_ENTITY_LAST_SEEN),
            *(p.merge(F.col(p.name)).alias(p.name) for p in plan.partials),
            *plan.distinct_counts(plan.unfiltered_distinct),
        )
    else:
        merged = rows.groupBy(key).agg(F.max(plan.ts).alias(_ENTITY_LAST_SEEN), *partials)
    if band_start is not None:
        merged = merged.where(F.col(_ENTITY_LAST_SEEN) >= utc_timestamp(band_start))
    for agg in plan.distinct:
        if agg is plan.unfiltered_distinct:
            continue
        assert agg.column is not None
        keep = F.col(agg.column).isNotNull() & (agg.filter.to_column() if agg.filter is not None else F.lit(True))
        if largest is not None:
            keep = keep & (ts >= utc_timestamp(as_of - largest.length))
        pairs = rows.where(keep).groupBy(key, agg.column).agg(F.max(plan.ts).alias(_PAIR_LAST_SEEN))
        merged = merged.join(pairs.groupBy(key).agg(*plan.distinct_counts(agg)), key, "left")
    return merged.select(F.col(key), _event_time(as_of), *plan.finals())


def _event_time(as_of: datetime) -> Column:
    return F.lit(as_of.strftime(EVENT_TIME_FORMAT)).alias(EVENT_TIME)


class _Plan:
    """Turns a group's declared aggregations into partial, merge and final expressions."""

    def __init__(self, group: FeatureGroup, as_of: datetime) -> None:
        assert group.source.timestamp is not None  # checked by FeatureGroup
        self.group = group
        self.as_of = as_of
        self.ts = group.source.timestamp
        aggs = list(group.aggregations)
        self.distinct = [a for a in aggs if a.op == "count_distinct"]
        self.has_lifetime = any(not a.windowed for a in aggs)
        # Every row counts towards an unfiltered distinct column, so the plain aggregations can
        # be pre-aggregated per value of it in the pass that de-duplicates it.
        self.unfiltered_distinct = next((a for a in self.distinct if a.filter is None), None)
        self.specs = group.features
        self.partials: list[_Partial] = []
        self._final: dict[str, Column] = {}
        for spec in self.specs:
            if spec.aggregation is None:
                continue
            if spec.aggregation.op == "count_distinct":
                # Counted per window in distinct_counts(); an entity absent from the branch has 0.
                self._final[spec.name] = F.coalesce(F.col(spec.name), F.lit(0)).cast(SPARK_TYPES[spec.dtype])
            else:
                self._add_plain(spec)

    def _condition(self, agg: Aggregation, window: Window | None) -> Column:
        cond = F.lit(True)
        if window is not None:
            cond = F.col(self.ts) >= utc_timestamp(self.as_of - window.length)
        if agg.filter is not None:
            cond = cond & agg.filter.to_column()
        return cond

    def _add_plain(self, spec: FeatureSpec) -> None:
        agg = spec.aggregation
        assert agg is not None
        cond = self._condition(agg, spec.window)
        out = SPARK_TYPES[spec.dtype]
        name = spec.name
        value = F.col(agg.column) if agg.column else None
        if agg.op == "count":
            self._partial(name, F.count(F.when(cond, F.lit(1))), F.sum)
            self._final[name] = F.coalesce(F.col(name), F.lit(0)).cast(out)
        elif agg.op == "sum":
            assert value is not None
            self._partial(name, F.sum(F.when(cond, value)), F.sum)
            self._final[name] = F.coalesce(F.col(name), F.lit(0)).cast(out)
        elif agg.op == "avg":
            assert value is not None
            total, count = f"{name}__sum", f"{name}__n"
            self._partial(total, F.sum(F.when(cond, value)), F.sum)
            self._partial(count, F.count(F.when(cond, value)), F.sum)
            self._final[name] = F.when(
                F.col(count) > 0, F.col(total).cast("double") / F.col(count).cast("double")
            ).cast(out)
        elif agg.op in ("min", "max"):
            assert value is not None
            fn = F.min if agg.op == "min" else F.max
            self._partial(name, fn(F.when(cond, value)), fn)
            self._final[name] = F.col(name).cast(out)
        elif agg.op == "last":
            assert value is not None and agg.column is not None
            self._partial(name, F.max(F.when(cond, F.struct(F.col(self.ts), value))), F.max)
            self._final[name] = F.col(name).getField(agg.column).cast(out)
        elif agg.op == "days_since_last":
            self._partial(name, F.max(F.when(cond, F.col(self.ts))), F.max)
            self._final[name] = whole_days_between(F.col(name), self.as_of)
        else:  # pragma: no cover - FeatureGroup rejects unknown ops
            raise ValueError(f"unsupported aggregation op {agg.op!r}")

    def _partial(self, name: str, partial: Column, merge: Callable[[Column], Column]) -> None:
        self.partials.append(_Partial(name=name, partial=partial, merge=merge))

    def distinct_counts(self, agg: Aggregation) -> list[Column]:
        """Per window, the (entity, value) pairs whose latest time falls inside it."""
        assert agg.column is not None
        counts = []
        for spec in self.specs:
            if spec.aggregation is not agg:
                continue
            assert spec.window is not None
            in_window = F.col(agg.column).isNotNull() & (
                F.col(_PAIR_LAST_SEEN) >= utc_timestamp(self.as_of - spec.window.length)
            )
            counts.append(F.count(F.when(in_window, F.lit(1))).alias(spec.name))
        return counts

    def finals(self) -> list[Column]:
        return [self._final[spec.name].alias(spec.name) for spec in self.specs]
