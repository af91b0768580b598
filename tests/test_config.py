"""Configuration is typed and strict: unknown keys and wrong types fail with the key named."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

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
            "sources.clickstream.path=s3a://events-bucket/events",
            "spark.conf.spark.executor.memory=4g",
            "spark.master=null",
        ],
    )
    assert conf.offline_store.root == "/tmp/store"
    assert conf.spark.shuffle_partitions == 3
    assert conf.sources["clickstream"].path == "s3a://events-bucket/events"
    assert conf.spark.conf["spark.executor.memory"] == "4g"
    assert conf.spark.master is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "offline_store.rot=/x",
            "unknown configuration key 'offline_store.rot'; did you mean 'root'? allowed here: root, format",
        ),
        ("sourcez.x.path=/x", "unknown configuration key 'sourcez'"),
        ("spark.shuffle_partitions=many", "spark.shuffle_partitions: 'many' is not a whole number; use a whole"),
        ("sources.orders.format=csv", "sources.orders.format: 'csv' is not a choice; use one of json, parquet"),
        ("offline_store.root", "must look like key.path=value"),
        ("sources.orders.path=", "sources.orders.path: is empty and there is no jdbc block; set path (files) or jdbc"),
        (
            "sources.orders.jdbc={url: 'jdbc:postgresql://h/db', table: orders, user: u, password_env: P}",
            "sources.orders.jdbc: is set together with path; keep one of path (files) or jdbc (a live table)",
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
    with pytest.raises(
        ConfigError, match=re.escape("unknown configuration key 'quarantine.rot'; did you mean 'root'?")
    ):
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
        ("online_store.max_in_flight=0", "online_store.max_in_flight: 0 is out of range; use a whole number from 1"),
        ("spark.shuffle_partitions=0", "spark.shuffle_partitions: 0 is out of range; use a whole number >= 1"),
        (
            "validation.drift.bins=5000",
            "validation.drift.bins: 5000 is out of range; use a whole number from 2 to 1000",
        ),
        ("online_store.max_attempts=true", "online_store.max_attempts: True is not a whole number"),
        ("online_store.base_backoff_ms=soon", "online_store.base_backoff_ms: 'soon' is not a number"),
        (
            "snapshot.dropout_lookback=7x",
            "snapshot.dropout_lookback: '7x' is not a duration; use a whole number and one of m, h, d, e.g. 1d",
        ),
        ("validation.policy=lenient", "validation.policy: 'lenient' is not a choice; use one of strict, warn"),
        ("validation.group_policies.customer_profile=lenient", "'lenient' is not a choice; use one of strict, warn"),
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


def test_a_misspelt_source_block_is_named_before_what_it_lacks() -> None:
    """The block of a typo has only the key that was set: the typo is the cause, not the missing path."""
    with pytest.raises(ConfigError, match=re.escape("sources.clickstrem: no source named 'clickstrem'")):
        load_conf(ROOT / "conf/local.yaml", ["sources.clickstrem.format=json"])


def test_a_jdbc_source_loads_with_its_checks_passed() -> None:
    conf = load_conf(
        ROOT / "conf/local.yaml",
        [
            "sources.orders.path=",
            "sources.orders.jdbc={url: 'jdbc:mysql://db:3306/shop?permitMysqlScheme', table: shop.orders, user: app, "
            "password_secret_id: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds/shop-AbCdEf', "
            "driver: org.mariadb.jdbc.Driver, partition_column: order_time, num_partitions: 8}",
        ],
    )
    jdbc = conf.sources["orders"].jdbc
    assert jdbc is not None and jdbc.num_partitions == 8 and jdbc.partition_column == "order_time"


def test_shapes_that_are_accepted() -> None:
    """The path, URL, region and ARN checks accept every spelling the docs and conf files use."""
    conf = load_conf(
        ROOT / "conf/local.yaml",
        [
            "sources.clickstream.path=s3://my-events/clickstream/events",
            "sources.orders.path=file:///data/rds/orders",
            "sources.customers.path=hdfs:///rds/customers",
            "offline_store.root=s3a://my-features/offline-store",
            "online_store.endpoint_url=http://127.0.0.1:4566",
            "online_store.region=us-gov-west-1",
            "online_store.dead_letter_root=s3://my-features/dead-letters",
            "online_store.offline_s3_uri=s3://my-features/sagemaker",
            "online_store.role_arn=arn:aws:iam::123456789012:role/feature-store",
            "spark.master=spark://10.0.0.1:7077",
            "spark.conf.spark.sql.session.timeZone=UTC",
        ],
    )
    assert conf.online_store.region == "us-gov-west-1"
    assert conf.spark.conf["spark.sql.session.timeZone"] == "UTC"


def test_forced_spark_settings_are_those_the_session_forces() -> None:
    from features.config import FORCED_SPARK_SETTINGS
    from features.session import REQUIRED_SETTINGS

    assert FORCED_SPARK_SETTINGS == REQUIRED_SETTINGS


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        nested = field.annotation
        nested = next((a for a in get_args(nested) if isinstance(a, type) and issubclass(a, BaseModel)), nested)
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            keys += _leaf_keys(nested, f"{key}." if key != "sources" else "sources.<source>.")
        else:
            keys.append(key)
    return keys


def test_every_key_is_in_the_configuration_docs() -> None:
    from features.config import PipelineConf

    docs = (ROOT / "docs/configuration.md").read_text()
    keys = _leaf_keys(PipelineConf)
    missing = [key for key in keys if f"`{key}`" not in docs and f"`{key.rpartition('.')[0]}.*`" not in docs]
    assert missing == []
