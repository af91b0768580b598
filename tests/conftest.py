"""One session-wide SparkSession for the whole suite: local[2], UTC, UI off, few partitions."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from features.io.jdbc import JDBC_PACKAGES

# Throwaway PostgreSQL and MariaDB servers (tests/services), started only by tests that need them.
pytest_plugins = ["tests.services.fixtures"]

# PySpark converts naive datetimes with the process's local zone: make it UTC like the session.
os.environ["TZ"] = "UTC"
time.tzset()
# Workers must run the interpreter the tests run in (the project's venv).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# Tests never reach AWS: placeholder keys (boto3 must sign requests to the local runtime and moto),
# set before Spark starts so its Python workers inherit them.
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.pop("AWS_PROFILE", None)
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
# Spark's driver and block manager listen on loopback only.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = (
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
        # JDBC drivers from Maven Central, cached by ivy after the first run.
        .config("spark.jars.packages", ",".join(JDBC_PACKAGES))
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
