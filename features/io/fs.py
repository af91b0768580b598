"""Filesystem operations through Hadoop's FileSystem API, so s3://, s3a:// and local paths behave alike.

Spark already carries the right FileSystem for every scheme on the cluster (EMRFS on EMR, S3A
elsewhere); going through it avoids a second S3 client with its own credentials and retries.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def _fs_and_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "filesystem helpers need a classic (non-Connect) SparkSession"
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return hadoop_path.getFileSystem(conf), hadoop_path


def exists(spark: SparkSession, path: str) -> bool:
    fs, p = _fs_and_path(spark, path)
    return bool(fs.exists(p))


def list_dirs(spark: SparkSession, path: str) -> list[str] | None:
    """Names of the sub-directories of ``path``; None when ``path`` does not exist."""
    fs, p = _fs_and_path(spark, path)
    if not fs.exists(p):
        return None
    return sorted(str(s.getPath().getName()) for s in fs.listStatus(p) if s.isDirectory())


def list_files(spark: SparkSession, path: str) -> list[str]:
    """Names of the files directly in ``path`` (empty when it does not exist)."""
    fs, p = _fs_and_path(spark, path)
    if not fs.exists(p):
        return []
    return sorted(str(s.getPath().getName()) for s in fs.listStatus(p) if s.isFile())


def delete(spark: SparkSession, path: str, recursive: bool = True) -> None:
    fs, p = _fs_and_path(spark, path)
    if fs.exists(p):
        fs.delete(p, recursive)


def rename(spark: SparkSession, src: str, dst: str) -> None:
    fs, s = _fs_and_path(spark, src)
    _, d = _fs_and_path(spark, dst)
    fs.mkdirs(d.getParent())
    if not fs.rename(s, d):
        raise OSError(f"could not move {src} to {dst}")


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write a small text file (a run report) to any Hadoop-supported path, replacing it."""
    fs, p = _fs_and_path(spark, path)
    stream = fs.create(p, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
