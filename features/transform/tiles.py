"""Many snapshots of a windowed group at once, from per-entity partial aggregates (tiles).

A backfill wants the snapshots ``T_k = T0 + k * stride`` for ``k = 0 .. K-1``, each equal to
:func:`features.transform.windows.window_aggregates` at ``T_k``. Computing each one separately
costs snapshots x window; this module reads the rows once and derives every snapshot from
partial aggregates (docs/backfill.md has the design and its cost).

Time is cut into tiles ``[T0 + j * tile, T0 + (j + 1) * tile)`` (``j`` may be negative), with
``tile`` the greatest common divisor of the stride, every window and the drop-out look-back, so
every window of every snapshot is a whole number of tiles: snapshot ``k`` sits at tile position
``k * s`` (``s = stride / tile``) and window ``w`` (``W`` tiles) covers tiles ``k*s - W <= j < k*s``.
Read the other way, tile ``j`` counts in window ``W`` for the snapshots
``floor(j / s) + 1 <= k < floor((j + W) / s) + 1``: an interval of snapshot indexes. Everything
below turns intervals into +x / -x deltas at their two ends and takes a running sum per entity:

* counts, sums and the two halves of an average: a tile's value is added at the first snapshot
  its window reaches and subtracted at the first one it leaves; deltas are summed per
  (entity, snapshot) before the running sum, so that pass sees at most entities x snapshots rows;
* exact distinct counts: for each (entity, value) pair, its active stride buckets give intervals
  whose starts strictly increase and whose ends never decrease, so merging an interval with its
  neighbours only needs ``lag`` / ``lead``: +1 where a merged run starts, -1 where it ends;
  the running sum is then the number of distinct values in the window (cost ~ pairs x active
  buckets x windows, independent of the window's length);
* which entities a snapshot holds (every entity with a row in its largest window plus the
  look-back): the same intervals for any row, merged into runs and expanded to the snapshots
  they cover, so that expansion produces exactly the output rows;
* lifetime aggregations (``days_since_last``): the newest matching time of each tile from the
  first snapshot after it on, as a running max over all history;
* ``min`` / ``max`` / ``last`` are not invertible: a range frame over the tile rows of the entity
  (``W`` tiles preceding) evaluated at the snapshot rows; its cost grows with the tiles in a
  window, which is why the invertible aggregations avoid it.

The result holds, per (entity, snapshot), the same partial columns the single-snapshot plan
finishes (``windows._Plan``), so :func:`snapshot_at` applies the very same final expressions:
same columns, types and order as ``window_aggregates``.
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
_LAST_TILE = "_last_tile"
_K = "_k"
_LO, _HI = "_lo", "_hi"
_KIND = "_kind"  # 0: a delta row, 1: an output row (deltas at the same k come first)
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
    """The tiles for ``times`` (evenly spaced, see :func:`snapshot_times`) of ``group``.

    The tile is the greatest common divisor of the stride, the windows and the look-back, so a
    1h window with daily snapshots gives 1h tiles: any stride works for any window.
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
    s = grid.tiles_per_stride
    band = grid.tiles(largest.length + dropout_lookback)
    end = grid.start + (grid.count - 1) * grid.stride
    origin = int(grid.start.timestamp()) * _MICROS
    rows = df.where(F.col(ts) < F.timestamp_micros(F.lit(int(end.timestamp()) * _MICROS)))
    start = read_start(group, grid, dropout_lookback)
    if start is not None:
        rows = rows.where(F.col(ts) >= F.timestamp_micros(F.lit(int(start.timestamp()) * _MICROS)))
    rows = rows.withColumn(_TILE, _floor_div(F.unix_micros(F.col(ts)) - F.lit(origin), _micros(grid.tile)))

    specs = [spec for spec in plan.specs if spec.aggregation is not None]
    invertible = [sp for sp in specs if sp.aggregation and sp.aggregation.op in ("count", "sum", "avg")]
    sliding = [sp for sp in specs if sp.aggregation and sp.aggregation.op in ("min", "max", "last")]
    lifetime = [sp for sp in specs if sp.aggregation and sp.aggregation.op == "days_since_last"]
    distinct = list(
        dict.fromkeys(sp.aggregation for sp in specs if sp.aggregation and sp.aggregation.op == "count_distinct")
    )

    tile_cols = {**_tile_partials(invertible, ts), **_tile_partials(sliding, ts), **_tile_partials(lifetime, ts)}
    # Read by three branches of one plan: Spark reuses its exchange, so it is computed once.
    tiles = rows.groupBy(key, _TILE).agg(*(c.alias(n) for n, c in tile_cols.items()))

    skeleton = _present(tiles, key=key, s=s, band=band, count=grid.count)
    deltas = [
        _invertible_deltas(tiles, invertible, lifetime, key=key, grid=grid),
        *(_distinct_deltas(rows, agg, plan, key=key, grid=grid) for agg in distinct),
    ]
    merged = _running(skeleton, [d for d in deltas if d is not None], key=key, invertible=invertible, lifetime=lifetime)
    if sliding:
        merged = merged.join(_sliding(tiles, skeleton, sliding, key=key, grid=grid), [key, SNAPSHOT_INDEX], "left")
    return merged


