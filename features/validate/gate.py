"""The validation gate: run after the transform, before the offline write and the online push.

:func:`validate_snapshot` checks one group's snapshot and returns a :class:`ValidationResult`:

* **expectations** — the group's Great Expectations suite (:mod:`features.validate.expectations`);
  ``success`` is True when every expectation passed;
* **drift** against the previous snapshot in the offline store — per feature, the population
  stability index (PSI) and the change in null rate, each with its own threshold and action;
* **freshness** — the age at ``as_of`` of the newest input event the caller read;
* **policy** — ``blocking`` is True when an expectation failed under the ``strict`` policy, or a
  drift or freshness check whose action is ``fail`` failed (whatever the policy). The caller
  writes nothing when it is blocking.

Every run writes a JSON and a self-contained HTML report under ``report_dir``. The HTML is our own
rendering, not GX Data Docs: Data Docs need a file-backed GX project with stores and a site
builder, pull their CSS and JavaScript from public CDNs (so they render badly on an air-gapped
cluster, and opening them reaches the internet), and know nothing about drift or freshness. One
file with inline CSS opens anywhere, including straight from S3.

PSI, for one feature, over bins ``i`` (see :func:`psi`)::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

``e_i``/``a_i`` are the shares of the previous/current snapshot's non-null values in bin ``i``; a
share of 0 is replaced by ``EPSILON`` (1e-4) so empty bins count as very unlikely rather than
impossible. Numeric features use ``bins`` quantile bins of the previous snapshot (edges at its
1/bins ... (bins-1)/bins approximate quantiles, duplicates merged; a value equal to an edge falls in
the lower bin); string features use their categories (the 50 most frequent in the previous
snapshot, the rest pooled). Nulls are left out of PSI and judged by the null-rate change instead.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark import InheritableThread
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.config import DriftConf, ValidationConf
from features.definitions import FeatureGroup, parse_duration
from features.io.fs import write_text
from features.transform.columns import utc_timestamp
from features.validate.expectations import build_suite, group_specs, run_suite
from features.validate.store import snapshot_before

#: Share given to an empty bin in PSI.
EPSILON = 1e-4
#: String features: categories kept apart in PSI; the rest of the previous snapshot's are pooled.
MAX_CATEGORIES = 50
#: percentile_approx accuracy of the bin edges (rank error 1/1000 of the rows): a tenth of Spark's
#: default, which measured twice as slow and buys nothing for PSI bins.
_QUANTILE_ACCURACY = 1_000
#: Bins per numeric feature at most (:func:`_bin_counts` codes bins as ``k * 1000 + bin``).
_MAX_BINS = 1000
#: Bin code of the row-count marker in :func:`_bin_counts`.
_ROWS = -1


@dataclass
class ValidationResult:
    """What the gate decided about one snapshot; ``to_dict()`` goes into the run report."""

    group: str
    as_of: str
    policy: str
    success: bool
    blocking: bool
    expectations: list[dict[str, Any]]
    drift: dict[str, dict[str, Any]]
    freshness: dict[str, Any]
    previous_rows: int | None
    html_report: str
    json_report: str
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for logs and a run's error message: what failed, and whether it blocks."""
        failed = [e for e in self.expectations if not e["success"]]
        parts = []
        if failed:
            shown = "; ".join(
                f"{e['name']} on {','.join(e['columns']) or 'table'}: "
                + (e["error"] or f"{e['unexpected_count'] if e['unexpected_count'] is not None else '?'} unexpected")
                for e in failed[:3]
            )
            more = f"; +{len(failed) - 3} more" if len(failed) > 3 else ""
            parts.append(f"{len(failed)} of {len(self.expectations)} expectations failed ({shown}{more})")
        else:
            parts.append(f"all {len(self.expectations)} expectations passed")
        for status in ("fail", "warn"):
            drifted = sorted(name for name, d in self.drift.items() if d["status"] == status)
            if drifted:
                parts.append(f"drift {status}: {', '.join(drifted)}")
        if self.freshness["status"] in ("warn", "fail"):
            parts.append(f"freshness {self.freshness['status']}: newest input {self.freshness['newest_event']}")
        verdict = "BLOCKING" if self.blocking else "ok" if self.success else "warn"
        return f"{self.group} validation {verdict} (policy {self.policy}): " + "; ".join(parts)


def previous_snapshot(spark: SparkSession, offline_root: str, group: str, as_of: datetime) -> DataFrame | None:
    """The latest snapshot of ``group`` with ``event_time < as_of`` in the offline store, or None.

    Reads one hour partition, found by listing the partition directories newest first.
    """
    return snapshot_before(spark, offline_root, group, as_of)


