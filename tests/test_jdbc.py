"""The JDBC source against real PostgreSQL and MariaDB servers, checked against the Parquet path.

The same seeded orders and customers go into a database table and into a Parquet snapshot
export; both extracts must give identical features. Around that: the time range is pushed down
(fewer rows leave the database), the partitioned read has the configured number of partitions,
and the password shows up nowhere a person or a log collector could see it.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from features.config import JdbcConf, SourceConf
from features.definitions import FeatureGroup, Source
from features.groups.customer_orders import customer_orders
from features.groups.customer_profile import customer_profile
from features.io.extract import Extracted, read_table
from features.io.jdbc import DRIVERS, JDBC_PACKAGES, JdbcReadError, read_jdbc_table, sql_timestamp
from features.io.secrets import SecretError, resolve_password
from features.pipeline import read_start
from features.sources import CUSTOMERS, ORDERS
from features.transform.windows import snapshot
from tests.oracle.random_data import ORDERS_SCHEMA, SCHEMAS, as_aware_utc, random_customers, random_orders
from tests.services.mariadb import MariaDB
from tests.services.postgres import Postgres

AS_OF = datetime(2026, 10, 31, tzinfo=UTC)
LOOKBACK = timedelta(days=1)
#: A windowed read's lower bound (the largest window plus the look-back). customer_orders itself
#: reads all history before T: days_since_last_order looks back without limit.
ORDERS_START = AS_OF - timedelta(days=90) - LOOKBACK
SEED = 20261031
PASSWORD_ENV = "TEST_JDBC_PASSWORD"

ORDER_COLUMNS, ORDER_ROWS = random_orders(SEED, AS_OF, lookback=LOOKBACK)
CUSTOMER_COLUMNS, CUSTOMER_ROWS = random_customers(SEED, AS_OF)

#: random_data's DuckDB types -> each engine's DDL (MariaDB's TIMESTAMP is zone-converting and
#: second-precision; DATETIME(6) is the UTC wall-clock type with microseconds).
DDL_TYPES = {
    "postgresql": {"VARCHAR": "varchar(64)", "TIMESTAMP": "timestamp", "DECIMAL(12,2)": "numeric(12,2)"},
    "mariadb": {"VARCHAR": "varchar(64)", "TIMESTAMP": "datetime(6)", "DECIMAL(12,2)": "decimal(12,2)"},
}


def sql_value(value: Any) -> str:
    """A SQL literal both engines read the same way (the generated data has no quotes or backslashes)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return sql_timestamp(value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, (int, Decimal)):
        return str(value)
    text = str(value)
    assert "'" not in text and "\\" not in text, text
    return f"'{text}'"


def table_sql(dialect: str, table: str, kind: str, key: str, rows: Sequence[tuple[Any, ...]]) -> str:
    """CREATE TABLE typed like random_data's schema, with a primary key as on RDS, then one INSERT."""
    types = DDL_TYPES[dialect]
    columns = ", ".join(f"{name} {types.get(ctype, ctype)}" for name, ctype in SCHEMAS[kind])
    values = ",\n".join(f"({', '.join(sql_value(v) for v in row)})" for row in rows)
    return f"CREATE TABLE {table} ({columns}, PRIMARY KEY ({key}));\nINSERT INTO {table} VALUES\n{values};\n"


def in_range(rows: Sequence[tuple[Any, ...]], start: datetime | None) -> int:
    """How many order rows the pushed-down range selects (times are naive UTC in random_data)."""
    index = ORDER_COLUMNS.index("order_time")
    low = start.replace(tzinfo=None) if start else None
    end = AS_OF.replace(tzinfo=None)
    return sum(1 for row in rows if row[index] is None or ((low is None or row[index] >= low) and row[index] < end))


def features(ex: Extracted, group: FeatureGroup) -> DataFrame:
    return snapshot(ex.accepted, group=group, as_of=AS_OF, dropout_lookback=LOOKBACK)


def assert_same_features(left: DataFrame, right: DataFrame) -> None:
    assert left.count() > 0
    assert_df_equality(left, right, ignore_row_order=True, ignore_nullable=True)


