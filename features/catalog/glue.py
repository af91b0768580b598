"""Register each group's offline store in the AWS Glue Data Catalog after a write, and print its Athena DDL.

:func:`register_snapshot` is idempotent: the table is created when missing, updated (UpdateTable)
only when what the pipeline owns differs (columns, types, comments, formats, governance
parameters; other parameters are kept), and the snapshot's partition is added with
BatchCreatePartition, where an existing partition is not an error and not counted, so a rerun adds
nothing twice. The database must exist. Credentials come only from boto3's default chain; a
loopback ``endpoint_url`` (moto in tests) gets placeholder keys when the chain has none, as the
online store's clients do. docs/catalog.md says what the pipeline does when Glue fails.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from features.catalog.table import (
    CatalogError,
    OfflineFormat,
    TableSpec,
    athena_statements,
    differences,
    partition_values,
    record_schema,
    table_spec,
)
from features.config import GlueConf, PipelineConf
from features.constants import PARTITION_COLUMNS
from features.definitions import FeatureGroup
from features.errors import one_line
from features.online.client import PLACEHOLDER_KEY, placeholder_credentials_needed

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

#: BatchCreatePartition takes at most 100 partitions per call.
_PARTITIONS_PER_CALL = 100

Action = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class CatalogResult:
    """What one registration changed: the table's action, the schema diff, the partitions added."""

    table: str
    action: Action
    #: ``added column x (bigint)``, ``removed column y (string)``, ``column z: bigint -> double``.
    schema_changes: list[str] = field(default_factory=list)
    #: Comments, parameters, location, ... that were updated along with (or without) the schema.
    metadata_changes: list[str] = field(default_factory=list)
    #: ``year=2026/month=10/day=31/hour=00`` for each partition this call added.
    partitions_added: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def table_name(conf: GlueConf, group: FeatureGroup) -> str:
    return f"{conf.table_prefix}{group.name}"


def offline_table_location(conf: PipelineConf, group: FeatureGroup) -> str:
    """Where the group's table lives: ``<root>/<group>/data`` (Parquet), ``<root>/<group>/delta`` (Delta)."""
    if conf.offline_store.format == "delta":
        from features.load.delta import table_path

        return table_path(conf.offline_store.root, group.name)
    return f"{conf.offline_store.root.rstrip('/')}/{group.name}/data"


