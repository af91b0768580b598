"""EMR on EC2: the AddJobFlowSteps step that runs a job with ``spark-submit --deploy-mode cluster``.

The driver runs in a YARN container, so everything it reads travels with the submission: the
conf files as ``--archives conf.tar.gz#conf`` (unpacked in its working directory; ``--files``
would do on YARN but not on EMR Serverless, and one mechanism serves both), the Python code by
one of three routes (``PYTHON_MODES``), Delta from the jars every EMR node has. Example:
``bootstrap/steps/build_features.json``; choosing the route: docs/deploy.md#emr-on-ec2.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from features.deploy.artifacts import CONSTRAINTS, ENVIRONMENT, PY_FILES, Artifacts
from features.deploy.job import ARCHIVE_PYTHON, DELTA_JARS, DELTA_SETTINGS, JobRun, conf_flags

#: ``bootstrap``: the wheel, installed on every node by bootstrap/emr-bootstrap.sh into
#: ``--python``; ``py-files``: ``--py-files features.zip`` on the nodes' ``--python``;
#: ``archive``: the venv-pack archive, as on EMR Serverless (no bootstrap action, no PyPI access).
PythonMode = Literal["bootstrap", "py-files", "archive"]
PYTHON_MODES: tuple[str, ...] = get_args(PythonMode)
#: The interpreter emr-spark-8.0.0 ships and bootstrap/emr-bootstrap.sh installs into.
CLUSTER_PYTHON = "/usr/bin/python3.11"
ACTIONS_ON_FAILURE = ("CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER")


def emr_step(
    run: JobRun,
    *,
    python: PythonMode = "bootstrap",
    interpreter: str = CLUSTER_PYTHON,
    action_on_failure: str = "CONTINUE",
) -> dict[str, Any]:
    """One ``StepConfig`` of AddJobFlowSteps (``command-runner.jar`` running spark-submit)."""
    archives = [run.conf_archive]
    if python == "archive":
        archives.append(f"{run.artifacts.uri(ENVIRONMENT, 'the venv-pack archive')}#environment")
        interpreter = ARCHIVE_PYTHON
    args = ["spark-submit", "--deploy-mode", "cluster", "--archives", ",".join(archives)]
    if python == "py-files":
        args += ["--py-files", run.artifacts.uri(PY_FILES, "the --py-files zip")]
    args += ["--jars", ",".join(DELTA_JARS)]
    settings = [*DELTA_SETTINGS.items()]
    settings += [
        ("spark.yarn.appMasterEnv.PYSPARK_PYTHON", interpreter),
        ("spark.executorEnv.PYSPARK_PYTHON", interpreter),
    ]
    settings += [(f"spark.yarn.appMasterEnv.{name}", value) for name, value in sorted(run.env.items())]
    args += conf_flags(settings)
    args += [run.entry_point, *run.arguments()]
    return {
        "Name": run.describe(),
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def bootstrap_arguments(artifacts: Artifacts) -> list[str]:
    """The arguments of bootstrap/emr-bootstrap.sh for this prefix: pins, checksum, the wheel."""
    wheel = artifacts.wheel
    if wheel is None:
        return []
    args = ["--constraints", artifacts.uri(CONSTRAINTS, "the pins")] if CONSTRAINTS in artifacts.objects else []
    return [*args, "--sha256", artifacts.objects[wheel], artifacts.uri(wheel, "the wheel")]
