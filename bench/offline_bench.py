"""Benchmark: the offline write of one customer_activity snapshot, Parquet layout vs Delta table.

Both formats run side by side in one process on the same cached snapshot (100k entities by
default, the group's 20 features), alternating which goes first, so the ratio holds on a shared,
noisy machine; absolute seconds are reported but only the Delta/Parquet ratio is meant to be
compared. Timed per format: the first write of T into an empty store, and a rerun of the same T
(which replaces it). A second size shows how much of Delta's extra time is per write (the
transaction log) rather than per row; "load table state" times Delta reading a small table's log
and nothing else (a one-row read).

    python bench/offline_bench.py                          # -> bench/OFFLINE_RESULTS.md
    python bench/offline_bench.py --entities 100000 --repeats 1   # quick look
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.groups.customer_activity import customer_activity
from features.load.offline import write_snapshot
from features.session import DELTA_SETTINGS, delta_packages

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 10, 31, tzinfo=UTC)
FORMATS = ("parquet", "delta")
CASES = ("first write", "rerun of T")


def spark_session() -> SparkSession:
    return (
        SparkSession.builder.master("local[2]")
        .appName("offline-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.jars.packages", ",".join(delta_packages()))
        .config(map=DELTA_SETTINGS)
        .config("spark.databricks.delta.snapshotPartitions", "4")
        .getOrCreate()
    )


def snapshot(spark: SparkSession, entities: int) -> DataFrame:
    """A customer_activity snapshot's shape: the join key, event_time and every feature (counts)."""
    features = [
        (F.abs(F.hash(F.col("id"), F.lit(i))) % (10 + 10 * i)).cast("long").alias(f.name)
        for i, f in enumerate(customer_activity.features)
    ]
    df = spark.range(entities).select(
        F.format_string("C%07d", F.col("id")).alias(customer_activity.entity.join_key),
        F.lit(AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")).alias("event_time"),
        *features,
    )
    return df.repartition(4).cache()


def write(spark: SparkSession, df: DataFrame, root: Path, fmt: str, run: str, rows: int) -> float:
    start = time.perf_counter()
    write_snapshot(
        spark,
        df,
        root=str(root),
        group=customer_activity.name,
        as_of=AS_OF,
        run_id=run,
        rows=rows,
        write_time=datetime.now(UTC),
        format=fmt,  # type: ignore[arg-type]
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", default="100000,1000000", help="snapshot sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "OFFLINE_RESULTS.md")
    args = parser.parse_args()

    sizes = [int(n) for n in args.entities.split(",")]
    spark = spark_session()
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="offline-bench-"))
    times: dict[tuple[int, str, str], list[float]] = {}
    state: dict[int, list[float]] = {}
    counted: dict[int, int] = {}
    try:
        for size in sizes:
            df = snapshot(spark, size)
            rows = counted[size] = df.count()
            for fmt in FORMATS:  # warm-up: classes, Delta's log code, the file cache
                write(spark, df, work / f"warm-{size}-{fmt}", fmt, "warm", rows)
            for rep in range(args.repeats):
                order = FORMATS if rep % 2 == 0 else FORMATS[::-1]
                for fmt in order:
                    root = work / f"{fmt}-{size}-{rep}"
                    for case, run in zip(CASES, ("a", "b"), strict=True):
                        times.setdefault((size, fmt, case), []).append(
                            write(spark, df, root, fmt, f"r{rep}{run}", rows)
                        )
                table = str(work / f"delta-{size}-{rep}" / customer_activity.name / "delta")
                start = time.perf_counter()
                spark.read.format("delta").load(table).limit(1).collect()
                state.setdefault(size, []).append(time.perf_counter() - start)
            df.unpersist()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        spark.stop()

    median = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        "# Offline store write: Parquet layout vs Delta",
        "",
        f"Generated by `bench/offline_bench.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} {platform.processor() or ''} with 2 shared cores, Python {platform.python_version()}, "
        f"pyspark {pyspark.__version__}, {delta_packages()[0]}.",
        f"One customer_activity snapshot ({len(customer_activity.features)} features) per size, cached before "
        f"timing; median of {args.repeats} runs after a warm-up, formats alternating first; local filesystem.",
        "",
        "| entities | case | format | median s | runs (s) |",
        "|---:|---|---|---:|---|",
    ]
    for size in sizes:
        for case in CASES:
            for fmt in FORMATS:
                runs = ", ".join(f"{t:.2f}" for t in times[(size, fmt, case)])
                lines.append(f"| {counted[size]:,} | {case} | {fmt} | {median[(size, fmt, case)]:.2f} | {runs} |")
        runs = ", ".join(f"{t:.2f}" for t in state[size])
        lines.append(
            f"| {counted[size]:,} | load table state | delta | {statistics.median(state[size]):.2f} | {runs} |"
        )
    lines += ["", "## Target: Delta's write <= 1.5x Parquet's", ""]
    for size in sizes:
        for case in CASES:
            ratio = median[(size, "delta", case)] / median[(size, "parquet", case)]
            extra = median[(size, "delta", case)] - median[(size, "parquet", case)]
            verdict = "met" if ratio <= 1.5 else "missed"
            lines.append(
                f"- {counted[size]:,} entities, {case}: Delta / Parquet = **{ratio:.2f}x** ({verdict}); "
                f"Delta's extra time {extra:.2f} s"
            )
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
