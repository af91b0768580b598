"""Extract: read a source, enforce its schema, quarantine unusable rows, drop replays.

Every input row ends up in exactly one of three places, and the counts prove it:
``input rows = accepted + quarantined + duplicates``. Quarantined rows keep their raw values and
a reason, so an on-call engineer can see why they were rejected and replay them once fixed.
Bad input never crashes a run and is never dropped silently: a broken line, a drifted field, a
value out of its declared bounds, even a whole unreadable file becomes a quarantined row with a
reason (docs/inputs.md lists them all).

Event logs are read only from the ``dt=YYYY-MM-DD`` partitions that can hold events the snapshot
needs: from the first day of the look-back band to T's day plus the lateness margin (events land
in the partition of the day they arrive, which is never before the day they happened).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from urllib.parse import unquote, urlsplit

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampNTZType, TimestampType

from features.config import SourceConf
from features.constants import CORRUPT_RECORD, FILE_ERROR, INPUT_FILE, QUARANTINE_REASON
from features.definitions import Source
from features.errors import root_cause
from features.io import fs
from features.transform.quarantine import parsed, quarantine_reason

log = logging.getLogger(__name__)

_DT_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")

#: What to do with a file Spark cannot read (a truncated gzip, a Parquet file without footer):
#: ``fail`` stops the run naming the file; ``quarantine`` skips it and records it as one
#: quarantined input (reason ``corrupt file``) so it shows in the counts and the report.
CorruptFilePolicy = Literal["fail", "quarantine"]
#: How far past the end of its ``dt`` day an event's own time may lie (producer clock skew)
#: before it is quarantined as being in the future.
DEFAULT_FUTURE_TOLERANCE = timedelta(hours=1)
#: Each unreadable file costs one failed Spark job to find (on Spark 3.5 also its halvings); past
#: this many the input is treated as broken as a whole rather than skipped file by file.
MAX_CORRUPT_FILES = 20

_FAILED_FILE = re.compile(r"Encountered error while reading file (\S+?)\.?(?:\s|$)")
_FOOTER_THREADS = 8


class InputError(RuntimeError):
    """An input is missing or unreadable; the message names the path."""


@dataclass
class Extracted:
    """The outcome of reading one source for one snapshot."""

    source: str
    accepted: DataFrame
    quarantined: DataFrame
    input_paths: list[str]
    input_rows: int = 0
    accepted_rows: int = 0
    duplicate_rows: int = 0
    quarantined_rows: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    #: The cached classification ``quarantined`` is a filter of; released with ``accepted``.
    classified: DataFrame | None = None

    def release(self) -> None:
        """Drop the cached inputs once every group that needed them is built."""
        self.accepted.unpersist()
        if self.classified is not None:
            self.classified.unpersist()

    def check_balance(self) -> None:
        total = self.accepted_rows + self.quarantined_rows + self.duplicate_rows
        if total != self.input_rows:
            raise AssertionError(
                f"{self.source}: {self.input_rows} rows read but {self.accepted_rows} accepted + "
                f"{self.quarantined_rows} quarantined + {self.duplicate_rows} duplicates = {total}"
            )


def partitions_for(start: datetime, end: datetime, lateness_days: int) -> tuple[date, date]:
    """The inclusive range of ``dt`` days that can hold events with ``start <= time < end``."""
    last_instant = end - timedelta(microseconds=1)
    return start.date(), last_instant.date() + timedelta(days=lateness_days)


def read_event_log(
    spark: SparkSession,
    conf: SourceConf,
    source: Source,
    *,
    start: datetime,
    end: datetime,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    on_corrupt_file: CorruptFilePolicy = "fail",
) -> Extracted:
    """Read the dt partitions that can hold events in ``[start, end)``, classified and de-duplicated.

    Files are listed here rather than by Spark so that each row knows its file (for the future
    check and for quarantined rows) and an unreadable file can be named and, if the policy says
    so, left out of a second attempt.
    """
    first, last = partitions_for(start, end, conf.lateness_days)
    days = fs.list_dirs(spark, conf.path)
    if days is None:
        raise InputError(f"input path {conf.path} for source {source.name} does not exist")
    chosen = sorted(
        f"{conf.path.rstrip('/')}/{name}"
        for name in days
        if (m := _DT_DIR.match(name)) and first <= date.fromisoformat(m.group(1)) <= last
    )
    log.info("%s: reading %d of %d dt partitions (%s .. %s)", source.name, len(chosen), len(days), first, last)
    files = _data_files(spark, chosen)
    unreadable: dict[str, str] = {}
    schemas: dict[str, str] = {}
    if conf.format == "parquet":
        for path, (schema, error) in _parquet_schemas(spark, files).items():
            if schema is None:
                _give_up_on(source, path, error, on_corrupt_file, unreadable)
            else:
                schemas[path] = schema

    def read(paths: list[str]) -> DataFrame:
        if conf.format == "json":
            return _read_json(spark, source, paths)
        return _read_parquet(spark, source, {f: schemas[f] for f in paths})

    while True:
        readable = [f for f in files if f not in unreadable]
        raw = read(readable)
        if unreadable:
            raw = raw.unionByName(_unreadable_rows(spark, source, unreadable))
        try:
            return classify(spark, source, raw, chosen, future_tolerance=future_tolerance)
        except (Py4JJavaError, PySparkException) as exc:
            failed = _failed_file(exc, readable) or _unnamed_failed_file(spark, read, readable)
            if failed is None:
                raise
            _give_up_on(source, failed, root_cause(exc), on_corrupt_file, unreadable)


def _data_files(spark: SparkSession, dirs: list[str]) -> list[str]:
    """Every non-empty data file under ``dirs``, skipping what Spark skips (``_*``, ``.*``).

    Zero-byte files hold no rows; leaving them out also spares Parquet's footer check, which
    would call an empty file corrupt. ``_temporary/`` trees of in-flight writes are skipped.
    """
    found: list[str] = []
    for folder in dirs:
        filesystem, root = fs.filesystem(spark, folder)
        top = str(filesystem.makeQualified(root).toString())
        listing = filesystem.listFiles(root, True)
        while listing.hasNext():
            status = listing.next()
            path = str(status.getPath().toString())
            relative = path[len(top) :].strip("/").split("/") if path.startswith(top) else [path.rsplit("/", 1)[-1]]
            if status.getLen() > 0 and not any(_hidden(part) for part in relative):
                found.append(path)
    return sorted(found)


def _hidden(name: str) -> bool:
    return name.startswith(".") or (name.startswith("_") and "=" not in name) or name.endswith("._COPYING_")


def _raw_columns(source: Source) -> list[str]:
    return [*source.columns, CORRUPT_RECORD, INPUT_FILE, FILE_ERROR]


def _empty_raw(spark: SparkSession, source: Source) -> DataFrame:
    return spark.createDataFrame([], StructType([StructField(c, StringType()) for c in _raw_columns(source)]))


def _read_json(spark: SparkSession, source: Source, files: list[str]) -> DataFrame:
    """JSON lines with every declared field read as text, so a drifted type cannot fail the read.

    Spark renders a non-string token in a text field as its JSON (``123``, ``["C1"]``,
    ``{"a": 1}``); the rules then judge that text. Unknown fields are not in the schema and are
    ignored. A line Spark cannot parse (broken JSON, invalid UTF-8, not an object) keeps its raw
    text in ``_corrupt_record``.
    """
    if not files:
        return _empty_raw(spark, source)
    schema = StructType([StructField(c, StringType()) for c in (*source.columns, CORRUPT_RECORD)])
    raw = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .json(files)
    )
    return raw.select(
        *source.columns,
        CORRUPT_RECORD,
        F.col("_metadata.file_path").alias(INPUT_FILE),
        F.lit(None).cast("string").alias(FILE_ERROR),
    )


def _parquet_schemas(spark: SparkSession, files: list[str]) -> dict[str, tuple[str | None, str]]:
    """Each Parquet file's schema as text (or None and the error when its footer is unreadable).

    Footers are read on the driver, a few at a time: one small ranged read per file, far cheaper
    than the read itself, and the only way to learn per file what Spark would infer from one.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "event logs need a classic (non-Connect) SparkSession"
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()

    def footer(path: str) -> tuple[str | None, str]:
        try:
            stream = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(
                jvm.org.apache.hadoop.fs.Path(path), hadoop_conf
            )
            reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(stream)
            try:
                return str(reader.getFileMetaData().getSchema().toString()), ""
            finally:
                reader.close()
        except Py4JJavaError as exc:
            return None, root_cause(exc)

    with ThreadPoolExecutor(max_workers=_FOOTER_THREADS) as pool:
        return dict(zip(files, pool.map(footer, files), strict=True))


