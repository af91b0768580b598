"""Training-serving skew check: do the online store's records equal the offline store's?

Both stores are fed from the same snapshot, so for an entity of the latest offline snapshot the
online record must carry the same values: this check samples entities from that snapshot, reads
them back with BatchGetRecord (at most 100 identifiers per call, unprocessed ones retried) and
compares feature by feature with the rules the push writes by (``features/online/records.py``):

* Integral and String features must be equal exactly; Fractional ones within ``float_rel_tol``
  (the push writes ``repr(float)``, which round-trips exactly, so the default is tight);
* a null offline value must be absent online (the push leaves nulls out of the record);
* an entity without an online record is *missing*.

An online record with a different ``event_time`` comes from another snapshot (a newer push, or a
push that never happened); it is reported on its own, because it explains value differences rather
than being one. ``feature-pipeline skew-check`` (``features/cli/skew.py``) runs it
from the command line and exits 1 when anything differs.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.constants import EVENT_TIME
from features.definitions import FeatureGroup, FeatureType
from features.load.offline import snapshot_before
from features.online.client import record_as_dict, runtime_client

log = logging.getLogger(__name__)

#: BatchGetRecord's limit on record identifiers per call.
BATCH_GET_LIMIT = 100
#: Attempts for identifiers BatchGetRecord returns as unprocessed (throttled).
_UNPROCESSED_ATTEMPTS = 5
_BACKOFF_SECONDS = 0.2


@dataclass
class SkewResult:
    """Outcome of one skew check; ``ok`` when every sampled record matched."""

    group: str
    offline_root: str
    snapshot_event_time: str
    sampled: int
    compared: int
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    event_time_mismatches: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.missing or self.event_time_mismatches or self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        return (
            f"{self.group}: {'ok' if self.ok else 'SKEW'} — sampled {self.sampled} entities of the snapshot at "
            f"{self.snapshot_event_time}, {self.compared} found online, {len(self.mismatches)} value mismatches, "
            f"{len(self.missing)} missing, {len(self.event_time_mismatches)} with another event time, "
            f"{len(self.errors)} read errors"
        )


def check_skew(
    spark: SparkSession,
    *,
    group: FeatureGroup,
    offline_root: str,
    endpoint_url: str | None,
    region: str,
    sample: int,
    seed: int,
    float_rel_tol: float = 1e-9,
) -> SkewResult:
    """Compare ``sample`` random entities of the latest offline snapshot of ``group`` with the online store.

    The sample is reproducible: the same ``seed`` over the same snapshot files picks the same
    entities.
    """
    if sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    began = time.perf_counter()
    snapshot = snapshot_before(spark, offline_root, group.name, None)
    if snapshot is None:
        raise FileNotFoundError(f"no snapshot of {group.name} in the offline store under {offline_root}")
    key = group.entity.join_key
    types = {f.name: f.dtype for f in group.features if f.name in snapshot.columns}
    rows = (
        snapshot.select(key, EVENT_TIME, *types)
        .withColumn("_draw", F.rand(seed))
        .orderBy("_draw")
        .limit(sample)
        .drop("_draw")
        .collect()
    )
    offline = {str(row[key]): row.asDict() for row in rows}
    snapshot_time = str(rows[0][EVENT_TIME]) if rows else ""
    online, errors = _batch_get(group.name, list(offline), endpoint_url=endpoint_url, region=region)

    result = SkewResult(
        group=group.name,
        offline_root=offline_root,
        snapshot_event_time=snapshot_time,
        sampled=len(offline),
        compared=len(online),
        errors=errors,
    )
    failed = {e["entity"] for e in errors}
    for entity, record in offline.items():
        found = online.get(entity)
        if found is None:
            if entity not in failed:
                result.missing.append(entity)
            continue
        if found.get(EVENT_TIME) != record[EVENT_TIME]:
            result.event_time_mismatches.append(
                {"entity": entity, "offline": record[EVENT_TIME], "online": found.get(EVENT_TIME)}
            )
        for name, dtype in types.items():
            if not values_match(dtype, record[name], found.get(name), float_rel_tol):
                result.mismatches.append(
                    {"entity": entity, "feature": name, "offline": record[name], "online": found.get(name)}
                )
    result.seconds = round(time.perf_counter() - began, 3)
    return result


def values_match(dtype: FeatureType, offline: Any, online: str | None, rel_tol: float) -> bool:
    """Whether an online ValueAsString (None = absent) is what the push writes for ``offline``."""
    if offline is None or online is None:
        return offline is None and online is None
    try:
        if dtype == "Integral":
            return int(online) == int(offline)
        if dtype == "Fractional":
            return math.isclose(float(online), float(offline), rel_tol=rel_tol, abs_tol=0.0)
    except ValueError:
        return False
    return online == str(offline)


def _batch_get(
    group: str, entities: list[str], *, endpoint_url: str | None, region: str
) -> tuple[dict[str, dict[str, str]], list[dict[str, Any]]]:
    """``{entity: {feature: value}}`` of the records found, and per-identifier read errors."""
    client = runtime_client(endpoint_url=endpoint_url, region=region, botocore_retries=True)
    found: dict[str, dict[str, str]] = {}
    errors: list[dict[str, Any]] = []
    for start in range(0, len(entities), BATCH_GET_LIMIT):
        pending = entities[start : start + BATCH_GET_LIMIT]
        for attempt in range(_UNPROCESSED_ATTEMPTS):
            response = client.batch_get_record(
                Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": pending}]
            )
            for item in response.get("Records", []):
                found[item["RecordIdentifierValueAsString"]] = record_as_dict(item["Record"])
            errors += [
                {"entity": e["RecordIdentifierValueAsString"], "code": e["ErrorCode"], "message": e["ErrorMessage"]}
                for e in response.get("Errors", [])
            ]
            pending = [
                i for u in response.get("UnprocessedIdentifiers", []) for i in u["RecordIdentifiersValueAsString"]
            ]
            if not pending:
                break
            time.sleep(_BACKOFF_SECONDS * 2**attempt)
        errors += [{"entity": e, "code": "Unprocessed", "message": "still unprocessed after retries"} for e in pending]
    return found, errors
