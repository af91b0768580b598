"""Search the catalog: groups and features matching a text, narrowed by tag and owner.

A text matches a group by its name, description, tags or owner, and a feature by its name or
description (case-insensitive substring). ``--tag`` and ``--owner`` are exact (case-insensitive)
and narrow which groups are searched at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from features.discovery.entries import FeatureEntry, GroupEntry


@dataclass(frozen=True)
class Match:
    kind: Literal["group", "feature"]
    group: GroupEntry
    feature: FeatureEntry | None
    matched_on: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "group": self.group.name,
            "version": self.group.version,
            "owner": self.group.owner,
            "tags": list(self.group.tags),
            "deprecated": self.group.deprecated,
            "matched_on": list(self.matched_on),
        }
        if self.feature is not None:
            out |= {"feature": self.feature.name, "type": self.feature.type, "description": self.feature.description}
        else:
            out |= {"description": self.group.description, "features": len(self.group.features)}
        return out


def _fields_matching(text: str, fields: dict[str, Iterable[str]]) -> tuple[str, ...]:
    needle = text.casefold()
    return tuple(name for name, values in fields.items() if any(needle in v.casefold() for v in values))


def search(
    entries: Iterable[GroupEntry], text: str | None = None, *, tag: str | None = None, owner: str | None = None
) -> list[Match]:
    """Groups, then their features, that match; without ``text`` every group that passes the filters."""
    matches: list[Match] = []
    for entry in entries:
        if tag is not None and tag.casefold() not in {t.casefold() for t in entry.tags}:
            continue
        if owner is not None and owner.casefold() != entry.owner.casefold():
            continue
        if not text:
            matches.append(Match("group", entry, None, ()))
            continue
        on = _fields_matching(
            text,
            {"name": [entry.name], "description": [entry.description], "tag": entry.tags, "owner": [entry.owner]},
        )
        if on:
            matches.append(Match("group", entry, None, on))
        for feature in entry.features:
            on = _fields_matching(text, {"name": [feature.name], "description": [feature.description]})
            if on:
                matches.append(Match("feature", entry, feature, on))
    return matches
