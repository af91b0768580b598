"""Feature group definitions and the service's record validation rules.

The point of the emulator is that code which passes against it also passes
against SageMaker, so the checks here mirror the documented service rules
(CreateFeatureGroup constraints, FeatureValue typing, EventTime formats, TTL)
rather than being lenient.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import VALIDATION_EXCEPTION, ApiError, validation
from .limits import MAX_FEATURE_NAME_LENGTH, MAX_INTEGER, check_identifier_size, check_record_size

JsonObject = dict[str, Any]
ErrorFactory = Callable[[str], ApiError]

ACCOUNT_ID = "000000000000"
RESERVED_FEATURE_NAMES = frozenset({"is_deleted", "write_time", "api_invocation_time"})
FEATURE_TYPES = ("Integral", "Fractional", "String")
COLLECTION_TYPES = ("List", "Set", "Vector")
TTL_UNIT_SECONDS = {
    "Seconds": 1,
    "Minutes": 60,
    "Hours": 3600,
    "Days": 86400,
    "Weeks": 604800,
}
MAX_FEATURE_DEFINITIONS = 2500
NAME_RULE = "1 to 64 characters matching [a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}"

_NAME_RE = re.compile(r"[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}")
_ARN_PREFIX_RE = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:feature-group/")
_INTEGRAL_RE = re.compile(r"[+-]?[0-9]+")
# The docs list yyyy-MM-dd'T'HH:mm:ssZ and yyyy-MM-dd'T'HH:mm:ss.SSSZ; other
# fractional precisions are accepted too (and truncated to microseconds).
_ISO_EVENT_TIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z"
)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# Event times must lie in [0000-01-01T00:00:00Z, 9999-12-31T23:59:59.999999999Z] (quotas page).
_EARLIEST_EVENT = -62_167_219_200.0
_LATEST_EVENT = 253_402_300_800.0
# What datetime can format, in microseconds since the epoch: 0001-01-01T00:00:00Z to
# 9999-12-31T23:59:59.999Z. An ExpiresAt beyond (a long TTL on a late event) is shown as the end.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_FORMATTABLE_US = -62_135_596_800 * 10**6
_LAST_FORMATTABLE_US = 253_402_300_800 * 10**6 - 1000


def control_validation(message: str) -> ApiError:
    """Control-plane validation failure (json 1.1 answers 400 with this code)."""
    return ApiError(VALIDATION_EXCEPTION, message, 400)


def resolve_group_name(name_or_arn: str) -> str:
    """Accept a feature group name or ARN, as the API does, and return the name."""
    match = _ARN_PREFIX_RE.match(name_or_arn)
    return name_or_arn[match.end() :] if match else name_or_arn


def is_valid_name(name: str) -> bool:
    """Feature group and feature names share the same pattern and 64-character limit.

    The pattern alone allows longer names (``[-_]*`` is unbounded), hence the length check.
    """
    return len(name) <= MAX_FEATURE_NAME_LENGTH and bool(_NAME_RE.fullmatch(name))


def format_timestamp(epoch: float) -> str:
    """ISO-8601 UTC string as used for ``ExpiresAt``; milliseconds only if needed."""
    micros = min(max(round(epoch * 1_000_000), _FIRST_FORMATTABLE_US), _LAST_FORMATTABLE_US)
    moment = _EPOCH + timedelta(microseconds=micros)
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"  # %Y does not pad years before 1000
    if moment.microsecond:
        return f"{text}.{moment.microsecond // 1000:03d}Z"
    return f"{text}Z"


def parse_ttl(value: Any, error: ErrorFactory) -> float:
    """Seconds represented by a ``TtlDuration`` structure."""
    if not isinstance(value, dict):
        raise error("TtlDuration must be an object with Unit and Value")
    unit, amount = value.get("Unit"), value.get("Value")
    if not isinstance(unit, str) or unit not in TTL_UNIT_SECONDS:
        raise error(f"TtlDuration.Unit must be one of {', '.join(TTL_UNIT_SECONDS)}, got {unit!r}")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_INTEGER:
        raise error(f"TtlDuration.Value must be an integer from 1 to {MAX_INTEGER}, got {amount!r}")
    return float(amount * TTL_UNIT_SECONDS[unit])


@dataclass(frozen=True)
class FeatureDefinition:
    """One entry of a group's ``FeatureDefinitions``."""

    name: str
    feature_type: str
    collection_type: str | None
    dimension: int | None


