"""Column -> Column helpers shared by feature definitions.

Each is a plain expression so Spark can optimise it, and each is tested on one-line DataFrames.
"""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import Column
from pyspark.sql import functions as F

_MICROS_PER_DAY = 86_400_000_000


def utc_timestamp(moment: datetime) -> Column:
    """A timestamp literal for a timezone-aware datetime (independent of the session zone)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; snapshot times must be timezone-aware UTC")
    micros = int(moment.timestamp()) * 1_000_000 + moment.microsecond
    return F.timestamp_micros(F.lit(micros))


def whole_years_between(start: Column, end: date) -> Column:
    """Completed years from ``start`` (a date) to ``end``: an age on ``end``.

    Birthdays on 29 February count as reached on 1 March in non-leap years.
    """
    not_yet = (F.month(start) > end.month) | ((F.month(start) == end.month) & (F.dayofmonth(start) > end.day))
    return (F.lit(end.year) - F.year(start) - F.when(not_yet, 1).otherwise(0)).cast("bigint")


def age_bucket(age: Column) -> Column:
    """The age band used for reporting: 18-29 ... 60-69, 70-plus, else unknown (minors, null)."""
    bucket = F.when(age >= 70, F.lit("70-plus"))
    for low in (60, 50, 40, 30):
        bucket = bucket.when(age >= low, F.lit(f"{low}-{low + 9}"))
    return bucket.when(age >= 18, F.lit("18-29")).otherwise(F.lit("unknown"))


def whole_days_between(start: Column, end: datetime) -> Column:
    """Whole days from timestamp ``start`` to ``end``, rounded down (a day is 86,400 s)."""
    end_micros = int(end.timestamp()) * 1_000_000 + end.microsecond
    return F.floor((F.lit(end_micros) - F.unix_micros(start)) / F.lit(_MICROS_PER_DAY)).cast("bigint")


def flag(value: Column) -> Column:
    """A boolean as 1/0 (null stays null): SageMaker has no boolean feature type."""
    return F.when(value, F.lit(1)).when(~value, F.lit(0)).cast("bigint")
