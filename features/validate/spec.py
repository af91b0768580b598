"""What the validation gate checks, as plain data derived from the feature definitions.

Every check is an :class:`ExpectationSpec`: a Great Expectations expectation type and its
keyword arguments (GX's own serialised form, so any GX expectation can be declared), plus a
sentence saying why the rule holds, which the reports show next to a failure. Nothing here
imports Spark or Great Expectations: group modules import this file to declare their custom
expectations, and the registry imports every group module, so it must stay cheap (importing GX
takes seconds).

Rules derived from a group's definition (:func:`derived_specs`):

* the join key is never null and unique; ``event_time`` is never null;
* counts, sums and distinct counts are never null (an empty window is 0) and never negative;
  ``days_since_last`` is never negative (null means "never");
* a distinct count is at most the matching count, per window. **Pairing rule:** a
  ``count_distinct`` aggregation pairs with every ``count`` aggregation of the same group that has
  the same ``filter`` (both unfiltered counts as the same filter). A distinct count counts
  distinct non-null values among the rows its filter keeps; the count counts all those rows, so
  it can never be smaller. ``distinct_products_viewed`` (product_view) pairs with
  ``product_view_count`` (product_view); ``session_count`` (no filter) with ``event_count``
  (no filter). A distinct count without a matching count gets no pair check;
* nested windows are non-decreasing for count, sum and count_distinct: a shorter window is a
  subset of a longer one (``[T - 1h, T)`` is inside ``[T - 1d, T)``). For sums this assumes
  non-negative amounts, which the non-negativity rule checks too;
* ``min <= avg <= max`` per window for aggregations over the same column with the same filter;
  rows where either side is null (an empty window) are not compared.

Custom rules live beside the group: a module-level ``EXPECTATIONS = [ExpectationSpec(...), ...]``
in ``features/groups/<group>.py`` (:func:`declared_specs`). The row-count band against the
previous snapshot is added at run time (:func:`row_count_spec`), since it needs that snapshot.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from features.constants import EVENT_TIME
from features.definitions import Aggregation, DefinitionError, FeatureGroup, Window

#: The GX type of the column-vs-column comparison in :mod:`features.validate.expectations`.
NOT_EXCEED_COLUMN = "expect_column_values_to_not_exceed_column"

_TYPE = re.compile(r"^expect_[a-z0-9_]+$")
#: Expectation kwargs that name columns of the validated DataFrame.
_COLUMN_KWARGS = ("column", "column_A", "column_B", "other_column")
_COLUMN_LIST_KWARGS = ("column_list", "column_set")
_GROUPS_PACKAGE = "features.groups"


@dataclass(frozen=True, kw_only=True)
class ExpectationSpec:
    """One check: a GX expectation ``type`` (snake case), its ``kwargs``, and why it must hold."""

    type: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not _TYPE.match(self.type):
            raise DefinitionError(
                f"expectation type {self.type!r}: use a Great Expectations type in snake case, "
                "e.g. 'expect_column_values_to_be_between'"
            )
        if not isinstance(self.kwargs, Mapping):
            raise DefinitionError(f"{self.type}: kwargs must be a mapping like {{'column': 'age', 'min_value': 0}}")
        if not self.description.strip():
            raise DefinitionError(f"{self.type} on {self.columns}: add a description saying why the rule holds")

    @property
    def columns(self) -> list[str]:
        return referenced_columns(self.kwargs)


def referenced_columns(kwargs: Mapping[str, Any]) -> list[str]:
    """The DataFrame columns an expectation with these kwargs reads (none for table-level ones)."""
    names = [str(kwargs[k]) for k in _COLUMN_KWARGS if k in kwargs]
    for k in _COLUMN_LIST_KWARGS:
        names.extend(str(c) for c in kwargs.get(k, ()))
    return names


def derived_specs(group: FeatureGroup) -> list[ExpectationSpec]:
    """The rules that follow from ``group``'s definition (see the module docstring)."""
    key = group.entity.join_key
    specs = [
        ExpectationSpec(
            type="expect_column_values_to_not_be_null",
            kwargs={"column": key},
            description="every record needs its record identifier",
        ),
        ExpectationSpec(
            type="expect_column_values_to_be_unique",
            kwargs={"column": key},
            description="a snapshot holds one record per entity",
        ),
        ExpectationSpec(
            type="expect_column_values_to_not_be_null",
            kwargs={"column": EVENT_TIME},
            description="every record needs its event time",
        ),
    ]
    for feature in group.features:
        agg = feature.aggregation
        if agg is None:
            continue
        if agg.op in ("count", "sum", "count_distinct"):
            specs.append(
                ExpectationSpec(
                    type="expect_column_values_to_not_be_null",
                    kwargs={"column": feature.name},
                    description=f"an empty window gives {agg.op} 0, never null",
                )
            )
            specs.append(_non_negative(feature.name, f"a {agg.op} is never negative"))
        elif agg.op == "days_since_last":
            specs.append(_non_negative(feature.name, "the last event is before the snapshot time"))
    specs += _distinct_within_count(group)
    specs += _nested_windows(group)
    specs += _average_within_extremes(group)
    return specs


def declared_specs(group: FeatureGroup) -> list[ExpectationSpec]:
    """The ``EXPECTATIONS`` declared in ``features/groups/<group>.py``, checked against the group.

    A group defined elsewhere (tests, notebooks) has no declared expectations.
    """
    module_name = f"{_GROUPS_PACKAGE}.{group.name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return []
    if not any(value is group for value in vars(module).values()):
        return []
    declared = getattr(module, "EXPECTATIONS", [])
    where = f"EXPECTATIONS in {module_name}"
    if not isinstance(declared, list | tuple):
        raise DefinitionError(f"{where} must be a list of ExpectationSpec(...)")
    columns = {group.entity.join_key, EVENT_TIME, *group.feature_names}
    for n, item in enumerate(declared):
        if not isinstance(item, ExpectationSpec):
            raise DefinitionError(
                f"{where}[{n}] is a {type(item).__name__}; declare "
                "ExpectationSpec(type='expect_...', kwargs={...}, description='why')"
            )
        unknown = [c for c in item.columns if c not in columns]
        if unknown:
            raise DefinitionError(
                f"{where}[{n}] ({item.type}) names unknown column(s) {', '.join(unknown)}; "
                f"group {group.name} has {', '.join(sorted(columns))}"
            )
    return list(declared)


def row_count_spec(previous_rows: int, band: float) -> ExpectationSpec:
    """Row count within ``band`` (0.5 = +-50%) of the previous snapshot's ``previous_rows``."""
    if band < 0:
        raise ValueError(f"validation.row_count_band must not be negative, got {band}")
    return ExpectationSpec(
        type="expect_table_row_count_to_be_between",
        kwargs={
            "min_value": max(0, math.floor(previous_rows * (1 - band))),
            "max_value": math.ceil(previous_rows * (1 + band)),
        },
        description=f"within {band:.0%} of the previous snapshot's {previous_rows} rows",
    )


def _non_negative(column: str, why: str) -> ExpectationSpec:
    return ExpectationSpec(
        type="expect_column_values_to_be_between", kwargs={"column": column, "min_value": 0}, description=why
    )


def _not_exceed(column: str, other: str, why: str) -> ExpectationSpec:
    return ExpectationSpec(type=NOT_EXCEED_COLUMN, kwargs={"column": column, "other_column": other}, description=why)


def _windowed(group: FeatureGroup) -> dict[tuple[Aggregation, Window], str]:
    """(aggregation, window) -> output name, from the definitions (names are made there only)."""
    return {(f.aggregation, f.window): f.name for f in group.features if f.aggregation and f.window}


def _per_window(group: FeatureGroup, low: Aggregation, high: Aggregation) -> Iterator[tuple[str, str]]:
    names = _windowed(group)
    for window in group.parsed_windows:
        if (low, window) in names and (high, window) in names:
            yield names[(low, window)], names[(high, window)]


def _distinct_within_count(group: FeatureGroup) -> list[ExpectationSpec]:
    specs = []
    for distinct in (a for a in group.aggregations if a.op == "count_distinct"):
        for count in (a for a in group.aggregations if a.op == "count" and a.filter == distinct.filter):
            for low, high in _per_window(group, distinct, count):
                why = f"distinct {distinct.column} values cannot outnumber the rows they come from ({count.name})"
                specs.append(_not_exceed(low, high, why))
    return specs


def _nested_windows(group: FeatureGroup) -> list[ExpectationSpec]:
    names = _windowed(group)
    specs = []
    for agg in (a for a in group.aggregations if a.op in ("count", "sum", "count_distinct")):
        for short, long in pairwise(group.parsed_windows):
            if (agg, short) in names and (agg, long) in names:
                why = f"the {short.name} window lies inside the {long.name} window"
                specs.append(_not_exceed(names[(agg, short)], names[(agg, long)], why))
    return specs


def _average_within_extremes(group: FeatureGroup) -> list[ExpectationSpec]:
    specs = []
    for avg in (a for a in group.aggregations if a.op == "avg"):
        for other in group.aggregations:
            if other.op not in ("min", "max") or (other.column, other.filter) != (avg.column, avg.filter):
                continue
            if other.op == "max":
                pairs = _per_window(group, avg, other)
                why = f"an average of {avg.column} is at most its maximum (empty windows not compared)"
            else:
                pairs = _per_window(group, other, avg)
                why = f"an average of {avg.column} is at least its minimum (empty windows not compared)"
            specs += [_not_exceed(low, high, why) for low, high in pairs]
    return specs
