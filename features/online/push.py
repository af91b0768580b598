"""Push a feature snapshot to the online store from the Spark executors: the Spark side only.

On the driver: check the columns against the group, keep the latest record per entity and
hash-partition by the join key. On the executors (``foreachPartition``): each task builds one
client and one :class:`~features.online.writer.Writer` and streams its rows through it, rendered
a chunk at a time by :class:`~features.online.records.RecordEncoder` (rows it refuses are
rendered again by ``to_record``, whose error is the dead-letter reason); only
:class:`~features.online.settings.Counts` come back, through one accumulator. Why this shape, how
many partitions, and why the counts stay exact under task retries: docs/online-store.md.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from pyspark import TaskContext
from pyspark.accumulators import AccumulatorParam
from pyspark.sql import Column, DataFrame, Row, Window
from pyspark.sql import functions as F

from features.constants import EVENT_TIME
from features.definitions import FeatureGroup, FeatureType
from features.online.client import ClientFactory, default_client_factory
from features.online.deadletter import DeadLetterWriter, dead_letter_dir
from features.online.records import (
    EncodedItem,
    RecordEncoder,
    RecordError,
    TtlDuration,
    record_types,
    to_record,
    ttl_duration,
)
from features.online.settings import (
    Counts,
    FatalPushError,
    Item,
    PushError,
    PushResult,
    PushSettings,
    Rejected,
    check_tolerance,
    result_from,
)
from features.online.writer import TARGET_STORES, Writer

log = logging.getLogger(__name__)

#: Rows rendered together by the encoder: large enough for column-at-a-time rendering to pay,
#: small enough that the writer's first requests go out early.
ENCODE_CHUNK_ROWS = 1_000

#: Spark SQL types accepted for each feature type (checked on the driver before anything is sent).
_ACCEPTED_SPARK_TYPES: dict[FeatureType, tuple[str, ...]] = {
    "Integral": ("tinyint", "smallint", "int", "bigint", "decimal(*,0)"),
    "Fractional": ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal"),
    "String": ("string",),
}


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
        ttl: TtlDuration | None = None,
        columns: list[str] | None = None,
        spark_types: dict[str, str] | None = None,
    ) -> None:
        self.ttl = ttl
        self.columns = columns or list(types)
        self.spark_types = spark_types or {}
        self.group = group
        self.join_key = join_key
        self.types = types
        self.settings = settings
        self.run_id = run_id
        self.client_factory = client_factory
        self.accumulator = accumulator

    def _stream(self, rows: Iterator[Row]) -> Iterator[EncodedItem | Item | Rejected]:
        encoder = RecordEncoder(
            group=self.group,
            columns=self.columns,
            spark_types=self.spark_types,
            types=self.types,
            record_identifier=self.join_key,
            ttl=self.ttl,
            target_stores=TARGET_STORES,
        )
        while chunk := list(itertools.islice(rows, ENCODE_CHUNK_ROWS)):
            items, bad = encoder.encode(chunk)
            yield from items
            for index in bad:
                yield self._checked(dict(zip(self.columns, chunk[index], strict=True)))

    def _checked(self, values: dict[str, Any]) -> Item | Rejected:
        """One row through ``to_record``: the path of rows the encoder would not vouch for."""
        try:
            return Item(self.group, to_record(values, self.types, record_identifier=self.join_key), self.ttl)
        except RecordError as exc:
            raw = [{"FeatureName": k, "ValueAsString": str(v)} for k, v in values.items() if v is not None]
            return Rejected(self.group, raw, f"InvalidValue: {exc}")

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
    runtime client on each executor (default: :func:`~features.online.client.default_client_factory`);
    it must be picklable. Raises PushError when more than ``settings.dead_letter_tolerance``
    records were dead-lettered (``.result`` has the counts) or on a fatal error.
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
        ttl=None if group.online_ttl_length is None else ttl_duration(group.online_ttl_length),
        columns=latest.columns,
        spark_types={field.name: field.dataType.simpleString() for field in latest.schema.fields},
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
