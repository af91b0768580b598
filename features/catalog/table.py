"""The Glue table of one group's offline store, as data: built from the definition and the written schema.

No AWS call and no Spark session here (``pyspark.sql.types`` only), so the same :class:`TableSpec`
feeds the Glue requests (``glue.py``) and the Athena DDL, and tests can compare both by hand.
Column types are the Spark types of what was written, mapped to Hive's names; comments and table
parameters (the governance metadata) come from the group's definition. docs/catalog.md has the
layout of the table and what each parameter means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pyspark.sql import types as T

from features.constants import (
    API_INVOCATION_TIME,
    DAY,
    EVENT_TIME,
    HOUR,
    IS_DELETED,
    MONTH,
    OFFLINE_METADATA_COLUMNS,
    PARTITION_COLUMNS,
    WRITE_TIME,
    YEAR,
)
from features.definitions import FeatureGroup, FeatureType

OfflineFormat = Literal["parquet", "delta"]

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
#: Glue limits: a column comment holds 255 characters, a table description 2048.
_COMMENT_MAX, _DESCRIPTION_MAX = 255, 2048
#: The table parameters this pipeline owns; others (set by Lake Formation, a crawler, a person) are kept.
MANAGED_PARAMETERS = (
    "classification",
    "feature_group",
    "feature_family",
    "version",
    "description",
    "owner",
    "tags",
    "freshness_sla",
    "update_frequency",
    "online",
    "deprecated",
    "source",
    "entity",
    "entity_key",
    "event_time_column",
    "managed_by",
    "table_type",
    "spark.sql.sources.provider",
)
MANAGED_BY = "feature-pipeline"

#: Spark's types of the offline metadata columns (``features.load.offline.with_offline_metadata``).
_METADATA_TYPES: dict[str, T.DataType] = {
    WRITE_TIME: T.TimestampType(),
    API_INVOCATION_TIME: T.TimestampType(),
    IS_DELETED: T.BooleanType(),
}
_METADATA_COMMENTS = {
    WRITE_TIME: "When the pipeline wrote this record (UTC)",
    API_INVOCATION_TIME: "When the write of this snapshot started (UTC), as SageMaker's offline store records it",
    IS_DELETED: "Always false: snapshots are written whole, deletes are not recorded",
}
_PARTITION_COMMENTS = {
    YEAR: "Partition: year of the event time (UTC), YYYY",
    MONTH: "Partition: month of the event time (UTC), MM",
    DAY: "Partition: day of the event time (UTC), DD",
    HOUR: "Partition: hour of the event time (UTC), HH",
}
#: Source column types (``definitions.ColumnType``) and feature types as Spark types.
_SOURCE_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "bigint": T.LongType(),
    "int": T.IntegerType(),
    "double": T.DoubleType(),
    "decimal(12,2)": T.DecimalType(12, 2),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}
#: As ``features.transform.windows.SPARK_TYPES`` casts every feature (tests hold the two equal).
FEATURE_TYPES: dict[FeatureType, T.DataType] = {
    "Integral": T.LongType(),
    "Fractional": T.DoubleType(),
    "String": T.StringType(),
}
_HIVE_NAMES: list[tuple[type[T.DataType], str]] = [
    (T.StringType, "string"),
    (T.VarcharType, "string"),
    (T.CharType, "string"),
    (T.LongType, "bigint"),
    (T.IntegerType, "int"),
    (T.ShortType, "smallint"),
    (T.ByteType, "tinyint"),
    (T.DoubleType, "double"),
    (T.FloatType, "float"),
    (T.BooleanType, "boolean"),
    (T.TimestampType, "timestamp"),
    (T.TimestampNTZType, "timestamp"),
    (T.DateType, "date"),
    (T.BinaryType, "binary"),
]


class CatalogError(RuntimeError):
    """The table cannot be registered; the message says what and how to fix it (one line)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str

    def as_glue(self) -> dict[str, str]:
        return {"Name": self.name, "Type": self.type, "Comment": self.comment}


