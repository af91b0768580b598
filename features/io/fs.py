"""Filesystem operations through Hadoop's FileSystem API, so s3://, s3a:// and local paths behave alike.

Spark already carries the right FileSystem for every scheme on the cluster (EMRFS on EMR, S3A
elsewhere); going through it avoids a second S3 client with its own credentials and retries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession


def filesystem(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """Hadoop's FileSystem for ``path`` (S3A, EMRFS, local...) and ``path`` as a Hadoop Path."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "filesystem helpers need a classic (non-Connect) SparkSession"
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return hadoop_path.getFileSystem(conf), hadoop_path


def exists(spark: SparkSession, path: str) -> bool:
    fs, p = filesystem(spark, path)
    return bool(fs.exists(p))


def list_dirs(spark: SparkSession, path: str) -> list[str] | None:
    """Names of the sub-directories of ``path``; None when ``path`` does not exist."""
    fs, p = filesystem(spark, path)
    if not fs.exists(p):
        return None
    return sorted(str(s.getPath().getName()) for s in fs.listStatus(p) if s.isDirectory())


def list_files(spark: SparkSession, path: str) -> list[str]:
    """Names of the files directly in ``path`` (empty when it does not exist)."""
    fs, p = filesystem(spark, path)
    if not fs.exists(p):
        return []
    return sorted(str(s.getPath().getName()) for s in fs.listStatus(p) if s.isFile())


def delete(spark: SparkSession, path: str, recursive: bool = True) -> None:
    fs, p = filesystem(spark, path)
    if fs.exists(p):
        fs.delete(p, recursive)


def rename(spark: SparkSession, src: str, dst: str) -> None:
    fs, s = filesystem(spark, src)
    _, d = filesystem(spark, dst)
    fs.mkdirs(d.getParent())
    if not fs.rename(s, d):
        raise OSError(f"could not move {src} to {dst}")


def write_text(spark: SparkSession | None, path: str, text: str) -> None:
    """Write a small text file (a report), replacing it.

    Local paths use plain file IO, so a report can be written even when the run failed before a
    Spark session existed; anything else (s3://) goes through Hadoop's FileSystem.
    """
    if "://" not in path or path.startswith("file://"):
        local = Path(path.removeprefix("file://"))
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text, encoding="utf-8")
        return
    if spark is None:
        raise RuntimeError(f"no Spark session to write {path} with")
    fs, p = filesystem(spark, path)
    stream = fs.create(p, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
