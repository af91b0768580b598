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

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring_ascii
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


class EncodedItem:
    """One record bound for ``group``, already rendered as PutRecord's JSON body.

    The body holds ``Record``, ``TargetStores`` and ``TtlDuration`` (PutRecord carries the group
    name in its URL); :meth:`entry` prefixes the group for a BatchWriteRecord entry. The record
    as a list is parsed back only when it is needed: for a dead letter, or to match a batch entry
    the service echoed in ``Errors``.
    """

    __slots__ = ("body", "group")

    def __init__(self, group: str, body: str) -> None:
        self.group = group
        self.body = body

    @property
    def record(self) -> Record:
        return list(json.loads(self.body)["Record"])

    @property
    def ttl(self) -> TtlDuration | None:
        ttl: TtlDuration | None = json.loads(self.body).get("TtlDuration")
        return ttl

    def entry(self) -> str:
        """This record as one BatchWriteRecord entry (JSON)."""
        return '{"FeatureGroupName":' + encode_basestring_ascii(self.group) + "," + self.body[1:]


#: Spark types whose Python values the encoder renders without a per-value type check.
_SPARK_INTEGERS = frozenset({"tinyint", "smallint", "int", "bigint"})
_SPARK_FLOATS = frozenset({"float", "double"})


class RecordEncoder:
    """Renders rows of one group's snapshot as :class:`EncodedItem` bodies, column by column.

    The push's hot path: the same strings as :func:`to_record` (integers ``str``, doubles
    ``repr``, strings as is), but each column is rendered in one pass with a template chosen
    once from its Spark type, and the JSON is assembled here, not by botocore's generic
    serialiser. A row the fast path cannot vouch for (a null identifier or event time, a NaN or
    infinity, a value of a column type without a fast path that fails :func:`format_value`) is
    returned as *bad*: the caller renders it again with :func:`to_record`, whose RecordError is
    the dead-letter reason, so refusals read exactly as before.
    """

    def __init__(
        self,
        *,
        group: str,
        columns: list[str],
        spark_types: Mapping[str, str],
        types: Mapping[str, FeatureType],
        record_identifier: str,
        ttl: TtlDuration | None,
        target_stores: list[str],
    ) -> None:
        self.group = group
        self.columns = columns
        self._types = types
        self._record_identifier = record_identifier
        self._required = [i for i, c in enumerate(columns) if c in (record_identifier, EVENT_TIME)]
        self._kinds: list[str] = []
        self._templates: list[str] = []
        for name in columns:
            spark_type, dtype = spark_types.get(name), types[name]
            if spark_type == "string" and (dtype == "String" or name == EVENT_TIME):
                kind, value = "string", "%s"  # the value comes JSON-quoted
            elif spark_type in _SPARK_INTEGERS and dtype == "Integral":
                kind, value = "integer", '"%d"'
            elif spark_type in _SPARK_FLOATS and dtype == "Fractional":
                kind, value = "float", '"%r"'
            elif spark_type in _SPARK_INTEGERS and dtype == "Fractional":
                kind, value = "integer_as_float", '"%r"'
            else:
                kind, value = "checked", "%s"
            feature = encode_basestring_ascii(name).replace("%", "%%")
            self._kinds.append(kind)
            self._templates.append(',{"FeatureName":' + feature + ',"ValueAsString":' + value + "}")
        tail = ',"TargetStores":' + json.dumps(target_stores, separators=(",", ":"))
        if ttl is not None:
            tail += ',"TtlDuration":' + json.dumps(ttl, separators=(",", ":"))
        self._close = "]" + tail + "}"

    def encode(self, rows: Sequence[Sequence[Any]]) -> tuple[list[EncodedItem], list[int]]:
        """The encoded records of ``rows`` (tuples in ``columns`` order) and the indexes of the bad rows."""
        if not rows:
            return [], []
        bad: set[int] = set()
        members = []
        for index, column in enumerate(zip(*rows, strict=True)):
            if index in self._required and None in column:
                bad.update(i for i, v in enumerate(column) if v is None)
            members.append(self._render(index, column, bad))
        group, close = self.group, self._close
        records: Iterable[str] = map("".join, zip(*members, strict=True))
        if bad:
            records = (record for i, record in enumerate(records) if i not in bad)
        return [EncodedItem(group, '{"Record":[' + record[1:] + close) for record in records], sorted(bad)

    def _render(self, index: int, column: tuple[Any, ...], bad: set[int]) -> list[str]:
        """One column as record members (``,{"FeatureName":..,"ValueAsString":..}``; "" for a null)."""
        kind, template = self._kinds[index], self._templates[index].__mod__
        if kind == "float" and not math.isfinite(sum(filter(None, column))):
            bad.update(i for i, v in enumerate(column) if v is not None and not math.isfinite(v))
        values: Iterable[Any]
        if kind == "checked":
            name, dtype = self.columns[index], self._types[self.columns[index]]
            rendered: list[str] = []
            for i, value in enumerate(column):
                if value is None:
                    rendered.append("")
                    continue
                try:
                    text = format_event_time(value) if name == EVENT_TIME else format_value(name, dtype, value)
                except RecordError:
                    bad.add(i)
                    rendered.append("")
                    continue
                rendered.append(template(encode_basestring_ascii(text)))
            return rendered
        if None in column:
            if kind == "string":
                return [template(encode_basestring_ascii(v)) if v is not None else "" for v in column]
            if kind == "integer_as_float":
                return [template(float(v)) if v is not None else "" for v in column]
            return [template(v) if v is not None else "" for v in column]
        if kind == "string":
            values = map(encode_basestring_ascii, column)
        elif kind == "integer_as_float":
            values = map(float, column)
        else:
            values = column
        return list(map(template, values))
