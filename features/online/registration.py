"""Register feature groups with SageMaker Feature Store from their definitions in code.

The definitions are the source of truth: the request is derived from them (types, record
identifier = join key, event time feature ``event_time`` as a String, descriptions), and
registration is idempotent: an existing group with the same definitions is left alone, one with
different definitions is an error naming the differing features, because SageMaker cannot change a
feature's type or remove a feature in place. The fix is a new group name (e.g. ``<group>_v2``), or
deleting and re-creating the group (which drops its online records).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from botocore.exceptions import ClientError

from features.constants import EVENT_TIME
from features.definitions import FeatureGroup
from features.online.records import record_types

log = logging.getLogger(__name__)

#: SageMaker limits: group Description 128 characters, feature Description 255.
_GROUP_DESCRIPTION_MAX = 128
_FEATURE_DESCRIPTION_MAX = 255

Registration = Literal["created", "exists"]


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


def _describe_features(client: Any, group: FeatureGroup) -> None:
    """Publish per-feature descriptions (UpdateFeatureMetadata), where the endpoint supports it."""
    for spec in group.features:
        try:
            client.update_feature_metadata(
                FeatureGroupName=group.name,
                FeatureName=spec.name,
                Description=_clip(spec.description, _FEATURE_DESCRIPTION_MAX),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("UnknownOperationException", "UnknownOperation"):
                log.info("Endpoint does not support UpdateFeatureMetadata; feature descriptions not published")
                return
            raise


def _check_existing(existing: dict[str, Any], request: dict[str, Any], wait: Callable[[], object]) -> None:
    name = request["FeatureGroupName"]
    differences = definition_differences(existing, request)
    if differences:
        raise RegistrationError(
            f"feature group {name} is registered with different definitions ("
            + "; ".join(differences)
            + "). SageMaker cannot change or remove features in place: register the new "
            f"definition under a new name (e.g. {name}_v2) or delete and re-create the group"
        )
    if existing.get("FeatureGroupStatus") != "Created":
        wait()


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
    """Create each group that does not exist yet; name -> "created" | "exists".

    ``client`` is a ``sagemaker`` (control-plane) client. Raises RegistrationError when a group
    exists with different definitions, or does not reach Created within ``timeout_s``.
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
                _describe_features(client, group)
                outcome[group.name] = "created"
                log.info("Registered feature group %s (%d features)", group.name, len(group.features))
                continue
        _check_existing(existing, request, wait)
        outcome[group.name] = "exists"
        log.info("Feature group %s already registered with the same definitions", group.name)
    return outcome
