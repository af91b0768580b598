"""The job role may use Delta's DynamoDB lock table exactly when the conf's offline store needs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from features.deploy.iam import Location, Where, conf_locations, job_role_policy
from features.deploy.job import DELTA_JARS

CONF = Path(__file__).resolve().parents[2] / "conf"
WHERE = Where(partition="aws", region="eu-west-1", account="123456789012")


def _policy(tmp_path: Path, *, fmt: str, log_store: bool = True) -> dict[str, Any]:
    text = (
        (CONF / "emr.yaml")
        .read_text(encoding="utf-8")
        .replace("  format: parquet\n  vacuum", f"  format: {fmt}\n  vacuum")
    )
    if not log_store:
        text = text.replace("    spark.delta.logStore.s3.impl: io.delta.storage.S3DynamoDBLogStore\n", "")
    path = tmp_path / "conf.yaml"
    path.write_text(text, encoding="utf-8")
    return job_role_policy(
        where=WHERE,
        conf=conf_locations(path),
        artifacts=Location("artifacts", "feature-pipeline"),
        logs=Location("logs", "emr"),
        groups=["customer_orders"],
    )


def _statement(policy: dict[str, Any], sid: str) -> dict[str, Any] | None:
    return next((s for s in policy["Statement"] if s["Sid"] == sid), None)


def test_delta_with_the_dynamodb_log_store_may_use_that_one_table(tmp_path: Path) -> None:
    statement = _statement(_policy(tmp_path, fmt="delta"), "DeltaLogStoreTable")
    assert statement == {
        "Sid": "DeltaLogStoreTable",
        "Effect": "Allow",
        "Action": [
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
        ],
        # The conf's ddb.region (us-east-1), not the policy's region (eu-west-1).
        "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/feature-pipeline-delta-log"],
    }


@pytest.mark.parametrize(("fmt", "log_store"), [("parquet", True), ("delta", False)])
def test_no_dynamodb_access_without_delta_or_without_the_log_store(tmp_path: Path, fmt: str, log_store: bool) -> None:
    policy = _policy(tmp_path, fmt=fmt, log_store=log_store)
    assert _statement(policy, "DeltaLogStoreTable") is None
    assert not any(a.startswith("dynamodb:") for s in policy["Statement"] for a in s["Action"])


def test_emr_jobs_put_the_log_store_jar_on_the_classpath() -> None:
    assert "/usr/share/aws/delta/lib/delta-storage-s3-dynamodb.jar" in DELTA_JARS