def hive_type(dtype: T.DataType, column: str) -> str:
    """The Glue / Hive type name of a Spark type (``LongType`` -> ``bigint``, nested types spelled out)."""
    for spark_type, name in _HIVE_NAMES:
        if isinstance(dtype, spark_type):
            return name
    if isinstance(dtype, T.DecimalType):
        return f"decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, T.ArrayType):
        return f"array<{hive_type(dtype.elementType, column)}>"
    if isinstance(dtype, T.MapType):
        return f"map<{hive_type(dtype.keyType, column)},{hive_type(dtype.valueType, column)}>"
    if isinstance(dtype, T.StructType):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.dataType, column)}" for f in dtype.fields) + ">"
    raise CatalogError(
        f"column {column}: Spark type {dtype.simpleString()} has no Glue/Hive type; cast it in the group's definition"
    )


def record_schema(group: FeatureGroup) -> T.StructType:
    """The schema of the group's offline records from its definition alone: join key, ``event_time``,
    the features (as the transform casts them) and the metadata columns. What ``offline ddl`` uses
    where no snapshot DataFrame is at hand."""
    key = group.entity.join_key
    fields = [
        T.StructField(key, _SOURCE_TYPES[group.source.columns[key]]),
        T.StructField(EVENT_TIME, T.StringType()),
        *(T.StructField(spec.name, FEATURE_TYPES[spec.dtype]) for spec in group.features),
    ]
    return with_metadata_columns(T.StructType(fields))


def with_metadata_columns(schema: T.StructType) -> T.StructType:
    """``schema`` plus the offline metadata columns it lacks (a snapshot DataFrame has none yet)."""
    names = set(schema.fieldNames())
    extra = [T.StructField(n, _METADATA_TYPES[n]) for n in OFFLINE_METADATA_COLUMNS if n not in names]
    return T.StructType([*schema.fields, *extra])


def partition_values(as_of: datetime) -> dict[str, str]:
    """The partition of the snapshot at ``as_of``, as the offline store's directories name it."""
    return {YEAR: f"{as_of:%Y}", MONTH: f"{as_of:%m}", DAY: f"{as_of:%d}", HOUR: f"{as_of:%H}"}


def glue_location(path: str) -> str:
    """``s3a://`` -> ``s3://``: Athena and Glue know S3 locations by the ``s3`` scheme only."""
    return "s3://" + path[len("s3a://") :] if path.startswith("s3a://") else path


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _governance(group: FeatureGroup) -> dict[str, str]:
    """The definition's governance metadata as table parameters; undeclared ones are left out."""
    declared = {
        "tags": ",".join(group.tags),
        "freshness_sla": group.freshness_sla or "",
        "update_frequency": group.update_frequency or "",
        "online": "true" if group.online else "false",
        "deprecated": group.deprecation_reason or "",
    }
    return {k: v for k, v in declared.items() if v}


def _comment(description: str, unit: str | None) -> str:
    return f"{description} (unit: {unit})" if unit else description


