"""``athena_ddl``: the Athena DDL of a group's table and its partitions, compared with hand-typed text."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import functions as F
from pyspark.sql import types as T

from features.catalog.glue import athena_ddl
from features.catalog.table import athena_statements, table_spec
from features.config import load_conf
from features.definitions import Derived, FeatureGroup
from features.sources import CUSTOMER, CUSTOMERS

ROOT = Path(__file__).resolve().parents[2]

MARKET = FeatureGroup(
    name="customer_market",
    description="Where the customer's account is.",
    owner="tests",
    entity=CUSTOMER,
    source=CUSTOMERS,
    derived=(
        Derived(
            name="country",
            dtype="String",
            inputs=("country",),
            expr=lambda t: F.col("country"),
            description="Country of the account",
        ),
    ),
)

EXPECTED = """\
CREATE EXTERNAL TABLE IF NOT EXISTS `feature_store`.`fs_customer_market` (
  `customer_id` string COMMENT 'A shopper, identified by the store\\'s customer id (e.g. C000042).',
  `event_time` string COMMENT 'Snapshot time T, ISO-8601 UTC (yyyy-MM-ddTHH:mm:ssZ): the event time feature',
  `country` string COMMENT 'Country of the account',
  `write_time` timestamp COMMENT 'When the pipeline wrote this record (UTC)',
  `api_invocation_time` timestamp COMMENT 'When the write of this snapshot started (UTC), as SageMaker\\'s offline store records it',
  `is_deleted` boolean COMMENT 'Always false: snapshots are written whole, deletes are not recorded'
)
COMMENT 'Where the customer\\'s account is.'
PARTITIONED BY (
  `year` string COMMENT 'Partition: year of the event time (UTC), YYYY',
  `month` string COMMENT 'Partition: month of the event time (UTC), MM',
  `day` string COMMENT 'Partition: day of the event time (UTC), DD',
  `hour` string COMMENT 'Partition: hour of the event time (UTC), HH'
)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'
LOCATION 's3://features-bucket/offline-store/customer_market/data'
TBLPROPERTIES (
  'classification'='parquet',
  'feature_group'='customer_market',
  'feature_family'='customer_market',
  'version'='1',
  'description'='Where the customer\\'s account is.',
  'owner'='tests',
  'online'='true',
  'source'='customers',
  'entity'='customer',
  'entity_key'='customer_id',
  'event_time_column'='event_time',
  'managed_by'='feature-pipeline'
);

ALTER TABLE `feature_store`.`fs_customer_market` ADD IF NOT EXISTS
  PARTITION (year='2026', month='10', day='31', hour='00') LOCATION 's3://features-bucket/offline-store/customer_market/data/year=2026/month=10/day=31/hour=00'
  PARTITION (year='2026', month='11', day='01', hour='06') LOCATION 's3://features-bucket/offline-store/customer_market/data/year=2026/month=11/day=01/hour=06';
"""


def test_the_athena_ddl_of_a_small_group() -> None:
    conf = load_conf(
        ROOT / "conf/local.yaml",
        [
            "offline_store.root=s3a://features-bucket/offline-store",
            "catalog.glue.database=feature_store",
            "catalog.glue.table_prefix=fs_",
        ],
    )
    partitions = [
        {"year": "2026", "month": "10", "day": "31", "hour": "00"},
        {"year": "2026", "month": "11", "day": "01", "hour": "06"},
    ]
    assert athena_ddl(conf, MARKET, partitions) == EXPECTED


def test_without_partitions_the_ddl_is_the_create_statement_alone() -> None:
    conf = load_conf(ROOT / "conf/local.yaml", ["catalog.glue.database=feature_store", "catalog.glue.table_prefix=fs_"])
    ddl = athena_ddl(conf, MARKET)
    assert ddl.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `feature_store`.`fs_customer_market` (\n")
    assert "ALTER TABLE" not in ddl
    assert "LOCATION 'out/offline-store/customer_market/data'\n" in ddl


def test_a_delta_table_is_its_location_and_table_type() -> None:
    schema = T.StructType([T.StructField("customer_id", T.StringType()), T.StructField("country", T.StringType())])
    spec = table_spec(
        database="feature_store",
        name="customer_market",
        group=MARKET,
        schema=schema,
        location="s3://features-bucket/offline-store/customer_market/data/",
        format="delta",
    )
    assert athena_statements(spec, [{"year": "2026", "month": "10", "day": "31", "hour": "00"}]) == [
        "CREATE EXTERNAL TABLE IF NOT EXISTS `feature_store`.`customer_market`\n"
        "LOCATION 's3://features-bucket/offline-store/customer_market/data'\n"
        "TBLPROPERTIES ('table_type'='DELTA');"
    ]


def test_the_ddl_of_a_delta_offline_store_names_the_delta_table() -> None:
    conf = load_conf(
        ROOT / "conf/local.yaml",
        [
            "offline_store.format=delta",
            "offline_store.root=s3://features-bucket/offline-store",
            "catalog.glue.database=feature_store",
        ],
    )
    assert athena_ddl(conf, MARKET) == (
        "CREATE EXTERNAL TABLE IF NOT EXISTS `feature_store`.`customer_market`\n"
        "LOCATION 's3://features-bucket/offline-store/customer_market/delta'\n"
        "TBLPROPERTIES ('table_type'='DELTA');\n"
    )
