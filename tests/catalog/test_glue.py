"""Issue 11, section 3: each group's offline store as a Glue table, checked in moto over HTTP.

Every expectation (columns, types, comments, partition keys, SerDe, parameters, partitions) is
typed by hand here, never derived from the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features.catalog.glue import CatalogResult, register_snapshot
from features.catalog.table import CatalogError, hive_type, partition_values
from features.config import GlueConf
from features.definitions import Derived, FeatureGroup
from features.sources import CUSTOMER, CUSTOMERS
from tests.catalog.conftest import DATABASE

T0 = datetime(2026, 10, 31, tzinfo=UTC)
T1 = datetime(2026, 10, 31, 1, tzinfo=UTC)
LOCATION = "s3a://features-bucket/offline-store/customer_traits/data"
STORED_LOCATION = "s3://features-bucket/offline-store/customer_traits/data"


def traits(*, with_prime: bool = False) -> FeatureGroup:
    derived = [
        Derived(
            name="tenure_days",
            dtype="Integral",
            inputs=("active_since",),
            expr=lambda t: F.lit(1),
            description="Whole days since the customer became active",
        ),
        Derived(
            name="country",
            dtype="String",
            inputs=("country",),
            expr=lambda t: F.col("country"),
            description="Country of the customer's account",
        ),
    ]
    if with_prime:
        derived.append(
            Derived(
                name="is_prime_member",
                dtype="Integral",
                inputs=("is_prime_member",),
                expr=lambda t: F.lit(1),
                description="1 if a Prime member, 0 if not",
            )
        )
    return FeatureGroup(
        name="customer_traits",
        description="A few customer attributes.",
        entity=CUSTOMER,
        source=CUSTOMERS,
        derived=tuple(derived),
        owner="ml-platform",
        tags=("pii:none", "tier:gold"),
    )


#: The snapshot DataFrame's schema as the transform produces it (no metadata columns yet).
SCHEMA = T.StructType(
    [
        T.StructField("customer_id", T.StringType()),
        T.StructField("event_time", T.StringType()),
        T.StructField("tenure_days", T.LongType()),
        T.StructField("country", T.StringType()),
    ]
)
SCHEMA_WITH_PRIME = T.StructType([*SCHEMA.fields, T.StructField("is_prime_member", T.LongType())])

COLUMNS = [
    {
        "Name": "customer_id",
        "Type": "string",
        "Comment": "A shopper, identified by the store's customer id (e.g. C000042).",
    },
    {
        "Name": "event_time",
        "Type": "string",
        "Comment": "Snapshot time T, ISO-8601 UTC (yyyy-MM-ddTHH:mm:ssZ): the event time feature",
    },
    {"Name": "tenure_days", "Type": "bigint", "Comment": "Whole days since the customer became active"},
    {"Name": "country", "Type": "string", "Comment": "Country of the customer's account"},
    {"Name": "write_time", "Type": "timestamp", "Comment": "When the pipeline wrote this record (UTC)"},
    {
        "Name": "api_invocation_time",
        "Type": "timestamp",
        "Comment": "When the write of this snapshot started (UTC), as SageMaker's offline store records it",
    },
    {
        "Name": "is_deleted",
        "Type": "boolean",
        "Comment": "Always false: snapshots are written whole, deletes are not recorded",
    },
]
PARTITION_KEYS = [
    {"Name": "year", "Type": "string", "Comment": "Partition: year of the event time (UTC), YYYY"},
    {"Name": "month", "Type": "string", "Comment": "Partition: month of the event time (UTC), MM"},
    {"Name": "day", "Type": "string", "Comment": "Partition: day of the event time (UTC), DD"},
    {"Name": "hour", "Type": "string", "Comment": "Partition: hour of the event time (UTC), HH"},
]
PARAMETERS = {
    "EXTERNAL": "TRUE",
    "classification": "parquet",
    "feature_group": "customer_traits",
    "feature_family": "customer_traits",
    "version": "1",
    "description": "A few customer attributes.",
    "owner": "ml-platform",
    "tags": "pii:none,tier:gold",
    "online": "true",
    "source": "customers",
    "entity": "customer",
    "entity_key": "customer_id",
    "event_time_column": "event_time",
    "managed_by": "feature-pipeline",
}
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def conf(url: str) -> GlueConf:
    return GlueConf(enabled=True, database=DATABASE, table_prefix="fs_", endpoint_url=url)


def register(url: str, group: FeatureGroup, schema: T.StructType, as_of: datetime) -> CatalogResult:
    return register_snapshot(
        conf(url), group=group, schema=schema, location=LOCATION, partition=partition_values(as_of), format="parquet"
    )


def partitions(glue: Any) -> list[tuple[list[str], str]]:
    found = glue.get_partitions(DatabaseName=DATABASE, TableName="fs_customer_traits")["Partitions"]
    return sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in found)


def versions(glue: Any) -> int:
    return len(glue.get_table_versions(DatabaseName=DATABASE, TableName="fs_customer_traits")["TableVersions"])


def test_the_first_write_creates_the_table_and_its_partition(glue: Any, moto_glue_url: str) -> None:
    result = register(moto_glue_url, traits(), SCHEMA, T0)

    assert result == CatalogResult(
        table="feature_store.fs_customer_traits",
        action="created",
        partitions_added=["year=2026/month=10/day=31/hour=00"],
    )
    table = glue.get_table(DatabaseName=DATABASE, Name="fs_customer_traits")["Table"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Description"] == "A few customer attributes."
    assert table["Owner"] == "ml-platform"
    assert table["Parameters"] == PARAMETERS
    assert table["PartitionKeys"] == PARTITION_KEYS
    sd = table["StorageDescriptor"]
    assert sd["Columns"] == COLUMNS
    assert sd["Location"] == STORED_LOCATION  # s3a:// is spelled s3:// for Athena
    assert (sd["InputFormat"], sd["OutputFormat"]) == (PARQUET_IN, PARQUET_OUT)
    assert sd["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert partitions(glue) == [
        (["2026", "10", "31", "00"], f"{STORED_LOCATION}/year=2026/month=10/day=31/hour=00"),
    ]
    (stored,) = glue.get_partitions(DatabaseName=DATABASE, TableName="fs_customer_traits")["Partitions"]
    assert stored["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert stored["StorageDescriptor"]["Columns"] == COLUMNS


def test_a_rerun_adds_no_partition_and_does_not_update_the_table(glue: Any, moto_glue_url: str) -> None:
    register(moto_glue_url, traits(), SCHEMA, T0)
    again = register(moto_glue_url, traits(), SCHEMA, T0)

    assert again == CatalogResult(table="feature_store.fs_customer_traits", action="unchanged")
    assert partitions(glue) == [
        (["2026", "10", "31", "00"], f"{STORED_LOCATION}/year=2026/month=10/day=31/hour=00"),
    ]
    assert versions(glue) == 1


def test_a_new_snapshot_time_adds_exactly_its_partition(glue: Any, moto_glue_url: str) -> None:
    register(moto_glue_url, traits(), SCHEMA, T0)
    later = register(moto_glue_url, traits(), SCHEMA, T1)

    assert later.action == "unchanged"
    assert later.partitions_added == ["year=2026/month=10/day=31/hour=01"]
    assert partitions(glue) == [
        (["2026", "10", "31", "00"], f"{STORED_LOCATION}/year=2026/month=10/day=31/hour=00"),
        (["2026", "10", "31", "01"], f"{STORED_LOCATION}/year=2026/month=10/day=31/hour=01"),
    ]
    assert versions(glue) == 1


def test_an_added_feature_updates_the_table_and_is_reported(glue: Any, moto_glue_url: str) -> None:
    register(moto_glue_url, traits(), SCHEMA, T0)
    # Someone else's parameter on the table survives the update.
    table = glue.get_table(DatabaseName=DATABASE, Name="fs_customer_traits")["Table"]
    glue.update_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": "fs_customer_traits",
            "Description": table["Description"],
            "Owner": table["Owner"],
            "TableType": table["TableType"],
            "Parameters": {**table["Parameters"], "lakeformation.note": "reviewed"},
            "StorageDescriptor": table["StorageDescriptor"],
            "PartitionKeys": table["PartitionKeys"],
        },
    )

    changed = register(moto_glue_url, traits(with_prime=True), SCHEMA_WITH_PRIME, T1)

    assert changed == CatalogResult(
        table="feature_store.fs_customer_traits",
        action="updated",
        schema_changes=["added column is_prime_member (bigint)"],
        partitions_added=["year=2026/month=10/day=31/hour=01"],
    )
    table = glue.get_table(DatabaseName=DATABASE, Name="fs_customer_traits")["Table"]
    prime = {"Name": "is_prime_member", "Type": "bigint", "Comment": "1 if a Prime member, 0 if not"}
    assert table["StorageDescriptor"]["Columns"] == [*COLUMNS[:4], prime, *COLUMNS[4:]]
    assert table["Parameters"] == {**PARAMETERS, "lakeformation.note": "reviewed"}
    assert table["PartitionKeys"] == PARTITION_KEYS
    assert versions(glue) == 3  # created, someone's edit, the schema change
    assert [values for values, _ in partitions(glue)] == [["2026", "10", "31", "00"], ["2026", "10", "31", "01"]]

    assert register(moto_glue_url, traits(with_prime=True), SCHEMA_WITH_PRIME, T1).action == "unchanged"


def test_a_retyped_and_a_removed_column_are_reported(glue: Any, moto_glue_url: str) -> None:
    register(moto_glue_url, traits(with_prime=True), SCHEMA_WITH_PRIME, T0)
    retyped = T.StructType([*SCHEMA.fields[:2], T.StructField("tenure_days", T.DoubleType()), SCHEMA.fields[3]])

    changed = register(moto_glue_url, traits(), retyped, T0)

    assert changed.action == "updated"
    assert changed.schema_changes == ["removed column is_prime_member (bigint)", "column tenure_days: bigint -> double"]
    assert changed.partitions_added == []


def test_a_delta_table_has_the_delta_table_type_and_no_partitions(glue: Any, moto_glue_url: str) -> None:
    result = register_snapshot(
        conf(moto_glue_url), group=traits(), schema=SCHEMA, location=LOCATION, partition=None, format="delta"
    )

    assert (result.action, result.partitions_added) == ("created", [])
    table = glue.get_table(DatabaseName=DATABASE, Name="fs_customer_traits")["Table"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"] == {
        **PARAMETERS,
        "classification": "delta",
        "table_type": "DELTA",
        "spark.sql.sources.provider": "delta",
    }
    assert table.get("PartitionKeys", []) == []
    sd = table["StorageDescriptor"]
    assert sd["Location"] == STORED_LOCATION
    assert sd["SerdeInfo"]["Parameters"]["path"] == STORED_LOCATION
    # The Delta writer's partition columns, ints after the metadata columns.
    assert sd["Columns"] == [
        *COLUMNS,
        {"Name": "year", "Type": "int", "Comment": "Partition: year of the event time (UTC), YYYY"},
        {"Name": "month", "Type": "int", "Comment": "Partition: month of the event time (UTC), MM"},
        {"Name": "day", "Type": "int", "Comment": "Partition: day of the event time (UTC), DD"},
        {"Name": "hour", "Type": "int", "Comment": "Partition: hour of the event time (UTC), HH"},
    ]
    assert glue.get_partitions(DatabaseName=DATABASE, TableName="fs_customer_traits")["Partitions"] == []


def test_a_missing_database_is_one_line_naming_the_fix(glue: Any, moto_glue_url: str) -> None:
    missing = GlueConf(enabled=True, database="no_such_db", endpoint_url=moto_glue_url)
    with pytest.raises(CatalogError) as caught:
        register_snapshot(
            missing, group=traits(), schema=SCHEMA, location=LOCATION, partition=partition_values(T0), format="parquet"
        )
    assert str(caught.value) == (
        "Glue database no_such_db does not exist; create it (aws glue create-database "
        "--database-input Name=no_such_db) or set catalog.glue.database"
    )


@pytest.mark.usefixtures("no_aws_credentials")
def test_an_unreachable_endpoint_is_one_line() -> None:
    gone = GlueConf(enabled=True, database=DATABASE, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(CatalogError) as caught:
        register_snapshot(
            gone, group=traits(), schema=SCHEMA, location=LOCATION, partition=partition_values(T0), format="parquet"
        )
    message = str(caught.value)
    assert message.startswith("Glue table feature_store.customer_traits: Could not connect to the endpoint URL")
    assert "\n" not in message


def test_spark_types_map_to_hive_types() -> None:
    nested = T.StructType([T.StructField("a", T.IntegerType()), T.StructField("b", T.ArrayType(T.StringType()))])
    assert [
        hive_type(t, "c")
        for t in (
            T.StringType(),
            T.LongType(),
            T.IntegerType(),
            T.DoubleType(),
            T.BooleanType(),
            T.TimestampType(),
            T.DateType(),
            T.DecimalType(22, 2),
            T.MapType(T.StringType(), T.LongType()),
            nested,
        )
    ] == [
        "string",
        "bigint",
        "int",
        "double",
        "boolean",
        "timestamp",
        "date",
        "decimal(22,2)",
        "map<string,bigint>",
        "struct<a:int,b:array<string>>",
    ]
    with pytest.raises(CatalogError, match="column c: Spark type interval day to second has no Glue/Hive type"):
        hive_type(T.DayTimeIntervalType(), "c")


def test_feature_types_are_those_the_transform_casts_to() -> None:
    from features.catalog.table import FEATURE_TYPES
    from features.transform.windows import SPARK_TYPES

    assert {k: v.simpleString() for k, v in FEATURE_TYPES.items()} == SPARK_TYPES