@dataclass(frozen=True)
class FeatureGroup:
    """A stored feature group: its DescribeFeatureGroup payload plus parsed rules."""

    name: str
    record_identifier: str
    event_time: str
    features: dict[str, FeatureDefinition]
    online_enabled: bool
    ttl_seconds: float | None
    description: JsonObject

    @classmethod
    def from_description(cls, description: JsonObject) -> FeatureGroup:
        features: dict[str, FeatureDefinition] = {}
        for item in description["FeatureDefinitions"]:
            dimension = item.get("CollectionConfig", {}).get("VectorConfig", {}).get("Dimension")
            features[item["FeatureName"]] = FeatureDefinition(
                name=item["FeatureName"],
                feature_type=item["FeatureType"],
                collection_type=item.get("CollectionType"),
                dimension=dimension,
            )
        online = description.get("OnlineStoreConfig", {})
        ttl = online.get("TtlDuration")
        return cls(
            name=description["FeatureGroupName"],
            record_identifier=description["RecordIdentifierFeatureName"],
            event_time=description["EventTimeFeatureName"],
            features=features,
            online_enabled=bool(online.get("EnableOnlineStore", False)),
            ttl_seconds=parse_ttl(ttl, control_validation) if ttl is not None else None,
            description=description,
        )

    def require_online_store(self) -> None:
        """Online reads/writes need ``EnableOnlineStore=True`` (default is False)."""
        if not self.online_enabled:
            raise validation(f"The OnlineStore is not enabled for FeatureGroup {self.name}")

    def check_feature_names(self, names: Any) -> list[str]:
        """Validate a ``FeatureNames`` filter against the definitions."""
        if not isinstance(names, list) or not names:
            raise validation("FeatureNames must be a non-empty list of feature names")
        for name in names:
            if not isinstance(name, str) or name not in self.features:
                raise validation(f"Feature {name} is not defined in FeatureGroup {self.name}")
        return [str(name) for name in names]

    def parse_event_time(self, value: Any) -> float:
        """Epoch seconds of an event time in the group's EventTime feature type."""
        if not isinstance(value, str):
            raise validation(f"EventTime must be a string, got {value!r}")
        if self.features[self.event_time].feature_type == "Fractional":
            try:
                seconds = float(value)
            except ValueError:
                seconds = math.nan
            if not value.strip() or not _EARLIEST_EVENT <= seconds < _LATEST_EVENT:
                raise validation(
                    f"Invalid EventTime {value!r} for feature {self.event_time}: expected Unix epoch seconds "
                    "from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z"
                )
            return seconds
        match = _ISO_EVENT_TIME_RE.fullmatch(value)
        try:
            if match is None:
                raise ValueError(value)
            year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
            moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            raise validation(
                f"Invalid EventTime {value!r} for feature {self.event_time}: expected "
                "yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ"
            ) from None
        fraction = match.group(7) or ""
        return moment.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)

    def validate_record(self, record: Any) -> tuple[str, float, list[JsonObject]]:
        """Check a ``Record`` and return (identifier, event epoch, normalised values)."""
        if not isinstance(record, list) or not record:
            raise validation("Record must be a non-empty list of FeatureValue")
        values: dict[str, JsonObject] = {}
        for item in record:
            if not isinstance(item, dict) or not isinstance(item.get("FeatureName"), str):
                raise validation("Each FeatureValue must be an object with a FeatureName")
            name = item["FeatureName"]
            if name in values:
                raise validation(f"Feature {name} is specified more than once in the Record")
            definition = self.features.get(name)
            if definition is None:
                raise validation(f"Feature {name} is not defined in FeatureGroup {self.name}")
            values[name] = _validate_value(definition, item)
        for required in (self.record_identifier, self.event_time):
            if required not in values:
                raise validation(
                    f"Record is missing feature {required}, which FeatureGroup {self.name} requires in every record"
                )
        identifier = values[self.record_identifier]["ValueAsString"]
        if identifier == "":
            raise validation(f"RecordIdentifier feature {self.record_identifier} must not be empty")
        check_identifier_size(identifier, self.record_identifier)
        event_time = self.parse_event_time(values[self.event_time]["ValueAsString"])
        features = list(values.values())
        check_record_size(features)
        return identifier, event_time, features


