"""Push a feature snapshot to the SageMaker online store from the executors.

Steps: keep the latest record per entity (max ``event_time`` per join key; a snapshot normally has
one already), hash-partition by the join key, then ``foreachPartition``: each task builds one boto3
client and one :class:`~features.online.writer.Writer` (bounded concurrency, retries with
full-jitter backoff, AIMD adaptive rate, dead letters; see ``writer.py``) and streams its rows
through it.

Partition count. ``PushSettings.partitions`` when set; otherwise the cluster's total executor cores
(``SparkContext.defaultParallelism``): one push task per core means every core pushes at once in a
single wave, and the throughput comes from the ``max_in_flight`` concurrent requests *inside* each
task, not from more tasks. More partitions than cores only add client start-ups and waves; fewer
leave cores idle. Counting the records first to size partitions would cost a second pass over the
snapshot, so it is not done. With dynamic allocation, defaultParallelism reflects the executors
registered when the push starts; set ``partitions`` to size for a known fleet. The service sees at
most ``partitions * max_in_flight`` requests in flight.

Why foreachPartition and nothing collected. The records never travel to the driver: each executor
sends what it holds, so the push scales with the cluster and the driver's memory does not bound
the snapshot size. Only counters come back, through one accumulator. Spark applies an action's
accumulator updates once per *successful* task, so a task attempt that dies mid-partition (executor
lost, OOM) contributes nothing, and its retry re-sends the whole partition: PutRecord with the same
EventTime is an idempotent upsert, and the retry's dead-letter file replaces the failed attempt's.
Hence ``records == written + dead_lettered`` holds after retries too.

Failure policy. Dead-lettered records are counted; if there are more than
``dead_letter_tolerance`` the push raises :class:`PushError` (one line, with the main reasons and
where the dead letters are), carrying the :class:`PushResult` for the run report. Errors no record
can get past (group missing, access denied, no credentials, endpoint unreachable) stop the push
with a PushError at once rather than dead-lettering a whole snapshot.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pyspark import TaskContext
from pyspark.accumulators import AccumulatorParam
from pyspark.sql import Column, DataFrame, Row, Window
from pyspark.sql import functions as F

from features.constants import EVENT_TIME
from features.definitions import FeatureGroup, FeatureType
from features.online import client as clients
from features.online.records import RecordError, record_types, to_record
from features.online.writer import (
    Counts,
    DeadLetterWriter,
    FatalPushError,
    Item,
    Rejected,
    Writer,
    dead_letter_dir,
)

log = logging.getLogger(__name__)

WriteApi = Literal["put_record", "batch_write_record"]
ClientFactory = Callable[["PushSettings"], Any]

#: Spark SQL types accepted for each feature type (checked on the driver before anything is sent).
_ACCEPTED_SPARK_TYPES: dict[FeatureType, tuple[str, ...]] = {
    "Integral": ("tinyint", "smallint", "int", "bigint", "decimal(*,0)"),
    "Fractional": ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal"),
    "String": ("string",),
}


@dataclass(frozen=True, kw_only=True)
class PushSettings:
    """How to reach the online store and how hard to push.

    ``max_in_flight`` requests run concurrently per partition; ``max_attempts`` is the budget per
    record (or batch entry) including the first attempt; backoff before retry n is uniform in
    ``[0, min(max_backoff_ms, base_backoff_ms * 2**(n-1))]``. ``partitions=None`` uses one
    partition per executor core (see the module docstring). ``dead_letter_root`` is a local
    directory (local mode) or ``s3://bucket/prefix`` (a cluster). Up to ``dead_letter_tolerance``
    dead letters do not fail the push.
    """

    endpoint_url: str | None = None
    region: str = "us-east-1"
    write_api: WriteApi = "batch_write_record"
    max_in_flight: int = 16
    max_attempts: int = 8
    base_backoff_ms: float = 50.0
    max_backoff_ms: float = 5_000.0
    partitions: int | None = None
    dead_letter_root: str
    dead_letter_tolerance: int = 0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.write_api not in ("put_record", "batch_write_record"):
            raise ValueError(f"write_api must be put_record or batch_write_record, got {self.write_api!r}")
        for name in ("max_in_flight", "max_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.partitions is not None and self.partitions < 1:
            raise ValueError(
                f"partitions must be at least 1 (or None for one per executor core), got {self.partitions}"
            )
        if not 0 <= self.base_backoff_ms <= self.max_backoff_ms:
            raise ValueError("need 0 <= base_backoff_ms <= max_backoff_ms")
        if self.dead_letter_tolerance < 0:
            raise ValueError(f"dead_letter_tolerance must be >= 0, got {self.dead_letter_tolerance}")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("connect_timeout_s and read_timeout_s must be positive")
        if not self.dead_letter_root:
            raise ValueError("dead_letter_root is required (a local directory or s3://bucket/prefix)")


@dataclass(frozen=True)
class PushResult:
    """What a push did; ``records == written + dead_lettered``.

    ``retried`` counts extra attempts, ``throttled`` throttling answers, ``dead_letter_reasons``
    dead letters by error code. ``dead_letter_path`` is set when anything was dead-lettered.
    """

    records: int
    written: int
    retried: int
    throttled: int
    dead_lettered: int
    seconds: float
    dead_letter_path: str | None
    partitions: int
    dead_letter_reasons: dict[str, int]


class PushError(RuntimeError):
    """The push failed (too many dead letters, or a fatal error); ``result`` has the counts if known."""

    def __init__(self, message: str, result: PushResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def default_client_factory(settings: PushSettings) -> Any:
    """The production client: default credential chain, botocore retries off, pool = max_in_flight."""
    return clients.runtime_client(
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        max_pool_connections=settings.max_in_flight,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )


def result_from(counts: Counts, *, seconds: float, dead_letter_path: str | None, partitions: int) -> PushResult:
    """Freeze a writer's counts into a PushResult."""
    return PushResult(
        records=counts.records,
        written=counts.written,
        retried=counts.retried,
        throttled=counts.throttled,
        dead_lettered=counts.dead_lettered,
        seconds=round(seconds, 3),
        dead_letter_path=dead_letter_path if counts.dead_lettered else None,
        partitions=partitions,
        dead_letter_reasons=dict(counts.reasons),
    )


