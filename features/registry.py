"""Discovers feature groups by importing ``features.groups.*`` and collecting FeatureGroup objects,
and the sources they read."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from features import groups as groups_package
from features import sources as sources_module
from features.definitions import DefinitionError, FeatureGroup, Source


@cache
def all_groups() -> dict[str, FeatureGroup]:
    """Every FeatureGroup defined at the top level of a module in ``features.groups``."""
    found: dict[str, FeatureGroup] = {}
    for info in sorted(pkgutil.iter_modules(groups_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{groups_package.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, FeatureGroup):
                check_published(value, module.__name__)
                if value.name in found and found[value.name] is not value:
                    raise DefinitionError(
                        f"feature group name {value.name!r} is defined twice (second in {module.__name__}); "
                        "group names must be unique"
                    )
                found[value.name] = value
    return found


def check_published(group: FeatureGroup, module: str) -> None:
    """What every published group must declare beyond what its definition checks itself."""
    if not group.owner:
        raise DefinitionError(
            f"feature group {group.name} in {module}: add an owner, e.g. owner='team-name'; it is published "
            "to the catalog, SageMaker and Glue"
        )


@cache
def all_sources() -> dict[str, Source]:
    """Every source a discovered group reads, plus those declared in ``features.sources``."""
    found = {s.name: s for s in vars(sources_module).values() if isinstance(s, Source)}
    for group in all_groups().values():
        found.setdefault(group.source.name, group.source)
    return found


def resolve(name: str) -> list[FeatureGroup]:
    """``all`` or one group name -> the groups to build, with a fix-it error for unknown names."""
    groups = all_groups()
    if name == "all":
        return list(groups.values())
    if name not in groups:
        raise KeyError(f"unknown feature group {name!r}; choose one of: all, {', '.join(groups)}")
    return [groups[name]]
