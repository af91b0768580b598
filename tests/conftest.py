"""One session-wide SparkSession for the whole suite: local[2], UTC, UI off, few partitions.

Nothing here exports AWS credentials or PYSPARK_* for the suite: a shell without them is what a
new user has (tests/test_readme.py runs the README in one). Tests that talk to moto or the local
runtime bring their own placeholder settings, or rely on the product's own rule for loopback
endpoints (features/online/client.py).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from features.io.jdbc import JDBC_PACKAGES
from features.sample_data import generate
from features.session import DELTA_SETTINGS, PYTHON, delta_packages, python_workers

# Throwaway PostgreSQL and MariaDB servers (tests/services), started only by tests that need them.
pytest_plugins = ["tests.services.fixtures"]

# PySpark converts naive datetimes with the process's local zone: make it UTC like the session.
os.environ["TZ"] = "UTC"
time.tzset()
# Spark's driver and block manager listen on loopback only.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    builder = (
        SparkSession.builder.master("local[2,3]")  # 3 attempts: task-retry tests need it
        .appName("feature-pipeline-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.adaptive.enabled", "false")
        # JDBC drivers and Delta Lake from Maven Central, cached by ivy after the first run.
        .config("spark.jars.packages", ",".join([*JDBC_PACKAGES, *delta_packages()]))
        .config(map=DELTA_SETTINGS)
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        # Workers run the tests' interpreter (the venv's), as features.session does for local masters.
        .config(PYTHON, sys.executable)
    )
    with python_workers(sys.executable):
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small deterministic sample data set (150 customers, 6000 events), read-only for the tests."""
    out = tmp_path_factory.mktemp("sample")
    generate(spark, out, seed=7, customers=150, events=6000, as_of=datetime(2026, 10, 31, tzinfo=UTC))
    return out


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A default AWS chain that finds nothing, as in a new user's shell (and fast: no IMDS probe)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
