"""The ``catalog.glue`` section: defaults, overrides, and the one rule between its keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.config import ConfigError, load_conf

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalog_is_off_by_default() -> None:
    glue = load_conf(ROOT / "conf/local.yaml").catalog.glue
    assert (glue.enabled, glue.database, glue.table_prefix, glue.region, glue.endpoint_url) == (
        False,
        None,
        "",
        "us-east-1",
        None,
    )


def test_overrides_set_every_key() -> None:
    glue = load_conf(
        ROOT / "conf/local.yaml",
        [
            "catalog.glue.enabled=true",
            "catalog.glue.database=feature_store",
            "catalog.glue.table_prefix=fs_",
            "catalog.glue.region=eu-central-1",
            "catalog.glue.endpoint_url=http://127.0.0.1:5000",
        ],
    ).catalog.glue
    assert (glue.enabled, glue.database, glue.table_prefix, glue.region, glue.endpoint_url) == (
        True,
        "feature_store",
        "fs_",
        "eu-central-1",
        "http://127.0.0.1:5000",
    )


def test_enabled_without_a_database_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_conf(ROOT / "conf/local.yaml", ["catalog.glue.enabled=true"])
    assert str(caught.value) == (
        "catalog.glue.database: is required when catalog.glue.enabled is true; set the Glue database, e.g. feature_store"
    )