def _check_scalar(definition: FeatureDefinition, value: Any) -> None:
    if not isinstance(value, str):
        raise validation(f"Value of feature {definition.name} must be a string, got {value!r}")
    if definition.feature_type == "Integral":
        if _INTEGRAL_RE.fullmatch(value) and _INT64_MIN <= int(value) <= _INT64_MAX:
            return
        raise validation(f"Value {value!r} of feature {definition.name} is not a valid Integral (64-bit integer)")
    if definition.feature_type == "Fractional":
        try:
            # Underscore digit separators are Python-only; the service rejects them.
            if value.strip() and "_" not in value:
                float(value)
                return
        except ValueError:
            pass
        raise validation(f"Value {value!r} of feature {definition.name} is not a valid Fractional")


def _validate_value(definition: FeatureDefinition, item: JsonObject) -> JsonObject:
    has_scalar = "ValueAsString" in item and item["ValueAsString"] is not None
    has_list = "ValueAsStringList" in item and item["ValueAsStringList"] is not None
    if has_scalar == has_list:
        raise validation(f"Feature {definition.name} must have exactly one of ValueAsString or ValueAsStringList")
    if definition.collection_type is None:
        if has_list:
            raise validation(f"Feature {definition.name} is not a collection; use ValueAsString")
        _check_scalar(definition, item["ValueAsString"])
        return {"FeatureName": definition.name, "ValueAsString": item["ValueAsString"]}
    if has_scalar:
        raise validation(f"Feature {definition.name} is a {definition.collection_type}; use ValueAsStringList")
    elements = item["ValueAsStringList"]
    if not isinstance(elements, list):
        raise validation(f"ValueAsStringList of feature {definition.name} must be a list")
    for element in elements:
        _check_scalar(definition, element)
    if definition.collection_type == "Set" and len(set(elements)) != len(elements):
        raise validation(f"Set feature {definition.name} contains duplicate elements")
    if definition.collection_type == "Vector" and len(elements) != definition.dimension:
        raise validation(
            f"Vector feature {definition.name} must have {definition.dimension} elements, got {len(elements)}"
        )
    return {"FeatureName": definition.name, "ValueAsStringList": list(elements)}


def _normalise_definition(item: Any) -> JsonObject:
    if not isinstance(item, dict):
        raise control_validation("Each FeatureDefinition must be an object")
    name, feature_type = item.get("FeatureName"), item.get("FeatureType")
    if not isinstance(name, str) or not is_valid_name(name):
        raise control_validation(f"Invalid FeatureName {name!r}: a feature name is {NAME_RULE}")
    if name in RESERVED_FEATURE_NAMES:
        raise control_validation(f"FeatureName {name} is reserved and cannot be used")
    if feature_type not in FEATURE_TYPES:
        raise control_validation(
            f"FeatureType of {name} must be one of {', '.join(FEATURE_TYPES)}, got {feature_type!r}"
        )
    result: JsonObject = {"FeatureName": name, "FeatureType": feature_type}
    collection = item.get("CollectionType")
    if collection is None:
        return result
    if collection not in COLLECTION_TYPES:
        raise control_validation(f"CollectionType of {name} must be one of {', '.join(COLLECTION_TYPES)}")
    result["CollectionType"] = collection
    if collection == "Vector":
        config = item.get("CollectionConfig")
        vector = config.get("VectorConfig") if isinstance(config, dict) else None
        dimension = vector.get("Dimension") if isinstance(vector, dict) else None
        if feature_type != "Fractional":
            raise control_validation(f"Vector feature {name} must have FeatureType Fractional")
        if isinstance(dimension, bool) or not isinstance(dimension, int) or not (1 <= dimension <= 8192):
            raise control_validation(f"Vector feature {name} needs CollectionConfig.VectorConfig.Dimension in 1..8192")
        result["CollectionConfig"] = {"VectorConfig": {"Dimension": dimension}}
    return result


