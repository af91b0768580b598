"""The one SparkSession factory used by jobs and the console command.

Under spark-submit (EMR steps, EMR Serverless) the cluster manager owns ``spark.master`` and we
never set it. Run as a plain Python program (local development), ``spark.master`` comes from the
conf file, so the same job code serves both.

With a local master the Python workers run this interpreter unless the user chose one
(``PYSPARK_PYTHON``, ``spark.pyspark.python``): PySpark's own default is whichever ``python3`` is
first on PATH, which for ``.venv/bin/build-features`` is not the venv's. On a cluster the
executors are other machines with their own interpreter (EMR's python3, EMR Serverless's
``./environment/bin/python``), so nothing is set there. See README.md, "Running a job".
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import pyspark
from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from features.config import PipelineConf
from features.io.jdbc import JDBC_PACKAGES

log = logging.getLogger(__name__)

#: Settings every environment needs for correct results, whatever the conf says.
REQUIRED_SETTINGS = {
    # Feature times are UTC instants; a session zone other than UTC would shift dates.
    "spark.sql.session.timeZone": "UTC",
    # Spark 4 default; set on 3.5 too so both platforms fail loudly on bad casts and overflow.
    "spark.sql.ansi.enabled": "true",
}
#: What makes ``format("delta")`` and Delta's SQL (``DESCRIBE HISTORY``, ``OPTIMIZE``, ``VACUUM``) work.
DELTA_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
PYTHON = "spark.pyspark.python"
DRIVER_PYTHON = "spark.pyspark.driver.python"


def launched_by_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands PySpark its gateway through the environment."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def submitted_conf() -> SparkConf:
    """spark-submit's configuration (``--master`` or its default ``local[*]``, ``--conf``), before the context exists.

    A SparkConf made before PySpark has joined spark-submit's JVM is empty; joining it first (no
    new JVM: the gateway is already running) makes it read the JVM's ``spark.*`` properties.
    """
    SparkContext._ensure_initialized()
    return SparkConf()


def local_worker_python(master: str | None, settings: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """The interpreter local Python workers must run, or None to leave the choice to Spark.

    None on a cluster master and when ``PYSPARK_PYTHON`` is set (spark-submit also sets it from
    ``--conf spark.pyspark.python``); otherwise ``spark.pyspark.python`` from ``settings``, else
    this process's interpreter.
    """
    if not (master or "").startswith("local") or environ.get("PYSPARK_PYTHON"):
        return None
    return settings.get(PYTHON) or sys.executable


@contextmanager
def python_workers(python: str | None) -> Iterator[None]:
    """``PYSPARK_PYTHON=python`` while a SparkContext starts in this block (nothing when None).

    PySpark takes its workers' interpreter from that variable when the context starts and never
    from ``spark.pyspark.python`` (only spark-submit's launcher turns that into the variable), so
    it is set for that moment only and this process's environment is left as it was.
    """
    if python is None:
        yield
        return
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = python
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYSPARK_PYTHON"]
        else:
            os.environ["PYSPARK_PYTHON"] = before


def delta_packages() -> list[str]:
    """Delta's Maven coordinates for this pyspark: the installed delta-spark's version, built for
    pyspark's Scala (2.13 on Spark 4, 2.12 on Spark 3.5), read from pyspark's own jars."""
    try:
        version = metadata.version("delta-spark")
    except metadata.PackageNotFoundError:
        raise RuntimeError(
            "offline_store.format delta needs the delta-spark package matching pyspark; install the project's "
            "constraints (make setup)"
        ) from None
    return [f"io.delta:delta-spark_{scala_version()}:{version}"]


def scala_version() -> str:
    """The Scala binary version pyspark's jars were built for."""
    jars = sorted(Path(pyspark.__file__).parent.joinpath("jars").glob("spark-core_*.jar"))
    if jars:
        return jars[0].name.removeprefix("spark-core_").split("-")[0]
    return "2.13" if pyspark.__version__.startswith("4.") else "2.12"


def get_spark(conf: PipelineConf) -> SparkSession:
    """The session for ``conf`` (or the one already running): master and interpreter as the module docstring says."""
    submitted = launched_by_spark_submit()
    builder = SparkSession.builder.appName(conf.spark.app_name)
    if not submitted:
        if not conf.spark.master:
            raise RuntimeError(
                f"conf env {conf.env!r} has no spark.master; run it with spark-submit, or pass "
                "--set spark.master=local[2] to run locally"
            )
        builder = builder.master(conf.spark.master)
    settings = {"spark.sql.shuffle.partitions": str(conf.spark.shuffle_partitions)}
    if not submitted:
        # Locally the JVM is started here: fetch JDBC drivers from Maven Central (cached by ivy)
        # and pin the JVM zone so JDBC timestamps are not shifted. On EMR both come from the
        # cluster (drivers on the classpath, spark-defaults).
        # Delta's jars likewise when the offline store is Delta; its log replay then gets as few
        # partitions as the shuffles (Delta's default, 50, is for clusters).
        packages = list(JDBC_PACKAGES) if any(s.jdbc for s in conf.sources.values()) else []
        if conf.offline_store.format == "delta":
            packages += delta_packages()
            settings["spark.databricks.delta.snapshotPartitions"] = str(conf.spark.shuffle_partitions)
        if packages:
            settings["spark.jars.packages"] = ",".join(packages)
        settings["spark.driver.extraJavaOptions"] = "-Duser.timezone=UTC"
    if conf.offline_store.format == "delta":
        # On EMR deploy passes the same with the cluster's jars (features/deploy/job.py).
        settings.update(DELTA_SETTINGS)
    settings.update(conf.spark.conf)
    settings.update(REQUIRED_SETTINGS)
    given = dict(submitted_conf().getAll()) if submitted else {}
    master = given.get("spark.master") if submitted else conf.spark.master
    python = local_worker_python(master, {**given, **settings}, os.environ)
    if python is not None:
        # Recorded in the session's conf (the UI's Environment tab) as well as used.
        settings[PYTHON] = settings[DRIVER_PYTHON] = python
    for key, value in settings.items():
        builder = builder.config(key, value)
    with python_workers(python):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info(
        "spark %s session ready (master %s, python workers %s)",
        spark.version,
        spark.sparkContext.master,
        spark.sparkContext.pythonExec,
    )
    return spark
