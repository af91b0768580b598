"""The as-of join of labels to the groups' snapshots, and the leakage check: pure DataFrame code.

Nothing here sorts or shuffles the wide snapshot rows (docs/training.md#how-the-join-works):

1. Times: a group's snapshot times ``T_0 < ... < T_{n-1}`` come from the store listing (Parquet
   files this pipeline wrote are named by them) or else one small aggregate over ``event_time``;
   every snapshot row gets its index ``i`` from a literal map.
2. Presence: per entity, the snapshots that hold it as bitmasks (bit ``i % 63`` of word
   ``i // 63``), one hash aggregate to one narrow row per entity. Each label, joined to that on its
   key, takes ``k`` = (number of ``T <= label time``) - 1 and the highest set bit ``<= k``: the
   newest snapshot that holds the entity and is not after the label (a snapshot at ``T`` uses only
   events before ``T``, so ``T == label time`` is allowed). Older than the max age: none.
3. Fetch: the (key, index, row id) each label needs is broadcast and the snapshot rows stream past
   it; only the matching rows, at most one per label and group, are joined to the labels by row id.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features.constants import EVENT_TIME, EVENT_TIME_FORMAT
from features.training.labels import LABEL_TS, ROW_ID

#: How ``event_time`` is written in the offline store (the single-snapshot writer's format).
EVENT_TIME_PATTERN = "yyyy-MM-dd'T'HH:mm:ssXXX"
#: Up to this many label rows, each group's requests are broadcast to the snapshot scan; beyond it
#: the snapshot rows are shuffled to the requests instead (slower, no driver memory limit).
BROADCAST_LABELS = 2_000_000

_INDEX, _USED, _AT = "_training_index", "_training_used", "_training_at"
_WORD = 63  # bits per presence word: the sign bit stays clear, so bin() gives the highest bit
_DAY = 86_400_000_000
_ALL_BITS = (1 << _WORD) - 1


class LeakageError(RuntimeError):
    """A label was given a snapshot taken after its label time: the set would leak the future."""


def snapshot_time_column(group: str) -> str:
    return f"{group}__snapshot_time"


@dataclass(frozen=True)
class GroupRows:
    """One group's snapshot rows: ``key``, ``event_time`` as stored (text) and ``features``."""

    rows: DataFrame
    features: Sequence[str]
    #: The ``event_time`` texts of all snapshots in ``rows`` when the store listing gives them: then
    #: no aggregate runs for them, and a row with another time fails the job instead of being dropped.
    times: Sequence[str] | None = None


