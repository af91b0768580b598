"""Configuration is typed and strict: unknown keys and wrong types fail with the key named."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from features.config import ConfigError, load_conf

ROOT = Path(__file__).resolve().parents[1]


def test_local_conf_loads_typed() -> None:
    conf = load_conf(ROOT / "conf/local.yaml")
    assert conf.env == "local"
    assert conf.spark.shuffle_partitions == 8
    assert conf.sources["clickstream"].format == "json"
    assert conf.sources["clickstream"].partitioning == "dt"
    assert conf.spark.conf["spark.ui.enabled"] == "false"


@pytest.mark.parametrize("env", ["emr", "serverless"])
def test_cluster_confs_load_with_placeholders(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURES_BUCKET", "my-features")
    monkeypatch.setenv("EVENTS_BUCKET", "my-events")
    conf = load_conf(ROOT / f"conf/{env}.yaml")
    assert conf.spark.master is None
    assert conf.offline_store.root == "s3://my-features/offline-store"
    assert conf.sources["clickstream"].path == "s3://my-events/clickstream/events"


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
    assert conf.sources["clickstream"].path == "s3a://b/events"
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


def test_a_misspelt_key_is_named_rather_than_the_one_it_replaced(tmp_path: Path) -> None:
    text = (ROOT / "conf/local.yaml").read_text().replace("  root: out/quarantine", "  rot: out/quarantine")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape("unknown configuration key 'quarantine.rot'; allowed here: root")):
        load_conf(path)


def test_durations_are_parsed_once_into_timedelta() -> None:
    conf = load_conf(ROOT / "conf/local.yaml", ["snapshot.dropout_lookback=6h", "validation.freshness_max_age=30m"])
    assert conf.snapshot.dropout_lookback == timedelta(hours=6)
    assert conf.validation.freshness_max_age == timedelta(minutes=30)
    assert conf.sources["clickstream"].future_tolerance == timedelta(hours=1)


def test_register_is_the_conf_key_of_group_registration() -> None:
    assert load_conf(ROOT / "conf/local.yaml", ["online_store.register=false"]).online_store.register_groups is False
    with pytest.raises(ConfigError, match=re.escape("unknown configuration key 'online_store.register_groups'")):
        load_conf(ROOT / "conf/local.yaml", ["online_store.register_groups=false"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("online_store.max_in_flight=0", "online_store.max_in_flight must be >= 1; got 0"),
        ("spark.shuffle_partitions=0", "spark.shuffle_partitions must be >= 1; got 0"),
        ("validation.drift.bins=5000", "validation.drift.bins must be <= 1000; got 5000"),
        ("online_store.max_attempts=true", "online_store.max_attempts must be a whole number; got True"),
        ("online_store.base_backoff_ms=soon", "online_store.base_backoff_ms must be a number; got 'soon'"),
        ("snapshot.dropout_lookback=7x", "snapshot.dropout_lookback: must be a duration like 1d, 6h or 30m"),
        ("validation.policy=lenient", "validation.policy must be one of strict, warn; got 'lenient'"),
        ("validation.group_policies.customer_profile=lenient", "must be one of strict, warn; got 'lenient'"),
        (
            "validation.group_policies.customer_profil=warn",
            "validation.group_policies.customer_profil: no feature group named 'customer_profil'; "
            "did you mean 'customer_profile'?",
        ),
        (
            "sources.clickstrem.path=/x",
            "sources.clickstrem: no source named 'clickstrem'; did you mean 'clickstream'?",
        ),
        ("env=[unclosed", "--set env is not valid YAML at line 1"),
    ],
)
def test_values_are_checked_at_load(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_conf(ROOT / "conf/local.yaml", [override])


def test_unreadable_and_binary_conf_files_are_one_line_errors(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_conf(binary)
    broken = tmp_path / "broken.yaml"
    broken.write_text("env: [x\nspark: 1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml is not valid YAML at line 2, column 6: expected ',' or '\]'"):
        load_conf(broken)
