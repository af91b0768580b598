"""Sort a failed Feature Store write into what the writer does next, and how long it waits before a retry.

Every boto3 exception, and every per-entry ``ErrorCode`` of BatchWriteRecord, becomes a
:class:`Failure` of one kind: ``throttle`` and ``transient`` are retried, ``unreachable`` is
retried but stops the push once a record's budget is used up, ``reject`` is dead-lettered at once,
``fatal`` stops the push. The table of answers and outcomes is in docs/online-store.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

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

FailureKind = Literal["throttle", "transient", "unreachable", "reject", "fatal"]


@dataclass(frozen=True)
class Failure:
    """One failed request or batch entry: its kind, error code and message."""

    kind: FailureKind
    code: str
    message: str

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


def classify(exc: Exception) -> Failure:
    """Sort a boto3 exception into throttle / transient / unreachable / reject / fatal.

    Anything that is not an AWS or HTTP error (a bug) is re-raised.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in THROTTLING_CODES or status == 429:
            return Failure("throttle", code, message)
        if code in FATAL_CODES or status in (401, 403):
            return Failure("fatal", code, message)
        if code in TRANSIENT_CODES or status >= 500:
            return Failure("transient", code, message)
        return Failure("reject", code, message)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return Failure("fatal", type(exc).__name__, f"{exc} (credentials come from the default AWS chain only)")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError):
        return Failure("unreachable", type(exc).__name__, str(exc))
    if isinstance(exc, HTTPClientError):  # read timeouts and other transport errors
        return Failure("transient", type(exc).__name__, str(exc))
    raise exc


def classify_code(code: str, message: str) -> Failure:
    """Same as :func:`classify` for a per-entry ``ErrorCode`` of BatchWriteRecord."""
    if code in THROTTLING_CODES:
        return Failure("throttle", code, message)
    if code in FATAL_CODES:
        return Failure("fatal", code, message)
    if code in TRANSIENT_CODES:
        return Failure("transient", code, message)
    return Failure("reject", code, message)


def backoff_seconds(attempt: int, *, base_ms: float, max_ms: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff before attempt ``attempt + 1``."""
    ceiling = min(max_ms, base_ms * 2 ** min(attempt - 1, 30))
    return rng.uniform(0.0, ceiling) / 1000.0
