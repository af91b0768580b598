"""Many snapshots of a windowed group at once, from per-entity partial aggregates (tiles).

A backfill wants the snapshots ``T_k = T0 + k * stride`` for ``k = 0 .. K-1``, each equal to
:func:`features.transform.windows.window_aggregates` at ``T_k``. Computing each one separately
costs snapshots x window; this module reads the rows once and derives every snapshot from
partial aggregates (docs/backfill.md has the design and its cost).

Time is cut into buckets of one stride, ``[T0 + b * stride, T0 + (b + 1) * stride)`` (``b`` may
be negative), and a window is whole strides plus a remainder, ``w = q * stride + r``: a row of
bucket ``b`` counts in ``w`` for the snapshots ``b + 1 .. b + q``, and for ``b + q + 1`` too when
it lies in the last ``r`` of its bucket. So daily snapshots need day buckets (plus, for a 1h
window, each day's last hour), not hourly tiles. Everything below turns intervals of snapshot
indexes into +x / -x deltas at their two ends, sums them per (entity, snapshot) and takes a
running sum per entity (docs/backfill.md has the table):

* counts, sums and the two halves of an average: per bucket, over the whole bucket and over its
  last ``r`` for each remainder;
* exact distinct counts: every distinct column of one type in one pass over stacked
  (aggregation, value) rows; a pair's interval per active bucket, cut at its next active bucket
  (``lead``), so intervals never overlap (cost ~ pairs x active buckets x windows);
* which entities a snapshot holds: +1 / -1 over each bucket's band (largest window plus the
  look-back); the running count is positive exactly where the entity is in the snapshot;
* lifetime aggregations (``days_since_last``): the newest matching time per bucket from the next
  snapshot on, a running max;
* ``min`` / ``max`` / ``last`` are not invertible: a range frame over tiles of
  ``gcd(stride, windows, look-back)`` (``W`` tiles preceding) at the snapshot rows.

The result holds, per (entity, snapshot), the same partial columns the single-snapshot plan
finishes (``windows._Plan``), so :func:`snapshot_at` (one snapshot) and :func:`all_snapshots`
(every one, ``event_time`` telling them apart) apply the very same final expressions: same
columns, types and order as ``window_aggregates``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from features.constants import EVENT_TIME, EVENT_TIME_FORMAT
from features.definitions import Aggregation, FeatureGroup, FeatureSpec

# One plan of partial names and final expressions for both paths: parity is the contract.
from features.transform.windows import _Plan

#: The snapshot index ``k`` of a row of the partials (snapshot time ``T0 + k * stride``).
SNAPSHOT_INDEX = "_snapshot"
_TILE = "_tile"
_BUCKET = "_bucket"
#: A row's time in microseconds since the first snapshot T0 (negative before it).
_REL = "_rel"
#: The newest ``_REL`` of a bucket (of the entity, or of an (entity, value) pair).
_LAST = "_last"
_K = "_k"
#: The running count of buckets whose band holds the snapshot: > 0 where the entity is in it.
_PRESENT = "_present"
_WHICH, _VALUE = "_which", "_value"
_USEFUL = "_useful"
_MICROS = 1_000_000


class TileError(ValueError):
    """A backfill range that cannot be cut into snapshots; the message says how to fix it."""


@dataclass(frozen=True)
class TileGrid:
    """The snapshot times of a backfill and the tiles they are computed from."""

    start: datetime
    stride: timedelta
    count: int
    tile: timedelta

    @property
    def times(self) -> list[datetime]:
        return [self.start + k * self.stride for k in range(self.count)]

    @property
    def tiles_per_stride(self) -> int:
        return _seconds(self.stride) // _seconds(self.tile)

    def tiles(self, length: timedelta) -> int:
        """``length`` in tiles (a whole number by construction of the tile)."""
        return _seconds(length) // _seconds(self.tile)


def _seconds(length: timedelta) -> int:
    return int(length.total_seconds())


def snapshot_times(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """``start, start + step, ..., end`` (inclusive); a :class:`TileError` unless ``end`` is on that grid."""
    if start.tzinfo is None or end.tzinfo is None:
        raise TileError("--start and --end need a time zone, e.g. 2026-10-01T00:00:00Z")
    if step <= timedelta(0) or step.microseconds or step != timedelta(seconds=_seconds(step)):
        raise TileError(f"--step {step} must be a positive whole number of seconds, e.g. 1d or 1h")
    if end < start:
        raise TileError(f"--end {_stamp(end)} is before --start {_stamp(start)}; swap them")
    span = end - start
    if span % step:
        last = start + (span // step) * step
        raise TileError(
            f"--end {_stamp(end)} is not --start {_stamp(start)} plus a whole number of steps of {_name(step)}; "
            f"use --end {_stamp(last)} or {_stamp(last + step)}"
        )
    return [start + k * step for k in range(span // step + 1)]


def tile_grid(group: FeatureGroup, times: list[datetime], *, dropout_lookback: timedelta) -> TileGrid:
    """The grid for ``times`` (evenly spaced, see :func:`snapshot_times`) of ``group``.

    Counts, sums, averages and distinct counts come from stride buckets whatever the windows; the
    ``tile`` (the greatest common divisor of the stride, the windows and the look-back: 1h for a 1h
    window with daily snapshots) is what ``min`` / ``max`` / ``last`` are computed from.
    """
    if group.derived:
        raise TileError(f"{group.name} has derived features, not windows: it is built per snapshot, not from tiles")
    if not times:
        raise TileError("a backfill needs at least one snapshot time")
    stride = times[1] - times[0] if len(times) > 1 else timedelta(days=1)
    lengths = [_seconds(stride), *(w.seconds for w in group.parsed_windows), _seconds(dropout_lookback)]
    tile = timedelta(seconds=reduce(math.gcd, lengths))
    return TileGrid(start=times[0], stride=stride, count=len(times), tile=tile)


def _stamp(moment: datetime) -> str:
    return moment.strftime(EVENT_TIME_FORMAT)


def _name(step: timedelta) -> str:
    seconds = _seconds(step)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _floor_div(value: Column, divisor: int) -> Column:
    """Exact floor division of a long column by a positive integer (negatives round down)."""
    return ((value - F.pmod(value, F.lit(divisor))) / F.lit(divisor)).cast("bigint")


def read_start(group: FeatureGroup, grid: TileGrid, dropout_lookback: timedelta) -> datetime | None:
    """The earliest row time any snapshot of the grid uses; None when a lifetime aggregation needs all history."""
    largest = group.largest_window
    if largest is None or any(not a.windowed for a in group.aggregations):
        return None
    return grid.start - largest.length - dropout_lookback


def backfill_partials(df: DataFrame, *, group: FeatureGroup, grid: TileGrid, dropout_lookback: timedelta) -> DataFrame:
    """Per (entity, snapshot index) where the entity is in that snapshot: the partial columns of
    ``windows._Plan`` merged over each window (see the module docstring)."""
    if dropout_lookback < timedelta(0):
        raise ValueError(f"dropout look-back must not be negative, got {dropout_lookback}")
    largest = group.largest_window
    assert largest is not None and group.source.timestamp is not None  # windowed groups only
    key, ts = group.entity.join_key, group.source.timestamp
    plan = _Plan(group, grid.start)
    stride = _micros(grid.stride)
    end = grid.start + (grid.count - 1) * grid.stride
    origin = int(grid.start.timestamp()) * _MICROS
    rows = df.where(F.col(ts) < F.timestamp_micros(F.lit(int(end.timestamp()) * _MICROS)))
    start = read_start(group, grid, dropout_lookback)
    if start is not None:
        rows = rows.where(F.col(ts) >= F.timestamp_micros(F.lit(int(start.timestamp()) * _MICROS)))
    rel = F.unix_micros(F.col(ts)) - F.lit(origin)
    rows = rows.withColumn(_REL, rel).withColumn(_BUCKET, _floor_div(F.col(_REL), stride))

    specs = [spec for spec in plan.specs if spec.aggregation is not None]
    invertible = [sp for sp in specs if sp.aggregation and sp.aggregation.op in ("count", "sum", "avg")]
    sliding = [sp for sp in specs if sp.aggregation and sp.aggregation.op in ("min", "max", "last")]
    lifetime = [sp for sp in specs if sp.aggregation and sp.aggregation.op == "days_since_last"]
    distinct = list(
        dict.fromkeys(sp.aggregation for sp in specs if sp.aggregation and sp.aggregation.op == "count_distinct")
    )

    band = _micros(largest.length + dropout_lookback)
    buckets = rows.groupBy(key, _BUCKET).agg(
        F.max(_REL).alias(_LAST), *(c.alias(n) for n, c in _bucket_partials(invertible, lifetime, ts, stride).items())
    )
    points = _points(specs, stride)
    deltas = [_bucket_deltas(buckets, invertible, lifetime, key=key, grid=grid, band=band, points=points)]
    for aggs in _by_type(df, distinct):
        deltas.append(_distinct_deltas(rows, aggs, plan, key=key, grid=grid, points=points))
    merged = _running(deltas, key=key, count=grid.count, maxes={sp.name for sp in lifetime}, points=points)
    if sliding:
        tiles = _tiles(rows, sliding, key=key, ts=ts, grid=grid)
        merged = merged.join(_sliding(tiles, merged, sliding, key=key, grid=grid), [key, SNAPSHOT_INDEX], "left")
    return merged


def _points(specs: list[FeatureSpec], stride: int) -> set[str]:
    """The partial columns whose every interval is one snapshot long, ``[k, k + 1)``: they need
    no -x row, only their value at ``k`` (:func:`_running` does not run them up).

    A count, sum or average over a window shorter than two steps (``q <= 1``: its intervals are
    ``[b + 1, b + q + 1)`` and ``[b + q + 1, b + q + 2)`` for a remainder); a distinct count over a
    window of at most one step (a longer one's interval can be cut short, not a fixed length).
    """
    out: set[str] = set()
    for spec in specs:
        agg, window = spec.aggregation, spec.window
        if agg is None or window is None:
            continue
        length = _micros(window.length)
        if agg.op in ("count", "sum", "avg") and length < 2 * stride:
            out.update(name for name, _ in _sources(spec, "_f"))
        elif agg.op == "count_distinct" and length <= stride:
            out.add(spec.name)
    return out


def _micros(length: timedelta) -> int:
    return _seconds(length) * _MICROS


def _in_tail(remainder: int, stride: int) -> Column:
    """Whether a row lies in the last ``remainder`` microseconds of its stride bucket."""
    return (F.col(_BUCKET) + F.lit(1)) * F.lit(stride) - F.col(_REL) <= F.lit(remainder)


def _split(length: timedelta, stride: int) -> tuple[int, int]:
    """A window as whole strides and the remainder: ``length = q * stride + r`` (microseconds)."""
    return divmod(_micros(length), stride)


def _bucket_partials(
    invertible: list[FeatureSpec], lifetime: list[FeatureSpec], ts: str, stride: int
) -> dict[str, Column]:
    """Per (entity, stride bucket): each aggregation over the whole bucket (``_f_<agg>``), over the
    last ``r`` of it for every window remainder ``r`` (``_r<r>_<agg>``), and the lifetime maxes."""
    out: dict[str, Column] = {}
    for spec in invertible:
        agg, window = spec.aggregation, spec.window
        assert agg is not None and window is not None
        cond = agg.filter.to_column() if agg.filter is not None else F.lit(True)
        remainder = _split(window.length, stride)[1]
        parts = [("_f", cond)] + ([(f"_r{remainder}", cond & _in_tail(remainder, stride))] if remainder else [])
        for prefix, where_ in parts:
            base = f"{prefix}_{agg.name}"
            if agg.op == "count":
                out[base] = F.count(F.when(where_, F.lit(1)))
            else:
                assert agg.column is not None
                out[f"{base}__sum"] = F.sum(F.when(where_, F.col(agg.column)))
                if agg.op == "avg":
                    out[f"{base}__n"] = F.count(F.when(where_, F.col(agg.column)))
    for spec in lifetime:
        agg = spec.aggregation
        assert agg is not None
        cond = agg.filter.to_column() if agg.filter is not None else F.lit(True)
        out[f"_l_{agg.name}"] = F.max(F.when(cond, F.col(ts)))
    return out


def _sources(spec: FeatureSpec, prefix: str) -> list[tuple[str, str]]:
    """(partial column of the plan, bucket column it comes from) for one invertible feature."""
    agg = spec.aggregation
    assert agg is not None
    base = f"{prefix}_{agg.name}"
    if agg.op == "count":
        return [(spec.name, base)]
    if agg.op == "sum":
        return [(spec.name, f"{base}__sum")]
    return [(f"{spec.name}__sum", f"{base}__sum"), (f"{spec.name}__n", f"{base}__n")]


def _k_after(rel: Column, length: int, stride: int) -> Column:
    """The first snapshot index whose time ``k * stride`` is past ``rel + length`` (microseconds)."""
    return _floor_div(rel + F.lit(length), stride) + F.lit(1)


def _clamp(k: Column) -> Column:
    """Deltas before the first snapshot apply from it on."""
    return F.greatest(k, F.lit(0))


def _add(a: Column | None, b: Column) -> Column:
    """``a + b`` where a null term counts as nothing (null only when both are)."""
    if a is None:
        return b
    return F.when(a.isNull(), b).when(b.isNull(), a).otherwise(a + b)


def _bucket_deltas(
    buckets: DataFrame,
    invertible: list[FeatureSpec],
    lifetime: list[FeatureSpec],
    *,
    key: str,
    grid: TileGrid,
    band: int,
    points: set[str],
) -> DataFrame:
    """Per bucket, +x where a window starts holding it and -x where it stops, for every window;
    the presence count (+1 / -1 over the band) and the lifetime maxes from the next snapshot on.

    A bucket ``b`` counts in window ``q * stride + r`` for snapshots ``b + 1 .. b + q`` and, when
    ``r > 0``, its last ``r`` counts at snapshot ``b + q + 1`` too.
    """
    stride = _micros(grid.stride)
    bucket = F.col(_BUCKET)
    # snapshot offset from the bucket -> partial column -> value added there
    at: dict[int, dict[str, Column]] = {}

    def interval(name: str, source: str, lo: int, hi: int) -> None:
        if hi <= lo:
            return
        value = F.when(bucket + F.lit(hi) > 0, F.col(source))  # null once it left every snapshot's window
        at.setdefault(lo, {})[name] = _add(at.get(lo, {}).get(name), value)
        if name not in points:  # a point column counts at lo only (_points)
            at.setdefault(hi, {})[name] = _add(at.get(hi, {}).get(name), -value)

    types: dict[str, str] = {}
    for spec in invertible:
        assert spec.window is not None
        q, r = _split(spec.window.length, stride)
        for name, source in _sources(spec, "_f"):
            interval(name, source, 1, q + 1)
            types[name] = buckets.schema[source].dataType.simpleString()
        if r:
            for name, source in _sources(spec, f"_r{r}"):
                interval(name, source, q + 1, q + 2)
    for spec in lifetime:
        assert spec.aggregation is not None
        at.setdefault(1, {})[spec.name] = F.col(f"_l_{spec.aggregation.name}")
        types[spec.name] = buckets.schema[f"_l_{spec.aggregation.name}"].dataType.simpleString()
    present_to = _k_after(F.col(_LAST), band, stride)
    keep = present_to > 0

    entries: list[tuple[Column, dict[str, Column]]] = [
        (bucket + F.lit(1), {_PRESENT: F.when(keep, F.lit(1)), **at.get(1, {})}),
        (present_to, {_PRESENT: F.when(keep, F.lit(-1))}),
    ]
    entries += [(bucket + F.lit(offset), at[offset]) for offset in sorted(o for o in at if o != 1)]
    return _emit(buckets, entries, key=key, types={_PRESENT: "int", **types}, count=grid.count)


def _emit(
    df: DataFrame, entries: list[tuple[Column, dict[str, Column]]], *, key: str, types: dict[str, str], count: int
) -> DataFrame:
    """Per row of ``df``, one delta row ``(key, _k, *types)`` per entry ``(k, {column: value})`` that
    adds something to a snapshot of the grid (``k`` clamped to the first snapshot; a column an
    entry does not name is null).

    Every k and value is computed into a column of its own first and the delta rows only refer to
    them: built inline, the expressions of a few dozen cells make one generated method larger than
    the JIT compiles (8,000 bytes of bytecode; 55 kB here), run interpreted at ~10 us a row.
    Whether a row is kept is one field of its struct, filtered before the fields are projected: a
    filter over every field after the explode makes Spark's constraint propagation double its
    constraint set per field (2^fields, minutes of planning: docs/backfill.md).
    """
    names = list(types)
    cells: list[Column] = []
    structs: list[Column] = []
    for e, (k, values) in enumerate(entries):
        cells.append(_clamp(k).alias(f"_e{e}k"))
        fields = [F.col(f"_e{e}k").alias(_K)]
        given = []
        for n in names:
            if n in values:
                cells.append(values[n].cast(types[n]).alias(f"_e{e}_{n}"))
                fields.append(F.col(f"_e{e}_{n}").alias(n))
                given.append(F.col(f"_e{e}_{n}").isNotNull())
            else:
                fields.append(F.lit(None).cast(types[n]).alias(n))
        if not given:
            continue
        useful = (F.col(f"_e{e}k") < F.lit(count)) & reduce(lambda a, b: a | b, given)
        structs.append(F.struct(useful.alias(_USEFUL), *fields))
    exploded = df.select(key, *cells).select(key, F.explode(F.array(*structs)).alias("_d"))
    return exploded.where(F.col(f"_d.{_USEFUL}")).select(key, f"_d.{_K}", *(f"_d.{n}" for n in names))


def _by_type(df: DataFrame, distinct: list[Aggregation]) -> list[list[Aggregation]]:
    """The distinct aggregations in batches of one column type: a batch is de-duplicated in one pass."""
    batches: dict[str, list[Aggregation]] = {}
    for agg in distinct:
        assert agg.column is not None
        batches.setdefault(df.schema[agg.column].dataType.simpleString(), []).append(agg)
    return list(batches.values())


def _distinct_deltas(
    rows: DataFrame, aggs: list[Aggregation], plan: _Plan, *, key: str, grid: TileGrid, points: set[str]
) -> DataFrame:
    """+1 where an (entity, value) pair starts counting in window w, -1 where it stops, for every
    distinct aggregation of ``aggs`` (one column type) in one pass over stacked (aggregation, value) rows.

    Per pair, each active stride bucket ``b`` counts in window w for snapshots ``b + 1 <= k < hi``
    (``hi`` from the pair's last time in the bucket), cut at the start of the pair's next active
    bucket, so the intervals of a pair never overlap and their +1 / -1 sum to its presence.

    Every window of a pair-bucket starts at the same ``b + 1``: one row carries the +1 of all of
    them. Uncut, a window ends at ``b + o`` for an offset ``o`` of a short static list (``q + 1``,
    and ``q + 2`` when it has a remainder): one row per offset carries the -1 of every window
    ending there; one row at the next active bucket carries the -1 of every window it cuts. A
    window of at most one step is a point column (:func:`_points`): its +1 only, no -1 row.
    """
    stride = _micros(grid.stride)
    stacked = []
    for i, agg in enumerate(aggs):
        assert agg.column is not None
        keep = F.col(agg.column).isNotNull()
        if agg.filter is not None:
            keep = keep & agg.filter.to_column()
        specs = [sp for sp in plan.specs if sp.aggregation is agg]
        largest = max(_micros(sp.window.length) for sp in specs if sp.window is not None)
        keep = keep & (F.col(_REL) >= F.lit(-largest))
        stacked.append(F.struct(F.lit(i).alias(_WHICH), F.when(keep, F.col(agg.column)).alias(_VALUE)))
    pairs = (
        rows.select(key, _BUCKET, _REL, F.explode(F.array(*stacked)).alias("_s"))
        .select(key, _BUCKET, _REL, "_s.*")
        .where(F.col(_VALUE).isNotNull())
        .groupBy(key, _WHICH, _VALUE, _BUCKET)
        .agg(F.max(_REL).alias(_LAST))
    )
    by_pair = Window.partitionBy(key, _WHICH, _VALUE).orderBy(_BUCKET)
    next_lo = F.col("_next_lo")
    pairs = pairs.select(key, _WHICH, _BUCKET, _LAST, (F.lead(_BUCKET).over(by_pair) + F.lit(1)).alias("_next_lo"))
    bucket = F.col(_BUCKET)
    lo = bucket + F.lit(1)
    # Per window, whether the pair-bucket counts in it and the offset of its end (see _emit).
    names: list[str] = []
    columns: list[Column] = []
    # end offset from the bucket -> window name -> -1 when the window ends there, uncut
    ends: dict[int, dict[str, Column]] = {}
    cut: dict[str, Column] = {}
    for i, agg in enumerate(aggs):
        for spec in (sp for sp in plan.specs if sp.aggregation is agg):
            assert spec.window is not None
            n = len(names)
            names.append(spec.name)
            length = _micros(spec.window.length)
            q, r = divmod(length, stride)
            raw = _k_after(F.col(_LAST), length, stride) - bucket  # q + 1, or q + 2 from the last r
            # least() skips a null: a pair's last bucket is cut by nothing.
            hi = F.least(bucket + raw, next_lo)
            live = (F.col(_WHICH) == F.lit(i)) & (hi > lo) & (hi > 0)
            columns += [live.alias(f"_live{n}"), raw.alias(f"_raw{n}")]
            if spec.name in points:
                continue  # counts at lo only: no end row
            live_, raw_ = F.col(f"_live{n}"), F.col(f"_raw{n}")
            # Cut by the next active bucket: every window cut ends in one row at next_lo (a pair's
            # last bucket has none: its cells are null and _emit drops the row).
            cut[spec.name] = F.when(live_ & (bucket + raw_ >= next_lo), F.lit(-1))
            for offset in (q + 1, q + 2) if r else (q + 1,):
                uncut = next_lo.isNull() | (bucket + F.lit(offset) < next_lo)
                ends.setdefault(offset, {})[spec.name] = F.when(live_ & (raw_ == F.lit(offset)) & uncut, F.lit(-1))
    windows = pairs.select(key, _BUCKET, "_next_lo", *columns)

    entries = [(lo, {n: F.when(F.col(f"_live{j}"), F.lit(1)) for j, n in enumerate(names)})]
    if cut:
        entries.append((next_lo, cut))
    entries += [(bucket + F.lit(o), ends[o]) for o in sorted(ends)]
    return _emit(windows, entries, key=key, types=dict.fromkeys(names, "int"), count=grid.count)


def _running(deltas: list[DataFrame], *, key: str, count: int, maxes: set[str], points: set[str]) -> DataFrame:
    """Sum the deltas per (entity, snapshot), run them up per entity, and expand each row to the
    snapshots until the entity's next delta, keeping those where the entity is present. A point
    column is not run up: its sum at a row's snapshot holds there only (null after it)."""
    every = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), deltas)
    names = [c for c in every.columns if c not in (key, _K)]
    per_k = every.groupBy(key, _K).agg(*((F.max(n) if n in maxes else F.sum(n)).alias(n) for n in names))
    by_k = Window.partitionBy(key).orderBy(_K)
    upto = by_k.rowsBetween(Window.unboundedPreceding, 0)

    def run(n: str) -> Column:
        if n in points:
            return F.col(n)
        return (F.max(n) if n in maxes else F.sum(n)).over(upto).alias(n)

    ran = per_k.select(
        key, _K, F.coalesce(F.lead(_K).over(by_k), F.lit(count)).alias("_until"), *(run(n) for n in names)
    )
    present = ran.where(F.col(_PRESENT) > 0)
    out = [n for n in names if n != _PRESENT]
    expanded = present.select(
        key, _K, F.explode(F.sequence(F.col(_K), F.col("_until") - F.lit(1))).alias(SNAPSHOT_INDEX), *out
    )
    return expanded.select(
        key,
        SNAPSHOT_INDEX,
        *(F.when(F.col(SNAPSHOT_INDEX) == F.col(_K), F.col(n)).alias(n) if n in points else F.col(n) for n in out),
    )


