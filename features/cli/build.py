"""``build-features`` / ``feature-pipeline build`` / ``spark-submit jobs/build_features.py``.

All three take the same arguments. The run report is written when the run starts (status
``running``), after every stage, and when the run ends, failed or not.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from features.cli.base import (
    AS_OF_HELP,
    Command,
    add_conf_arguments,
    add_group_argument,
    load,
    parse_as_of,
    setup_logging,
)
from features.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, usage
from features.config import PipelineConf
from features.definitions import FeatureGroup
from features.errors import one_line

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from features.pipeline import BuildResult
    from features.report import RunReport

log = logging.getLogger("features")

EXAMPLE = "example: build-features --conf conf/local.yaml --group customer_orders --as-of 2026-10-31T00:00:00Z"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_conf_arguments(parser)
    add_group_argument(parser)
    parser.add_argument("--as-of", required=True, help=AS_OF_HELP)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    try:
        conf, groups = load(args)
        as_of = parse_as_of(args.as_of)
    except UsageError as exc:
        return usage(str(exc))
    return run_build(conf, groups, as_of, conf_path=args.conf)


BUILD = Command(
    name="build",
    help="build feature snapshots at one as-of time (the same as build-features)",
    description=(
        "Build feature group snapshots at one as-of time, validate them, write them offline and push them online."
    ),
    add_arguments=add_arguments,
    run=run,
)


def build_main(argv: Sequence[str] | None = None) -> int:
    """``build-features`` and ``spark-submit jobs/build_features.py``."""
    parser = argparse.ArgumentParser(prog="build-features", description=BUILD.description, epilog=EXAMPLE)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run_build(conf: PipelineConf, groups: list[FeatureGroup], as_of: datetime, *, conf_path: str | None = None) -> int:
    """Run the pipeline with a run report that is written at the start and after every stage."""
    from features.pipeline import BuildResult, RunFailedError, build_features
    from features.report import RunReport, summary
    from features.session import get_spark

    started = datetime.now(tz=UTC)
    report = RunReport(
        run_id=f"{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}",
        job="build_features",
        env=conf.env,
        as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        started_at=started.isoformat(),
        conf=conf_path,
    )
    report.report_path = f"{conf.reports.root.rstrip('/')}/build_features/{report.run_id}.json"
    began = time.perf_counter()
    spark = None
    outcome = BuildResult()

    def save(result: BuildResult) -> None:
        """Rewrite the report with ``result`` so far: a killed run leaves its last stage on record."""
        fill(report, result, conf_path)
        report.seconds = round(time.perf_counter() - began, 3)
        write_report(spark, report)

    try:
        spark = get_spark(conf)
        write_report(spark, report)  # status running: what a run killed before its first stage leaves
        outcome = build_features(spark, conf, groups, as_of, run_id=report.run_id, on_progress=save)
        report.status = "succeeded"
    except Exception as exc:  # the job's contract: one line, a report, a non-zero exit
        cause = exc.__cause__ if isinstance(exc, RunFailedError) and exc.__cause__ is not None else exc
        if isinstance(exc, RunFailedError):
            outcome = exc.result
        log.debug("run failed", exc_info=True)
        report.status = "failed"
        report.error = one_line(cause)
    fill(report, outcome, conf_path)
    report.seconds = round(time.perf_counter() - began, 3)
    report.finished_at = datetime.now(tz=UTC).isoformat()
    write_report(spark, report)
    print(summary(report))
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def fill(report: RunReport, result: BuildResult, conf_path: str | None) -> None:
    """Copy what the pipeline did into the run report, with the replay command of each group's dead letters."""
    report.warnings = result.warnings
    report.sources = result.sources
    report.groups = list(result.groups.values())
    for group in report.groups:
        path = (group.online or {}).get("dead_letter_path")
        if path:
            group.replay = shlex.join(["feature-pipeline", "replay", "--conf", conf_path or "CONF", "--path", path])


def write_report(spark: SparkSession | None, report: RunReport) -> None:
    """Write the run report to ``report.report_path``; on failure warn once and stop trying."""
    from features.io import fs

    if report.report_path is None:
        return
    try:
        fs.write_text(spark, report.report_path, report.to_json())
    except Exception as exc:
        print(f"warning: could not write the run report to {report.report_path}: {one_line(exc)}", file=sys.stderr)
        report.report_path = None
