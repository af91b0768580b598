"""Typed pipeline configuration: strict pydantic models loaded once from YAML plus ``--set``.

Every value is checked when the file loads (types, ranges, enums, path and URL shapes, source and
group names, keys that only make sense together), so a typo fails before Spark starts with one
line, ``key.path: what is wrong; the fix``. Durations are parsed into ``timedelta`` here and
nowhere else. Secrets are never configuration: a conf file names where a secret lives, and no
message repeats a value that may be one. Keys and their meaning: docs/configuration.md.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from features.definitions import DefinitionError, Window


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the fix."""


class _KeyValueError(ValueError):
    """A section's check that names the key below the section it is about (``key`` is relative)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


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
        raise ValueError(f"{_show(value)} is not a duration; use a whole number and one of m, h, d, e.g. 1d") from None


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; set a value")
    return value


def _matching(pattern: str, what: str, example: str, *, echo: bool = True) -> Callable[[str], str]:
    """A check that the whole value matches ``pattern``; ``echo=False`` for values that may be secrets."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            shown = f"{_show(value)} is" if echo else "the value is"
            raise ValueError(f"{shown} not {what}; use e.g. {example}")
        return value

    return check


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: Schemes Spark reads and writes here: EMRFS (``s3://``) on EMR, S3A elsewhere, HDFS, local files.
_STORAGE_SCHEMES = ("s3", "s3a", "hdfs", "file")


def _location(value: str, schemes: Sequence[str], fix: str) -> str:
    """A local path or a ``scheme://`` URI with one of ``schemes`` (and a bucket for S3)."""
    _non_empty(value)
    scheme, sep, rest = value.partition("://")
    if not sep:
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", value):
            raise ValueError(f"{_show(value)} is missing a slash after the scheme; {fix}")
        return value
    scheme = scheme.lower()
    if scheme == "s3n":
        raise ValueError(f"s3n:// is gone from Hadoop 3; {fix}")
    if scheme not in schemes:
        raise ValueError(f"{scheme}:// is not supported here; {fix}")
    if scheme in ("s3", "s3a") and not _BUCKET.fullmatch(rest.partition("/")[0]):
        raise ValueError(f"{_show(value)} has no valid bucket name; {fix}")
    return value


def _storage(value: str) -> str:
    return _location(value, _STORAGE_SCHEMES, "use a local path, s3://bucket/prefix (EMRFS) or s3a://bucket/prefix")


def _optional_storage(value: str) -> str:
    """Sources: an empty path means "no files" (the source is read over JDBC instead)."""
    return _storage(value) if value else value


def _dead_letter_root(value: str) -> str:
    """Dead letters are written with plain file IO or boto3, not Hadoop: local or S3 only."""
    fix = "use a local directory or s3://bucket/prefix"
    return _location(value, ("s3", "s3a"), fix) if value else value


def _local_file(value: str) -> str:
    _non_empty(value)
    if "://" in value:
        raise ValueError(f"{_show(value)} is a URI; the embedded runtime's SQLite file is local: use a local path")
    return value


def _http_url(value: str) -> str:
    _non_empty(value)
    fix = "use e.g. http://127.0.0.1:4566, or null for AWS's own endpoint"
    parts = urlsplit(value)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(f"{_show(value)} is not an http(s) URL with a host; {fix}")
    return value


def _s3_uri(value: str) -> str:
    if not value.startswith("s3://"):
        raise ValueError(f"{_show(value)} is not an s3:// URI (SageMaker takes only those); use s3://bucket/prefix")
    return _location(value, ("s3",), "use s3://bucket/prefix")


def _spark_master(value: str) -> str:
    fix = "use local[N], local[*], yarn, spark://host:port or k8s://..., or null under spark-submit"
    if not re.fullmatch(
        r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn|(spark|k8s)://\S+", value
    ):
        raise ValueError(f"{_show(value)} is not a Spark master URL; {fix}")
    return value


#: What ``features.session`` sets whatever the file says (tests hold the two equal): a different
#: value in ``spark.conf`` would be silently replaced, so it is refused instead.
FORCED_SPARK_SETTINGS = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "true"}
#: Spark properties that have their own key here; in ``spark.conf`` they would override it.
_OWN_KEYS = {
    "spark.master": "spark.master",
    "spark.app.name": "spark.app_name",
    "spark.sql.shuffle.partitions": "spark.shuffle_partitions",
}


