"""The run report: a JSON record of what a job read, rejected, computed and wrote.

Every job writes one, success or failure, so a scheduler, a dashboard or an on-call engineer can
answer "what did last night's run do" without reading logs. It is written when the run starts
(status ``running``) and rewritten after every stage, so a run killed with ``kill -9`` leaves a
report saying how far it got; ``feature-pipeline status`` reads these (docs/reliability.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SourceReport:
    source: str
    input_paths: list[str]
    rows_read: int
    accepted: int
    quarantined: int
    duplicates: int
    quarantine_reasons: dict[str, int]
    quarantine_path: str | None
    seconds: float
    #: A few quarantined rows per reason (values shortened), for a first look without the files.
    quarantine_samples: dict[str, list[dict[str, str | None]]] = field(default_factory=dict)
    #: Rows not accepted because another row with their key had other values: under keep_latest the
    #: losing copies (already in ``duplicates``), under quarantine every row of such a key (already in
    #: ``quarantined``). Not a fourth term of the balance.
    conflicting_duplicates: int = 0
    #: The first few conflicting keys (key order): {"key": ..., "differs": {column: [value per
    #: version, winner first]}}, values as text cut to 120 characters.
    conflict_samples: list[dict[str, Any]] = field(default_factory=list)


#: Where a group got to in a run (GroupReport.status), in order. ``published``: offline written and,
#: when the online store is on, every record written online (or dead-lettered within tolerance).
GROUP_STATUSES = (
    "pending",  # not published yet: computing, validating, or the run stopped before publishing
    "blocked",  # a blocking validation result: written nowhere
    "offline_failed",  # the offline write failed: not pushed either
    "offline_written",  # offline holds the snapshot; the push has not started
    "pushing",  # offline holds the snapshot; online holds part of it until the push ends
    "push_incomplete",  # offline holds the snapshot; online lacks the dead-lettered records
    "published",
)


@dataclass
class GroupReport:
    group: str
    source: str
    entities: int = 0
    features: int = 0
    status: str = "pending"
    #: Why the group is not published (one line), when it is not.
    error: str | None = None
    offline_path: str | None = None
    offline_files: int = 0
    #: Online push counts (records, written, retried, throttled, dead_lettered, ...), when pushed.
    online: dict[str, Any] | None = None
    #: The command that re-pushes this group's dead letters once their cause is fixed.
    replay: str | None = None
    #: The group's newest offline snapshot when it is newer than this run's: the online store keeps
    #: its records (the newer event time wins), so this run's push changed nothing it holds.
    superseded_by: str | None = None
    #: The validation gate's result: expectations, drift, freshness, HTML report path.
    validation: dict[str, Any] | None = None
    #: The Glue table registration after the offline write (features/catalog/glue.py): table,
    #: action (created, updated, unchanged, failed), schema and metadata changes, partitions added, error.
    catalog: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(time.perf_counter() - start, 3)


@dataclass
class RunReport:
    run_id: str
    job: str
    env: str
    as_of: str
    started_at: str
    #: The configuration file the run was started with (what a replay or rerun needs again).
    conf: str | None = None
    status: str = "running"
    error: str | None = None
    finished_at: str | None = None
    seconds: float = 0.0
    sources: dict[str, SourceReport] = field(default_factory=dict)
    groups: list[GroupReport] = field(default_factory=list)
    #: What the run did differently from what was asked, e.g. PutRecord for an old botocore.
    warnings: list[str] = field(default_factory=list)
    report_path: str | None = None
    #: ``feature-pipeline backfill``: every snapshot of the range (group, as_of, rows, status,
    #: offline_path, offline_files, validation, seconds), in the order written; empty for other jobs.
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(str(r[i]).replace(".", "", 1).isdigit() for r in rows) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append(
            "  ".join(
                c.rjust(w) if numeric[i] and n else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in out)


def summary(report: RunReport) -> str:
    """A human-readable summary of a run, printed at the end of every job."""
    lines = [
        f"run {report.run_id}: {report.status} in {report.seconds:.1f}s (as of {report.as_of}, env {report.env})",
        "",
    ]
    if report.sources:
        rows = [
            [s.source, s.rows_read, s.accepted, s.quarantined, s.duplicates, f"{s.seconds:.1f}"]
            for s in report.sources.values()
        ]
        lines += [_table(["source", "rows read", "accepted", "quarantined", "duplicates", "seconds"], rows), ""]
        for s in report.sources.values():
            for reason, count in s.quarantine_reasons.items():
                lines.append(f"  quarantined {s.source}: {count} x {reason}")
                for sample in s.quarantine_samples.get(reason, [])[:1]:
                    shown = {k: v for k, v in sample.items() if v is not None}
                    lines.append(f"      e.g. {json.dumps(shown)[:160]}")
            if s.conflicting_duplicates:
                lines.append(
                    f"  conflicting duplicates {s.source}: {s.conflicting_duplicates} rows, a key with other values"
                )
                for sample in s.conflict_samples[:1]:
                    lines.append(f"      e.g. {json.dumps(sample, default=str)[:160]}")
            if s.quarantined and s.quarantine_path:
                lines.append(f"  quarantine of {s.source}: {s.quarantine_path}")
        lines.append("")
    if report.groups:
        rows = [
            [g.group, g.entities, g.features, f"{sum(g.timings.values()):.1f}", g.offline_path or "-"]
            for g in report.groups
        ]
        lines += [_table(["group", "entities", "features", "seconds", "offline output"], rows), ""]
        for g in report.groups:
            stages = ", ".join(f"{k} {v:.1f}s" for k, v in g.timings.items())
            lines.append(f"  {g.group}: {g.status}" + (f" ({stages})" if stages else ""))
            if g.error and g.status != "blocked":
                lines.append(f"      {g.error}")
            if g.superseded_by:
                lines.append(f"      online keeps the newer snapshot of {g.superseded_by}")
            if g.catalog:
                changes = "; ".join(g.catalog.get("schema_changes") or [])
                lines.append(
                    f"      catalog {g.catalog.get('table')}: {g.catalog.get('action')}"
                    + (f" ({changes})" if changes else "")
                    + (
                        f", {len(g.catalog['partitions_added'])} partition(s) added"
                        if g.catalog.get("partitions_added")
                        else ""
                    )
                    + (f": {g.catalog['error']}" if g.catalog.get("error") else "")
                )
        lines.append("")
        for g in report.groups:
            if g.validation:
                lines.append(f"  validation {g.group}: {g.validation.get('reason')}")
                if g.validation.get("html_report"):
                    lines.append(f"      report: {g.validation['html_report']}")
        lines.append("")
        pushed = [g for g in report.groups if g.online]
        if pushed:
            keys = ["records", "written", "retried", "throttled", "dead_lettered"]
            rows = [[g.group, *[(g.online or {}).get(k, 0) for k in keys]] for g in pushed]
            lines += [_table(["online push", *keys], rows), ""]
            for g in pushed:
                if (g.online or {}).get("dead_letter_path"):
                    lines.append(f"  dead letters of {g.group}: {(g.online or {})['dead_letter_path']}")
                if g.replay:
                    lines.append(f"      replay: {g.replay}")
    lines += [f"warning: {warning}" for warning in report.warnings]
    if report.error:
        lines.append(f"error: {report.error}")
    if report.report_path:
        lines.append(f"run report: {report.report_path}")
    return "\n".join(lines)
