"""Service errors and the wire codes the real endpoints use.

Every failure the emulator reports is an :class:`ApiError` carrying the exact
code botocore maps to a modeled exception (``client.exceptions.<Code>``), so
production error handling is exercised unchanged.  The runtime (rest-json) and
control-plane (json 1.1) models spell some codes differently, hence the two
families of constants below.
"""

from __future__ import annotations

# Runtime (sagemaker-featurestore-runtime, rest-json) codes, as modeled.
RESOURCE_NOT_FOUND = "ResourceNotFound"
VALIDATION_ERROR = "ValidationError"
ACCESS_FORBIDDEN = "AccessForbidden"
INTERNAL_FAILURE = "InternalFailure"
SERVICE_UNAVAILABLE = "ServiceUnavailable"

# Control-plane (sagemaker, json 1.1) codes.
RESOURCE_IN_USE = "ResourceInUse"
RESOURCE_LIMIT_EXCEEDED = "ResourceLimitExceeded"
VALIDATION_EXCEPTION = "ValidationException"

# Codes that are not modeled but that every AWS JSON service emits.
# ``ThrottlingException`` is in botocore's fixed list of throttling codes
# (botocore.retries.standard.ThrottledRetryableChecker and _retry.json), so
# both the legacy and the standard retry mode back off on it.
THROTTLING_EXCEPTION = "ThrottlingException"
SERIALIZATION_EXCEPTION = "SerializationException"
UNKNOWN_OPERATION = "UnknownOperationException"


# The models' Message shape: {"type": "string", "max": 2048}. Messages quote values, which can be
# up to 358400 characters long.
MAX_MESSAGE_LENGTH = 2048


class ApiError(Exception):
    """A failure that is reported to the client as an AWS error response."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation(message: str) -> ApiError:
    """Runtime-side request validation failure (HTTP 400)."""
    return ApiError(VALIDATION_ERROR, message, 400)


def group_not_found(name: str, status: int = 404) -> ApiError:
    """The service's wording for a feature group that does not exist.

    The runtime models ResourceNotFound as HTTP 404; the json 1.1 control plane
    answers 400 for every client error, so callers there pass ``status=400``.
    """
    return ApiError(
        RESOURCE_NOT_FOUND,
        f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {name}",
        status,
    )


def throttled(message: str = "Rate exceeded") -> ApiError:
    """A throttling answer botocore classifies as throttling (HTTP 400)."""
    return ApiError(THROTTLING_EXCEPTION, message, 400)
