"""Run by test_delta_crash as ``python -m tests.offline.crash_writer ROOT STAGE`` with its own Spark:
write snapshot T1 of group g over the Delta table in ROOT and SIGKILL the JVM and itself at STAGE.

``files``: during the write's task (a Python UDF kills the JVM), so data files may be on disk but
nothing is committed; ``committed``: right after the commit returned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.load.offline import write_snapshot
from features.session import DELTA_SETTINGS, delta_packages

T1 = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
NEW = list(range(100, 400))


def main(root: str, stage: str) -> None:
    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.jars.packages", ",".join(delta_packages()))
        .config(map=DELTA_SETTINGS)
        .config("spark.databricks.delta.snapshotPartitions", "1")
        .config("spark.task.maxFailures", "1")
        .getOrCreate()
    )
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    jvm_pid = int(jvm.java.lang.ProcessHandle.current().pid())

    def die() -> None:
        with contextlib.suppress(ProcessLookupError):  # already killed by the UDF
            os.kill(jvm_pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    @F.udf("bigint")
    def kill_midway(n: int) -> int:
        if n == NEW[len(NEW) // 2]:
            os.kill(jvm_pid, signal.SIGKILL)
        return n

    text = T1.strftime("%Y-%m-%dT%H:%M:%SZ")
    df = spark.createDataFrame([(f"C{v}", text, v) for v in NEW], "customer_id string, event_time string, n bigint")
    if stage == "files":
        df = df.withColumn("n", kill_midway("n"))
    print("writing", flush=True)
    try:
        write_snapshot(
            spark,
            df,
            root=root,
            group="g",
            as_of=T1,
            run_id="crashed",
            rows=len(NEW),
            write_time=datetime.now(UTC),
            format="delta",
            on_stage=lambda name: die() if name == stage else None,
        )
    except Exception:  # the JVM is gone: the driver dies with it
        die()
    die()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
