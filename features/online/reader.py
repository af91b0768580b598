"""BatchGetRecord with the push's retry policy: what ``skew-check`` and ``get-features`` read with.

No pyspark: a model endpoint's handler can use :class:`RecordReader` as it is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from features.online.client import record_as_dict
from features.online.failures import Failure, backoff_seconds, classify, classify_code
from features.online.rate import AdaptiveRate

if TYPE_CHECKING:
    from features.config import OnlineStoreConf

#: BatchGetRecord's limit on record identifiers per call.
BATCH_GET_LIMIT = 100


@dataclass(frozen=True, kw_only=True)
class ReadRetry:
    """The reads' retry budget and backoff: the push's, from the ``online_store`` section.

    ``max_attempts`` per identifier, the first included; before retry n the reader sleeps
    ``uniform(0, min(max_backoff_ms, base_backoff_ms * 2**(n-1)))`` (``failures.backoff_seconds``).
    """

    max_attempts: int = 8
    base_backoff_ms: float = 50.0
    max_backoff_ms: float = 5_000.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not 0 <= self.base_backoff_ms <= self.max_backoff_ms:
            raise ValueError("need 0 <= base_backoff_ms <= max_backoff_ms")

    @classmethod
    def from_conf(cls, online: OnlineStoreConf) -> ReadRetry:
        return cls(
            max_attempts=online.max_attempts,
            base_backoff_ms=online.base_backoff_ms,
            max_backoff_ms=online.max_backoff_ms,
        )


@dataclass
class Reads:
    """What a :class:`RecordReader` read for one group.

    ``found`` holds the records the service returned; an identifier in neither ``found`` nor
    ``failed`` has no online record. ``retried`` counts extra attempts of identifiers, ``throttled``
    throttling answers (a throttled call, or one throttled ``Errors`` entry), as the push counts.
    """

    found: dict[str, dict[str, str]] = field(default_factory=dict)
    failed: dict[str, Failure] = field(default_factory=dict)
    requests: int = 0
    retried: int = 0
    throttled: int = 0


_UNPROCESSED = Failure("transient", "UnprocessedIdentifier", "returned in UnprocessedIdentifiers")


class RecordReader:
    """BatchGetRecord for a check, retried per identifier like the push's writes.

    Throttling, 5xx, connection errors, ``UnprocessedIdentifiers`` and throttled or transient
    ``Errors`` entries are retried within the budget, with backoff and the adaptive rate. Other
    ``Errors`` entries and 4xx answers fail the identifiers they concern. A failure about the group
    or the identity (``failures.FATAL_CODES``), or an endpoint unreachable for a whole budget, fails
    the rest of the group without further calls. Reads are sequential: one caller, one client.
    """

    def __init__(
        self,
        client: Any,
        retry: ReadRetry,
        *,
        rate: AdaptiveRate | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._retry = retry
        self._sleep = sleep
        self._rate = rate or AdaptiveRate(sleep=sleep)
        self._rng = rng or random.Random()

    def read(self, group: str, entities: Sequence[str]) -> Reads:
        """Read ``entities`` of ``group``, at most ``BATCH_GET_LIMIT`` per call."""
        reads = Reads()
        stop: Failure | None = None
        for start in range(0, len(entities), BATCH_GET_LIMIT):
            chunk = entities[start : start + BATCH_GET_LIMIT]
            if stop is None:
                stop = self._read_chunk(group, chunk, reads)
            else:
                reads.failed.update(dict.fromkeys(chunk, stop))
        return reads

    def _read_chunk(self, group: str, chunk: Sequence[str], reads: Reads) -> Failure | None:
        """Read one call's worth of identifiers; returns the failure that ends the group, if any."""
        attempts = dict.fromkeys(chunk, 0)
        pending = list(chunk)
        while pending:
            for entity in pending:
                attempts[entity] += 1
            response, failure = self._call(group, pending, reads)
            stop: Failure | None = None
            if failure is None:
                retry, stop = self._sort(pending, response, reads)
            elif failure.kind in ("fatal", "reject"):
                reads.failed.update(dict.fromkeys(pending, failure))
                return failure if failure.kind == "fatal" else None
            else:
                retry = dict.fromkeys(pending, failure)
            pending = []
            for entity, last in retry.items():
                if stop is not None:
                    reads.failed[entity] = stop
                elif attempts[entity] >= self._retry.max_attempts:
                    reads.failed[entity] = gave_up = Failure(
                        last.kind,
                        f"RetriesExhausted({last.code})",
                        f"gave up after {attempts[entity]} attempts; last error {last.reason}",
                    )
                    if last.kind == "unreachable":
                        stop = gave_up
                else:
                    pending.append(entity)
            if stop is not None:
                reads.failed.update(dict.fromkeys(pending, stop))
                return stop
            if pending:
                reads.retried += len(pending)
                self._backoff(max(attempts[e] for e in pending))
        return None

    def _call(self, group: str, entities: list[str], reads: Reads) -> tuple[Any, Failure | None]:
        """One paced BatchGetRecord; (response, None) or (None, failure). Feeds the adaptive rate."""
        reads.requests += 1
        self._rate.acquire()
        try:
            response = self._client.batch_get_record(
                Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": entities}]
            )
        except Exception as exc:
            failure = classify(exc)  # re-raises what is not an AWS or HTTP error: a bug
            if failure.kind == "throttle":
                reads.throttled += 1
                self._rate.on_throttle()
            return None, failure
        self._rate.on_success()
        return response, None

    def _sort(self, pending: list[str], response: Any, reads: Reads) -> tuple[dict[str, Failure], Failure | None]:
        """Keep the records found, fail the identifiers refused; returns those to retry, and a fatal failure."""
        asked = set(pending)
        for item in response.get("Records") or []:
            entity = item.get("RecordIdentifierValueAsString")
            if entity in asked:
                reads.found[entity] = record_as_dict(item.get("Record") or [])
        retry: dict[str, Failure] = {}
        stop: Failure | None = None
        throttled = False
        for error in response.get("Errors") or []:
            entity = error.get("RecordIdentifierValueAsString")
            if entity not in asked:
                continue
            failure = classify_code(str(error.get("ErrorCode", "Unknown")), str(error.get("ErrorMessage", "")))
            if failure.kind == "throttle":
                reads.throttled += 1
                throttled = True
            if failure.kind in ("throttle", "transient"):
                retry[entity] = failure
            else:
                reads.failed[entity] = failure
                if failure.kind == "fatal":
                    stop = failure
        for item in response.get("UnprocessedIdentifiers") or []:
            for entity in item.get("RecordIdentifiersValueAsString") or []:
                if entity in asked and entity not in reads.failed:
                    retry.setdefault(entity, _UNPROCESSED)
        if throttled:
            self._rate.on_throttle()
        return retry, stop

    def _backoff(self, attempt: int) -> None:
        delay = backoff_seconds(
            attempt, base_ms=self._retry.base_backoff_ms, max_ms=self._retry.max_backoff_ms, rng=self._rng
        )
        if delay > 0:
            self._sleep(delay)