def _spark_properties(conf: dict[str, str]) -> dict[str, str]:
    for key, value in conf.items():
        if not key.startswith("spark."):
            raise _KeyValueError(
                key,
                "Spark ignores properties that do not start with spark.; "
                f"Hadoop settings go as spark.hadoop.{key}, everything else with its spark. name",
            )
        if key in _OWN_KEYS:
            raise _KeyValueError(key, f"has its own key; set {_OWN_KEYS[key]} instead")
        forced = FORCED_SPARK_SETTINGS.get(key)
        if forced is not None and value.lower() != forced.lower():
            raise _KeyValueError(key, f"is always {forced} (features/session.py); remove it")
        if not value.strip():
            raise _KeyValueError(key, "is empty; set a value or remove the property")
    return conf


Text = Annotated[str, BeforeValidator(_text)]
NonEmpty = Annotated[str, BeforeValidator(_text), AfterValidator(_non_empty)]
#: A local path, ``s3://`` (EMRFS), ``s3a://``, ``hdfs://`` or ``file://``.
Storage = Annotated[str, BeforeValidator(_text), AfterValidator(_storage)]
#: ``1d``, ``6h``, ``30m`` in YAML; a ``timedelta`` in code. Always positive.
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Action = Literal["warn", "fail"]
Policy = Literal["strict", "warn"]

_IDENT = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"|`[^`]+`)'
_TABLE = re.compile(rf"{_IDENT}(?:\.{_IDENT}){{0,2}}")
_COLUMN = re.compile(_IDENT)
#: ``?password=``, ``;password=`` or ``//user:secret@host`` in a URL.
_URL_CREDENTIALS = re.compile(r"(?i)[?&;](password|pwd)=|//[^/@?]*:[^/@?]*@")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SparkConf(_Section):
    """How the SparkSession is built. ``master`` is only used outside spark-submit."""

    app_name: NonEmpty = "feature-pipeline"
    master: Annotated[str, BeforeValidator(_text), AfterValidator(_spark_master)] | None = None
    shuffle_partitions: int = Field(default=200, ge=1)
    #: Extra Spark properties, passed through verbatim (``spark.executor.memory: 4g``).
    conf: Annotated[dict[str, Text], AfterValidator(_spark_properties)] = Field(default_factory=dict)


