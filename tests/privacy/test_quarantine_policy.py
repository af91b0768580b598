"""Quarantine files keep raw rows for replay, so the job role writes them under a statement of their
own (docs/privacy.md): an account can audit that prefix and deny it to every other reader."""

from __future__ import annotations

from pathlib import Path

from features.deploy.iam import Location, Where, conf_locations, job_role_policy

ROOT = Path(__file__).resolve().parents[2]


def test_the_quarantine_prefix_has_its_own_statement() -> None:
    conf = conf_locations(ROOT / "conf/serverless.yaml")
    policy = job_role_policy(
        where=Where(),
        conf=conf,
        artifacts=Location("artifacts", "feature-pipeline"),
        logs=Location("logs", "emr"),
        groups=["customer_profile"],
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    resources = statements["WriteQuarantine"]["Resource"]
    assert (resources if isinstance(resources, list) else [resources]) == [
        "arn:aws:s3:::${FeaturesBucket}/quarantine/*"
    ]
    other = [r for sid, s in statements.items() if sid != "WriteQuarantine" for r in s.get("Resource", [])]
    assert not [r for r in other if "/quarantine/" in r]
