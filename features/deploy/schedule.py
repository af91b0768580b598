"""A daily EMR Serverless job run: the EventBridge Scheduler schedule and its target's input.

The target is Scheduler's universal target for StartJobRun; its input is the same request
``deploy serverless-run`` sends, except for two values Scheduler fills in per invocation:

- ``--as-of floor(<aws.scheduler.scheduled-time>, 1d)``: the job snapshots the last complete UTC
  day of the time the run was *scheduled* for, so a late or retried start computes the same T;
- ``clientToken = <name>-<aws.scheduler.scheduled-time>``: a retried invocation cannot start a
  second run for the same T.

``bootstrap/cloudformation/schedule.yaml`` declares the same schedule (a test holds the two
equal); docs/deploy.md#the-daily-schedule.
"""

from __future__ import annotations

import json
import re
from typing import Any

from features.deploy.artifacts import DeployError

#: EventBridge Scheduler's universal target for EMR Serverless StartJobRun.
START_JOB_RUN_TARGET = "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
#: The fire time Scheduler substitutes is 20 characters (``2026-10-31T00:17:00Z``); the client
#: token may be at most 64, so the schedule's name may take the rest.
MAX_NAME = 64 - len("-2026-10-31T00:17:00Z")
_NAME = re.compile(r"^[0-9a-zA-Z_.-]+$")
_EXPRESSION = re.compile(r"^(cron|rate)\(.+\)$")


def scheduled_as_of(floor: str) -> str:
    """The ``--as-of`` a scheduled run passes: its scheduled time floored to ``floor`` (e.g. 1d)."""
    return f"floor({SCHEDULED_TIME}, {floor})"


def client_token(name: str) -> str:
    return f"{name}-{SCHEDULED_TIME}"


def schedule_request(
    *,
    name: str,
    expression: str,
    scheduler_role_arn: str,
    job_run: dict[str, Any],
    group_name: str = "default",
    enabled: bool = True,
    description: str = "",
) -> dict[str, Any]:
    """CreateSchedule / UpdateSchedule parameters; ``job_run`` is StartJobRun's (see module doc)."""
    if not _NAME.match(name) or len(name) > MAX_NAME:
        raise DeployError(
            f"--name {name!r}: use at most {MAX_NAME} letters, digits, '.', '_' or '-' "
            "(it prefixes each run's idempotency token)"
        )
    if not _EXPRESSION.match(expression):
        raise DeployError(f"--cron {expression!r}: use a Scheduler expression, e.g. 'cron(17 0 * * ? *)' (00:17 daily)")
    return {
        "Name": name,
        "GroupName": group_name,
        "Description": description,
        "ScheduleExpression": expression,
        # The floor of --as-of counts from UTC midnight: the expression is in UTC too.
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED" if enabled else "DISABLED",
        "Target": {
            "Arn": START_JOB_RUN_TARGET,
            "RoleArn": scheduler_role_arn,
            "Input": json.dumps(job_run, sort_keys=True),
        },
    }