def explain(df: DataFrame, capsys: pytest.CaptureFixture[str]) -> str:
    df.explain(mode="extended")
    df.explain(mode="formatted")
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def jdbc_spark(spark: SparkSession) -> SparkSession:
    """The shared session, checked for the JDBC drivers (they must be there at JVM start)."""
    utils = spark.sparkContext._jvm.org.apache.spark.util.Utils
    missing = []
    for driver in (DRIVERS["postgresql"], DRIVERS["mariadb"]):
        try:
            utils.classForName(driver, False, False)
        except Exception:
            missing.append(driver)
    if missing:
        pytest.fail(
            f"JDBC drivers {', '.join(missing)} are not on Spark's classpath: the spark fixture must set "
            f"spark.jars.packages={','.join(JDBC_PACKAGES)}",
            pytrace=False,
        )
    return spark


def parquet_export(spark: SparkSession, root: Path, source: Source, rows: Sequence[tuple[Any, ...]]) -> Extracted:
    """The same rows as an RDS snapshot export (Parquet per table), read by the file path."""
    schema = ", ".join(f"{name} {ctype}" for name, ctype in source.columns.items())
    path = root / source.name
    spark.createDataFrame(as_aware_utc(list(rows)), schema).coalesce(1).write.parquet(str(path))
    return read_table(spark, SourceConf(path=str(path)), source)


@pytest.fixture(scope="module")
def exports(jdbc_spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Extracted]]:
    root = tmp_path_factory.mktemp("rds-export")
    extracted = {
        "orders": parquet_export(jdbc_spark, root, ORDERS, ORDER_ROWS),
        "customers": parquet_export(jdbc_spark, root, CUSTOMERS, CUSTOMER_ROWS),
    }
    yield extracted
    for ex in extracted.values():
        ex.release()


@pytest.fixture(scope="module")
def pg(postgres: Postgres, monkeypatch_module: pytest.MonkeyPatch) -> Postgres:
    """The session's PostgreSQL with the orders and customers tables, its password in the env."""
    postgres.execute(
        "DROP TABLE IF EXISTS orders, customers;\n"
        + table_sql("postgresql", "orders", "orders", "order_id", ORDER_ROWS)
        + table_sql("postgresql", "customers", "customers", "customer_id", CUSTOMER_ROWS)
    )
    monkeypatch_module.setenv(PASSWORD_ENV, postgres.password)
    return postgres


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def pg_conf(server: Postgres, table: str, **overrides: Any) -> JdbcConf:
    settings: dict[str, Any] = {
        "url": server.jdbc_url,
        "table": table,
        "user": server.user,
        "password_env": PASSWORD_ENV,
    }
    return JdbcConf(**{**settings, **overrides})


def test_orders_partitioned_read_pushes_the_time_range_and_matches_parquet(
    jdbc_spark: SparkSession, pg: Postgres, exports: dict[str, Extracted], capsys: pytest.CaptureFixture[str]
) -> None:
    start = read_start(customer_orders, AS_OF, LOOKBACK)
    assert start is None  # all history before T, as the pipeline reads it
    conf = pg_conf(pg, "orders", partition_column="order_time", num_partitions=4, fetch_size=100)
    ex = read_jdbc_table(jdbc_spark, conf, ORDERS, start=start, end=AS_OF)
    try:
        # Pushdown: orders at or after T never left the database (NULL times do, to be quarantined).
        assert ex.input_rows == in_range(ORDER_ROWS, None) < len(ORDER_ROWS)
        plan = explain(ex.quarantined, capsys)
        assert f"WHERE (order_time < {sql_timestamp(AS_OF)}) OR order_time IS NULL" in plan
        # Partitioning: one JDBC partition per predicate (the cached extract keeps them).
        assert "[numPartitions=4]" in plan
        assert ex.quarantined.rdd.getNumPartitions() == 4
        assert ex.input_paths == [f"{pg.jdbc_url} table=orders"]
        assert_same_features(features(ex, customer_orders), features(exports["orders"], customer_orders))
    finally:
        ex.release()


