"""``feature-pipeline deploy upload | emr-step | serverless-run | schedule``: what a platform engineer runs.

``upload`` puts ``make package``'s dist/ and the conf files under one artifacts prefix (every
object read back and its sha256 compared); the others read that prefix's ``deploy.json`` and
submit the job from it. No command takes or prints a credential: boto3's default chain provides
them, and ``AWS_ENDPOINT_URL`` points the clients elsewhere (moto, LocalStack). docs/deploy.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from features.cli.base import AS_OF_HELP, Command, add_set_argument, floor_unit, parse_as_of, setup_logging
from features.cli.errors import EXIT_OK, EXIT_USAGE, UsageError, fail
from features.deploy.artifacts import BOOTSTRAP, Artifacts, DeployError, DeployFailedError, S3Uri, plan_upload
from features.deploy.aws import aws_error, client, read_record, upload, wait_until
from features.deploy.emr import ACTIONS_ON_FAILURE, CLUSTER_PYTHON, PYTHON_MODES, bootstrap_arguments, emr_step
from features.deploy.job import JobRun
from features.deploy.schedule import client_token, schedule_request, scheduled_as_of
from features.deploy.serverless import check_compatible, default_log_uri, platform, start_job_run

STEP_DONE = ("COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")
JOB_RUN_DONE = ("SUCCESS", "FAILED", "CANCELLED")
EXAMPLE_ARTIFACTS = "s3://my-artifacts/feature-pipeline/0.1.0"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="deploy_command", required=True, metavar="SUBCOMMAND")
    for name, help_, description, example, add, handler in _SUBCOMMANDS:
        child = sub.add_parser(
            name,
            help=help_,
            description=description,
            epilog=f"example:\n  {example}\n\nDetails: docs/deploy.md",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        child.add_argument(
            "--region", default=None, help="AWS region (default: boto3's chain: AWS_REGION, the profile, ...)"
        )
        add(child)
        child.set_defaults(deploy_handler=handler, deploy_name=f"deploy {name}")


def _run(args: argparse.Namespace) -> int:
    setup_logging("INFO")
    for chatty in ("botocore", "boto3", "s3transfer"):  # where they found credentials, endpoints, ...
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return int(args.deploy_handler(args))
    except DeployFailedError as exc:
        return fail(args.deploy_name, str(exc))
    except (DeployError, UsageError) as exc:
        return fail(args.deploy_name, str(exc), EXIT_USAGE)
    except ClientError as exc:
        return fail(args.deploy_name, aws_error(exc))
    except BotoCoreError as exc:
        return fail(args.deploy_name, f"{type(exc).__name__}: {exc}")


# -- upload -----------------------------------------------------------------------------------


def _upload_arguments(parser: argparse.ArgumentParser) -> None:
    _artifacts_argument(parser)
    parser.add_argument("--dist", type=Path, default=Path("dist"), help="what `make package` built (default: dist)")
    parser.add_argument(
        "--conf-file",
        type=Path,
        action="append",
        default=None,
        help="a conf file the jobs may run with, shipped in conf.tar.gz (repeatable; default: conf/emr.yaml "
        "and conf/serverless.yaml)",
    )
    parser.add_argument(
        "--bootstrap",
        type=Path,
        default=Path(BOOTSTRAP),
        help=f"the EMR bootstrap action to upload (default: {BOOTSTRAP})",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a prefix that already holds a different upload"
    )


def _upload(args: argparse.Namespace) -> int:
    prefix = S3Uri.parse(args.artifacts)
    conf_files = args.conf_file or [Path("conf/emr.yaml"), Path("conf/serverless.yaml")]
    plan = plan_upload(args.dist, conf_files, args.bootstrap)
    record = upload(client("s3", args.region), prefix, plan, overwrite=args.overwrite)
    print(
        json.dumps(
            {
                "artifacts": str(prefix),
                "version": record.version,
                "objects": record.objects,
                "bootstrap_action": {"Path": str(prefix.child(BOOTSTRAP)), "Args": bootstrap_arguments(record)},
            },
            indent=2,
        )
    )
    return EXIT_OK


# -- emr-step ---------------------------------------------------------------------------------


def _emr_step_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-id", required=True, help="the EMR cluster (j-...)")
    _job_arguments(parser, conf="emr.yaml")
    parser.add_argument(
        "--python",
        choices=PYTHON_MODES,
        default="bootstrap",
        help="where the job's Python code comes from: the wheel the bootstrap action installed (default), "
        "--py-files features.zip, or the venv-pack archive",
    )
    parser.add_argument(
        "--interpreter",
        default=CLUSTER_PYTHON,
        help=f"the nodes' Python for bootstrap and py-files (default: {CLUSTER_PYTHON})",
    )
    parser.add_argument("--action-on-failure", choices=ACTIONS_ON_FAILURE, default="CONTINUE")
    _wait_arguments(parser, "the step ends (exit 0 only on COMPLETED)")


def _emr_step(args: argparse.Namespace) -> int:
    if not args.cluster_id.startswith("j-"):
        raise UsageError(f"--cluster-id {args.cluster_id!r} is not a cluster id; use e.g. j-2AXXXXXXGAPLF")
    emr = client("emr", args.region)
    run = _job_run(args, client("s3", args.region), as_of=_as_of(args.as_of))
    step = emr_step(run, python=args.python, interpreter=args.interpreter, action_on_failure=args.action_on_failure)
    if args.dry_run:
        print(json.dumps({"JobFlowId": args.cluster_id, "Steps": [step]}, indent=2))
        return EXIT_OK
    (step_id,) = emr.add_job_flow_steps(JobFlowId=args.cluster_id, Steps=[step])["StepIds"]
    result: dict[str, Any] = {"cluster_id": args.cluster_id, "step_id": step_id, "name": step["Name"]}
    if not args.wait:
        print(json.dumps(result, indent=2))
        return EXIT_OK

    def status() -> dict[str, Any]:
        return dict(emr.describe_step(ClusterId=args.cluster_id, StepId=step_id)["Step"]["Status"])

    result["state"] = _wait(args, f"step {step_id}", lambda: str(status()["State"]), STEP_DONE)
    print(json.dumps(result, indent=2))
    if result["state"] != "COMPLETED":
        reason = status().get("FailureDetails", {}).get("Message") or status().get("StateChangeReason", {}).get(
            "Message"
        )
        return fail(args.deploy_name, f"step {step_id} ended {result['state']}" + (f": {reason}" if reason else ""))
    return EXIT_OK


# -- serverless-run ---------------------------------------------------------------------------


def _serverless_arguments(parser: argparse.ArgumentParser, *, as_of: bool) -> None:
    parser.add_argument("--application-id", required=True, help="the EMR Serverless application")
    parser.add_argument("--role-arn", required=True, help="the job runtime role (bootstrap/iam/job-role-policy.json)")
    _job_arguments(parser, conf="serverless.yaml", as_of=as_of)
    parser.add_argument(
        "--release-label",
        default=None,
        help="fail unless the application runs this release, e.g. emr-spark-8.0.0 or emr-7.12.0 (default: "
        "whatever it runs); either way the archive must be built for the release's Spark line",
    )
    parser.add_argument("--log-uri", default=None, help="where job runs log (default: s3://<artifacts bucket>/logs/)")


def _serverless_run_arguments(parser: argparse.ArgumentParser) -> None:
    _serverless_arguments(parser, as_of=True)
    _wait_arguments(parser, "the job run ends (exit 0 only on SUCCESS)")


def _serverless_run(args: argparse.Namespace) -> int:
    emr = client("emr-serverless", args.region)
    run = _job_run(args, client("s3", args.region), as_of=_as_of(args.as_of))
    _check_release(emr, args, run.artifacts)
    request = start_job_run(
        run,
        application_id=args.application_id,
        role_arn=args.role_arn,
        log_uri=args.log_uri or default_log_uri(run.artifacts),
    )
    if args.dry_run:
        print(json.dumps(request, indent=2))
        return EXIT_OK
    started = emr.start_job_run(**request)
    job_run_id = started["jobRunId"]
    result: dict[str, Any] = {"application_id": args.application_id, "job_run_id": job_run_id, "arn": started["arn"]}
    if not args.wait:
        print(json.dumps(result, indent=2))
        return EXIT_OK

    def job_run() -> dict[str, Any]:
        return dict(emr.get_job_run(applicationId=args.application_id, jobRunId=job_run_id)["jobRun"])

    result["state"] = _wait(args, f"job run {job_run_id}", lambda: str(job_run()["state"]), JOB_RUN_DONE)
    print(json.dumps(result, indent=2))
    if result["state"] != "SUCCESS":
        details = job_run().get("stateDetails")
        return fail(
            args.deploy_name, f"job run {job_run_id} ended {result['state']}" + (f": {details}" if details else "")
        )
    return EXIT_OK


def _check_release(emr: Any, args: argparse.Namespace, artifacts: Artifacts) -> str:
    """The application's release label, checked against --release-label and the archive's pyspark."""
    label = str(emr.get_application(applicationId=args.application_id)["application"]["releaseLabel"])
    if args.release_label is not None:
        platform(args.release_label)
        if args.release_label != label:
            raise DeployError(
                f"application {args.application_id} runs {label}, not --release-label {args.release_label}"
            )
    check_compatible(artifacts, label)
    return label


# -- schedule ---------------------------------------------------------------------------------


def _schedule_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", default="feature-pipeline-daily", help="the schedule (default group); default: feature-pipeline-daily"
    )
    parser.add_argument(
        "--scheduler-role-arn",
        required=True,
        help="the role Scheduler assumes to start the run (bootstrap/iam/scheduler-role-policy.json)",
    )
    parser.add_argument(
        "--cron",
        default="cron(17 0 * * ? *)",
        help="when, in UTC (default: 'cron(17 0 * * ? *)', 00:17 daily, after the day is complete)",
    )
    parser.add_argument(
        "--floor",
        default="1d",
        help="each run's --as-of is its scheduled time floored to this unit (default 1d: the last UTC midnight)",
    )
    parser.add_argument("--disabled", action="store_true", help="create or leave the schedule disabled")
    _serverless_arguments(parser, as_of=False)
    parser.add_argument("--dry-run", action="store_true", help="print the CreateSchedule request, change nothing")


def _schedule(args: argparse.Namespace) -> int:
    floor_unit(args.floor, f"--floor {args.floor!r}")  # the check the job applies to the unit
    emr = client("emr-serverless", args.region)
    scheduler = client("scheduler", args.region)
    run = _job_run(args, client("s3", args.region), as_of=scheduled_as_of(args.floor))
    label = _check_release(emr, args, run.artifacts)
    job_run = start_job_run(
        run,
        application_id=args.application_id,
        role_arn=args.role_arn,
        log_uri=args.log_uri or default_log_uri(run.artifacts),
        client_token=client_token(args.name),
    )
    request = schedule_request(
        name=args.name,
        expression=args.cron,
        scheduler_role_arn=args.scheduler_role_arn,
        job_run=job_run,
        enabled=not args.disabled,
        description=f"{run.job} --group {run.group} from {run.artifacts.prefix} on {label}",
    )
    if args.dry_run:
        print(json.dumps(request, indent=2))
        return EXIT_OK
    try:
        scheduler.get_schedule(Name=args.name, GroupName=request["GroupName"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        arn, action = scheduler.create_schedule(**request)["ScheduleArn"], "created"
    else:
        arn, action = scheduler.update_schedule(**request)["ScheduleArn"], "updated"
    print(json.dumps({"schedule": args.name, "arn": arn, "action": action, "expression": args.cron}, indent=2))
    return EXIT_OK


# -- shared -----------------------------------------------------------------------------------


def _artifacts_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifacts", required=True, help=f"the artifacts prefix, one per release, e.g. {EXAMPLE_ARTIFACTS}"
    )


def _job_arguments(parser: argparse.ArgumentParser, *, conf: str, as_of: bool = True) -> None:
    _artifacts_argument(parser)
    parser.add_argument("--group", default="all", help="feature group name, or 'all' (default)")
    if as_of:
        parser.add_argument(
            "--as-of", required=True, help=AS_OF_HELP + "; resolved here, so the run gets the exact time"
        )
    parser.add_argument(
        "--conf-name", default=conf, help=f"which uploaded conf file the job runs with (default: {conf})"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable the conf reads, set on the driver, e.g. --env FEATURES_BUCKET=my-features (repeatable; "
        "never a credential)",
    )
    add_set_argument(parser, "a conf override passed to the job, e.g. --set spark.shuffle_partitions=800 (repeatable)")


def _wait_arguments(parser: argparse.ArgumentParser, until: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"poll until {until}; print its state")
    parser.add_argument(
        "--timeout", type=float, default=12 * 3600, help="seconds --wait waits at most (default: 43200)"
    )
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="seconds between polls (default: 30)")
    parser.add_argument("--dry-run", action="store_true", help="print the request, submit nothing")


def _as_of(text: str) -> str:
    return parse_as_of(text).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job_run(args: argparse.Namespace, s3: Any, *, as_of: str) -> JobRun:
    return JobRun(
        artifacts=read_record(s3, S3Uri.parse(args.artifacts)),
        conf=args.conf_name,
        group=args.group,
        as_of=as_of,
        overrides=tuple(args.overrides),
        env=_env(args.env),
    )


def _env(items: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r}: use NAME=VALUE, e.g. --env FEATURES_BUCKET=my-features")
        if name in env:
            raise UsageError(f"--env {name} is given twice")
        env[name] = value
    return env


def _wait(args: argparse.Namespace, what: str, poll: Callable[[], str], terminal: tuple[str, ...]) -> str:
    if args.poll_seconds <= 0 or args.timeout <= 0:
        raise UsageError("--timeout and --poll-seconds must be positive")
    return wait_until(poll, what=what, terminal=terminal, timeout=args.timeout, interval=args.poll_seconds)


_SUBCOMMANDS: list[tuple[str, str, str, str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = [
    (
        "upload",
        "upload dist/ and the conf files to an artifacts prefix (verified)",
        "Upload what `make package` built (as dist/manifest.json lists it), the conf files and the EMR bootstrap "
        "action to one artifacts prefix; read every object back and compare its sha256; write deploy.json last.",
        f"feature-pipeline deploy upload --artifacts {EXAMPLE_ARTIFACTS}",
        _upload_arguments,
        _upload,
    ),
    (
        "emr-step",
        "run a job as an EMR on EC2 step (AddJobFlowSteps)",
        "Add one step to an EMR on EC2 cluster: command-runner.jar running spark-submit --deploy-mode cluster "
        "with the uploaded entry point, conf archive and Delta jars.",
        f"feature-pipeline deploy emr-step --cluster-id j-2AXXXXXXGAPLF --artifacts {EXAMPLE_ARTIFACTS} "
        "--group all --as-of 2026-10-31T00:00:00Z --env FEATURES_BUCKET=my-features --env EVENTS_BUCKET=my-events "
        "--wait",
        _emr_step_arguments,
        _emr_step,
    ),
    (
        "serverless-run",
        "run a job on EMR Serverless (StartJobRun)",
        "Start one EMR Serverless job run from the uploaded venv-pack archive, entry point and conf archive.",
        f"feature-pipeline deploy serverless-run --application-id 00fabcdexample --role-arn "
        f"arn:aws:iam::123456789012:role/feature-pipeline-job --artifacts {EXAMPLE_ARTIFACTS} --group all "
        "--as-of 'floor(now, 1d)' --env FEATURES_BUCKET=my-features --env EVENTS_BUCKET=my-events --wait",
        _serverless_run_arguments,
        _serverless_run,
    ),
    (
        "schedule",
        "create or update the daily EMR Serverless schedule (EventBridge Scheduler)",
        "Create the EventBridge Scheduler schedule, or update it when it exists, that starts the job run daily "
        "with --as-of floor(<scheduled time>, --floor). bootstrap/cloudformation/schedule.yaml declares the same "
        "schedule with its roles.",
        f"feature-pipeline deploy schedule --application-id 00fabcdexample --role-arn "
        f"arn:aws:iam::123456789012:role/feature-pipeline-job --scheduler-role-arn "
        f"arn:aws:iam::123456789012:role/feature-pipeline-scheduler --artifacts {EXAMPLE_ARTIFACTS} "
        "--env FEATURES_BUCKET=my-features --env EVENTS_BUCKET=my-events",
        _schedule_arguments,
        _schedule,
    ),
]

DEPLOY = Command(
    name="deploy",
    help="upload artifacts and run jobs on EMR / EMR Serverless (upload, emr-step, serverless-run, schedule)",
    description="Deploy to EMR and EMR Serverless: `deploy SUBCOMMAND --help` for each. Details: docs/deploy.md.",
    add_arguments=_add_arguments,
    run=_run,
)
