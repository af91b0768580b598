"""Benchmark: one customer_activity snapshot, our plan vs DuckDB and two naive Spark plans.

All engines run side by side in one process run on the same files, so the ratios hold even on a
shared, noisy machine; absolute seconds are reported but only the ratios are meant to be compared.
Every timing fully materialises its result (Spark's ``noop`` sink, DuckDB's CREATE TABLE AS): a
bare ``count()`` would let both engines prune the aggregates away and measure nothing.

    python bench/run_bench.py                  # 1M and 10M events -> bench/RESULTS.md
    python bench/run_bench.py --sizes 1000000  # quick look
    python bench/run_bench.py --sizes 1000000,10000000,50000000 --naive-up-to 10000000  # P6 scaling

Before timing, each engine's result at the smallest size is checked against DuckDB's (a fast
wrong answer is not a result).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from pyspark.sql import DataFrame, SparkSession

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from duckdb_activity import best_formulation  # noqa: E402
from gen_clickstream import generate  # noqa: E402
from spark_naive import naive_countdistinct_one_groupby, naive_groupby_per_window_joined  # noqa: E402

from features.groups.customer_activity import customer_activity  # noqa: E402
from features.transform.windows import snapshot  # noqa: E402

AS_OF = datetime(2026, 10, 31, tzinfo=UTC)
LOOKBACK = timedelta(days=1)


def spark_session(shuffle_partitions: int) -> SparkSession:
    return (
        SparkSession.builder.master("local[2]")
        .appName("bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "8g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .getOrCreate()
    )


def ours(df: DataFrame) -> DataFrame:
    return snapshot(df, group=customer_activity, as_of=AS_OF, dropout_lookback=LOOKBACK)


SPARK_PLANS: dict[str, Callable[[DataFrame], DataFrame]] = {
    "spark (this project)": ours,
    "spark naive: countDistinct per window, one groupBy": (
        lambda df: naive_countdistinct_one_groupby(df, AS_OF, LOOKBACK)
    ),
    "spark naive: one groupBy per window, joined": lambda df: naive_groupby_per_window_joined(df, AS_OF, LOOKBACK),
}


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: JIT, file cache, planner caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def duckdb_run(path: str) -> Callable[[], object]:
    def run() -> object:
        con = duckdb.connect()
        con.execute("SET threads = 2")
        con.execute("SET TimeZone = 'UTC'")
        best_formulation(con, path, AS_OF, LOOKBACK)
        con.close()
        return None

    return run


def checksum_spark(df: DataFrame) -> tuple[int, int]:
    from pyspark.sql import functions as F

    numeric = [c for c in df.columns if c not in ("customer_id", "event_time")]
    row = df.select(F.count("*"), sum((F.sum(c) for c in numeric), F.lit(0))).collect()[0]
    return int(row[0]), int(row[1])


def checksum_duckdb(path: str) -> tuple[int, int]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    best_formulation(con, path, AS_OF, LOOKBACK)
    cols = [r[0] for r in con.execute("DESCRIBE activity").fetchall() if r[0] not in ("customer_id", "event_time")]
    total = " + ".join(f"SUM({c})" for c in cols)
    n, s = con.execute(f"SELECT COUNT(*), {total} FROM activity").fetchone()  # type: ignore[misc]
    return int(n), int(s)


def make_run_seconds() -> float | None:
    """Wall time of `make run` with the venv and sample data already in place."""
    subprocess.run(["make", "sample"], cwd=HERE.parent, check=True, capture_output=True)
    start = time.perf_counter()
    done = subprocess.run(["make", "run"], cwd=HERE.parent, capture_output=True, check=False)
    return time.perf_counter() - start if done.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated event counts")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per engine (median reported)")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--skip-make-run", action="store_true")
    parser.add_argument(
        "--naive-up-to", type=int, default=None, help="time the naive plans only up to this many events"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    spark = spark_session(args.shuffle_partitions)
    spark.sparkContext.setLogLevel("ERROR")
    results: dict[int, dict[str, list[float]]] = {}
    for n, size in enumerate(sizes):
        path = generate(size, str(HERE / "data" / f"events_{size}"), as_of=AS_OF)  # a Parquet glob
        df = spark.read.parquet(path)
        if n == 0:
            want = checksum_duckdb(path)
            for name, plan in SPARK_PLANS.items():
                got = checksum_spark(plan(df))
                if got != want:
                    raise SystemExit(f"{name} disagrees with DuckDB at {size} events: {got} != {want}")
            print(f"checked: every plan matches DuckDB at {size:,} events ({want[0]:,} customers)", flush=True)
        results[size] = {}
        runs: dict[str, Callable[[], object]] = {"duckdb (best formulation)": duckdb_run(path)}
        for name, plan in SPARK_PLANS.items():
            if name != "spark (this project)" and args.naive_up_to is not None and size > args.naive_up_to:
                continue
            runs[name] = lambda plan=plan, path=path: (
                plan(spark.read.parquet(path)).write.format("noop").mode("overwrite").save()
            )
        for name, run in runs.items():
            results[size][name] = timed(run, args.repeats)
            print(f"{size:>11,} events  {name:<52} median {statistics.median(results[size][name]):7.2f}s", flush=True)
    spark.stop()
    make_run = None if args.skip_make_run else make_run_seconds()
    write_results(Path(args.out), results, make_run, args.repeats)
    print(f"results written to {args.out}")
    return 0


def write_results(out: Path, results: dict[int, dict[str, list[float]]], make_run: float | None, repeats: int) -> None:
    ours_name = "spark (this project)"
    duck = "duckdb (best formulation)"
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` (`bench/run_bench.py`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pyspark {__import__('pyspark').__version__}, duckdb {duckdb.__version__}.",
        f"One customer_activity snapshot (4 windows, 20 features, exact distinct counts) over Parquet; "
        f"median of {repeats} runs after a warm-up; all engines in the same run; results fully materialised.",
        "",
        "| events | engine | median s | runs (s) | x DuckDB |",
        "|---:|---|---:|---|---:|",
    ]
    for size, engines in results.items():
        base = statistics.median(engines[duck])
        for name, times in engines.items():
            med = statistics.median(times)
            runs = ", ".join(f"{t:.2f}" for t in times)
            lines.append(f"| {size:,} | {name} | {med:.2f} | {runs} | {med / base:.2f} |")
    lines += ["", "## Targets", ""]
    sizes = sorted(results)
    for size in [n for n in sizes if n >= 10_000_000] or sizes[-1:]:
        ratio = statistics.median(results[size][ours_name]) / statistics.median(results[size][duck])
        lines.append(f"- snapshot at {size:,} events vs DuckDB: **{ratio:.2f}x** (target <= 3x at 10M)")
    for name in SPARK_PLANS:
        naive_at = max((n for n in sizes if name in results[n]), default=None)
        if name != ours_name and naive_at is not None:
            other = statistics.median(results[naive_at][name])
            mine = statistics.median(results[naive_at][ours_name])
            lines.append(f"- vs {name} at {naive_at:,} events: {other / mine:.2f}x faster (target > 1x)")
    for size in sizes[1:]:
        scale = statistics.median(results[size][ours_name]) / statistics.median(results[sizes[0]][ours_name])
        lines.append(
            f"- time({size:,}) / time({sizes[0]:,}): **{scale:.2f}** (target <= {size // sizes[0]}: linear or better)"
        )
    if make_run is not None:
        lines.append(f"- `make run` after set-up: **{make_run:.1f} s** wall (target <= 60 s)")
    out.write_text("\n".join(lines) + "\n")
    (out.with_suffix(".json")).write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
