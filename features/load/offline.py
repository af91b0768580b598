"""Write a snapshot to the offline store in SageMaker Feature Store's layout.

Layout: ``<root>/<group>/data/year=YYYY/month=MM/day=DD/hour=HH/`` from the record event time
(the snapshot time T), each record carrying ``write_time``, ``api_invocation_time`` and
``is_deleted`` like records SageMaker writes itself, so Athena/Glue tables and training-set code
written for SageMaker offline stores read it unchanged.

Re-running the same T must replace, never duplicate, and a snapshot at another T in the same hour
must survive. Spark's partition overwrite works on whole hour directories, so it cannot do both;
instead every file is named after its snapshot (``snapshot-<T>-<run>-NNNNN.parquet``) and a rerun
swaps exactly that snapshot's files: new files are staged, moved in under hidden names (readers
skip names starting with ``_``), the previous run's files of the same T are deleted, and the new
files are made visible. A crash between the last two steps leaves that snapshot missing (and a
rerun fixes it), never doubled.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.constants import API_INVOCATION_TIME, IS_DELETED, WRITE_TIME
from features.io import fs
from features.transform.columns import utc_timestamp

log = logging.getLogger(__name__)

ROWS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class OfflineWrite:
    path: str
    rows: int
    files: int


def snapshot_tag(as_of: datetime) -> str:
    return as_of.strftime("%Y%m%dT%H%M%SZ")


def partition_path(root: str, group: str, as_of: datetime) -> str:
    return f"{root.rstrip('/')}/{group}/data/year={as_of:%Y}/month={as_of:%m}/day={as_of:%d}/hour={as_of:%H}"


def with_offline_metadata(df: DataFrame, write_time: datetime) -> DataFrame:
    """Add the columns SageMaker adds to every offline record."""
    now = utc_timestamp(write_time)
    return df.select("*", now.alias(WRITE_TIME), now.alias(API_INVOCATION_TIME), F.lit(False).alias(IS_DELETED))


def write_snapshot(
    spark: SparkSession,
    df: DataFrame,
    *,
    root: str,
    group: str,
    as_of: datetime,
    run_id: str,
    rows: int,
    write_time: datetime,
) -> OfflineWrite:
    """Replace the snapshot of ``group`` at ``as_of`` with ``df`` (``rows`` records)."""
    target = partition_path(root, group, as_of)
    tag = snapshot_tag(as_of)
    staging = f"{root.rstrip('/')}/{group}/_staging/{tag}-{run_id}"
    files = max(1, math.ceil(rows / ROWS_PER_FILE))
    with_offline_metadata(df, write_time).coalesce(files).write.mode("overwrite").parquet(staging)

    staged = [name for name in fs.list_files(spark, staging) if name.endswith(".parquet")]
    prefix = f"snapshot-{tag}-"
    previous = [n for n in fs.list_files(spark, target) if n.startswith(prefix)]
    final_names = [f"{prefix}{run_id}-{i:05d}.parquet" for i in range(len(staged))]
    for name, final in zip(staged, final_names, strict=True):
        fs.rename(spark, f"{staging}/{name}", f"{target}/_pending-{final}")
    for name in previous:
        fs.delete(spark, f"{target}/{name}", recursive=False)
    for final in final_names:
        fs.rename(spark, f"{target}/_pending-{final}", f"{target}/{final}")
    fs.delete(spark, staging)
    if previous:
        log.info("%s: replaced %d file(s) of the earlier run at %s", group, len(previous), tag)
    return OfflineWrite(path=target, rows=rows, files=len(final_names))