@dataclass(frozen=True)
class SnapshotTimes:
    """A group's snapshot times: every ``event_time`` text, the index of its instant, the instants."""

    text: list[str]
    index: list[int]
    micros: list[int]

    @property
    def words(self) -> int:
        return -(-len(self.micros) // _WORD)


def listed_times(texts: Sequence[str]) -> SnapshotTimes:
    """The snapshot times of texts in the store's ``event_time`` format, parsed here."""
    micros = sorted({_epoch_micros(t) for t in texts})
    position = {m: i for i, m in enumerate(micros)}
    return SnapshotTimes(text=list(texts), index=[position[_epoch_micros(t)] for t in texts], micros=micros)


def _epoch_micros(text: str) -> int:
    at = datetime.strptime(text, EVENT_TIME_FORMAT).replace(tzinfo=UTC)
    return _micros(at - datetime(1970, 1, 1, tzinfo=UTC))


def snapshot_times(rows: DataFrame) -> SnapshotTimes:
    """The distinct snapshot times of ``rows`` (one aggregate over ``event_time``, parsed on the
    few distinct values only); texts that do not parse are left out, as their rows are."""
    parsed = F.unix_micros(F.to_timestamp(F.col(EVENT_TIME), EVENT_TIME_PATTERN))
    found = (
        rows.select(EVENT_TIME)
        .where(F.col(EVENT_TIME).isNotNull())
        .distinct()
        .select(EVENT_TIME, parsed.alias("micros"))
        .where(F.col("micros").isNotNull())
        .collect()
    )
    micros = sorted({int(r["micros"]) for r in found})
    position = {m: i for i, m in enumerate(micros)}
    return SnapshotTimes(
        text=[r[EVENT_TIME] for r in found], index=[position[int(r["micros"])] for r in found], micros=micros
    )


@contextmanager
def as_of_joined(
    labels: DataFrame,
    sources: Mapping[str, GroupRows],
    *,
    key: str,
    max_age: timedelta | None,
    broadcast: bool = True,
) -> Iterator[DataFrame]:
    """``labels`` with, per group, ``<group>__snapshot_time`` and the features of the latest
    snapshot with ``T <= label time`` and ``label time - T <= max_age`` that holds the label's
    entity; nulls when there is none. Exactly one row per label row.

    ``labels`` has ``key``, :data:`LABEL_TS` and :data:`ROW_ID`. ``broadcast`` sends each group's
    requests (one narrow row per label) to the snapshot scan; pass False for very many labels.
    The narrow per-label resolution is cached while the context is open.
    """
    times = {
        g: listed_times(src.times) if src.times is not None else snapshot_times(src.rows) for g, src in sources.items()
    }
    keyed = labels.select(F.col(key).cast("string").alias(key), LABEL_TS, ROW_ID)
    resolved = keyed
    for i, (group, src) in enumerate(sources.items()):
        if times[group].micros:
            presence = _presence(_indexed(src, times[group]), key, times[group], i)
            resolved = _resolve(resolved, presence, key=key, i=i, times=times[group], max_age=max_age)
    resolved = resolved.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        training = labels
        for i, (group, src) in enumerate(sources.items()):
            if times[group].micros:
                fetched = _fetch(src, resolved, times[group], key=key, group=group, i=i, broadcast=broadcast)
                # a hash join: the row ids of labels and matches are random, sorting them buys nothing
                training = training.join(fetched.hint("shuffle_hash"), ROW_ID, "left")
            else:
                training = training.select("*", *_nulls(src, group))
        yield training
    finally:
        resolved.unpersist()


def _indexed(src: GroupRows, times: SnapshotTimes) -> DataFrame:
    """The rows with the index of their snapshot time (from a literal map: no per-row parse). With
    listed times, a row whose ``event_time`` is not one of them fails the job."""
    lookup = F.map_from_arrays(F.lit(times.text), F.lit(times.index))
    index = F.try_element_at(lookup, F.col(EVENT_TIME))
    if src.times is not None:
        unlisted = F.concat(
            F.lit("an offline record has event_time "),
            F.col(EVENT_TIME),
            F.lit(", not the snapshot time its file is named by; the store was not written by this pipeline's writer"),
        )
        index = F.when(index.isNull() & F.col(EVENT_TIME).isNotNull(), F.raise_error(unlisted)).otherwise(index)
    return src.rows.withColumn(_INDEX, index).where(F.col(_INDEX).isNotNull())


def _word(i: int, w: int) -> str:
    return f"_training_g{i}_w{w}"


def _presence(indexed: DataFrame, key: str, times: SnapshotTimes, i: int) -> DataFrame:
    """One row per entity: per word ``w``, bit ``j`` set when snapshot ``63 w + j`` holds it."""
    index = F.col(_INDEX)
    bit = F.call_function("shiftleft", F.lit(1).cast("long"), index % _WORD)
    if times.words == 1:
        return indexed.groupBy(key).agg(F.bit_or(bit).alias(_word(i, 0)))
    word = F.floor(index / _WORD)
    return indexed.groupBy(key).agg(*(F.bit_or(F.when(word == w, bit)).alias(_word(i, w)) for w in range(times.words)))


def _resolve(
    labels: DataFrame, presence: DataFrame, *, key: str, i: int, times: SnapshotTimes, max_age: timedelta | None
) -> DataFrame:
    """``labels`` with group ``i``'s used snapshot index and its time (epoch micros), or nulls.

    Built in steps, each on the previous step's columns: an expression used several times is then
    computed once per row (Spark does not merge projections that would repeat an expensive one).
    """
    at = F.unix_micros(F.col(LABEL_TS))
    newest, used, used_at = f"_training_k{i}", f"{_USED}{i}", f"{_AT}{i}"
    joined = labels.join(presence, key, "left")
    words = [_word(i, w) for w in range(times.words)]
    # k: the newest snapshot index not after the label, -1 when there is none
    with_k = joined.select(*labels.columns, *words, (_count_at_or_before(at, times.micros) - 1).alias(newest))
    k = F.col(newest)
    word_of_k = F.floor(k / _WORD)  # -1 when k is -1: no word qualifies
    low_bits = F.call_function("shiftright", F.lit(_ALL_BITS), F.lit(_WORD - 1) - (k - word_of_k * _WORD))
    candidates = [
        F.when(F.lit(w) < word_of_k, _highest_bit(F.col(words[w]))).when(
            F.lit(w) == word_of_k, _highest_bit(F.col(words[w]).bitwiseAND(low_bits))
        )
        + F.lit(w * _WORD)
        for w in range(times.words)
    ]
    newest_held = candidates[0] if len(candidates) == 1 else F.greatest(*candidates)
    with_used = with_k.select(*labels.columns, newest_held.cast("int").alias(used))
    with_at = with_used.withColumn(used_at, F.element_at(F.lit(times.micros), F.col(used) + 1))
    if max_age is None:
        return with_at
    fresh = at - F.col(used_at) <= F.lit(_micros(max_age))
    return with_at.select(
        *labels.columns, F.when(fresh, F.col(used)).alias(used), F.when(fresh, F.col(used_at)).alias(used_at)
    )


def _highest_bit(word: Column) -> Column:
    """The highest set bit of a non-negative long, null for 0 or null."""
    return F.when(word != 0, F.length(F.bin(word)) - 1)


def _count_at_or_before(at: Column, micros: list[int]) -> Column:
    """How many of the sorted instants ``micros`` are ``<= at``: per UTC day of ``at`` the number
    before that day from a literal array, plus that day's instants ``<= at`` (compared directly
    when the day holds one, the common case; filtered from a slice when it holds more)."""
    first, last = micros[0] // _DAY, micros[-1] // _DAY
    before = [bisect_left(micros, d * _DAY) for d in range(first, last + 2)]
    day = ((at - F.pmod(at, F.lit(_DAY))) / _DAY).cast("long")
    slot = F.least(F.greatest(day - F.lit(first) + 1, F.lit(1)), F.lit(last - first + 1)).cast("int")
    start = F.element_at(F.lit(before), slot)
    count = F.element_at(F.lit(before), slot + 1) - start
    only = F.element_at(F.lit(micros), start + 1)
    several = F.size(F.filter(F.slice(F.lit(micros), start + 1, count), lambda t: t <= at))
    today = F.when(count == 0, F.lit(0)).when(count == 1, (only <= at).cast("int")).otherwise(several)
    return F.when(day < F.lit(first), F.lit(0)).when(day > F.lit(last), F.lit(len(micros))).otherwise(start + today)


def _fetch(
    src: GroupRows, resolved: DataFrame, times: SnapshotTimes, *, key: str, group: str, i: int, broadcast: bool
) -> DataFrame:
    """Per label with a usable snapshot: :data:`ROW_ID`, the snapshot time and the features."""
    requests = resolved.where(F.col(f"{_USED}{i}").isNotNull()).select(key, F.col(f"{_USED}{i}").alias(_INDEX), ROW_ID)
    rows = _indexed(src, times).select(key, _INDEX, EVENT_TIME, *src.features)
    matched = rows.join(F.broadcast(requests) if broadcast else requests, [key, _INDEX])
    # The snapshot time is the matched record's own, parsed (one row per label): the leakage check
    # then tests what the features came from, not the index arithmetic that chose them.
    own = F.to_timestamp(F.col(EVENT_TIME), EVENT_TIME_PATTERN)
    return matched.select(ROW_ID, own.alias(snapshot_time_column(group)), *src.features)


def _nulls(src: GroupRows, group: str) -> list[Column]:
    """A group with no snapshot in the labels' range: its columns, all null."""
    types = {f.name: f.dataType for f in src.rows.schema.fields}
    return [
        F.lit(None).cast("timestamp").alias(snapshot_time_column(group)),
        *(F.lit(None).cast(types[f]).alias(f) for f in src.features),
    ]


def _micros(age: timedelta) -> int:
    return (age.days * 86_400 + age.seconds) * 1_000_000 + age.microseconds


def leaked(training: DataFrame, groups: Sequence[str], *, label_time: str = LABEL_TS) -> Column:
    """Per row, 1 when any group's snapshot time is after ``label_time``, else 0 (for a sum)."""
    late = [F.col(snapshot_time_column(g)) > F.col(label_time) for g in groups]
    if not late:
        return F.lit(0)
    any_late = late[0]
    for other in late[1:]:
        any_late = any_late | other
    return F.when(F.coalesce(any_late, F.lit(False)), 1).otherwise(0)


def check_no_leakage(training: DataFrame, groups: Sequence[str], *, label_time: str = LABEL_TS) -> None:
    """Fail loudly when any row used a snapshot taken after its label time (one small job).

    The join cannot produce such a row; this re-checks the written result independently of it, so a
    change to the join, the reader or the store that would leak is caught before anyone trains.
    """
    row = training.agg(F.sum(leaked(training, groups, label_time=label_time)).alias("n")).first()
    raise_if_leaked(int(row["n"] or 0) if row is not None else 0, training, groups, label_time=label_time)


def raise_if_leaked(count: int, training: DataFrame, groups: Sequence[str], *, label_time: str = LABEL_TS) -> None:
    if not count:
        return
    example = training.where(leaked(training, groups, label_time=label_time) == 1).first()
    shown = ""
    if example is not None:
        late = [
            g
            for g in groups
            if example[snapshot_time_column(g)] is not None and example[snapshot_time_column(g)] > example[label_time]
        ]
        shown = (
            f"; e.g. label time {example[label_time]} got {late[0]} snapshot {example[snapshot_time_column(late[0])]}"
            if late
            else ""
        )
    raise LeakageError(
        f"leakage check failed: {count} row(s) use a snapshot taken after their label time{shown}; nothing was written"
    )
