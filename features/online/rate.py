"""AIMD pacing of a writer's requests, so that under a TPS quota it sends at about its share.

One :class:`AdaptiveRate` is shared by the threads of one writer. How it reacts to throttling,
and why these constants (measured with bench/push_bench.py), is in docs/online-store.md.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

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


class AdaptiveRate:
    """AIMD request pacing shared by a writer's threads (docs/online-store.md, "Adaptive rate").

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
