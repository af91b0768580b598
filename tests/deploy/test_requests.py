"""The request builders by value: the EMR step, StartJobRun, the schedule, and what they refuse."""

from __future__ import annotations

import json
import re

import pytest

from features.deploy.artifacts import ENVIRONMENT, PY_FILES, Artifacts, DeployError, S3Uri
from features.deploy.aws import wait_until
from features.deploy.emr import emr_step
from features.deploy.job import JobRun
from features.deploy.schedule import START_JOB_RUN_TARGET, client_token, schedule_request, scheduled_as_of
from features.deploy.serverless import check_compatible, platform, start_job_run
from tests.deploy.examples import example_artifacts

PREFIX = "s3://art/fp/0.1.0"
ENV = {"FEATURES_BUCKET": "feat", "EVENTS_BUCKET": "ev"}


def job(artifacts: Artifacts | None = None, **changes: object) -> JobRun:
    values: dict[str, object] = {
        "artifacts": artifacts or example_artifacts("art", "fp/0.1.0"),
        "conf": "emr.yaml",
        "group": "customer_orders",
        "as_of": "2026-10-31T00:00:00Z",
        "env": ENV,
    }
    values.update(changes)
    return JobRun(**values)  # type: ignore[arg-type]


def test_emr_step_runs_spark_submit_in_cluster_mode_with_the_bootstrap_installed_wheel() -> None:
    step = emr_step(job(overrides=("spark.shuffle_partitions=800",)))
    assert step == {
        "Name": "feature-pipeline build_features customer_orders 2026-10-31T00:00:00Z",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                "spark-submit",
                "--deploy-mode",
                "cluster",
                "--archives",
                f"{PREFIX}/conf.tar.gz#conf",
                "--jars",
                "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar,/usr/share/aws/delta/lib/delta-storage-s3-dynamodb.jar",
                "--conf",
                "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
                "--conf",
                "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
                "--conf",
                "spark.yarn.appMasterEnv.PYSPARK_PYTHON=/usr/bin/python3.11",
                "--conf",
                "spark.executorEnv.PYSPARK_PYTHON=/usr/bin/python3.11",
                "--conf",
                "spark.yarn.appMasterEnv.EVENTS_BUCKET=ev",
                "--conf",
                "spark.yarn.appMasterEnv.FEATURES_BUCKET=feat",
                f"{PREFIX}/jobs/build_features.py",
                "--conf",
                "conf/emr.yaml",
                "--group",
                "customer_orders",
                "--as-of",
                "2026-10-31T00:00:00Z",
                "--set",
                "spark.shuffle_partitions=800",
            ],
        },
    }


def test_emr_step_py_files_and_archive_routes() -> None:
    py_files = emr_step(job(), python="py-files", interpreter="/opt/python/bin/python3.11")["HadoopJarStep"]["Args"]
    assert py_files[5:7] == ["--py-files", f"{PREFIX}/features.zip"]
    assert "spark.executorEnv.PYSPARK_PYTHON=/opt/python/bin/python3.11" in py_files
    archive = emr_step(job(), python="archive", action_on_failure="CANCEL_AND_WAIT")
    args = archive["HadoopJarStep"]["Args"]
    assert archive["ActionOnFailure"] == "CANCEL_AND_WAIT"
    assert args[3:5] == ["--archives", f"{PREFIX}/conf.tar.gz#conf,{PREFIX}/environment.tar.gz#environment"]
    assert "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python" in args
    assert "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python" in args
    assert "--py-files" not in args


def test_start_job_run_request() -> None:
    request = start_job_run(
        job(conf="serverless.yaml", group="all"),
        application_id="00app",
        role_arn="arn:aws:iam::123456789012:role/job",
        log_uri="s3://logs/fp/",
        client_token="daily-<aws.scheduler.scheduled-time>",
    )
    assert request == {
        "applicationId": "00app",
        "executionRoleArn": "arn:aws:iam::123456789012:role/job",
        "name": "feature-pipeline build_features all 2026-10-31T00:00:00Z",
        "clientToken": "daily-<aws.scheduler.scheduled-time>",
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": f"{PREFIX}/jobs/build_features.py",
                "entryPointArguments": [
                    "--conf",
                    "conf/serverless.yaml",
                    "--group",
                    "all",
                    "--as-of",
                    "2026-10-31T00:00:00Z",
                ],
                "sparkSubmitParameters": (
                    f"--conf spark.archives={PREFIX}/environment.tar.gz#environment,{PREFIX}/conf.tar.gz#conf "
                    "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python "
                    "--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python "
                    "--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python "
                    "--conf spark.jars=/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar,/usr/share/aws/delta/lib/delta-storage-s3-dynamodb.jar "
                    "--conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension "
                    "--conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog "
                    "--conf spark.emr-serverless.driverEnv.EVENTS_BUCKET=ev "
                    "--conf spark.emr-serverless.driverEnv.FEATURES_BUCKET=feat"
                ),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://logs/fp/"}}
        },
    }


