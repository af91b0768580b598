"""The :class:`Writer`: writes a stream of records with one client, ``max_in_flight`` requests at a time.

It retries what is retryable with backoff (``failures.py``), paces itself with an
:class:`~features.online.rate.AdaptiveRate` and dead-letters what still fails (``deadletter.py``).
One Writer serves each push partition (``push.py``) and the replay (``replay.py``), so both behave
the same; the policy it implements (concurrency, retries, fatal errors) is in docs/online-store.md.
The caller's thread reads the input and hands out work units (one record for PutRecord, up to 25
for BatchWriteRecord), keeping at most ``2 * max_in_flight`` queued, so the input is streamed.
Records arrive as :class:`~features.online.settings.Item` (replay) or already rendered as
:class:`~features.online.records.EncodedItem` (the push); a client from ``client.runtime_client``
sends the latter's JSON as the request body, so botocore does not serialise them again.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from features.online.client import PREBUILT_BODY, takes_prebuilt_bodies
from features.online.deadletter import DeadLetterWriter
from features.online.failures import Failure, backoff_seconds, classify, classify_code
from features.online.rate import AdaptiveRate
from features.online.records import EncodedItem
from features.online.settings import Counts, FatalPushError, Item, PushSettings, Rejected

log = logging.getLogger(__name__)

#: BatchWriteRecord takes at most 25 entries per call.
BATCH_SIZE = 25
#: Only the online store: the pipeline writes the offline store itself (SageMaker's layout).
TARGET_STORES = ["OnlineStore"]


#: A record in flight: built by the caller (replay) or rendered by the push's encoder.
AnyItem = Item | EncodedItem


@dataclass
class _Outcome:
    """Result of one work unit, merged by the caller thread."""

    counts: Counts = field(default_factory=Counts)
    dead: list[tuple[AnyItem, str, int, str]] = field(default_factory=list)  # item, reason, attempts, code

    def dead_letter(self, item: AnyItem, reason: str, attempts: int, code: str) -> None:
        self.dead.append((item, reason, attempts, code))


def _entry(item: AnyItem) -> dict[str, Any]:
    """PutRecord's arguments, which are also one BatchWriteRecord entry: TTL per entry, as batches mix groups."""
    if isinstance(item, EncodedItem):  # a client that takes no pre-rendered body (a test double)
        return dict(json.loads(item.entry()))
    entry: dict[str, Any] = {"FeatureGroupName": item.group, "Record": item.record, "TargetStores": TARGET_STORES}
    if item.ttl is not None:
        entry["TtlDuration"] = item.ttl
    return entry


def _entry_key(group: Any, record: Any) -> str:
    """Identity of a batch entry, to match the entries the service echoes in Errors/UnprocessedEntries."""
    return json.dumps([group, record], sort_keys=True, separators=(",", ":"))


