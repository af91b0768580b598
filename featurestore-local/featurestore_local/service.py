"""Operation semantics of the runtime and of the control-plane subset.

Each operation takes the request members (already merged from URI, query
string and JSON body, keyed by their model names) and returns the output
members, raising :class:`ApiError` for anything the service would reject.
Keeping this free of HTTP makes the rules readable next to the model docs.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import errors
from .errors import ApiError, group_not_found, validation
from .faults import FaultInjector, Stats
from .limits import check_identifier_size, loads
from .metadata import apply_update, check_group_name, feature_metadata, require_feature
from .schema import (
    ErrorFactory,
    FeatureGroup,
    JsonObject,
    control_validation,
    format_timestamp,
    new_group_description,
    parse_ttl,
    resolve_group_name,
)
from .search import FEATURE_GROUP, FEATURE_METADATA, SearchableResource, order, parse_expression
from .storage import RecordRow, Storage

MAX_BATCH_WRITE_ENTRIES = 25  # model: BatchWriteRecordEntries min 1, max 25
# Model: BatchGetRecordIdentifiers and RecordIdentifiers max 100 each; the quotas page: "as many as
# 100 records" per call, so the total is capped too.
MAX_BATCH_GET_RECORDS = 100
LIST_RECORDS_MAX_RESULTS = 100  # ListRecordsMaxResults: 1..100
LIST_GROUPS_MAX_RESULTS = 100
LIST_GROUPS_DEFAULT_RESULTS = 10
TARGET_STORES = ("OnlineStore", "OfflineStore")
SEARCH_MAX_RESULTS = 100  # model: MaxResults 1..100
SEARCH_DEFAULT_RESULTS = 10
# Model: ResourceType. Only the two feature-store resources are emulated.
SEARCH_RESOURCES = (
    "TrainingJob",
    "Experiment",
    "ExperimentTrial",
    "ExperimentTrialComponent",
    "Endpoint",
    "Model",
    "ModelPackage",
    "ModelPackageGroup",
    "Pipeline",
    "PipelineExecution",
    "FeatureGroup",
    "FeatureMetadata",
    "Image",
    "ImageVersion",
    "Project",
    "HyperParameterTuningJob",
    "ModelCard",
    "PipelineVersion",
    "Job",
    "HubContent",
)
SEARCHABLE: dict[str, SearchableResource] = {"FeatureMetadata": FEATURE_METADATA, "FeatureGroup": FEATURE_GROUP}
# The FeatureGroup shape a Search result carries (DescribeFeatureGroup's output has more members).
_FEATURE_GROUP_RESULT_MEMBERS = (
    "FeatureGroupArn",
    "FeatureGroupName",
    "RecordIdentifierFeatureName",
    "EventTimeFeatureName",
    "FeatureDefinitions",
    "CreationTime",
    "LastModifiedTime",
    "OnlineStoreConfig",
    "OfflineStoreConfig",
    "RoleArn",
    "FeatureGroupStatus",
    "OfflineStoreStatus",
    "LastUpdateStatus",
    "FailureReason",
    "Description",
)


@dataclass(frozen=True)
class RequestContext:
    """Per-request facts that are not operation members."""

    region: str


Operation = Callable[[JsonObject, RequestContext], JsonObject]


def _string(params: JsonObject, member: str, error: ErrorFactory = validation) -> str:
    value = params.get(member)
    if not isinstance(value, str) or not value:
        raise error(f"{member} is required and must be a non-empty string")
    return value


def _enum(
    params: JsonObject,
    member: str,
    allowed: tuple[str, ...],
    default: str,
    error: ErrorFactory = validation,
) -> str:
    value = params.get(member, default)
    if value not in allowed:
        raise error(f"{member} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _int_in_range(
    params: JsonObject,
    member: str,
    low: int,
    high: int,
    default: int,
    error: ErrorFactory = validation,
) -> int:
    value = params.get(member, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise error(f"{member} must be an integer between {low} and {high}, got {value!r}")
    return value


def _targets_online(params: JsonObject, group: FeatureGroup) -> bool:
    """Whether a write/delete reaches the online store, per ``TargetStores``.

    Omitted means "every store the group uses"; naming OnlineStore on a group
    without one is an error, as in the service.  The offline store is not
    emulated, so offline-only writes are accepted and dropped.
    """
    targets = params.get("TargetStores")
    if targets is None:
        return group.online_enabled
    if (
        not isinstance(targets, list)
        or not 1 <= len(targets) <= 2
        or any(target not in TARGET_STORES for target in targets)
    ):
        raise validation(f"TargetStores must list one or two of {', '.join(TARGET_STORES)}")
    if "OnlineStore" in targets:
        group.require_online_store()
        return True
    return False


def _encode_token(payload: JsonObject) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _decode_token(params: JsonObject, error: ErrorFactory) -> JsonObject | None:
    token = params.get("NextToken")
    if token is None or token == "":
        return None
    try:
        payload = loads(base64.urlsafe_b64decode(str(token).encode()))
    except ValueError:  # binascii.Error, non-ASCII text, BodyError
        payload = None
    if not isinstance(payload, dict):
        raise error("Invalid NextToken")
    return payload


class FeatureStoreService:
    """The emulated service state and operations."""

    def __init__(
        self,
        storage: Storage,
        faults: FaultInjector,
        stats: Stats,
        *,
        clock: Callable[[], float] = time.time,
        max_feature_groups: int = 100,
    ) -> None:
        self._storage = storage
        self._faults = faults
        self._stats = stats
        self._clock = clock
        self._max_feature_groups = max_feature_groups
        self.runtime_operations: dict[str, Operation] = {
            "PutRecord": self.put_record,
            "BatchWriteRecord": self.batch_write_record,
            "GetRecord": self.get_record,
            "BatchGetRecord": self.batch_get_record,
            "DeleteRecord": self.delete_record,
            "ListRecords": self.list_records,
        }
        self.control_operations: dict[str, Operation] = {
            "CreateFeatureGroup": self.create_feature_group,
            "DescribeFeatureGroup": self.describe_feature_group,
            "ListFeatureGroups": self.list_feature_groups,
            "DeleteFeatureGroup": self.delete_feature_group,
            "UpdateFeatureMetadata": self.update_feature_metadata,
            "DescribeFeatureMetadata": self.describe_feature_metadata,
            "Search": self.search,
        }

    def _group(self, name_or_arn: Any, *, control_plane: bool = False) -> FeatureGroup:
        """Load a group by name or ARN, failing the way the calling API does."""
        if not isinstance(name_or_arn, str) or not name_or_arn:
            error = control_validation if control_plane else validation
            raise error("FeatureGroupName is required and must be a non-empty string")
        name = resolve_group_name(name_or_arn)
        description = self._storage.get_group(name)
        if description is None:
            raise group_not_found(name, 400 if control_plane else 404)
        return FeatureGroup.from_description(description)

    def _row(self, group: FeatureGroup, params: JsonObject, default_ttl: float | None) -> RecordRow | None:
        """Validate one PutRecord-shaped entry; None if it does not reach the online store."""
        record_id, event_time, features = group.validate_record(params.get("Record"))
        ttl = default_ttl
        if params.get("TtlDuration") is not None:
            ttl = parse_ttl(params["TtlDuration"], validation)
        if not _targets_online(params, group):
            return None
        if ttl is None:
            ttl = group.ttl_seconds
        expires_at = event_time + ttl if ttl is not None else None
        return RecordRow(record_id, event_time, expires_at, features)

    @staticmethod
    def _want_expiry(params: JsonObject) -> bool:
        return _enum(params, "ExpirationTimeResponse", ("Enabled", "Disabled"), "Disabled") == "Enabled"

    # -- runtime --------------------------------------------------------

    def put_record(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        group = self._group(params.get("FeatureGroupName"))
        row = self._row(group, params, None)
        if row is not None:
            self._storage.put_records(group.name, [row], self._clock())
        self._stats.written(1)
        return {}

    def batch_write_record(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        """Write valid entries; invalid ones go to ``Errors``.

        Injected partial throttling (``FaultConfig.unprocessed_rate``) returns
        entries untouched in ``UnprocessedEntries``, which the model documents
        as the list a client can retry as-is.
        """
        entries = params.get("Entries")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH_WRITE_ENTRIES:
            raise validation(f"Entries must contain between 1 and {MAX_BATCH_WRITE_ENTRIES} entries")
        request_ttl = None
        if params.get("TtlDuration") is not None:
            request_ttl = parse_ttl(params["TtlDuration"], validation)
        failures: list[JsonObject] = []
        unprocessed: list[JsonObject] = []
        rows: dict[str, list[RecordRow]] = {}
        accepted = 0
        for entry in entries:
            if self._faults.leave_unprocessed():
                unprocessed.append(entry)
                continue
            try:
                if not isinstance(entry, dict):
                    raise validation("Each entry must be an object")
                group = self._group(entry.get("FeatureGroupName"))
                row = self._row(group, entry, request_ttl)
            except ApiError as error:
                failures.append(
                    {
                        "Entry": entry,
                        "ErrorCode": error.code,
                        "ErrorMessage": error.message,
                    }
                )
                continue
            accepted += 1
            if row is not None:
                rows.setdefault(group.name, []).append(row)
        now = self._clock()
        for group_name, group_rows in rows.items():
            self._storage.put_records(group_name, group_rows, now)
        self._stats.written(accepted)
        self._stats.unprocessed(len(unprocessed))
        return {"Errors": failures, "UnprocessedEntries": unprocessed}

    def get_record(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        """Latest live record; an empty response (no ``Record``) when there is none."""
        group = self._group(params.get("FeatureGroupName"))
        group.require_online_store()
        record_id = _string(params, "RecordIdentifierValueAsString")
        check_identifier_size(record_id, "RecordIdentifierValueAsString")
        names = None
        if params.get("FeatureNames") is not None:
            names = group.check_feature_names(params["FeatureNames"])
        result = self._read(group, record_id, names, self._want_expiry(params))
        return result or {}

    def _read(
        self,
        group: FeatureGroup,
        record_id: str,
        names: list[str] | None,
        want_expiry: bool,
    ) -> JsonObject | None:
        stored = self._storage.get_record(group.name, record_id, self._clock())
        if stored is None:
            return None
        record = stored.features
        if names is not None:
            record = [value for value in record if value["FeatureName"] in names]
        if not record:
            return None
        self._stats.read(1)
        result: JsonObject = {"Record": record}
        if want_expiry and stored.expires_at is not None:
            result["ExpiresAt"] = format_timestamp(stored.expires_at)
        return result

    def batch_get_record(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        """Found records in ``Records``; missing ones are simply absent.

        Per-group failures (unknown group, unknown feature name) become one
        ``Errors`` entry per requested identifier instead of failing the call.
        """
        identifiers = params.get("Identifiers")
        if (
            not isinstance(identifiers, list)
            or not identifiers
            or not all(
                isinstance(item, dict)
                and isinstance(item.get("RecordIdentifiersValueAsString"), list)
                and item["RecordIdentifiersValueAsString"]
                and all(isinstance(v, str) for v in item["RecordIdentifiersValueAsString"])
                for item in identifiers
            )
        ):
            raise validation(
                "Identifiers must be a non-empty list of objects with a non-empty "
                "RecordIdentifiersValueAsString list of strings"
            )
        total = sum(len(item["RecordIdentifiersValueAsString"]) for item in identifiers)
        if len(identifiers) > MAX_BATCH_GET_RECORDS or total > MAX_BATCH_GET_RECORDS:
            raise validation(f"BatchGetRecord accepts at most {MAX_BATCH_GET_RECORDS} record identifiers, got {total}")
        for index, item in enumerate(identifiers, start=1):
            for position, record_id in enumerate(item["RecordIdentifiersValueAsString"], start=1):
                check_identifier_size(record_id, f"Identifiers.{index}.RecordIdentifiersValueAsString.{position}")
        want_expiry = self._want_expiry(params)
        records: list[JsonObject] = []
        failures: list[JsonObject] = []
        unprocessed: list[JsonObject] = []
        for item in identifiers:
            requested_name = item.get("FeatureGroupName")
            record_ids: list[str] = item["RecordIdentifiersValueAsString"]
            try:
                group = self._group(requested_name)
                group.require_online_store()
                names = None
                if item.get("FeatureNames") is not None:
                    names = group.check_feature_names(item["FeatureNames"])
            except ApiError as error:
                failures.extend(
                    {
                        "FeatureGroupName": str(requested_name),
                        "RecordIdentifierValueAsString": record_id,
                        "ErrorCode": error.code,
                        "ErrorMessage": error.message,
                    }
                    for record_id in record_ids
                )
                continue
            skipped = [record_id for record_id in record_ids if self._faults.leave_unprocessed()]
            if skipped:
                unprocessed.append({**item, "RecordIdentifiersValueAsString": skipped})
            for record_id in record_ids:
                if record_id in skipped:
                    continue
                found = self._read(group, record_id, names, want_expiry)
                if found is not None:
                    records.append(
                        {
                            "FeatureGroupName": requested_name,
                            "RecordIdentifierValueAsString": record_id,
                            **found,
                        }
                    )
            self._stats.unprocessed(len(skipped))
        return {
            "Records": records,
            "Errors": failures,
            "UnprocessedIdentifiers": unprocessed,
        }

    def delete_record(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        """Soft (tombstone) or hard delete; never removes a record with a newer EventTime.

        An older-EventTime SoftDelete is silently a no-op; an older-EventTime
        HardDelete is a ValidationError, as documented for the service.
        """
        group = self._group(params.get("FeatureGroupName"))
        record_id = _string(params, "RecordIdentifierValueAsString")
        check_identifier_size(record_id, "RecordIdentifierValueAsString")
        event_time = group.parse_event_time(_string(params, "EventTime"))
        mode = _enum(params, "DeletionMode", ("SoftDelete", "HardDelete"), "SoftDelete")
        if not _targets_online(params, group):
            return {}
        now = self._clock()
        if mode == "SoftDelete":
            self._storage.soft_delete(group.name, record_id, event_time, now)
        elif not self._storage.hard_delete(group.name, record_id, event_time, now):
            raise validation(
                f"EventTime {params['EventTime']} is older than the EventTime of the stored "
                f"record {record_id}; HardDelete did not occur"
            )
        return {}

    def list_records(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        group = self._group(params.get("FeatureGroupName"))
        group.require_online_store()
        limit = _int_in_range(params, "MaxResults", 1, LIST_RECORDS_MAX_RESULTS, LIST_RECORDS_MAX_RESULTS)
        include_deleted = params.get("IncludeSoftDeletedRecords", False)
        if not isinstance(include_deleted, bool):
            raise validation("IncludeSoftDeletedRecords must be a boolean")
        token = _decode_token(params, validation)
        after = None
        if token is not None:
            if token.get("group") != group.name or not isinstance(token.get("after"), str):
                raise validation("Invalid NextToken")
            after = token["after"]
        ids = self._storage.list_record_ids(
            group.name,
            after=after,
            limit=limit + 1,
            include_deleted=include_deleted,
            now=self._clock(),
        )
        result: JsonObject = {"RecordIdentifiers": ids[:limit]}
        if len(ids) > limit:
            result["NextToken"] = _encode_token({"group": group.name, "after": ids[limit - 1]})
        return result

    # -- control plane --------------------------------------------------

    def create_feature_group(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        description = new_group_description(params, region=ctx.region, now=self._clock())
        name = description["FeatureGroupName"]
        outcome = self._storage.add_group(name, description, self._max_feature_groups)
        if outcome == "exists":
            raise ApiError(
                errors.RESOURCE_IN_USE,
                f"Resource Already Exists: FeatureGroup with name {name} already exists. Choose a different name.",
            )
        if outcome == "limit":
            raise ApiError(
                errors.RESOURCE_LIMIT_EXCEEDED,
                f"The account-level service limit 'Feature groups per account' is "
                f"{self._max_feature_groups} FeatureGroups.",
            )
        return {"FeatureGroupArn": description["FeatureGroupArn"]}

    def describe_feature_group(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        return self._group(params.get("FeatureGroupName"), control_plane=True).description

    def delete_feature_group(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        name = resolve_group_name(_string(params, "FeatureGroupName", control_validation))
        if not self._storage.delete_group(name):
            raise group_not_found(name, status=400)
        return {}

    def list_feature_groups(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        error = control_validation
        sort_by = _enum(
            params,
            "SortBy",
            ("Name", "FeatureGroupStatus", "OfflineStoreStatus", "CreationTime"),
            "CreationTime",
            error,
        )
        descending = _enum(params, "SortOrder", ("Ascending", "Descending"), "Descending", error) == "Descending"
        limit = _int_in_range(
            params,
            "MaxResults",
            1,
            LIST_GROUPS_MAX_RESULTS,
            LIST_GROUPS_DEFAULT_RESULTS,
            error,
        )
        for member in ("CreationTimeAfter", "CreationTimeBefore"):
            value = params.get(member)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise error(f"{member} must be a timestamp")
        contains = str(params.get("NameContains", "")).lower()
        summaries = []
        for description in self._storage.list_groups():
            summary: JsonObject = {
                key: description[key]
                for key in (
                    "FeatureGroupName",
                    "FeatureGroupArn",
                    "CreationTime",
                    "FeatureGroupStatus",
                    "OfflineStoreStatus",
                )
                if key in description
            }
            if self._matches(summary, params, contains):
                summaries.append(summary)

        def sort_key(summary: JsonObject) -> Any:
            if sort_by == "Name":
                return summary["FeatureGroupName"]
            if sort_by == "OfflineStoreStatus":
                return summary.get("OfflineStoreStatus", {}).get("Status", "")
            return summary.get(sort_by, "")

        summaries.sort(key=sort_key, reverse=descending)
        token = _decode_token(params, error)
        offset = token.get("offset", 0) if token is not None else 0
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise error("Invalid NextToken")
        result: JsonObject = {"FeatureGroupSummaries": summaries[offset : offset + limit]}
        if offset + limit < len(summaries):
            result["NextToken"] = _encode_token({"offset": offset + limit})
        return result

    @staticmethod
    def _matches(summary: JsonObject, params: JsonObject, contains: str) -> bool:
        status = params.get("FeatureGroupStatusEquals")
        offline_status = params.get("OfflineStoreStatusEquals")
        after, before = (
            params.get("CreationTimeAfter"),
            params.get("CreationTimeBefore"),
        )
        return (
            contains in summary["FeatureGroupName"].lower()
            and (status is None or summary["FeatureGroupStatus"] == status)
            and (offline_status is None or summary.get("OfflineStoreStatus", {}).get("Status") == offline_status)
            and (after is None or summary["CreationTime"] > after)
            and (before is None or summary["CreationTime"] < before)
        )

    # -- feature metadata and search --------------------------------------

    def update_feature_metadata(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        check_group_name(params.get("FeatureGroupName"))
        group = self._group(params.get("FeatureGroupName"), control_plane=True)
        feature = require_feature(group, params.get("FeatureName"))
        now = self._clock()
        self._storage.update_feature_metadata(
            group.name,
            feature,
            lambda current: apply_update(params, current, group=group.name, feature=feature, now=now),
        )
        return {}

    def describe_feature_metadata(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        check_group_name(params.get("FeatureGroupName"))
        group = self._group(params.get("FeatureGroupName"), control_plane=True)
        feature = require_feature(group, params.get("FeatureName"))
        return feature_metadata(group, feature, self._storage.get_feature_metadata(group.name, feature))

    def _documents(self, resource: str) -> list[JsonObject]:
        groups = [FeatureGroup.from_description(description) for description in self._storage.list_groups()]
        if resource == "FeatureGroup":
            return [
                {key: group.description[key] for key in _FEATURE_GROUP_RESULT_MEMBERS if key in group.description}
                for group in groups
            ]
        rows = {(row.group_name, row.feature_name): row for row in self._storage.list_feature_metadata()}
        return [
            feature_metadata(group, feature, rows.get((group.name, feature)))
            for group in groups
            for feature in group.features
        ]

    def search(self, params: JsonObject, ctx: RequestContext) -> JsonObject:
        """Search over FeatureMetadata or FeatureGroup; see search.py for the expression rules."""
        error = control_validation
        resource_name = params.get("Resource")
        if resource_name not in SEARCH_RESOURCES:
            raise error(f"Resource must be one of {', '.join(SEARCH_RESOURCES)}, got {resource_name!r}")
        resource = SEARCHABLE.get(str(resource_name))
        if resource is None:
            raise error(
                f"The local runtime searches {' and '.join(SEARCHABLE)} only, not {resource_name}; "
                "search other resources on AWS"
            )
        expression = None
        if params.get("SearchExpression") is not None:
            expression = parse_expression(params["SearchExpression"], resource)
        sort_by = params.get("SortBy", "LastModifiedTime")
        if not isinstance(sort_by, str):
            raise error(f"SortBy must be a property name, got {sort_by!r}")
        descending = _enum(params, "SortOrder", ("Ascending", "Descending"), "Descending", error) == "Descending"
        limit = _int_in_range(params, "MaxResults", 1, SEARCH_MAX_RESULTS, SEARCH_DEFAULT_RESULTS, error)
        if params.get("CrossAccountFilterOption") not in (None, "SameAccount", "CrossAccount"):
            raise error("CrossAccountFilterOption must be SameAccount or CrossAccount")
        # Nothing is shared with this account from others: a cross-account search finds nothing.
        documents = [] if params.get("CrossAccountFilterOption") == "CrossAccount" else self._documents(resource.name)
        matched = []
        for document in documents:
            properties = resource.flatten(document)
            if expression is None or expression.matches(document, resource, properties):
                matched.append((document, properties))
        ordered = order(
            matched,
            resource,
            sort_by,
            descending=descending,
            identity=lambda doc: (str(doc["FeatureGroupName"]), str(doc.get("FeatureName", ""))),
        )
        query = json.dumps([resource.name, params.get("SearchExpression"), sort_by, descending], sort_keys=True)
        token = _decode_token(params, error)
        offset = 0
        if token is not None:
            offset = token.get("offset", -1)
            if token.get("query") != query or isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise error("Invalid NextToken: it belongs to another search, or is not one this runtime issued")
        result: JsonObject = {
            "Results": [{resource.name: document} for document in ordered[offset : offset + limit]],
            "TotalHits": {"Value": len(ordered), "Relation": "EqualTo"},
        }
        if offset + limit < len(ordered):
            result["NextToken"] = _encode_token({"query": query, "offset": offset + limit})
        return result
