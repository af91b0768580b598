"""Run a group's checks as a Great Expectations 1.x suite on the snapshot's Spark DataFrame.

The suite comes from :mod:`features.validate.spec` (derived rules + the group's declared
``EXPECTATIONS`` + the row-count band) and runs in an ephemeral GX context through a Spark data
source, a dataframe asset and a whole-dataframe batch definition, on the DataFrame the pipeline
has already cached.

Why it is shaped this way (measured, see bench/VALIDATE_RESULTS.md):

* GX's Spark engine bundles every *aggregate* metric of one compute domain into one
  ``df.agg(...).collect()``; column-map expectations (not null, between, unique's count aside)
  are such aggregates, so dozens of them cost one pass over the cached data.
* GX's own ``expect_column_pair_values_a_to_be_greater_than_b`` is *not* bundled on Spark: its
  unexpected count and its filtered row count are each a separate ``count()`` job, two Spark jobs
  per pair. The pair rules here (distinct <= count, nested windows, min <= avg <= max) are about
  half of every suite, so they use :class:`ExpectColumnValuesToNotExceedColumn`, a column-map
  expectation comparing a column with another one, whose unexpected count is an aggregate and joins
  the single bundled pass.
* The suite runs once with ``BOOLEAN_ONLY``, which computes only those aggregates. Unexpected
  values would be one more Spark job per expectation, so they are fetched afterwards and only for
  the expectations that failed (``SUMMARY``, five samples with the entity key).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import great_expectations as gx
from great_expectations.core.expectation_suite import ExpectationSuite
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.exceptions.exceptions import GreatExpectationsError
from great_expectations.execution_engine.sparkdf_execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    Expectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_map_metric_provider import (
    ColumnMapMetricProvider,
)
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features.definitions import DefinitionError, FeatureGroup
from features.validate.spec import (
    ExpectationSpec,
    declared_specs,
    derived_specs,
    referenced_columns,
    row_count_spec,
)

#: Sample values kept per failed expectation.
SAMPLE_SIZE = 5
_MAP_EXPECTATIONS = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)


class ColumnValuesNotAboveColumn(ColumnMapMetricProvider):
    """Map condition ``column <= other_column``; a null on either side is not compared."""

    condition_metric_name = "column_values.not_above_column"
    condition_value_keys = ("other_column",)

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column: Column, other_column: str, **kwargs: Any) -> Column:  # noqa: N805 - GX passes the class
        # A null comparison is null, which GX's unexpected count (``when(cond, 1)``) skips.
        return column <= F.col(other_column)


class ExpectColumnValuesToNotExceedColumn(ColumnMapExpectation):
    """Expect each value of ``column`` to be <= the same row's ``other_column``.

    A column-map expectation rather than a column-pair one so that Spark computes its unexpected
    count in the same bundled aggregation as the other column-map checks (see module docstring).
    Rows where either value is null are ignored.
    """

    other_column: str
    map_metric = ColumnValuesNotAboveColumn.condition_metric_name
    success_keys = ("other_column", "mostly")
    args_keys = ("column", "other_column")


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result, in the shape the run report and the HTML report use."""

    name: str
    columns: list[str]
    description: str
    success: bool
    #: Rows that broke the rule; 0 for a passed row-level rule, None where it does not apply.
    unexpected_count: int | None
    #: Up to five offending values; rows carry the entity key (and the compared column).
    sample_values: list[Any] = field(default_factory=list)
    #: What table-level expectations measured (the row count).
    observed_value: Any = None
    #: Set when GX could not evaluate the expectation (e.g. a missing column): counts as failed.
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": self.columns,
            "description": self.description,
            "success": self.success,
            "unexpected_count": self.unexpected_count,
            "sample_values": self.sample_values,
            "observed_value": self.observed_value,
            "error": self.error,
        }


def group_specs(group: FeatureGroup, *, previous_rows: int | None, row_count_band: float) -> list[ExpectationSpec]:
    """Derived + declared checks, plus the row-count band when there is a non-empty previous snapshot.

    An empty previous snapshot (an outage) sets no band: a band around 0 would block the recovery.
    """
    specs = derived_specs(group) + declared_specs(group)
    if previous_rows:
        specs.append(row_count_spec(previous_rows, row_count_band))
    return specs