class Writer:
    """Writes a stream of records with one client; see the module docstring for the policy."""

    def __init__(
        self,
        client: Any,
        settings: PushSettings,
        dead_letters: DeadLetterWriter,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._settings = settings
        self._dead_letters = dead_letters
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._sleep = sleep
        self._stop = threading.Event()
        self.limiter = AdaptiveRate(sleep=sleep)
        self.counts = Counts()
        self._logged_codes: set[str] = set()
        self._prebuilt = takes_prebuilt_bodies(client)

    def _put_arguments(self, item: AnyItem) -> dict[str, Any]:
        if self._prebuilt and isinstance(item, EncodedItem):
            return {"FeatureGroupName": item.group, PREBUILT_BODY: item.body.encode()}
        return _entry(item)

    def _batch_arguments(self, items: list[AnyItem]) -> dict[str, Any]:
        if self._prebuilt and all(isinstance(item, EncodedItem) for item in items):
            body = '{"Entries":[' + ",".join(item.entry() for item in items) + "]}"  # type: ignore[union-attr]
            return {PREBUILT_BODY: body.encode()}
        return {"Entries": [_entry(item) for item in items]}

    def run(self, stream: Iterable[AnyItem | Rejected]) -> Counts:
        """Write everything in ``stream``; returns the counts. Raises FatalPushError on a fatal error."""
        settings = self._settings
        unit_fn = self._put_unit if settings.write_api == "put_record" else self._batch_unit
        unit_size = 1 if settings.write_api == "put_record" else BATCH_SIZE
        max_queued = 2 * settings.max_in_flight
        pending: set[Future[_Outcome]] = set()
        with ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="online-push") as pool:
            try:
                unit: list[AnyItem] = []
                for element in stream:
                    self.counts.records += 1
                    if isinstance(element, Rejected):
                        self._dead_letter(Item(element.group, element.record), element.reason, 0, "InvalidValue")
                        continue
                    unit.append(element)
                    if len(unit) < unit_size:
                        continue
                    pending.add(pool.submit(unit_fn, unit))
                    unit = []
                    if len(pending) >= max_queued:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        self._merge(done)
                if unit:
                    pending.add(pool.submit(unit_fn, unit))
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    self._merge(done)
            except BaseException:
                self._stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return self.counts

    def _merge(self, done: Iterable[Future[_Outcome]]) -> None:
        for future in done:
            outcome = future.result()  # re-raises FatalPushError from the worker
            self.counts.add(outcome.counts)
            for item, reason, attempts, code in outcome.dead:
                self._dead_letter(item, reason, attempts, code)

    def _dead_letter(self, item: AnyItem, reason: str, attempts: int, code: str) -> None:
        self._dead_letters.add(item.group, item.record, reason, attempts)
        self.counts.dead_lettered += 1
        self.counts.reasons[code] = self.counts.reasons.get(code, 0) + 1
        self.counts.examples.setdefault(code, reason)
        if code not in self._logged_codes:  # once per code, not per record
            self._logged_codes.add(code)
            log.warning("Dead-lettering records of %s: first with %s: %s", item.group, code, reason[:500])

    def _backoff(self, attempt: int) -> None:
        with self._rng_lock:
            delay = backoff_seconds(
                attempt, base_ms=self._settings.base_backoff_ms, max_ms=self._settings.max_backoff_ms, rng=self._rng
            )
        if delay > 0:
            self._sleep(delay)

    def _call(self, operation: Callable[..., Any], **kwargs: Any) -> tuple[Any, Failure | None]:
        """One paced request; (response, None) or (None, failure). Feeds the adaptive rate."""
        if self._stop.is_set():
            raise FatalPushError("push stopped after a fatal error in another request")
        self.limiter.acquire()
        try:
            response = operation(**kwargs)
        except Exception as exc:
            failure = classify(exc)
            if failure.kind == "throttle":
                self.limiter.on_throttle()
            elif failure.kind == "fatal":
                raise FatalPushError(failure.reason) from exc
            return None, failure
        self.limiter.on_success()
        return response, None

    def _gave_up(self, attempts: int, failure: Failure) -> str:
        if failure.kind == "unreachable":
            raise FatalPushError(
                f"endpoint unreachable after {attempts} attempts ({failure.reason}); "
                "check online_store.endpoint_url and the network path to it"
            )
        return f"gave up after {attempts} attempts; last error {failure.reason}"

    def _put_unit(self, unit: list[AnyItem]) -> _Outcome:
        outcome = _Outcome()
        for item in unit:
            self._put(item, outcome)
        return outcome

    def _put(self, item: AnyItem, outcome: _Outcome) -> None:
        """PutRecord one record, retrying within its budget."""
        max_attempts = self._settings.max_attempts
        attempt = 0
        while True:
            attempt += 1
            _, failure = self._call(self._client.put_record, **self._put_arguments(item))
            if failure is None:
                outcome.counts.written += 1
                return
            if failure.kind == "throttle":
                outcome.counts.throttled += 1
            if failure.kind == "reject":
                outcome.dead_letter(item, failure.reason, attempt, failure.code)
                return
            if attempt >= max_attempts:
                outcome.dead_letter(item, self._gave_up(attempt, failure), attempt, f"RetriesExhausted({failure.code})")
                return
            outcome.counts.retried += 1
            self._backoff(attempt)

    def _batch_unit(self, unit: list[AnyItem]) -> _Outcome:
        """BatchWriteRecord up to 25 entries; retry what failed retryably, entry by entry."""
        outcome = _Outcome()
        max_attempts = self._settings.max_attempts
        pending = [(item, 0) for item in unit]  # (item, attempts so far)
        while pending:
            pending = [(item, attempts + 1) for item, attempts in pending]
            arguments = self._batch_arguments([i for i, _ in pending])
            response, failure = self._call(self._client.batch_write_record, **arguments)
            retry: list[tuple[AnyItem, int, Failure]] = []
            if failure is not None:
                if failure.kind == "throttle":
                    outcome.counts.throttled += 1
                if failure.kind == "reject":
                    self._isolate(pending, failure, outcome)
                    return outcome
                retry = [(item, attempts, failure) for item, attempts in pending]
            else:
                retry = self._sort_batch_response(pending, response, outcome)
            pending = []
            for item, attempts, last in retry:
                if attempts >= max_attempts:
                    outcome.dead_letter(item, self._gave_up(attempts, last), attempts, f"RetriesExhausted({last.code})")
                else:
                    pending.append((item, attempts))
            if pending:
                outcome.counts.retried += len(pending)
                self._backoff(max(attempts for _, attempts in pending))
        return outcome

    def _isolate(self, pending: list[tuple[AnyItem, int]], failure: Failure, outcome: _Outcome) -> None:
        """A batch refused as a whole: a single entry is dead-lettered, several are re-sent one by one."""
        if len(pending) == 1:
            item, attempts = pending[0]
            outcome.dead_letter(item, failure.reason, attempts, failure.code)
            return
        for item, _ in pending:
            self._put(item, outcome)

    def _sort_batch_response(
        self, pending: list[tuple[AnyItem, int]], response: Any, outcome: _Outcome
    ) -> list[tuple[AnyItem, int, Failure]]:
        """Count written entries, dead-letter rejected ones; returns the entries to retry."""
        failed: dict[str, list[Failure]] = {}
        for error in response.get("Errors") or []:
            entry = error.get("Entry") or {}
            key = _entry_key(entry.get("FeatureGroupName"), entry.get("Record"))
            failure = classify_code(str(error.get("ErrorCode", "Unknown")), str(error.get("ErrorMessage", "")))
            if failure.kind == "fatal":
                raise FatalPushError(failure.reason)
            failed.setdefault(key, []).append(failure)
        unprocessed = Failure("transient", "UnprocessedEntry", "returned in UnprocessedEntries")
        for entry in response.get("UnprocessedEntries") or []:
            failed.setdefault(_entry_key(entry.get("FeatureGroupName"), entry.get("Record")), []).append(unprocessed)
        if not failed:
            outcome.counts.written += len(pending)
            return []
        keys = [_entry_key(item.group, item.record) for item, _ in pending]
        unknown = set(failed) - set(keys)
        if unknown:  # the service echoed an entry we did not send: re-send all, as upserts are idempotent
            log.warning(
                "BatchWriteRecord answered with %d unrecognised failed entries; re-sending the batch", len(unknown)
            )
            everything = Failure("transient", "UnmatchedBatchResponse", "batch response could not be matched")
            return [(item, attempts, everything) for item, attempts in pending]
        retry = []
        throttled = False
        for (item, attempts), key in zip(pending, keys, strict=True):
            failures = failed.get(key)
            if not failures:
                outcome.counts.written += 1
                continue
            failure = failures.pop(0)
            if failure.kind == "throttle":
                outcome.counts.throttled += 1
                throttled = True
            if failure.kind == "reject":
                outcome.dead_letter(item, failure.reason, attempts, failure.code)
            else:
                retry.append((item, attempts, failure))
        if throttled:
            self.limiter.on_throttle()
        return retry
