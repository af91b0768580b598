"""The checked-in examples under bootstrap/, rendered from the request builders.

``test_examples.py`` renders them and compares with the files; after a deliberate change,
rewrite them with::

    .venv/bin/python -m tests.deploy.examples
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from features.deploy.artifacts import (
    BOOTSTRAP,
    CONF_ARCHIVE,
    CONSTRAINTS,
    DIST_MANIFEST,
    ENVIRONMENT,
    PY_FILES,
    Artifacts,
    S3Uri,
    conf_variables,
)
from features.deploy.emr import emr_step
from features.deploy.iam import (
    Location,
    Where,
    conf_locations,
    deployer_policy,
    job_role_policy,
    job_role_trust,
    scheduler_role_policy,
    scheduler_role_trust,
)
from features.deploy.job import JobRun
from features.deploy.serverless import start_job_run
from features.registry import all_groups

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_DIR = ROOT / "bootstrap"
CONF = ROOT / "conf"
EXAMPLE_ENV = {"FEATURES_BUCKET": "my-features", "EVENTS_BUCKET": "my-events"}
EXAMPLE_AS_OF = "2026-10-31T00:00:00Z"
EXAMPLE_CLUSTER = "j-2AXXXXXXGAPLF"
EXAMPLE_APPLICATION = "00fabcdexample"
EXAMPLE_JOB_ROLE = "arn:aws:iam::123456789012:role/feature-pipeline-job"
#: Release label -> (the prefix its build is uploaded to in the examples, the delta-spark inside).
EXAMPLE_RELEASES = {
    "emr-spark-8.0.0": ("feature-pipeline/0.1.0", "4.0.0"),
    "emr-7.12.0": ("feature-pipeline/0.1.0-emr7", "3.3.2"),
}
WHEEL = "emr_feature_pipeline-0.1.0-py3-none-any.whl"
#: The placeholders the IAM documents under bootstrap/iam/ use (docs/deploy.md#iam).
POLICY_WHERE = Where(partition="aws", region="${Region}", account="${Account}")
ARTIFACTS_LOCATION = Location("${ArtifactsBucket}", "${ArtifactsPrefix}")
LOGS_LOCATION = Location("${ArtifactsBucket}", "logs")


def example_artifacts(bucket: str, prefix: str, delta: str = "4.0.0") -> Artifacts:
    """What deploy.json would say for an upload of ``make package``'s output with the repo's conf."""
    keys = [WHEEL, ENVIRONMENT, PY_FILES, "jobs/build_features.py", CONF_ARCHIVE, BOOTSTRAP, CONSTRAINTS, DIST_MANIFEST]
    return Artifacts(
        prefix=S3Uri(bucket, prefix),
        version="0.1.0",
        objects={key: "0" * 64 for key in keys},
        conf_env={name: conf_variables(CONF / name) for name in ("emr.yaml", "serverless.yaml")},
        versions={"delta-spark": delta},
    )


def example_job_role_policy(where: Where) -> dict[str, Any]:
    """The job role's policy for conf/serverless.yaml and the registry's groups, with placeholders."""
    return job_role_policy(
        where=where,
        conf=conf_locations(CONF / "serverless.yaml"),
        artifacts=ARTIFACTS_LOCATION,
        logs=LOGS_LOCATION,
        groups=sorted(all_groups()),
        secrets=["${JdbcSecretName}"],
    )


def render() -> dict[Path, Any]:
    """Every example file -> its content."""
    files: dict[Path, Any] = {}
    emr_run = JobRun(
        artifacts=example_artifacts("my-artifacts", EXAMPLE_RELEASES["emr-spark-8.0.0"][0]),
        conf="emr.yaml",
        group="all",
        as_of=EXAMPLE_AS_OF,
        env=EXAMPLE_ENV,
    )
    files[BOOTSTRAP_DIR / "steps" / "build_features.json"] = {
        "JobFlowId": EXAMPLE_CLUSTER,
        "Steps": [emr_step(emr_run)],
    }
    for label, (prefix, delta) in EXAMPLE_RELEASES.items():
        run = JobRun(
            artifacts=example_artifacts("my-artifacts", prefix, delta),
            conf="serverless.yaml",
            group="all",
            as_of=EXAMPLE_AS_OF,
            env=EXAMPLE_ENV,
        )
        files[BOOTSTRAP_DIR / "serverless" / f"start_job_run.{label}.json"] = start_job_run(
            run, application_id=EXAMPLE_APPLICATION, role_arn=EXAMPLE_JOB_ROLE, log_uri="s3://my-artifacts/logs/"
        )
    iam = BOOTSTRAP_DIR / "iam"
    files[iam / "job-role-policy.json"] = example_job_role_policy(POLICY_WHERE)
    files[iam / "job-role-trust.json"] = job_role_trust(where=POLICY_WHERE, application_id="${ApplicationId}")
    job_role = "arn:aws:iam::${Account}:role/${JobRoleName}"
    scheduler_role = "arn:aws:iam::${Account}:role/${SchedulerRoleName}"
    files[iam / "scheduler-role-policy.json"] = scheduler_role_policy(
        where=POLICY_WHERE, application_id="${ApplicationId}", job_role_arn=job_role
    )
    files[iam / "scheduler-role-trust.json"] = scheduler_role_trust(where=POLICY_WHERE)
    files[iam / "deployer-policy.json"] = deployer_policy(
        where=POLICY_WHERE,
        artifacts=ARTIFACTS_LOCATION,
        cluster_id="${ClusterId}",
        application_id="${ApplicationId}",
        schedule="${ScheduleName}",
        job_role_arn=job_role,
        scheduler_role_arn=scheduler_role,
    )
    return files


def text(content: Any) -> str:
    return json.dumps(content, indent=2) + "\n"


def main() -> None:
    for path, content in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text(content), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