def check_tolerance(what: str, counts: Counts, result: PushResult, tolerance: int) -> None:
    """Raise PushError when more than ``tolerance`` records were dead-lettered."""
    if counts.dead_lettered > tolerance:
        raise PushError(
            f"{what} dead-lettered {counts.dead_lettered} of {counts.records} records (tolerance {tolerance}): "
            f"{counts.summary()}; dead letters in {result.dead_letter_path}",
            result,
        )


def _spark_type_allowed(dtype: FeatureType, simple_string: str) -> bool:
    for accepted in _ACCEPTED_SPARK_TYPES[dtype]:
        if accepted == "decimal(*,0)":
            if re.fullmatch(r"decimal\(\d+,0\)", simple_string):
                return True
        elif simple_string == accepted or simple_string.startswith(f"{accepted}("):
            return True
    return False


def check_columns(df: DataFrame, group: FeatureGroup) -> dict[str, FeatureType]:
    """Fail on the driver, before any request, if ``df`` cannot be the group's records.

    Returns the feature type of every column. Missing features are allowed (sent as absent);
    unknown columns, a missing join key or event time, or incompatible column types are errors.
    """
    types = record_types(group)
    present = {field.name: field.dataType.simpleString() for field in df.schema.fields}
    problems = []
    unknown = sorted(set(present) - set(types))
    if unknown:
        problems.append(f"columns not defined in feature group {group.name}: {', '.join(unknown)}")
    for required in (group.entity.join_key, EVENT_TIME):
        if required not in present:
            problems.append(f"missing column {required}")
    if present.get(EVENT_TIME) not in (None, "string", "timestamp"):
        problems.append(f"{EVENT_TIME} is {present[EVENT_TIME]}; use a yyyy-MM-ddTHH:mm:ssZ string")
    for name, simple in present.items():
        if name in types and name != EVENT_TIME and not _spark_type_allowed(types[name], simple):
            problems.append(f"{name} is {simple}, which cannot hold a {types[name]} feature")
    if problems:
        raise ValueError(f"cannot push to {group.name}: " + "; ".join(problems))
    return {name: types[name] for name in present}


def latest_per_entity(df: DataFrame, *, join_key: str, partitions: int) -> DataFrame:
    """One record per entity, the one with the latest event time, hash-partitioned by the join key.

    Event times are ``yyyy-MM-ddTHH:mm:ssZ`` strings, whose text order is time order. The window
    reuses the repartition's distribution, so this costs one shuffle. Ties on event time are
    broken by the other columns so a retried task picks the same row.
    """
    others = [F.col(c).desc_nulls_last() for c in df.columns if c not in (join_key, EVENT_TIME)]
    rank = F.row_number().over(Window.partitionBy(join_key).orderBy(F.col(EVENT_TIME).desc(), *others))
    return df.repartition(partitions, join_key).withColumn("_rank", rank).where("_rank = 1").drop("_rank")


class _CountsParam(AccumulatorParam):  # type: ignore[misc]
    """Adds up :class:`Counts` from the tasks (one accumulator instead of one per counter)."""

    def zero(self, value: Counts) -> Counts:
        return Counts()

    def addInPlace(self, value1: Counts, value2: Counts) -> Counts:  # noqa: N802 (Spark's name)
        return value1.add(value2)


def utc_event_time(column: Column, session_time_zone: str | None) -> Column:
    """A timestamp column as ``yyyy-MM-ddTHH:mm:ssZ`` in UTC, whatever the session time zone."""
    shifted = F.to_utc_timestamp(column, session_time_zone or "UTC")
    return F.date_format(shifted, "yyyy-MM-dd'T'HH:mm:ss'Z'")