def _read_parquet(spark: SparkSession, source: Source, schemas: Mapping[str, str]) -> DataFrame:
    """Parquet files read in groups of identical schema, each conformed to the declared columns.

    Reading all files as one would make Spark apply one file's schema to every file and fail
    on the first that differs; per group, a column the file lacks reads as null and one of
    another type is rendered as text, so drift is judged by the same rules as JSON.
    """
    groups: dict[str, list[str]] = {}
    for path, schema in schemas.items():
        groups.setdefault(schema, []).append(path)
    if len(groups) > 1:
        log.warning("%s: %d different Parquet schemas among %d files", source.name, len(groups), len(schemas))
    raw = _empty_raw(spark, source)
    for paths in groups.values():
        group = spark.read.parquet(*paths)
        raw = raw.unionByName(
            group.select(
                *(_as_text(group, column) for column in source.columns),
                F.lit(None).cast("string").alias(CORRUPT_RECORD),
                F.col("_metadata.file_path").alias(INPUT_FILE),
                F.lit(None).cast("string").alias(FILE_ERROR),
            )
        )
    return raw


def _as_text(frame: DataFrame, column: str) -> Column:
    """A Parquet column as the text the rules judge; timestamps as ISO-8601 in UTC with ``Z``."""
    if column not in frame.columns:
        return F.lit(None).cast("string").alias(column)
    dtype = frame.schema[column].dataType
    if isinstance(dtype, StringType):
        return F.col(column)
    if isinstance(dtype, TimestampType | TimestampNTZType):
        # Wall-clock NTZ values are read as UTC: the session time zone is UTC (features.session).
        return F.date_format(F.col(column).cast("timestamp"), "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX").alias(column)
    return F.col(column).cast("string").alias(column)