def newest_event_before(df: DataFrame, timestamp: str, as_of: datetime) -> datetime | None:
    """The newest ``timestamp`` before ``as_of`` in ``df`` (the snapshot's input rows), for freshness.

    Computed as epoch microseconds so the answer does not depend on the driver's local time zone.
    """
    row = df.where(F.col(timestamp) < utc_timestamp(as_of)).agg(F.max(F.unix_micros(F.col(timestamp)))).first()
    if row is None or row[0] is None:
        return None
    return datetime.fromtimestamp(row[0] / 1_000_000, tz=UTC)


def validate_snapshot(
    spark: SparkSession,
    features_df: DataFrame,
    *,
    group: FeatureGroup,
    as_of: datetime,
    conf: ValidationConf,
    previous: DataFrame | None,
    inputs_latest_event: datetime | None,
    report_dir: str,
) -> ValidationResult:
    """Check ``features_df`` (the snapshot of ``group`` at ``as_of``, already cached) and report.

    ``previous`` is :func:`previous_snapshot`'s answer; ``inputs_latest_event`` the newest event
    time among the rows the snapshot was computed from (None when unknown).
    """
    began = time.perf_counter()
    timings: dict[str, float] = {}
    policy = conf.policy_for(group.name)
    numeric = [f.name for f in group.features if f.dtype != "String"]
    strings = [f.name for f in group.features if f.dtype == "String"]

    # Row count from Parquet metadata (and the is_deleted column), needed before the suite is built.
    previous_rows = None if previous is None else previous.count()
    specs = group_specs(group, previous_rows=previous_rows, row_count_band=conf.row_count_band)
    suite = build_suite(group.name, specs)

    # Drift runs in a second thread while GX validates: about half of GX's time is its own Python
    # between small Spark jobs, which leaves the executors idle (bench/VALIDATE_RESULTS.md).
    # InheritableThread gives the drift jobs this thread's Spark job group and description.
    drift: dict[str, dict[str, Any]] = {}
    failure: list[BaseException] = []

    def measure_drift(previous: DataFrame) -> None:
        mark = time.perf_counter()
        try:
            drift.update(_drift(features_df, previous, numeric=numeric, strings=strings, conf=conf.drift))
        except BaseException as exc:  # re-raised in the calling thread below
            failure.append(exc)
        timings["drift"] = round(time.perf_counter() - mark, 3)

    worker = InheritableThread(measure_drift, args=(previous,), name="validate-drift") if previous is not None else None
    if worker is not None:
        worker.start()
    try:
        mark = time.perf_counter()
        outcomes = run_suite(features_df, suite, key=group.entity.join_key)
        timings["expectations"] = round(time.perf_counter() - mark, 3)
    finally:
        if worker is not None:
            worker.join()
    if failure:
        raise failure[0]

    freshness = _freshness(inputs_latest_event, as_of, conf)
    success = all(o.success for o in outcomes)
    blocking = (
        (not success and policy == "strict")
        or any(d["status"] == "fail" for d in drift.values())
        or freshness["status"] == "fail"
    )
    stem = f"{report_dir.rstrip('/')}/{group.name}-{as_of.strftime('%Y%m%dT%H%M%SZ')}"
    result = ValidationResult(
        group=group.name,
        as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy=policy,
        success=success,
        blocking=blocking,
        expectations=[o.to_dict() for o in outcomes],
        drift=drift,
        freshness=freshness,
        previous_rows=previous_rows,
        html_report=f"{stem}.html",
        json_report=f"{stem}.json",
        seconds=0.0,
        timings=timings,
    )
    mark = time.perf_counter()
    result.seconds = round(mark - began, 3)
    write_text(spark, result.html_report, render_html(result))
    timings["report"] = round(time.perf_counter() - mark, 3)
    result.seconds = round(time.perf_counter() - began, 3)
    write_text(spark, result.json_report, json.dumps(result.to_dict(), indent=2, default=str))
    return result


def psi(expected: Sequence[int], actual: Sequence[int]) -> float | None:
    """Population stability index of two histograms over the same bins; None if either is empty."""
    expected_total, actual_total = sum(expected), sum(actual)
    if not expected_total or not actual_total:
        return None
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_share = max(e / expected_total, EPSILON)
        a_share = max(a / actual_total, EPSILON)
        total += (a_share - e_share) * math.log(a_share / e_share)
    return total