def _tiles(rows: DataFrame, sliding: list[FeatureSpec], *, key: str, ts: str, grid: TileGrid) -> DataFrame:
    """The gcd tiles min / max / last need: per (entity, tile), each aggregation's partial ``_t_<agg>``."""
    tile = _floor_div(F.col(_REL), _micros(grid.tile)).alias(_TILE)
    out: dict[str, Column] = {}
    for spec in sliding:
        agg = spec.aggregation
        assert agg is not None and agg.column is not None
        cond = agg.filter.to_column() if agg.filter is not None else F.lit(True)
        value = F.col(agg.column)
        if agg.op == "last":
            out[f"_t_{agg.name}"] = F.max(F.when(cond, F.struct(F.col(ts), value)))
        else:
            out[f"_t_{agg.name}"] = (F.min if agg.op == "min" else F.max)(F.when(cond, value))
    return rows.groupBy(key, tile).agg(*(c.alias(n) for n, c in out.items()))


def _sliding(
    tiles: DataFrame, skeleton: DataFrame, sliding: list[FeatureSpec], *, key: str, grid: TileGrid
) -> DataFrame:
    """min / max / last per window: a range frame over the entity's tiles, read at its snapshot rows."""
    s = grid.tiles_per_stride
    sources = sorted({f"_t_{sp.aggregation.name}" for sp in sliding if sp.aggregation})
    probes = skeleton.select(key, SNAPSHOT_INDEX, (F.col(SNAPSHOT_INDEX) * F.lit(s)).cast("bigint").alias(_TILE))
    both = tiles.select(key, _TILE, *sources, F.lit(None).cast("bigint").alias(SNAPSHOT_INDEX)).unionByName(
        probes, allowMissingColumns=True
    )
    cols = []
    for spec in sliding:
        agg = spec.aggregation
        assert agg is not None and spec.window is not None
        frame = Window.partitionBy(key).orderBy(_TILE).rangeBetween(-grid.tiles(spec.window.length), -1)
        fn = F.min if agg.op == "min" else F.max
        cols.append(fn(f"_t_{agg.name}").over(frame).alias(spec.name))
    return both.select(key, SNAPSHOT_INDEX, *cols).where(F.col(SNAPSHOT_INDEX).isNotNull())


