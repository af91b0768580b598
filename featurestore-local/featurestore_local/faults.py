"""Fault injection and request counters for the local runtime.

Clients of the real online store must survive latency, throttling and 5xx
answers; the emulator reproduces those on demand so retry/backoff code and the
ingestion benchmark can be exercised without an AWS account.  Faults are only
ever applied to runtime data-plane operations: the control plane is used by
test set-up and must stay deterministic.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import INTERNAL_FAILURE, SERVICE_UNAVAILABLE, ApiError, throttled


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True)
class FaultConfig:
    """What the runtime should do to each data-plane HTTP request.

    ``latency_ms`` plus a uniform ``0..jitter_ms`` is slept before answering.
    ``throttle_rate`` / ``error_5xx_rate`` are independent per-request
    probabilities of a ThrottlingException (400) / InternalFailure (500) or
    ServiceUnavailable (503).  ``tps_quota`` enables a token bucket of that many
    requests per second (burst ``max(1, quota)``); requests beyond it are
    throttled at once, without latency, like a real quota rejection.
    ``unprocessed_rate`` is the per-entry probability that a BatchWriteRecord
    entry (or BatchGetRecord identifier) comes back in ``UnprocessedEntries``
    (``UnprocessedIdentifiers``), the retryable partial-failure channel of the
    batch APIs.  ``seed`` makes the random draws reproducible.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    throttle_rate: float = 0.0
    error_5xx_rate: float = 0.0
    tps_quota: float | None = None
    seed: int | None = None
    unprocessed_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        _check_probability("throttle_rate", self.throttle_rate)
        _check_probability("error_5xx_rate", self.error_5xx_rate)
        _check_probability("unprocessed_rate", self.unprocessed_rate)
        if self.tps_quota is not None and not (math.isfinite(self.tps_quota) and self.tps_quota > 0):
            raise ValueError(f"tps_quota must be a positive number, got {self.tps_quota!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as served by ``GET /_local/faults``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultConfig:
        """Build from a JSON object; unknown keys are rejected to catch typos."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:  # e.g. a string where a number belongs
            raise ValueError(str(exc)) from exc


class _TokenBucket:
    """Classic token bucket; refilled lazily from a monotonic clock."""

    def __init__(self, rate: float, monotonic: Callable[[], float]) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._monotonic = monotonic
        self._last = monotonic()

    def try_acquire(self) -> bool:
        now = self._monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class FaultInjector:
    """Applies a :class:`FaultConfig` to requests; safe to share across threads.

    The lock only guards the RNG and the token bucket: the latency sleep
    happens outside it so concurrent requests are delayed in parallel, not
    one after another.
    """

    def __init__(
        self,
        config: FaultConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._sleep = sleep
        self._monotonic = monotonic
        self._config = config
        self._rng = random.Random(config.seed)
        self._bucket = self._new_bucket(config)

    def _new_bucket(self, config: FaultConfig) -> _TokenBucket | None:
        if config.tps_quota is None:
            return None
        return _TokenBucket(config.tps_quota, self._monotonic)

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig) -> None:
        """Swap the configuration; reseeds the RNG and refills the bucket."""
        with self._lock:
            self._config = config
            self._rng = random.Random(config.seed)
            self._bucket = self._new_bucket(config)

    def before_request(self) -> ApiError | None:
        """Delay the current request and return the error to answer with, if any."""
        with self._lock:
            config = self._config
            if self._bucket is not None and not self._bucket.try_acquire():
                return throttled(f"Rate exceeded: local TPS quota of {config.tps_quota:g} requests/s")
            delay_ms = config.latency_ms + self._rng.uniform(0.0, config.jitter_ms)
            throttle = self._rng.random() < config.throttle_rate
            fail = self._rng.random() < config.error_5xx_rate
            unavailable = self._rng.random() < 0.5
        if delay_ms > 0:
            self._sleep(delay_ms / 1000.0)
        if throttle:
            return throttled()
        if fail:
            if unavailable:
                return ApiError(SERVICE_UNAVAILABLE, "Service is unavailable (injected)", 503)
            return ApiError(INTERNAL_FAILURE, "Internal failure (injected)", 500)
        return None

    def leave_unprocessed(self) -> bool:
        """Whether one batch entry should be handed back as unprocessed."""
        with self._lock:
            rate = self._config.unprocessed_rate
            return rate > 0 and self._rng.random() < rate


class Stats:
    """Thread-safe counters served by ``GET /_local/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._throttled = 0
        self._errors_5xx = 0
        self._records_written = 0
        self._records_read = 0
        self._unprocessed = 0
        self._refused = 0

    def request(self, operation: str) -> None:
        with self._lock:
            self._requests[operation] += 1

    def error(self, code: str, status: int, *, throttling: bool) -> None:
        with self._lock:
            self._errors[code] += 1
            if throttling:
                self._throttled += 1
            if status >= 500:
                self._errors_5xx += 1

    def written(self, count: int) -> None:
        with self._lock:
            self._records_written += count

    def read(self, count: int) -> None:
        with self._lock:
            self._records_read += count

    def unprocessed(self, count: int) -> None:
        with self._lock:
            self._unprocessed += count

    def refused(self) -> None:
        """A connection answered 503 because every connection slot was taken."""
        with self._lock:
            self._refused += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests_total": sum(self._requests.values()),
                "requests_by_op": dict(self._requests),
                "throttled": self._throttled,
                "errors_5xx": self._errors_5xx,
                "errors_by_code": dict(self._errors),
                "records_written": self._records_written,
                "records_read": self._records_read,
                "unprocessed": self._unprocessed,
                "connections_refused": self._refused,
            }

    def reset(self) -> None:
        with self._lock:
            self._clear()
