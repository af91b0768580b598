"""Turn a snapshot row into a SageMaker Feature Store ``Record`` and check values the service would mis-store.

A Record is a list of ``{"FeatureName": ..., "ValueAsString": ...}``; every value travels as a
string, so how numbers are rendered decides what an online reader gets back:

* Integral -> a plain integer string (``"42"``); the int64 range is left to the service, whose
  ValidationError message then lands in the dead letter verbatim.
* Fractional -> ``repr(float)``, the shortest string that parses back to the same double. NaN and
  infinities are refused here: the service would accept ``"NaN"`` (Java parses it) and serve it,
  turning an upstream bug into a silently wrong online value.
* String -> as is.
* Null features are left out of the record (the online store then has no value for them), which
  is how SageMaker represents a missing value.
* The event time is ISO-8601 UTC ``yyyy-MM-ddTHH:mm:ssZ``.

A group's ``online_ttl`` travels with each record as the service's ``TtlDuration``
(:func:`ttl_duration`): the online store stops serving it at ExpiresAt = EventTime + TTL.

A value that cannot be rendered raises :class:`RecordError`; the push dead-letters the record with
that reason instead of failing the partition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from features.constants import EVENT_TIME, EVENT_TIME_FORMAT
from features.definitions import FeatureGroup, FeatureType

#: One SageMaker record: ``[{"FeatureName": name, "ValueAsString": value}, ...]``.
Record = list[dict[str, str]]
#: PutRecord's / a BatchWriteRecord entry's ``TtlDuration``: ``{"Unit": "Days", "Value": 30}``.
TtlDuration = dict[str, str | int]

#: The service's TTL units, largest first, in seconds.
_TTL_UNITS = (("Weeks", 604_800), ("Days", 86_400), ("Hours", 3_600), ("Minutes", 60), ("Seconds", 1))

#: Spark type names of source columns that may serve as a record identifier.
_IDENTIFIER_TYPES: dict[str, FeatureType] = {"string": "String", "bigint": "Integral", "int": "Integral"}


class RecordError(ValueError):
    """A row cannot become a valid record; the message is the dead-letter reason."""


def identifier_type(group: FeatureGroup) -> FeatureType:
    """Feature type of the group's record identifier, from its source column type."""
    column_type = group.source.columns[group.entity.join_key]
    if column_type not in _IDENTIFIER_TYPES:
        raise ValueError(
            f"join key {group.entity.join_key!r} of feature group {group.name} is a {column_type} column; "
            "SageMaker record identifiers must be String or Integral (string, int or bigint)"
        )
    return _IDENTIFIER_TYPES[column_type]


def record_types(group: FeatureGroup) -> dict[str, FeatureType]:
    """Feature type of every field of the group's records: join key, event time, features."""
    return {
        group.entity.join_key: identifier_type(group),
        EVENT_TIME: "String",
        **{spec.name: spec.dtype for spec in group.features},
    }


def ttl_duration(length: timedelta) -> TtlDuration:
    """``length`` as a ``TtlDuration`` in the largest unit that holds it exactly (30d -> 30 Days)."""
    seconds = length.total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"an online TTL must be a whole number of seconds >= 1, got {length}")
    unit, size = next((u, s) for u, s in _TTL_UNITS if int(seconds) % s == 0)
    return {"Unit": unit, "Value": int(seconds) // size}


def format_value(name: str, dtype: FeatureType, value: Any) -> str:
    """``value`` rendered as SageMaker's ValueAsString for a feature of type ``dtype``."""
    if dtype == "String":
        if not isinstance(value, str):
            raise RecordError(f"String feature {name} got {type(value).__name__} {value!r}")
        return value
    if isinstance(value, bool):  # bool is an int subclass; a 0/1 flag must be cast upstream
        raise RecordError(f"{dtype} feature {name} got a boolean {value!r}; cast it to 0/1 upstream")
    if dtype == "Integral":
        if isinstance(value, int):
            return str(value)
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            return str(int(value))
        raise RecordError(f"Integral feature {name} got {type(value).__name__} {value!r}, not a whole number")
    if not isinstance(value, int | float | Decimal):
        raise RecordError(f"Fractional feature {name} got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise RecordError(f"Fractional feature {name} is {number!r}; the online store only takes finite numbers")
    return repr(number)


def format_event_time(value: Any) -> str:
    """An event time as ``yyyy-MM-ddTHH:mm:ssZ``: strings pass through, aware datetimes are converted."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise RecordError(f"{EVENT_TIME} {value.isoformat()} has no time zone; pass an aware UTC datetime")
        return value.astimezone(UTC).strftime(EVENT_TIME_FORMAT)
    raise RecordError(f"{EVENT_TIME} got {type(value).__name__} {value!r}; expected yyyy-MM-ddTHH:mm:ssZ")


def to_record(row: Mapping[str, Any], types: Mapping[str, FeatureType], *, record_identifier: str) -> Record:
    """The Record for one row (a dict or ``Row.asDict()``); null features are left out.

    ``types`` comes from :func:`record_types`. Every column of ``row`` must be in it: an unknown
    column is a caller bug, not a data problem, so it raises ``KeyError`` instead of a dead letter.
    """
    record: Record = []
    for name, value in row.items():
        dtype = types[name]
        if value is None:
            if name in (record_identifier, EVENT_TIME):
                raise RecordError(f"{name} is null; every record needs its identifier and event time")
            continue
        kind = type(value)
        # Fast paths for what Spark hands over (this runs for every value of every record).
        if kind is str and (dtype == "String" or name == EVENT_TIME):
            text = value
        elif kind is int and dtype == "Integral":
            text = str(value)
        elif kind is float and dtype == "Fractional" and math.isfinite(value):
            text = repr(value)
        elif name == EVENT_TIME:
            text = format_event_time(value)
        else:
            text = format_value(name, dtype, value)
        record.append({"FeatureName": name, "ValueAsString": text})
    return record


def check_record(record: Record, types: Mapping[str, FeatureType]) -> None:
    """Re-check a stored record (e.g. from a dead-letter file) with the same value rules.

    Replay uses it so a record refused before sending (a NaN, say) is not written as-is once it
    is re-pushed; it passes once someone has corrected the value in the file. Features missing
    from ``types`` are left for the service to judge.
    """
    for item in record:
        name, text = item.get("FeatureName"), item.get("ValueAsString")
        dtype = types.get(name) if isinstance(name, str) else None
        if dtype is None or not isinstance(text, str) or name == EVENT_TIME:
            continue
        if dtype == "Integral":
            try:
                int(text)
            except ValueError:
                raise RecordError(f"Integral feature {name} has {text!r}, not a whole number") from None
        elif dtype == "Fractional":
            try:
                number = float(text)
            except ValueError:
                raise RecordError(f"Fractional feature {name} has {text!r}, not a number") from None
            format_value(str(name), dtype, number)
