"""``feature-pipeline backfill`` / ``spark-submit jobs/backfill.py``: many snapshots in one job.

Exit 0 every snapshot written (and the newest pushed with ``--push-latest``); 1 the run failed
(the report says which snapshots were written); 2 bad arguments or conf (nothing read).
The run report (``<reports.root>/backfill/<run_id>.json``) is written at the start, after
every stage and at the end, and lists every snapshot written (docs/backfill.md).
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from features.cli.base import Command, add_conf_arguments, add_group_argument, load, parse_as_of, setup_logging
from features.cli.build import fill, write_report
from features.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, usage
from features.config import PipelineConf
from features.definitions import DefinitionError, FeatureGroup, Window
from features.errors import one_line

if TYPE_CHECKING:
    from features.pipeline import BuildResult
    from features.report import RunReport

log = logging.getLogger("features")

EXAMPLE = (
    "example: feature-pipeline backfill --conf conf/local.yaml --group customer_activity "
    "--start 2026-10-01T00:00:00Z --end 2026-10-30T00:00:00Z --step 1d"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_conf_arguments(parser)
    add_group_argument(parser)
    parser.add_argument("--start", required=True, help="the first snapshot time T0, e.g. 2026-10-01T00:00:00Z")
    parser.add_argument("--end", required=True, help="the last snapshot time T1 (inclusive): T0 plus whole steps")
    parser.add_argument("--step", required=True, help="time between snapshots: a whole number and m, h or d (1d, 1h)")
    parser.add_argument(
        "--push-latest", action="store_true", help="push the newest snapshot (T1) online; without it nothing is pushed"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _time(text: str, flag: str) -> datetime:
    try:
        return parse_as_of(text)
    except UsageError as exc:
        raise UsageError(str(exc).replace("--as-of", flag)) from None


def parse_range(args: argparse.Namespace, conf: PipelineConf, groups: list[FeatureGroup]) -> list[datetime]:
    """The snapshot times asked for, checked against every group before anything is read."""
    from features.backfill import grids
    from features.transform.tiles import TileError, snapshot_times

    start, end = _time(args.start, "--start"), _time(args.end, "--end")
    try:
        step = Window.parse(args.step, "--step").length
    except DefinitionError as exc:
        raise UsageError(str(exc)) from None
    try:
        times = snapshot_times(start, end, step)
        grids(conf, groups, times)
    except TileError as exc:
        raise UsageError(str(exc)) from None
    if args.push_latest and not conf.online_store.enabled:
        raise UsageError("--push-latest needs the online store: set online_store.enabled=true (or drop --push-latest)")
    return times


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    try:
        conf, groups = load(args)
        times = parse_range(args, conf, groups)
    except UsageError as exc:
        return usage(str(exc))
    return run_backfill(conf, groups, times, push_latest=args.push_latest, conf_path=args.conf)


BACKFILL = Command(
    name="backfill",
    help="build many snapshots (--start .. --end every --step) of feature groups in one job",
    description=(
        "Build every snapshot T0, T0+step, ..., T1 of feature groups from one read of the sources, each equal to "
        "what build-features writes at that T; validate and write each offline; push only the newest with "
        "--push-latest. " + EXAMPLE
    ),
    add_arguments=add_arguments,
    run=run,
)


def run_backfill(
    conf: PipelineConf,
    groups: list[FeatureGroup],
    times: list[datetime],
    *,
    push_latest: bool,
    conf_path: str | None = None,
) -> int:
    """Run the backfill with a run report written at the start, after every stage and at the end."""
    from features.backfill import BackfillResult, backfill
    from features.pipeline import RunFailedError
    from features.report import RunReport, summary
    from features.session import get_spark

    started = datetime.now(tz=UTC)
    report = RunReport(
        run_id=f"{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}",
        job="backfill",
        env=conf.env,
        as_of=times[-1].strftime("%Y-%m-%dT%H:%M:%SZ"),
        started_at=started.isoformat(),
        conf=conf_path,
    )
    report.report_path = f"{conf.reports.root.rstrip('/')}/backfill/{report.run_id}.json"
    began = time.perf_counter()
    spark = None
    outcome: BuildResult = BackfillResult()

    def save(result: BuildResult) -> None:
        _fill(report, result, conf_path)
        report.seconds = round(time.perf_counter() - began, 3)
        write_report(spark, report)

    try:
        spark = get_spark(conf)
        write_report(spark, report)
        outcome = backfill(spark, conf, groups, times, run_id=report.run_id, push_latest=push_latest, on_progress=save)
        report.status = "succeeded"
    except Exception as exc:  # the job's contract: one line, a report, a non-zero exit
        cause = exc.__cause__ if isinstance(exc, RunFailedError) and exc.__cause__ is not None else exc
        if isinstance(exc, RunFailedError):
            outcome = exc.result
        log.debug("backfill failed", exc_info=True)
        report.status = "failed"
        report.error = one_line(cause)
    _fill(report, outcome, conf_path)
    report.seconds = round(time.perf_counter() - began, 3)
    report.finished_at = datetime.now(tz=UTC).isoformat()
    write_report(spark, report)
    print(summary(report))
    written = [s for s in report.snapshots if s["status"] == "written"]
    print(
        f"snapshots written: {len(written)} of {len(times) * len(groups)} ({times[0]:%Y-%m-%dT%H:%M:%SZ} .. "
        f"{times[-1]:%Y-%m-%dT%H:%M:%SZ})"
    )
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _fill(report: RunReport, result: BuildResult, conf_path: str | None) -> None:
    """The build job's fill, plus the list of snapshots."""
    from features.backfill import BackfillResult

    fill(report, result, conf_path)
    if isinstance(result, BackfillResult):
        report.snapshots = [asdict(s) for s in result.snapshots]
