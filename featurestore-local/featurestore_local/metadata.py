"""Feature metadata: UpdateFeatureMetadata's rules and the FeatureMetadata shape.

A feature has metadata from the moment its group exists (type, creation time); a description and
up to 25 key-value parameters are added by UpdateFeatureMetadata. The limits are the ``sagemaker``
model's (``FeatureDescription``, ``FeatureParameterKey``/``Value``, ``FeatureParameterAdditions``/
``Removals``) and the developer guide's "up to 25 parameters"; violations are answered
``ValidationException`` in the service's constraint wording.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import RESOURCE_NOT_FOUND, ApiError
from .schema import FeatureGroup, JsonObject, control_validation
from .storage import FeatureMetadataRow

MAX_FEATURE_DESCRIPTION_LENGTH = 255  # model: FeatureDescription {"min": 0, "max": 255}
MAX_PARAMETER_LENGTH = 255  # model: FeatureParameterKey / FeatureParameterValue {"min": 1, "max": 255}
MAX_PARAMETER_CHANGES = 25  # model: FeatureParameterAdditions / FeatureParameterRemovals {"max": 25}
MAX_PARAMETERS = 25  # model: FeatureParameters {"max": 25}; guide: "You can add up to 25 parameters"
MAX_FEATURE_GROUP_NAME_OR_ARN_LENGTH = 256  # sagemaker model: FeatureGroupNameOrArn {"max": 256}
PARAMETER_PATTERN = r"([\p{L}\p{Z}\p{N}_.:/=+\-]*)"
_PARAMETER_PUNCTUATION = frozenset("_.:/=+-")


def _is_parameter_text(text: str) -> bool:
    """The model's pattern: letters, separators (spaces), numbers and ``_.:/=+-``."""
    return all(unicodedata.category(char)[0] in "LZN" or char in _PARAMETER_PUNCTUATION for char in text)


class _Violations:
    """Constraint failures in the json 1.1 front end's wording, all reported in one error."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, path: str, value: Any, constraint: str) -> None:
        quoted = f" '{value}'" if isinstance(value, str) and len(value) <= 64 else ""
        self.messages.append(f"Value{quoted} at '{path}' failed to satisfy constraint: {constraint}")

    def text(self, path: str, value: Any, low: int, high: int, *, parameter: bool = False) -> None:
        if not isinstance(value, str):
            self.messages.append(f"Value at '{path}' must be a string")
        elif len(value) > high:
            self.add(path, value, f"Member must have length less than or equal to {high}")
        elif len(value) < low:
            self.add(path, value, f"Member must have length greater than or equal to {low}")
        elif parameter and not _is_parameter_text(value):
            self.add(path, value, f"Member must satisfy regular expression pattern: {PARAMETER_PATTERN}")

    def items(self, path: str, value: Any) -> list[Any]:
        """The list at ``path`` (empty when omitted), checked against the 25-change limit."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.messages.append(f"Value at '{path}' must be a list")
            return []
        if len(value) > MAX_PARAMETER_CHANGES:
            self.add(path, None, f"Member must have length less than or equal to {MAX_PARAMETER_CHANGES}")
        return value

    def raise_if_any(self) -> None:
        if self.messages:
            count = len(self.messages)
            listed = "; ".join(self.messages[:5])
            more = f"; and {count - 5} more" if count > 5 else ""
            raise control_validation(f"{count} validation error{'s' if count > 1 else ''} detected: {listed}{more}")


def feature_not_found(group: str, feature: str) -> ApiError:
    return ApiError(
        RESOURCE_NOT_FOUND,
        f"Resource Not Found: Amazon SageMaker can't find a Feature with name {feature} in FeatureGroup {group}",
        400,
    )


def require_feature(group: FeatureGroup, feature: Any) -> str:
    """The feature name, after the model's checks; ResourceNotFound if the group lacks it."""
    found = _Violations()
    found.text("featureName", feature, 1, 64)
    found.raise_if_any()
    if feature not in group.features:
        raise feature_not_found(group.name, str(feature))
    return str(feature)


def check_group_name(value: Any) -> None:
    """FeatureGroupNameOrArn's length, as the front end checks it before the operation runs."""
    if isinstance(value, str) and len(value) > MAX_FEATURE_GROUP_NAME_OR_ARN_LENGTH:
        found = _Violations()
        found.add(
            "featureGroupName",
            None,
            f"Member must have length less than or equal to {MAX_FEATURE_GROUP_NAME_OR_ARN_LENGTH}",
        )
        found.raise_if_any()


def apply_update(
    params: JsonObject, current: FeatureMetadataRow | None, *, group: str, feature: str, now: float
) -> FeatureMetadataRow:
    """The metadata after an UpdateFeatureMetadata request, or ValidationException.

    Removals apply before additions; an addition of an existing key replaces its value. Naming a
    key twice, or in both lists, is refused rather than resolved by an order the service does not
    document. Removing a key that is not there is not an error.
    """
    found = _Violations()
    description = params.get("Description")
    if description is not None:
        found.text("description", description, 0, MAX_FEATURE_DESCRIPTION_LENGTH)
    additions: dict[str, str] = {}
    for index, item in enumerate(found.items("parameterAdditions", params.get("ParameterAdditions")), start=1):
        path = f"parameterAdditions.{index}.member"
        if not isinstance(item, dict):
            found.messages.append(f"Value at '{path}' must be an object with Key and Value")
            continue
        key, value = item.get("Key"), item.get("Value")
        found.text(f"{path}.key", key, 1, MAX_PARAMETER_LENGTH, parameter=True)
        found.text(f"{path}.value", value, 1, MAX_PARAMETER_LENGTH, parameter=True)
        if isinstance(key, str) and isinstance(value, str):
            if key in additions:
                found.messages.append(f"Parameter key '{key}' is added more than once")
            additions[key] = value
    removals: set[str] = set()
    for index, key in enumerate(found.items("parameterRemovals", params.get("ParameterRemovals")), start=1):
        found.text(f"parameterRemovals.{index}.member", key, 1, MAX_PARAMETER_LENGTH, parameter=True)
        if isinstance(key, str):
            if key in additions:
                found.messages.append(f"Parameter key '{key}' is in both ParameterAdditions and ParameterRemovals")
            removals.add(key)
    found.raise_if_any()

    parameters = {item["Key"]: item["Value"] for item in (current.parameters if current else [])}
    for key in removals:
        parameters.pop(key, None)
    parameters.update(additions)
    if len(parameters) > MAX_PARAMETERS:
        raise control_validation(
            f"Feature {feature} of FeatureGroup {group} would have {len(parameters)} parameters; "
            f"a feature has at most {MAX_PARAMETERS}"
        )
    return FeatureMetadataRow(
        group_name=group,
        feature_name=feature,
        description=description if description is not None else (current.description if current else None),
        parameters=[{"Key": key, "Value": value} for key, value in parameters.items()],
        last_modified=now,
    )


def feature_metadata(group: FeatureGroup, feature: str, row: FeatureMetadataRow | None) -> JsonObject:
    """The FeatureMetadata shape (DescribeFeatureMetadata's output, a Search result)."""
    created = group.description["CreationTime"]
    result: JsonObject = {
        "FeatureGroupArn": group.description["FeatureGroupArn"],
        "FeatureGroupName": group.name,
        "FeatureName": feature,
        "FeatureType": group.features[feature].feature_type,
        "CreationTime": created,
        "LastModifiedTime": row.last_modified if row else created,
        "Parameters": list(row.parameters) if row else [],
    }
    if row is not None and row.description is not None:
        result["Description"] = row.description
    return result