def _unreadable_rows(spark: SparkSession, source: Source, unreadable: Mapping[str, str]) -> DataFrame:
    """One row per skipped file: its path and error, so it is counted and shown as quarantined."""
    columns = _raw_columns(source)
    rows = [
        tuple(path if c == INPUT_FILE else error if c == FILE_ERROR else None for c in columns)
        for path, error in sorted(unreadable.items())
    ]
    return spark.createDataFrame(rows, StructType([StructField(c, StringType()) for c in columns]))


def _give_up_on(source: Source, path: str, error: str, policy: CorruptFilePolicy, unreadable: dict[str, str]) -> None:
    """Apply the corrupt-file policy to ``path``: raise naming it, or record it as skipped."""
    if policy == "fail":
        raise InputError(
            f"{source.name}: cannot read {path}: {error} (set sources.{source.name}.on_corrupt_file: quarantine "
            "to skip such files and record them as quarantined)"
        )
    unreadable[path] = error
    log.warning("%s: skipping unreadable file %s: %s", source.name, path, error)
    if len(unreadable) > MAX_CORRUPT_FILES:
        shown = ", ".join(sorted(unreadable)[:3])
        raise InputError(f"{source.name}: more than {MAX_CORRUPT_FILES} unreadable files (e.g. {shown}); giving up")


def _failed_file(exc: BaseException, candidates: list[str]) -> str | None:
    """The candidate file Spark's error names (``Encountered error while reading file ...``)."""
    match = _FAILED_FILE.search(str(exc))
    if match is None:
        return None
    wanted = _comparable(match.group(1))
    return next((c for c in candidates if _comparable(c) == wanted), None)


