"""Register feature groups with SageMaker Feature Store from their definitions in code.

The definitions are the source of truth: the request is derived from them (types, record
identifier = join key, event time feature ``event_time`` as a String, the group's description),
and registration is idempotent: an existing group with the same definitions is left alone, one with
different definitions is an error naming the differing features, because SageMaker cannot change a
feature's type or remove a feature in place. The fix is bumping the group's ``version`` (which
publishes ``<group>_v<N>`` side by side), or deleting and re-creating the group (which drops its
online records).

Each feature's metadata (description and the parameters of :func:`feature_parameters`) is
published with UpdateFeatureMetadata, only where it differs from what the service holds: one
Search call per group reads the current metadata, so a rerun with nothing changed makes no update.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from botocore.exceptions import ClientError

from features.constants import EVENT_TIME
from features.definitions import FeatureGroup, FeatureSpec
from features.online.records import record_types

log = logging.getLogger(__name__)

#: SageMaker limits: group Description 128 characters, feature Description 255.
_GROUP_DESCRIPTION_MAX = 128
_FEATURE_DESCRIPTION_MAX = 255

#: created: new group; exists: unchanged; updated: existed, feature metadata republished.
Registration = Literal["created", "exists", "updated"]
#: The characters SageMaker's FeatureParameter Key/Value pattern allows, besides letters, digits and spaces.
_PARAMETER_PUNCTUATION = frozenset("_.:/=+-")
_PARAMETER_MAX = 255
_SEARCH_PAGE = 100
#: The feature parameters this pipeline publishes (and so may remove); others are left alone.
_PUBLISHED_KEYS = ("owner", "source", "version", "tags", "window", "aggregation", "inputs", "unit")


class RegistrationError(RuntimeError):
    """A group cannot be registered as defined; the message says what differs and how to fix it."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def feature_group_request(
    group: FeatureGroup, *, offline_s3_uri: str | None, role_arn: str | None, enable_online: bool = True
) -> dict[str, Any]:
    """The CreateFeatureGroup request for ``group``.

    ``OfflineStoreConfig`` is added only with ``offline_s3_uri`` (SageMaker then needs
    ``role_arn`` to write there). The pipeline writes its offline store itself and pushes with
    ``TargetStores=["OnlineStore"]``, so an offline config here only gives SageMaker's catalog a
    location; it never duplicates data.
    """
    if offline_s3_uri is not None and not offline_s3_uri.startswith("s3://"):
        raise ValueError(f"offline_s3_uri must be an s3:// URI, got {offline_s3_uri!r}")
    if offline_s3_uri is not None and role_arn is None:
        raise ValueError("an offline store needs role_arn: the IAM role SageMaker uses to write to offline_s3_uri")
    definitions = [{"FeatureName": name, "FeatureType": dtype} for name, dtype in record_types(group).items()]
    request: dict[str, Any] = {
        "FeatureGroupName": group.name,
        "RecordIdentifierFeatureName": group.entity.join_key,
        "EventTimeFeatureName": EVENT_TIME,
        "FeatureDefinitions": definitions,
        "OnlineStoreConfig": {"EnableOnlineStore": enable_online},
        "Description": _clip(group.description, _GROUP_DESCRIPTION_MAX),
    }
    if offline_s3_uri is not None:
        request["OfflineStoreConfig"] = {"S3StorageConfig": {"S3Uri": offline_s3_uri}}
    if role_arn is not None:
        request["RoleArn"] = role_arn
    return request


