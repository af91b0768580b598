"""``feature-pipeline generate-sample``: the deterministic sample data set ``make run`` uses."""

from __future__ import annotations

import argparse
from pathlib import Path

from features.cli.base import Command, parse_as_of, setup_logging
from features.cli.errors import EXIT_OK, UsageError, usage
from features.config import ConfigError, load_conf
from features.definitions import DefinitionError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", default="conf/local.yaml", help="configuration for the Spark session")
    parser.add_argument("--out", default="data/sample", help="output directory (default data/sample)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--as-of", default="2026-10-31T00:00:00Z", help="the data ends around this time")
    parser.add_argument("--force", action="store_true", help="regenerate even if the data is there")


def run(args: argparse.Namespace) -> int:
    setup_logging("INFO")
    from features.sample_data import generate
    from features.session import get_spark

    try:
        as_of = parse_as_of(args.as_of)
        conf = load_conf(args.conf)
    except (UsageError, ConfigError, DefinitionError) as exc:
        return usage(str(exc))
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


GENERATE_SAMPLE = Command(
    name="generate-sample", help="write the deterministic sample data set", add_arguments=add_arguments, run=run
)
