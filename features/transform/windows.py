"""One snapshot of a feature group at time T: every window from one pass over the source.

Window semantics (DESIGN.md): window w covers ``T - w <= time < T``; nothing at or after T is
used. A snapshot holds every entity with a row in ``[T - largest - lookback, T)``: entities whose
last row fell out of the largest window within the look-back get one record with zero counts and
null averages, so the online store stops serving stale non-zero values.

The plan was chosen by measurement (bench/RESULTS.md). Exact distinct counts dominate the cost,
so they are never computed with ``countDistinct`` per window (an Expand of the input per distinct
column). Because every window ends at T, a value is in window w exactly when its latest time
before T is ``>= T - w``. So the plan is two aggregations over one scan:

1. every row is exploded into one *host* element (carrying the plain aggregations) plus one
   element per other distinct column it contributes to; grouping by (entity, tag, value)
   de-duplicates each (entity, value) pair to its latest time and pre-aggregates the plain
   aggregations per host value (e.g. per session), shrinking the data before the shuffle;
2. grouping by entity merges the partial aggregates and counts, per window, the pairs whose
   latest time falls in it.

Groups without distinct counts take a single aggregation. The partial/merge/final split is the
same one multi-snapshot "tiles" use.
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

_TAG = "_tag"
_VALUE = "_value"
_LATEST = "_latest"
_LAST_SEEN = "_last_seen"
_HOST_TAG = 0


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

    if plan.distinct:
        stage1 = (
            plan.explode(rows)
            .groupBy(key, _TAG, _VALUE)
            .agg(F.max(plan.ts).alias(_LATEST), *(p.partial.alias(p.name) for p in plan.partials))
        )
        merged = stage1.groupBy(key).agg(
            F.max(_LATEST).alias(_LAST_SEEN),
            *(p.merge(F.col(p.name)).alias(p.name) for p in plan.partials),
            *plan.distinct_counts(),
        )
    else:
        merged = rows.groupBy(key).agg(
            F.max(plan.ts).alias(_LAST_SEEN), *(p.partial.alias(p.name) for p in plan.partials)
        )
    if band_start is not None:
        merged = merged.where(F.col(_LAST_SEEN) >= utc_timestamp(band_start))
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
        # The host is an unfiltered distinct column: every row contributes to it, so the plain
        # aggregations can ride on its elements instead of needing elements of their own.
        self.host = next((a for a in self.distinct if a.filter is None), None)
        self.tags = {a.name: (_HOST_TAG if a is self.host else i + 1) for i, a in enumerate(self.distinct)}
        self.specs = group.features
        self.partials: list[_Partial] = []
        self._final: dict[str, Column] = {}
        for spec in self.specs:
            if spec.aggregation is not None and spec.aggregation.op != "count_distinct":
                self._add_plain(spec)

    # -- plain aggregations: partial / merge / final -------------------------------------------
    def _condition(self, agg: Aggregation, window: Window | None) -> Column:
        cond = F.lit(True)
        if self.distinct:
            cond = F.col(_TAG) == _HOST_TAG
        if window is not None:
            cond = cond & (F.col(self.ts) >= utc_timestamp(self.as_of - window.length))
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
            self._partial(name, F.sum(F.when(cond, 1).otherwise(0)), F.sum)
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

    # -- distinct counts ---------------------------------------------------------------------------
    def explode(self, rows: DataFrame) -> DataFrame:
        """One host element per row plus one element per other distinct column the row feeds."""
        key = self.group.entity.join_key
        carried = sorted(
            {a.filter.column for a in self.group.aggregations if a.filter is not None}
            | {a.column for a in self.group.aggregations if a.column and a.op != "count_distinct"}
        )
        types = self.group.source.columns

        def element(tag: int, value: Column, with_carried: bool) -> Column:
            extra = [(F.col(c) if with_carried else F.lit(None).cast(types[c])).alias(c) for c in carried]
            return F.struct(
                F.lit(tag).alias(_TAG), value.cast("string").alias(_VALUE), F.col(self.ts).alias(self.ts), *extra
            )

        host_value = F.col(self.host.column) if self.host and self.host.column else F.lit(None)
        elements = [element(_HOST_TAG, host_value, True)]
        for agg in self.distinct:
            if agg is self.host:
                continue
            assert agg.column is not None
            keep = F.col(agg.column).isNotNull()
            if agg.filter is not None:
                keep = keep & agg.filter.to_column()
            elements.append(F.when(keep, element(self.tags[agg.name], F.col(agg.column), False)))
        exploded = F.explode(F.filter(F.array(*elements), lambda e: e.isNotNull())).alias("_e")
        return rows.select(F.col(key), exploded).select(key, "_e.*")

    def distinct_counts(self) -> list[Column]:
        counts = []
        for spec in self.specs:
            agg = spec.aggregation
            if agg is None or agg.op != "count_distinct":
                continue
            assert spec.window is not None
            in_window = (
                (F.col(_TAG) == self.tags[agg.name])
                & F.col(_VALUE).isNotNull()
                & (F.col(_LATEST) >= utc_timestamp(self.as_of - spec.window.length))
            )
            counts.append(F.sum(F.when(in_window, 1).otherwise(0)).alias(spec.name))
        return counts

    def finals(self) -> list[Column]:
        out = []
        for spec in self.specs:
            if spec.name in self._final:
                out.append(self._final[spec.name].alias(spec.name))
            else:
                out.append(F.coalesce(F.col(spec.name), F.lit(0)).cast("bigint").alias(spec.name))
        return out
