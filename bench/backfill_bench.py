"""Benchmark P2 (issue 12): 30 daily customer_activity snapshots from tiles vs the single-snapshot path.

Side by side in one process on the same Parquet files (60 days of events before the last
snapshot, so the first snapshot's 30-day window and look-back are full):

* ``one snapshot``: ``window_aggregates`` at T1, what one ``build-features`` run computes;
* ``30 single-snapshot runs``: the same at each of the 30 snapshot times;
* ``backfill (tiles)``: ``backfill_partials`` once (1h tiles: the gcd of 1d step, 1h..30d
  windows and the 1d look-back), then each of the 30 snapshots with ``snapshot_at``.

Every timing fully materialises every snapshot (Spark's ``noop`` sink) and reads the files from
scratch. Before timing, at the smallest size, the first, a middle and the last snapshot of the
backfill are checked against the single-snapshot plan (row count and the sum of every feature);
tests/backfill/ checks every value against DuckDB. Transform only: validation and
the offline writes cost the same per snapshot on both paths and are not part of these figures.

    python bench/backfill_bench.py                       # 1M and 10M events -> bench/BACKFILL_RESULTS.md
    python bench/backfill_bench.py --sizes 1000000       # quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_clickstream  # noqa: E402
from run_bench import spark_session  # noqa: E402

from features.groups.customer_activity import customer_activity  # noqa: E402
from features.transform.tiles import backfill_partials, snapshot_at, snapshot_times, tile_grid  # noqa: E402
from features.transform.windows import window_aggregates  # noqa: E402

T1 = datetime(2026, 10, 31, tzinfo=UTC)
SNAPSHOTS = 30
LOOKBACK = timedelta(days=1)
HISTORY_DAYS = 60
TIMES = snapshot_times(T1 - (SNAPSHOTS - 1) * timedelta(days=1), T1, timedelta(days=1))
GRID = tile_grid(customer_activity, TIMES, dropout_lookback=LOOKBACK)
#: The snapshots checked against the single-snapshot plan before timing: the first, a middle one, the last.
CHECKED = (0, SNAPSHOTS // 2, SNAPSHOTS - 1)


def data(size: int) -> str:
    """``size`` events over the 60 days before T1 (the generator's own history is 45 days)."""
    gen_clickstream.HISTORY_DAYS = HISTORY_DAYS
    return gen_clickstream.generate(size, str(HERE / "data" / f"backfill_events_{size}"), as_of=T1)


def single(df: DataFrame, as_of: datetime) -> DataFrame:
    return window_aggregates(df, group=customer_activity, as_of=as_of, dropout_lookback=LOOKBACK)


def noop(df: DataFrame) -> None:
    df.write.format("noop").mode("overwrite").save()


def checksum(df: DataFrame) -> tuple[int, int]:
    numeric = [c for c in df.columns if c not in ("customer_id", "event_time")]
    row = df.select(F.count("*"), sum((F.sum(c) for c in numeric), F.lit(0))).collect()[0]
    return int(row[0]), int(row[1])


def runs(spark: SparkSession, path: str) -> dict[str, Callable[[], object]]:
    def read() -> DataFrame:
        return spark.read.parquet(path)

    def one() -> None:
        noop(single(read(), T1))

    def thirty() -> None:
        for as_of in TIMES:
            noop(single(read(), as_of))

    def tiles() -> None:
        partials = backfill_partials(read(), group=customer_activity, grid=GRID, dropout_lookback=LOOKBACK).persist()
        for k in range(SNAPSHOTS):
            noop(snapshot_at(partials, group=customer_activity, grid=GRID, index=k))
        partials.unpersist()

    return {"one snapshot (T1)": one, f"{SNAPSHOTS} single-snapshot runs": thirty, "backfill (tiles)": tiles}


def check(spark: SparkSession, path: str) -> None:
    df = spark.read.parquet(path)
    partials = backfill_partials(df, group=customer_activity, grid=GRID, dropout_lookback=LOOKBACK).persist()
    for k in CHECKED:
        as_of = TIMES[k]
        got = checksum(snapshot_at(partials, group=customer_activity, grid=GRID, index=k))
        want = checksum(single(df, as_of))
        if got != want:
            raise SystemExit(f"backfill disagrees with the single-snapshot plan at {as_of}: {got} != {want}")
    partials.unpersist()
    print(f"checked: backfill snapshots {list(CHECKED)} match the single-snapshot plan", flush=True)


def timed(fn: Callable[[], object], repeats: int, *, warm_up: bool = True) -> list[float]:
    if warm_up:  # JIT, file cache, planner caches
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated event counts")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per plan (median reported)")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "BACKFILL_RESULTS.md"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    spark = spark_session(args.shuffle_partitions)
    spark.sparkContext.setLogLevel("ERROR")
    results: dict[int, dict[str, list[float]]] = {}
    for n, size in enumerate(sizes):
        path = data(size)
        if n == 0:
            check(spark, path)
        results[size] = {}
        for name, run in runs(spark, path).items():
            # The 30 runs take long and are 30 warm runs of the plan just warmed up: one run, no warm-up.
            many = name.startswith(str(SNAPSHOTS))
            results[size][name] = timed(run, 1 if many else args.repeats, warm_up=not many)
            print(f"{size:>11,} events  {name:<28} median {statistics.median(results[size][name]):7.2f}s", flush=True)
    spark.stop()
    write(Path(args.out), results, args)
    print(f"results written to {args.out}")
    return 0


