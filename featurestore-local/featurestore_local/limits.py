"""The service's size limits, and the JSON parsing that keeps a request body within them.

Two kinds of limit, checked at two points as the service does:

- the model's constraints (``sagemaker-featurestore-runtime`` 2020-07-01 ``service-2.json``): the
  service's front end checks them on the whole request before any operation runs, so a violation
  anywhere fails the call, BatchWriteRecord included. botocore checks only ``min`` client-side,
  never ``max`` or ``pattern`` (``botocore/validate.py``), so these reach the service and here.
- the quotas (https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-quotas.html): sizes
  of a record and of its identifier, checked per record, so in a BatchWriteRecord only the
  entry fails.

docs/online-store.md lists each limit with its source.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

from .errors import ApiError, validation

# Model: ValueAsString {"max": 358400}; ValueAsStringList {"max": 358400} (elements).
MAX_VALUE_LENGTH = 358_400
MAX_VALUE_LIST_LENGTH = 358_400
# Model: FeatureName {"min": 1, "max": 64, "pattern": "^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}"}.
MAX_FEATURE_NAME_LENGTH = 64
FEATURE_NAME_PATTERN = "^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}"
# Model: FeatureGroupNameOrArn {"min": 1, "max": 150}.
MAX_GROUP_NAME_OR_ARN_LENGTH = 150
# Model: ListRecordsNextToken {"min": 1, "max": 8192}.
MAX_NEXT_TOKEN_LENGTH = 8192
# Model: TtlDurationValue is an "integer" (32-bit signed in the AWS models), min 1.
MAX_INTEGER = 2**31 - 1
# Quotas: "Maximum size of a record: 350KB" and "of a record identifier: 2KB", in bytes of UTF-8;
# 350 KB is the model's 358400, so KB here is 1024 bytes.
MAX_RECORD_BYTES = 350 * 1024
MAX_RECORD_IDENTIFIER_BYTES = 2 * 1024
# Deeper than any valid request (the deepest, a BatchWriteRecord body -> Entries -> entry -> Record
# -> value -> ValueAsStringList, is 6) and far below the recursion limit json.loads would hit.
MAX_JSON_DEPTH = 32
# A Message is at most 2048 characters in the model; violations beyond these are counted only.
_MAX_LISTED_VIOLATIONS = 5
_MAX_QUOTED_VALUE = 64

_FEATURE_NAME_RE = re.compile(FEATURE_NAME_PATTERN[1:])
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


class BodyError(ValueError):
    """A request body that is not a JSON document within the limits."""


def loads(body: bytes | str) -> Any:
    """Parse a request body as the service's front end would, or raise :class:`BodyError`.

    Only UTF-8 is accepted (``json.loads`` on bytes would also take UTF-16 and UTF-32), and
    nesting is bounded: a deep enough document makes ``json.loads`` raise RecursionError, and a
    merely deep one would make any later recursive walk (``json.dumps`` of an echoed entry) do so.
    A ``\\uD800``-style escape with no partner decodes to a string that is not Unicode text and
    that SQLite cannot store; escaped pairs (how boto3 sends an emoji) are fine.
    """
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise BodyError(f"The request body is not UTF-8: {exc}") from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise BodyError(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and integers past sys.get_int_max_str_digits()
        raise BodyError(f"Malformed JSON body: {exc}") from None
    # Fewer containers than the limit cannot nest deeper than it; counting is cheap, walking is not.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _nests_deeper(document, MAX_JSON_DEPTH):
        raise BodyError(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE_ESCAPE_RE.search(text):
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BodyError("The request body is not Unicode text: it escapes an unpaired UTF-16 surrogate") from None
    return document


def _nests_deeper(document: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit``: one level at a time, so depth costs no stack.

    About as costly as ``json.loads`` itself for a BatchWriteRecord (a regular expression pass
    over the text was twice that).
    """
    level = [document] if isinstance(document, dict | list) else []
    for _ in range(limit):
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below.extend([child for child in children if isinstance(child, dict | list)])
        if not below:
            return False
        level = below
    return True


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8; a lone surrogate (legal in JSON escapes) counts its 3 bytes."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def record_size(features: Iterable[dict[str, Any]]) -> int:
    """Size of a record: the UTF-8 bytes of every feature name and value.

    The quotas page gives the 350 KB limit but not how a record is measured; names plus values is
    how DynamoDB, which the online store's limits resemble, sizes an item.
    """
    parts: list[str] = []
    for feature in features:
        parts.append(feature["FeatureName"])
        if "ValueAsStringList" in feature:
            parts.extend(feature["ValueAsStringList"])
        else:
            parts.append(feature["ValueAsString"])
    return utf8_size("".join(parts))


def check_record_size(features: list[dict[str, Any]]) -> None:
    size = record_size(features)
    if size > MAX_RECORD_BYTES:
        raise validation(f"Record is {size} bytes; the maximum size of a record is {MAX_RECORD_BYTES} bytes (350 KB)")


def check_identifier_size(value: str, what: str) -> None:
    """The 2 KB quota on a record identifier; ``what`` names the feature or request member."""
    size = utf8_size(value)
    if size > MAX_RECORD_IDENTIFIER_BYTES:
        raise validation(
            f"Record identifier {what} is {size} bytes; the maximum size of a record identifier "
            f"is {MAX_RECORD_IDENTIFIER_BYTES} bytes (2 KB)"
        )


