"""Typed pipeline configuration, loaded once from YAML with ``--set`` overrides.

Infrastructure settings live here and never inside feature definitions. The loader is strict on
purpose: a typo in a key (``offline_store.rot``) or a wrong type (``shuffle_partitions: many``)
fails at start-up with the key named, instead of silently falling back to a default and writing
somewhere unexpected. Secrets are never configuration: conf files name where a secret lives
(e.g. a Secrets Manager id), not its value.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the fix."""


@dataclass(frozen=True, kw_only=True)
class SparkConf:
    """How the SparkSession is built. ``master`` is only used outside spark-submit."""

    app_name: str = "feature-pipeline"
    master: str | None = None
    shuffle_partitions: int = 200
    #: Extra Spark properties, passed through verbatim (``spark.executor.memory: 4g``).
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class JdbcConf:
    """A live read of an RDS table over JDBC.

    The password is never configuration: name the environment variable holding it
    (``password_env``) or the AWS Secrets Manager secret (``password_secret_id``; a JSON secret's
    ``password`` key, or the plain secret string).
    """

    url: str
    table: str
    user: str
    password_env: str | None = None
    password_secret_id: str | None = None
    #: JDBC driver class; None lets the driver manager pick it from the URL.
    driver: str | None = None
    #: Numeric or timestamp column to split the read on; None reads in one partition.
    partition_column: str | None = None
    num_partitions: int = 4
    fetch_size: int = 10_000


@dataclass(frozen=True, kw_only=True)
class FileSourceConf:
    """Where a source is read from: files (S3 event logs, RDS snapshot exports) or JDBC."""

    path: str = ""
    format: Literal["json", "parquet"] = "parquet"
    #: ``dt``: event logs under ``dt=YYYY-MM-DD/`` (only the days a snapshot needs are read);
    #: ``none``: one table extract read whole.
    partitioning: Literal["dt", "none"] = "none"
    #: Event logs only: days after an event's own day in which it may still arrive (its ``dt``).
    lateness_days: int = 1
    #: Event logs only: how far past the end of its dt day an event time may lie before the row
    #: is quarantined as "event_time in the future" (clock skew allowance).
    future_tolerance: str = "1h"
    #: A corrupt file (bad gzip, bad Parquet footer): ``fail`` the run naming the file, or
    #: ``quarantine`` it whole as one quarantined input with the file name and the error.
    on_corrupt_file: Literal["fail", "quarantine"] = "fail"
    #: Read the table live over JDBC instead of from ``path``.
    jdbc: JdbcConf | None = None

    def __post_init__(self) -> None:
        if bool(self.path) == (self.jdbc is not None):
            raise ConfigError("a source needs exactly one of path (files) or jdbc (a live table)")
        if self.jdbc is not None and (self.jdbc.password_env is None) == (self.jdbc.password_secret_id is None):
            raise ConfigError("jdbc needs exactly one of password_env or password_secret_id")


@dataclass(frozen=True, kw_only=True)
class SourcesConf:
    clickstream: FileSourceConf
    orders: FileSourceConf
    customers: FileSourceConf


@dataclass(frozen=True, kw_only=True)
class SnapshotConf:
    """How snapshots are cut.

    ``dropout_lookback`` is how far before the largest window an entity's last event may lie for
    it to still get one record with zero counts; set it to the interval between scheduled
    snapshots (a larger value repeats the zero record, which is harmless).
    """

    dropout_lookback: str = "1d"


@dataclass(frozen=True, kw_only=True)
class OfflineStoreConf:
    root: str
    format: Literal["parquet"] = "parquet"


@dataclass(frozen=True, kw_only=True)
class OnlineStoreConf:
    """The SageMaker Feature Store online store the latest records are pushed to.

    Credentials come only from the default AWS chain (instance profile, EMR job role, env).
    ``endpoint_url`` points at the local runtime in development; null means AWS itself.
    """

    enabled: bool = False
    endpoint_url: str | None = None
    #: Local development: with no endpoint_url, run the local Feature Store runtime in-process on
    #: this SQLite file for the duration of the command (records persist across runs).
    embedded_db: str | None = None
    region: str = "us-east-1"
    write_api: Literal["put_record", "batch_write_record"] = "batch_write_record"
    max_in_flight: int = 16
    max_attempts: int = 8
    base_backoff_ms: float = 50.0
    max_backoff_ms: float = 5000.0
    #: Push partitions; null = one per executor core.
    partitions: int | None = None
    dead_letter_root: str = ""
    #: Dead-lettered records allowed before the run fails.
    dead_letter_tolerance: int = 0
    #: Create the feature groups (idempotently) before pushing.
    register: bool = False
    #: Where SageMaker's own offline store would live for registered groups (null: online only).
    offline_s3_uri: str | None = None
    #: IAM role SageMaker assumes to write that offline store (AWS only).
    role_arn: str | None = None

    @property
    def runs_embedded(self) -> bool:
        """Whether commands run the local runtime in-process (no endpoint_url, an embedded_db)."""
        return bool(self.embedded_db) and not self.endpoint_url

    def __post_init__(self) -> None:
        if self.enabled and not self.dead_letter_root:
            raise ConfigError("dead_letter_root is required when the online store is enabled")


