"""Catalog entries: what the catalog says about each group and feature, from the definitions alone.

No Spark and no AWS: the lineage's source location comes from the conf, everything else from the
definition, so ``catalog list`` and ``catalog search`` answer instantly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from features.config import PipelineConf
from features.definitions import FeatureGroup, FeatureSpec


@dataclass(frozen=True)
class FeatureEntry:
    name: str
    type: str
    description: str
    unit: str | None
    window: str | None
    aggregation: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "unit": self.unit,
            "window": self.window,
            "aggregation": self.aggregation,
        }


@dataclass(frozen=True)
class GroupEntry:
    """One published group: ``name`` is what the stores and ``--group`` know it by."""

    name: str
    family: str
    version: int
    description: str
    owner: str
    tags: tuple[str, ...]
    entity_key: str
    source: str
    source_location: str
    freshness_sla: str | None
    update_frequency: str | None
    online: bool
    online_ttl: str | None
    deprecated: str | None
    features: tuple[FeatureEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "version": self.version,
            "description": self.description,
            "owner": self.owner,
            "tags": list(self.tags),
            "entity_key": self.entity_key,
            "source": self.source,
            "source_location": self.source_location,
            "freshness_sla": self.freshness_sla,
            "update_frequency": self.update_frequency,
            "online": self.online,
            "online_ttl": self.online_ttl,
            "deprecated": self.deprecated,
            "features": [f.to_dict() for f in self.features],
        }


def aggregation_text(spec: FeatureSpec, group: FeatureGroup) -> str | None:
    """How a feature is computed, in one phrase: ``count_distinct(product_id) where event_type in
    (product_view)``, or ``derived from birth_date`` for a row-level feature."""
    agg = spec.aggregation
    if agg is None:
        inputs = next((d.inputs for d in group.derived if d.name == spec.name), ())
        return f"derived from {', '.join(inputs)}" if inputs else None
    text = f"{agg.op}({agg.column or '*'})"
    if agg.filter is not None:
        text += f" where {agg.filter.column} in ({', '.join(agg.filter.values)})"
    return text


def source_location(conf: PipelineConf | None, source: str) -> str:
    """Where the conf reads ``source`` from: its path, or ``jdbc <table>``."""
    if conf is None or source not in conf.sources:
        return "not configured in this conf"
    block = conf.sources[source]
    if block.jdbc is not None:
        return f"jdbc table {block.jdbc.table}"
    return f"{block.format} files at {block.path}"


def group_entry(group: FeatureGroup, conf: PipelineConf | None) -> GroupEntry:
    return GroupEntry(
        name=group.name,
        family=group.family,
        version=group.version,
        description=group.description,
        owner=group.owner,
        tags=tuple(group.tags),
        entity_key=group.entity.join_key,
        source=group.source.name,
        source_location=source_location(conf, group.source.name),
        freshness_sla=group.freshness_sla,
        update_frequency=group.update_frequency,
        online=group.online,
        online_ttl=group.online_ttl,
        deprecated=group.deprecation_reason,
        features=tuple(
            FeatureEntry(
                name=spec.name,
                type=spec.dtype,
                description=spec.description,
                unit=spec.unit,
                window=spec.window.name if spec.window else None,
                aggregation=aggregation_text(spec, group),
            )
            for spec in group.features
        ),
    )


def catalog_entries(groups: Iterable[FeatureGroup], conf: PipelineConf | None) -> list[GroupEntry]:
    """The entries of ``groups``, versions of one family together, oldest version first."""
    return sorted((group_entry(g, conf) for g in groups), key=lambda e: (e.family, e.version))