def _key_feature(
    definitions: dict[str, JsonObject],
    params: JsonObject,
    member: str,
    allowed: tuple[str, ...],
) -> str:
    name = params.get(member)
    if not isinstance(name, str) or name not in definitions:
        raise control_validation(f"{member} {name!r} must be one of the FeatureDefinitions")
    definition = definitions[name]
    if definition["FeatureType"] not in allowed or "CollectionType" in definition:
        raise control_validation(f"{member} {name} must be a non-collection feature of type {' or '.join(allowed)}")
    return name


def new_group_description(params: JsonObject, *, region: str, now: float) -> JsonObject:
    """Validate a CreateFeatureGroup request and build its DescribeFeatureGroup payload."""
    name = params.get("FeatureGroupName")
    if not isinstance(name, str) or not is_valid_name(name):
        raise control_validation(f"FeatureGroupName {name!r} must be {NAME_RULE}")
    raw_definitions = params.get("FeatureDefinitions")
    if not isinstance(raw_definitions, list) or not (1 <= len(raw_definitions) <= MAX_FEATURE_DEFINITIONS):
        raise control_validation(f"FeatureDefinitions must list between 1 and {MAX_FEATURE_DEFINITIONS} features")
    definitions: dict[str, JsonObject] = {}
    for item in raw_definitions:
        definition = _normalise_definition(item)
        if definition["FeatureName"] in definitions:
            raise control_validation(f"Duplicate FeatureName {definition['FeatureName']}")
        definitions[definition["FeatureName"]] = definition
    record_identifier = _key_feature(definitions, params, "RecordIdentifierFeatureName", ("String", "Integral"))
    event_time = _key_feature(definitions, params, "EventTimeFeatureName", ("String", "Fractional"))

    online = params.get("OnlineStoreConfig")
    offline = params.get("OfflineStoreConfig")
    if online is None and offline is None:
        raise control_validation("You must include at least one of OnlineStoreConfig and OfflineStoreConfig")
    description: JsonObject = {
        "FeatureGroupArn": f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:feature-group/{name}",
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": record_identifier,
        "EventTimeFeatureName": event_time,
        "FeatureDefinitions": list(definitions.values()),
        "CreationTime": now,
        "FeatureGroupStatus": "Created",
        "ThroughputConfig": params.get("ThroughputConfig") or {"ThroughputMode": "OnDemand"},
    }
    if online is not None:
        if not isinstance(online, dict):
            raise control_validation("OnlineStoreConfig must be an object")
        if online.get("TtlDuration") is not None:
            parse_ttl(online["TtlDuration"], control_validation)
        description["OnlineStoreConfig"] = {"EnableOnlineStore": False, **online}
    if offline is not None:
        description.update(_offline_description(name, offline, region, now))
    for member in ("RoleArn", "Description"):
        if params.get(member) is not None:
            description[member] = params[member]
    text = description.get("Description", "")
    if not isinstance(text, str) or len(text) > 128:
        raise control_validation("Description must be a string of at most 128 characters")
    return description


def _offline_description(name: str, offline: Any, region: str, now: float) -> JsonObject:
    """Echo OfflineStoreConfig with the fields the service resolves at creation."""
    storage = offline.get("S3StorageConfig") if isinstance(offline, dict) else None
    if not isinstance(storage, dict) or not isinstance(storage.get("S3Uri"), str):
        raise control_validation("OfflineStoreConfig.S3StorageConfig.S3Uri is required")
    stamp = int(now)
    config: JsonObject = {
        **offline,
        "S3StorageConfig": dict(offline["S3StorageConfig"]),
    }
    s3 = config["S3StorageConfig"]
    s3["ResolvedOutputS3Uri"] = (
        f"{s3['S3Uri'].rstrip('/')}/{ACCOUNT_ID}/sagemaker/{region}/offline-store/{name.lower()}-{stamp}/data"
    )
    if not config.get("DisableGlueTableCreation") and "DataCatalogConfig" not in config:
        config["DataCatalogConfig"] = {
            "TableName": f"{name.lower().replace('-', '_')}_{stamp}",
            "Catalog": "AwsDataCatalog",
            "Database": "sagemaker_featurestore",
        }
    return {"OfflineStoreConfig": config, "OfflineStoreStatus": {"Status": "Active"}}