def definition_differences(existing: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs between a DescribeFeatureGroup answer and a CreateFeatureGroup request."""

    def types(payload: dict[str, Any]) -> dict[str, str]:
        return {
            d["FeatureName"]: d["FeatureType"] + (f"/{d['CollectionType']}" if d.get("CollectionType") else "")
            for d in payload["FeatureDefinitions"]
        }

    have, want = types(existing), types(wanted)
    differences = []
    added = sorted(set(want) - set(have))
    removed = sorted(set(have) - set(want))
    changed = sorted(n for n in set(have) & set(want) if have[n] != want[n])
    if added:
        differences.append(f"not in the registered group: {', '.join(added)}")
    if removed:
        differences.append(f"registered but no longer defined: {', '.join(removed)}")
    if changed:
        differences.append("type changed: " + ", ".join(f"{n} ({have[n]} -> {want[n]})" for n in changed))
    for member in ("RecordIdentifierFeatureName", "EventTimeFeatureName"):
        if existing.get(member) != wanted[member]:
            differences.append(f"{member} is {existing.get(member)!r}, defined as {wanted[member]!r}")
    online = bool(existing.get("OnlineStoreConfig", {}).get("EnableOnlineStore", False))
    if online != wanted["OnlineStoreConfig"]["EnableOnlineStore"]:
        differences.append(f"online store enabled is {online}, wanted {not online}")
    return differences


def _describe(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.describe_feature_group(FeatureGroupName=name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ResourceNotFoundException"):
            return None
        raise


def _wait_created(
    client: Any, name: str, *, timeout_s: float, poll_s: float, sleep: Callable[[float], None]
) -> dict[str, Any]:
    """Poll until the group is Created (real AWS takes a minute or so; the local runtime is instant)."""
    deadline = time.monotonic() + timeout_s
    while True:
        description = _describe(client, name)
        status = description.get("FeatureGroupStatus") if description else "missing"
        if description is not None and status == "Created":
            return description
        if status != "Creating":
            reason = description.get("FailureReason", "") if description else ""
            raise RegistrationError(f"feature group {name} is {status}, not Created{': ' + reason if reason else ''}")
        if time.monotonic() >= deadline:
            raise RegistrationError(
                f"feature group {name} still Creating after {timeout_s:.0f}s; run register again later to check it"
            )
        sleep(poll_s)


def _parameter_value(text: str) -> str:
    """``text`` as a FeatureParameter value: characters the service's pattern refuses become spaces."""
    cleaned = "".join(c if c.isalnum() or c.isspace() or c in _PARAMETER_PUNCTUATION else " " for c in text)
    return _clip(" ".join(cleaned.split()), _PARAMETER_MAX)


def _aggregation_text(spec: FeatureSpec) -> str | None:
    agg = spec.aggregation
    if agg is None:
        return None
    text = agg.op if agg.column is None else f"{agg.op} of {agg.column}"
    if agg.filter is not None:
        text += f" where {agg.filter.column} = {' or '.join(agg.filter.values)}"
    return text


def feature_parameters(group: FeatureGroup, spec: FeatureSpec) -> dict[str, str]:
    """The parameters published with ``spec``: what a Search over FeatureMetadata filters on.

    ``owner``, ``source``, ``version`` and ``tags`` (space-separated: the service's pattern has no
    comma) for every feature; ``window``, ``aggregation`` (``count_distinct of product_id where
    event_type = product_view``) or ``inputs`` (a derived feature's source columns), and ``unit``
    where they apply.
    """
    inputs = next((d.inputs for d in group.derived if d.name == spec.name), ())
    declared = {
        "owner": group.owner,
        "source": group.source.name,
        "version": str(group.version),
        "tags": " ".join(group.tags),
        "window": spec.window.name if spec.window else "",
        "aggregation": _aggregation_text(spec) or "",
        "inputs": " ".join(inputs),
        "unit": spec.unit or "",
    }
    return {key: _parameter_value(value) for key, value in declared.items() if value}


def _current_metadata(client: Any, group: FeatureGroup) -> dict[str, dict[str, Any]]:
    """Feature name -> its FeatureMetadata as the service holds it: one Search call per 100 features."""
    found: dict[str, dict[str, Any]] = {}
    request: dict[str, Any] = {
        "Resource": "FeatureMetadata",
        "SearchExpression": {"Filters": [{"Name": "FeatureGroupName", "Operator": "Equals", "Value": group.name}]},
        "MaxResults": _SEARCH_PAGE,
    }
    while True:
        page = client.search(**request)
        for result in page.get("Results", []):
            metadata = result.get("FeatureMetadata") or {}
            if metadata.get("FeatureGroupName") == group.name:
                found[str(metadata.get("FeatureName"))] = metadata
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def metadata_update(group: FeatureGroup, spec: FeatureSpec, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """The UpdateFeatureMetadata request that makes ``current`` match the definition; None if it does."""
    description = _clip(spec.description, _FEATURE_DESCRIPTION_MAX)
    wanted = feature_parameters(group, spec)
    have = {p["Key"]: p["Value"] for p in (current or {}).get("Parameters") or []}
    additions = [{"Key": k, "Value": v} for k, v in wanted.items() if have.get(k) != v]
    # Only keys this pipeline publishes are removed: a parameter someone added by hand is kept.
    removals = [k for k in _PUBLISHED_KEYS if k in have and k not in wanted]
    if (current or {}).get("Description", "") == description and not additions and not removals:
        return None
    request: dict[str, Any] = {"FeatureGroupName": group.name, "FeatureName": spec.name, "Description": description}
    if additions:
        request["ParameterAdditions"] = additions
    if removals:
        request["ParameterRemovals"] = removals
    return request


def publish_feature_metadata(client: Any, group: FeatureGroup, *, new: bool = False) -> int:
    """UpdateFeatureMetadata for each feature whose description or parameters differ; returns how many.

    ``new``: the group was just created and holds no metadata yet, so nothing is read first.
    """
    current = {} if new else _current_metadata(client, group)
    updated = 0
    for spec in group.features:
        request = metadata_update(group, spec, current.get(spec.name))
        if request is not None:
            client.update_feature_metadata(**request)
            updated += 1
    return updated


def refusal(group: FeatureGroup, differences: list[str]) -> RegistrationError:
    """The error for a registered group whose definitions differ: what differs and how to move on."""
    successor = f"{group.family}_v{group.version + 1}"
    return RegistrationError(
        f"feature group {group.name} is registered with different definitions ("
        + "; ".join(differences)
        + f"). SageMaker cannot change or remove features in place: set version={group.version + 1} in the "
        f"definition of {group.family} to publish {successor} side by side (offline and online), or delete "
        "and re-create the group (its online records are lost)"
    )


def _check_existing(
    group: FeatureGroup, existing: dict[str, Any], request: dict[str, Any], wait: Callable[[], object]
) -> None:
    differences = definition_differences(existing, request)
    if differences:
        raise refusal(group, differences)
    if existing.get("FeatureGroupStatus") != "Created":
        wait()
    if existing.get("Description", "") != request["Description"]:
        log.warning(
            "Feature group %s: its registered description differs from the definition's; SageMaker cannot "
            "update a group's description in place (the next version carries the new one)",
            group.name,
        )


def check_registered(client: Any, groups: Iterable[FeatureGroup], *, enable_online: bool = True) -> None:
    """Before a push without registration: each group must exist with the same definitions.

    Raises RegistrationError (one line) naming a missing group or the differences, so a changed
    definition stops the build before its first record instead of failing every record.
    """
    for group in groups:
        existing = _describe(client, group.name)
        if existing is None:
            raise RegistrationError(
                f"feature group {group.name} is not registered online; run `feature-pipeline register "
                f"--group {group.name}` (or set online_store.register: true)"
            )
        request = feature_group_request(group, offline_s3_uri=None, role_arn=None, enable_online=enable_online)
        differences = definition_differences(existing, request)
        if differences:
            raise refusal(group, differences)


def register_groups(
    client: Any,
    groups: Iterable[FeatureGroup],
    *,
    offline_s3_uri: str | None,
    role_arn: str | None,
    enable_online: bool = True,
    timeout_s: float = 600.0,
    poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Registration]:
    """Create each group that does not exist yet and publish its feature metadata;
    name -> "created" | "exists" | "updated" (existed; feature metadata republished).

    ``client`` is a ``sagemaker`` (control-plane) client. Raises RegistrationError when a group
    exists with different definitions, or does not reach Created within ``timeout_s``. Calls per
    group: DescribeFeatureGroup, then for a new group CreateFeatureGroup, the Describe polls and
    one UpdateFeatureMetadata per feature; for an existing one a Search per 100 features and an
    UpdateFeatureMetadata per feature whose metadata changed (none on a rerun).
    """
    outcome: dict[str, Registration] = {}
    for group in groups:
        request = feature_group_request(
            group, offline_s3_uri=offline_s3_uri, role_arn=role_arn, enable_online=enable_online
        )

        def wait(name: str = group.name) -> dict[str, Any]:
            return _wait_created(client, name, timeout_s=timeout_s, poll_s=poll_s, sleep=sleep)

        existing = _describe(client, group.name)
        if existing is None:
            try:
                client.create_feature_group(**request)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceInUse":
                    raise
                existing = wait()  # created by someone else since we looked: judge it like any other
            else:
                wait()
                publish_feature_metadata(client, group, new=True)
                outcome[group.name] = "created"
                log.info("Registered feature group %s (%d features)", group.name, len(group.features))
                continue
        _check_existing(group, existing, request, wait)
        updated = publish_feature_metadata(client, group)
        outcome[group.name] = "updated" if updated else "exists"
        if updated:
            log.info("Feature group %s: metadata of %d features republished", group.name, updated)
        else:
            log.info("Feature group %s already registered with the same definitions and metadata", group.name)
    return outcome
