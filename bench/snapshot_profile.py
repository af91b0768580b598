"""Where the customer_activity snapshot spends its time: per operator and per stage, beside the floor.

Runs, in one process on the benchmark's Parquet files, DuckDB's best formulation, a bare Spark
scan of the columns the snapshot reads (the floor: Parquet decode of the band, nothing else), and
the snapshot itself; then, for one more run of the snapshot, reads

* the SQL metrics of the executed (adaptive, final) plan: per whole-stage-codegen pipeline its
  task time, per aggregate its build time and peak memory, per exchange its rows, bytes and
  write time, per scan its rows and files;
* the event log of that run: per stage its wall time, summed task run and CPU time, shuffle
  bytes and the peak execution memory of its largest task, and the driver JVM's peak heap
  (local mode: the executors are the driver).

Wall times on a shared machine are noisy; the JVM's CPU seconds beside them are what the
comparison between engines should lean on. Results: bench/SNAPSHOT_PROFILE.md.

    python bench/snapshot_profile.py                     # 10M events
    python bench/snapshot_profile.py --sizes 1000000,10000000
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_clickstream import generate  # noqa: E402
from run_bench import duckdb_run  # noqa: E402

from features.groups.customer_activity import customer_activity  # noqa: E402
from features.transform.windows import snapshot  # noqa: E402

AS_OF = datetime(2026, 10, 31, tzinfo=UTC)
LOOKBACK = timedelta(days=1)
USED = ["customer_id", "session_id", "event_type", "product_id", "event_time"]


def spark_session(shuffle_partitions: int, event_log: str) -> SparkSession:
    return (
        SparkSession.builder.master("local[2]")
        .appName("snapshot-profile")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "8g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", event_log)
        .config("spark.eventLog.rolling.enabled", "false")
        .config("spark.eventLog.compress", "false")
        .config("spark.eventLog.logStageExecutorMetrics", "true")
        .config("spark.executor.metrics.pollingInterval", "200ms")
        .getOrCreate()
    )


class JvmClock:
    """Wall and the JVM process's CPU seconds (all its threads: tasks, GC, JIT) around a call."""

    def __init__(self, spark: SparkSession) -> None:
        self.pid = int(spark._jvm.java.lang.ProcessHandle.current().pid())
        self.tick = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick

    def measure(self, fn: Callable[[], object]) -> tuple[float, float]:
        c0, t0 = self.cpu(), time.perf_counter()
        fn()
        return time.perf_counter() - t0, self.cpu() - c0


def band_scan(df: DataFrame) -> DataFrame:
    """The floor: the rows and columns the snapshot reads, decoded and dropped."""
    ts = F.col("event_time")
    band = AS_OF - timedelta(days=30) - LOOKBACK
    return df.where((ts >= F.lit(band)) & (ts < F.lit(AS_OF))).select(*USED)


def ours(df: DataFrame) -> DataFrame:
    return snapshot(df, group=customer_activity, as_of=AS_OF, dropout_lookback=LOOKBACK)


@dataclass
class Node:
    depth: int
    name: str
    metrics: dict[str, tuple[str, int]] = field(default_factory=dict)


def _children(plan: Any) -> list[Any]:
    kind = plan.getClass().getSimpleName()
    if kind == "AdaptiveSparkPlanExec":
        return [plan.executedPlan()]
    if kind.endswith("QueryStageExec"):
        return [plan.plan()]
    seq = plan.children()
    return [seq.apply(i) for i in range(seq.size())]


def plan_nodes(plan: Any, depth: int = 0) -> list[Node]:
    """The executed plan as a list of nodes (pre-order) with their SQL metrics."""
    node = Node(depth, str(plan.nodeName()))
    it = plan.metrics().iterator()
    while it.hasNext():
        pair = it.next()
        metric = pair._2()
        node.metrics[str(pair._1())] = (str(metric.metricType()), int(metric.value()))
    nodes = [node]
    for child in _children(plan):
        nodes += plan_nodes(child, depth + 1)
    return nodes


def run_with_metrics(df: DataFrame) -> list[Node]:
    """Materialise every row of ``df`` inside the JVM and return its executed plan's metrics."""
    qe = df._jdf.queryExecution()
    qe.toRdd().count()
    return plan_nodes(qe.executedPlan())


KEEP = {
    "WholeStageCodegen": ("pipelineTime",),
    "Scan": ("numOutputRows", "numFiles", "scanTime", "filesSize"),
    "HashAggregate": ("numOutputRows", "aggTime", "peakMemory", "spillSize"),
    "Exchange": ("dataSize", "shuffleRecordsWritten", "shuffleBytesWritten", "shuffleWriteTime"),
    "AQEShuffleRead": ("numPartitions",),
    "SortMergeJoin": ("numOutputRows",),
    "ShuffledHashJoin": ("numOutputRows", "buildDataSize", "buildTime"),
    "Sort": ("sortTime", "peakMemory"),
}