def _micros(length: timedelta) -> int:
    return _seconds(length) * _MICROS


def _tile_partials(specs: list[FeatureSpec], ts: str) -> dict[str, Column]:
    """Per tile, the partial of each aggregation (not yet per window): ``_t_<partial name>``."""
    out: dict[str, Column] = {}
    for spec in specs:
        agg = spec.aggregation
        assert agg is not None
        cond = agg.filter.to_column() if agg.filter is not None else F.lit(True)
        value = F.col(agg.column) if agg.column else None
        base = f"_t_{agg.name}"
        if agg.op == "count":
            out[base] = F.count(F.when(cond, F.lit(1)))
        elif agg.op in ("sum", "avg"):
            assert value is not None
            out[f"{base}__sum"] = F.sum(F.when(cond, value))
            if agg.op == "avg":
                out[f"{base}__n"] = F.count(F.when(cond, value))
        elif agg.op in ("min", "max"):
            assert value is not None
            out[base] = (F.min if agg.op == "min" else F.max)(F.when(cond, value))
        elif agg.op == "last":
            assert value is not None
            out[base] = F.max(F.when(cond, F.struct(F.col(ts), value)))
        elif agg.op == "days_since_last":
            out[base] = F.max(F.when(cond, F.col(ts)))
    return out


def _partial_names(spec: FeatureSpec) -> list[tuple[str, str]]:
    """(partial column of the plan, tile column it comes from) for one invertible feature."""
    agg = spec.aggregation
    assert agg is not None
    base = f"_t_{agg.name}"
    if agg.op == "count":
        return [(spec.name, base)]
    if agg.op == "sum":
        return [(spec.name, f"{base}__sum")]
    return [(f"{spec.name}__sum", f"{base}__sum"), (f"{spec.name}__n", f"{base}__n")]


def _k_after(tile: Column, offset: int, s: int) -> Column:
    """The first snapshot index whose position ``k * s`` is past ``tile + offset``."""
    return _floor_div(tile + F.lit(offset), s) + F.lit(1)


def _present(tiles: DataFrame, *, key: str, s: int, band: int, count: int) -> DataFrame:
    """(entity, snapshot index) for every snapshot holding the entity: a row in its band."""
    buckets = (
        tiles.where(F.col(_TILE) >= F.lit(-band))
        .groupBy(key, _floor_div(F.col(_TILE), s).alias(_BUCKET))
        .agg(F.max(_TILE).alias(_LAST_TILE))
        .select(key, _BUCKET, (F.col(_BUCKET) + 1).alias(_LO), _k_after(F.col(_LAST_TILE), band, s).alias(_HI))
    )
    by_bucket = Window.partitionBy(key).orderBy(_BUCKET)
    starts = buckets.select(
        key,
        _BUCKET,
        _LO,
        _HI,
        F.when(F.lag(_HI).over(by_bucket) >= F.col(_LO), F.lit(0)).otherwise(F.lit(1)).alias("_starts"),
    )
    runs = (
        starts.select(
            key, _LO, _HI, F.sum("_starts").over(by_bucket.rowsBetween(Window.unboundedPreceding, 0)).alias("_run")
        )
        .groupBy(key, "_run")
        .agg(F.greatest(F.min(_LO), F.lit(0)).alias(_LO), F.least(F.max(_HI), F.lit(count)).alias(_HI))
        .where(F.col(_LO) < F.col(_HI))
    )
    return runs.select(key, F.explode(F.sequence(F.col(_LO), F.col(_HI) - 1)).alias(SNAPSHOT_INDEX))


def _clamp(k: Column) -> Column:
    """Deltas before the first snapshot apply from it on."""
    return F.greatest(k, F.lit(0))


def _invertible_deltas(
    tiles: DataFrame,
    invertible: list[FeatureSpec],
    lifetime: list[FeatureSpec],
    *,
    key: str,
    grid: TileGrid,
) -> DataFrame | None:
    """+x where a tile enters a window, -x where it leaves; the lifetime max from the snapshot after it."""
    if not invertible and not lifetime:
        return None
    s = grid.tiles_per_stride
    tile = F.col(_TILE)
    # partial column -> (its window in tiles, or None for a lifetime max; the tile column it comes from)
    columns: dict[str, tuple[int | None, str]] = {}
    for spec in invertible:
        assert spec.window is not None
        for name, source in _partial_names(spec):
            columns[name] = (grid.tiles(spec.window.length), source)
    for spec in lifetime:
        assert spec.aggregation is not None
        columns[spec.name] = (None, f"_t_{spec.aggregation.name}")
    types = {name: tiles.schema[source].dataType.simpleString() for name, (_, source) in columns.items()}

    def value(name: str) -> Column:
        """The tile's value, null once it has left its window for every snapshot (old history)."""
        width, source = columns[name]
        if width is None:
            return F.col(source)
        return F.when(_k_after(tile, width, s) > 0, F.col(source))

    entries = [F.struct(_clamp(_k_after(tile, 0, s)).alias(_K), *(value(n).alias(n) for n in columns))]
    for width in sorted({w for w, _ in columns.values() if w is not None}):
        entries.append(
            F.struct(
                _clamp(_k_after(tile, width, s)).alias(_K),
                *((-value(n) if w == width else F.lit(None).cast(types[n])).alias(n) for n, (w, _) in columns.items()),
            )
        )
    exploded = tiles.select(key, F.explode(F.array(*entries)).alias("_d")).select(key, "_d.*")
    return exploded.where(F.col(_K) < F.lit(grid.count)).withColumnRenamed(_K, SNAPSHOT_INDEX)