def test_schedule_request_targets_start_job_run_with_the_floored_scheduled_time() -> None:
    run = job(conf="serverless.yaml", as_of=scheduled_as_of("1d"))
    job_run = start_job_run(
        run, application_id="00app", role_arn="arn:job", log_uri="s3://l/", client_token=client_token("daily")
    )
    request = schedule_request(
        name="daily", expression="cron(17 0 * * ? *)", scheduler_role_arn="arn:scheduler", job_run=job_run
    )
    assert {k: v for k, v in request.items() if k != "Target"} == {
        "Name": "daily",
        "GroupName": "default",
        "Description": "",
        "ScheduleExpression": "cron(17 0 * * ? *)",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
    }
    assert request["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun" == START_JOB_RUN_TARGET
    assert request["Target"]["RoleArn"] == "arn:scheduler"
    sent = json.loads(request["Target"]["Input"])
    assert sent["clientToken"] == "daily-<aws.scheduler.scheduled-time>"
    assert sent["jobDriver"]["sparkSubmit"]["entryPointArguments"][-2:] == [
        "--as-of",
        "floor(<aws.scheduler.scheduled-time>, 1d)",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"env": {"FEATURES_BUCKET": "feat"}}, "conf/emr.yaml reads ${EVENTS_BUCKET} from the driver's environment"),
        ({"env": {**ENV, "AWS_SECRET_ACCESS_KEY": "x"}}, "credentials never travel in a job's arguments"),
        ({"env": {**ENV, "JDBC_PASSWORD": "x"}}, "credentials never travel"),
        ({"env": {**ENV, "BAD-NAME": "x"}}, "not a variable name; use letters, digits and _"),
        ({"env": {**ENV, "EXTRA": "a b"}}, "without spaces or commas"),
        ({"conf": "prod.yaml"}, "has no prod.yaml (it has: emr.yaml, serverless.yaml); upload it with --conf-file"),
        ({"overrides": ("spark.shuffle_partitions",)}, "use KEY=VALUE"),
    ],
)
def test_job_run_refuses(changes: dict[str, object], message: str) -> None:
    with pytest.raises(DeployError) as caught:
        job(**changes)
    assert message in str(caught.value)


def test_a_route_the_prefix_lacks_names_the_upload() -> None:
    artifacts = example_artifacts("art", "fp/0.1.0")
    without = Artifacts(
        prefix=artifacts.prefix,
        version="0.1.0",
        objects={k: v for k, v in artifacts.objects.items() if k not in (PY_FILES, ENVIRONMENT)},
        conf_env=artifacts.conf_env,
    )
    with pytest.raises(DeployError, match=r"s3://art/fp/0.1.0 holds no features.zip \(the --py-files zip\)"):
        emr_step(job(without), python="py-files")
    with pytest.raises(DeployError, match=re.escape("holds no environment.tar.gz")):
        start_job_run(job(without), application_id="a", role_arn="r", log_uri="s3://l/")


def test_release_labels_and_the_archive_they_need() -> None:
    assert (platform("emr-spark-8.0.0").spark, platform("emr-7.12.0").spark, platform("emr-7.13.0").delta) == (
        "4.0",
        "3.5",
        "3.3.2",
    )
    with pytest.raises(DeployError, match=re.escape("release label 'emr-6.15.0' is not supported")):
        platform("emr-6.15.0")
    check_compatible(example_artifacts("art", "fp", delta="3.3.2"), "emr-7.12.0")
    check_compatible(example_artifacts("art", "fp", delta="4.0.0"), "emr-spark-8.0.0")
    message = (
        "s3://art/fp holds an archive with delta-spark 4.0.0, but emr-7.12.0 runs Spark 3.5 with Delta 3.3.2: "
        "build with --constraints constraints-spark35.txt and upload to another prefix"
    )
    with pytest.raises(DeployError, match=re.escape(message)):
        check_compatible(example_artifacts("art", "fp", delta="4.0.0"), "emr-7.12.0")
    with pytest.raises(DeployError, match=re.escape("build with --constraints constraints.txt")):
        check_compatible(example_artifacts("art", "fp", delta="3.3.2"), "emr-spark-8.0.0")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "x" * 44}, "use at most 43 letters"),
        ({"name": "has space"}, "use at most 43 letters"),
        ({"expression": "0 17 * * *"}, "use a Scheduler expression"),
    ],
)
def test_schedule_refuses(changes: dict[str, str], message: str) -> None:
    values = {"name": "daily", "expression": "rate(1 day)", "scheduler_role_arn": "arn", "job_run": {}} | changes
    with pytest.raises(DeployError, match=message):
        schedule_request(**values)  # type: ignore[arg-type]


def test_s3_uris() -> None:
    assert S3Uri.parse("s3://my-artifacts/feature-pipeline/0.1.0/") == S3Uri("my-artifacts", "feature-pipeline/0.1.0")
    assert str(S3Uri.parse("s3://bkt").child("deploy.json")) == "s3://bkt/deploy.json"
    with pytest.raises(DeployError, match="--artifacts 'my-artifacts/x' is not an s3:// URI"):
        S3Uri.parse("my-artifacts/x")


def test_wait_until_returns_the_terminal_state_and_times_out() -> None:
    states = iter(["PENDING", "RUNNING", "RUNNING", "FAILED"])
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    state = wait_until(
        lambda: next(states),
        what="step s-1",
        terminal={"FAILED"},
        timeout=60,
        interval=5,
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert (state, slept) == ("FAILED", [5, 5, 5])
    with pytest.raises(DeployError, match="step s-2 is still RUNNING after 12s"):
        wait_until(
            lambda: "RUNNING",
            what="step s-2",
            terminal={"COMPLETED"},
            timeout=12,
            interval=5,
            sleep=sleep,
            clock=lambda: now[0],
        )
