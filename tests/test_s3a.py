"""Event logs read over s3a:// from a local S3 (moto's server on 127.0.0.1), as on a non-EMR cluster.

Runs the job through spark-submit so hadoop-aws and its AWS SDK bundle (Maven Central, cached by
ivy after the first run: ~560 MB once on Spark 4, ~280 MB on 3.5) are on the JVM's classpath
without loading them into every other test's session. Credentials reach S3A through the
environment, never argv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pyspark
import pytest
from moto.server import ThreadedMotoServer
from pyspark.sql import SparkSession

from features.cli import main
from features.sample_data import generate

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-10-31T00:00:00Z"
#: The Hadoop the running pyspark bundles (3.4.1 in Spark 4.0.2, 3.3.4 in Spark 3.5.6): hadoop-aws
#: must match it exactly, and its AWS SDK (v2 from Hadoop 3.4, v1 before) names the provider.
(_HADOOP_JAR,) = (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")
HADOOP_VERSION = _HADOOP_JAR.stem.removeprefix("hadoop-client-api-")
HADOOP_AWS = f"org.apache.hadoop:hadoop-aws:{HADOOP_VERSION}"
ENV_CREDENTIALS = (
    "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
    if HADOOP_VERSION.startswith("3.3.")
    else "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
)


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _args(out: Path, events: str) -> list[str]:
    return [
        "--conf",
        str(ROOT / "conf/local.yaml"),
        "--group",
        "customer_activity",
        "--as-of",
        AS_OF,
        "--set",
        f"sources.clickstream.path={events}",
        "--set",
        f"offline_store.root={out}/store",
        "--set",
        f"quarantine.root={out}/quarantine",
        "--set",
        f"reports.root={out}/reports",
        "--set",
        "online_store.enabled=false",
        "--set",
        "spark.shuffle_partitions=2",
    ]


def _report(out: Path) -> dict:  # type: ignore[type-arg]
    (path,) = (out / "reports" / "build_features").glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.slow
def test_event_logs_over_s3a_match_the_local_read(spark: SparkSession, s3: str, tmp_path: Path) -> None:
    data = tmp_path / "sample"
    generate(spark, data, seed=5, customers=60, events=3000, as_of=datetime(2026, 10, 31, tzinfo=UTC))
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's placeholders
    client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", **keys)
    client.create_bucket(Bucket="events")
    local_events = data / "clickstream" / "events"
    for file in local_events.rglob("*.json.gz"):
        client.upload_file(str(file), "events", f"clickstream/events/{file.relative_to(local_events)}")

    assert main(["build", *_args(tmp_path / "local", str(local_events))]) == 0

    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]", "--packages", HADOOP_AWS]
    for key, value in {
        "fs.s3a.endpoint": s3,
        "fs.s3a.endpoint.region": "us-east-1",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.aws.credentials.provider": ENV_CREDENTIALS,
    }.items():
        cmd += ["--conf", f"spark.hadoop.{key}={value}"]
    cmd += [str(ROOT / "jobs/build_features.py"), *_args(tmp_path / "s3a", "s3a://events/clickstream/events")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    local, remote = _report(tmp_path / "local"), _report(tmp_path / "s3a")
    assert remote["sources"]["clickstream"]["input_paths"][0].startswith("s3a://events/clickstream/events/dt=")
    for key in ("rows_read", "accepted", "quarantined", "duplicates", "quarantine_reasons"):
        assert remote["sources"]["clickstream"][key] == local["sources"]["clickstream"][key], key
    assert remote["groups"][0]["entities"] == local["groups"][0]["entities"] > 0
    read = spark.read.parquet
    got = read(remote["groups"][0]["offline_path"]).drop("write_time", "api_invocation_time")
    want = read(local["groups"][0]["offline_path"]).drop("write_time", "api_invocation_time")
    assert got.exceptAll(want).count() == 0 and want.exceptAll(got).count() == 0
