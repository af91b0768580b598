"""Feature definitions as code: entities, sources, windows, aggregations and feature groups.

Definitions are declared with keyword-only dataclasses and checked when they are created, so a
bad definition fails at import with a message that says how to fix it, long before a cluster is
started. Output names are generated here (``{aggregation}_{window}``) and nowhere else.

Nothing in this module touches Spark data: ``Filter`` and ``Derived`` produce ``Column``
expressions lazily, for the transform stage to apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from features.constants import RESERVED_NAMES

if TYPE_CHECKING:
    from pyspark.sql import Column


class DefinitionError(ValueError):
    """A feature definition is invalid; the message says where and how to fix it."""


#: SageMaker Feature Store feature types.
FeatureType = Literal["Integral", "Fractional", "String"]
#: Source column types, as Spark SQL type names.
ColumnType = Literal["string", "bigint", "int", "double", "decimal(12,2)", "boolean", "date", "timestamp"]
AggregationOp = Literal["count", "sum", "avg", "min", "max", "count_distinct", "last", "days_since_last"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: An owner is a team or alias as SageMaker's feature parameters can hold it (their pattern has no '@').
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/=+-]*$")
_TAG = re.compile(r"^[a-z][a-z0-9]*([-_:][a-z0-9]+)*$")
_VERSIONED = re.compile(r"^(?P<family>[a-z][a-z0-9_]*?)_v(?P<version>[0-9]+)$")
_WINDOW = re.compile(r"^([1-9][0-9]*)([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_NUMERIC = ("bigint", "int", "double", "decimal(12,2)")


def _check_name(kind: str, name: str, where: str) -> None:
    if not _NAME.match(name):
        raise DefinitionError(f"{kind} name {name!r} in {where}: use lower_snake_case starting with a letter")


@dataclass(frozen=True, order=True)
class Window:
    """A trailing window ``[T - length, T)`` ending at the snapshot time T."""

    seconds: int
    name: str = field(compare=False)

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @classmethod
    def parse(cls, spec: str, where: str = "definition") -> Window:
        match = _WINDOW.match(spec) if isinstance(spec, str) else None
        if not match:
            raise DefinitionError(
                f"window {spec!r} in {where}: use a whole number and one of m, h, d (e.g. '7d', '1h')"
            )
        return cls(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)], name=spec)


def parse_duration(spec: str, what: str, where: str) -> timedelta:
    """A declared duration such as ``"26h"`` (the window syntax: a whole number and m, h or d)."""
    match = _WINDOW.match(spec) if isinstance(spec, str) else None
    if not match:
        raise DefinitionError(f"{what} {spec!r} in {where}: use a whole number and one of m, h, d (e.g. '26h', '1d')")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _check_text(what: str, value: object, where: str, example: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(
            f"{where}: add {'an' if what[0] in 'aeiou' else 'a'} {what}, e.g. {what}={example}; "
            "it is published to the catalog, SageMaker and Glue"
        )
    if "\n" in value:
        raise DefinitionError(f"{what} of {where}: keep it on one line")


def _check_unit(unit: str | None, where: str) -> None:
    if unit is not None and (not isinstance(unit, str) or not unit.strip() or "\n" in unit):
        raise DefinitionError(f"unit {unit!r} of {where}: use a short one-line text such as 'events' or 'USD', or None")


@dataclass(frozen=True, kw_only=True)
class Entity:
    """Who features are about. ``pseudonymise=True`` declares the join key a personal identifier:
    with ``privacy.pseudonymisation.enabled`` it is replaced by its keyed pseudonym in every source
    at extract, so every store holds the pseudonym (docs/privacy.md)."""

    name: str
    join_key: str
    description: str
    pseudonymise: bool = False

    def __post_init__(self) -> None:
        _check_name("entity", self.name, "Entity")
        _check_name("join key", self.join_key, f"entity {self.name}")
        if not isinstance(self.pseudonymise, bool):
            raise DefinitionError(f"pseudonymise of entity {self.name}: use True or False")


#: The longest text a string column may hold unless a source says otherwise. Ids, codes and
#: categories are short; a megabyte in a field is a producer bug, and such a value would bloat
#: every shuffle, cache and online record it reached.
DEFAULT_MAX_LENGTH = 256
#: Timestamps outside this range are quarantined as ``out of range``: they parse, but an
#: e-commerce event before 1970 or after 2100 is a clock or encoding error (year 0001, 9999).
DEFAULT_TIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@dataclass(frozen=True, kw_only=True)
class Source:
    """A source's logical schema and the rules that decide whether a row is usable.

    ``required`` columns must be non-null, ``allowed_values`` restricts categorical columns and
    ``key`` is what duplicates (replays) are detected by. Rows failing a rule are quarantined
    with the rule as the reason, never dropped silently.

    The value rules bound what a row may carry, so garbage is rejected at the door instead of
    turning into a feature: string columns are at most ``max_length`` characters (per column in
    ``max_lengths``), ``patterns`` are regular expressions a whole value must match (Java regex
    syntax, as Spark evaluates them; for opaque ids, so metacharacters never reach a store),
    ``ranges`` are inclusive numeric bounds (NaN and infinities are always out of range), and
    every timestamp column must lie in ``time_range`` (``[from, until)``).
    """

    name: str
    description: str
    columns: Mapping[str, ColumnType]
    key: str
    timestamp: str | None = None
    required: Sequence[str] = ()
    allowed_values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    max_length: int = DEFAULT_MAX_LENGTH
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    patterns: Mapping[str, str] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    time_range: tuple[datetime, datetime] = DEFAULT_TIME_RANGE
    #: Columns holding personal identifiers (``pii=("customer_id",)``): pseudonymised at extract
    #: when ``privacy.pseudonymisation.enabled`` (docs/privacy.md); string columns only.
    pii: Sequence[str] = ()

    def __post_init__(self) -> None:
        _check_name("source", self.name, "Source")
        where = f"source {self.name}"
        if isinstance(self.pii, str):
            raise DefinitionError(f"pii of {where}: use a tuple of column names, e.g. pii=({self.pii!r},)")
        for column in self.pii:
            self.check_column(column, f"pii of {where}")
            if self.columns[column] != "string":
                raise DefinitionError(
                    f"pii column {column!r} of {where} is {self.columns[column]}: only string identifiers can be "
                    "pseudonymised; derive a coarser feature from it (age from birth_date) instead of declaring it pii"
                )
        object.__setattr__(self, "pii", tuple(self.pii))
        for column in (self.key, *(self.required), *self.allowed_values):
            self.check_column(column, where)
        if self.timestamp is not None:
            self.check_column(self.timestamp, where)
            if self.columns[self.timestamp] != "timestamp":
                raise DefinitionError(f"timestamp column {self.timestamp!r} of {where} must be declared 'timestamp'")
        for column, limit in {"*": self.max_length, **self.max_lengths}.items():
            if column != "*":
                self.check_column(column, f"max_lengths of {where}")
            if limit < 1:
                raise DefinitionError(f"max length {limit} for {column!r} in {where}: use a positive number")
        for column, pattern in self.patterns.items():
            self.check_column(column, f"patterns of {where}")
            if self.columns[column] != "string":
                raise DefinitionError(f"pattern for {column!r} in {where}: patterns apply to string columns only")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise DefinitionError(f"pattern {pattern!r} for {column!r} in {where} is not a regex: {exc}") from None
        for column, (low, high) in self.ranges.items():
            self.check_column(column, f"ranges of {where}")
            if self.columns[column] not in _NUMERIC:
                raise DefinitionError(f"range for {column!r} in {where}: ranges apply to numeric columns only")
            if low is not None and high is not None and low > high:
                raise DefinitionError(f"range for {column!r} in {where}: lower bound {low} is above {high}")
        since, until = self.time_range
        if since.tzinfo is None or until.tzinfo is None or since >= until:
            raise DefinitionError(f"time_range of {where}: use two zone-aware datetimes, the first earlier")

    def check_column(self, column: str, where: str) -> None:
        if column not in self.columns:
            known = ", ".join(self.columns)
            raise DefinitionError(f"unknown column {column!r} in {where}: source {self.name} has {known}")

    def max_length_of(self, column: str) -> int:
        """The longest value ``column`` may hold, in characters."""
        return self.max_lengths.get(column, self.max_length)


@dataclass(frozen=True, kw_only=True)
class Filter:
    """A declarative row filter, ``column IN values``, checked against the source at load."""

    column: str
    values: tuple[str, ...]

    def to_column(self) -> Column:
        from pyspark.sql import functions as F

        return F.col(self.column).isin(list(self.values))


def where(column: str, *values: str) -> Filter:
    """``where("status", "completed")`` keeps the rows whose status is completed."""
    if not values:
        raise DefinitionError(f"where({column!r}) needs at least one value to keep")
    return Filter(column=column, values=tuple(values))


@dataclass(frozen=True, kw_only=True)
class Aggregation:
    """One aggregation, computed for every window of its group.

    ``name`` is the base of the output names: ``order_amount_sum`` with windows 7d and 30d gives
    ``order_amount_sum_7d`` and ``order_amount_sum_30d``. ``days_since_last`` is not windowed:
    it looks at all history before T and its output name is ``name`` itself.
    """

    name: str
    op: AggregationOp
    description: str = ""
    column: str | None = None
    filter: Filter | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        _check_text("description", self.description, f"aggregation {self.name}", "'what it counts'")
        _check_unit(self.unit, f"aggregation {self.name}")

    @property
    def windowed(self) -> bool:
        return self.op != "days_since_last"


@dataclass(frozen=True, kw_only=True)
class Derived:
    """A row-level feature: ``expr(as_of)`` returns a Column over the source's columns."""

    name: str
    dtype: FeatureType
    inputs: Sequence[str]
    expr: Callable[[datetime], Column]
    description: str = ""
    unit: str | None = None

    def __post_init__(self) -> None:
        _check_text("description", self.description, f"feature {self.name}", "'what it is'")
        _check_unit(self.unit, f"feature {self.name}")


