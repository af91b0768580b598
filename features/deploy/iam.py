"""Least-privilege IAM policy documents for the job role, the scheduler role and the deployer.

The S3 locations come from the conf file the job runs with (``sources.*.path`` read;
``offline_store.root``, ``quarantine.root``, ``reports.root`` and ``online_store.dead_letter_root``
read and written) and the feature groups from the registry, so a policy follows the code it
serves. A conf value's ``${EVENTS_BUCKET}`` becomes the policy placeholder ``${EventsBucket}``
(a CloudFormation parameter name). ``bootstrap/iam/*.json`` and the roles in
``bootstrap/cloudformation/schedule.yaml`` are these documents (tests hold them equal); no
statement needs a ``*`` action or resource (docs/deploy.md#iam).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from features.config import _ENV_REF
from features.deploy.artifacts import DeployError

_S3 = re.compile(r"^s3a?://(?P<bucket>[^/]+)/?(?P<key>.*)$")
#: What a Spark job needs on a prefix it writes: its commit protocol reads, renames (copy +
#: delete) and aborts multipart uploads under the output.
_WRITE = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
#: The Feature Store calls of the push (PutRecord / BatchWriteRecord, after DescribeFeatureGroup
#: checks the group is registered as defined), ``get-record`` and ``skew-check`` (GetRecord /
#: BatchGetRecord) and ``freshness`` (ListRecords).
FEATURE_STORE_ACTIONS = [
    "sagemaker:BatchGetRecord",
    "sagemaker:BatchWriteRecord",
    "sagemaker:DescribeFeatureGroup",
    "sagemaker:GetRecord",
    "sagemaker:ListRecords",
    "sagemaker:PutRecord",
]
#: The Glue Data Catalog calls of ``catalog.glue`` (features/catalog/glue.py), on one database's tables.
GLUE_ACTIONS = [
    "glue:BatchCreatePartition",
    "glue:CreateTable",
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:UpdateTable",
]
#: What Delta's ``S3DynamoDBLogStore`` does with its lock table: create it on first use if it is
#: missing (DescribeTable, CreateTable), claim a commit (conditional PutItem), and find a table's
#: newest commit entry (GetItem, Query) (docs/offline-store.md#delta).
DELTA_LOG_STORE_ACTIONS = [
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
]
_DYNAMODB_LOG_STORE = "io.delta.storage.S3DynamoDBLogStore"
_DDB = "spark.io.delta.storage.S3DynamoDBLogStore.ddb."


@dataclass(frozen=True)
class Location:
    """``bucket`` + ``prefix`` (no slashes at either end) of an S3 location a policy names."""

    bucket: str
    prefix: str

    def objects(self, partition: str) -> str:
        return f"arn:{partition}:s3:::{self.bucket}/{self.prefix}/*"


@dataclass(frozen=True, kw_only=True)
class Where:
    """The partition, region and account the ARNs name (values, or placeholders like ``${Region}``)."""

    partition: str = "aws"
    region: str = "${Region}"
    account: str = "${Account}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


@dataclass(frozen=True, kw_only=True)
class ConfLocations:
    inputs: list[Location]
    outputs: list[Location]
    #: ``quarantine.root``: raw rows (personal data even when pseudonymisation is on), so its own
    #: statement that an account can audit and deny to everyone else (docs/privacy.md).
    quarantine: Location | None = None
    #: ``(database, table_prefix)`` when ``catalog.glue.enabled``: the tables the job registers.
    glue_tables: tuple[str, str] | None = None
    #: ``(region, table)`` when the offline store is Delta with the DynamoDB log store.
    delta_log_table: tuple[str, str] | None = None


def conf_locations(path: Path) -> ConfLocations:
    """The S3 locations the job reads and writes with the conf file at ``path``."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    inputs = [_location(source.get("path"), f"sources.{name}.path") for name, source in raw["sources"].items()]
    outputs = [
        _location(raw[section].get(key), f"{section}.{key}")
        for section, key in (
            ("offline_store", "root"),
            ("reports", "root"),
            ("online_store", "dead_letter_root"),
        )
    ]
    glue = (raw.get("catalog") or {}).get("glue") or {}
    tables = None
    if glue.get("enabled"):
        database = _ENV_REF.sub(_placeholder, str(glue.get("database") or ""))
        tables = (database, _ENV_REF.sub(_placeholder, str(glue.get("table_prefix") or "")))
    return ConfLocations(
        inputs=inputs,
        outputs=outputs,
        quarantine=_location(raw["quarantine"].get("root"), "quarantine.root"),
        glue_tables=tables,
        delta_log_table=_delta_log_table(raw),
    )