def glue_client(conf: GlueConf) -> Any:
    """A ``glue`` client: the default credential chain (placeholders only for a loopback endpoint)."""
    if placeholder_credentials_needed(conf.endpoint_url):
        session = boto3.session.Session(aws_access_key_id=PLACEHOLDER_KEY, aws_secret_access_key=PLACEHOLDER_KEY)
    else:
        session = boto3.session.Session()
    config = Config(retries={"total_max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=20)
    return session.client("glue", region_name=conf.region, endpoint_url=conf.endpoint_url, config=config)


def register_snapshot(
    conf: GlueConf,
    *,
    group: FeatureGroup,
    schema: StructType,
    location: str,
    partition: Mapping[str, str] | None,
    format: OfflineFormat,
    client: Any | None = None,
) -> CatalogResult:
    """Make the group's table describe data of ``schema`` at ``location`` and hold ``partition``.

    ``schema`` is the written snapshot's (the offline metadata columns are added when it lacks
    them); ``location`` the table's root (``.../<group>/data``); ``partition`` the snapshot's
    ``{year, month, day, hour}`` (None for Delta, whose log holds the partitions). Raises
    :class:`CatalogError` with one line naming the table and the fix.
    """
    if conf.database is None:
        raise CatalogError("catalog.glue.database is not set; set the Glue database the tables go in")
    spec = table_spec(
        database=conf.database,
        name=table_name(conf, group),
        group=group,
        schema=schema,
        location=location,
        format=format,
    )
    glue = client if client is not None else glue_client(conf)
    try:
        result = _register(glue, spec, [partition] if partition and spec.partition_keys else [])
    except ClientError as exc:
        raise CatalogError(_client_error(exc, spec, conf)) from None
    except BotoCoreError as exc:
        raise CatalogError(f"Glue table {spec.qualified_name}: {exc}") from None
    log.info("Glue table %s %s%s", spec.qualified_name, result.action, f" (+{len(result.partitions_added)} partition)")
    return result


def _register(glue: Any, spec: TableSpec, partitions: list[Mapping[str, str]]) -> CatalogResult:
    stored = _get_table(glue, spec)
    diff = None
    action: Action = "created"
    if stored is None:
        try:
            glue.create_table(DatabaseName=spec.database, TableInput=spec.table_input())
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
            # Created by a concurrent run since we looked: judge it like any other.
            stored = dict(glue.get_table(DatabaseName=spec.database, Name=spec.name)["Table"])
    if stored is not None:
        diff = differences(stored, spec)
        if diff:
            glue.update_table(
                DatabaseName=spec.database, TableInput=spec.table_input(keep_parameters=stored.get("Parameters"))
            )
            action = "updated"
            log.warning("Glue table %s updated: %s", spec.qualified_name, "; ".join(diff.schema + diff.metadata))
        else:
            action = "unchanged"
    added = _add_partitions(glue, spec, partitions)
    return CatalogResult(
        table=spec.qualified_name,
        action=action,
        schema_changes=diff.schema if diff else [],
        metadata_changes=diff.metadata if diff else [],
        partitions_added=added,
    )


def _get_table(glue: Any, spec: TableSpec) -> dict[str, Any] | None:
    try:
        return dict(glue.get_table(DatabaseName=spec.database, Name=spec.name)["Table"])
    except ClientError as exc:
        if _code(exc) != "EntityNotFoundException":
            raise
    try:
        glue.get_database(Name=spec.database)
    except ClientError as exc:
        if _code(exc) == "EntityNotFoundException":
            raise CatalogError(
                f"Glue database {spec.database} does not exist; create it (aws glue create-database "
                f"--database-input Name={spec.database}) or set catalog.glue.database"
            ) from None
        raise
    return None


def _add_partitions(glue: Any, spec: TableSpec, partitions: Sequence[Mapping[str, str]]) -> list[str]:
    """BatchCreatePartition; a partition that already exists is skipped, any other error raised."""
    added = []
    for start in range(0, len(partitions), _PARTITIONS_PER_CALL):
        chunk = partitions[start : start + _PARTITIONS_PER_CALL]
        response = glue.batch_create_partition(
            DatabaseName=spec.database,
            TableName=spec.name,
            PartitionInputList=[spec.partition_input(values) for values in chunk],
        )
        existing = set()
        for error in response.get("Errors") or []:
            detail = error.get("ErrorDetail") or {}
            if detail.get("ErrorCode") != "AlreadyExistsException":
                raise CatalogError(
                    f"Glue table {spec.qualified_name}: partition {error.get('PartitionValues')} not added: "
                    f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
                )
            existing.add(tuple(error.get("PartitionValues") or ()))
        for values in chunk:
            if tuple(values[k.name] for k in spec.partition_keys) not in existing:
                added.append("/".join(f"{k.name}={values[k.name]}" for k in spec.partition_keys))
    return added


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client_error(exc: ClientError, spec: TableSpec, conf: GlueConf) -> str:
    code = _code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")).strip() or str(exc)
    line = f"Glue table {spec.qualified_name}: {code}: {message}".splitlines()[0]
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
        line += (
            "; the job role needs glue:GetDatabase, GetTable, CreateTable, UpdateTable, BatchCreatePartition "
            f"on database {spec.database} (docs/catalog.md#iam)"
        )
    elif conf.endpoint_url:
        line += f" (endpoint {conf.endpoint_url})"
    return line


def catalog_offline_write(
    conf: PipelineConf, group: FeatureGroup, schema: StructType, as_of: datetime
) -> dict[str, Any]:
    """The pipeline's call after a successful offline write: register it, never raise.

    Returns the run report's ``catalog`` entry: :meth:`CatalogResult.to_dict`, or ``{"table",
    "action": "failed", "error"}`` with one line when Glue refused or could not be reached. The
    offline write stands either way; the run fails naming the error (docs/catalog.md).
    """
    glue = conf.catalog.glue
    name = f"{glue.database}.{table_name(glue, group)}"
    fmt: OfflineFormat = conf.offline_store.format
    try:
        result = register_snapshot(
            glue,
            group=group,
            schema=schema,
            location=offline_table_location(conf, group),
            partition=partition_values(as_of) if fmt == "parquet" else None,
            format=fmt,
        )
    except Exception as exc:
        log.debug("catalog registration of %s failed", group.name, exc_info=True)
        return {"table": name, "action": "failed", "error": f"catalog registration failed: {one_line(exc)}"}
    return result.to_dict()


def athena_ddl(conf: PipelineConf, group: FeatureGroup, partitions: Sequence[Mapping[str, str]] = ()) -> str:
    """The Athena DDL of the group's table (CREATE EXTERNAL TABLE) and its partitions (ALTER TABLE ...
    ADD IF NOT EXISTS PARTITION ... LOCATION ...), for accounts without Glue crawlers or this job's
    registration. Types come from the definition (:func:`record_schema`), which is what the
    pipeline writes. ``partitions``: e.g. :func:`stored_partitions`."""
    glue = conf.catalog.glue
    fmt: OfflineFormat = conf.offline_store.format
    spec = table_spec(
        database=glue.database or "default",
        name=table_name(glue, group),
        group=group,
        schema=record_schema(group),
        location=offline_table_location(conf, group),
        format=fmt,
    )
    return "\n\n".join(athena_statements(spec, partitions)) + "\n"


def stored_partitions(spark: SparkSession, conf: PipelineConf, group: FeatureGroup) -> list[dict[str, str]]:
    """The ``year=/month=/day=/hour=`` directories under the group's table location, oldest first."""
    from features.io import fs

    found: list[dict[str, str]] = [{}]
    root = offline_table_location(conf, group)
    for level in PARTITION_COLUMNS:
        deeper = []
        for values in found:
            path = root + "".join(f"/{k}={v}" for k, v in values.items())
            for name in fs.list_dirs(spark, path) or []:
                label, _, text = name.partition("=")
                if label == level and text.isdigit():
                    deeper.append({**values, level: text})
        found = deeper
    return found
