"""``feature-pipeline status``: where each group's latest run got to, read from the run reports.

A run rewrites its report after every stage (features/report.py), so a run killed with
``kill -9`` is still on record: its report says ``running`` and names the stage each group
reached, e.g. ``pushing`` (offline holds the whole snapshot, online part of it). This command
reads no data and starts no Spark for local report roots.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from typing import Any

from features.cli.base import Command, add_conf_arguments, add_group_argument, load
from features.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, usage
from features.config import PipelineConf
from features.errors import one_line

#: How many of the newest run reports are read (newest first); older runs are not shown.
DEFAULT_RUNS = 200


@dataclass(frozen=True)
class GroupStatus:
    """One group's latest run and, when that did not publish, the latest run that did."""

    group: str
    as_of: str
    run_id: str
    run_status: str
    status: str
    online: str
    note: str
    last_published: str | None

    @property
    def ok(self) -> bool:
        return self.status == "published"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_conf_arguments(parser)
    add_group_argument(parser)
    parser.add_argument(
        "--runs", type=int, default=DEFAULT_RUNS, help="newest run reports to read (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print the statuses as JSON")


def run(args: argparse.Namespace) -> int:
    """Print each group's status; exit 0 when every group's latest run published it, else 1."""
    try:
        conf, groups = load(args)
    except UsageError as exc:
        return usage(str(exc))
    if args.runs < 1:
        return usage(f"--runs must be at least 1, got {args.runs}")
    try:
        reports = read_reports(conf, args.runs)
    except Exception as exc:
        print(f"error: cannot read the run reports under {reports_dir(conf)}: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    statuses = [group_status(g.name, reports, args.conf) for g in groups]
    if args.json:
        print(json.dumps([s.__dict__ | {"ok": s.ok} for s in statuses if s is not None], indent=2))
    else:
        print(
            render(
                [s for s in statuses if s is not None],
                [g.name for g, s in zip(groups, statuses, strict=True) if s is None],
            )
        )
    return EXIT_OK if all(s is not None and s.ok for s in statuses) else EXIT_FAILED


def reports_dir(conf: PipelineConf) -> str:
    return f"{conf.reports.root.rstrip('/')}/build_features"


def read_reports(conf: PipelineConf, newest: int) -> list[dict[str, Any]]:
    """The newest ``newest`` build run reports, newest first (run ids start with their start time)."""
    root = reports_dir(conf)
    if "://" not in root or root.startswith("file://"):
        from pathlib import Path

        local = Path(root.removeprefix("file://"))
        paths = sorted(local.glob("*.json"), reverse=True)[:newest] if local.is_dir() else []
        return [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    from features.io import fs
    from features.session import get_spark

    spark = get_spark(conf)
    names = sorted((n for n in fs.list_files(spark, root) if n.endswith(".json")), reverse=True)[:newest]
    return [json.loads(fs.read_text(spark, f"{root}/{name}")) for name in names]


def group_status(group: str, reports: list[dict[str, Any]], conf_path: str) -> GroupStatus | None:
    """``group``'s status from the newest report that ran it; None when no report did."""
    runs = [(r, g) for r in reports for g in r.get("groups", []) if g.get("group") == group]
    if not runs:
        return None
    report, entry = runs[0]
    status = _status(report, entry)
    online = entry.get("online") or {}
    pushed = f"{online.get('written', 0)}/{online.get('records', 0)}" if online else "-"
    published = next((r for r, g in runs if _status(r, g) == "published"), None)
    return GroupStatus(
        group=group,
        as_of=report.get("as_of", "?"),
        run_id=report.get("run_id", "?"),
        run_status=report.get("status", "?"),
        status=status,
        online=pushed,
        note=_note(report, entry, status, conf_path),
        last_published=None
        if published is None or published is report
        else f"run {published['run_id']} (as of {published['as_of']})",
    )


def _status(report: dict[str, Any], entry: dict[str, Any]) -> str:
    """A group's status in a report; reports from before per-group statuses have the run's only."""
    return str(entry.get("status") or ("published" if report.get("status") == "succeeded" else "pending"))


def _note(report: dict[str, Any], entry: dict[str, Any], status: str, conf_path: str) -> str:
    rerun = shlex.join(["build-features", "--conf", conf_path, "--group", entry["group"], "--as-of", report["as_of"]])
    if report.get("status") == "running":
        where = {
            "pushing": "offline holds the whole snapshot, online part of it",
            "offline_written": "offline holds the snapshot, online has none of it",
        }.get(status, "nothing is published yet")
        return (
            f"run marked running since {report.get('started_at')}, last at '{status}': {where}; "
            f"if no job is running it was killed: rerun `{rerun}`"
        )
    if status == "published":
        return f"superseded online by the snapshot of {entry['superseded_by']}" if entry.get("superseded_by") else ""
    if status == "push_incomplete" and entry.get("replay"):
        return f"{entry.get('error') or 'push incomplete'}; replay: `{entry['replay']}`"
    return f"{entry.get('error') or report.get('error') or status}; fix the cause, then rerun `{rerun}`"


def render(statuses: list[GroupStatus], never_run: list[str]) -> str:
    lines = []
    for s in statuses:
        lines.append(
            f"{s.group}: {s.status} (as of {s.as_of}, run {s.run_id} {s.run_status}, online written {s.online})"
        )
        if s.note:
            lines.append(f"    {s.note}")
        if s.last_published:
            lines.append(f"    the stores hold the last published {s.last_published}")
    lines += [f"{name}: no run on record" for name in never_run]
    return "\n".join(lines)


STATUS = Command(
    name="status",
    help="where each group's latest run got to (published, push incomplete, killed mid-push), from the run reports",
    description=(
        "Read the newest build run reports and print, per feature group, the status of its latest run, what to "
        "do about it (replay, rerun) and the last run that published it. Exit 0 when every group is published."
    ),
    add_arguments=add_arguments,
    run=run,
)