def _fmt(kind: str, value: int) -> str:
    if kind == "size":
        return f"{value / 2**20:.1f} MiB"
    if kind == "timing":
        return f"{value / 1000:.2f} s"
    if kind == "nsTiming":
        return f"{value / 1e9:.2f} s"
    return f"{value:,}"


def node_lines(nodes: list[Node]) -> list[str]:
    lines = ["| operator | metrics (summed over tasks) |", "|---|---|"]
    for n in nodes:
        keep = next((v for k, v in KEEP.items() if n.name.startswith(k) or k in n.name), ())
        shown = ", ".join(f"{k} {_fmt(*n.metrics[k])}" for k in keep if k in n.metrics and n.metrics[k][1] > 0)
        lines.append(f"| {'&nbsp;' * 2 * n.depth}{n.name} | {shown} |")
    return lines


@dataclass
class Stage:
    stage_id: int
    scopes: str
    wall: float
    tasks: int
    run: float = 0.0
    cpu: float = 0.0
    gc: float = 0.0
    read_bytes: int = 0
    write_bytes: int = 0
    peak_task_memory: int = 0
    peak_heap: int = 0


def read_event_log(directory: str, app_id: str) -> tuple[list[Stage], int]:
    """Stages of the application (in order) and the driver JVM's peak heap bytes."""
    path = next(p for p in glob.glob(os.path.join(directory, "*")) if app_id in os.path.basename(p))
    stages: dict[int, Stage] = {}
    peak_heap = 0
    with open(path) as log:
        for line in log:
            event = json.loads(line)
            kind = event["Event"]
            if kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                scopes = []
                for rdd in info.get("RDD Info", []):
                    scope = json.loads(rdd.get("Scope", "{}") or "{}").get("name")
                    if scope and scope not in scopes:
                        scopes.append(scope)
                sid = info["Stage ID"]
                stage = stages.setdefault(sid, Stage(sid, "", 0.0, 0))
                stage.scopes = ", ".join(sorted(scopes))
                stage.wall = (info["Completion Time"] - info["Submission Time"]) / 1000
                stage.tasks = info["Number of Tasks"]
            elif kind == "SparkListenerTaskEnd" and event.get("Task Metrics"):
                m = event["Task Metrics"]
                stage = stages.setdefault(event["Stage ID"], Stage(event["Stage ID"], "", 0.0, 0))
                stage.run += m["Executor Run Time"] / 1000
                stage.cpu += m["Executor CPU Time"] / 1e9
                stage.gc += m["JVM GC Time"] / 1000
                read = m.get("Shuffle Read Metrics", {})
                stage.read_bytes += read.get("Remote Bytes Read", 0) + read.get("Local Bytes Read", 0)
                stage.write_bytes += m.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0)
                stage.peak_task_memory = max(stage.peak_task_memory, m.get("Peak Execution Memory", 0))
            elif kind == "SparkListenerStageExecutorMetrics":
                heap = event["Executor Metrics"].get("JVMHeapMemory", 0)
                stage = stages.setdefault(event["Stage ID"], Stage(event["Stage ID"], "", 0.0, 0))
                stage.peak_heap = max(stage.peak_heap, heap)
                peak_heap = max(peak_heap, heap)
    return [stages[k] for k in sorted(stages)], peak_heap


