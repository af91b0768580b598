"""The job role's policy allows the Glue calls of ``catalog.glue`` on one database's tables, and only then."""

from __future__ import annotations

from pathlib import Path

import yaml

from features.deploy.iam import Location, Where, conf_locations, job_role_policy

ROOT = Path(__file__).resolve().parents[2]


def policy_for(tmp_path: Path, catalog: dict[str, object] | None) -> list[dict[str, object]]:
    raw = yaml.safe_load((ROOT / "conf/serverless.yaml").read_text())
    if catalog is not None:
        raw["catalog"] = catalog
    path = tmp_path / "serverless.yaml"
    path.write_text(yaml.safe_dump(raw))
    policy = job_role_policy(
        where=Where(region="eu-west-1", account="123456789012"),
        conf=conf_locations(path),
        artifacts=Location("artifacts", "feature-pipeline"),
        logs=Location("artifacts", "logs"),
        groups=["customer_orders"],
    )
    return list(policy["Statement"])


def test_an_enabled_catalog_adds_one_statement_on_its_tables(tmp_path: Path) -> None:
    statements = policy_for(
        tmp_path, {"glue": {"enabled": True, "database": "${GLUE_DATABASE}", "table_prefix": "fs_"}}
    )
    glue = [s for s in statements if s["Sid"] == "GlueCatalogTables"]
    assert glue == [
        {
            "Sid": "GlueCatalogTables",
            "Effect": "Allow",
            "Action": [
                "glue:BatchCreatePartition",
                "glue:CreateTable",
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:UpdateTable",
            ],
            "Resource": [
                "arn:aws:glue:eu-west-1:123456789012:catalog",
                "arn:aws:glue:eu-west-1:123456789012:database/${GlueDatabase}",
                "arn:aws:glue:eu-west-1:123456789012:table/${GlueDatabase}/fs_*",
            ],
        }
    ]


def test_without_the_catalog_the_policy_names_no_glue_action(tmp_path: Path) -> None:
    for catalog in (None, {"glue": {"enabled": False, "database": "feature_store"}}):
        statements = policy_for(tmp_path, catalog)
        assert not [a for s in statements for a in s["Action"] if str(a).startswith("glue:")]  # type: ignore[attr-defined]
