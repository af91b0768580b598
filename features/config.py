"""Typed pipeline configuration: strict pydantic models loaded once from YAML plus ``--set``.

Every value is checked when the file loads (types, ranges, enums, source and group names), so a
typo fails before Spark starts with one line naming the key and the fix. Durations are parsed
into ``timedelta`` here and nowhere else. Secrets are never configuration: a conf file names
where a secret lives. Keys and their meaning: docs/configuration.md.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from features.definitions import DefinitionError, Window


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the fix."""


def _text(value: Any) -> Any:
    """YAML reads ``4g`` as text but ``4`` as a number: both are fine where text is wanted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float | date) else value


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    try:
        return Window.parse(value, "configuration").length
    except DefinitionError:
        raise ValueError(f"must be a duration like 1d, 6h or 30m; got {value!r}") from None


Text = Annotated[str, BeforeValidator(_text)]
#: ``1d``, ``6h``, ``30m`` in YAML; a ``timedelta`` in code.
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Action = Literal["warn", "fail"]
Policy = Literal["strict", "warn"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SparkConf(_Section):
    """How the SparkSession is built. ``master`` is only used outside spark-submit."""

    app_name: Text = "feature-pipeline"
    master: Text | None = None
    shuffle_partitions: int = Field(default=200, ge=1)
    #: Extra Spark properties, passed through verbatim (``spark.executor.memory: 4g``).
    conf: dict[str, Text] = Field(default_factory=dict)


class JdbcConf(_Section):
    """A live read of an RDS table over JDBC (docs/jdbc.md).

    The password is never configuration: name the environment variable holding it
    (``password_env``) or the AWS Secrets Manager secret (``password_secret_id``).
    """

    url: Text
    table: Text
    user: Text
    password_env: Text | None = None
    password_secret_id: Text | None = None
    #: JDBC driver class; None lets the driver manager pick it from the URL.
    driver: Text | None = None
    #: Numeric or timestamp column to split the read on; None reads in one partition.
    partition_column: Text | None = None
    num_partitions: int = Field(default=4, ge=1)
    fetch_size: int = Field(default=10_000, ge=1)


class SourceConf(_Section):
    """Where one source is read from: files (S3 event logs, RDS snapshot exports) or JDBC."""

    path: Text = ""
    format: Literal["json", "parquet"] = "parquet"
    #: ``dt``: event logs under ``dt=YYYY-MM-DD/`` (only the days a snapshot needs are read);
    #: ``none``: one table extract read whole.
    partitioning: Literal["dt", "none"] = "none"
    #: Event logs only: days after an event's own day in which it may still arrive (its ``dt``).
    lateness_days: int = Field(default=1, ge=0)
    #: Event logs only: how far past the end of its dt day an event time may lie (clock skew).
    future_tolerance: Duration = timedelta(hours=1)
    #: A corrupt file (bad gzip, bad Parquet footer): ``fail`` naming the file, or ``quarantine``.
    on_corrupt_file: Literal["fail", "quarantine"] = "fail"
    #: Read the table live over JDBC instead of from ``path``.
    jdbc: JdbcConf | None = None

    @model_validator(mode="after")
    def _files_or_jdbc(self) -> SourceConf:
        if bool(self.path) == (self.jdbc is not None):
            raise ValueError("a source needs exactly one of path (files) or jdbc (a live table)")
        if self.jdbc is not None and (self.jdbc.password_env is None) == (self.jdbc.password_secret_id is None):
            raise ValueError("jdbc needs exactly one of password_env or password_secret_id")
        return self


class SnapshotConf(_Section):
    """How snapshots are cut; ``dropout_lookback`` is explained in docs/semantics.md."""

    dropout_lookback: Duration = timedelta(days=1)


class OfflineStoreConf(_Section):
    root: Text
    format: Literal["parquet"] = "parquet"


class OnlineStoreConf(_Section):
    """The SageMaker Feature Store online store the latest records are pushed to.

    Credentials come only from the default AWS chain (instance profile, EMR job role, env).
    ``endpoint_url`` points at the local runtime in development; null means AWS itself.
    """

    enabled: bool = False
    endpoint_url: Text | None = None
    #: Local development: with no endpoint_url, run the local Feature Store runtime in-process on
    #: this SQLite file for the duration of the command (records persist across runs).
    embedded_db: Text | None = None
    region: Text = "us-east-1"
    write_api: Literal["put_record", "batch_write_record"] = "batch_write_record"
    max_in_flight: int = Field(default=16, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    base_backoff_ms: float = Field(default=50.0, ge=0)
    max_backoff_ms: float = Field(default=5000.0, ge=0)
    #: Push partitions; null = one per executor core.
    partitions: int | None = Field(default=None, ge=1)
    dead_letter_root: Text = ""
    #: Dead-lettered records allowed before the run fails.
    dead_letter_tolerance: int = Field(default=0, ge=0)
    #: Create the feature groups (idempotently) before pushing. (Key ``register``: a pydantic
    #: model cannot have a field of that name.)
    register_groups: bool = Field(default=False, alias="register")
    #: Where SageMaker's own offline store would live for registered groups (null: online only).
    offline_s3_uri: Text | None = None
    #: IAM role SageMaker assumes to write that offline store (AWS only).
    role_arn: Text | None = None

    @property
    def runs_embedded(self) -> bool:
        """Whether commands run the local runtime in-process (no endpoint_url, an embedded_db)."""
        return bool(self.embedded_db) and not self.endpoint_url

    @model_validator(mode="after")
    def _consistent(self) -> OnlineStoreConf:
        if self.enabled and not self.dead_letter_root:
            raise ValueError("dead_letter_root is required when the online store is enabled")
        if self.base_backoff_ms > self.max_backoff_ms:
            raise ValueError("base_backoff_ms must not exceed max_backoff_ms")
        return self


class DriftConf(_Section):
    """Drift of each feature against the previous snapshot in the offline store."""

    #: Population stability index above which a feature has drifted.
    psi_threshold: float = Field(default=0.25, gt=0)
    psi_action: Action = "warn"
    #: Absolute change in a feature's null rate that counts as drift.
    null_rate_threshold: float = Field(default=0.1, ge=0, le=1)
    null_rate_action: Action = "warn"
    bins: int = Field(default=10, ge=2, le=1000)


class ValidationConf(_Section):
    """The quality gate run on every snapshot before anything is written."""

    enabled: bool = True
    #: ``strict``: a failed expectation writes nothing and fails the run; ``warn``: write and report.
    policy: Policy = "strict"
    #: Per-group policy overrides, e.g. ``{customer_profile: warn}``.
    group_policies: dict[str, Policy] = Field(default_factory=dict)
    #: Allowed relative change of the row count against the previous snapshot (0.5 = +-50%).
    row_count_band: float = Field(default=0.5, ge=0)
    drift: DriftConf = Field(default_factory=DriftConf)
    #: Maximum age of the newest input event at the as-of time.
    freshness_max_age: Duration = timedelta(days=2)
    freshness_action: Action = "warn"

    def policy_for(self, group: str) -> Policy:
        return self.group_policies.get(group, self.policy)


class QuarantineConf(_Section):
    root: Text


class ReportsConf(_Section):
    root: Text


class PipelineConf(_Section):
    """The whole configuration of one environment (``conf/<env>.yaml``)."""

    env: Text
    spark: SparkConf
    #: One block per source, keyed by the source's name in its definition (features/sources.py).
    sources: dict[str, SourceConf]
    snapshot: SnapshotConf
    offline_store: OfflineStoreConf
    quarantine: QuarantineConf
    reports: ReportsConf
    online_store: OnlineStoreConf = Field(default_factory=OnlineStoreConf)
    validation: ValidationConf = Field(default_factory=ValidationConf)

    def source(self, name: str) -> SourceConf:
        """The configuration of source ``name``, or a ConfigError naming the block to add."""
        if name not in self.sources:
            raise ConfigError(f"no configuration for source {name!r}: add a sources.{name} block to the conf file")
        return self.sources[name]


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_conf(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    sources: Collection[str] | None = None,
    groups: Collection[str] | None = None,
) -> PipelineConf:
    """Load ``path``, apply ``key.path=value`` overrides, and return the checked configuration.

    ``${NAME}`` in a string value is replaced by the environment variable NAME (an unset
    variable is an error). Source names under ``sources`` and group names under
    ``validation.group_policies`` must be defined ones: ``sources`` / ``groups`` name them, by
    default everything the registry discovers.
    """
    raw = _read_yaml(Path(path))
    for item in overrides:
        _apply_override(raw, item)
    try:
        conf = PipelineConf.model_validate(_expand_env(raw, ""))
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    if sources is None or groups is None:
        from features.registry import all_groups, all_sources

        sources = all_sources() if sources is None else sources
        groups = all_groups() if groups is None else groups
    _check_names("sources", conf.sources, sources, "source", "features/sources.py")
    _check_names(
        "validation.group_policies", conf.validation.group_policies, groups, "feature group", "features/groups/"
    )
    return conf


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist; pass --conf conf/<env>.yaml") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {path} is a directory; pass --conf conf/<env>.yaml") from None
    except PermissionError:
        raise ConfigError(f"configuration file {path} is not readable (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not UTF-8 text (byte {exc.start}); pass a YAML file") from None
    raw = _parse_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level")
    return raw


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}") from None


def _apply_override(raw: dict[str, Any], item: str) -> None:
    """``a.b.c=value`` into the raw mapping; below a map of scalars the rest of the key is one name."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {item!r} must look like key.path=value")
    node: dict[str, Any] = raw
    annotation: Any = PipelineConf
    for depth, part in enumerate(parts[:-1]):
        annotation = _child(annotation, part)
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {'.'.join(parts[: depth + 1])} is not a section")
        if _is_scalar_map(annotation):
            child[".".join(parts[depth + 1 :])] = text
            return
        node = child
    node[parts[-1]] = _parse_yaml(text, f"--set {key}") if text.strip() else ""


