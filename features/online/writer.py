"""Write records to the online store: bounded concurrency, retries, adaptive rate, dead letters.

Shared by the Spark push (one :class:`Writer` per partition, see ``push.py``) and by the replay of
dead letters (one Writer in a plain Python process, see ``replay.py``), so both retry, back off and
dead-letter the same way.

Concurrency. One boto3 client (thread-safe for calls) and a pool of ``max_in_flight`` threads; the
caller's thread reads the input and hands out work units (one record for PutRecord, up to 25 for
BatchWriteRecord), keeping at most ``2 * max_in_flight`` units queued so a large partition is
streamed, never held in memory.

Retries. Every record (or batch entry) has ``max_attempts`` attempts. Throttling, 5xx, timeouts,
connection errors, batch ``UnprocessedEntries`` and retryable batch ``Errors`` are retried after a
full-jitter exponential backoff (``uniform(0, min(max_backoff, base * 2**(attempt-1)))``), which
spreads retries of many threads instead of synchronising them. A request the service rejects as
invalid (ValidationError and other 4xx) is never retried: it is dead-lettered at once with the
service's message. A BatchWriteRecord rejected as a whole is re-sent one PutRecord per entry so one
bad entry cannot take 24 good ones down with it.

Adaptive rate. :class:`AdaptiveRate` is an AIMD pacer shared by the threads of a writer: unpaced
until the first throttling answer, then on every throttling signal (at most once per cool-down,
because all in-flight requests get throttled together) the rate drops to ``DECREASE_FACTOR`` times
the rate requests were actually being sent at, and grows back linearly, reaching the previous
level after ``RECOVERY_SECONDS``, then keeps climbing until the next throttle. Under a TPS quota
the client thus oscillates just around its share instead of hammering the service with requests
that are bound to be refused. The rate is never cut below half of what the service recently
admitted, so throttling that does not depend on load cannot starve the writer.

Fatal errors. Errors that every other record would hit too (group not found, access denied, no
credentials, endpoint unreachable for a whole retry budget) raise :class:`FatalPushError` instead of
dead-lettering a whole snapshot: the run fails fast with that one-line reason.

Dead letters. What still fails is written as JSON lines ``{"group", "record", "reason",
"attempts"}`` to a temporary file and published in one step at the end (local rename, or one S3
put_object), so a failed attempt never leaves a partial file and a retried attempt replaces it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from features.online.records import Record

if TYPE_CHECKING:
    from features.online.push import PushSettings

log = logging.getLogger(__name__)

#: BatchWriteRecord takes at most 25 entries per call.
BATCH_SIZE = 25
#: Only the online store: the pipeline writes the offline store itself (SageMaker's layout).
TARGET_STORES = ["OnlineStore"]

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
TRANSIENT_CODES = frozenset(
    {"InternalFailure", "InternalError", "InternalServerError", "ServiceUnavailable", "RequestTimeout"}
)
#: Errors about the group, the identity or the endpoint, not about one record.
FATAL_CODES = frozenset(
    {
        "ResourceNotFound",
        "AccessForbidden",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
    }
)

#: AIMD: on throttling, pace at this fraction of the rate requests were being sent at. 0.7 (as
#: in CUBIC and botocore's adaptive mode) rather than halving: under a TPS quota, halving left
#: the sawtooth's troughs so deep that only 86-92% of the quota was used (bench/push_bench.py).
DECREASE_FACTOR = 0.7
#: ... and climb back linearly to that rate in this many seconds, then keep climbing.
RECOVERY_SECONDS = 1.0
#: Throttling answers within this long after a decrease belong to the same episode.
DECREASE_COOLDOWN_SECONDS = 0.2
#: Never pace below this many requests/s, so a writer always makes progress.
MIN_RATE = 1.0
#: Window over which the sending and admitted rates are measured.
RATE_WINDOW_SECONDS = 1.0
#: Never pace below this fraction of the highest rate the service recently admitted ...
PEAK_FLOOR = 0.5
#: ... where "recently" decays with this time constant, so a lowered quota is followed.
PEAK_MEMORY_SECONDS = 5.0

FailureKind = Literal["throttle", "transient", "unreachable", "reject", "fatal"]


class FatalPushError(RuntimeError):
    """A failure that every record would hit (missing group, no access, endpoint down): stop the push."""


@dataclass(frozen=True)
class Item:
    """One record bound for one feature group."""

    group: str
    record: Record


@dataclass(frozen=True)
class Rejected:
    """A record refused before sending (e.g. a NaN); dead-lettered with ``reason``, 0 attempts."""

    group: str
    record: Record
    reason: str


@dataclass
class Counts:
    """What a writer did. ``records == written + dead_lettered`` once it has finished.

    ``retried`` counts extra attempts of records/entries; ``throttled`` counts throttling answers
    (a throttled call, or one throttled batch entry); ``reasons`` counts dead letters by error code
    and ``examples`` keeps one full reason per code, for the one-line failure message.
    """

    records: int = 0
    written: int = 0
    retried: int = 0
    throttled: int = 0
    dead_lettered: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, other: Counts) -> Counts:
        """Add ``other`` into this one (in place) and return it."""
        self.records += other.records
        self.written += other.written
        self.retried += other.retried
        self.throttled += other.throttled
        self.dead_lettered += other.dead_lettered
        for code, count in other.reasons.items():
            self.reasons[code] = self.reasons.get(code, 0) + count
        for code, example in other.examples.items():
            self.examples.setdefault(code, example)
        return self

    def summary(self) -> str:
        """``ValidationError x3 (e.g. '...'); InvalidValue x1 (e.g. '...')``, most frequent first."""
        parts = [
            f"{code} x{count} (e.g. {self.examples.get(code, '')[:300]!r})"
            for code, count in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        return "; ".join(parts)


@dataclass(frozen=True)
class _Failure:
    kind: FailureKind
    code: str
    message: str

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


def classify(exc: Exception) -> _Failure:
    """Sort a boto3 exception into throttle / transient / unreachable / reject / fatal.

    Anything that is not an AWS or HTTP error (a bug) is re-raised.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in THROTTLING_CODES or status == 429:
            return _Failure("throttle", code, message)
        if code in FATAL_CODES or status in (401, 403):
            return _Failure("fatal", code, message)
        if code in TRANSIENT_CODES or status >= 500:
            return _Failure("transient", code, message)
        return _Failure("reject", code, message)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return _Failure("fatal", type(exc).__name__, f"{exc} (credentials come from the default AWS chain only)")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError):
        return _Failure("unreachable", type(exc).__name__, str(exc))
    if isinstance(exc, HTTPClientError):  # read timeouts and other transport errors
        return _Failure("transient", type(exc).__name__, str(exc))
    raise exc