def _quantile_edges(previous: DataFrame, numeric: Sequence[str], bins: int) -> dict[str, list[Any]]:
    """Per numeric feature, the bin edges: the previous snapshot's quantiles (one pass over it)."""
    if not 2 <= bins <= _MAX_BINS:
        raise ValueError(f"validation.drift.bins must be between 2 and {_MAX_BINS}, got {bins}")
    if not numeric:
        return {}
    probabilities = [k / bins for k in range(1, bins)]
    row = previous.agg(*(F.percentile_approx(c, probabilities, _QUANTILE_ACCURACY).alias(c) for c in numeric)).first()
    assert row is not None
    return {c: sorted(set(row[c] or [])) for c in numeric}


def _bin_counts(
    previous: DataFrame, current: DataFrame, edges: Mapping[str, Sequence[Any]]
) -> tuple[dict[int, int], dict[int, int]]:
    """Per snapshot, rows per ``code``: ``k * 1000 + bin`` for the k-th numeric feature, ``_ROWS`` per row.

    One Spark job for both snapshots: each row becomes one integer code per non-null feature
    (``explode``) and the codes are counted. Measured at 100k entities: a third of the time of
    one wide ``agg`` per snapshot with a ``count(when(...))`` per feature and bin (more than 100
    aggregates switch off Spark's code generation), and of exploding (feature, value) string pairs.
    """

    def codes(df: DataFrame, side: int) -> DataFrame:
        items = [F.lit(_ROWS)]
        for k, (column, column_edges) in enumerate(edges.items()):
            value = F.col(column)
            # CASE WHEN null THEN null WHEN value <= e0 THEN 0 ... ELSE last: stops at the first match;
            # summing one comparison per edge measured 2.5x slower.
            code = F.when(value.isNull(), None)
            for i, edge in enumerate(column_edges):
                code = code.when(value <= F.lit(edge), k * _MAX_BINS + i)
            items.append(code.otherwise(k * _MAX_BINS + len(column_edges)))
        return df.select(F.lit(side).alias("side"), F.explode(F.array(*items)).alias("code"))

    counted = codes(previous, 0).unionByName(codes(current, 1)).where(F.col("code").isNotNull())
    sides: tuple[dict[int, int], dict[int, int]] = ({}, {})
    for side, code, count in counted.groupBy("side", "code").count().collect():
        sides[side][code] = int(count)
    return sides