def stage_lines(stages: list[Stage]) -> list[str]:
    lines = [
        "| stage | operators | tasks | wall s | task run s | task CPU s | GC s | shuffle read | shuffle write "
        "| peak task memory |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stages:
        lines.append(
            f"| {s.stage_id} | {s.scopes} | {s.tasks} | {s.wall:.2f} | {s.run:.2f} | {s.cpu:.2f} | {s.gc:.2f} "
            f"| {s.read_bytes / 2**20:.1f} MiB | {s.write_bytes / 2**20:.1f} MiB "
            f"| {s.peak_task_memory / 2**20:.1f} MiB |"
        )
    return lines


def profile_size(
    spark: SparkSession, size: int, repeats: int, customers: int | None
) -> tuple[list[str], set[int], str]:
    """The section for one size, the profiled run's stage ids, and the size's label."""
    n_cust = customers or max(1, size // 100)
    # The generator's default (100 events per customer) shares run_bench's files.
    name = f"events_{size}" if n_cust == max(1, size // 100) else f"events_{size}_c{n_cust}"
    path = generate(size, str(HERE / "data" / name), as_of=AS_OF, n_customers=n_cust)
    label = f"{size:,} events, {n_cust:,} customers ({size // n_cust:,} events each)"
    clock = JvmClock(spark)
    runs: dict[str, Callable[[], object]] = {
        "duckdb (best formulation)": duckdb_run(path),
        "spark bare scan of the band (floor)": lambda: (
            band_scan(spark.read.parquet(path)).write.format("noop").mode("overwrite").save()
        ),
        "spark (this project)": lambda: ours(spark.read.parquet(path)).write.format("noop").mode("overwrite").save(),
    }
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()  # warm-up
    for _ in range(repeats):  # round-robin, so background load hits every engine alike
        for name, fn in runs.items():
            if name.startswith("duckdb"):
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                w, c = time.perf_counter() - t0, time.process_time() - c0
            else:
                w, c = clock.measure(fn)
            wall[name].append(w)
            cpu[name].append(c)
    duck = "duckdb (best formulation)"
    lines = [
        f"## {label}",
        "",
        f"Median of {repeats} round-robin runs after a warm-up, side by side in one process. "
        "CPU = the engine process's user + system seconds (the JVM's for Spark, all its threads).",
        "",
        "| run | wall s (median) | x DuckDB wall | CPU s (median) | x DuckDB CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in runs:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        lines.append(
            f"| {name} | {w:.2f} | {w / statistics.median(wall[duck]):.2f} "
            f"| {c:.2f} | {c / statistics.median(cpu[duck]):.2f} |"
        )
        print(f"{size:>11,}  {name:<40} wall {w:6.2f}s  cpu {c:6.2f}s", flush=True)

    # One more run of the snapshot, alone in its jobs, for the plan metrics and the event log.
    group = f"profiled-{size}"
    spark.sparkContext.setJobGroup(group, "profiled snapshot")
    nodes = run_with_metrics(ours(spark.read.parquet(path)))
    spark.sparkContext.setJobGroup("other", "not profiled")
    lines += ["", "### Executed plan (final adaptive plan) and its SQL metrics", "", *node_lines(nodes)]
    return lines, _stage_ids(spark, group), label


def _stage_ids(spark: SparkSession, group: str) -> set[int]:
    tracker = spark.sparkContext.statusTracker()
    ids: set[int] = set()
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        if info is not None:
            ids.update(info.stageIds)
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000000", help="comma-separated event counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "SNAPSHOT_PROFILE.md"))
    parser.add_argument("--event-log-dir", default=None, help="keep the event log here (default: a temp dir)")
    parser.add_argument(
        "--customers",
        default=None,
        help="comma-separated customer counts, one per size (default: 100 events per customer); "
        "a fixed count across sizes shows memory against events per entity (P6)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    customers: list[int | None] = [None] * len(sizes)
    if args.customers:
        customers = [int(c) for c in args.customers.split(",")]
        if len(customers) != len(sizes):
            parser.error(f"--customers has {len(customers)} counts for {len(sizes)} sizes: give one per size")
    log_dir = args.event_log_dir or tempfile.mkdtemp(prefix="snapshot-profile-")
    os.makedirs(log_dir, exist_ok=True)
    spark = spark_session(args.shuffle_partitions, "file://" + log_dir)
    spark.sparkContext.setLogLevel("ERROR")
    app_id = spark.sparkContext.applicationId
    profiled = [profile_size(spark, size, args.repeats, n) for size, n in zip(sizes, customers, strict=True)]
    spark.stop()
    stages, peak_heap = read_event_log(log_dir, app_id)
    header = [
        "# customer_activity snapshot: where the time goes",
        "",
        f"Generated by `bench/snapshot_profile.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, local[2], spark.sql.shuffle.partitions={args.shuffle_partitions}, AQE on. "
        "On a shared machine compare the ratios, not the seconds (docs/performance.md says what else ran).",
        "",
    ]
    summary = [
        "## Peak memory by size",
        "",
        "| size | peak execution memory of one task | driver JVM peak heap |",
        "|---|---:|---:|",
    ]
    sections: list[str] = []
    for section, ids, label in profiled:
        sections += section
        sections += ["", "### Stages of the profiled run (event log)", ""]
        mine = [s for s in stages if s.stage_id in ids]
        sections += [*stage_lines(mine), ""]
        heap = max((s.peak_heap for s in mine), default=0)
        task = max((s.peak_task_memory for s in mine), default=0)
        sections += [
            f"Peak execution memory of one task: {task / 2**20:.1f} MiB; driver JVM peak heap during these "
            f"stages: {heap / 2**20:.0f} MiB (local mode: the executors are the driver; the heap figure "
            "includes garbage not yet collected).",
            "",
        ]
        summary.append(f"| {label} | {task / 2**20:.1f} MiB | {heap / 2**20:.0f} MiB |")
    body = [*header, *summary, "", *sections]
    body += [f"Driver JVM peak heap over the whole process (every run above): {peak_heap / 2**20:.0f} MiB.", ""]
    Path(args.out).write_text("\n".join(body) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
