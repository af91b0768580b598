"""The run report: a JSON record of what a job read, rejected, computed and wrote.

Every job writes one, success or failure, so a scheduler, a dashboard or an on-call engineer can
answer "what did last night's run do" without reading logs.
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


@dataclass
class GroupReport:
    group: str
    source: str
    entities: int = 0
    features: int = 0
    offline_path: str | None = None
    offline_files: int = 0
    #: Online push counts (records, written, retried, throttled, dead_lettered, ...), when pushed.
    online: dict[str, Any] | None = None
    #: The validation gate's result: expectations, drift, freshness, HTML report path.
    validation: dict[str, Any] | None = None
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
    status: str = "running"
    error: str | None = None
    finished_at: str | None = None
    seconds: float = 0.0
    sources: dict[str, SourceReport] = field(default_factory=dict)
    groups: list[GroupReport] = field(default_factory=list)
    #: What the run did differently from what was asked, e.g. PutRecord for an old botocore.
    warnings: list[str] = field(default_factory=list)
    report_path: str | None = None

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
            lines.append(f"  {g.group}: {stages}")
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
    lines += [f"warning: {warning}" for warning in report.warnings]
    if report.error:
        lines.append(f"error: {report.error}")
    if report.report_path:
        lines.append(f"run report: {report.report_path}")
    return "\n".join(lines)
