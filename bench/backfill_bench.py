"""Benchmark P2 (issue 12): 30 daily customer_activity snapshots from tiles vs the single-snapshot path.

Side by side in one process on the same Parquet files (60 days of events before the last
snapshot, so the first snapshot's 30-day window and look-back are full):

* ``one snapshot``: ``window_aggregates`` at T1, what one ``build-features`` run computes;
* ``30 single-snapshot runs``: the same at each of the 30 snapshot times;
* ``backfill (tiles)``: ``backfill_partials`` (day buckets, the last hour of each for the 1h
  window) and ``all_snapshots``: every snapshot's rows in one DataFrame, written in one job, as
  the backfill command writes them.

Every timing fully materialises every snapshot (Spark's ``noop`` sink) and reads the files from
scratch. With ``--single-runs N`` (N < 30) only N evenly spread single-snapshot runs are timed
and the 30-run time is their time scaled by 30 / N, labelled as an estimate. Before timing, at the
smallest size, the first, a middle and the last snapshot of the
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
from features.transform.tiles import (  # noqa: E402
    all_snapshots,
    backfill_partials,
    snapshot_at,
    snapshot_times,
    tile_grid,
)
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


def runs(spark: SparkSession, path: str, single_runs: int) -> dict[str, Callable[[], object]]:
    def read() -> DataFrame:
        return spark.read.parquet(path)

    def one() -> None:
        noop(single(read(), T1))

    chosen = [TIMES[round(i * (SNAPSHOTS - 1) / max(1, single_runs - 1))] for i in range(single_runs)]

    def thirty() -> None:
        for as_of in chosen:
            noop(single(read(), as_of))

    def tiles() -> None:
        partials = backfill_partials(read(), group=customer_activity, grid=GRID, dropout_lookback=LOOKBACK)
        noop(all_snapshots(partials, group=customer_activity, grid=GRID))

    return {"one snapshot (T1)": one, _many(single_runs): thirty, "backfill (tiles)": tiles}


def _many(single_runs: int) -> str:
    if single_runs >= SNAPSHOTS:
        return f"{SNAPSHOTS} single-snapshot runs"
    return f"{single_runs} single-snapshot runs"


def check(spark: SparkSession, path: str) -> None:
    df = spark.read.parquet(path)
    partials = backfill_partials(df, group=customer_activity, grid=GRID, dropout_lookback=LOOKBACK).persist()
    every = all_snapshots(partials, group=customer_activity, grid=GRID)
    for k in CHECKED:
        as_of = TIMES[k]
        stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
        got = checksum(snapshot_at(partials, group=customer_activity, grid=GRID, index=k))
        in_one = checksum(every.where(F.col("event_time") == stamp))
        want = checksum(single(df, as_of))
        if not got == in_one == want:
            raise SystemExit(f"backfill disagrees with the single-snapshot plan at {as_of}: {got}, {in_one} != {want}")
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
    parser.add_argument(
        "--single-runs",
        default="30",
        help="per size, how many of the 30 single-snapshot runs to time (fewer: scaled to 30, an estimate)",
    )
    parser.add_argument("--out", default=str(HERE / "BACKFILL_RESULTS.md"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    singles = [int(n) for n in args.single_runs.split(",")]
    singles += [singles[-1]] * (len(sizes) - len(singles))
    spark = spark_session(args.shuffle_partitions)
    spark.sparkContext.setLogLevel("ERROR")
    results: dict[int, dict[str, list[float]]] = {}
    for n, size in enumerate(sizes):
        path = data(size)
        if n == 0:
            check(spark, path)
        results[size] = {}
        for name, run in runs(spark, path, min(SNAPSHOTS, singles[n])).items():
            # The 30 runs take long and are 30 warm runs of the plan just warmed up: one run, no warm-up.
            many = "single-snapshot runs" in name
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
        "day buckets (the 1h window from each day's last hour); all plans in the same run, "
        "every snapshot fully materialised (noop sink; the backfill writes all 30 in one job), "
        "files read from scratch each time; median of "
        f"{args.repeats} runs after a warm-up (the {SNAPSHOTS} single-snapshot runs: 1 run, right after the "
        "warmed-up one-snapshot plan). Transform only: "
        "validation and offline writes are not included. Before timing, "
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
        (name,) = [p for p in by_plan if "single-snapshot runs" in p]
        timed_runs = int(name.split()[0])
        many = statistics.median(by_plan[name]) * SNAPSHOTS / timed_runs
        tiles = statistics.median(by_plan["backfill (tiles)"])
        estimate = (
            ""
            if timed_runs == SNAPSHOTS
            else f" (**estimate**: {timed_runs} runs timed, scaled by {SNAPSHOTS}/{timed_runs})"
        )
        lines.append(
            f"- {size:,} events: backfill / one snapshot = **{tiles / one:.2f}x** (target <= 2.5x); "
            f"{SNAPSHOTS} single runs / backfill = **{many / tiles:.2f}x faster** (target >= 4x){estimate}"
        )
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