def build_suite(name: str, specs: Iterable[ExpectationSpec]) -> ExpectationSuite:
    """A GX suite from specs; a spec GX rejects raises DefinitionError naming it."""
    _context()
    suite = ExpectationSuite(name=name)
    for spec in specs:
        config = ExpectationConfiguration(
            type=spec.type, kwargs=dict(spec.kwargs), meta={"description": spec.description}
        )
        try:
            expectation = config.to_domain_obj()
        except (GreatExpectationsError, ValueError, TypeError) as exc:
            raise DefinitionError(
                f"expectation {spec.type}({', '.join(f'{k}={v!r}' for k, v in spec.kwargs.items())}) of suite "
                f"{name} is not valid for Great Expectations {gx.__version__}: {str(exc).strip().splitlines()[0]}"
            ) from exc
        suite.add_expectation(expectation)
    return suite


def run_suite(df: DataFrame, suite: ExpectationSuite, *, key: str) -> list[ExpectationOutcome]:
    """Validate ``df`` (cached by the caller) with ``suite``: one bundled run, details for failures."""
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    summary = batch.validate(suite, result_format={"result_format": "BOOLEAN_ONLY"})
    outcomes = []
    for result in summary.results:
        error = _error_message(result.exception_info)
        if result.success or error is not None:
            outcomes.append(_outcome(result, error=error))
            continue
        assert result.expectation_config is not None
        expectation = result.expectation_config.to_domain_obj()
        detail = batch.validate(expectation, result_format=_detail_format(expectation, key))
        outcomes.append(_outcome(detail, error=_error_message(detail.exception_info)))
    return outcomes


@cache
def _context() -> Any:
    """One ephemeral GX context per process: in memory, no analytics, no progress bars.

    GX needs an active context before a suite can take expectations; building one costs about a
    second, so every group and run shares it.
    """
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


@cache
def _batch_definition() -> Any:
    """Spark data source -> dataframe asset -> whole-dataframe batch definition.

    The asset takes any DataFrame per batch (``batch_parameters``), so one serves every group.
    """
    source = _context().data_sources.add_spark(name="feature_pipeline")
    asset = source.add_dataframe_asset(name="snapshot")
    return asset.add_batch_definition_whole_dataframe("whole_snapshot")


def _detail_format(expectation: Expectation, key: str) -> dict[str, Any]:
    """SUMMARY with five samples, identified by the entity key (and the compared column)."""
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
    column = getattr(expectation, "column", None)
    if isinstance(expectation, ColumnMapExpectation) and column != key:
        other = getattr(expectation, "other_column", None)
        result_format["unexpected_index_column_names"] = [key, *([other] if other else [])]
    return result_format


def _outcome(result: ExpectationValidationResult, *, error: str | None) -> ExpectationOutcome:
    config = result.expectation_config
    assert config is not None, "GX returns every result with its expectation's configuration"
    expectation = config.to_domain_obj()
    details: dict[str, Any] = dict(result.result or {})
    samples: Sequence[Any] = (
        details.get("partial_unexpected_index_list") or details.get("partial_unexpected_list") or []
    )
    count = details.get("unexpected_count")
    if count is None and result.success and isinstance(expectation, _MAP_EXPECTATIONS):
        # BOOLEAN_ONLY reports no count; with mostly = 1 a pass means no unexpected rows.
        count = 0 if config.kwargs.get("mostly", 1) == 1 else None
    return ExpectationOutcome(
        name=config.type,
        columns=referenced_columns(config.kwargs),
        description=str((config.meta or {}).get("description", "")),
        success=bool(result.success) and error is None,
        unexpected_count=None if count is None else int(count),
        sample_values=list(samples[:SAMPLE_SIZE]),
        observed_value=details.get("observed_value"),
        error=error,
    )


def _error_message(info: Any) -> str | None:
    """GX's exception_info is one record, or a dict of records keyed by metric: first message."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message") or "expectation raised") if info["raised_exception"] else None
    for value in info.values():
        message = _error_message(value)
        if message is not None:
            return message
    return None
