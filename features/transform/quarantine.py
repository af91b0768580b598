"""Row-validity rules: why a raw row cannot be used, as a ``Column``; and which copy of a key is kept.

A raw frame holds a source's declared columns (as text, or as a reader typed them) and
``_corrupt_record``; event logs add ``_input_file`` and ``_file_error``, which enable the
corrupt-file and future rules. The functions take the raw frame's schema, not the frame: a
column that arrived as text is judged as text (blank, oversized, trimmed before a cast).
docs/inputs.md lists every reason, in the order they are checked.

:func:`duplicate_verdict` judges rows against each other: of the usable rows sharing a key, one
is kept; the others are exact copies of it or conflict with it (docs/inputs.md, "Duplicates").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructType

from features.constants import CORRUPT_RECORD, FILE_ERROR, INPUT_FILE
from features.definitions import ColumnType, Source

#: ISO-8601 with a zone: 2026-10-30T12:34:56Z, 2026-10-30T12:34:56.789+02:00. Anything looser
#: (a bare date, a local time without zone) is ambiguous and quarantined.
ISO_8601_WITH_ZONE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"

#: What to do with a key that arrives with different values: ``keep_latest`` keeps the winner
#: of :func:`version_order` and drops the other rows; ``quarantine`` keeps none of them.
ConflictPolicy = Literal["keep_latest", "quarantine"]
#: The column :func:`duplicate_verdict` adds: null for the row kept, else one of the three below.
DUPLICATE = "_duplicate"
#: Dropped: all declared values equal those of the row kept (a replay).
EXACT = "exact"
#: Dropped under ``keep_latest``: same key as the row kept, other values.
CONFLICTING = "conflicting"
#: The quarantine reason of every row of a conflicting key under ``quarantine``.
CONFLICTING_DUPLICATE = "conflicting_duplicate"


def parsed(column: str, ctype: ColumnType, schema: StructType) -> Column:
    """``column`` cast to its declared type; null when it does not parse (never an ANSI error).

    Text timestamps must carry a zone: without one the instant depends on whoever reads it.
    """
    if not _is_text(schema, column):
        return F.expr(f"try_cast(`{column}` AS {ctype})")
    if ctype == "timestamp":
        return F.when(F.col(column).rlike(ISO_8601_WITH_ZONE), F.expr(f"try_cast(`{column}` AS timestamp)"))
    return F.expr(f"try_cast(trim(`{column}`) AS {ctype})")


def quarantine_reason(source: Source, schema: StructType, *, future_tolerance: timedelta | None = None) -> Column:
    """The first rule a row breaks, or null when the row is usable. Order matters: most basic first.

    A whole-file or whole-line failure comes first, then missing values, then sizes (so no
    pattern or parse ever runs on a megabyte), then formats, types, bounds and categories.
    ``future_tolerance`` None disables the future rule.
    """
    present = schema.fieldNames()
    checks: list[tuple[Column, str]] = []
    if FILE_ERROR in present:
        checks.append((F.col(FILE_ERROR).isNotNull(), "corrupt file"))
    checks.append((F.col(CORRUPT_RECORD).isNotNull(), "unparseable record"))
    for column in source.required:
        value = F.col(column)
        blank = value.isNull() | (F.trim(value) == "") if _is_text(schema, column) else value.isNull()
        checks.append((blank, f"null {column}"))
    for column in source.columns:
        if _is_text(schema, column):
            checks.append((F.length(column) > source.max_length_of(column), f"oversized {column}"))
    for column, pattern in source.patterns.items():
        # \z, not $: Java's $ also matches before a trailing newline.
        checks.append((~F.col(column).cast("string").rlike(f"^(?:{pattern})\\z"), f"invalid {column}"))
    for column, ctype in source.columns.items():
        if ctype == "string":
            continue
        if column in source.ranges:
            checks.append((_out_of_range(schema, column, *source.ranges[column]), f"out of range {column}"))
        value = parsed(column, ctype, schema)
        checks.append((F.col(column).isNotNull() & value.isNull(), f"unparseable {column}"))
        if ctype == "timestamp":
            since, until = source.time_range
            checks.append(((value < F.lit(since)) | (value >= F.lit(until)), f"out of range {column}"))
    for column, allowed in source.allowed_values.items():
        checks.append((~F.col(column).isin(list(allowed)), f"unknown {column}"))
    if future_tolerance is not None and source.timestamp is not None and INPUT_FILE in present:
        checks.append((_after_arrival(schema, source.timestamp, future_tolerance), f"{source.timestamp} in the future"))
    reason = F.when(checks[0][0], F.lit(checks[0][1]))
    for condition, text in checks[1:]:
        reason = reason.when(condition, F.lit(text))
    return reason


def _is_text(schema: StructType, column: str) -> bool:
    return isinstance(schema[column].dataType, StringType)


def _out_of_range(schema: StructType, column: str, low: float | None, high: float | None) -> Column:
    """True when the value is a number outside ``[low, high]``; NaN and infinities always are.

    Judged as a double, before the declared type is applied, so ``NaN`` or ``1e15`` read as
    ``out of range`` rather than as unparseable by a decimal(12,2).
    """
    text = f"trim(`{column}`)" if _is_text(schema, column) else f"`{column}`"
    value = F.expr(f"try_cast({text} AS double)")
    bad = F.isnan(value) | (F.abs(value) == F.lit(float("inf")))
    if low is not None:
        bad = bad | (value < F.lit(low))
    if high is not None:
        bad = bad | (value > F.lit(high))
    return value.isNotNull() & bad


def _after_arrival(schema: StructType, column: str, tolerance: timedelta) -> Column:
    """True when the event happened after its ``dt`` day ended (plus ``tolerance``).

    An event lands in the partition of the day it arrived, so its own time cannot be later than
    the end of that day unless the producer's clock is wrong. This is judged against the file's
    partition, not against T: a backfill at T legitimately reads events after T from the
    lateness partitions (they are never used by a window), and a row's verdict must not depend
    on which T read it.
    """
    day = F.regexp_extract(F.col(INPUT_FILE), r".*/dt=(\d{4}-\d{2}-\d{2})/", 1)
    midnight = F.try_to_timestamp(F.concat(day, F.lit("T00:00:00Z")))
    seconds = int((timedelta(days=1) + tolerance).total_seconds())
    return parsed(column, "timestamp", schema) > midnight + F.expr(f"INTERVAL {seconds} SECONDS")


def version_order(source: Source, version: str) -> list[Column]:
    """The order in which the first of a key's rows is its winner, whatever the input order.

    The latest ``source.timestamp`` first (nulls last); among equal times, the smallest values in
    declared column order (nulls first). ``version`` is a struct of the declared columns, typed.
    """
    latest = [F.col(f"{version}.{source.timestamp}").desc_nulls_last()] if source.timestamp else []
    return [*latest, *(F.col(f"{version}.{c}").asc_nulls_first() for c in source.columns)]


def duplicate_verdict(usable: DataFrame, *, source: Source, version: str, policy: ConflictPolicy) -> DataFrame:
    """``usable`` with :data:`DUPLICATE`: null for the one row kept per key, else why it is not.

    Rows are compared on ``version`` (the declared columns, typed), so a replay serialised with
    another zone offset or from another file is still an exact copy. Under ``quarantine``, every
    row of a key whose rows differ is :data:`CONFLICTING_DUPLICATE` and none is kept.
    """
    key = F.col(f"{version}.{source.key}")
    by_key = Window.partitionBy(key)
    ranked = by_key.orderBy(*version_order(source, version))
    winner = F.first(version).over(ranked.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    verdict = (
        F.when(F.row_number().over(ranked) == 1, F.lit(None).cast("string"))
        .when(F.col(version).eqNullSafe(winner), F.lit(EXACT))
        .otherwise(F.lit(CONFLICTING))
    )
    if policy == "quarantine":
        conflict = ~F.min(version).over(by_key).eqNullSafe(F.max(version).over(by_key))
        verdict = F.when(conflict, F.lit(CONFLICTING_DUPLICATE)).otherwise(verdict)
    return usable.withColumn(DUPLICATE, verdict)