class _PartitionPusher:
    """The function run by ``foreachPartition``: pickled to the executors with its settings."""

    def __init__(
        self,
        *,
        group: str,
        join_key: str,
        types: dict[str, FeatureType],
        settings: PushSettings,
        run_id: str,
        client_factory: ClientFactory,
        accumulator: Any,
    ) -> None:
        self.group = group
        self.join_key = join_key
        self.types = types
        self.settings = settings
        self.run_id = run_id
        self.client_factory = client_factory
        self.accumulator = accumulator

    def _stream(self, rows: Iterator[Row]) -> Iterator[Item | Rejected]:
        for row in rows:
            values = row.asDict()
            try:
                yield Item(self.group, to_record(values, self.types, record_identifier=self.join_key))
            except RecordError as exc:
                raw = [{"FeatureName": k, "ValueAsString": str(v)} for k, v in values.items() if v is not None]
                yield Rejected(self.group, raw, f"InvalidValue: {exc}")

    def __call__(self, rows: Iterator[Row]) -> None:
        context = TaskContext.get()
        partition, attempt = (context.partitionId(), context.attemptNumber()) if context else (0, 0)
        started = time.monotonic()
        first = next(rows, None)
        dead_letters = DeadLetterWriter(
            self.settings.dead_letter_root, self.run_id, f"part-{partition:05d}.jsonl", region=self.settings.region
        )
        if first is None:
            if attempt > 0:
                dead_letters.remove(self.group)
            return
        writer = Writer(self.client_factory(self.settings), self.settings, dead_letters)
        try:
            counts = writer.run(self._stream(_chain(first, rows)))
        except BaseException:
            dead_letters.discard()
            raise
        if not dead_letters.publish() and attempt > 0:
            dead_letters.remove(self.group)
        log.info(
            "Pushed partition %d (attempt %d) of %s: %d records, %d written, %d dead-lettered, "
            "%d retried, %d throttled in %.1fs",
            partition,
            attempt,
            self.group,
            counts.records,
            counts.written,
            counts.dead_lettered,
            counts.retried,
            counts.throttled,
            time.monotonic() - started,
        )
        self.accumulator.add(counts)


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def push_snapshot(
    df: DataFrame,
    *,
    group: FeatureGroup,
    settings: PushSettings,
    run_id: str,
    client_factory: ClientFactory | None = None,
) -> PushResult:
    """Write the latest record per entity of ``df`` to ``group``'s online store.

    ``df`` has the join key, ``event_time`` and any of the group's features (what
    ``features.transform.windows.snapshot`` returns). ``client_factory(settings)`` builds the
    runtime client on each executor (default: :func:`default_client_factory`); it must be
    picklable. Raises PushError when more than ``settings.dead_letter_tolerance`` records were
    dead-lettered (``.result`` has the counts) or on a fatal error.
    """
    started = time.perf_counter()
    types = check_columns(df, group)
    spark = df.sparkSession
    partitions = settings.partitions or spark.sparkContext.defaultParallelism
    if dict(df.dtypes)[EVENT_TIME] == "timestamp":
        df = df.withColumn(EVENT_TIME, utc_event_time(F.col(EVENT_TIME), spark.conf.get("spark.sql.session.timeZone")))
    latest = latest_per_entity(df, join_key=group.entity.join_key, partitions=partitions)
    accumulator = spark.sparkContext.accumulator(Counts(), _CountsParam())
    pusher = _PartitionPusher(
        group=group.name,
        join_key=group.entity.join_key,
        types=types,
        settings=settings,
        run_id=run_id,
        client_factory=client_factory or default_client_factory,
        accumulator=accumulator,
    )
    where = dead_letter_dir(settings.dead_letter_root, group.name, run_id)
    if not settings.dead_letter_root.startswith(("s3://", "s3a://")) and not spark.sparkContext.master.startswith(
        "local"
    ):
        log.warning(
            "dead_letter_root %s is a local path but Spark runs on a cluster: each executor writes its dead "
            "letters to its own disk; set an s3:// root",
            settings.dead_letter_root,
        )
    log.info(
        "Pushing %s to the online store (%s, %d partitions x %d in flight, endpoint %s)",
        group.name,
        settings.write_api,
        partitions,
        settings.max_in_flight,
        settings.endpoint_url or "AWS",
    )
    try:
        latest.foreachPartition(pusher)
    except Exception as exc:
        fatal = re.search(rf"{FatalPushError.__name__}: (.+)", str(exc))
        if fatal is None:
            raise
        raise PushError(f"online push of {group.name} stopped: {fatal.group(1).strip()}") from None
    counts: Counts = accumulator.value
    result = result_from(counts, seconds=time.perf_counter() - started, dead_letter_path=where, partitions=partitions)
    log.info(
        "Online push of %s: %d records, %d written, %d dead-lettered, %d retried, %d throttled in %.1fs",
        group.name,
        result.records,
        result.written,
        result.dead_lettered,
        result.retried,
        result.throttled,
        result.seconds,
    )
    check_tolerance(f"online push of {group.name}", counts, result, settings.dead_letter_tolerance)
    return result