def _delta_log_table(raw: dict[str, Any]) -> tuple[str, str] | None:
    """The DynamoDB table Delta's S3 log store commits through, when the store is Delta and uses it."""
    settings = (raw.get("spark") or {}).get("conf") or {}
    if (raw.get("offline_store") or {}).get("format") != "delta":
        return None
    if settings.get("spark.delta.logStore.s3.impl") != _DYNAMODB_LOG_STORE:
        return None
    # Delta's own defaults when the conf names none (S3DynamoDBLogStore's constructor).
    table = str(settings.get(_DDB + "tableName") or "delta_log")
    region = str(settings.get(_DDB + "region") or "us-east-1")
    return _ENV_REF.sub(_placeholder, region), _ENV_REF.sub(_placeholder, table)


def _location(value: Any, key: str) -> Location:
    text = _ENV_REF.sub(_placeholder, value) if isinstance(value, str) else ""
    match = _S3.match(text)
    if not match or not match["key"].strip("/"):
        raise DeployError(f"{key} = {value!r}: the job role's policy needs an s3:// location with a prefix")
    return Location(match["bucket"], match["key"].strip("/"))


def _placeholder(reference: re.Match[str]) -> str:
    """``${EVENTS_BUCKET}`` -> ``${EventsBucket}``."""
    return "${" + "".join(part.capitalize() for part in reference[1].lower().split("_")) + "}"


def job_role_policy(
    *,
    where: Where,
    conf: ConfLocations,
    artifacts: Location,
    logs: Location,
    groups: Sequence[str],
    secrets: Sequence[str] = (),
) -> dict[str, Any]:
    """What a build job needs: read its inputs and artifacts, write its outputs and logs, push."""
    p = where.partition
    statements: list[dict[str, Any]] = [
        _statement("ReadInputsAndArtifacts", ["s3:GetObject"], [loc.objects(p) for loc in [*conf.inputs, artifacts]]),
        _statement("WriteOutputs", _WRITE, [loc.objects(p) for loc in conf.outputs]),
        *([_statement("WriteQuarantine", _WRITE, [conf.quarantine.objects(p)])] if conf.quarantine else []),
        _statement("WriteJobRunLogs", ["s3:PutObject"], [logs.objects(p)]),
        *_list_statements(p, [*conf.inputs, *conf.outputs, *([conf.quarantine] if conf.quarantine else []), artifacts]),
        _statement(
            "FeatureStoreRecords",
            FEATURE_STORE_ACTIONS,
            [where.arn("sagemaker", f"feature-group/{group}") for group in groups],
        ),
    ]
    if conf.glue_tables is not None:
        database, prefix = conf.glue_tables
        resources = [
            where.arn("glue", "catalog"),
            where.arn("glue", f"database/{database}"),
            where.arn("glue", f"table/{database}/{prefix}*"),
        ]
        statements.append(_statement("GlueCatalogTables", GLUE_ACTIONS, resources))
    if conf.delta_log_table is not None:
        region, table = conf.delta_log_table
        arn = f"arn:{p}:dynamodb:{region}:{where.account}:table/{table}"
        statements.append(_statement("DeltaLogStoreTable", DELTA_LOG_STORE_ACTIONS, [arn]))
    if secrets:
        # Secrets Manager appends six random characters to a secret's name in its ARN.
        arns = [where.arn("secretsmanager", f"secret:{name}-??????") for name in secrets]
        statements.append(_statement("JdbcSecret", ["secretsmanager:GetSecretValue"], arns))
    return _policy(statements)


