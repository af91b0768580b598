"""EMR Serverless: the StartJobRun request, and which release labels the build runs on.

Python comes only from the venv-pack archive (``spark.archives=...#environment`` and
``./environment/bin/python`` for the driver and the executors); ``spark.jars.packages`` does not
work there, so Delta comes from the image's own jars. Examples per release label:
``bootstrap/serverless/``; picking the label: docs/deploy.md#picking-the-release-label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from features.deploy.artifacts import ENVIRONMENT, Artifacts, DeployError
from features.deploy.job import ARCHIVE_PYTHON, DELTA_JARS, DELTA_SETTINGS, JobRun, conf_flags


@dataclass(frozen=True)
class Platform:
    """An EMR release line this project supports (DESIGN.md, "Target platforms")."""

    pattern: re.Pattern[str]
    spark: str
    delta: str
    example: str
    #: The pins ``make package`` builds this line's archive with (docs/packaging.md).
    constraints: str


PLATFORMS = (
    Platform(
        re.compile(r"^emr-spark-8\.\d+\.\d+$"),
        spark="4.0",
        delta="4.0.0",
        example="emr-spark-8.0.0",
        constraints="constraints.txt",
    ),
    Platform(
        re.compile(r"^emr-7\.\d+\.\d+$"),
        spark="3.5",
        delta="3.3.2",
        example="emr-7.12.0",
        constraints="constraints-spark35.txt",
    ),
)


def platform(release_label: str) -> Platform:
    """The platform of ``release_label``; a DeployError listing the supported lines otherwise."""
    for candidate in PLATFORMS:
        if candidate.pattern.match(release_label):
            return candidate
    supported = ", ".join(f"{p.example} (Spark {p.spark})" for p in PLATFORMS)
    raise DeployError(f"release label {release_label!r} is not supported; use one of the lines {supported}")


def check_compatible(artifacts: Artifacts, release_label: str) -> None:
    """Stop before submitting when the archive was built for another Spark line than the release's.

    The archive leaves pyspark to the EMR runtime, so its delta-spark tells the line: Delta 4 goes
    with Spark 4.0, Delta 3 with Spark 3.5 (DESIGN.md).
    """
    line = platform(release_label)
    built = artifacts.versions.get("delta-spark")
    if built is not None and built.split(".")[0] != line.delta.split(".")[0]:
        raise DeployError(
            f"{artifacts.prefix} holds an archive with delta-spark {built}, but {release_label} runs Spark "
            f"{line.spark} with Delta {line.delta}: build with --constraints {line.constraints} and upload to "
            "another prefix (docs/deploy.md#picking-the-release-label)"
        )


def start_job_run(
    run: JobRun,
    *,
    application_id: str,
    role_arn: str,
    log_uri: str,
    client_token: str | None = None,
) -> dict[str, Any]:
    """StartJobRun's parameters (``client_token``: the idempotency token; boto3 makes one if None)."""
    archives = [f"{run.artifacts.uri(ENVIRONMENT, 'the venv-pack archive')}#environment", run.conf_archive]
    settings = [
        ("spark.archives", ",".join(archives)),
        ("spark.emr-serverless.driverEnv.PYSPARK_PYTHON", ARCHIVE_PYTHON),
        ("spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON", ARCHIVE_PYTHON),
        ("spark.executorEnv.PYSPARK_PYTHON", ARCHIVE_PYTHON),
        ("spark.jars", ",".join(DELTA_JARS)),
        *DELTA_SETTINGS.items(),
        *((f"spark.emr-serverless.driverEnv.{name}", value) for name, value in sorted(run.env.items())),
    ]
    request: dict[str, Any] = {
        "applicationId": application_id,
        "executionRoleArn": role_arn,
        "name": run.describe(),
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": run.entry_point,
                "entryPointArguments": run.arguments(),
                "sparkSubmitParameters": " ".join(conf_flags(settings)),
            }
        },
        "configurationOverrides": {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}},
    }
    if client_token is not None:
        request["clientToken"] = client_token
    return request


def default_log_uri(artifacts: Artifacts) -> str:
    """``s3://<artifacts bucket>/logs/``: where job runs log unless told (the IAM policies allow it)."""
    return f"s3://{artifacts.prefix.bucket}/logs/"