def snapshot_at(partials: DataFrame, *, group: FeatureGroup, grid: TileGrid, index: int) -> DataFrame:
    """Snapshot ``index`` of the grid, with exactly the columns of ``window_aggregates`` at its time."""
    as_of = grid.start + index * grid.stride
    plan = _Plan(group, as_of)
    return partials.where(F.col(SNAPSHOT_INDEX) == F.lit(index)).select(
        F.col(group.entity.join_key), F.lit(as_of.strftime(EVENT_TIME_FORMAT)).alias(EVENT_TIME), *plan.finals()
    )


def all_snapshots(partials: DataFrame, *, group: FeatureGroup, grid: TileGrid) -> DataFrame:
    """Every snapshot of the grid in one DataFrame: the rows :func:`snapshot_at` gives for each
    index, ``event_time`` telling them apart, so all of them can be checked and written in one pass."""
    plan = _Plan(group, grid.start)
    stamps = F.array(*(F.lit(t.strftime(EVENT_TIME_FORMAT)) for t in grid.times))
    # The snapshot time in epoch microseconds, for the finals that read T (days since the last row).
    as_of = F.lit(int(grid.start.timestamp()) * _MICROS) + F.col(SNAPSHOT_INDEX) * F.lit(_micros(grid.stride))
    finals = []
    for spec, final in zip(plan.specs, plan.finals(), strict=True):
        if spec.aggregation is not None and spec.aggregation.op == "days_since_last":
            # windows.whole_days_between with T a column: whole days, rounded down.
            days = F.floor((as_of - F.unix_micros(F.col(spec.name))) / F.lit(86_400 * _MICROS))
            finals.append(days.cast("bigint").alias(spec.name))
        else:
            finals.append(final)
    return partials.select(
        F.col(group.entity.join_key),
        F.element_at(stamps, (F.col(SNAPSHOT_INDEX) + F.lit(1)).cast("int")).alias(EVENT_TIME),
        *finals,
    )
