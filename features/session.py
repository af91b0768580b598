"""The one SparkSession factory used by jobs and the console command.

Under spark-submit (EMR steps, EMR Serverless) the cluster manager owns ``spark.master`` and we
never set it. Run as a plain Python program (local development), ``spark.master`` comes from the
conf file, so the same job code serves both.
"""

from __future__ import annotations

import logging
import os

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


def launched_by_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands PySpark its gateway through the environment."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(conf: PipelineConf) -> SparkSession:
    builder = SparkSession.builder.appName(conf.spark.app_name)
    if not launched_by_spark_submit():
        if not conf.spark.master:
            raise RuntimeError(
                f"conf env {conf.env!r} has no spark.master; run it with spark-submit, or pass "
                "--set spark.master=local[2] to run locally"
            )
        builder = builder.master(conf.spark.master)
    settings = {"spark.sql.shuffle.partitions": str(conf.spark.shuffle_partitions)}
    if not launched_by_spark_submit():
        # Locally the JVM is started here: fetch JDBC drivers from Maven Central (cached by ivy)
        # and pin the JVM zone so JDBC timestamps are not shifted. On EMR both come from the
        # cluster (drivers on the classpath, spark-defaults).
        if any(s.jdbc for s in conf.sources.values()):
            settings["spark.jars.packages"] = ",".join(JDBC_PACKAGES)
        settings["spark.driver.extraJavaOptions"] = "-Duser.timezone=UTC"
    settings.update(conf.spark.conf)
    settings.update(REQUIRED_SETTINGS)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("spark %s session ready (master %s)", spark.version, spark.sparkContext.master)
    return spark