@dataclass(frozen=True)
class TableSpec:
    """Everything the catalog says about one group's table."""

    database: str
    name: str
    location: str
    format: OfflineFormat
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...]
    description: str
    owner: str | None
    parameters: dict[str, str]

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.name}"

    def storage_descriptor(self, location: str) -> dict[str, Any]:
        serde: dict[str, Any] = {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}}
        if self.format == "delta":  # Spark's DeltaCatalog finds the table by this path
            serde["Parameters"] = {"serialization.format": "1", "path": location}
        return {
            "Columns": [c.as_glue() for c in self.columns],
            "Location": location,
            "InputFormat": PARQUET_INPUT_FORMAT,
            "OutputFormat": PARQUET_OUTPUT_FORMAT,
            "Compressed": False,
            "SerdeInfo": serde,
        }

    def table_input(self, keep_parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The TableInput of CreateTable / UpdateTable; ``keep_parameters`` are others' parameters to keep."""
        kept = {k: v for k, v in (keep_parameters or {}).items() if k not in MANAGED_PARAMETERS}
        table: dict[str, Any] = {
            "Name": self.name,
            "Description": self.description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {**kept, **self.parameters},
            "StorageDescriptor": self.storage_descriptor(self.location),
            "PartitionKeys": [c.as_glue() for c in self.partition_keys],
        }
        if self.owner:
            table["Owner"] = self.owner
        return table

    def partition_location(self, values: Mapping[str, str]) -> str:
        return self.location + "".join(f"/{k.name}={values[k.name]}" for k in self.partition_keys)

    def partition_input(self, values: Mapping[str, str]) -> dict[str, Any]:
        return {
            "Values": [values[k.name] for k in self.partition_keys],
            "StorageDescriptor": self.storage_descriptor(self.partition_location(values)),
        }


def table_spec(
    *,
    database: str,
    name: str,
    group: FeatureGroup,
    schema: T.StructType,
    location: str,
    format: OfflineFormat,
) -> TableSpec:
    """The table of ``group`` whose data at ``location`` has ``schema`` (metadata columns added if missing).

    Parquet: the columns are the records' (year/month/day/hour are partition keys, ``string`` as in
    SageMaker's own offline store tables). Delta: every column of the table (``year`` .. ``hour``
    as the int columns the Delta writer adds, when ``schema`` lacks them), no partition keys (Delta's
    log holds its partitions).
    """
    comments = {
        group.entity.join_key: group.entity.description,
        EVENT_TIME: "Snapshot time T, ISO-8601 UTC (yyyy-MM-ddTHH:mm:ssZ): the event time feature",
        **{spec.name: _comment(spec.description, spec.unit) for spec in group.features},
        **_METADATA_COMMENTS,
        **_PARTITION_COMMENTS,
    }
    partitioned = format == "parquet"
    fields = with_metadata_columns(schema).fields
    if not partitioned:  # features.load.delta adds year..hour as int columns after the metadata columns
        names = {f.name for f in fields}
        fields = [*fields, *(T.StructField(n, T.IntegerType()) for n in PARTITION_COLUMNS if n not in names)]
    columns = tuple(
        Column(f.name, hive_type(f.dataType, f.name), _clip(comments.get(f.name, ""), _COMMENT_MAX))
        for f in fields
        if not (partitioned and f.name in PARTITION_COLUMNS)
    )
    keys = tuple(Column(n, "string", _PARTITION_COMMENTS[n]) for n in PARTITION_COLUMNS) if partitioned else ()
    parameters = {
        "EXTERNAL": "TRUE",
        "classification": format,
        "feature_group": group.name,
        "feature_family": group.family,
        "version": str(group.version),
        "description": group.description,
        **({"owner": group.owner} if group.owner else {}),
        **_governance(group),
        "source": group.source.name,
        "entity": group.entity.name,
        "entity_key": group.entity.join_key,
        "event_time_column": EVENT_TIME,
        "managed_by": MANAGED_BY,
    }
    if format == "delta":
        parameters |= {"table_type": "DELTA", "spark.sql.sources.provider": "delta"}
    return TableSpec(
        database=database,
        name=name,
        location=glue_location(location.rstrip("/")),
        format=format,
        columns=columns,
        partition_keys=keys,
        description=_clip(group.description, _DESCRIPTION_MAX),
        owner=group.owner or None,
        parameters=parameters,
    )


@dataclass(frozen=True)
class TableDiff:
    """What a stored table lacks against the wanted one: schema changes, then metadata changes."""

    schema: list[str]
    metadata: list[str]

    def __bool__(self) -> bool:
        return bool(self.schema or self.metadata)


def differences(stored: Mapping[str, Any], wanted: TableSpec) -> TableDiff:
    """Compare a GetTable ``Table`` with ``wanted``: columns added, removed, retyped; then comments,
    partition keys, location, formats, description, owner and the parameters this pipeline owns."""
    sd = stored.get("StorageDescriptor") or {}
    have = {c["Name"]: c for c in sd.get("Columns") or []}
    want = {c.name: c for c in wanted.columns}
    schema = [f"added column {n} ({want[n].type})" for n in want if n not in have]
    schema += [f"removed column {n} ({have[n].get('Type')})" for n in have if n not in want]
    schema += [
        f"column {n}: {have[n].get('Type')} -> {want[n].type}"
        for n in want
        if n in have and have[n].get("Type") != want[n].type
    ]
    stored_keys = [(k["Name"], k.get("Type")) for k in stored.get("PartitionKeys") or []]
    if stored_keys != [(k.name, k.type) for k in wanted.partition_keys]:
        shown = ", ".join(f"{n} {t}" for n, t in stored_keys) or "none"
        schema.append(f"partition keys: {shown} -> {', '.join(k.name for k in wanted.partition_keys) or 'none'}")
    metadata = [f"comment of {n}" for n in want if n in have and have[n].get("Comment", "") != want[n].comment]
    wanted_sd = wanted.storage_descriptor(wanted.location)
    for member in ("Location", "InputFormat", "OutputFormat"):
        if sd.get(member) != wanted_sd[member]:
            metadata.append(f"{member.lower().replace('format', ' format')}: {sd.get(member)} -> {wanted_sd[member]}")
    if (sd.get("SerdeInfo") or {}).get("SerializationLibrary") != PARQUET_SERDE:
        metadata.append("serde")
    if stored.get("TableType") != "EXTERNAL_TABLE":
        metadata.append(f"table type: {stored.get('TableType')} -> EXTERNAL_TABLE")
    if stored.get("Description", "") != wanted.description:
        metadata.append("description")
    if (stored.get("Owner") or None) != wanted.owner:
        metadata.append("owner")
    params = stored.get("Parameters") or {}
    for key in MANAGED_PARAMETERS:
        if params.get(key) != wanted.parameters.get(key):
            metadata.append(f"parameter {key}")
    return TableDiff(schema=schema, metadata=metadata)


def _quote(text: str) -> str:
    """A Hive DDL string literal (backslash escapes, as Athena's DDL parser reads them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _column_lines(columns: Sequence[Column]) -> str:
    return ",\n".join(f"  `{c.name}` {c.type} COMMENT {_quote(c.comment)}" for c in columns)


#: Partitions per ALTER TABLE statement: Athena takes a query of at most 256 KB.
PARTITIONS_PER_STATEMENT = 100


def athena_statements(spec: TableSpec, partitions: Sequence[Mapping[str, str]] = ()) -> list[str]:
    """CREATE EXTERNAL TABLE for ``spec``, then ALTER TABLE ... ADD IF NOT EXISTS PARTITION for
    ``partitions`` (Parquet only: a Delta table's log holds its partitions, and Athena reads its
    columns from the log, so its DDL is the location and the table type)."""
    table = f"`{spec.database}`.`{spec.name}`"
    if spec.format == "delta":
        return [
            f"CREATE EXTERNAL TABLE IF NOT EXISTS {table}\n"
            f"LOCATION {_quote(spec.location)}\n"
            "TBLPROPERTIES ('table_type'='DELTA');"
        ]
    properties = ",\n".join(
        f"  {_quote(k)}={_quote(v)}" for k, v in spec.parameters.items() if k != "EXTERNAL"
    )  # EXTERNAL is the statement's keyword
    create = (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{_column_lines(spec.columns)}\n)\n"
        f"COMMENT {_quote(spec.description)}\n"
        f"PARTITIONED BY (\n{_column_lines(spec.partition_keys)}\n)\n"
        f"ROW FORMAT SERDE {_quote(PARQUET_SERDE)}\n"
        f"STORED AS INPUTFORMAT {_quote(PARQUET_INPUT_FORMAT)}\n"
        f"OUTPUTFORMAT {_quote(PARQUET_OUTPUT_FORMAT)}\n"
        f"LOCATION {_quote(spec.location)}\n"
        f"TBLPROPERTIES (\n{properties}\n);"
    )
    statements = [create]
    for start in range(0, len(partitions), PARTITIONS_PER_STATEMENT):
        clauses = [
            "  PARTITION ("
            + ", ".join(f"{k.name}={_quote(values[k.name])}" for k in spec.partition_keys)
            + f") LOCATION {_quote(spec.partition_location(values))}"
            for values in partitions[start : start + PARTITIONS_PER_STATEMENT]
        ]
        statements.append(f"ALTER TABLE {table} ADD IF NOT EXISTS\n" + "\n".join(clauses) + ";")
    return statements