@dataclass(frozen=True, kw_only=True)
class DriftConf:
    """Drift of each feature against the previous snapshot in the offline store."""

    #: Population stability index above which a feature has drifted.
    psi_threshold: float = 0.25
    psi_action: Literal["warn", "fail"] = "warn"
    #: Absolute change in a feature's null rate that counts as drift.
    null_rate_threshold: float = 0.1
    null_rate_action: Literal["warn", "fail"] = "warn"
    bins: int = 10


@dataclass(frozen=True, kw_only=True)
class ValidationConf:
    """The quality gate run on every snapshot before anything is written."""

    enabled: bool = True
    #: ``strict``: a failed expectation writes nothing and fails the run; ``warn``: write and report.
    policy: Literal["strict", "warn"] = "strict"
    #: Per-group policy overrides, e.g. ``{customer_profile: warn}``.
    group_policies: dict[str, str] = field(default_factory=dict)
    #: Allowed relative change of the row count against the previous snapshot (0.5 = +-50%).
    row_count_band: float = 0.5
    drift: DriftConf = field(default_factory=DriftConf)
    #: Maximum age of the newest input event at the as-of time (a duration like 1d).
    freshness_max_age: str = "2d"
    freshness_action: Literal["warn", "fail"] = "warn"

    def __post_init__(self) -> None:
        for group, policy in self.group_policies.items():
            if policy not in ("strict", "warn"):
                raise ConfigError(f"group_policies.{group} must be strict or warn; got {policy!r}")

    def policy_for(self, group: str) -> str:
        return self.group_policies.get(group, self.policy)


@dataclass(frozen=True, kw_only=True)
class QuarantineConf:
    root: str


@dataclass(frozen=True, kw_only=True)
class ReportsConf:
    root: str


@dataclass(frozen=True, kw_only=True)
class PipelineConf:
    """The whole configuration of one environment (``conf/<env>.yaml``)."""

    env: str
    spark: SparkConf
    sources: SourcesConf
    snapshot: SnapshotConf
    offline_store: OfflineStoreConf
    quarantine: QuarantineConf
    reports: ReportsConf
    online_store: OnlineStoreConf = field(default_factory=OnlineStoreConf)
    validation: ValidationConf = field(default_factory=ValidationConf)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_conf(path: str | Path, overrides: Sequence[str] = ()) -> PipelineConf:
    """Load ``path``, apply ``key.path=value`` overrides, and return the typed configuration.

    ``${NAME}`` in a string value is replaced by the environment variable NAME (an unset
    variable is an error), so one conf file serves several buckets without holding secrets.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist; pass --conf conf/<env>.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level")
    for item in overrides:
        _apply_override(raw, item)
    conf: PipelineConf = _build(PipelineConf, _expand_env(raw, ""), "")
    return conf


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like key.path=value")
    value = yaml.safe_load(text) if text.strip() else ""
    parts = key.strip().split(".")
    node: Any = raw
    cls: Any = PipelineConf
    for depth, part in enumerate(parts[:-1]):
        hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
        if part not in hints:
            raise ConfigError(_unknown_key(".".join(parts[: depth + 1]), cls))
        target = _strip_optional(hints[part])
        if typing.get_origin(target) is dict:
            node = node.setdefault(part, {})
            node[".".join(parts[depth + 1 :])] = text
            return
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {'.'.join(parts[: depth + 1])} is not a section")
        cls = target
    if dataclasses.is_dataclass(cls) and parts[-1] not in typing.get_type_hints(cls):
        raise ConfigError(_unknown_key(key, cls))
    node[parts[-1]] = value


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


def _unknown_key(key: str, cls: Any) -> str:
    allowed = ", ".join(f.name for f in dataclasses.fields(cls))
    return f"unknown configuration key {key!r}; allowed here: {allowed}"


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _build(cls: Any, data: Any, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'configuration'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(_unknown_key(f"{prefix}{key}", cls))
    kwargs: dict[str, Any] = {}
    for name, fld in known.items():
        key = f"{prefix}{name}"
        if name not in data:
            no_default = fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING
            if no_default:
                raise ConfigError(f"missing configuration key {key!r}")
            continue
        kwargs[name] = _coerce(hints[name], data[name], key)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{prefix.rstrip('.') or 'configuration'}: {exc}") from None


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        return _coerce(_strip_optional(tp), value, key)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{key}.")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping; got {value!r}")
        return {str(k): _scalar_text(v) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false; got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be a whole number; got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number; got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{key} must be a string; got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported configuration type {tp!r}")


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
