"""``feature-pipeline deploy ...`` against a moto server over HTTP: what moto stored is asserted.

boto3 reaches moto only through ``AWS_ENDPOINT_URL`` (the fixture), as it would LocalStack; the
dist/ is a small fake with a manifest (``make package`` need not have run). No Spark.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import botocore.httpsession
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emrserverless.models import emrserverless_backends

from features.cli import main
from tests.deploy.conftest import PLACEHOLDER_SECRET, REGION

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = "s3://artifacts-bucket/feature-pipeline/0.1.0"
WHEEL = "emr_feature_pipeline-0.1.0-py3-none-any.whl"
ENV = ["--env", "FEATURES_BUCKET=my-features", "--env", "EVENTS_BUCKET=my-events"]
JOB_ROLE = "arn:aws:iam::123456789012:role/feature-pipeline-job"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/feature-pipeline-scheduler"


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every HTTP request boto3 sends (URL, headers, byte bodies), as text."""
    sent: list[str] = []
    original = botocore.httpsession.URLLib3Session.send

    def record(self: Any, request: Any) -> Any:
        body = request.body if isinstance(request.body, bytes | str) else b""
        sent.append(f"{request.method} {request.url} {dict(request.headers)} {body!r}")
        return original(self, request)

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", record)
    return sent


def make_dist(root: Path, *, delta: str = "4.0.0", job: str = "print('build')\n") -> Path:
    """A dist/ the way `make package` leaves it (bootstrap/package.py): files and manifest.json."""
    dist = root / "dist"
    files = {
        WHEEL: b"PK fake wheel",
        "pyspark_venv.tar.gz": b"fake venv-pack archive",
        "features.zip": b"PK fake py-files",
        "jobs/build_features.py": job.encode(),
    }
    for name, data in files.items():
        (dist / name).parent.mkdir(parents=True, exist_ok=True)
        (dist / name).write_bytes(data)
    constraints = ROOT / "constraints.txt"
    manifest = {
        "project": "emr-feature-pipeline",
        "version": "0.1.0",
        "artifacts": {
            "wheel": WHEEL,
            "archive": "pyspark_venv.tar.gz",
            "py_files": "features.zip",
            "jobs": ["jobs/build_features.py"],
        },
        "archive": {
            "constraints": {"file": str(constraints), "sha256": hashlib.sha256(constraints.read_bytes()).hexdigest()},
            "packages": {"boto3": "1.44.8", "delta-spark": delta},
        },
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in files.items()
        },
    }
    (dist / "manifest.json").write_text(json.dumps(manifest))
    return dist


def deploy(*args: str) -> int:
    return main(["deploy", *args])


def upload(dist: Path, *extra: str) -> int:
    return deploy(
        "upload",
        "--artifacts",
        ARTIFACTS,
        "--dist",
        str(dist),
        "--conf-file",
        str(ROOT / "conf/emr.yaml"),
        "--conf-file",
        str(ROOT / "conf/serverless.yaml"),
        "--bootstrap",
        str(ROOT / "bootstrap/emr-bootstrap.sh"),
        *extra,
    )


@pytest.fixture
def uploaded(moto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    boto3.client("s3").create_bucket(Bucket="artifacts-bucket")
    dist = make_dist(tmp_path)
    assert upload(dist) == 0
    capsys.readouterr()
    yield dist


def s3_object(key: str) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket="artifacts-bucket", Key=key)["Body"].read())


