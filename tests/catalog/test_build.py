"""``feature-pipeline build`` with ``catalog.glue.enabled``: the group's table and partition in moto's Glue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from features.cli import main
from tests.catalog.conftest import DATABASE
from tests.test_jobs import overrides

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-10-31T00:00:00Z"


def build(sample: Path, out: Path, url: str, database: str) -> tuple[int, dict[str, Any]]:
    args = ["build", "--conf", str(ROOT / "conf/local.yaml"), "--as-of", AS_OF, "--group", "customer_profile"]
    args += overrides(sample, out)
    for item in (
        "online_store.enabled=false",
        "validation.enabled=false",
        "catalog.glue.enabled=true",
        f"catalog.glue.database={database}",
        "catalog.glue.table_prefix=fs_",
        f"catalog.glue.endpoint_url={url}",
    ):
        args += ["--set", item]
    code = main(args)
    (report_file,) = (out / "reports" / "build_features").glob("*.json")
    return code, json.loads(report_file.read_text())


def test_a_build_registers_the_table_and_its_partition(
    spark: SparkSession, sample: Path, tmp_path: Path, glue: Any, moto_glue_url: str
) -> None:
    code, report = build(sample, tmp_path, moto_glue_url, DATABASE)

    assert code == 0
    (group,) = report["groups"]
    assert group["catalog"] == {
        "table": "feature_store.fs_customer_profile",
        "action": "created",
        "schema_changes": [],
        "metadata_changes": [],
        "partitions_added": ["year=2026/month=10/day=31/hour=00"],
    }
    table = glue.get_table(DatabaseName=DATABASE, Name="fs_customer_profile")["Table"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == [
        ("customer_id", "string"),
        ("event_time", "string"),
        ("age", "bigint"),
        ("age_bucket", "string"),
        ("tenure_days", "bigint"),
        ("is_prime_member", "bigint"),
        ("marital_status", "string"),
        ("country", "string"),
        ("write_time", "timestamp"),
        ("api_invocation_time", "timestamp"),
        ("is_deleted", "boolean"),
    ]
    assert table["StorageDescriptor"]["Location"] == f"{tmp_path}/store/customer_profile/data"
    (partition,) = glue.get_partitions(DatabaseName=DATABASE, TableName="fs_customer_profile")["Partitions"]
    assert partition["Values"] == ["2026", "10", "31", "00"]
    assert partition["StorageDescriptor"]["Location"] == group["offline_path"]
    # What the partition points at holds the snapshot, with the table's columns.
    written = spark.read.parquet(group["offline_path"])
    assert [(c, t) for c, t in written.dtypes] == columns
    assert written.count() == group["entities"] == 150


def test_a_glue_failure_keeps_the_offline_write_and_fails_the_run(
    spark: SparkSession, sample: Path, tmp_path: Path, glue: Any, moto_glue_url: str
) -> None:
    code, report = build(sample, tmp_path, moto_glue_url, "no_such_db")

    (group,) = report["groups"]
    assert group["offline_path"] and Path(group["offline_path"]).is_dir()
    assert group["catalog"]["action"] == "failed"
    assert group["catalog"]["error"].startswith("catalog registration failed: Glue database no_such_db does not exist")
    assert (code, group["status"]) == (1, "published")  # both stores hold it; the catalog does not
    assert report["error"].startswith("1 of 1 groups published but not in the catalog: customer_profile: ")
    assert "no_such_db" in report["error"]
