"""Configuration is typed and strict: unknown keys and wrong types fail with the key named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from features.config import ConfigError, load_conf

ROOT = Path(__file__).resolve().parents[1]


def test_local_conf_loads_typed() -> None:
    conf = load_conf(ROOT / "conf/local.yaml")
    assert conf.env == "local"
    assert conf.spark.shuffle_partitions == 8
    assert conf.sources.clickstream.format == "json"
    assert conf.sources.clickstream.partitioning == "dt"
    assert conf.spark.conf["spark.ui.enabled"] == "false"


@pytest.mark.parametrize("env", ["emr", "serverless"])
def test_cluster_confs_load_with_placeholders(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURES_BUCKET", "my-features")
    monkeypatch.setenv("EVENTS_BUCKET", "my-events")
    conf = load_conf(ROOT / f"conf/{env}.yaml")
    assert conf.spark.master is None
    assert conf.offline_store.root == "s3://my-features/offline-store"
    assert conf.sources.clickstream.path == "s3://my-events/clickstream/events"


def test_unset_placeholder_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEATURES_BUCKET", raising=False)
    monkeypatch.setenv("EVENTS_BUCKET", "e")
    with pytest.raises(ConfigError, match="environment variable FEATURES_BUCKET is not set"):
        load_conf(ROOT / "conf/emr.yaml")


def test_overrides_apply_with_types() -> None:
    conf = load_conf(
        ROOT / "conf/local.yaml",
        [
            "offline_store.root=/tmp/store",
            "spark.shuffle_partitions=3",
            "sources.clickstream.path=s3a://b/events",
            "spark.conf.spark.executor.memory=4g",
            "spark.master=null",
        ],
    )
    assert conf.offline_store.root == "/tmp/store"
    assert conf.spark.shuffle_partitions == 3
    assert conf.sources.clickstream.path == "s3a://b/events"
    assert conf.spark.conf["spark.executor.memory"] == "4g"
    assert conf.spark.master is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("offline_store.rot=/x", "unknown configuration key 'offline_store.rot'; allowed here: root, format"),
        ("sourcez.x.path=/x", "unknown configuration key 'sourcez'"),
        ("spark.shuffle_partitions=many", "spark.shuffle_partitions must be a whole number; got 'many'"),
        ("sources.orders.format=csv", "sources.orders.format must be one of json, parquet; got 'csv'"),
        ("offline_store.root", "must look like key.path=value"),
        ("sources.orders.path=", "sources.orders: a source needs exactly one of path (files) or jdbc"),
        (
            "sources.orders.jdbc={url: 'jdbc:postgresql://h/db', table: orders, user: u}",
            "sources.orders: a source needs exactly one of path",
        ),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_conf(ROOT / "conf/local.yaml", [override])


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    text = (ROOT / "conf/local.yaml").read_text().replace("quarantine:\n", "quarantine:\n  rot: x\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape("unknown configuration key 'quarantine.rot'")):
        load_conf(path)


def test_missing_key_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("env: x\n")
    with pytest.raises(ConfigError, match="missing configuration key 'spark'"):
        load_conf(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_conf(tmp_path / "nope.yaml")
