"""Command-line entry points: ``feature-pipeline <command>`` and ``build-features``.

``jobs/*.py`` call the same functions, so ``spark-submit jobs/build_features.py ARGS`` and
``build-features ARGS`` accept exactly the same arguments. Every command returns an exit code:
0 on success, 1 when the run failed, 2 when the arguments or configuration are wrong; failures
print one line saying why.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from features.config import ConfigError, PipelineConf, load_conf
from features.definitions import DefinitionError, FeatureGroup

log = logging.getLogger("features")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """Bad arguments: exit code 2."""


def parse_as_of(text: str) -> datetime:
    """``2026-10-31T00:00:00Z`` (or with an offset) -> an aware UTC datetime; zone required."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--as-of {text!r} is not an ISO-8601 time; use e.g. 2026-10-31T00:00:00Z") from None
    if value.tzinfo is None:
        raise UsageError(f"--as-of {text!r} has no time zone; add Z for UTC, e.g. 2026-10-31T00:00:00Z")
    value = value.astimezone(UTC)
    if value.microsecond:
        raise UsageError(f"--as-of {text!r}: snapshot times have whole seconds (event times are written to the second)")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", required=True, help="environment configuration, e.g. conf/local.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration key, e.g. --set offline_store.root=/tmp/out (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build-features",
        description="Build feature group snapshots at one as-of time and write them to the offline store.",
        epilog="example: build-features --conf conf/local.yaml --group customer_orders --as-of 2026-10-31T00:00:00Z",
    )
    _common(parser)
    parser.add_argument("--group", default="all", help="feature group name, or 'all' (default)")
    parser.add_argument("--as-of", required=True, help="snapshot time T, ISO-8601 with zone; windows cover [T - w, T)")
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Libraries that narrate at INFO (py4j per command, GX per registered function) drown the
    # pipeline's own progress lines.
    for noisy in ("py4j", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_main(argv: Sequence[str] | None = None) -> int:
    """``build-features`` / ``spark-submit jobs/build_features.py``."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    from features.registry import resolve

    try:
        conf = load_conf(args.conf, args.overrides)
        as_of = parse_as_of(args.as_of)
        groups = resolve(args.group)
    except (ConfigError, UsageError, DefinitionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    return _run_build(conf, groups, as_of)


def _run_build(conf: PipelineConf, groups: list[FeatureGroup], as_of: datetime) -> int:
    from features.io import fs
    from features.online.embedded import prepare_local_credentials
    from features.pipeline import build_features
    from features.report import RunReport, summary
    from features.session import get_spark

    started = datetime.now(tz=UTC)
    report = RunReport(
        run_id=f"{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}",
        job="build_features",
        env=conf.env,
        as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        started_at=started.isoformat(),
    )
    began = time.perf_counter()
    spark = None
    try:
        if conf.online_store.enabled:
            prepare_local_credentials(conf.online_store)
        spark = get_spark(conf)
        build_features(spark, conf, groups, as_of, report)
        report.status = "succeeded"
    except Exception as exc:  # the job's contract: one line, a report, a non-zero exit
        log.debug("run failed", exc_info=True)
        report.status = "failed"
        report.error = _one_line(exc)
    report.seconds = round(time.perf_counter() - began, 3)
    report.finished_at = datetime.now(tz=UTC).isoformat()
    report.report_path = f"{conf.reports.root.rstrip('/')}/build_features/{report.run_id}.json"
    try:
        fs.write_text(spark, report.report_path, report.to_json())
    except Exception as exc:
        print(f"warning: could not write the run report to {report.report_path}: {_one_line(exc)}", file=sys.stderr)
        report.report_path = None
    print(summary(report))
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, (RuntimeError, OSError)) else first


def main(argv: Sequence[str] | None = None) -> int:
    """``feature-pipeline <command>``: the umbrella console command."""
    parser = argparse.ArgumentParser(prog="feature-pipeline", description="Feature pipeline for EMR.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build feature snapshots (same arguments as build-features)", add_help=False)
    sample = sub.add_parser("generate-sample", help="write the deterministic sample data set")
    sample.add_argument("--conf", default="conf/local.yaml", help="configuration for the Spark session")
    sample.add_argument("--out", default="data/sample", help="output directory (default data/sample)")
    sample.add_argument("--seed", type=int, default=42)
    sample.add_argument("--customers", type=int, default=3000)
    sample.add_argument("--events", type=int, default=300_000)
    sample.add_argument("--as-of", default="2026-10-31T00:00:00Z", help="the data ends around this time")
    sample.add_argument("--force", action="store_true", help="regenerate even if the data is there")
    serve = sub.add_parser(
        "serve-local",
        help="run the local SageMaker Feature Store runtime (for development and tests)",
        description="Local SageMaker Feature Store runtime on 127.0.0.1, backed by SQLite.",
    )
    from features.online.local_runtime import add_arguments as serve_arguments
    from features.online.local_runtime import run as serve_run

    serve_arguments(serve)
    from features.online import commands

    online_commands = {
        "register": (
            "create the feature groups in the online store (idempotent)",
            commands.add_register_arguments,
            commands.run_register,
        ),
        "get-record": (
            "print what the online store holds for one entity",
            commands.add_get_record_arguments,
            commands.run_get_record,
        ),
        "replay": (
            "re-push a dead-letter file or directory (idempotent)",
            commands.add_replay_arguments,
            commands.run_replay,
        ),
    }
    for name, (text, add, _) in online_commands.items():
        add(sub.add_parser(name, help=text, description=text))
    from features.validate.skew import add_skew_arguments, run_skew

    skew_help = "compare a sample of the latest offline snapshot with the online store (training-serving skew)"
    add_skew_arguments(sub.add_parser("skew-check", help=skew_help, description=skew_help))
    args, rest = parser.parse_known_args(argv)
    if args.command == "skew-check":
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        _setup_logging("WARNING")
        return run_skew(args)
    if args.command in online_commands:
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        _setup_logging("WARNING")
        return online_commands[args.command][2](args)
    if args.command == "build":
        return build_main(rest)
    if args.command == "serve-local":
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        return serve_run(args)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    _setup_logging("INFO")
    if args.command == "generate-sample":
        from features.sample_data import generate
        from features.session import get_spark

        try:
            as_of = parse_as_of(args.as_of)
            conf = load_conf(args.conf)
        except (UsageError, ConfigError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        generate(
            get_spark(conf),
            Path(args.out),
            seed=args.seed,
            customers=args.customers,
            events=args.events,
            as_of=as_of,
            force=args.force,
        )
        return EXIT_OK
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE
