"""``Search``'s SearchExpression, evaluated over FeatureMetadata and FeatureGroup documents.

The expression rules are the ``sagemaker`` model's (``SearchExpression``, ``Filter``,
``NestedFilters``): Filters, NestedFilters and SubExpressions of one expression are combined by
its Operator (``And`` by default); a filter with a Value and no Operator is ``Equals``;
``GreaterThan``/``LessThan`` and their ``OrEqualTo`` forms are not supported for text properties,
``Contains`` and ``In`` only for text; timestamps are given as ISO 8601 (``YYYY-mm-ddTHH:MM:SS``,
UTC unless a zone is given); each list holds 1-20 elements, 50 in all; and an expression may use
``Contains`` once. Property names outside a resource's searchable list are refused.
Local choices where the documentation is silent are in featurestore-local/README.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .schema import JsonObject, control_validation

Kind = Literal["text", "timestamp"]
# A document flattened for matching: property name -> its values (none: the property is absent).
Properties = dict[str, list[Any]]

OPERATORS = (
    "Equals",
    "NotEquals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
    "Contains",
    "Exists",
    "NotExists",
    "In",
)
_ORDERING = frozenset({"GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"})
_TEXT_ONLY = frozenset({"Contains", "In"})
_NO_VALUE = frozenset({"Exists", "NotExists"})
MAX_LIST_ELEMENTS = 20  # model: FilterList, NestedFiltersList, SearchExpressionList {"max": 20}
MAX_EXPRESSION_ELEMENTS = 50  # SearchExpression's documentation: at most 50 recursive elements
MAX_CONTAINS = 1  # Filter's documentation: one Contains per expression outside Experiments/Trials
MAX_FILTER_VALUE_LENGTH = 1024  # model: FilterValue {"max": 1024}


@dataclass(frozen=True)
class SearchableResource:
    """What can be searched in one resource type, and how its documents are flattened."""

    name: str
    properties: dict[str, Kind]
    prefixes: dict[str, Kind]
    nested: dict[str, dict[str, Kind]]
    flatten: Callable[[JsonObject], Properties]
    elements: Callable[[JsonObject, str], list[Properties]]
    refused_prefixes: dict[str, str] = field(default_factory=dict)

    def kind(self, name: Any, *, nested: str | None = None) -> Kind:
        if not isinstance(name, str) or not name:
            raise control_validation("Filter Name is required and must be a non-empty string")
        if nested is not None:
            kinds = self.nested[nested]
            if name not in kinds:
                raise control_validation(
                    f"{name} is not a property of {nested} in a NestedFilters of {self.name}; use one of "
                    + ", ".join(sorted(kinds))
                )
            return kinds[name]
        if name in self.properties:
            return self.properties[name]
        for prefix, kind in self.prefixes.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                return kind
        for prefix, reason in self.refused_prefixes.items():
            if name.startswith(prefix) or name == prefix.rstrip("."):
                raise control_validation(f"{name}: {reason}")
        raise control_validation(
            f"{name} is not a searchable property of {self.name}; use one of "
            + ", ".join([*sorted(self.properties), *(f"{prefix}<key>" for prefix in self.prefixes)])
        )


def parse_timestamp(value: str) -> float:
    """Epoch seconds of a filter's ISO 8601 timestamp; UTC when it names no zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise control_validation(
            f"Invalid timestamp {value!r}: use ISO 8601, YYYY-mm-dd'T'HH:MM:SS (UTC unless a zone is given)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class _Filter:
    name: str
    operator: str
    kind: Kind
    value: Any  # str for text, float for timestamps, frozenset for In, None for Exists/NotExists

    def matches(self, properties: Properties) -> bool:
        values = properties.get(self.name, [])
        operator = self.operator
        if operator == "Exists":
            return bool(values)
        if operator == "NotExists":
            return not values
        if operator == "NotEquals":
            return all(value != self.value for value in values)
        if operator == "Equals":
            return any(value == self.value for value in values)
        if operator == "Contains":
            return any(self.value in value for value in values)
        if operator == "In":
            return any(value in self.value for value in values)
        compare: dict[str, Callable[[float], bool]] = {
            "GreaterThan": lambda value: value > self.value,
            "GreaterThanOrEqualTo": lambda value: value >= self.value,
            "LessThan": lambda value: value < self.value,
            "LessThanOrEqualTo": lambda value: value <= self.value,
        }
        return any(compare[operator](value) for value in values)


def _parse_filter(raw: Any, resource: SearchableResource, nested: str | None = None) -> _Filter:
    if not isinstance(raw, dict):
        raise control_validation("Each Filter must be an object with Name, Operator and Value")
    name = raw.get("Name")
    kind = resource.kind(name, nested=nested)
    value = raw.get("Value")
    operator = raw.get("Operator")
    if operator is None:
        if value is None:
            raise control_validation(f"Filter on {name} needs an Operator or a Value")
        operator = "Equals"
    if operator not in OPERATORS:
        raise control_validation(f"Filter on {name}: Operator must be one of {', '.join(OPERATORS)}, got {operator!r}")
    if kind == "text" and operator in _ORDERING:
        raise control_validation(f"Filter on {name}: {operator} is not supported for text properties")
    if kind != "text" and operator in _TEXT_ONLY:
        raise control_validation(f"Filter on {name}: {operator} is only supported for text properties")
    if operator in _NO_VALUE:
        return _Filter(str(name), operator, kind, None)
    if not isinstance(value, str) or not value:
        raise control_validation(f"Filter on {name}: {operator} needs a non-empty string Value")
    if len(value) > MAX_FILTER_VALUE_LENGTH:
        raise control_validation(
            f"Filter on {name}: Value must have length less than or equal to {MAX_FILTER_VALUE_LENGTH}"
        )
    parsed: Any = value
    if kind == "timestamp":
        parsed = parse_timestamp(value)
    elif operator == "In":
        parsed = frozenset(part.strip() for part in value.split(","))
    return _Filter(str(name), operator, kind, parsed)


@dataclass(frozen=True)
class _Nested:
    name: str
    filters: tuple[_Filter, ...]

    def matches(self, elements: list[Properties]) -> bool:
        """True if one element of the list satisfies every filter (the model's definition)."""
        return any(all(f.matches(element) for f in self.filters) for element in elements)


@dataclass(frozen=True)
class Expression:
    """A parsed, validated SearchExpression."""

    operator: str
    filters: tuple[_Filter, ...]
    nested: tuple[_Nested, ...]
    subexpressions: tuple[Expression, ...]

    def matches(self, document: JsonObject, resource: SearchableResource, properties: Properties) -> bool:
        checks = itertools.chain(
            (f.matches(properties) for f in self.filters),
            (n.matches(resource.elements(document, n.name)) for n in self.nested),
            (e.matches(document, resource, properties) for e in self.subexpressions),
        )
        return all(checks) if self.operator == "And" else any(checks)


def _members(expression: JsonObject, member: str) -> list[Any]:
    value = expression.get(member)
    if value is None:
        return []
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST_ELEMENTS:
        raise control_validation(f"SearchExpression.{member} must be a list of 1 to {MAX_LIST_ELEMENTS} elements")
    return value


class _Counter:
    def __init__(self) -> None:
        self.elements = 0
        self.contains = 0

    def add(self, filters: tuple[_Filter, ...]) -> None:
        self.contains += sum(f.operator == "Contains" for f in filters)
        if self.contains > MAX_CONTAINS:
            raise control_validation("'CONTAINS' operator usage limit of 1 exceeded.")


def parse_expression(raw: Any, resource: SearchableResource) -> Expression:
    """Validate a SearchExpression against ``resource``; ValidationException on any fault."""
    return _parse(raw, resource, _Counter())


def _parse(raw: Any, resource: SearchableResource, counter: _Counter) -> Expression:
    if not isinstance(raw, dict):
        raise control_validation("SearchExpression must be an object")
    operator = raw.get("Operator", "And")
    if operator not in ("And", "Or"):
        raise control_validation(f"SearchExpression.Operator must be And or Or, got {operator!r}")
    raw_filters = _members(raw, "Filters")
    raw_nested = _members(raw, "NestedFilters")
    raw_subs = _members(raw, "SubExpressions")
    if not (raw_filters or raw_nested or raw_subs):
        raise control_validation("A SearchExpression must specify at least one subexpression, filter, or nested filter")
    counter.elements += len(raw_filters) + len(raw_nested) + len(raw_subs)
    if counter.elements > MAX_EXPRESSION_ELEMENTS:
        raise control_validation(
            f"A SearchExpression holds at most {MAX_EXPRESSION_ELEMENTS} SubExpressions, NestedFilters and Filters"
        )
    filters = tuple(_parse_filter(item, resource) for item in raw_filters)
    counter.add(filters)
    nested: list[_Nested] = []
    for item in raw_nested:
        if not isinstance(item, dict):
            raise control_validation("Each NestedFilters element must be an object with NestedPropertyName and Filters")
        name = item.get("NestedPropertyName")
        if not isinstance(name, str) or name not in resource.nested:
            raise control_validation(
                f"NestedPropertyName {name!r} is not a list property of {resource.name}; use one of "
                + ", ".join(sorted(resource.nested))
            )
        inner = _members(item, "Filters")
        if not inner:
            raise control_validation(f"NestedFilters on {name} must have at least one filter")
        parsed = tuple(_parse_filter(f, resource, nested=name) for f in inner)
        counter.add(parsed)
        nested.append(_Nested(name, parsed))
    subexpressions = tuple(_parse(item, resource, counter) for item in raw_subs)
    return Expression(str(operator), filters, tuple(nested), subexpressions)


def order(
    documents: list[tuple[JsonObject, Properties]],
    resource: SearchableResource,
    sort_by: str,
    *,
    descending: bool,
    identity: Callable[[JsonObject], tuple[str, ...]],
) -> list[JsonObject]:
    """Documents ordered by ``sort_by``; those without it come last, ties in ``identity`` order.

    The tie-break makes the order total, so offset paging neither repeats nor skips a document
    while nothing changes between pages.
    """
    if sort_by not in resource.properties:
        raise control_validation(
            f"SortBy {sort_by!r} is not a sortable property of {resource.name}; use one of "
            + ", ".join(sorted(resource.properties))
        )
    present = [(props[sort_by][0], identity(doc), doc) for doc, props in documents if props.get(sort_by)]
    absent = [(identity(doc), doc) for doc, props in documents if not props.get(sort_by)]
    present.sort(key=lambda item: item[1])
    present.sort(key=lambda item: item[0], reverse=descending)
    absent.sort(key=lambda item: item[0])
    return [doc for *_, doc in present] + [doc for _, doc in absent]


# -- the searchable resources ---------------------------------------------------------------------


def _feature_metadata_properties(document: JsonObject) -> Properties:
    parameters = document.get("Parameters", [])
    properties: Properties = {
        name: [document[name]]
        for name in (
            "FeatureGroupName",
            "FeatureName",
            "FeatureType",
            "Description",
            "CreationTime",
            "LastModifiedTime",
        )
        if name in document
    }
    properties["AllParameters"] = [text for item in parameters for text in (item["Key"], item["Value"])]
    for item in parameters:
        properties[f"Parameters.{item['Key']}"] = [item["Value"]]
    return properties


def _feature_metadata_elements(document: JsonObject, nested: str) -> list[Properties]:
    return [
        {"Parameters.Key": [item["Key"]], "Parameters.Value": [item["Value"]]}
        for item in document.get("Parameters", [])
    ]


FEATURE_METADATA = SearchableResource(
    name="FeatureMetadata",
    # The developer guide's searchable metadata for features ("Find features in your feature groups").
    properties={
        "FeatureGroupName": "text",
        "FeatureName": "text",
        "FeatureType": "text",
        "Description": "text",
        "AllParameters": "text",
        "CreationTime": "timestamp",
        "LastModifiedTime": "timestamp",
    },
    prefixes={"Parameters.": "text"},
    nested={"Parameters": {"Parameters.Key": "text", "Parameters.Value": "text"}},
    flatten=_feature_metadata_properties,
    elements=_feature_metadata_elements,
)


def _feature_group_properties(document: JsonObject) -> Properties:
    properties: Properties = {
        name: [document[name]]
        for name in (
            "FeatureGroupName",
            "FeatureGroupArn",
            "Description",
            "FeatureGroupStatus",
            "RecordIdentifierFeatureName",
            "EventTimeFeatureName",
            "FailureReason",
            "CreationTime",
            "LastModifiedTime",
        )
        if name in document
    }
    status = document.get("OfflineStoreStatus", {}).get("Status")
    if status is not None:
        properties["OfflineStoreStatus"] = properties["OfflineStoreStatus.Status"] = [status]
    return properties


def _feature_group_elements(document: JsonObject, nested: str) -> list[Properties]:
    return [
        {
            "FeatureDefinitions.FeatureName": [item["FeatureName"]],
            "FeatureDefinitions.FeatureType": [item["FeatureType"]],
        }
        for item in document.get("FeatureDefinitions", [])
    ]


_NO_TAGS = "the local runtime does not store tags (CreateFeatureGroup's Tags are not kept), so it cannot search them"

FEATURE_GROUP = SearchableResource(
    name="FeatureGroup",
    # The developer guide's searchable metadata for feature groups, less the tags.
    properties={
        "FeatureGroupName": "text",
        "FeatureGroupArn": "text",
        "Description": "text",
        "FeatureGroupStatus": "text",
        "OfflineStoreStatus": "text",
        "OfflineStoreStatus.Status": "text",
        "RecordIdentifierFeatureName": "text",
        "EventTimeFeatureName": "text",
        "FailureReason": "text",
        "CreationTime": "timestamp",
        "LastModifiedTime": "timestamp",
    },
    prefixes={},
    nested={"FeatureDefinitions": {"FeatureDefinitions.FeatureName": "text", "FeatureDefinitions.FeatureType": "text"}},
    flatten=_feature_group_properties,
    elements=_feature_group_elements,
    refused_prefixes={"Tags.": _NO_TAGS, "AllTags": _NO_TAGS},
)