def _unnamed_failed_file(spark: SparkSession, read: Callable[[list[str]], DataFrame], files: list[str]) -> str | None:
    """On Spark 3.5, the file of ``files`` that ``read`` cannot read, found by halving; else None.

    Spark 4 names the file in every read error. Spark 3.5 names it only when the file fails on
    its first record, not when, e.g., a gzip stream ends early further on (docs/platforms.md), so
    the failed file is looked for by reading halves: 1 + log2(len(files)) read-only jobs, and
    only when a run has already failed. None if every file reads (the failure was elsewhere).
    """
    if int(spark.version.split(".")[0]) >= 4 or _reads(read, files):
        return None
    while len(files) > 1:
        half = len(files) // 2
        files = files[:half] if not _reads(read, files[:half]) else files[half:]
    return files[0]


def _reads(read: Callable[[list[str]], DataFrame], files: list[str]) -> bool:
    """Whether every row and column of ``files`` can be read (the ``noop`` sink writes nothing)."""
    try:
        read(files).write.format("noop").mode("overwrite").save()
    except (Py4JJavaError, PySparkException):
        return False
    return True


def _comparable(path: str) -> str:
    """``file:/x``, ``file:///x`` and ``s3a://b/x%20y`` spelled one way, for matching."""
    parts = urlsplit(path)
    return unquote(parts.netloc + parts.path)


def read_table(spark: SparkSession, conf: SourceConf, source: Source) -> Extracted:
    """Read a table extract (an RDS snapshot export: Parquet per table), classified and de-duplicated."""
    if fs.list_dirs(spark, conf.path) is None and not fs.exists(spark, conf.path):
        raise InputError(f"input path {conf.path} for source {source.name} does not exist")
    reader = spark.read.option("recursiveFileLookup", "true")
    raw = reader.json(conf.path) if conf.format == "json" else reader.parquet(conf.path)
    _require_columns(raw, source, conf.path)
    raw = raw.select(*(F.col(c) for c in source.columns), F.lit(None).cast("string").alias(CORRUPT_RECORD))
    return classify(spark, source, raw, [conf.path])


def _require_columns(raw: DataFrame, source: Source, path: str) -> None:
    missing = [c for c in source.columns if c not in raw.columns]
    if missing:
        raise InputError(
            f"{path} (source {source.name}) lacks column(s) {', '.join(missing)}; found {', '.join(raw.columns)}"
        )


def classify(
    spark: SparkSession,
    source: Source,
    raw: DataFrame,
    paths: list[str],
    *,
    future_tolerance: timedelta | None = None,
) -> Extracted:
    """Give every row of ``raw`` a verdict, count the verdicts and de-duplicate what is usable.

    The verdict is :func:`features.transform.quarantine.quarantine_reason`; accepted rows carry
    their values as :func:`~features.transform.quarantine.parsed` types them.

    ``raw`` holds the declared columns (as text, or as a reader typed them) and
    ``_corrupt_record``; event logs add ``_input_file`` and ``_file_error``, which enable the
    corrupt-file and future rules (``future_tolerance`` None disables the latter).
    """
    classified = raw.withColumn(
        QUARANTINE_REASON, quarantine_reason(source, raw.schema, future_tolerance=future_tolerance)
    ).persist()
    try:
        counts = {
            row[QUARANTINE_REASON]: int(row["count"]) for row in classified.groupBy(QUARANTINE_REASON).count().collect()
        }
    except Exception:
        classified.unpersist()
        raise
    usable = classified.where(F.col(QUARANTINE_REASON).isNull()).select(
        *(parsed(c, t, raw.schema).alias(c) if t != "string" else F.col(c) for c, t in source.columns.items())
    )
    accepted = usable.dropDuplicates([source.key]).persist()
    accepted_rows = accepted.count()
    usable_rows = counts.pop(None, 0)
    quarantined = classified.where(F.col(QUARANTINE_REASON).isNotNull())
    result = Extracted(
        source=source.name,
        accepted=accepted,
        quarantined=quarantined,
        input_paths=paths,
        input_rows=usable_rows + sum(counts.values()),
        accepted_rows=accepted_rows,
        duplicate_rows=usable_rows - accepted_rows,
        quarantined_rows=sum(counts.values()),
        quarantine_reasons=dict(sorted(counts.items())),
        classified=classified,
    )
    result.check_balance()
    return result