def job_role_trust(*, where: Where, application_id: str) -> dict[str, Any]:
    """EMR Serverless may assume the job role, for job runs of this account's application only."""
    condition = {
        "StringEquals": {"aws:SourceAccount": where.account},
        "ArnLike": {"aws:SourceArn": where.arn("emr-serverless", f"/applications/{application_id}")},
    }
    return _trust("emr-serverless.amazonaws.com", condition)


def scheduler_role_policy(*, where: Where, application_id: str, job_role_arn: str) -> dict[str, Any]:
    """The scheduler may start job runs on one application, passing the job role and nothing else."""
    return _policy(
        [
            _statement(
                "StartJobRuns",
                ["emr-serverless:StartJobRun"],
                [where.arn("emr-serverless", f"/applications/{application_id}")],
            ),
            _pass_role("PassJobRole", job_role_arn, "emr-serverless.amazonaws.com"),
        ]
    )


def scheduler_role_trust(*, where: Where) -> dict[str, Any]:
    return _trust("scheduler.amazonaws.com", {"StringEquals": {"aws:SourceAccount": where.account}})


def deployer_policy(
    *,
    where: Where,
    artifacts: Location,
    cluster_id: str,
    application_id: str,
    schedule: str,
    job_role_arn: str,
    scheduler_role_arn: str,
) -> dict[str, Any]:
    """What ``feature-pipeline deploy ...`` calls, for the engineer or CI role that runs it."""
    application = where.arn("emr-serverless", f"/applications/{application_id}")
    return _policy(
        [
            _statement("UploadArtifacts", ["s3:GetObject", "s3:PutObject"], [artifacts.objects(where.partition)]),
            *_list_statements(where.partition, [artifacts]),
            _statement(
                "RunEmrSteps",
                ["elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:DescribeStep"],
                [where.arn("elasticmapreduce", f"cluster/{cluster_id}")],
            ),
            _statement(
                "RunServerlessJobs",
                ["emr-serverless:GetApplication", "emr-serverless:GetJobRun", "emr-serverless:StartJobRun"],
                [application, f"{application}/jobruns/*"],
            ),
            _statement(
                "ManageSchedule",
                ["scheduler:CreateSchedule", "scheduler:GetSchedule", "scheduler:UpdateSchedule"],
                [where.arn("scheduler", f"schedule/default/{schedule}")],
            ),
            _pass_role("PassJobRole", job_role_arn, "emr-serverless.amazonaws.com"),
            _pass_role("PassSchedulerRole", scheduler_role_arn, "scheduler.amazonaws.com"),
        ]
    )


def _list_statements(partition: str, locations: Iterable[Location]) -> list[dict[str, Any]]:
    """``s3:ListBucket`` per bucket, limited to the listed prefixes (Spark lists what it reads)."""
    prefixes: dict[str, set[str]] = {}
    for loc in locations:
        prefixes.setdefault(loc.bucket, set()).update({loc.prefix, f"{loc.prefix}/*"})
    return [
        {
            "Sid": "List" + re.sub(r"[^A-Za-z0-9]", "", bucket),
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:{partition}:s3:::{bucket}"],
            "Condition": {"StringLike": {"s3:prefix": sorted(prefixes[bucket])}},
        }
        for bucket in sorted(prefixes)
    ]


def _statement(sid: str, actions: Sequence[str], resources: Iterable[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(set(resources))}


def _pass_role(sid: str, role_arn: str, service: str) -> dict[str, Any]:
    statement = _statement(sid, ["iam:PassRole"], [role_arn])
    statement["Condition"] = {"StringEquals": {"iam:PassedToService": service}}
    return statement


def _trust(service: str, condition: dict[str, Any]) -> dict[str, Any]:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
        "Condition": condition,
    }
    return _policy([statement])


def _policy(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}