def classify_code(code: str, message: str) -> _Failure:
    """Same as :func:`classify` for a per-entry ``ErrorCode`` of BatchWriteRecord."""
    if code in THROTTLING_CODES:
        return _Failure("throttle", code, message)
    if code in FATAL_CODES:
        return _Failure("fatal", code, message)
    if code in TRANSIENT_CODES:
        return _Failure("transient", code, message)
    return _Failure("reject", code, message)


def backoff_seconds(attempt: int, *, base_ms: float, max_ms: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff before attempt ``attempt + 1``."""
    ceiling = min(max_ms, base_ms * 2 ** min(attempt - 1, 30))
    return rng.uniform(0.0, ceiling) / 1000.0


class AdaptiveRate:
    """AIMD request pacing shared by a writer's threads (see the module docstring).

    ``acquire`` reserves the next send slot under a lock and sleeps outside it, so threads are
    spaced ``1/rate`` apart without serialising their requests.

    A pure loss-driven controller collapses when throttling does not depend on load (noisy
    neighbours, a service-side hiccup, random fault injection): every throttle cuts the rate and
    slowing down never stops them. So the rate is never cut below ``PEAK_FLOOR`` times the rate the
    service recently *admitted* (successes/s, peak decaying over ``PEAK_MEMORY_SECONDS``). Under a
    real quota the AIMD troughs stay above that floor, so it never binds there.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate: float | None = None  # requests/s; None until the first throttling answer
        self._slope = 0.0  # requests/s gained per second
        self._next_slot = 0.0
        self._last_update = clock()
        self._last_decrease = -math.inf
        self._started: float | None = None  # first send
        self._sent: deque[float] = deque()  # send times within the last RATE_WINDOW_SECONDS
        self._admitted: deque[float] = deque()  # success times within the last RATE_WINDOW_SECONDS
        self._peak = 0.0  # highest admitted rate, decaying
        self._peak_update = clock()

    @property
    def rate(self) -> float | None:
        """Current pace in requests/s; None while unpaced."""
        with self._lock:
            return self._rate

    @staticmethod
    def _trim(times: deque[float], now: float) -> None:
        while times and times[0] < now - RATE_WINDOW_SECONDS:
            times.popleft()

    def _decayed_peak(self, now: float) -> float:
        self._peak *= math.exp(-(now - self._peak_update) / PEAK_MEMORY_SECONDS)
        self._peak_update = now
        return self._peak

    def acquire(self) -> None:
        """Wait for the next send slot, and record the send."""
        with self._lock:
            now = self._clock()
            if self._started is None:
                self._started = now
            self._sent.append(now)
            self._trim(self._sent, now)
            if self._rate is None:
                return
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self._rate
        if slot > now:
            self._sleep(slot - now)

    def on_success(self) -> None:
        """Additive increase, proportional to the time since the last update."""
        with self._lock:
            now = self._clock()
            self._admitted.append(now)
            self._trim(self._admitted, now)
            self._peak = max(self._decayed_peak(now), len(self._admitted) / RATE_WINDOW_SECONDS)
            if self._rate is not None:
                self._rate += self._slope * (now - self._last_update)
            self._last_update = now

    def on_throttle(self) -> None:
        """Multiplicative decrease from the measured sending rate, once per cool-down."""
        with self._lock:
            now = self._clock()
            if now - self._last_decrease < DECREASE_COOLDOWN_SECONDS:
                return
            self._trim(self._sent, now)
            window = min(RATE_WINDOW_SECONDS, max(now - (self._started or now), 1e-3))
            sending = len(self._sent) / window
            base = max(MIN_RATE, sending if self._rate is None else min(self._rate, sending))
            floor = max(MIN_RATE, PEAK_FLOOR * self._decayed_peak(now))
            self._rate = max(floor, base * DECREASE_FACTOR)
            self._slope = base * (1.0 - DECREASE_FACTOR) / RECOVERY_SECONDS
            self._last_decrease = now
            self._last_update = now
            self._next_slot = max(self._next_slot, now)


def _is_s3(path: str) -> bool:
    return path.startswith(("s3://", "s3a://"))


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def dead_letter_dir(root: str, group: str, run_id: str) -> str:
    """``<root>/<group>/<run_id>``: where one run's dead letters for one group go."""
    return f"{root.rstrip('/')}/{group}/{run_id}"


class DeadLetterWriter:
    """Dead-letter lines of one writer, one file per group: ``<root>/<group>/<run_id>/<file_name>``.

    Lines go to a temporary file while the writer runs; :meth:`publish` moves them into place in
    one step (``os.replace`` locally, one ``put_object`` on S3), replacing what an earlier attempt
    of the same Spark task may have published. Not thread-safe: only the writer's caller thread
    adds lines.
    """

    def __init__(self, root: str, run_id: str, file_name: str, *, region: str) -> None:
        self.root = root
        self.run_id = run_id
        self.file_name = file_name
        self._region = region
        self._files: dict[str, tuple[Any, str]] = {}  # group -> (open temp file, temp path)

    def target(self, group: str) -> str:
        return f"{dead_letter_dir(self.root, group, self.run_id)}/{self.file_name}"

    def add(self, group: str, record: Record, reason: str, attempts: int) -> None:
        if group not in self._files:
            self._files[group] = self._open(group)
        line = json.dumps({"group": group, "record": record, "reason": reason, "attempts": attempts})
        self._files[group][0].write(line + "\n")

    def _open(self, group: str) -> tuple[Any, str]:
        if _is_s3(self.root):
            fd, temp = tempfile.mkstemp(prefix="dead-letters-", suffix=".jsonl")
        else:
            directory = Path(dead_letter_dir(self.root, group, self.run_id))
            directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{self.file_name}.", suffix=".tmp", dir=directory)
        return os.fdopen(fd, "w", encoding="utf-8"), temp

    def publish(self) -> list[str]:
        """Move every group's lines into place; returns the published paths."""
        published = []
        for group, (handle, temp) in self._files.items():
            handle.close()
            target = self.target(group)
            if _is_s3(target):
                bucket, key = _split_s3(target)
                try:
                    with open(temp, "rb") as body:
                        self._s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
                finally:
                    os.unlink(temp)
            else:
                os.replace(temp, target)
            published.append(target)
        self._files.clear()
        return published

    def remove(self, group: str) -> None:
        """Delete a file an earlier attempt published for ``group`` (this attempt had no dead letters)."""
        target = self.target(group)
        if _is_s3(target):
            bucket, key = _split_s3(target)
            self._s3().delete_object(Bucket=bucket, Key=key)
        else:
            Path(target).unlink(missing_ok=True)

    def discard(self) -> None:
        """Drop unpublished lines (the writer failed; the attempt will be retried or the run fails)."""
        for handle, temp in self._files.values():
            handle.close()
            Path(temp).unlink(missing_ok=True)
        self._files.clear()

    def _s3(self) -> Any:
        return boto3.session.Session().client("s3", region_name=self._region)


@dataclass
class _Outcome:
    """Result of one work unit, merged by the caller thread."""

    counts: Counts = field(default_factory=Counts)
    dead: list[tuple[Item, str, int, str]] = field(default_factory=list)  # item, reason, attempts, code

    def dead_letter(self, item: Item, reason: str, attempts: int, code: str) -> None:
        self.dead.append((item, reason, attempts, code))


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

    def run(self, stream: Iterable[Item | Rejected]) -> Counts:
        """Write everything in ``stream``; returns the counts. Raises FatalPushError on a fatal error."""
        settings = self._settings
        unit_fn = self._put_unit if settings.write_api == "put_record" else self._batch_unit
        unit_size = 1 if settings.write_api == "put_record" else BATCH_SIZE
        max_queued = 2 * settings.max_in_flight
        pending: set[Future[_Outcome]] = set()
        with ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="online-push") as pool:
            try:
                unit: list[Item] = []
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

    def _dead_letter(self, item: Item, reason: str, attempts: int, code: str) -> None:
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

    def _call(self, operation: Callable[..., Any], **kwargs: Any) -> tuple[Any, _Failure | None]:
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

    def _gave_up(self, attempts: int, failure: _Failure) -> str:
        if failure.kind == "unreachable":
            raise FatalPushError(
                f"endpoint unreachable after {attempts} attempts ({failure.reason}); "
                "check online_store.endpoint_url and the network path to it"
            )
        return f"gave up after {attempts} attempts; last error {failure.reason}"

    def _put_unit(self, unit: list[Item]) -> _Outcome:
        outcome = _Outcome()
        for item in unit:
            self._put(item, outcome)
        return outcome

    def _put(self, item: Item, outcome: _Outcome) -> None:
        """PutRecord one record, retrying within its budget."""
        max_attempts = self._settings.max_attempts
        attempt = 0
        while True:
            attempt += 1
            _, failure = self._call(
                self._client.put_record, FeatureGroupName=item.group, Record=item.record, TargetStores=TARGET_STORES
            )
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

    def _batch_unit(self, unit: list[Item]) -> _Outcome:
        """BatchWriteRecord up to 25 entries; retry what failed retryably, entry by entry."""
        outcome = _Outcome()
        max_attempts = self._settings.max_attempts
        pending = [(item, 0) for item in unit]  # (item, attempts so far)
        while pending:
            pending = [(item, attempts + 1) for item, attempts in pending]
            entries = [
                {"FeatureGroupName": i.group, "Record": i.record, "TargetStores": TARGET_STORES} for i, _ in pending
            ]
            response, failure = self._call(self._client.batch_write_record, Entries=entries)
            retry: list[tuple[Item, int, _Failure]] = []
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

    def _isolate(self, pending: list[tuple[Item, int]], failure: _Failure, outcome: _Outcome) -> None:
        """A batch refused as a whole: a single entry is dead-lettered, several are re-sent one by one."""
        if len(pending) == 1:
            item, attempts = pending[0]
            outcome.dead_letter(item, failure.reason, attempts, failure.code)
            return
        for item, _ in pending:
            self._put(item, outcome)

    def _sort_batch_response(
        self, pending: list[tuple[Item, int]], response: Any, outcome: _Outcome
    ) -> list[tuple[Item, int, _Failure]]:
        """Count written entries, dead-letter rejected ones; returns the entries to retry."""
        failed: dict[str, list[_Failure]] = {}
        for error in response.get("Errors") or []:
            entry = error.get("Entry") or {}
            key = _entry_key(entry.get("FeatureGroupName"), entry.get("Record"))
            failure = classify_code(str(error.get("ErrorCode", "Unknown")), str(error.get("ErrorMessage", "")))
            if failure.kind == "fatal":
                raise FatalPushError(failure.reason)
            failed.setdefault(key, []).append(failure)
        unprocessed = _Failure("transient", "UnprocessedEntry", "returned in UnprocessedEntries")
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
            everything = _Failure("transient", "UnmatchedBatchResponse", "batch response could not be matched")
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
