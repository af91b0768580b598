"""Extract: read a source, enforce its schema, quarantine unusable rows, drop replays.

Every input row ends up in exactly one of three places, and the counts prove it:
``input rows = accepted + quarantined + duplicates``. Quarantined rows keep their raw values and
a reason, so an on-call engineer can see why they were rejected and replay them once fixed.
Bad input never crashes a run and is never dropped silently: a broken line, a drifted field, a
value out of its declared bounds, even a whole unreadable file becomes a quarantined row with a
reason (docs/inputs.md lists them all).

Event logs are read only from the ``dt=YYYY-MM-DD`` partitions that can hold events the snapshot
needs: from the first day of the look-back band to T's day plus the lateness margin (events land
in the partition of the day they arrive, which is never before the day they happened). Event logs
and table extracts share one file reader: each Parquet file is read by its own schema, and an
unreadable file follows the source's corrupt-file policy. A path that cannot be listed or read
for lack of permission always stops the run, with one line naming it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampNTZType, TimestampType

from features.config import SourceConf
from features.constants import CORRUPT_RECORD, FILE_ERROR, INPUT_FILE, QUARANTINE_REASON
from features.definitions import Source
from features.errors import failed_file
from features.io import fs
from features.transform.quarantine import (
    CONFLICTING,
    CONFLICTING_DUPLICATE,
    DUPLICATE,
    EXACT,
    ConflictPolicy,
    duplicate_verdict,
    parsed,
    quarantine_reason,
    version_order,
)

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
#: Conflicting keys shown in the run report, each with the values that differ.
CONFLICT_SAMPLES = 5
#: Longest sample value shown (the run report's quarantine samples are cut alike).
SAMPLE_WIDTH = 120

_FOOTER_THREADS = 8
#: The typed declared columns of a usable row, as one struct (compared to find duplicates).
_VERSION = "_version"
#: Column name -> the function replacing its values by pseudonyms (features.privacy.columns).
Pseudonymisation = Mapping[str, Callable[[Column], Column]]


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
    #: Rows not accepted because another row with their key had other values. Under
    #: ``keep_latest`` these are the losing copies (also counted in ``duplicate_rows``); under
    #: ``quarantine`` every row of such a key (also counted in ``quarantined_rows``).
    conflicting_duplicates: int = 0
    #: A few conflicting keys: ``{"key": ..., "differs": {column: [value per version]}}``, the
    #: versions in winner order (the first is the one ``keep_latest`` keeps), values as text.
    conflict_samples: list[dict[str, Any]] = field(default_factory=list)
    #: The cached frames ``accepted`` and ``quarantined`` are filters of; released with them.
    cached: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        """Drop the cached inputs once every group that needed them is built."""
        self.accepted.unpersist()
        for frame in self.cached:
            frame.unpersist()

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
    on_conflicting_duplicate: ConflictPolicy = "keep_latest",
    pseudonymise: Pseudonymisation | None = None,
) -> Extracted:
    """Read the dt partitions that can hold events in ``[start, end)``, classified and de-duplicated.

    Files are listed here rather than by Spark so that each row knows its file (for the future
    check and for quarantined rows) and an unreadable file can be named and, if the policy says
    so, left out of a second attempt.
    """
    first, last = partitions_for(start, end, conf.lateness_days)
    root = conf.path.rstrip("/")
    with _naming(source):
        names = fs.list_dirs(spark, conf.path)
        if names is None:
            raise InputError(f"input path {conf.path} for source {source.name} does not exist")
        days = _partition_days(source, root, names)
        chosen = sorted(f"{root}/{name}" for name, day in days.items() if first <= day <= last)
        log.info("%s: reading %d of %d dt partitions (%s .. %s)", source.name, len(chosen), len(days), first, last)
        files = fs.data_files(spark, chosen)
    return _read_files(
        spark,
        source,
        files,
        fmt=conf.format,
        on_corrupt_file=on_corrupt_file,
        judge=lambda raw: classify(
            spark,
            source,
            raw,
            chosen,
            future_tolerance=future_tolerance,
            on_conflicting_duplicate=on_conflicting_duplicate,
            pseudonymise=pseudonymise,
        ),
    )


def read_table(
    spark: SparkSession,
    conf: SourceConf,
    source: Source,
    *,
    on_conflicting_duplicate: ConflictPolicy = "keep_latest",
    pseudonymise: Pseudonymisation | None = None,
) -> Extracted:
    """Read a table extract (an RDS snapshot export: Parquet per table), classified and de-duplicated.

    The same reader as event logs, over every data file under ``conf.path``, with the corrupt-file
    policy of ``conf``; unlike event logs, every Parquet file must hold every declared column.
    """
    with _naming(source):
        if not fs.exists(spark, conf.path):
            raise InputError(f"input path {conf.path} for source {source.name} does not exist")
        files = fs.data_files(spark, [conf.path])
    return _read_files(
        spark,
        source,
        files,
        fmt=conf.format,
        on_corrupt_file=conf.on_corrupt_file,
        complete=True,
        judge=lambda raw: classify(
            spark,
            source,
            raw,
            [conf.path],
            on_conflicting_duplicate=on_conflicting_duplicate,
            pseudonymise=pseudonymise,
        ),
    )


@contextlib.contextmanager
def _naming(source: Source) -> Iterator[None]:
    """A filesystem failure as the source's one-line :class:`InputError` (``orders: cannot list ...``)."""
    try:
        yield
    except fs.PathError as exc:
        raise InputError(f"{source.name}: {exc}") from exc


