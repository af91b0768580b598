"""``feature-pipeline skew-check``: compare a sample of the latest offline snapshot with online."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime

from features.cli.base import Command, add_conf_arguments, add_group_argument, load, setup_logging
from features.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, usage
from features.errors import one_line

log = logging.getLogger(__name__)

#: Mismatches printed per group (the JSON report has them all).
SHOWN = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_conf_arguments(parser, help="environment configuration, e.g. conf/local.yaml")
    add_group_argument(parser)
    parser.add_argument("--sample", type=int, default=1000, help="entities to compare per group (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the entity sample (default 7)")


def run(args: argparse.Namespace) -> int:
    """Check every requested group; print a summary, write a JSON report; 1 on skew, 2 on bad arguments."""
    setup_logging("WARNING")
    try:
        conf, groups = load(args)
    except UsageError as exc:
        return usage(str(exc))
    if args.sample < 1:
        return usage(f"--sample must be at least 1, got {args.sample}")
    from features.io.fs import write_text
    from features.online.embedded import online_endpoint
    from features.session import get_spark
    from features.validate.skew import SkewResult, check_skew

    online = conf.online_store
    spark = get_spark(conf)
    results: list[SkewResult] = []
    try:
        with online_endpoint(online) as endpoint_url:
            for group in groups:
                result = check_skew(
                    spark,
                    group=group,
                    offline_root=conf.offline_store.root,
                    endpoint_url=endpoint_url,
                    region=online.region,
                    sample=args.sample,
                    seed=args.seed,
                )
                results.append(result)
                print(result.summary())
                for mismatch in result.mismatches[:SHOWN]:
                    print(f"  mismatch: {json.dumps(mismatch, default=str)}")
                if result.missing:
                    print(f"  missing online: {', '.join(result.missing[:SHOWN])}")
    except Exception as exc:  # a command's contract: one line and a non-zero exit
        log.debug("skew check failed", exc_info=True)
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    path = f"{conf.reports.root.rstrip('/')}/skew_check/{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
    write_text(spark, path, json.dumps([r.to_dict() for r in results], indent=2, default=str))
    print(f"skew report: {path}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


SKEW_CHECK = Command(
    name="skew-check",
    help="compare a sample of the latest offline snapshot with the online store (training-serving skew)",
    add_arguments=add_arguments,
    run=run,
)
