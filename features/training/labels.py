"""Reading the labels table: Parquet or CSV, ``customer_id`` and a zoned ``label_time`` required.

Label columns are kept exactly as read (a CSV is read as text, nothing inferred); the parsed
label time and a row id are added under reserved names the join and the writer drop again.
"""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, TimestampNTZType, TimestampType

LABEL_TIME = "label_time"
#: The parsed label time (UTC instant) and the stable row id, added while the set is built.
LABEL_TS = "_training_label_ts"
ROW_ID = "_training_row_id"

#: An ISO-8601 time that ends in a zone: ``Z``, ``+02:00`` or ``+0200``.
_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)$"


class LabelsError(ValueError):
    """The labels table cannot be used as given; the message says why and how to fix it."""


def read_labels(spark: SparkSession, path: str) -> DataFrame:
    """The labels at ``path`` (a ``.csv`` file or folder is read as CSV, anything else as Parquet)."""
    is_csv = path.rstrip("/").lower().endswith(".csv") or _folder_of_csv(spark, path)
    if is_csv:
        return spark.read.option("header", "true").option("inferSchema", "false").csv(path)
    return spark.read.parquet(path)


def _folder_of_csv(spark: SparkSession, path: str) -> bool:
    from features.io import fs

    names = [n for n in fs.list_files(spark, path) if not fs.hidden(n)] if fs.exists(spark, path) else []
    return bool(names) and all(n.lower().endswith((".csv", ".csv.gz")) for n in names)


def prepared(labels: DataFrame, *, key: str) -> DataFrame:
    """``labels`` with :data:`LABEL_TS` (checked: present, zoned, parseable) and :data:`ROW_ID`,
    persisted so the id stays stable for every group's join (the caller unpersists).

    Raises :class:`LabelsError` with the row count and an example when label times are bad.
    """
    for required in (key, LABEL_TIME):
        if required not in labels.columns:
            raise LabelsError(
                f"the labels have no column {required!r} (columns: {', '.join(labels.columns)}); "
                f"a labels table needs {key} and {LABEL_TIME}"
            )
    for reserved in (LABEL_TS, ROW_ID):
        if reserved in labels.columns:
            raise LabelsError(f"the labels have a column {reserved!r}, a name the training set reserves; rename it")
    dtype = labels.schema[LABEL_TIME].dataType
    if isinstance(dtype, TimestampNTZType):
        raise LabelsError(
            f"{LABEL_TIME} is a timestamp without time zone; write it as a zoned timestamp (TIMESTAMP, "
            "or ISO-8601 text with Z or +hh:mm)"
        )
    if isinstance(dtype, TimestampType):
        parsed = F.col(LABEL_TIME)
    elif isinstance(dtype, StringType):
        text = F.trim(F.col(LABEL_TIME))
        parsed = F.when(text.rlike(_ZONED), F.expr(f"try_cast(trim(`{LABEL_TIME}`) AS TIMESTAMP)"))
    else:
        raise LabelsError(f"{LABEL_TIME} has type {dtype.simpleString()}; use a zoned timestamp or ISO-8601 text")
    with_ts = labels.withColumn(LABEL_TS, parsed).withColumn(ROW_ID, F.monotonically_increasing_id())
    with_ts = with_ts.persist(StorageLevel.MEMORY_AND_DISK)
    bad = with_ts.where(F.col(LABEL_TS).isNull() | F.col(key).isNull())
    counts = bad.agg(
        F.sum(F.when(F.col(LABEL_TIME).isNull(), 1).otherwise(0)).alias("null_time"),
        F.sum(F.when(F.col(LABEL_TIME).isNotNull() & F.col(LABEL_TS).isNull(), 1).otherwise(0)).alias("bad_time"),
        F.sum(F.when(F.col(key).isNull(), 1).otherwise(0)).alias("null_key"),
    ).first()
    if counts is not None and any(counts[c] for c in ("null_time", "bad_time", "null_key")):
        with_ts.unpersist()
        raise LabelsError(
            _bad_message(
                bad, key, int(counts["null_time"] or 0), int(counts["bad_time"] or 0), int(counts["null_key"] or 0)
            )
        )
    return with_ts


def _bad_message(bad: DataFrame, key: str, null_time: int, bad_time: int, null_key: int) -> str:
    if bad_time:
        example = bad.where(F.col(LABEL_TIME).isNotNull() & F.col(LABEL_TS).isNull()).select(LABEL_TIME).first()
        shown = example[0] if example is not None else "?"
        return (
            f"{bad_time} label row(s) have a {LABEL_TIME} without a time zone or not ISO-8601, e.g. {shown!r}; "
            "write times with a zone, e.g. 2026-10-31T12:00:00+02:00 or 2026-10-31T10:00:00Z"
        )
    if null_time:
        return f"{null_time} label row(s) have no {LABEL_TIME}; every label needs the time it was observed"
    return f"{null_key} label row(s) have no {key}; every label needs the entity it is about"
