"""Training-serving skew check: do the online store's records equal the offline store's?

Both stores are fed from the same snapshot, so for an entity of the latest offline snapshot the
online record must carry the same values: this check samples entities from that snapshot, reads
them back with BatchGetRecord and compares feature by feature with the rules the push writes by
(``features/online/records.py``):

* Integral and String features must be equal exactly; Fractional ones within ``float_rel_tol``
  (the push writes ``repr(float)``, which round-trips exactly, so the default is tight);
* a null offline value must be absent online (the push leaves nulls out of the record);
* an entity without an online record is *missing*.

An online record with a different ``event_time`` comes from another snapshot (a newer push, or a
push that never happened); it is reported on its own, because it explains value differences rather
than being one.

The reads retry the way the push writes (docs/validation.md, "Training-serving skew check"): the
same classification and backoff (``features/online/failures.py``), the same retry budget
(``online_store.max_attempts``), one :class:`~features.online.rate.AdaptiveRate` for every group
of a check, and botocore's own retries off. Every group gets an outcome, ``error`` included: one
group that cannot be read never stops the others. ``feature-pipeline skew-check``
(``features/cli/skew.py``) runs it from the command line.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.constants import EVENT_TIME
from features.definitions import FeatureGroup, FeatureType
from features.errors import one_line
from features.load.offline import read_snapshot
from features.online.client import runtime_client
from features.online.failures import Failure
from features.online.reader import ReadRetry, RecordReader

log = logging.getLogger(__name__)

Status = Literal["matched", "skew", "error", "skipped"]


@dataclass
class SkewResult:
    """Outcome of the check of one group.

    ``sampled = checked + len(errors)`` (``errors``: identifiers that could not be read) and
    ``checked = matched + mismatched + missing_online``, where *mismatched* entities have a value
    mismatch or another event time. ``status`` is ``error`` when the group could not be checked
    fully (``error`` says why, in one line), else ``skew`` when anything differs, else ``matched``.
    """

    group: str
    offline_root: str
    #: The Delta table state read (``version 3`` / ``as of <time>``); None: the current one.
    offline_as_of: str | None = None
    snapshot_event_time: str = ""
    sampled: int = 0
    compared: int = 0
    matched: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    event_time_mismatches: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    #: Why the group was not compared (a batch-only group has nothing online); None: it was.
    skipped: str | None = None
    requests: int = 0
    retried: int = 0
    throttled: int = 0
    seconds: float = 0.0

    @property
    def status(self) -> Status:
        if self.skipped is not None:
            return "skipped"
        if self.error is not None or self.errors:
            return "error"
        if self.mismatches or self.missing or self.event_time_mismatches:
            return "skew"
        return "matched"

    @property
    def ok(self) -> bool:
        return self.status in ("matched", "skipped")

    @property
    def checked(self) -> int:
        return self.sampled - len(self.errors)

    @property
    def mismatched(self) -> int:
        return len({m["entity"] for m in self.mismatches} | {m["entity"] for m in self.event_time_mismatches})

    @property
    def missing_online(self) -> int:
        return len(self.missing)

    def to_dict(self) -> dict[str, Any]:
        """The outcome first (status, reason, counts), then what it was checked against and the details."""
        head = {
            "group": self.group,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "sampled": self.sampled,
            "checked": self.checked,
            "matched": self.matched,
            "mismatched": self.mismatched,
            "missing_online": self.missing_online,
            "requests": self.requests,
            "retried": self.retried,
            "throttled": self.throttled,
        }
        return {**head, **asdict(self)}

    def summary(self) -> str:
        """One line: the verdict, what was checked, and how hard the reads were."""
        head = f"{self.group}: {self.status if self.ok else self.status.upper()}"
        if self.skipped is not None:
            return f"{head} — {self.skipped}"
        if self.error is not None:
            head += f" — {self.error}"
            if not self.sampled:
                return head
        snapshot = f" (snapshot {self.snapshot_event_time})" if self.snapshot_event_time else ""
        detail = (
            f" ({len(self.mismatches)} value mismatches, {len(self.event_time_mismatches)} with another event time)"
            if self.mismatched
            else ""
        )
        return (
            f"{head} — checked {self.checked} of {self.sampled} sampled entities{snapshot}: {self.matched} matched, "
            f"{self.mismatched} mismatched{detail}, {self.missing_online} missing online; "
            f"{self.requests} calls, {self.retried} identifiers retried, {self.throttled} throttled"
        )


class SkewChecker:
    """Checks groups one after another with one client and one adaptive rate (they share the
    account's throughput); :meth:`check` never raises for one group's problem."""

    def __init__(
        self,
        spark: SparkSession,
        *,
        offline_root: str,
        endpoint_url: str | None,
        region: str,
        sample: int,
        seed: int,
        float_rel_tol: float = 1e-9,
        retry: ReadRetry | None = None,
        version: int | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        if sample < 1:
            raise ValueError(f"sample must be at least 1, got {sample}")
        self._spark = spark
        self._offline_root = offline_root
        self._version, self._timestamp = version, timestamp
        self._sample = sample
        self._seed = seed
        self._float_rel_tol = float_rel_tol
        # botocore's retries off: the reader retries, and must see every throttling answer.
        self._client = runtime_client(endpoint_url=endpoint_url, region=region)
        self._reader = RecordReader(self._client, retry or ReadRetry())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._client.close()

    def check(self, group: FeatureGroup) -> SkewResult:
        """Compare a reproducible sample (same seed, same snapshot files, same entities) of the
        latest offline snapshot of ``group`` with the online store."""
        began = time.perf_counter()
        result = SkewResult(group=group.name, offline_root=self._offline_root, offline_as_of=self._as_of())
        if not group.online:
            result.skipped = "batch-only group (online=False): offline store only, nothing online to compare"
            return result
        try:
            self._compare(group, result)
        except Exception as exc:  # one group's failure is its outcome; the next group is still checked
            log.debug("skew check of %s failed", group.name, exc_info=True)
            result.error = one_line(exc)
        result.seconds = round(time.perf_counter() - began, 3)
        return result

    def _as_of(self) -> str | None:
        if self._version is not None:
            return f"version {self._version}"
        if self._timestamp is not None:
            return f"as of {self._timestamp.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        return None

    def _compare(self, group: FeatureGroup, result: SkewResult) -> None:
        snapshot = read_snapshot(
            self._spark, self._offline_root, group.name, version=self._version, timestamp=self._timestamp
        )
        if snapshot is None:
            where = f" ({result.offline_as_of})" if result.offline_as_of else ""
            raise FileNotFoundError(
                f"no snapshot of {group.name} in the offline store under {self._offline_root}{where}"
            )
        key = group.entity.join_key
        types = {f.name: f.dtype for f in group.features if f.name in snapshot.columns}
        rows = (
            snapshot.select(key, EVENT_TIME, *types)
            .withColumn("_draw", F.rand(self._seed))
            .orderBy("_draw")
            .limit(self._sample)
            .drop("_draw")
            .collect()
        )
        offline = {str(row[key]): row.asDict() for row in rows}
        result.snapshot_event_time = str(rows[0][EVENT_TIME]) if rows else ""
        result.sampled = len(offline)
        reads = self._reader.read(group.name, list(offline))
        result.requests, result.retried, result.throttled = reads.requests, reads.retried, reads.throttled
        result.errors = [{"entity": e, "code": f.code, "message": f.message} for e, f in reads.failed.items()]
        if reads.failed:
            result.error = unread_reason(reads.failed, result.sampled)
        for entity, record in offline.items():
            if entity in reads.failed:
                continue
            found = reads.found.get(entity)
            if found is None:
                result.missing.append(entity)
                continue
            result.compared += 1
            differs = found.get(EVENT_TIME) != record[EVENT_TIME]
            if differs:
                result.event_time_mismatches.append(
                    {"entity": entity, "offline": record[EVENT_TIME], "online": found.get(EVENT_TIME)}
                )
            for name, dtype in types.items():
                if not values_match(dtype, record[name], found.get(name), self._float_rel_tol):
                    differs = True
                    result.mismatches.append(
                        {"entity": entity, "feature": name, "offline": record[name], "online": found.get(name)}
                    )
            result.matched += not differs


def check_skew(
    spark: SparkSession,
    *,
    group: FeatureGroup,
    offline_root: str,
    endpoint_url: str | None,
    region: str,
    sample: int,
    seed: int,
    float_rel_tol: float = 1e-9,
    retry: ReadRetry | None = None,
) -> SkewResult:
    """Compare ``sample`` random entities of the latest offline snapshot of ``group`` with the online store.

    A group that cannot be checked (no snapshot, unknown online, reads that failed) comes back with
    ``status == "error"`` and the reason in ``error``. :class:`SkewChecker` checks several groups.
    """
    with SkewChecker(
        spark,
        offline_root=offline_root,
        endpoint_url=endpoint_url,
        region=region,
        sample=sample,
        seed=seed,
        float_rel_tol=float_rel_tol,
        retry=retry,
    ) as checker:
        return checker.check(group)


def unread_reason(failed: dict[str, Failure], sampled: int) -> str:
    """``could not read 3 of 250 sampled entities: ResourceNotFound x3 (e.g. '...')``, most frequent first."""
    codes = Counter(f.code for f in failed.values())
    examples: dict[str, str] = {}
    for failure in failed.values():
        examples.setdefault(failure.code, failure.message)
    parts = [
        f"{code} x{count} (e.g. {examples[code][:300]!r})"
        for code, count in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return f"could not read {len(failed)} of {sampled} sampled entities: {'; '.join(parts)}"


def values_match(dtype: FeatureType, offline: Any, online: str | None, rel_tol: float) -> bool:
    """Whether an online ValueAsString (None = absent) is what the push writes for ``offline``."""
    if offline is None or online is None:
        return offline is None and online is None
    try:
        if dtype == "Integral":
            return int(online) == int(offline)
        if dtype == "Fractional":
            return math.isclose(float(online), float(offline), rel_tol=rel_tol, abs_tol=0.0)
    except ValueError:
        return False
    return online == str(offline)
