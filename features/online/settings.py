"""What goes into a push or a replay and what comes out: settings, records in flight, counts, results, errors.

Plain values shared by the Spark push (``push.py``), the writer (``writer.py``) and the replay
(``replay.py``); nothing here imports Spark or boto3, so the replay runs without either being
pulled in through this module. What the settings do is described in docs/online-store.md.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from features.online.records import Record, TtlDuration

if TYPE_CHECKING:
    from features.config import OnlineStoreConf

WriteApi = Literal["put_record", "batch_write_record"]


def is_loopback_endpoint(endpoint_url: str | None) -> bool:
    """Whether ``endpoint_url`` names this machine: ``localhost``, 127.0.0.0/8 or ``::1``.

    Decided from the URL's text, never by resolving a name, so no DNS answer can make a remote
    host count as local. None (AWS itself) is not loopback.
    """
    host = urlsplit(endpoint_url).hostname if endpoint_url else None
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class PushSettings:
    """How to reach the online store and how hard to push.

    ``max_in_flight`` requests run concurrently per partition; ``max_attempts`` is the budget per
    record (or batch entry) including the first attempt; backoff before retry n is uniform in
    ``[0, min(max_backoff_ms, base_backoff_ms * 2**(n-1))]``. ``partitions=None`` uses one
    partition per executor core (see docs/online-store.md). ``dead_letter_root`` is a local
    directory (local mode) or ``s3://bucket/prefix`` (a cluster). Up to ``dead_letter_tolerance``
    dead letters do not fail the push.

    ``placeholder_credentials`` makes every client sign with placeholder keys instead of boto3's
    default chain. The driver sets it (:func:`features.online.client.placeholder_credentials_needed`)
    only for a loopback endpoint, the local runtime, when the chain has no credentials; it travels
    with the task because executors are other processes (on a cluster, other machines) whose
    environment the driver cannot change. It is refused for any other endpoint.
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
    placeholder_credentials: bool = False

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
        if self.placeholder_credentials and not is_loopback_endpoint(self.endpoint_url):
            raise ValueError(
                "placeholder_credentials is only for a loopback endpoint (the local runtime), "
                f"not {self.endpoint_url or 'AWS'}: AWS credentials come from boto3's default chain"
            )

    @classmethod
    def from_conf(
        cls, online: OnlineStoreConf, endpoint_url: str | None, *, write_api: WriteApi, placeholder_credentials: bool
    ) -> PushSettings:
        """The settings of the conf's ``online_store`` section, with what the driver decided.

        ``endpoint_url`` is the endpoint actually in use (it may be the embedded local runtime's
        rather than ``online.endpoint_url``); ``write_api`` the one this botocore can call
        (:func:`features.online.client.usable_write_api`); ``placeholder_credentials`` see the
        class. The timeouts keep their defaults (the conf has no keys for them).
        """
        return cls(
            endpoint_url=endpoint_url,
            region=online.region,
            write_api=write_api,
            placeholder_credentials=placeholder_credentials,
            max_in_flight=online.max_in_flight,
            max_attempts=online.max_attempts,
            base_backoff_ms=online.base_backoff_ms,
            max_backoff_ms=online.max_backoff_ms,
            partitions=online.partitions,
            dead_letter_root=online.dead_letter_root,
            dead_letter_tolerance=online.dead_letter_tolerance,
        )


@dataclass(frozen=True)
class Item:
    """One record bound for one feature group; ``ttl`` is its online TTL (None: it never expires)."""

    group: str
    record: Record
    ttl: TtlDuration | None = None


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


class FatalPushError(RuntimeError):
    """A failure that every record would hit (missing group, no access, endpoint down): stop the push."""


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
