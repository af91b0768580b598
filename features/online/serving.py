"""The serving side: the feature vector a model endpoint gets for some entities, from the online store.

One BatchGetRecord stream per group (at most 100 identifiers per call, unprocessed identifiers
and throttling retried by :class:`~features.online.reader.RecordReader`), merged per entity and
typed by the group definitions: Integral -> int, Fractional -> float, String -> str. An entity
a group has no record for gets nulls for that group's features and a null snapshot time. No
pyspark: an endpoint's handler can call :func:`feature_vectors` directly (docs/online-store.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from features.constants import EVENT_TIME
from features.definitions import FeatureGroup, FeatureType
from features.online.reader import RecordReader


class FeatureSelectionError(ValueError):
    """``--features`` names a feature none of the chosen groups has."""


@dataclass
class Vectors:
    """Per entity, in the order asked: ``{join key: id, "features": {...}, "snapshot_times": {...}}``."""

    vectors: list[dict[str, Any]]
    #: Identifiers that could not be read, per group: {group: {id: "ErrorCode: reason"}}.
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: int = 0
    retried: int = 0
    throttled: int = 0


def typed(dtype: FeatureType, text: str | None) -> Any:
    """A ValueAsString as the feature's type (the inverse of ``records.format_value``)."""
    if text is None:
        return None
    if dtype == "Integral":
        return int(text)
    if dtype == "Fractional":
        return float(text)
    return text


def select_features(groups: Sequence[FeatureGroup], names: Sequence[str] | None) -> dict[str, list[str]]:
    """The features to return per group: all, or those of ``names`` (each must exist in some group)."""
    available = {spec.name: group.name for group in groups for spec in group.features}
    if names is None:
        wanted = list(available)
    else:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise FeatureSelectionError(
                f"unknown feature {', '.join(map(repr, unknown))}; the chosen groups have: {', '.join(available)}"
            )
        wanted = list(dict.fromkeys(names))
    chosen: dict[str, list[str]] = {group.name: [] for group in groups}
    for name in wanted:
        chosen[available[name]].append(name)
    return chosen


def feature_vectors(
    reader: RecordReader, groups: Sequence[FeatureGroup], ids: Sequence[str], features: Sequence[str] | None = None
) -> Vectors:
    """Read ``ids`` from every group and merge them into one typed vector per entity."""
    chosen = select_features(groups, features)
    unique = list(dict.fromkeys(ids))
    key = groups[0].entity.join_key if groups else "id"
    values: dict[str, dict[str, Any]] = {i: {} for i in unique}
    times: dict[str, dict[str, str | None]] = {i: {} for i in unique}
    out = Vectors(vectors=[])
    for group in groups:
        reads = reader.read(group.name, unique)
        out.requests += reads.requests
        out.retried += reads.retried
        out.throttled += reads.throttled
        if reads.failed:
            out.errors[group.name] = {i: f"{f.code}: {f.reason}" for i, f in reads.failed.items()}
        types = {spec.name: spec.dtype for spec in group.features}
        for i in unique:
            record = reads.found.get(i) or {}
            times[i][group.name] = record.get(EVENT_TIME)
            for name in chosen[group.name]:
                values[i][name] = typed(types[name], record.get(name))
    out.vectors = [{key: i, "features": values[i], "snapshot_times": times[i]} for i in ids]
    return out