def write(out: Path, results: dict[int, dict[str, list[float]]], args: argparse.Namespace) -> None:
    now = datetime.now(tz=UTC)
    lines = [
        "# Backfill benchmark (P2)",
        "",
        f"Generated by `make bench-backfill` (`bench/backfill_bench.py`) on {now:%Y-%m-%d %H:%M} UTC, 2 cores, "
        f"Python {platform.python_version()}, pyspark {pyspark.__version__}, duckdb {duckdb.__version__}.",
        f"{SNAPSHOTS} daily customer_activity snapshots ({TIMES[0]:%Y-%m-%d} .. {TIMES[-1]:%Y-%m-%d}) over "
        f"{HISTORY_DAYS} days of events (bench/gen_clickstream.py); "
        f"tiles of {int(GRID.tile.total_seconds()) // 60} min; all plans in the same run, "
        "every snapshot fully materialised (noop sink), files read from scratch each time; median of "
        f"{args.repeats} runs after a warm-up (the {SNAPSHOTS} single-snapshot runs: 1 run, right after the "
        "warmed-up one-snapshot plan). Transform only: "
        "validation and offline writes are per snapshot on both paths and not included. Before timing, "
        f"backfill snapshots {list(CHECKED)} were checked against the single-snapshot plan at the smallest size "
        "(row count and the sum of every feature).",
        "",
        "| events | plan | median s | runs (s) |",
        "|---:|---|---:|---|",
    ]
    for size, by_plan in results.items():
        for name, times in by_plan.items():
            runs_text = ", ".join(f"{t:.2f}" for t in times)
            lines.append(f"| {size:,} | {name} | {statistics.median(times):.2f} | {runs_text} |")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", f"Load average when the run ended (1, 5, 15 min): {load} on 2 cores.", "", "## Targets", ""]
    for size, by_plan in results.items():
        one = statistics.median(by_plan["one snapshot (T1)"])
        many = statistics.median(by_plan[f"{SNAPSHOTS} single-snapshot runs"])
        tiles = statistics.median(by_plan["backfill (tiles)"])
        lines.append(
            f"- {size:,} events: backfill / one snapshot = **{tiles / one:.2f}x** (target <= 2.5x); "
            f"{SNAPSHOTS} single runs / backfill = **{many / tiles:.2f}x faster** (target >= 4x)"
        )
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
