"""Issue 10, items 1 and 2: a bad conf file or ``--set`` value stops the command before Spark starts.

Promise: exit code 2 and exactly one stderr line, ``error: <key>: <what is wrong>; <the fix>``
(or ``error: unknown configuration key '<key>'; ...``). The in-process cases run the real
``feature-pipeline build`` entry point with ``run_build`` replaced by a tripwire, so a value the
conf accepts fails the test instead of starting Spark; a handful run ``build-features`` as a
subprocess with a ``java`` that only leaves a mark, to show that no JVM is launched at all.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import features.cli.build
from features.cli import main
from features.config import ConfigError, load_conf

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf/local.yaml"
AS_OF = "2026-10-31T00:00:00Z"
BUILD_FEATURES = Path(sys.executable).parent / "build-features"

#: A live JDBC source in place of the orders export; the JDBC cases add one bad value to it.
JDBC = [
    "sources.orders.path=",
    "sources.orders.jdbc={url: 'jdbc:postgresql://db:5432/shop', table: public.orders, user: app, "
    "password_env: ORDERS_DB_PASSWORD}",
]


@pytest.fixture(autouse=True)
def tripwire(monkeypatch: pytest.MonkeyPatch) -> None:
    """A conf that gets past the checks reaches run_build, which would start Spark: fail instead."""

    def started(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("the configuration was accepted and the run started")

    monkeypatch.setattr(features.cli.build, "run_build", started)


def run_build(capsys: pytest.CaptureFixture[str], overrides: Sequence[str], conf: Path | str = CONF) -> str:
    """``feature-pipeline build`` with ``overrides``; asserts exit 2 and one stderr line, returns it."""
    argv = ["build", "--conf", str(conf), "--group", "all", "--as-of", AS_OF]
    for item in overrides:
        argv += ["--set", item]
    code = main(argv)
    err = capsys.readouterr().err.splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


# (overrides, the key the message must name, how the line must start after "error: ").
CASES: list[tuple[list[str], str, str]] = [
    # env
    (["env={name: local}"], "env", "env: {'name': 'local'} is not text;"),
    (["env="], "env", "env: is empty; set a value"),
    (["enviroment=local"], "enviroment", "unknown configuration key 'enviroment'; allowed here: env, spark,"),
    # spark
    (["spark=local"], "spark", "spark: 'local' is not a section;"),
    (["spark.shuffle_partitions=many"], "spark.shuffle_partitions", "spark.shuffle_partitions: 'many' is not a whole"),
    (["spark.shuffle_partitions=2.5"], "spark.shuffle_partitions", "spark.shuffle_partitions: 2.5 is not a whole"),
    (
        ["spark.shuffle_partitions=0"],
        "spark.shuffle_partitions",
        "spark.shuffle_partitions: 0 is out of range; use a whole number >= 1",
    ),
    (["spark.master=lokal[2]"], "spark.master", "spark.master: 'lokal[2]' is not a Spark master URL; use local[N]"),
    (["spark.master=local[0]"], "spark.master", "spark.master: 'local[0]' is not a Spark master URL"),
    (["spark.app_name="], "spark.app_name", "spark.app_name: is empty; set a value"),
    (
        ["spark.shufle_partitions=8"],
        "spark.shufle_partitions",
        "unknown configuration key 'spark.shufle_partitions'; did you mean 'shuffle_partitions'?",
    ),
    # spark.conf (a map of Spark properties)
    (["spark.conf=[a, b]"], "spark.conf", "spark.conf: ['a', 'b'] is not a mapping;"),
    (
        ["spark.conf.fs.s3a.endpoint=http://127.0.0.1:9000"],
        "spark.conf.fs.s3a.endpoint",
        "spark.conf.fs.s3a.endpoint: Spark ignores properties that do not start with spark.; "
        "Hadoop settings go as spark.hadoop.fs.s3a.endpoint",
    ),
    (
        ["spark.conf.spark.sql.shuffle.partitions=0"],
        "spark.conf.spark.sql.shuffle.partitions",
        "spark.conf.spark.sql.shuffle.partitions: has its own key; set spark.shuffle_partitions instead",
    ),
    (
        ["spark.conf.spark.sql.session.timeZone=Europe/Paris"],
        "spark.conf.spark.sql.session.timeZone",
        "spark.conf.spark.sql.session.timeZone: is always UTC",
    ),
    (
        ["spark.conf.spark.sql.ansi.enabled=false"],
        "spark.conf.spark.sql.ansi.enabled",
        "spark.conf.spark.sql.ansi.enabled: is always true",
    ),
    (
        ["spark.conf.spark.executor.memory="],
        "spark.conf.spark.executor.memory",
        "spark.conf.spark.executor.memory: is empty;",
    ),
    # sources (names must be declared sources)
    (["sources=[clickstream]"], "sources", "sources: ['clickstream'] is not a mapping;"),
    (
        ["sources.clickstrem.path=/data/events"],
        "sources.clickstrem",
        "sources.clickstrem: no source named 'clickstrem'; did you mean 'clickstream'? "
        "defined: clickstream, customers, orders",
    ),
    (
        ["sources.clickstrem.format=json"],  # the typo, not the path the new block lacks
        "sources.clickstrem",
        "sources.clickstrem: no source named 'clickstrem'; did you mean 'clickstream'?",
    ),
    # sources.<source>
    (["sources.orders=parquet"], "sources.orders", "sources.orders: 'parquet' is not a section;"),
    (
        ["sources.clickstream.lateness_days=one"],
        "sources.clickstream.lateness_days",
        "sources.clickstream.lateness_days: 'one' is not a whole number; use a whole number from 0 to 366",
    ),
    (
        ["sources.clickstream.lateness_days=-1"],
        "sources.clickstream.lateness_days",
        "sources.clickstream.lateness_days: -1 is out of range; use a whole number from 0 to 366",
    ),
    (
        ["sources.clickstream.lateness_days=1000"],
        "sources.clickstream.lateness_days",
        "sources.clickstream.lateness_days: 1000 is out of range;",
    ),
    (
        ["sources.clickstream.future_tolerance=1w"],
        "sources.clickstream.future_tolerance",
        "sources.clickstream.future_tolerance: '1w' is not a duration; use a whole number and one of m, h, d",
    ),
    (
        ["sources.clickstream.future_tolerance=0h"],
        "sources.clickstream.future_tolerance",
        "sources.clickstream.future_tolerance: '0h' is not a duration;",
    ),
    (
        ["sources.orders.format=csv"],
        "sources.orders.format",
        "sources.orders.format: 'csv' is not a choice; use one of json, parquet",
    ),
    (
        ["sources.clickstream.partitioning=daily"],
        "sources.clickstream.partitioning",
        "sources.clickstream.partitioning: 'daily' is not a choice; use one of dt, none",
    ),
    (
        ["sources.orders.on_corrupt_file=skip"],
        "sources.orders.on_corrupt_file",
        "sources.orders.on_corrupt_file: 'skip' is not a choice; use one of fail, quarantine",
    ),
    (
        ["sources.orders.path=s3n://shop-exports/orders"],
        "sources.orders.path",
        "sources.orders.path: s3n:// is gone from Hadoop 3; use a local path, s3://bucket/prefix (EMRFS) or s3a://",
    ),
    (
        ["sources.orders.path=s3:///orders"],  # what s3://${BUCKET}/orders becomes with BUCKET empty
        "sources.orders.path",
        "sources.orders.path: 's3:///orders' has no valid bucket name;",
    ),
    (
        ["sources.orders.path=s3:/shop-exports/orders"],
        "sources.orders.path",
        "sources.orders.path: 's3:/shop-exports/orders' is missing a slash after the scheme;",
    ),
    (["sources.orders.path=gs://shop-exports/orders"], "sources.orders.path", "sources.orders.path: gs:// is not"),
    (
        ["sources.orders.path="],
        "sources.orders.path",
        "sources.orders.path: is empty and there is no jdbc block; set path (files) or jdbc (a live table)",
    ),
    (
        ["sources.orders.formt=json"],
        "sources.orders.formt",
        "unknown configuration key 'sources.orders.formt'; did you mean 'format'?",
    ),
    # sources.<source>.jdbc
    (
        [*JDBC, "sources.orders.jdbc.num_partitions=many"],
        "sources.orders.jdbc.num_partitions",
        "sources.orders.jdbc.num_partitions: 'many' is not a whole number; use a whole number from 1 to 1000",
    ),
    (
        [*JDBC, "sources.orders.jdbc.fetch_size=0"],
        "sources.orders.jdbc.fetch_size",
        "sources.orders.jdbc.fetch_size: 0 is out of range; use a whole number from 1 to 1000000",
    ),
    (
        [*JDBC, "sources.orders.jdbc.partition_column=order_time", "sources.orders.jdbc.num_partitions=0"],
        "sources.orders.jdbc.num_partitions",
        "sources.orders.jdbc.num_partitions: 0 is out of range;",
    ),
    (
        [*JDBC, "sources.orders.jdbc.num_partitions=8"],
        "sources.orders.jdbc.num_partitions",
        "sources.orders.jdbc.num_partitions: has no effect without jdbc.partition_column;",
    ),
    (
        ["sources.orders.path=", "sources.orders.jdbc={url: 'jdbc:postgresql://db/shop', user: app, password_env: P}"],
        "sources.orders.jdbc.table",
        "missing configuration key 'sources.orders.jdbc.table'",
    ),
    (
        [*JDBC, "sources.orders.jdbc.url=postgresql://db:5432/shop"],
        "sources.orders.jdbc.url",
        "sources.orders.jdbc.url: is not a JDBC URL; use e.g. jdbc:postgresql://host:5432/db",
    ),
    (
        [*JDBC, "sources.orders.jdbc.url=jdbc:mariadb://db:3306/shop"],
        "sources.orders.jdbc.url",
        "sources.orders.jdbc.url: Spark has no dialect for jdbc:mariadb: URLs",
    ),
    (
        [*JDBC, "sources.orders.jdbc.table=orders; DROP TABLE orders"],
        "sources.orders.jdbc.table",
        "sources.orders.jdbc.table: 'orders; DROP TABLE orders' is not a table name;",
    ),
    (
        [*JDBC, "sources.orders.jdbc.partition_column=order time"],
        "sources.orders.jdbc.partition_column",
        "sources.orders.jdbc.partition_column: 'order time' is not a column name;",
    ),
    (
        [*JDBC, "sources.orders.jdbc.driver=postgres"],
        "sources.orders.jdbc.driver",
        "sources.orders.jdbc.driver: 'postgres' is not a Java class name; use e.g. org.postgresql.Driver",
    ),
    (
        [*JDBC, "sources.orders.jdbc.user="],
        "sources.orders.jdbc.user",
        "sources.orders.jdbc.user: is empty;",
    ),
    (
        [*JDBC, "sources.orders.jdbc.password_secret_id=rds/shop"],
        "sources.orders.jdbc.password_secret_id",
        "sources.orders.jdbc.password_secret_id: is set together with password_env; keep exactly one",
    ),
    (
        [*JDBC, "sources.orders.jdbc.password_env=null"],
        "sources.orders.jdbc",
        "sources.orders.jdbc: names no password; keep exactly one of password_env or password_secret_id",
    ),
    (
        [*JDBC, "sources.orders.partitioning=dt"],
        "sources.orders.partitioning",
        "sources.orders.partitioning: dt is for event logs in files; remove it for a jdbc source",
    ),
    (
        ["sources.orders.jdbc={url: 'jdbc:postgresql://db/shop', table: orders, user: app, password_env: P}"],
        "sources.orders.jdbc",
        "sources.orders.jdbc: is set together with path; keep one of path (files) or jdbc (a live table)",
    ),
    (
        [*JDBC, "sources.orders.jdbc.tabel=orders"],
        "sources.orders.jdbc.tabel",
        "unknown configuration key 'sources.orders.jdbc.tabel'; did you mean 'table'?",
    ),
    # snapshot
    (["snapshot=1d"], "snapshot", "snapshot: '1d' is not a section;"),
    (["snapshot.dropout_lookback=1"], "snapshot.dropout_lookback", "snapshot.dropout_lookback: 1 is not a duration;"),
    (["snapshot.dropout_lookback=0d"], "snapshot.dropout_lookback", "snapshot.dropout_lookback: '0d' is not a dur"),
    (["snapshot.dropout_lookback=-1d"], "snapshot.dropout_lookback", "snapshot.dropout_lookback: '-1d' is not a dur"),
    (["snapshot.lookback=1d"], "snapshot.lookback", "unknown configuration key 'snapshot.lookback';"),
    # offline_store
    (["offline_store.root=[out]"], "offline_store.root", "offline_store.root: ['out'] is not text;"),
    (["offline_store.root="], "offline_store.root", "offline_store.root: is empty; set a value"),
    (["offline_store.root=s3n://features/store"], "offline_store.root", "offline_store.root: s3n:// is gone"),
    (
        ["offline_store.format=orc"],
        "offline_store.format",
        "offline_store.format: 'orc' is not a choice; use one of parquet, delta",
    ),
    (
        ["offline_store.commit_attempts=0"],
        "offline_store.commit_attempts",
        "offline_store.commit_attempts: 0 is out of range; use a whole number from 1 to 20",
    ),
    (
        ["offline_store.vacuum_retention_floor=0h"],
        "offline_store.vacuum_retention_floor",
        "offline_store.vacuum_retention_floor: '0h' is not a duration;",
    ),
    (
        ["offline_store.rot=/x"],
        "offline_store.rot",
        "unknown configuration key 'offline_store.rot'; did you mean 'root'? allowed here: root, format",
    ),
    # online_store
    (["online_store=enabled"], "online_store", "online_store: 'enabled' is not a section;"),
    (
        ["online_store.enabled=yes please"],
        "online_store.enabled",
        "online_store.enabled: 'yes please' is not true or false; use true or false",
    ),
    (
        ["online_store.max_in_flight=many"],
        "online_store.max_in_flight",
        "online_store.max_in_flight: 'many' is not a whole number; use a whole number from 1 to 256",
    ),
    (
        ["online_store.max_in_flight=0"],
        "online_store.max_in_flight",
        "online_store.max_in_flight: 0 is out of range; use a whole number from 1 to 256",
    ),
    (["online_store.max_in_flight=100000"], "online_store.max_in_flight", "online_store.max_in_flight: 100000 is out"),
    (
        ["online_store.max_attempts=0"],
        "online_store.max_attempts",
        "online_store.max_attempts: 0 is out of range; use a whole number from 1 to 100",
    ),
    (
        ["online_store.base_backoff_ms=0"],
        "online_store.base_backoff_ms",
        "online_store.base_backoff_ms: 0 is out of range; use a number > 0 and <= 60000",
    ),
    (
        ["online_store.max_backoff_ms=.inf"],
        "online_store.max_backoff_ms",
        "online_store.max_backoff_ms: inf is not a finite number;",
    ),
    (
        ["online_store.base_backoff_ms=6000"],
        "online_store.base_backoff_ms",
        "online_store.base_backoff_ms: 6000 exceeds max_backoff_ms (5000); lower it or raise max_backoff_ms",
    ),
    (["online_store.partitions=0"], "online_store.partitions", "online_store.partitions: 0 is out of range;"),
    (
        ["online_store.dead_letter_tolerance=-1"],
        "online_store.dead_letter_tolerance",
        "online_store.dead_letter_tolerance: -1 is out of range; use a whole number >= 0",
    ),
    (
        ["online_store.dead_letter_root="],
        "online_store.dead_letter_root",
        "online_store.dead_letter_root: is required when online_store.enabled is true;",
    ),
    (
        ["online_store.dead_letter_root=hdfs:///dead-letters"],
        "online_store.dead_letter_root",
        "online_store.dead_letter_root: hdfs:// is not supported here; use a local directory or s3://",
    ),
    (
        ["online_store.write_api=put"],
        "online_store.write_api",
        "online_store.write_api: 'put' is not a choice; use one of put_record, batch_write_record",
    ),
    (
        ["online_store.region=us-east"],
        "online_store.region",
        "online_store.region: 'us-east' is not an AWS region; use e.g. us-east-1",
    ),
    (
        ["online_store.endpoint_url=localhost:4566"],
        "online_store.endpoint_url",
        "online_store.endpoint_url: 'localhost:4566' is not an http(s) URL with a host;",
    ),
    (
        ["online_store.embedded_db=s3://features/fs.sqlite"],
        "online_store.embedded_db",
        "online_store.embedded_db: 's3://features/fs.sqlite' is a URI;",
    ),
    (
        ["online_store.offline_s3_uri=s3a://features/sagemaker"],
        "online_store.offline_s3_uri",
        "online_store.offline_s3_uri: 's3a://features/sagemaker' is not an s3:// URI",
    ),
    (
        ["online_store.offline_s3_uri=s3://features/sagemaker"],
        "online_store.role_arn",
        "online_store.role_arn: is required with offline_s3_uri",
    ),
    (
        ["online_store.role_arn=feature-store"],
        "online_store.role_arn",
        "online_store.role_arn: 'feature-store' is not an IAM role ARN;",
    ),
    (
        ["online_store.register_groups=true"],  # the Python name, not the key
        "online_store.register_groups",
        "unknown configuration key 'online_store.register_groups';",
    ),
    (
        ["online_store.max_inflight=4"],
        "online_store.max_inflight",
        "unknown configuration key 'online_store.max_inflight'; did you mean 'max_in_flight'?",
    ),
    # quarantine, reports
    (["quarantine=out/quarantine"], "quarantine", "quarantine: 'out/quarantine' is not a section;"),
    (["quarantine.root="], "quarantine.root", "quarantine.root: is empty;"),
    (["quarantine.rot=x"], "quarantine.rot", "unknown configuration key 'quarantine.rot'; did you mean 'root'?"),
    (["reports.root={a: 1}"], "reports.root", "reports.root: {'a': 1} is not text;"),
    (["reports.root=s3:/features/reports"], "reports.root", "reports.root: 's3:/features/reports' is missing a slash"),
    (["reports.rooot=x"], "reports.rooot", "unknown configuration key 'reports.rooot'; did you mean 'root'?"),
    # validation
    (["validation=strict"], "validation", "validation: 'strict' is not a section;"),
    (["validation.enabled=maybe"], "validation.enabled", "validation.enabled: 'maybe' is not true or false;"),
    (
        ["validation.row_count_band=wide"],
        "validation.row_count_band",
        "validation.row_count_band: 'wide' is not a number; use a number >= 0",
    ),
    (
        ["validation.row_count_band=-0.5"],
        "validation.row_count_band",
        "validation.row_count_band: -0.5 is out of range; use a number >= 0",
    ),
    (
        ["validation.policy=lenient"],
        "validation.policy",
        "validation.policy: 'lenient' is not a choice; use one of strict, warn",
    ),
    (
        ["validation.freshness_action=ignore"],
        "validation.freshness_action",
        "validation.freshness_action: 'ignore' is not a choice; use one of warn, fail",
    ),
    (
        ["validation.freshness_max_age=0d"],
        "validation.freshness_max_age",
        "validation.freshness_max_age: '0d' is not a duration;",
    ),
    (["validation.polcy=warn"], "validation.polcy", "unknown configuration key 'validation.polcy'; did you mean"),
    # validation.group_policies (names must be defined groups)
    (["validation.group_policies=warn"], "validation.group_policies", "validation.group_policies: 'warn' is not a map"),
    (
        ["validation.group_policies.customer_profile=lenient"],
        "validation.group_policies.customer_profile",
        "validation.group_policies.customer_profile: 'lenient' is not a choice; use one of strict, warn",
    ),
    (
        ["validation.group_policies.customer_profil=warn"],
        "validation.group_policies.customer_profil",
        "validation.group_policies.customer_profil: no feature group named 'customer_profil'; "
        "did you mean 'customer_profile'? defined: customer_activity, customer_orders, customer_profile",
    ),
    # validation.drift
    (["validation.drift=psi"], "validation.drift", "validation.drift: 'psi' is not a section;"),
    (
        ["validation.drift.bins=ten"],
        "validation.drift.bins",
        "validation.drift.bins: 'ten' is not a whole number; use a whole number from 2 to 1000",
    ),
    (["validation.drift.bins=1"], "validation.drift.bins", "validation.drift.bins: 1 is out of range;"),
    (["validation.drift.bins=5000"], "validation.drift.bins", "validation.drift.bins: 5000 is out of range;"),
    (
        ["validation.drift.null_rate_threshold=1.5"],
        "validation.drift.null_rate_threshold",
        "validation.drift.null_rate_threshold: 1.5 is out of range; use a number from 0 to 1",
    ),
    (
        ["validation.drift.psi_threshold=0"],
        "validation.drift.psi_threshold",
        "validation.drift.psi_threshold: 0 is out of range; use a number > 0",
    ),
    (
        ["validation.drift.psi_threshold=.nan"],
        "validation.drift.psi_threshold",
        "validation.drift.psi_threshold: nan is not a finite number;",
    ),
    (
        ["validation.drift.psi_action=ignore"],
        "validation.drift.psi_action",
        "validation.drift.psi_action: 'ignore' is not a choice; use one of warn, fail",
    ),
    (["validation.drift.binz=10"], "validation.drift.binz", "unknown configuration key 'validation.drift.binz';"),
    # catalog.glue
    (["catalog=glue"], "catalog", "catalog: 'glue' is not a section;"),
    (["catalog.athena.x=1"], "catalog.athena", "unknown configuration key 'catalog.athena'; allowed here: glue"),
    (
        ["catalog.glue.enabled=true"],
        "catalog.glue.database",
        "catalog.glue.database: is required when catalog.glue.enabled is true; set the Glue database",
    ),
    (["catalog.glue.enabled=maybe"], "catalog.glue.enabled", "catalog.glue.enabled: 'maybe' is not true or false;"),
    (
        ["catalog.glue.database=Feature-Store"],
        "catalog.glue.database",
        "catalog.glue.database: 'Feature-Store' is not a Glue database name",
    ),
    (
        ["catalog.glue.table_prefix=FS-"],
        "catalog.glue.table_prefix",
        "catalog.glue.table_prefix: 'FS-' is not a table name prefix",
    ),
    (["catalog.glue.region=useast1"], "catalog.glue.region", "catalog.glue.region: 'useast1' is not an AWS region;"),
    (
        ["catalog.glue.endpoint_url=localhost:5000"],
        "catalog.glue.endpoint_url",
        "catalog.glue.endpoint_url: 'localhost:5000' is not an http(s) URL with a host;",
    ),
    (
        ["catalog.glue.databse=features"],
        "catalog.glue.databse",
        "unknown configuration key 'catalog.glue.databse'; did you mean 'database'?",
    ),
]


@pytest.mark.parametrize(("overrides", "key", "start"), CASES, ids=[c[0][-1] for c in CASES])
def test_a_bad_value_is_one_line_naming_the_key_and_exit_2(
    overrides: list[str], key: str, start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = run_build(capsys, overrides)
    assert key in line
    assert line.startswith(f"error: {start}"), line


def test_the_jdbc_base_of_those_cases_is_valid() -> None:
    """The JDBC cases fail on the one value they add, not on the block they start from."""
    conf = load_conf(CONF, JDBC)
    jdbc = conf.sources["orders"].jdbc
    assert jdbc is not None and jdbc.table == "public.orders"


@pytest.mark.parametrize(
    ("override", "secret"),
    [
        ("sources.orders.jdbc.url=jdbc:postgresql://app:s3cr3t-pw@db:5432/shop", "s3cr3t-pw"),
        ("sources.orders.jdbc.url=jdbc:postgresql://db:5432/shop?password=s3cr3t-pw", "s3cr3t-pw"),
        ("sources.orders.jdbc.password_env=s3cr3t-pw!", "s3cr3t-pw"),  # the password itself, not a variable name
    ],
)
def test_a_secret_in_the_wrong_place_is_refused_without_repeating_it(
    override: str, secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = run_build(capsys, [*JDBC, override])
    assert line.startswith(f"error: {override.partition('=')[0]}: ")
    assert secret not in line


# --- the conf file itself ---------------------------------------------------------------------


def test_a_binary_conf_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf.yaml"
    path.write_bytes(b"\xff\xfe\x00e\x00n\x00v\x00")  # UTF-16: what some editors save
    assert (
        run_build(capsys, [], path) == f"error: configuration file {path} is not UTF-8 text (byte 0); pass a YAML file"
    )


def test_a_conf_file_that_is_not_yaml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf.yaml"
    path.write_text("env: [local\nspark: {}\n")
    assert run_build(capsys, [], path) == (
        f"error: {path} is not valid YAML at line 2, column 6: expected ',' or ']', but got ':'"
    )


def test_a_control_character_in_the_conf_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf.yaml"
    path.write_text("env: local\x00\n")
    assert run_build(capsys, [], path) == (
        f"error: {path} is not valid YAML: character #x0000 at position 10 is not allowed in YAML"
    )


def test_a_key_given_twice_is_refused_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf.yaml"
    path.write_text(CONF.read_text() + "\nspark:\n  shuffle_partitions: 2\n")
    line = run_build(capsys, [], path)
    assert line.startswith(f"error: {path} is not valid YAML at line ")
    assert line.endswith(": key 'spark' appears twice; keep one")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must hold a mapping of settings at the top level; start it with env: <name>"),
        ("- env: local\n", "must hold a mapping of settings at the top level"),
    ],
)
def test_a_conf_file_without_a_mapping(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    assert run_build(capsys, [], path).startswith(f"error: {path} {message}")


def test_an_unreadable_conf_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The read itself fails with EACCES (as root, file modes do not stop reads; see the subprocess test)."""
    path = tmp_path / "conf.yaml"
    path.write_text(CONF.read_text())

    def denied(self: Path, *args: Any, **kwargs: Any) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    assert run_build(capsys, [], path) == (
        f"error: configuration file {path} is not readable (permission denied); "
        "fix its permissions or pass another --conf"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing.yaml", "does not exist; pass --conf conf/<env>.yaml"),
        (".", "is a directory; pass --conf conf/<env>.yaml"),
        ("file.yaml/conf.yaml", "cannot be read (Not a directory); pass --conf conf/<env>.yaml"),
        ("loop.yaml", "cannot be read (Too many levels of symbolic links); pass --conf conf/<env>.yaml"),
    ],
)
def test_a_conf_path_that_is_not_a_readable_file(
    name: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.yaml").write_text("env: local\n")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    path = tmp_path / name
    assert run_build(capsys, [], path) == f"error: configuration file {path} {reason}"


# --- --set itself -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "env=[unclosed",
            "error: --set env is not valid YAML at line 1, column 10: expected ',' or ']', but got '<stream end>'",
        ),
        ("offline_store.root", "error: override 'offline_store.root' must look like key.path=value"),
        ("env.name=local", "error: override env.name: env is not a section"),
        (
            "spark.conf={a: 1, a: 2}",
            "error: --set spark.conf is not valid YAML at line 1, column 8: key 'a' appears twice; keep one",
        ),
        (
            "offline_store.root=s3://${TEST_BAD_CONFIG_UNSET}/store",
            "error: offline_store.root: environment variable TEST_BAD_CONFIG_UNSET is not set; "
            "export it or pass --set offline_store.root=...",
        ),
    ],
)
def test_a_malformed_override(
    override: str, line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TEST_BAD_CONFIG_UNSET", raising=False)
    assert run_build(capsys, [override]) == line


def test_the_conf_checks_agree_with_the_jdbc_reader() -> None:
    """The values features/io/jdbc.py refuses before connecting (tests/test_jdbc.py) fail at load already."""
    for url, table in [
        ("jdbc:postgresql://h/db?password=x", "orders"),
        ("jdbc:postgresql://app:x@h/db", "orders"),
        ("jdbc:mariadb://h:3306/db", "orders"),
        ("jdbc:postgresql://h/db", "orders; DROP TABLE orders"),
    ]:
        block = f"sources.orders.jdbc={{url: '{url}', table: '{table}', user: app, password_env: P}}"
        with pytest.raises(ConfigError, match=r"^sources\.orders\.jdbc\.(url|table): "):
            load_conf(CONF, ["sources.orders.path=", block])


# --- as a user runs it: a subprocess, and no JVM ------------------------------------------------


@pytest.fixture
def fake_java(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A stripped environment whose JAVA_HOME holds a ``java`` that only leaves a mark: any attempt
    to start Spark's JVM (spark-submit runs ``$JAVA_HOME/bin/java``) shows as that file."""
    if not BUILD_FEATURES.exists():
        pytest.skip(f"{BUILD_FEATURES} is not installed (make setup)")
    mark = tmp_path / "java-was-started"
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\ntouch {mark}\nexit 1\n")
    java.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "JAVA_HOME": str(tmp_path / "jdk")}
    return env, mark


def build_features(
    env: dict[str, str], tmp_path: Path, args: Sequence[str], prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``build-features`` as in the README, writing nothing into the repository."""
    cmd = [*prefix, str(BUILD_FEATURES), "--group", "all", "--as-of", AS_OF, *args]
    cmd += ["--set", f"reports.root={tmp_path}/reports", "--set", f"online_store.embedded_db={tmp_path}/fs.sqlite"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def assert_refused(result: subprocess.CompletedProcess[str], mark: Path, start: str, seconds: float) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.rstrip("\n")], result.stderr  # exactly one line
    assert result.stderr.startswith(f"error: {start}"), result.stderr
    assert not mark.exists(), "a JVM was started"
    assert seconds < 30, f"took {seconds:.1f}s: more than loading a conf"


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["--conf", "conf/local.yaml", "--set", "env=[unclosed"], "--set env is not valid YAML at line 1, column 10"),
        (["--conf", "conf/local.yaml", "--set", "online_store.max_in_flight=0"], "online_store.max_in_flight: 0 is"),
        (
            ["--conf", "conf/local.yaml", "--set", "validation.group_policies.customer_profil=warn"],
            "validation.group_policies.customer_profil: no feature group named 'customer_profil'",
        ),
        (["--conf", "conf/local.yaml", "--set", "spark.shuffle_partitions=0"], "spark.shuffle_partitions: 0 is"),
        (["--conf", "conf/local.yaml", "--set", "sources.orders.path=s3n://x1/o"], "sources.orders.path: s3n:// is"),
        (["--conf", "conf/local.yaml/x"], "configuration file conf/local.yaml/x cannot be read (Not a directory)"),
        (["--conf", "conf"], "configuration file conf is a directory"),
    ],
    ids=lambda value: value[-1] if isinstance(value, list) else None,
)
def test_build_features_refuses_before_spark(
    args: list[str], start: str, fake_java: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, mark = fake_java
    began = time.monotonic()
    result = build_features(env, tmp_path, args)
    assert_refused(result, mark, start, time.monotonic() - began)


@pytest.mark.parametrize(
    ("content", "start"),
    [
        (b"\xff\xfe\x00e\x00n\x00v\x00", "configuration file {path} is not UTF-8 text (byte 0)"),
        (b"env: [local\nspark: {}\n", "{path} is not valid YAML at line 2, column 6: expected ',' or ']', but got ':'"),
    ],
    ids=["binary", "not-yaml"],
)
def test_build_features_refuses_a_bad_conf_file_before_spark(
    content: bytes, start: str, fake_java: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, mark = fake_java
    path = tmp_path / "conf.yaml"
    path.write_bytes(content)
    began = time.monotonic()
    result = build_features(env, tmp_path, ["--conf", str(path)])
    assert_refused(result, mark, start.format(path=path), time.monotonic() - began)


def test_build_features_refuses_an_unreadable_conf_file(fake_java: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    """A real EACCES: root reads any file, so the command runs as root without the capabilities that
    bypass file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), or as any other user as it is."""
    env, mark = fake_java
    path = tmp_path / "conf.yaml"
    path.write_text(CONF.read_text())
    path.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
        probe = subprocess.run([*prefix, "head", "-c1", str(path)], capture_output=True, check=False, timeout=30)
        if probe.returncode == 0:
            pytest.skip("this root can read a mode-000 file even without CAP_DAC_OVERRIDE")
    assert not stat.S_IMODE(path.stat().st_mode)
    began = time.monotonic()
    result = build_features(env, tmp_path, ["--conf", str(path)], prefix)
    assert_refused(
        result, mark, f"configuration file {path} is not readable (permission denied)", time.monotonic() - began
    )


def test_the_fake_java_does_catch_a_jvm_start(fake_java: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    """Control: a valid conf does reach Spark's launcher, so 'no mark' above means no JVM was started."""
    env, mark = fake_java
    result = build_features(env, tmp_path, ["--conf", "conf/local.yaml", "--set", "online_store.enabled=false"])
    assert result.returncode == 1, result.stderr
    assert mark.exists()
