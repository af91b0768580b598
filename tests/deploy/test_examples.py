"""The files under bootstrap/ are what the code builds: examples, IAM documents, the template.

Each checked-in JSON example is rendered again from the builders; the CloudFormation template's
schedule and roles are resolved with placeholder parameters and compared with what
``deploy schedule`` and ``features.deploy.iam`` build; every policy is least-privilege-checked;
the template passes cfn-lint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import cfn_yaml

from features.deploy.iam import Where, job_role_trust, scheduler_role_policy, scheduler_role_trust
from features.deploy.job import JobRun
from features.deploy.schedule import client_token, schedule_request, scheduled_as_of
from features.deploy.serverless import default_log_uri, start_job_run
from tests.deploy.examples import BOOTSTRAP_DIR, example_artifacts, example_job_role_policy, render, text

TEMPLATE = BOOTSTRAP_DIR / "cloudformation" / "schedule.yaml"
#: CloudFormation's pseudo parameters as the resolved template spells them.
CFN_WHERE = Where(partition="${AWS::Partition}", region="${AWS::Region}", account="${AWS::AccountId}")
#: Actions a statement may grant on "*" because the service has no narrower resource: none so far.
#: An entry here needs its reason in docs/deploy.md#iam.
STAR_RESOURCE_EXCEPTIONS: frozenset[str] = frozenset()


@pytest.mark.parametrize("path", sorted(render()), ids=lambda p: str(p.relative_to(BOOTSTRAP_DIR)))
def test_checked_in_example_is_what_the_builders_make(path: Path) -> None:
    expected = text(render()[path])
    assert path.exists(), f"{path} is missing: run .venv/bin/python -m tests.deploy.examples"
    assert path.read_text(encoding="utf-8") == expected, (
        f"{path} is stale: run .venv/bin/python -m tests.deploy.examples"
    )


def _template() -> dict[str, Any]:
    return dict(cfn_yaml.loads(TEMPLATE.read_text(encoding="utf-8")))


def _resolve(node: Any) -> Any:
    """Intrinsic functions -> the ``${...}`` text they stand for; ``Fn::If`` -> its true branch."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            return node["Fn::Sub"]
        if set(node) == {"Ref"}:
            return "${" + node["Ref"] + "}"
        if set(node) == {"Fn::GetAtt"}:
            return "${" + ".".join(node["Fn::GetAtt"]) + "}"
        if set(node) == {"Fn::If"}:
            return _resolve(node["Fn::If"][1])
        return {key: _resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item) for item in node]
    return node


def _normalized(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements by Sid with their lists sorted: order carries no meaning in IAM."""

    def sort(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: sort(v) for k, v in value.items()}
        if isinstance(value, list):
            return sorted((sort(v) for v in value), key=json.dumps)
        return value

    return sorted((sort(s) for s in policy["Statement"]), key=lambda s: s.get("Sid", ""))


def _role(name: str) -> dict[str, Any]:
    return dict(_resolve(_template()["Resources"][name]["Properties"]))


def test_template_job_role_is_the_built_policy() -> None:
    role = _role("JobRole")
    (policy,) = role["Policies"]
    assert _normalized(policy["PolicyDocument"]) == _normalized(example_job_role_policy(CFN_WHERE))
    assert role["AssumeRolePolicyDocument"] == job_role_trust(where=CFN_WHERE, application_id="${ApplicationId}")


def test_template_scheduler_role_is_the_built_policy() -> None:
    role = _role("SchedulerRole")
    (policy,) = role["Policies"]
    expected = scheduler_role_policy(where=CFN_WHERE, application_id="${ApplicationId}", job_role_arn="${JobRole.Arn}")
    assert _normalized(policy["PolicyDocument"]) == _normalized(expected)
    assert role["AssumeRolePolicyDocument"] == scheduler_role_trust(where=CFN_WHERE)


def test_template_schedule_is_what_deploy_schedule_creates() -> None:
    schedule = _role("Schedule")
    artifacts = example_artifacts("${ArtifactsBucket}", "${ArtifactsPrefix}")
    run = JobRun(
        artifacts=artifacts,
        conf="serverless.yaml",
        group="${Group}",
        as_of=scheduled_as_of("1d"),
        env={"FEATURES_BUCKET": "${FeaturesBucket}", "EVENTS_BUCKET": "${EventsBucket}"},
    )
    job_run = start_job_run(
        run,
        application_id="${ApplicationId}",
        role_arn="${JobRole.Arn}",
        log_uri=default_log_uri(artifacts),
        client_token=client_token("${ScheduleName}"),
    )
    expected = schedule_request(
        name="feature-pipeline-daily",
        expression="cron(17 0 * * ? *)",
        scheduler_role_arn="${SchedulerRole.Arn}",
        job_run=job_run,
    )
    assert json.loads(schedule["Target"].pop("Input")) == json.loads(expected["Target"].pop("Input"))
    assert schedule["Target"] == expected["Target"]
    for key in ("ScheduleExpressionTimezone", "FlexibleTimeWindow", "State"):
        assert schedule[key] == expected[key], key
    parameters = _template()["Parameters"]
    assert parameters["ScheduleExpression"]["Default"] == expected["ScheduleExpression"]
    assert parameters["ScheduleName"]["MaxLength"] == 43


def _policies() -> dict[str, dict[str, Any]]:
    documents = {
        str(path.relative_to(BOOTSTRAP_DIR)): content
        for path, content in render().items()
        if path.parent.name == "iam" and "trust" not in path.name
    }
    for name in ("JobRole", "SchedulerRole"):
        for policy in _role(name)["Policies"]:
            documents[f"schedule.yaml {name}"] = policy["PolicyDocument"]
    return documents


@pytest.mark.parametrize("name", sorted(_policies()))
def test_policy_grants_no_star_action_or_resource(name: str) -> None:
    for statement in _policies()[name]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        assert not [a for a in actions if "*" in a], f"{name} {statement['Sid']}: wildcard action"
        if "*" in resources:
            assert set(actions) <= STAR_RESOURCE_EXCEPTIONS, f"{name} {statement['Sid']}: '*' resource"


def test_job_role_pushes_to_the_project_groups_only() -> None:
    (statement,) = [
        s for s in _policies()["iam/job-role-policy.json"]["Statement"] if s["Sid"] == "FeatureStoreRecords"
    ]
    assert statement["Resource"] == [
        "arn:aws:sagemaker:${Region}:${Account}:feature-group/customer_activity",
        "arn:aws:sagemaker:${Region}:${Account}:feature-group/customer_orders",
        "arn:aws:sagemaker:${Region}:${Account}:feature-group/customer_profile",
    ]
    (secret,) = [s for s in _policies()["iam/job-role-policy.json"]["Statement"] if s["Sid"] == "JdbcSecret"]
    assert secret["Action"] == ["secretsmanager:GetSecretValue"]
    assert secret["Resource"] == ["arn:aws:secretsmanager:${Region}:${Account}:secret:${JdbcSecretName}-??????"]


def test_every_template_passes_cfn_lint() -> None:
    templates = sorted((BOOTSTRAP_DIR / "cloudformation").glob("*.yaml"))
    assert templates == [TEMPLATE]
    for template in templates:
        matches = lint(template.read_text(encoding="utf-8"), config=ManualArgs(regions=["us-east-1"]))
        assert not matches, f"{template}: " + "; ".join(str(m) for m in matches)