def _partition_days(source: Source, root: str, names: list[str]) -> dict[str, date]:
    """The day of each ``dt=YYYY-MM-DD`` directory under ``root``.

    A ``dt=`` directory that names no real date (``dt=2026-02-30``, ``dt=2026-10-5``) fails the
    run: its events would otherwise never be read, and nothing would say so. Other directories
    are not partitions; they are ignored with a warning, hidden ones (``_temporary``) silently.
    """
    days: dict[str, date] = {}
    ignored: list[str] = []
    for name in names:
        if fs.hidden(name):
            continue
        if not name.startswith("dt="):
            ignored.append(name)
            continue
        day = None
        if _DT_DIR.match(name):
            with contextlib.suppress(ValueError):
                day = date.fromisoformat(name.removeprefix("dt="))
        if day is None:
            raise InputError(
                f"{source.name}: {root}/{name} is not a dt=YYYY-MM-DD partition of a real date; rename or remove it "
                "(its events would never be read)"
            )
        days[name] = day
    if ignored:
        log.warning(
            "%s: ignoring %d directories under %s that are not dt= partitions: %s",
            source.name,
            len(ignored),
            root,
            ", ".join(ignored[:5]),
        )
    return days


def _read_files(
    spark: SparkSession,
    source: Source,
    files: list[str],
    *,
    fmt: Literal["json", "parquet"],
    on_corrupt_file: CorruptFilePolicy,
    judge: Callable[[DataFrame], Extracted],
    complete: bool = False,
) -> Extracted:
    """Read ``files`` as raw text rows and ``judge`` them, applying the corrupt-file policy.

    Parquet footers are read first, so a file without one is known before Spark runs; a file that
    fails further on is found from Spark's error and the read is retried without it.
    ``complete`` requires every declared column in every Parquet file (table extracts).
    """
    unreadable: dict[str, str] = {}
    schemas: dict[str, str] = {}
    if fmt == "parquet":
        for path, (schema, error) in _parquet_schemas(spark, files).items():
            if schema is None:
                _give_up_on(source, path, error, on_corrupt_file, unreadable)
            else:
                schemas[path] = schema

    def read(paths: list[str]) -> DataFrame:
        if fmt == "json":
            return _read_json(spark, source, paths)
        return _read_parquet(spark, source, {f: schemas[f] for f in paths}, complete=complete)

    while True:
        readable = [f for f in files if f not in unreadable]
        raw = read(readable)
        if unreadable:
            raw = raw.unionByName(_unreadable_rows(spark, source, unreadable))
        try:
            return judge(raw)
        except (Py4JJavaError, PySparkException) as exc:
            failed = _failed_file(exc, readable) or _unnamed_failed_file(spark, read, readable)
            if failed is None:
                raise
            _give_up_on(source, failed, fs.cause_at(exc, failed), on_corrupt_file, unreadable)


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
            return None, fs.cause_at(exc, path)

    with ThreadPoolExecutor(max_workers=_FOOTER_THREADS) as pool:
        return dict(zip(files, pool.map(footer, files), strict=True))