def _distinct_deltas(rows: DataFrame, agg: Aggregation, plan: _Plan, *, key: str, grid: TileGrid) -> DataFrame:
    """+1 where a merged run of an (entity, value) pair starts in window w, -1 where it ends."""
    assert agg.column is not None
    s = grid.tiles_per_stride
    specs = [sp for sp in plan.specs if sp.aggregation is agg]
    keep = F.col(agg.column).isNotNull()
    if agg.filter is not None:
        keep = keep & agg.filter.to_column()
    largest = max(sp.window.seconds for sp in specs if sp.window is not None)
    keep = keep & (F.col(_TILE) >= F.lit(-grid.tiles(timedelta(seconds=largest))))
    pairs = (
        rows.where(keep)
        .groupBy(key, agg.column, _floor_div(F.col(_TILE), s).alias(_BUCKET))
        .agg(F.max(_TILE).alias(_LAST_TILE))
    )
    by_pair = Window.partitionBy(key, agg.column).orderBy(_BUCKET)
    # Neighbours first: window functions cannot sit inside the generator.
    ends = {
        sp.name: _k_after(F.col(_LAST_TILE), grid.tiles(sp.window.length), s) for sp in specs if sp.window is not None
    }
    pairs = pairs.select(
        key,
        (F.col(_BUCKET) + 1).alias(_LO),
        (F.lead(_BUCKET).over(by_pair) + 1).alias("_next_lo"),
        *(end.alias(f"_hi_{name}") for name, end in ends.items()),
        *(F.lag(end).over(by_pair).alias(f"_prev_hi_{name}") for name, end in ends.items()),
    )
    lo, next_lo = F.col(_LO), F.col("_next_lo")
    entries = []
    for spec in specs:
        hi, prev_hi = F.col(f"_hi_{spec.name}"), F.col(f"_prev_hi_{spec.name}")
        start = F.when(prev_hi.isNull() | (lo > prev_hi), F.lit(1))
        stop = F.when(next_lo.isNull() | (hi < next_lo), F.lit(-1))
        for k, delta in ((lo, start), (hi, stop)):
            fields = [(delta if o is spec else F.lit(None)).cast("bigint").alias(o.name) for o in specs]
            entries.append(F.struct(_clamp(k).alias(_K), *fields))
    exploded = pairs.select(key, F.explode(F.array(*entries)).alias("_d")).select(key, "_d.*")
    names = [sp.name for sp in specs]
    return exploded.where((F.col(_K) < F.lit(grid.count)) & F.coalesce(*(F.col(n) for n in names)).isNotNull()).select(
        key, F.col(_K).alias(SNAPSHOT_INDEX), *(F.col(n) for n in names)
    )


def _running(
    skeleton: DataFrame,
    deltas: list[DataFrame],
    *,
    key: str,
    invertible: list[FeatureSpec],
    lifetime: list[FeatureSpec],
) -> DataFrame:
    """Sum the deltas per (entity, snapshot), then run them up per entity; keep the output rows."""
    out = skeleton.select(key, SNAPSHOT_INDEX)
    if not deltas:
        return out
    every = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), deltas)
    maxes = {sp.name for sp in lifetime}
    names = [c for c in every.columns if c not in (key, SNAPSHOT_INDEX)]
    per_k = every.groupBy(key, SNAPSHOT_INDEX).agg(*((F.max(n) if n in maxes else F.sum(n)).alias(n) for n in names))
    both = per_k.withColumn(_KIND, F.lit(0)).unionByName(skeleton.withColumn(_KIND, F.lit(1)), allowMissingColumns=True)
    upto = Window.partitionBy(key).orderBy(SNAPSHOT_INDEX, _KIND).rowsBetween(Window.unboundedPreceding, 0)
    ran = both.select(
        key,
        SNAPSHOT_INDEX,
        _KIND,
        *((F.max(n) if n in maxes else F.sum(n)).over(upto).alias(n) for n in names),
    )
    return ran.where(F.col(_KIND) == 1).drop(_KIND)


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
