"""Extract: read a source, enforce its schema, quarantine unusable rows, drop replays.

Every input row ends up in exactly one of three places, and the counts prove it:
``input rows = accepted + quarantined + duplicates``. Quarantined rows keep their raw values and
a reason, so an on-call engineer can see why they were rejected and replay them once fixed.

Event logs are read only from the ``dt=YYYY-MM-DD`` partitions that can hold events the snapshot
needs: from the first day of the look-back band to T's day plus the lateness margin (events land
in the partition of the day they arrive, which is never before the day they happened).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from features.config import FileSourceConf
from features.constants import CORRUPT_RECORD, QUARANTINE_REASON
from features.definitions import Source
from features.io import fs

log = logging.getLogger(__name__)

#: ISO-8601 with a zone: 2026-10-30T12:34:56Z, 2026-10-30T12:34:56.789+02:00. Anything looser
#: (a bare date, a local time without zone) is ambiguous and quarantined.
ISO_8601_WITH_ZONE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"

_DT_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")


class InputError(RuntimeError):
    """An input is missing or unreadable; the message names the path."""


@dataclass
class Extracted:
    """The outcome of reading one source for one snapshot."""

    source: str
    accepted: DataFrame
    quarantined: DataFrame
    input_paths: list[str]
    input_rows: int = 0
    accepted_rows: int = 0
    duplicate_rows: int = 0
    quarantined_rows: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)

    def release(self) -> None:
        """Drop the cached inputs once every group that needed them is built."""
        self.accepted.unpersist()
        self.quarantined.unpersist()

    def check_balance(self) -> None:
        total = self.accepted_rows + self.quarantined_rows + self.duplicate_rows
        if total != self.input_rows:
            raise AssertionError(
                f"{self.source}: {self.input_rows} rows read but {self.accepted_rows} accepted + "
                f"{self.quarantined_rows} quarantined + {self.duplicate_rows} duplicates = {total}"
            )


def partitions_for(start: datetime, end: datetime, lateness_days: int) -> tuple[date, date]:
    """The inclusive range of ``dt`` days that can hold events with ``start <= time < end``."""
    last_instant = end - timedelta(microseconds=1)
    return start.date(), last_instant.date() + timedelta(days=lateness_days)


def read_event_log(
    spark: SparkSession, conf: FileSourceConf, source: Source, *, start: datetime, end: datetime
) -> Extracted:
    """Read the dt partitions that can hold events in ``[start, end)``, classified and de-duplicated."""
    first, last = partitions_for(start, end, conf.lateness_days)
    days = fs.list_dirs(spark, conf.path)
    if days is None:
        raise InputError(f"input path {conf.path} for source {source.name} does not exist")
    chosen = sorted(
        f"{conf.path.rstrip('/')}/{name}"
        for name in days
        if (m := _DT_DIR.match(name)) and first <= date.fromisoformat(m.group(1)) <= last
    )
    log.info("%s: reading %d of %d dt partitions (%s .. %s)", source.name, len(chosen), len(days), first, last)
    raw_schema = StructType([StructField(c, StringType()) for c in source.columns])
    if not chosen:
        empty = spark.createDataFrame([], raw_schema)
        return classify(spark, source, empty.withColumn(CORRUPT_RECORD, F.lit(None).cast("string")), [])
    if conf.format == "json":
        raw = (
            spark.read.schema(raw_schema.add(StructField(CORRUPT_RECORD, StringType())))
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
            .json(chosen)
        )
    else:
        raw = spark.read.parquet(*chosen)
        _require_columns(raw, source, conf.path)
        raw = raw.select(
            *(F.col(c).cast("string").alias(c) for c in source.columns),
            F.lit(None).cast("string").alias(CORRUPT_RECORD),
        )
    return classify(spark, source, raw, chosen)


def read_table(spark: SparkSession, conf: FileSourceConf, source: Source) -> Extracted:
    """Read a table extract (an RDS snapshot export: Parquet per table), classified and de-duplicated."""
    if fs.list_dirs(spark, conf.path) is None and not fs.exists(spark, conf.path):
        raise InputError(f"input path {conf.path} for source {source.name} does not exist")
    reader = spark.read.option("recursiveFileLookup", "true")
    raw = reader.json(conf.path) if conf.format == "json" else reader.parquet(conf.path)
    _require_columns(raw, source, conf.path)
    raw = raw.select(*(F.col(c) for c in source.columns), F.lit(None).cast("string").alias(CORRUPT_RECORD))
    return classify(spark, source, raw, [conf.path])


def _require_columns(raw: DataFrame, source: Source, path: str) -> None:
    missing = [c for c in source.columns if c not in raw.columns]
    if missing:
        raise InputError(
            f"{path} (source {source.name}) lacks column(s) {', '.join(missing)}; found {', '.join(raw.columns)}"
        )


def _parse(column: str, ctype: str, raw: DataFrame) -> Column:
    """Cast a raw value to its declared type; null when it does not parse (never an ANSI error).

    Text timestamps must carry a zone: without one the instant depends on whoever reads it.
    """
    if not isinstance(raw.schema[column].dataType, StringType):
        return F.expr(f"try_cast(`{column}` AS {ctype})")
    if ctype == "timestamp":
        return F.when(F.col(column).rlike(ISO_8601_WITH_ZONE), F.expr(f"try_cast(`{column}` AS timestamp)"))
    return F.expr(f"try_cast(trim(`{column}`) AS {ctype})")


def _reason(source: Source, raw: DataFrame) -> Column:
    """The first rule a row breaks, or null when the row is usable. Order matters: most basic first."""
    checks: list[tuple[Column, str]] = [(F.col(CORRUPT_RECORD).isNotNull(), "unparseable record")]
    for column in source.required:
        value = F.col(column)
        is_text = isinstance(raw.schema[column].dataType, StringType)
        blank = value.isNull() | (F.trim(value) == "") if is_text else value.isNull()
        checks.append((blank, f"null {column}"))
    for column, ctype in source.columns.items():
        if ctype != "string":
            checks.append((F.col(column).isNotNull() & _parse(column, ctype, raw).isNull(), f"unparseable {column}"))
    for column, allowed in source.allowed_values.items():
        checks.append((~F.col(column).isin(list(allowed)), f"unknown {column}"))
    reason = F.when(checks[0][0], F.lit(checks[0][1]))
    for condition, text in checks[1:]:
        reason = reason.when(condition, F.lit(text))
    return reason


def classify(spark: SparkSession, source: Source, raw: DataFrame, paths: list[str]) -> Extracted:
    classified = raw.withColumn(QUARANTINE_REASON, _reason(source, raw)).persist()
    try:
        counts = {
            row[QUARANTINE_REASON]: int(row["count"]) for row in classified.groupBy(QUARANTINE_REASON).count().collect()
        }
    except Exception:
        classified.unpersist()
        raise
    usable = classified.where(F.col(QUARANTINE_REASON).isNull()).select(
        *(_parse(c, t, raw).alias(c) if t != "string" else F.col(c) for c, t in source.columns.items())
    )
    accepted = usable.dropDuplicates([source.key]).persist()
    accepted_rows = accepted.count()
    usable_rows = counts.pop(None, 0)
    quarantined = classified.where(F.col(QUARANTINE_REASON).isNotNull())
    result = Extracted(
        source=source.name,
        accepted=accepted,
        quarantined=quarantined,
        input_paths=paths,
        input_rows=usable_rows + sum(counts.values()),
        accepted_rows=accepted_rows,
        duplicate_rows=usable_rows - accepted_rows,
        quarantined_rows=sum(counts.values()),
        quarantine_reasons=dict(sorted(counts.items())),
    )
    result.check_balance()
    return result
