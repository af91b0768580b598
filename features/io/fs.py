"""Filesystem operations through Hadoop's FileSystem API, so s3://, s3a:// and local paths behave alike.

Spark already carries the right FileSystem for every scheme on the cluster (EMRFS on EMR, S3A
elsewhere); going through it avoids a second S3 client with its own credentials and retries.

A failing Hadoop call (permission denied, a throttled or unreachable store) is raised as
:class:`PathError`: one line with what was attempted, on which path, and the innermost cause,
instead of Py4J's ``An error occurred while calling o46.listStatus``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from features.errors import root_cause


class PathError(OSError):
    """A filesystem call failed: ``cannot <action> <path>: <innermost cause>``."""


@contextlib.contextmanager
def failing_as(action: str, path: str) -> Iterator[None]:
    """Turn a Hadoop error raised inside the block into a :class:`PathError` naming ``path``."""
    try:
        yield
    except Py4JJavaError as exc:
        raise PathError(f"cannot {action} {path}: {cause_at(exc, path)}") from exc


def cause_at(exc: BaseException, path: str) -> str:
    """``exc``'s innermost cause, without the path when it only repeats it.

    Hadoop and java.nio name the path first (``java.nio.file.AccessDeniedException: /x: Permission
    denied``); the line already says which path, so the cause is ``...AccessDeniedException:
    Permission denied``.
    """
    cause = root_cause(exc)
    kind, _, rest = cause.partition(": ")
    said, sep, reason = rest.partition(": ")
    if sep and said and comparable(said) == comparable(path):
        return f"{kind}: {reason}"
    return cause


#: How a denied read or listing reads once it reaches us: local filesystem (java.nio, java.io),
#: HDFS, S3A and EMRFS (HTTP 403), KMS.
_DENIED = re.compile(
    r"AccessDenied|Access Denied|AccessControlException|Permission denied|Status Code: 403|403 Forbidden"
    r"|not authorized to perform",
    re.IGNORECASE,
)


def access_denied(cause: str) -> bool:
    """Whether an error text says the job may not read the path (rather than that it is broken)."""
    return _DENIED.search(cause) is not None


def comparable(path: str) -> str:
    """``file:/x``, ``file:///x``, ``/x/`` and ``s3a://b/x%20y`` spelled one way, for matching."""
    parts = urlsplit(path)
    return unquote(parts.netloc + parts.path).rstrip("/")


def filesystem(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """Hadoop's FileSystem for ``path`` (S3A, EMRFS, local...) and ``path`` as a Hadoop Path."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "filesystem helpers need a classic (non-Connect) SparkSession"
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    with failing_as("open the filesystem of", path):
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        return hadoop_path.getFileSystem(conf), hadoop_path


def exists(spark: SparkSession, path: str) -> bool:
    fs, p = filesystem(spark, path)
    with failing_as("check", path):
        return bool(fs.exists(p))


def list_dirs(spark: SparkSession, path: str) -> list[str] | None:
    """Names of the sub-directories of ``path``; None when ``path`` does not exist."""
    fs, p = filesystem(spark, path)
    with failing_as("list", path):
        if not fs.exists(p):
            return None
        return sorted(str(s.getPath().getName()) for s in fs.listStatus(p) if s.isDirectory())


def list_files(spark: SparkSession, path: str) -> list[str]:
    """Names of the files directly in ``path`` (empty when it does not exist)."""
    fs, p = filesystem(spark, path)
    with failing_as("list", path):
        if not fs.exists(p):
            return []
        return sorted(str(s.getPath().getName()) for s in fs.listStatus(p) if s.isFile())


def data_files(spark: SparkSession, folders: list[str]) -> list[str]:
    """Every non-empty data file under ``folders`` (recursively), skipping what Spark skips.

    Names starting with ``_`` or ``.`` are hidden (``_SUCCESS``, ``.crc``, an in-flight write's
    ``_temporary/``), except partition directories such as ``_x=1``. Zero-byte files hold no
    rows; leaving them out also spares Parquet's footer check, which would call them corrupt.
    A folder may also be a single file.
    """
    found: list[str] = []
    for folder in folders:
        filesystem_, root = filesystem(spark, folder)
        with failing_as("list", folder):
            top = str(filesystem_.makeQualified(root).toString())
            listing = filesystem_.listFiles(root, True)
            while listing.hasNext():
                status = listing.next()
                path = str(status.getPath().toString())
                relative = path[len(top) :].strip("/").split("/") if path.startswith(top) else [path.rsplit("/", 1)[-1]]
                if status.getLen() > 0 and not any(hidden(part) for part in relative):
                    found.append(path)
    return sorted(found)


def hidden(name: str) -> bool:
    """Whether Spark's file listing skips a file or directory of this name."""
    return name.startswith(".") or (name.startswith("_") and "=" not in name) or name.endswith("._COPYING_")


def delete(spark: SparkSession, path: str, recursive: bool = True) -> None:
    fs, p = filesystem(spark, path)
    with failing_as("delete", path):
        if fs.exists(p):
            fs.delete(p, recursive)


def rename(spark: SparkSession, src: str, dst: str) -> None:
    fs, s = filesystem(spark, src)
    _, d = filesystem(spark, dst)
    with failing_as(f"move {src} to", dst):
        fs.mkdirs(d.getParent())
        moved = fs.rename(s, d)
    if not moved:
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
    with failing_as("write", path):
        stream = fs.create(p, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()


def read_text(spark: SparkSession | None, path: str) -> str:
    """Read a small text file (a report) written by :func:`write_text`, from a local path or through Hadoop."""
    if "://" not in path or path.startswith("file://"):
        return Path(path.removeprefix("file://")).read_text(encoding="utf-8")
    if spark is None:
        raise RuntimeError(f"no Spark session to read {path} with")
    fs, p = filesystem(spark, path)
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "filesystem helpers need a classic (non-Connect) SparkSession"
    with failing_as("read", path):
        stream = fs.open(p)
        try:
            return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()
