"""One run of a job as every request builder sees it: entry point, arguments, driver environment.

The arguments are the job's own (``--conf conf/emr.yaml --group all --as-of T --set k=v``), the
same as locally. What the conf reads from the environment (``${FEATURES_BUCKET}``) is set on the
driver by the platform's own property; credentials never are: the job's IAM role provides them
(docs/deploy.md#how-credentials-reach-the-job).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from features.deploy.artifacts import CONF_ARCHIVE, CONF_DIR, Artifacts, DeployError
from features.session import DELTA_SETTINGS

__all__ = ["ARCHIVE_PYTHON", "DELTA_JARS", "DELTA_SETTINGS", "JobRun", "conf_flags"]

#: Where EMR (on EC2 and Serverless) keeps Delta Lake's jars on every node (DESIGN.md); the
#: third holds the DynamoDB-backed S3 log store several writers need (docs/offline-store.md#delta).
DELTA_JARS = (
    "/usr/share/aws/delta/lib/delta-spark.jar",
    "/usr/share/aws/delta/lib/delta-storage.jar",
    "/usr/share/aws/delta/lib/delta-storage-s3-dynamodb.jar",
)
#: The interpreter inside the venv-pack archive once unpacked as ``./environment``.
ARCHIVE_PYTHON = "./environment/bin/python"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Variables that would carry credentials; the job's role provides them instead.
_CREDENTIALS = re.compile(r"^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|SECURITY_TOKEN)$|PASSWORD$", re.I)


@dataclass(frozen=True, kw_only=True)
class JobRun:
    """The job to run from one artifacts prefix, checked against what the prefix holds."""

    artifacts: Artifacts
    conf: str
    group: str
    #: Passed to the job verbatim: an exact time, or the schedule's ``floor(<...>, 1d)``.
    as_of: str
    overrides: tuple[str, ...] = ()
    env: Mapping[str, str]
    job: str = "build_features"

    def __post_init__(self) -> None:
        conf_path = self.artifacts.conf_path(self.conf)
        for name, value in self.env.items():
            if not _ENV_NAME.match(name):
                raise DeployError(f"--env {name!r}: not a variable name; use letters, digits and _")
            if _CREDENTIALS.search(name):
                raise DeployError(
                    f"--env {name}: credentials never travel in a job's arguments; the job's IAM role provides "
                    "them (docs/deploy.md#how-credentials-reach-the-job)"
                )
            if not value or re.search(r"[\s,]", value):
                raise DeployError(f"--env {name}: the value must be non-empty, without spaces or commas")
        missing = [name for name in self.artifacts.conf_env[self.conf] if name not in self.env]
        if missing:
            hint = " ".join(f"--env {name}=..." for name in missing)
            raise DeployError(f"{conf_path} reads ${{{missing[0]}}} from the driver's environment: pass {hint}")
        for item in self.overrides:
            if "=" not in item:
                raise DeployError(f"--set {item!r}: use KEY=VALUE, e.g. --set spark.shuffle_partitions=800")

    @property
    def entry_point(self) -> str:
        return self.artifacts.entry_point(self.job)

    @property
    def conf_archive(self) -> str:
        """``s3://.../conf.tar.gz#conf``: unpacked in the driver's working directory."""
        return f"{self.artifacts.uri(CONF_ARCHIVE, 'the conf archive')}#{CONF_DIR}"

    def arguments(self) -> list[str]:
        """The job's own arguments, as ``spark-submit jobs/<job>.py`` takes them locally."""
        args = ["--conf", self.artifacts.conf_path(self.conf), "--group", self.group, "--as-of", self.as_of]
        for item in self.overrides:
            args += ["--set", item]
        return args

    def describe(self) -> str:
        """``feature-pipeline build_features all 2026-10-31T00:00:00Z``: a step or job run name."""
        return f"feature-pipeline {self.job} {self.group} {self.as_of}"


def conf_flags(settings: Sequence[tuple[str, str]]) -> list[str]:
    """``--conf key=value`` pairs for spark-submit, in the given order."""
    flags: list[str] = []
    for key, value in settings:
        flags += ["--conf", f"{key}={value}"]
    return flags