class _Violations:
    """Model-constraint failures, worded as the service's front end words them."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def _add(self, path: str, value: str | None, constraint: str) -> None:
        """Quote the value, as the service does, unless it is a list or too long to be useful."""
        quoted = f" '{value}'" if value is not None and len(value) <= _MAX_QUOTED_VALUE else ""
        self.messages.append(f"Value{quoted} at '{path}' failed to satisfy constraint: {constraint}")

    def length(self, path: str, value: Any, high: int, low: int = 0) -> None:
        """``value``'s length (characters of a string, members of a list) within [low, high]."""
        if not isinstance(value, str | list):
            return  # the operation reports a wrong type
        shown = value if isinstance(value, str) else None
        if len(value) > high:
            self._add(path, shown, f"Member must have length less than or equal to {high}")
        elif len(value) < low:
            self._add(path, shown, f"Member must have length greater than or equal to {low}")

    def feature_name(self, path: str, value: Any) -> None:
        if not isinstance(value, str) or _valid_feature_name(value):
            return
        if len(value) > MAX_FEATURE_NAME_LENGTH or not value:
            self.length(path, value, MAX_FEATURE_NAME_LENGTH, 1)
        else:
            self._add(path, value, f"Member must satisfy regular expression pattern: {FEATURE_NAME_PATTERN}")

    def integer(self, path: str, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_INTEGER:
            self._add(path, str(value), f"Member must have value less than or equal to {MAX_INTEGER}")

    def group_name(self, path: str, value: Any) -> None:
        self.length(path, value, MAX_GROUP_NAME_OR_ARN_LENGTH, 1)

    def feature_names(self, path: str, names: Any) -> None:
        for index, name in _members(names):
            self.feature_name(f"{path}.{index}.member", name)

    def record(self, path: str, record: Any) -> None:
        for index, feature in _members(record):
            if not isinstance(feature, dict) or _plainly_valid(feature):
                continue
            member = f"{path}.{index}.member"
            self.feature_name(f"{member}.featureName", feature.get("FeatureName"))
            self.length(f"{member}.valueAsString", feature.get("ValueAsString"), MAX_VALUE_LENGTH)
            values = feature.get("ValueAsStringList")
            self.length(f"{member}.valueAsStringList", values, MAX_VALUE_LIST_LENGTH)
            for position, element in _members(values):
                self.length(f"{member}.valueAsStringList.{position}.member", element, MAX_VALUE_LENGTH)

    def ttl(self, path: str, ttl: Any) -> None:
        if isinstance(ttl, dict):
            self.integer(f"{path}.value", ttl.get("Value"))

    def write(self, path: str, entry: dict[str, Any]) -> None:
        """Members shared by PutRecord and a BatchWriteRecord entry."""
        self.group_name(f"{path}featureGroupName", entry.get("FeatureGroupName"))
        self.record(f"{path}record", entry.get("Record"))
        self.ttl(f"{path}ttlDuration", entry.get("TtlDuration"))


@functools.lru_cache(maxsize=4096)
def _valid_feature_name(name: str) -> bool:
    """Cached: a push repeats the same few names in every record."""
    return len(name) <= MAX_FEATURE_NAME_LENGTH and _FEATURE_NAME_RE.fullmatch(name) is not None


def _plainly_valid(feature: dict[str, Any]) -> bool:
    """The common case, checked without building any path: a valid name and a short scalar."""
    name, value = feature.get("FeatureName"), feature.get("ValueAsString")
    return (
        isinstance(name, str)
        and _valid_feature_name(name)
        and isinstance(value, str)
        and len(value) <= MAX_VALUE_LENGTH
        and "ValueAsStringList" not in feature
    )


def _members(items: Any) -> Iterable[tuple[int, Any]]:
    """1-based (index, item) pairs of a list, as the service numbers them; nothing otherwise."""
    return enumerate(items, start=1) if isinstance(items, list) else ()


def check_runtime_request(operation: str, params: dict[str, Any]) -> None:
    """Raise ValidationError if ``params`` break a model constraint of ``operation``."""
    found = _Violations()
    if operation == "PutRecord":
        found.write("", params)
    elif operation == "BatchWriteRecord":
        for index, entry in _members(params.get("Entries")):
            if isinstance(entry, dict):
                found.write(f"entries.{index}.member.", entry)
        found.ttl("ttlDuration", params.get("TtlDuration"))
    elif operation == "BatchGetRecord":
        for index, item in _members(params.get("Identifiers")):
            if not isinstance(item, dict):
                continue
            path = f"identifiers.{index}.member"
            found.group_name(f"{path}.featureGroupName", item.get("FeatureGroupName"))
            for position, value in _members(item.get("RecordIdentifiersValueAsString")):
                found.length(f"{path}.recordIdentifiersValueAsString.{position}.member", value, MAX_VALUE_LENGTH)
            found.feature_names(f"{path}.featureNames", item.get("FeatureNames"))
    else:  # GetRecord, DeleteRecord, ListRecords
        found.group_name("featureGroupName", params.get("FeatureGroupName"))
        found.length("recordIdentifierValueAsString", params.get("RecordIdentifierValueAsString"), MAX_VALUE_LENGTH)
        found.length("eventTime", params.get("EventTime"), MAX_VALUE_LENGTH)
        found.feature_names("featureNames", params.get("FeatureNames"))
        found.length("nextToken", params.get("NextToken"), MAX_NEXT_TOKEN_LENGTH, 1)
    if found.messages:
        raise _constraint_error(found.messages)


def _constraint_error(messages: list[str]) -> ApiError:
    count = len(messages)
    listed = "; ".join(messages[:_MAX_LISTED_VIOLATIONS])
    more = f"; and {count - _MAX_LISTED_VIOLATIONS} more" if count > _MAX_LISTED_VIOLATIONS else ""
    return validation(f"{count} validation error{'s' if count > 1 else ''} detected: {listed}{more}")