def _child(annotation: Any, name: str) -> Any:
    """The annotation one key below ``annotation`` (None when unknown: pydantic will name it)."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {f.alias or n: f for n, f in annotation.model_fields.items()}
        return fields[name].annotation if name in fields else None
    if get_origin(annotation) is dict:
        return get_args(annotation)[1]
    return None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType) and len(args := [a for a in get_args(annotation) if a is not NoneType]) == 1:
            annotation = args[0]
        else:
            return annotation


def _is_scalar_map(annotation: Any) -> bool:
    annotation = _unwrap(annotation)
    if get_origin(annotation) is not dict:
        return False
    value = _unwrap(get_args(annotation)[1])
    return not (isinstance(value, type) and issubclass(value, BaseModel))


def _expand_env(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{key}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(sub, value)
    return value


def _check_names(key: str, given: Mapping[str, Any], known: Collection[str], what: str, where: str) -> None:
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{key}.{name}: no {what} named {name!r}; {hint}defined: {', '.join(sorted(known))} (see {where})"
            )


_KIND = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a mapping",
    "model": "a mapping",
}


def _one_line(exc: ValidationError) -> str:
    """pydantic's report -> ``key: what is wrong and what to write instead``, one line."""
    # A misspelt key also leaves the real one missing: name the misspelling, it is the cause.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = _describe(errors[0])
    return first if len(errors) == 1 else f"{first} (and {len(errors) - 1} more)"


def _describe(error: ErrorDetails) -> str:
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc)
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return f"unknown configuration key {key!r}; allowed here: {', '.join(_fields_at(loc[:-1]))}"
    if kind == "missing":
        return f"missing configuration key {key!r}"
    if kind == "literal_error":
        choices = [str(c) for c in get_args(_unwrap(_annotation_at(loc)))]
        return f"{key} must be one of {', '.join(choices)}; got {value!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        limit = next(iter((error.get("ctx") or {}).values()))
        return f"{key} must be {bound} {limit}; got {value!r}"
    if kind == "value_error":
        return f"{key or 'configuration'}: {error['msg'].removeprefix('Value error, ')}"
    prefix = kind.split("_", 1)[0]
    if prefix in _KIND:
        return f"{key} must be {_KIND[prefix]}; got {value!r}"
    return f"{key}: {error['msg']}"


def _annotation_at(loc: Sequence[str]) -> Any:
    annotation: Any = PipelineConf
    for part in loc:
        annotation = _child(annotation, part)
    return annotation


def _fields_at(loc: Sequence[str]) -> list[str]:
    model = _unwrap(_annotation_at(loc))
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [field.alias or name for name, field in model.model_fields.items()]