def _category_counts(
    previous: DataFrame, current: DataFrame, strings: Sequence[str]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Per snapshot and string feature, the rows per non-null value: one Spark job for both."""
    sides: tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]] = ({}, {})
    if not strings:
        return sides

    def pairs(df: DataFrame, side: int) -> DataFrame:
        entries = F.array(*(F.struct(F.lit(c).alias("f"), F.col(c).alias("v")) for c in strings))
        return df.select(F.lit(side).alias("side"), F.explode(entries).alias("p"))

    counted = pairs(previous, 0).unionByName(pairs(current, 1)).where(F.col("p.v").isNotNull())
    for side, feature, value, count in counted.groupBy("side", "p.f", "p.v").count().collect():
        sides[side].setdefault(feature, {})[value] = int(count)
    return sides


def _pooled(previous: Mapping[str, int], current: Mapping[str, int]) -> tuple[list[int], list[int]]:
    """Both histograms over the previous snapshot's top categories plus one pooled bucket."""
    top = sorted(previous, key=lambda v: (-previous[v], v))[:MAX_CATEGORIES]
    kept = set(top)

    def histogram(counts: Mapping[str, int]) -> list[int]:
        return [counts.get(v, 0) for v in top] + [sum(n for v, n in counts.items() if v not in kept)]

    return histogram(previous), histogram(current)


def _drift(
    current: DataFrame, previous: DataFrame, *, numeric: Sequence[str], strings: Sequence[str], conf: DriftConf
) -> dict[str, dict[str, Any]]:
    """Per feature of ``current``: PSI and null rates against ``previous``, and the status."""
    features = [c for c in (*numeric, *strings) if c in current.columns]
    shared = [c for c in features if c in previous.columns]
    shared_edges = _quantile_edges(previous, [c for c in numeric if c in shared], conf.bins)
    prev_bins, bins = _bin_counts(previous, current, shared_edges)
    prev_categories, categories = _category_counts(previous, current, [c for c in strings if c in shared])
    prev_rows, rows = prev_bins.get(_ROWS, 0), bins.get(_ROWS, 0)

    report: dict[str, dict[str, Any]] = {}
    for column in features:
        if column in shared_edges:
            k = list(shared_edges).index(column)
            codes = range(k * _MAX_BINS, k * _MAX_BINS + len(shared_edges[column]) + 1)
            expected, actual = [prev_bins.get(c, 0) for c in codes], [bins.get(c, 0) for c in codes]
        elif column in shared:
            expected, actual = _pooled(prev_categories.get(column, {}), categories.get(column, {}))
        else:
            report[column] = {"psi": None, "null_rate": None, "previous_null_rate": None, "status": "ok"}
            continue
        value = psi(expected, actual)
        null_rate = 1 - sum(actual) / rows if rows else None
        previous_null_rate = 1 - sum(expected) / prev_rows if prev_rows else None
        flags = []
        if value is not None and value > conf.psi_threshold:
            flags.append(conf.psi_action)
        if (
            null_rate is not None
            and previous_null_rate is not None
            and abs(null_rate - previous_null_rate) > conf.null_rate_threshold
        ):
            flags.append(conf.null_rate_action)
        report[column] = {
            "psi": None if value is None else round(value, 6),
            "null_rate": None if null_rate is None else round(null_rate, 6),
            "previous_null_rate": None if previous_null_rate is None else round(previous_null_rate, 6),
            "status": "fail" if "fail" in flags else "warn" if flags else "ok",
        }
    return report


def _freshness(newest: datetime | None, as_of: datetime, conf: ValidationConf) -> dict[str, Any]:
    max_age = parse_duration(conf.freshness_max_age, "validation.freshness_max_age").total_seconds()
    if newest is None:
        return {"newest_event": None, "age_seconds": None, "max_age_seconds": max_age, "status": "unknown"}
    if newest.tzinfo is None:
        raise ValueError(f"inputs_latest_event {newest.isoformat()} has no time zone; pass an aware UTC datetime")
    age = (as_of - newest).total_seconds()
    return {
        "newest_event": newest.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "age_seconds": age,
        "max_age_seconds": max_age,
        "status": "ok" if age <= max_age else conf.freshness_action,
    }


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} code{font-size:12px}
.ok{color:#1a7f37}.warn{color:#9a6700}.fail,.blocking{color:#cf222e;font-weight:bold}
.unknown{color:#666}
"""


def render_html(result: ValidationResult) -> str:
    """A self-contained HTML page (inline CSS, no scripts) for one validation run."""

    def esc(value: Any) -> str:
        return html.escape("" if value is None else str(value))

    def status(word: str) -> str:
        return f'<span class="{esc(word)}">{esc(word)}</span>'

    verdict = "blocking" if result.blocking else "ok" if result.success else "warn"
    outcomes = result.expectations
    failed = sum(not o["success"] for o in outcomes)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Validation {esc(result.group)} {esc(result.as_of)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(result.group)} at {esc(result.as_of)}: {status(verdict)}</h1>",
        f"<p>Policy <b>{esc(result.policy)}</b>; {len(outcomes) - failed} of {len(outcomes)} expectations passed; "
        f"previous snapshot rows: {esc(result.previous_rows if result.previous_rows is not None else 'none')}; "
        f"validated in {result.seconds:.1f} s.</p>",
        "<h2>Expectations</h2><table><tr><th>status</th><th>expectation</th><th>columns</th><th>why</th>"
        "<th>unexpected</th><th>observed</th><th>samples</th></tr>",
    ]
    for o in sorted(outcomes, key=lambda o: bool(o["success"])):
        samples = json.dumps(o["sample_values"], default=str) if o["sample_values"] else ""
        parts.append(
            f"<tr><td>{status('ok' if o['success'] else 'fail')}</td><td><code>{esc(o['name'])}</code></td>"
            f"<td>{esc(', '.join(o['columns']))}</td><td>{esc(o['description'])}</td>"
            f"<td>{esc(o['unexpected_count'])}</td><td>{esc(o['observed_value'])}</td>"
            f"<td><code>{esc(o['error'] or samples)}</code></td></tr>"
        )
    parts.append("</table><h2>Drift against the previous snapshot</h2>")
    if result.drift:
        parts.append(
            "<table><tr><th>feature</th><th>PSI</th><th>null rate</th><th>previous null rate</th><th>status</th></tr>"
        )
        for name, d in result.drift.items():
            parts.append(
                f"<tr><td>{esc(name)}</td><td>{esc(d['psi'])}</td><td>{esc(d['null_rate'])}</td>"
                f"<td>{esc(d['previous_null_rate'])}</td><td>{status(d['status'])}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No previous snapshot: nothing to compare.</p>")
    f = result.freshness
    if f["newest_event"] is None:
        detail = "the newest input event time was not given"
    else:
        detail = f"newest input event {esc(f['newest_event'])}, {f['age_seconds']:.0f} s before the snapshot"
    parts.append(
        f"<h2>Freshness</h2><p>{status(f['status'])}: {detail}; allowed {f['max_age_seconds']:.0f} s.</p></body></html>"
    )
    return "\n".join(parts)