class JdbcConf(_Section):
    """A live read of an RDS table over JDBC (docs/jdbc.md).

    The password is never configuration: name the environment variable holding it
    (``password_env``) or the AWS Secrets Manager secret (``password_secret_id``). The URL, table
    and column shapes are checked where a ``sources.<name>.jdbc`` block loads (:class:`SourceConf`);
    ``features.io.jdbc`` checks them again before it connects, for a JdbcConf built in code.
    """

    url: Text
    table: Text
    user: NonEmpty
    password_env: (
        Annotated[
            str,
            BeforeValidator(_text),
            AfterValidator(
                _matching(
                    r"[A-Za-z_][A-Za-z0-9_]*",
                    "an environment variable name (name the variable, never the password)",
                    "ORDERS_DB_PASSWORD",
                    echo=False,
                )
            ),
        ]
        | None
    ) = None
    password_secret_id: (
        Annotated[
            str,
            BeforeValidator(_text),
            AfterValidator(
                _matching(
                    r"(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}",
                    "a Secrets Manager secret name or ARN",
                    "rds/features",
                    echo=False,
                )
            ),
        ]
        | None
    ) = None
    #: JDBC driver class; None lets the driver manager pick it from the URL.
    driver: (
        Annotated[
            str,
            BeforeValidator(_text),
            AfterValidator(
                _matching(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+", "a Java class name", "org.postgresql.Driver")
            ),
        ]
        | None
    ) = None
    #: Numeric or timestamp column to split the read on; None reads in one partition.
    partition_column: Text | None = None
    num_partitions: int = Field(default=4, ge=1, le=1000)
    fetch_size: int = Field(default=10_000, ge=1, le=1_000_000)


def _check_jdbc(jdbc: JdbcConf) -> None:
    """What would put a secret somewhere visible, SQL where an identifier belongs, or do nothing."""
    if not re.match(r"jdbc:[a-z][a-z0-9]*:", jdbc.url):
        raise _KeyValueError("jdbc.url", "is not a JDBC URL; use e.g. jdbc:postgresql://host:5432/db")
    if _URL_CREDENTIALS.search(jdbc.url):
        raise _KeyValueError(
            "jdbc.url",
            "holds a password (it would be logged and reported); remove it and name it with "
            "jdbc.password_env or jdbc.password_secret_id",
        )
    if jdbc.url.lower().startswith("jdbc:mariadb:"):
        raise _KeyValueError(
            "jdbc.url",
            "Spark has no dialect for jdbc:mariadb: URLs (it would quote column names as strings); "
            "use jdbc:mysql://host:3306/db?permitMysqlScheme with the MariaDB driver",
        )
    if not _TABLE.fullmatch(jdbc.table):
        raise _KeyValueError("jdbc.table", f"{_show(jdbc.table)} is not a table name; use e.g. orders or public.orders")
    if jdbc.partition_column is not None and not _COLUMN.fullmatch(jdbc.partition_column):
        raise _KeyValueError(
            "jdbc.partition_column", f"{_show(jdbc.partition_column)} is not a column name; use e.g. order_time"
        )
    if jdbc.partition_column is None and "num_partitions" in jdbc.model_fields_set:
        raise _KeyValueError(
            "jdbc.num_partitions",
            "has no effect without jdbc.partition_column; name the column to split the read on, or remove it",
        )
    if (jdbc.password_env is None) == (jdbc.password_secret_id is None):
        key = "jdbc" if jdbc.password_env is None else "jdbc.password_secret_id"
        problem = "names no password" if jdbc.password_env is None else "is set together with password_env"
        raise _KeyValueError(key, f"{problem}; keep exactly one of password_env or password_secret_id")


class SourceConf(_Section):
    """Where one source is read from: files (S3 event logs, RDS snapshot exports) or JDBC."""

    path: Annotated[str, BeforeValidator(_text), AfterValidator(_optional_storage)] = ""
    format: Literal["json", "parquet"] = "parquet"
    #: ``dt``: event logs under ``dt=YYYY-MM-DD/`` (only the days a snapshot needs are read);
    #: ``none``: one table extract read whole.
    partitioning: Literal["dt", "none"] = "none"
    #: Event logs only: days after an event's own day in which it may still arrive (its ``dt``).
    lateness_days: int = Field(default=1, ge=0, le=366)
    #: Event logs only: how far past the end of its dt day an event time may lie (clock skew).
    future_tolerance: Duration = timedelta(hours=1)
    #: A corrupt file (bad gzip, bad Parquet footer): ``fail`` naming the file, or ``quarantine``.
    on_corrupt_file: Literal["fail", "quarantine"] = "fail"
    #: A key that arrives with different values (an event id with two payloads): ``keep_latest``
    #: keeps the row with the latest timestamp (ties: smallest values in declared column order)
    #: and drops the others, counted as conflicting duplicates; ``quarantine`` quarantines every
    #: row of that key (reason ``conflicting_duplicate``). docs/inputs.md, "Duplicates".
    on_conflicting_duplicate: Literal["keep_latest", "quarantine"] = "keep_latest"
    #: Read the table live over JDBC instead of from ``path``.
    jdbc: JdbcConf | None = None

    @model_validator(mode="after")
    def _files_or_jdbc(self) -> SourceConf:
        if self.jdbc is None:
            if not self.path:
                raise _KeyValueError(
                    "path", "is empty and there is no jdbc block; set path (files) or jdbc (a live table)"
                )
            return self
        if self.path:
            raise _KeyValueError("jdbc", "is set together with path; keep one of path (files) or jdbc (a live table)")
        if self.partitioning == "dt":
            raise _KeyValueError("partitioning", "dt is for event logs in files; remove it for a jdbc source")
        _check_jdbc(self.jdbc)
        return self


class SnapshotConf(_Section):
    """How snapshots are cut; ``dropout_lookback`` is explained in docs/semantics.md."""

    dropout_lookback: Duration = timedelta(days=1)


class OfflineStoreConf(_Section):
    """Where and how snapshots are stored offline (docs/offline-store.md).

    ``parquet`` is SageMaker's own layout, readable by any tool; ``delta`` is one Delta table per
    group with transactions, history and time travel. ``vacuum_retention_floor`` is the least
    history ``feature-pipeline offline vacuum`` may keep, so time travel never breaks silently;
    ``commit_attempts`` bounds the retries of a Delta commit that lost a race with another writer.
    """

    root: Storage
    format: Literal["parquet", "delta"] = "parquet"
    vacuum_retention_floor: Duration = timedelta(hours=168)
    commit_attempts: int = Field(default=5, ge=1, le=20)


class OnlineStoreConf(_Section):
    """The SageMaker Feature Store online store the latest records are pushed to.

    Credentials come only from the default AWS chain (instance profile, EMR job role, env).
    ``endpoint_url`` points at the local runtime in development; null means AWS itself.
    """

    enabled: bool = False
    endpoint_url: Annotated[str, BeforeValidator(_text), AfterValidator(_http_url)] | None = None
    #: Local development: with no endpoint_url, run the local Feature Store runtime in-process on
    #: this SQLite file for the duration of the command (records persist across runs).
    embedded_db: Annotated[str, BeforeValidator(_text), AfterValidator(_local_file)] | None = None
    region: Annotated[
        str,
        BeforeValidator(_text),
        AfterValidator(_matching(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", "an AWS region", "us-east-1")),
    ] = "us-east-1"
    write_api: Literal["put_record", "batch_write_record"] = "batch_write_record"
    #: Threads (and connections) per push partition: 256 is far past what one task can use.
    max_in_flight: int = Field(default=16, ge=1, le=256)
    max_attempts: int = Field(default=8, ge=1, le=100)
    #: Zero would retry a throttled request at once, which is what makes throttling worse.
    base_backoff_ms: float = Field(default=50.0, gt=0, le=60_000)
    max_backoff_ms: float = Field(default=5000.0, gt=0, le=60_000)
    #: Push partitions; null = one per executor core.
    partitions: int | None = Field(default=None, ge=1)
    dead_letter_root: Annotated[str, BeforeValidator(_text), AfterValidator(_dead_letter_root)] = ""
    #: Dead-lettered records allowed before the run fails.
    dead_letter_tolerance: int = Field(default=0, ge=0)
    #: Create the feature groups (idempotently) before pushing. (Key ``register``: a pydantic
    #: model cannot have a field of that name.)
    register_groups: bool = Field(default=False, alias="register")
    #: Where SageMaker's own offline store would live for registered groups (null: online only).
    offline_s3_uri: Annotated[str, BeforeValidator(_text), AfterValidator(_s3_uri)] | None = None
    #: IAM role SageMaker assumes to write that offline store (AWS only).
    role_arn: (
        Annotated[
            str,
            BeforeValidator(_text),
            AfterValidator(
                _matching(
                    r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+",
                    "an IAM role ARN",
                    "arn:aws:iam::123456789012:role/feature-store",
                )
            ),
        ]
        | None
    ) = None

    @property
    def runs_embedded(self) -> bool:
        """Whether commands run the local runtime in-process (no endpoint_url, an embedded_db)."""
        return bool(self.embedded_db) and not self.endpoint_url

    @model_validator(mode="after")
    def _consistent(self) -> OnlineStoreConf:
        if self.enabled and not self.dead_letter_root:
            raise _KeyValueError(
                "dead_letter_root",
                "is required when online_store.enabled is true; set a local directory or s3://bucket/prefix",
            )
        if self.base_backoff_ms > self.max_backoff_ms:
            raise _KeyValueError(
                "base_backoff_ms",
                f"{self.base_backoff_ms:g} exceeds max_backoff_ms ({self.max_backoff_ms:g}); "
                "lower it or raise max_backoff_ms",
            )
        if self.offline_s3_uri is not None and self.role_arn is None:
            raise _KeyValueError(
                "role_arn",
                "is required with offline_s3_uri (SageMaker writes that offline store with it); "
                "set an IAM role ARN or remove offline_s3_uri",
            )
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


class GlueConf(_Section):
    """The AWS Glue Data Catalog table of each group's offline store (docs/catalog.md).

    Credentials come only from the default AWS chain; ``endpoint_url`` is for tests (moto) and
    null means AWS. The database must exist: the job creates tables in it, never the database.
    """

    enabled: bool = False
    database: (
        Annotated[
            str,
            BeforeValidator(_text),
            AfterValidator(
                _matching(
                    r"[a-z0-9_]{1,255}",
                    "a Glue database name (Athena wants lower case letters, digits and _)",
                    "feature_store",
                )
            ),
        ]
        | None
    ) = None
    #: Table name = prefix + group name, e.g. ``fs_`` -> ``fs_customer_orders``.
    table_prefix: Annotated[
        str,
        BeforeValidator(_text),
        AfterValidator(_matching(r"[a-z0-9_]{0,64}", "a table name prefix (lower case letters, digits, _)", "fs_")),
    ] = ""
    region: Annotated[
        str,
        BeforeValidator(_text),
        AfterValidator(_matching(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", "an AWS region", "us-east-1")),
    ] = "us-east-1"
    endpoint_url: Annotated[str, BeforeValidator(_text), AfterValidator(_http_url)] | None = None

    @model_validator(mode="after")
    def _database_when_enabled(self) -> GlueConf:
        if self.enabled and self.database is None:
            raise _KeyValueError(
                "database", "is required when catalog.glue.enabled is true; set the Glue database, e.g. feature_store"
            )
        return self


class CatalogConf(_Section):
    """Where each group's offline store is registered for SQL engines (Athena, EMR, Redshift Spectrum)."""

    glue: GlueConf = Field(default_factory=GlueConf)


class QuarantineConf(_Section):
    root: Storage


class ReportsConf(_Section):
    root: Storage


class PseudonymisationConf(_Section):
    """Keyed pseudonyms of the declared personal identifiers (docs/privacy.md).

    The key is never configuration: name the AWS Secrets Manager secret (``secret_id``) or, locally,
    the environment variable (``key_env``) that holds it.
    """

    enabled: bool = False
    secret_id: (
        Annotated[
            str,
            BeforeValidator(_text),
            AfterValidator(
                _matching(
                    r"(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}",
                    "a Secrets Manager secret name or ARN",
                    "features/pseudonymisation-key",
                    echo=False,
                )
            ),
        ]
        | None
    ) = None
    key_env: (
        Annotated[
            str,
            BeforeValidator(_text),
            AfterValidator(
                _matching(
                    r"[A-Za-z_][A-Za-z0-9_]*",
                    "an environment variable name (name the variable, never the key)",
                    "FEATURES_PSEUDONYMISATION_KEY",
                    echo=False,
                )
            ),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _one_key_source(self) -> PseudonymisationConf:
        if self.secret_id is not None and self.key_env is not None:
            raise _KeyValueError("secret_id", "is set together with key_env; keep exactly one of secret_id or key_env")
        if self.enabled and self.secret_id is None and self.key_env is None:
            raise _KeyValueError(
                "enabled",
                "is true but no key is named; set secret_id (AWS Secrets Manager) or key_env (an environment variable)",
            )
        return self


class PrivacyConf(_Section):
    pseudonymisation: PseudonymisationConf = Field(default_factory=PseudonymisationConf)


class PipelineConf(_Section):
    """The whole configuration of one environment (``conf/<env>.yaml``)."""

    env: NonEmpty
    spark: SparkConf
    #: One block per source, keyed by the source's name in its definition (features/sources.py).
    sources: dict[str, SourceConf]
    snapshot: SnapshotConf
    offline_store: OfflineStoreConf
    quarantine: QuarantineConf
    reports: ReportsConf
    online_store: OnlineStoreConf = Field(default_factory=OnlineStoreConf)
    validation: ValidationConf = Field(default_factory=ValidationConf)
    catalog: CatalogConf = Field(default_factory=CatalogConf)
    privacy: PrivacyConf = Field(default_factory=PrivacyConf)

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
    default everything the registry discovers. Names are checked first: a misspelt source block
    is reported as the misspelling, not as whatever else that block lacks.
    """
    raw = _read_yaml(Path(path))
    for item in overrides:
        _apply_override(raw, item)
    raw = _expand_env(raw, "")
    if sources is None or groups is None:
        from features.registry import all_groups, all_sources

        sources = all_sources() if sources is None else sources
        groups = all_groups() if groups is None else groups
    _check_names("sources", raw.get("sources"), sources, "source", "features/sources.py")
    validation = raw.get("validation")
    policies = validation.get("group_policies") if isinstance(validation, dict) else None
    _check_names("validation.group_policies", policies, groups, "feature group", "features/groups/")
    try:
        return PipelineConf.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist; pass --conf conf/<env>.yaml") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {path} is a directory; pass --conf conf/<env>.yaml") from None
    except PermissionError:
        raise ConfigError(
            f"configuration file {path} is not readable (permission denied); fix its permissions or pass another --conf"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"configuration file {path} cannot be read ({reason}); pass --conf conf/<env>.yaml") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not UTF-8 text (byte {exc.start}); pass a YAML file") from None
    raw = _parse_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level; start it with env: <name>")
    return raw


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a conf file with both means one edit was lost."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if isinstance(exc, yaml.reader.ReaderError):
            char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
            problem = f"character {char} at position {exc.position} is not allowed in YAML"
        else:
            problem = getattr(exc, "problem", None) or type(exc).__name__
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
                raise ConfigError(f"{key}: environment variable {name} is not set; export it or pass --set {key}=...")
            return os.environ[name]

        return _ENV_REF.sub(sub, value)
    return value


def _check_names(key: str, given: Any, known: Collection[str], what: str, where: str) -> None:
    """Every key of the mapping ``given`` (anything else is left to the models) must be in ``known``."""
    if not isinstance(given, Mapping):
        return
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{key}.{name}: no {what} named {name!r}; {hint}defined: {', '.join(sorted(known))} (see {where})"
            )


def _one_line(exc: ValidationError) -> str:
    """pydantic's report -> ``key: what is wrong; what to write instead``, one line."""
    # A misspelt key also leaves the real one missing: name the misspelling, it is the cause.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = _describe(errors[0])
    return first if len(errors) == 1 else f"{first} (and {len(errors) - 1} more)"


_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _describe(error: ErrorDetails) -> str:
    loc = [str(p) for p in error["loc"]]
    kind, value = error["type"], error.get("input")
    if loc and loc[-1] == "[key]":
        return f"{'.'.join(loc[:-1])}: the key {_show(loc[-2])} is not text; quote it"
    key = ".".join(loc)
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown configuration key {key!r}; {hint}allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"missing configuration key {key!r}; add it (docs/configuration.md lists every key)"
    if kind == "value_error":
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _KeyValueError):
            key = f"{key}.{cause.key}" if key else cause.key
        message = str(cause) if cause is not None else error["msg"].removeprefix("Value error, ")
        return f"{key}: {message}"
    annotation = _unwrap(_annotation_at(loc))
    if kind == "literal_error":
        return f"{key}: {_show(value)} is not a choice; use one of {', '.join(str(c) for c in get_args(annotation))}"
    expected = _expected(annotation, _field_at(loc))
    if kind.startswith(("greater_than", "less_than")):
        return f"{key}: {_show(value)} is out of range; use {expected}"
    if kind == "finite_number":
        return f"{key}: {_show(value)} is not a finite number; use {expected}"
    return f"{key}: {_show(value)} is not {_kind(annotation)}; use {expected}"


def _kind(annotation: Any) -> str:
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number"
    if annotation is float:
        return "a number"
    if annotation is timedelta:
        return "a duration"
    if get_origin(annotation) is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a section"
    return "text"


def _expected(annotation: Any, field: FieldInfo | None) -> str:
    """What to write: the kind of value and, from the field's constraints, its range."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a section of keys (docs/configuration.md)"
    if get_origin(annotation) is dict:
        return "a mapping of names to values"
    if annotation is str:
        return "a plain value (quote it if it contains : or {)"
    bounds = {
        name: getattr(item, name)
        for item in (field.metadata if field is not None else [])
        for name in _BOUNDS
        if hasattr(item, name)
    }
    kind = _kind(annotation)
    if {"ge", "le"} == bounds.keys():
        return f"{kind} from {_number(bounds['ge'])} to {_number(bounds['le'])}"
    limits = " and ".join(f"{_BOUNDS[name]} {_number(limit)}" for name, limit in bounds.items())
    return f"{kind} {limits}" if limits else kind


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _show(value: Any) -> str:
    """A value as a message shows it: its repr, cut short (a wrong value can be a whole mapping)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _annotation_at(loc: Sequence[str]) -> Any:
    annotation: Any = PipelineConf
    for part in loc:
        annotation = _child(annotation, part)
    return annotation


def _field_at(loc: Sequence[str]) -> FieldInfo | None:
    if not loc:
        return None
    parent = _unwrap(_annotation_at(loc[:-1]))
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return None
    return next((f for n, f in parent.model_fields.items() if (f.alias or n) == loc[-1]), None)


def _fields_at(loc: Sequence[str]) -> list[str]:
    model = _unwrap(_annotation_at(loc))
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [field.alias or name for name, field in model.model_fields.items()]