def _read_parquet(
    spark: SparkSession, source: Source, schemas: Mapping[str, str], *, complete: bool = False
) -> DataFrame:
    """Parquet files read in groups of identical schema, each conformed to the declared columns.

    Reading all files as one would make Spark apply one file's schema to every file and fail
    on the first that differs; per group, a column the file lacks reads as null (or, when
    ``complete``, fails the run naming the file) and one of another type is rendered as text, so
    drift is judged by the same rules as JSON.
    """
    groups: dict[str, list[str]] = {}
    for path, schema in schemas.items():
        groups.setdefault(schema, []).append(path)
    if len(groups) > 1:
        log.warning("%s: %d different Parquet schemas among %d files", source.name, len(groups), len(schemas))
    raw = _empty_raw(spark, source)
    for paths in groups.values():
        group = spark.read.parquet(*paths)
        if complete:
            _require_columns(group, source, paths)
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
    """Apply the corrupt-file policy to ``path``: raise naming it, or record it as skipped.

    A file denied to the job is not corrupt: its data is fine and the fix is a permission, so it
    fails the run whatever the policy (skipping it would quietly drop a whole file of rows).
    """
    if fs.access_denied(error):
        raise InputError(f"{source.name}: cannot read {path}: {error}")
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
    named = failed_file(exc)
    if named is None:
        return None
    wanted = fs.comparable(named)
    return next((c for c in candidates if fs.comparable(c) == wanted), None)


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


def _require_columns(raw: DataFrame, source: Source, paths: list[str]) -> None:
    missing = [c for c in source.columns if c not in raw.columns]
    if missing:
        more = f" (and {len(paths) - 1} more file(s) of that schema)" if len(paths) > 1 else ""
        raise InputError(
            f"{source.name}: {paths[0]}{more} lacks column(s) {', '.join(missing)}; found {', '.join(raw.columns)}. "
            "A table extract must hold every declared column"
        )