@dataclass(frozen=True, kw_only=True)
class FeatureSpec:
    """One output feature as the stores see it."""

    name: str
    dtype: FeatureType
    description: str
    aggregation: Aggregation | None = None
    window: Window | None = None
    unit: str | None = None


@dataclass(frozen=True, kw_only=True)
class FeatureGroup:
    """A set of features about one entity from one source, published together.

    Either ``aggregations`` over ``windows`` (event-style sources) or ``derived`` row-level
    features (one record per source row), not both: they have different row semantics.

    The governance metadata (``description``, ``owner``, ``tags``, ``freshness_sla``,
    ``update_frequency``) is published to the catalog, SageMaker and Glue; ``owner`` is required
    of every group in ``features/groups`` (:func:`features.registry.all_groups`). ``version`` names
    what is published: version 1 publishes as ``name`` (existing data keeps its name), version
    N >= 2 as ``<name>_vN``, side by side with the older versions. After construction ``name``
    *is* the published name (offline prefix, online feature group, Glue table, ``--group``) and
    ``family`` is the declared name shared by every version.
    """

    name: str
    description: str = ""
    owner: str = ""
    entity: Entity
    source: Source
    windows: Sequence[str] = ()
    aggregations: Sequence[Aggregation] = ()
    derived: Sequence[Derived] = ()
    tags: Sequence[str] = ()
    freshness_sla: str | None = None
    update_frequency: str | None = None
    version: int = 1
    online: bool = True
    online_ttl: str | None = None
    deprecated: bool | str = False
    family: str = field(init=False, repr=False, compare=False)
    parsed_windows: tuple[Window, ...] = field(init=False, repr=False, compare=False)
    features: tuple[FeatureSpec, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name("feature group", self.name, "FeatureGroup")
        self._publish_as_version()
        where = f"feature group {self.name}"
        self._check_metadata(where)
        self.source.check_column(self.entity.join_key, where)
        if bool(self.aggregations) == bool(self.derived):
            raise DefinitionError(
                f"{where}: declare either aggregations (with windows) or derived features, not "
                f"{'both' if self.aggregations else 'neither'}"
            )
        if self.aggregations and self.source.timestamp is None:
            raise DefinitionError(
                f"{where}: aggregations need a time column; set timestamp= on source {self.source.name}"
            )
        windows = tuple(sorted(Window.parse(w, where) for w in self.windows))
        if len({w.seconds for w in windows}) != len(windows):
            raise DefinitionError(f"{where}: windows {list(self.windows)} repeat the same length")
        if any(a.windowed for a in self.aggregations) and not windows:
            raise DefinitionError(f"{where}: windowed aggregations need windows=[...], e.g. ['7d']")
        object.__setattr__(self, "parsed_windows", windows)
        specs = [*self._aggregation_specs(where), *self._derived_specs(where)]
        seen: dict[str, str] = {}
        for spec in specs:
            if spec.name in RESERVED_NAMES or spec.name == self.entity.join_key:
                raise DefinitionError(
                    f"feature {spec.name!r} in {where} uses a reserved name; reserved are "
                    f"{', '.join(sorted(RESERVED_NAMES))} and the join key — rename the feature"
                )
            if spec.name in seen:
                raise DefinitionError(
                    f"duplicate output name {spec.name!r} in {where} (from {seen[spec.name]} and "
                    f"{spec.description!r}); give one of them a different name"
                )
            seen[spec.name] = spec.description
        object.__setattr__(self, "features", tuple(specs))

    def _publish_as_version(self) -> None:
        """Set ``family`` and make ``name`` the published name; idempotent, so ``replace()`` works."""
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise DefinitionError(
                f"version {self.version!r} of feature group {self.name}: use a whole number >= 1 (1 is the first)"
            )
        match = _VERSIONED.match(self.name)
        if match and int(match.group("version")) == self.version and self.version >= 2:
            object.__setattr__(self, "family", match.group("family"))
            return
        if match:
            raise DefinitionError(
                f"feature group {self.name}: drop the '_v{match.group('version')}' suffix and declare "
                f"name={match.group('family')!r}, version={int(match.group('version'))}; the suffix is added "
                "from version"
            )
        object.__setattr__(self, "family", self.name)
        if self.version >= 2:
            object.__setattr__(self, "name", f"{self.name}_v{self.version}")

    def _check_metadata(self, where: str) -> None:
        _check_text("description", self.description, where, "'what the group describes'")
        # Required of every published group; the registry checks it (a group built in code, e.g. in
        # a test, may leave it out).
        if self.owner and not _OWNER.match(self.owner):
            raise DefinitionError(
                f"owner {self.owner!r} of {where}: use a team name such as 'ml-platform' (letters, digits, spaces "
                "and _.:/=+-, as SageMaker feature parameters allow; no '@', keep contact emails in the team's docs)"
            )
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise DefinitionError(f"tags of {where}: use a tuple of strings, e.g. tags=('browsing', 'engagement')")
        for tag in self.tags:
            if not _TAG.match(tag):
                raise DefinitionError(
                    f"tag {tag!r} in {where}: use lower-case letters and digits joined by -, _ or : "
                    "(e.g. 'ads-ranking', 'tier:gold')"
                )
        if len(set(self.tags)) != len(self.tags):
            raise DefinitionError(f"tags of {where} repeat a tag: {list(self.tags)}")
        object.__setattr__(self, "tags", tuple(self.tags))
        sla = parse_duration(self.freshness_sla, "freshness_sla", where) if self.freshness_sla is not None else None
        every = (
            parse_duration(self.update_frequency, "update_frequency", where)
            if self.update_frequency is not None
            else None
        )
        if sla is not None and every is not None and sla < every:
            raise DefinitionError(
                f"freshness_sla {self.freshness_sla!r} of {where} is shorter than update_frequency "
                f"{self.update_frequency!r}: every run would be late; allow at least one interval plus the run time"
            )
        if not isinstance(self.online, bool):
            raise DefinitionError(f"online of {where}: use True (online and offline) or False (offline store only)")
        if self.online_ttl is not None:
            if not self.online:
                raise DefinitionError(
                    f"online_ttl of {where}: the group is offline-only (online=False); drop online_ttl"
                )
            parse_duration(self.online_ttl, "online_ttl", where)
        reason_ok = isinstance(self.deprecated, str) and self.deprecated.strip() and "\n" not in self.deprecated
        if not (isinstance(self.deprecated, bool) or reason_ok):
            raise DefinitionError(
                f"deprecated of {where}: use False, True or a one-line reason such as 'use {self.family}_v2'"
            )

    @property
    def freshness_sla_length(self) -> timedelta | None:
        """``freshness_sla`` as a duration: the oldest a published snapshot may be; None when undeclared."""
        return None if self.freshness_sla is None else parse_duration(self.freshness_sla, "freshness_sla", self.name)

    @property
    def update_interval(self) -> timedelta | None:
        """``update_frequency`` as a duration; None when undeclared."""
        if self.update_frequency is None:
            return None
        return parse_duration(self.update_frequency, "update_frequency", self.name)

    @property
    def online_ttl_length(self) -> timedelta | None:
        """``online_ttl`` as a duration (ExpiresAt = EventTime + TTL online); None: records never expire."""
        return None if self.online_ttl is None else parse_duration(self.online_ttl, "online_ttl", self.name)

    @property
    def deprecation_reason(self) -> str | None:
        """None when the group is current; the declared reason (or 'deprecated') when it is not."""
        if self.deprecated is False:
            return None
        return self.deprecated if isinstance(self.deprecated, str) else "deprecated"

    @property
    def largest_window(self) -> Window | None:
        return self.parsed_windows[-1] if self.parsed_windows else None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def _aggregation_specs(self, where: str) -> list[FeatureSpec]:
        specs: list[FeatureSpec] = []
        for agg in self.aggregations:
            _check_name("aggregation", agg.name, where)
            at = f"aggregation {agg.name} of {where}"
            dtype = self._output_type(agg, at)
            if agg.filter is not None:
                self.source.check_column(agg.filter.column, at)
            if agg.windowed:
                for window in self.parsed_windows:
                    specs.append(
                        FeatureSpec(
                            name=f"{agg.name}_{window.name}",
                            dtype=dtype,
                            description=f"{agg.description} (last {window.name})",
                            aggregation=agg,
                            window=window,
                            unit=agg.unit,
                        )
                    )
            else:
                specs.append(
                    FeatureSpec(name=agg.name, dtype=dtype, description=agg.description, aggregation=agg, unit=agg.unit)
                )
        return specs

    def _output_type(self, agg: Aggregation, at: str) -> FeatureType:
        if agg.op in ("count", "days_since_last"):
            if agg.column is not None and agg.op == "count":
                raise DefinitionError(f"{at}: count counts rows; drop column= or use count_distinct")
            return "Integral"
        if agg.column is None:
            raise DefinitionError(f"{at}: op {agg.op!r} needs column=, a column of source {self.source.name}")
        self.source.check_column(agg.column, at)
        ctype = self.source.columns[agg.column]
        if agg.op == "count_distinct":
            return "Integral"
        if agg.op in ("sum", "avg") and ctype not in _NUMERIC:
            raise DefinitionError(f"{at}: {agg.op} needs a numeric column; {agg.column!r} is {ctype}")
        if agg.op == "avg" or ctype in ("double", "decimal(12,2)"):
            return "Fractional"
        if ctype in ("bigint", "int"):
            return "Integral"
        if ctype == "string":
            return "String"
        raise DefinitionError(f"{at}: {agg.op} of a {ctype} column has no feature type; derive one instead")

    def _derived_specs(self, where: str) -> list[FeatureSpec]:
        specs = []
        for d in self.derived:
            _check_name("feature", d.name, where)
            for column in d.inputs:
                self.source.check_column(column, f"feature {d.name} of {where}")
            specs.append(FeatureSpec(name=d.name, dtype=d.dtype, description=d.description, unit=d.unit))
        return specs