def test_windowed_read_pushes_both_bounds_with_a_numeric_partition_column(
    jdbc_spark: SparkSession, pg: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = pg_conf(pg, "orders", partition_column="item_count", num_partitions=3)
    ex = read_jdbc_table(jdbc_spark, conf, ORDERS, start=ORDERS_START, end=AS_OF)
    try:
        assert ex.input_rows == in_range(ORDER_ROWS, ORDERS_START) < in_range(ORDER_ROWS, None)
        ex.check_balance()
        plan = explain(ex.quarantined, capsys)
        assert f"order_time >= {sql_timestamp(ORDERS_START)} AND order_time < {sql_timestamp(AS_OF)}" in plan
        assert ex.quarantined.rdd.getNumPartitions() == 3
    finally:
        ex.release()


def test_customers_are_read_whole_and_match_parquet(
    jdbc_spark: SparkSession, pg: Postgres, exports: dict[str, Extracted]
) -> None:
    ex = read_jdbc_table(jdbc_spark, pg_conf(pg, "customers"), CUSTOMERS, start=None, end=AS_OF)
    try:
        # Whole: rows with a NULL active_since (and the ones after T) are all read.
        assert ex.input_rows == len(CUSTOMER_ROWS) == exports["customers"].input_rows
        assert ex.accepted.where("active_since IS NULL").count() > 0
        assert_same_features(features(ex, customer_profile), features(exports["customers"], customer_profile))
    finally:
        ex.release()


def test_password_appears_nowhere(
    jdbc_spark: SparkSession,
    pg: Postgres,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = pg.password
    caplog.set_level(logging.DEBUG)
    # Another test's CLI run may have raised py4j's level; this test needs its DEBUG commands.
    caplog.set_level(logging.DEBUG, logger="py4j")
    # Spark's connection provider prints connection properties at DEBUG: the read must quiet it.
    log4j = jdbc_spark.sparkContext._jvm.org.apache.logging.log4j
    provider = "org.apache.spark.sql.execution.datasources.jdbc.connection.BasicConnectionProvider"
    log4j.core.config.Configurator.setLevel(provider, log4j.Level.DEBUG)
    conf = pg_conf(pg, "orders", partition_column="order_time", num_partitions=2)
    ex = read_jdbc_table(jdbc_spark, conf, ORDERS, start=ORDERS_START, end=AS_OF)
    try:
        assert log4j.LogManager.getLogger(provider).getLevel().toString() == "INFO"
        seen = {
            "logs": caplog.text + "".join(r.getMessage() for r in caplog.records),
            "result": repr(ex) + json.dumps([ex.input_paths, ex.quarantine_reasons]),
            "conf": repr(conf),
            "spark conf": repr(jdbc_spark.sparkContext.getConf().getAll()),
            "sql conf": repr(jdbc_spark.sql("SET").collect()),
            "plans": explain(ex.accepted, capsys) + explain(ex.quarantined, capsys),
        }
        seen["stdout/stderr"] = "".join(capsys.readouterr())
        # py4j logs every command it sends at DEBUG, the reader's options included: they were captured, masked.
        assert "Command to send" in seen["logs"] and "***" in seen["logs"]
        assert [where for where, text in seen.items() if secret in text] == []
    finally:
        ex.release()


def test_spark_redacts_jdbc_options_in_plans_that_carry_them(jdbc_spark: SparkSession, pg: Postgres) -> None:
    """Spark 4.0.1 masks options matching ``spark.redaction.regex`` (default ``(?i)secret|password|token``)
    in the plans that print them, such as a JDBC view's DDL; our reads' plans do not print options at all.
    """
    statement = (
        f"EXPLAIN EXTENDED CREATE TEMPORARY VIEW redaction_probe USING jdbc OPTIONS (url '{pg.jdbc_url}', "
        f"dbtable 'orders', user '{pg.user}', password '{pg.password}', driver '{DRIVERS['postgresql']}')"
    )
    plan = "\n".join(str(row[0]) for row in jdbc_spark.sql(statement).collect())
    assert "redacted" in plan and pg.password not in plan


def test_wrong_password_fails_in_one_line_without_it(
    jdbc_spark: SparkSession, pg: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-password-42"
    monkeypatch.setenv("TEST_JDBC_WRONG", wrong)
    conf = pg_conf(pg, "orders", password_env="TEST_JDBC_WRONG")
    with pytest.raises(JdbcReadError) as caught:
        read_jdbc_table(jdbc_spark, conf, ORDERS, start=ORDERS_START, end=AS_OF)
    message = str(caught.value)
    assert "\n" not in message
    assert "password authentication failed" in message and f"table=orders as user {pg.user}" in message
    full = "".join(traceback.format_exception(caught.value))
    assert wrong not in full and pg.password not in full


@pytest.fixture()
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process Secrets Manager (moto), reached through boto3's default chain and region."""
    try:
        from moto import mock_aws
    except ImportError:
        pytest.fail("moto is not installed in the venv (tests need moto for Secrets Manager)", pytrace=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager")


def secret_conf(secret_id: str) -> JdbcConf:
    return JdbcConf(url="jdbc:postgresql://127.0.0.1:5432/db", table="orders", user="app", password_secret_id=secret_id)


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (json.dumps({"username": "app", "password": "s3cr3t-json", "engine": "postgres"}), "s3cr3t-json"),
        ("s3cr3t-plain", "s3cr3t-plain"),
        ("12345", "12345"),  # plain text that happens to parse as JSON
    ],
)
def test_password_from_secrets_manager(secrets_manager: Any, secret: str, expected: str) -> None:
    secrets_manager.create_secret(Name="rds/orders", SecretString=secret)
    assert resolve_password(secret_conf("rds/orders")) == expected


def test_secret_errors_name_the_secret_not_its_value(secrets_manager: Any) -> None:
    with pytest.raises(SecretError, match="cannot read secret rds/missing: ResourceNotFoundException"):
        resolve_password(secret_conf("rds/missing"))
    secrets_manager.create_secret(Name="rds/nopw", SecretString=json.dumps({"username": "app", "pass": "v4lue"}))
    with pytest.raises(SecretError) as caught:
        resolve_password(secret_conf("rds/nopw"))
    assert "keys: pass, username" in str(caught.value) and "v4lue" not in str(caught.value)


def test_password_env_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_JDBC_UNSET", raising=False)
    conf = JdbcConf(url="jdbc:postgresql://h/db", table="orders", user="app", password_env="TEST_JDBC_UNSET")
    with pytest.raises(SecretError, match=r"environment variable TEST_JDBC_UNSET .* is not set"):
        resolve_password(conf)


def test_read_with_password_from_secrets_manager(jdbc_spark: SparkSession, pg: Postgres, secrets_manager: Any) -> None:
    secrets_manager.create_secret(Name="rds/features", SecretString=json.dumps({"password": pg.password}))
    conf = pg_conf(pg, "customers", password_env=None, password_secret_id="rds/features")
    ex = read_jdbc_table(jdbc_spark, conf, CUSTOMERS, start=None, end=AS_OF)
    try:
        assert ex.input_rows == len(CUSTOMER_ROWS)
    finally:
        ex.release()


@pytest.mark.parametrize(
    ("url", "table", "message"),
    [
        ("jdbc:postgresql://h/db?password=x", "orders", "must not hold a password"),
        ("jdbc:postgresql://app:x@h/db", "orders", "must not hold a password"),
        ("jdbc:mariadb://h:3306/db", "orders", "use jdbc:mysql://host:3306/db[?]permitMysqlScheme"),
        ("jdbc:postgresql://h/db", "orders; DROP TABLE orders", "must be a table name"),
    ],
)
def test_bad_jdbc_configuration_is_rejected_before_connecting(
    jdbc_spark: SparkSession, url: str, table: str, message: str
) -> None:
    conf = JdbcConf(url=url, table=table, user="app", password_env="TEST_JDBC_NEVER_READ")
    with pytest.raises(ValueError, match=message):
        read_jdbc_table(jdbc_spark, conf, ORDERS, start=ORDERS_START, end=AS_OF)


def test_mariadb_partitioned_read_matches_parquet(
    jdbc_spark: SparkSession,
    mariadb: MariaDB,
    exports: dict[str, Extracted],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mariadb.execute("DROP TABLE IF EXISTS orders;\n" + table_sql("mariadb", "orders", "orders", "order_id", ORDER_ROWS))
    monkeypatch.setenv(PASSWORD_ENV, mariadb.password)
    conf = JdbcConf(
        url=mariadb.jdbc_url,
        table="orders",
        user=mariadb.user,
        password_env=PASSWORD_ENV,
        partition_column="order_time",
        num_partitions=3,
    )
    ex = read_jdbc_table(jdbc_spark, conf, ORDERS, start=None, end=AS_OF)
    try:
        assert ex.input_rows == in_range(ORDER_ROWS, None)
        assert ex.quarantined.rdd.getNumPartitions() == 3
        assert_same_features(features(ex, customer_orders), features(exports["orders"], customer_orders))
    finally:
        ex.release()


def test_order_schema_matches_the_source() -> None:
    """The DDL above is built from random_data's schema; it must still be the source's columns."""
    assert [name for name, _ in ORDERS_SCHEMA] == list(ORDERS.columns) == ORDER_COLUMNS