def output(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    captured = capsys.readouterr()
    return json.loads(captured.out) if captured.out.strip() else {}, captured.err


def test_upload_puts_the_manifest_files_under_fixed_keys_and_verifies_them(
    moto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("s3").create_bucket(Bucket="artifacts-bucket")
    dist = make_dist(tmp_path)
    assert upload(dist) == 0
    printed, _ = output(capsys)
    keys = sorted(
        o["Key"]
        for o in boto3.client("s3").list_objects_v2(Bucket="artifacts-bucket", Prefix="feature-pipeline/0.1.0/")[
            "Contents"
        ]
    )
    assert keys == [
        f"feature-pipeline/0.1.0/{name}"
        for name in [
            "bootstrap/emr-bootstrap.sh",
            "conf.tar.gz",
            "constraints.txt",
            "deploy.json",
            WHEEL,
            "environment.tar.gz",
            "features.zip",
            "jobs/build_features.py",
            "manifest.json",
        ]
    ]
    assert s3_object("feature-pipeline/0.1.0/environment.tar.gz") == b"fake venv-pack archive"
    assert (
        s3_object("feature-pipeline/0.1.0/bootstrap/emr-bootstrap.sh")
        == (ROOT / "bootstrap/emr-bootstrap.sh").read_bytes()
    )
    record = json.loads(s3_object("feature-pipeline/0.1.0/deploy.json"))
    assert record["conf_env"] == {
        "emr.yaml": ["EVENTS_BUCKET", "FEATURES_BUCKET"],
        "serverless.yaml": ["EVENTS_BUCKET", "FEATURES_BUCKET"],
    }
    assert record["versions"] == {"boto3": "1.44.8", "delta-spark": "4.0.0"}
    assert s3_object("feature-pipeline/0.1.0/constraints.txt") == (ROOT / "constraints.txt").read_bytes()
    assert record["objects"]["jobs/build_features.py"] == hashlib.sha256(b"print('build')\n").hexdigest()
    for key, sha in record["objects"].items():
        assert hashlib.sha256(s3_object(f"feature-pipeline/0.1.0/{key}")).hexdigest() == sha, key
        head = boto3.client("s3").head_object(Bucket="artifacts-bucket", Key=f"feature-pipeline/0.1.0/{key}")
        assert head["Metadata"] == {"sha256": sha}
    with tarfile.open(
        fileobj=gzip.GzipFile(fileobj=io.BytesIO(s3_object("feature-pipeline/0.1.0/conf.tar.gz")))
    ) as tar:
        assert tar.getnames() == ["emr.yaml", "serverless.yaml"]
        member = tar.extractfile("emr.yaml")
        assert member is not None and member.read() == (ROOT / "conf/emr.yaml").read_bytes()
    assert printed["bootstrap_action"] == {
        "Path": f"{ARTIFACTS}/bootstrap/emr-bootstrap.sh",
        "Args": [
            "--constraints",
            f"{ARTIFACTS}/constraints.txt",
            "--sha256",
            hashlib.sha256(b"PK fake wheel").hexdigest(),
            f"{ARTIFACTS}/{WHEEL}",
        ],
    }


def test_a_release_prefix_is_not_replaced_silently(
    uploaded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert upload(uploaded) == 0  # the same upload again: fine
    changed = make_dist(tmp_path / "next", job="print('build v2')\n")
    assert upload(changed) == 2
    assert (
        "already holds a different upload (jobs/build_features.py, manifest.json differ); upload to a new prefix, "
        "or pass --overwrite to replace it"
    ) in capsys.readouterr().err
    assert upload(changed, "--overwrite") == 0
    assert s3_object("feature-pipeline/0.1.0/jobs/build_features.py") == b"print('build v2')\n"


def test_upload_refuses_a_dist_that_no_longer_matches_its_manifest(
    moto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("s3").create_bucket(Bucket="artifacts-bucket")
    dist = make_dist(tmp_path)
    (dist / "features.zip").write_bytes(b"edited by hand")
    assert upload(dist) == 2
    assert "features.zip changed since `make package`" in capsys.readouterr().err
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket="artifacts-bucket")
    assert upload(tmp_path / "nowhere") == 2
    assert "manifest.json does not exist; run `make package` (or pass --dist DIR)" in capsys.readouterr().err


def test_emr_step_adds_the_generated_step(uploaded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emr = boto3.client("emr")
    cluster = emr.run_job_flow(
        Name="features",
        ReleaseLabel="emr-spark-8.0.0",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    code = deploy(
        "emr-step", "--cluster-id", cluster, "--artifacts", ARTIFACTS, "--group", "customer_orders",
        "--as-of", "floor(2026-10-31T00:17:03Z, 1d)", *ENV, "--set", "spark.shuffle_partitions=800",
    )  # fmt: skip
    assert code == 0
    printed, _ = output(capsys)
    step = emr.describe_step(ClusterId=cluster, StepId=printed["step_id"])["Step"]
    assert step["Name"] == "feature-pipeline build_features customer_orders 2026-10-31T00:00:00Z"
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == [
        "spark-submit", "--deploy-mode", "cluster",
        "--archives", f"{ARTIFACTS}/conf.tar.gz#conf",
        "--jars", "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar,/usr/share/aws/delta/lib/delta-storage-s3-dynamodb.jar",
        "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "--conf", "spark.yarn.appMasterEnv.PYSPARK_PYTHON=/usr/bin/python3.11",
        "--conf", "spark.executorEnv.PYSPARK_PYTHON=/usr/bin/python3.11",
        "--conf", "spark.yarn.appMasterEnv.EVENTS_BUCKET=my-events",
        "--conf", "spark.yarn.appMasterEnv.FEATURES_BUCKET=my-features",
        f"{ARTIFACTS}/jobs/build_features.py",
        "--conf", "conf/emr.yaml", "--group", "customer_orders", "--as-of", "2026-10-31T00:00:00Z",
        "--set", "spark.shuffle_partitions=800",
    ]  # fmt: skip
    listed = emr.list_steps(ClusterId=cluster)["Steps"]
    assert [s["Id"] for s in listed] == [printed["step_id"]]

    # moto keeps a cluster's first step RUNNING for ever: --wait gives up after --timeout, exit 1.
    code = deploy(
        "emr-step", "--cluster-id", cluster, "--artifacts", ARTIFACTS, "--as-of", "2026-10-31T00:00:00Z", *ENV,
        "--wait", "--timeout", "0.3", "--poll-seconds", "0.1",
    )  # fmt: skip
    assert code == 1
    assert "is still PENDING after 0.3s; it goes on without this command waiting" in capsys.readouterr().err


def test_emr_step_refuses_before_submitting(uploaded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["emr-step", "--cluster-id", "j-1", "--artifacts", ARTIFACTS, "--as-of", "2026-10-31T00:00:00Z"]
    assert deploy(*args, "--env", "FEATURES_BUCKET=f") == 2
    assert "conf/emr.yaml reads ${EVENTS_BUCKET} from the driver's environment: pass --env EVENTS_BUCKET=..." in (
        capsys.readouterr().err
    )
    assert deploy(*args[:4], "s3://artifacts-bucket/elsewhere", *args[5:], *ENV) == 2
    assert (
        "s3://artifacts-bucket/elsewhere/deploy.json does not exist: s3://artifacts-bucket/elsewhere holds no complete "
        "upload; run `feature-pipeline deploy upload --artifacts s3://artifacts-bucket/elsewhere` first"
    ) in capsys.readouterr().err
    assert deploy("emr-step", "--cluster-id", "cluster-1", "--artifacts", ARTIFACTS, "--as-of", "now") == 2
    assert "--cluster-id 'cluster-1' is not a cluster id" in capsys.readouterr().err


def _application(release_label: str, region: str = REGION) -> str:
    """An EMR Serverless application on ``release_label``.

    moto's CreateApplication accepts only ``emr-X.Y.0`` labels, so an ``emr-spark-8`` application
    is created as emr-7.12.0 and relabelled in the (in-process) server's backend.
    """
    client = boto3.client("emr-serverless", region_name=region)
    created = client.create_application(name="features", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    emrserverless_backends[DEFAULT_ACCOUNT_ID][region].applications[created].release_label = release_label
    assert client.get_application(applicationId=created)["application"]["releaseLabel"] == release_label
    return str(created)


def test_serverless_run_starts_the_job_run_and_waits_for_success(
    uploaded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    application = _application("emr-spark-8.0.0")
    code = deploy(
        "serverless-run", "--application-id", application, "--role-arn", JOB_ROLE, "--artifacts", ARTIFACTS,
        "--as-of", "2026-10-31T00:00:00Z", *ENV, "--release-label", "emr-spark-8.0.0", "--wait", "--poll-seconds", "0.1",
    )  # fmt: skip
    assert code == 0
    printed, _ = output(capsys)
    assert printed["state"] == "SUCCESS"
    run = boto3.client("emr-serverless").get_job_run(applicationId=application, jobRunId=printed["job_run_id"])[
        "jobRun"
    ]
    assert run["executionRole"] == JOB_ROLE
    assert run["name"] == "feature-pipeline build_features all 2026-10-31T00:00:00Z"
    assert run["jobDriver"]["sparkSubmit"]["entryPoint"] == f"{ARTIFACTS}/jobs/build_features.py"
    assert run["jobDriver"]["sparkSubmit"]["entryPointArguments"] == [
        "--conf", "conf/serverless.yaml", "--group", "all", "--as-of", "2026-10-31T00:00:00Z",
    ]  # fmt: skip
    assert run["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"].split(" --conf ") == [
        f"--conf spark.archives={ARTIFACTS}/environment.tar.gz#environment,{ARTIFACTS}/conf.tar.gz#conf",
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python",
        "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python",
        "spark.jars=/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar,/usr/share/aws/delta/lib/delta-storage-s3-dynamodb.jar",
        "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.emr-serverless.driverEnv.EVENTS_BUCKET=my-events",
        "spark.emr-serverless.driverEnv.FEATURES_BUCKET=my-features",
    ]
    assert run["configurationOverrides"] == {
        "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://artifacts-bucket/logs/"}}
    }


def test_serverless_run_exit_code_follows_the_final_state(
    uploaded: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    application = _application("emr-spark-8.0.0")
    states = iter(["PENDING", "RUNNING", "FAILED", "FAILED"])
    original = botocore.client.BaseClient._make_api_call

    def get_job_run_fails(self: Any, operation: str, params: dict[str, Any]) -> Any:
        response = original(self, operation, params)
        if operation == "GetJobRun":
            response["jobRun"].update(state=next(states), stateDetails="Job failed: exit code 1")
        return response

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", get_job_run_fails)
    code = deploy(
        "serverless-run", "--application-id", application, "--role-arn", JOB_ROLE, "--artifacts", ARTIFACTS,
        "--as-of", "2026-10-31T00:00:00Z", *ENV, "--wait", "--poll-seconds", "0.05",
    )  # fmt: skip
    printed, err = output(capsys)
    assert (code, printed["state"]) == (1, "FAILED")
    assert f"deploy serverless-run failed: job run {printed['job_run_id']} ended FAILED: Job failed: exit code 1" in err


def test_serverless_run_checks_the_release_before_starting(
    uploaded: Path, wire: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    application = _application("emr-7.12.0")
    args = ["serverless-run", "--application-id", application, "--role-arn", JOB_ROLE, "--artifacts", ARTIFACTS]
    assert deploy(*args, "--as-of", "now", *ENV) == 2
    assert "holds an archive with delta-spark 4.0.0, but emr-7.12.0 runs Spark 3.5 with Delta 3.3.2" in (
        capsys.readouterr().err
    )
    assert deploy(*args, "--as-of", "now", *ENV, "--release-label", "emr-spark-8.0.0") == 2
    assert f"application {application} runs emr-7.12.0, not --release-label emr-spark-8.0.0" in capsys.readouterr().err
    assert [w for w in wire if w.startswith("POST") and "/jobruns" in w] == []


def test_schedule_is_created_then_updated(uploaded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    application = _application("emr-spark-8.0.0")
    args = [
        "schedule", "--application-id", application, "--role-arn", JOB_ROLE, "--scheduler-role-arn", SCHEDULER_ROLE,
        "--artifacts", ARTIFACTS, *ENV,
    ]  # fmt: skip
    assert deploy(*args) == 0
    printed, _ = output(capsys)
    assert (printed["schedule"], printed["action"]) == ("feature-pipeline-daily", "created")
    scheduler = boto3.client("scheduler")
    schedule = scheduler.get_schedule(Name="feature-pipeline-daily")
    assert schedule["ScheduleExpression"] == "cron(17 0 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
    assert schedule["Target"]["RoleArn"] == SCHEDULER_ROLE
    sent = json.loads(schedule["Target"]["Input"])
    assert sent["applicationId"] == application
    assert sent["executionRoleArn"] == JOB_ROLE
    assert sent["clientToken"] == "feature-pipeline-daily-<aws.scheduler.scheduled-time>"
    assert sent["name"] == "feature-pipeline build_features all floor(<aws.scheduler.scheduled-time>, 1d)"
    assert sent["jobDriver"]["sparkSubmit"]["entryPointArguments"] == [
        "--conf", "conf/serverless.yaml", "--group", "all", "--as-of", "floor(<aws.scheduler.scheduled-time>, 1d)",
    ]  # fmt: skip
    assert sent["jobDriver"]["sparkSubmit"]["entryPoint"] == f"{ARTIFACTS}/jobs/build_features.py"
    assert (
        "spark.archives=" + f"{ARTIFACTS}/environment.tar.gz#environment"
        in sent["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]
    )

    assert deploy(*args, "--cron", "cron(30 1 * * ? *)", "--floor", "6h", "--disabled") == 0
    printed, _ = output(capsys)
    assert printed["action"] == "updated"
    schedule = scheduler.get_schedule(Name="feature-pipeline-daily")
    assert (schedule["ScheduleExpression"], schedule["State"]) == ("cron(30 1 * * ? *)", "DISABLED")
    assert json.loads(schedule["Target"]["Input"])["jobDriver"]["sparkSubmit"]["entryPointArguments"][-1] == (
        "floor(<aws.scheduler.scheduled-time>, 6h)"
    )
    assert [s["Name"] for s in scheduler.list_schedules()["Schedules"]] == ["feature-pipeline-daily"]
    assert deploy(*args, "--floor", "7d") == 2
    assert "floor unit 7d does not divide a day" in capsys.readouterr().err


def test_no_secret_in_any_request_stored_value_output_or_log(
    moto: str,
    tmp_path: Path,
    wire: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    boto3.client("s3").create_bucket(Bucket="artifacts-bucket")
    application = _application("emr-spark-8.0.0")
    assert upload(make_dist(tmp_path)) == 0
    common = ["--artifacts", ARTIFACTS, *ENV]
    assert (
        deploy("serverless-run", "--application-id", application, "--role-arn", JOB_ROLE, "--as-of", "now", *common)
        == 0
    )
    assert deploy("schedule", "--application-id", application, "--role-arn", JOB_ROLE, "--scheduler-role-arn",
                  SCHEDULER_ROLE, *common) == 0  # fmt: skip
    runs = boto3.client("emr-serverless").list_job_runs(applicationId=application)["jobRuns"]
    stored = [
        json.dumps(boto3.client("emr-serverless").get_job_run(applicationId=application, jobRunId=r["id"]), default=str)
        for r in runs
    ]
    stored.append(json.dumps(boto3.client("scheduler").get_schedule(Name="feature-pipeline-daily"), default=str))
    stored.append(s3_object("feature-pipeline/0.1.0/deploy.json").decode())
    captured = capsys.readouterr()
    assert len(wire) > 10 and any("StartJobRun" in w or "/jobruns" in w for w in wire)
    for text in [*wire, *stored, captured.out, captured.err, caplog.text]:
        assert PLACEHOLDER_SECRET not in text
    assert "--env AWS_SECRET_ACCESS_KEY: credentials never travel" in _refused_credential(application, capsys)


def _refused_credential(application: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = deploy(
        "serverless-run", "--application-id", application, "--role-arn", JOB_ROLE, "--artifacts", ARTIFACTS,
        "--as-of", "now", *ENV, "--env", f"AWS_SECRET_ACCESS_KEY={PLACEHOLDER_SECRET}",
    )  # fmt: skip
    assert code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("subcommand", "expected"),
    [
        (None, ["upload", "emr-step", "serverless-run", "schedule"]),
        ("upload", ["--artifacts", "--dist", "--conf-file", "--overwrite", "example:", "docs/deploy.md"]),
        ("emr-step", ["--cluster-id", "--python", "{bootstrap,py-files,archive}", "--wait", "--dry-run", "floor("]),
        (
            "serverless-run",
            ["--application-id", "--role-arn", "--release-label", "--log-uri", "exit 0 only on SUCCESS"],
        ),
        ("schedule", ["--scheduler-role-arn", "--cron", "--floor", "cron(17 0 * * ? *)"]),
    ],
)
def test_every_subcommand_has_a_useful_help(
    subcommand: str | None, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        deploy(*([subcommand] if subcommand else []), "--help")
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in expected:
        assert text in out, text


def test_region_comes_from_the_chain_or_the_flag(
    uploaded: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    args = ["serverless-run", "--application-id", "00app", "--role-arn", JOB_ROLE, "--artifacts", ARTIFACTS]
    assert deploy(*args, "--as-of", "now", *ENV) == 2
    assert "no AWS region configured: pass --region or set AWS_REGION" in capsys.readouterr().err
    application = _application("emr-spark-8.0.0")
    assert deploy(*args[:2], application, *args[3:], "--as-of", "now", *ENV, "--region", REGION, "--dry-run") == 0
    assert json.loads(capsys.readouterr().out)["applicationId"] == application