def classify(
    spark: SparkSession,
    source: Source,
    raw: DataFrame,
    paths: list[str],
    *,
    future_tolerance: timedelta | None = None,
    on_conflicting_duplicate: ConflictPolicy = "keep_latest",
    pseudonymise: Pseudonymisation | None = None,
) -> Extracted:
    """Give every row of ``raw`` a verdict, count the verdicts and de-duplicate what is usable.

    The verdict is :func:`features.transform.quarantine.quarantine_reason`; accepted rows carry
    their values as :func:`~features.transform.quarantine.parsed` types them. Usable rows that
    share a key are judged by :func:`~features.transform.quarantine.duplicate_verdict` under
    ``on_conflicting_duplicate``.

    ``raw`` holds the declared columns (as text, or as a reader typed them) and
    ``_corrupt_record``; event logs add ``_input_file`` and ``_file_error``, which enable the
    corrupt-file and future rules (``future_tolerance`` None disables the latter).

    ``pseudonymise`` replaces columns of the usable rows (string columns, judged raw) by their
    pseudonyms before anything is cached, de-duplicated or counted; quarantined rows keep their raw
    values for replay (docs/privacy.md).
    """
    classified = raw.withColumn(
        QUARANTINE_REASON, quarantine_reason(source, raw.schema, future_tolerance=future_tolerance)
    )
    if pseudonymise:
        usable_row = F.col(QUARANTINE_REASON).isNull()
        classified = classified.withColumns(
            {c: F.when(usable_row, pseudonym(F.col(c))).otherwise(F.col(c)) for c, pseudonym in pseudonymise.items()}
        )
    classified = classified.persist()
    cached = [classified]
    try:
        counts = {
            row[QUARANTINE_REASON]: int(row["count"]) for row in classified.groupBy(QUARANTINE_REASON).count().collect()
        }
        version = F.struct(
            *(parsed(c, t, raw.schema).alias(c) if t != "string" else F.col(c) for c, t in source.columns.items())
        )
        # Raw values are kept only where conflicting rows may be quarantined with them.
        keep_raw = raw.columns if on_conflicting_duplicate == "quarantine" else []
        usable = classified.where(F.col(QUARANTINE_REASON).isNull()).select(*keep_raw, version.alias(_VERSION))
        judged = duplicate_verdict(usable, source=source, version=_VERSION, policy=on_conflicting_duplicate).persist()
        cached.append(judged)
        verdicts = {row[DUPLICATE]: int(row["count"]) for row in judged.groupBy(DUPLICATE).count().collect()}
        conflicting = verdicts.get(CONFLICTING, 0) + verdicts.get(CONFLICTING_DUPLICATE, 0)
        samples = _conflict_samples(judged, source) if conflicting else []
    except Exception:
        for frame in cached:
            frame.unpersist()
        raise
    input_rows = sum(counts.values())
    counts.pop(None, None)
    quarantined = classified.where(F.col(QUARANTINE_REASON).isNotNull())
    if verdicts.get(CONFLICTING_DUPLICATE):
        counts[CONFLICTING_DUPLICATE] = verdicts[CONFLICTING_DUPLICATE]
        quarantined = quarantined.unionByName(
            judged.where(F.col(DUPLICATE) == CONFLICTING_DUPLICATE).select(
                *raw.columns, F.lit(CONFLICTING_DUPLICATE).alias(QUARANTINE_REASON)
            )
        )
    result = Extracted(
        source=source.name,
        accepted=judged.where(F.col(DUPLICATE).isNull()).select(f"{_VERSION}.*"),
        quarantined=quarantined,
        input_paths=paths,
        input_rows=input_rows,
        accepted_rows=verdicts.get(None, 0),
        duplicate_rows=verdicts.get(EXACT, 0) + verdicts.get(CONFLICTING, 0),
        quarantined_rows=sum(counts.values()),
        quarantine_reasons=dict(sorted(counts.items())),
        conflicting_duplicates=conflicting,
        conflict_samples=samples,
        cached=cached,
    )
    result.check_balance()
    return result


def _conflict_samples(judged: DataFrame, source: Source) -> list[dict[str, Any]]:
    """The first few conflicting keys (in key order) with the values that differ between their versions.

    Two small jobs over the cached rows, run only when there are conflicts.
    """
    key = F.col(f"{_VERSION}.{source.key}").cast("string")
    conflicted = judged.where(F.col(DUPLICATE).isin(CONFLICTING, CONFLICTING_DUPLICATE) & key.isNotNull())
    keys = [row[0] for row in conflicted.select(key).distinct().orderBy(key).limit(CONFLICT_SAMPLES).collect()]
    ranked = Window.partitionBy(key).orderBy(*version_order(source, _VERSION))
    rows = (
        judged.where(key.isin(keys))
        .select(_VERSION)
        .distinct()
        .select(
            key.alias("key"),
            F.row_number().over(ranked).alias("n"),
            *(F.col(f"{_VERSION}.{c}").cast("string").alias(c) for c in source.columns),
        )
        .collect()
    )
    samples = []
    for wanted in keys:
        versions = sorted((r for r in rows if r["key"] == wanted), key=lambda r: r["n"])
        differs = {c: [_cut(v[c]) for v in versions] for c in source.columns if len({v[c] for v in versions}) > 1}
        samples.append({"key": wanted, "differs": differs})
    return samples


def _cut(text: str | None) -> str | None:
    return text if text is None or len(text) <= SAMPLE_WIDTH else f"{text[: SAMPLE_WIDTH - 3]}..."
