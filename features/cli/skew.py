"""``feature-pipeline skew-check``: compare a sample of the latest offline snapshot with online.

Every requested group is checked, whatever happens to the others, and gets one summary line and
one entry in the JSON report (docs/validation.md, "Training-serving skew check").
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from features.cli.base import (
    Command,
    add_conf_arguments,
    add_group_argument,
    add_time_travel_arguments,
    load,
    setup_logging,
    time_travel,
)
from features.cli.errors import EXIT_OK, UsageError, fail, usage
from features.errors import one_line

if TYPE_CHECKING:
    from features.validate.skew import SkewResult

log = logging.getLogger(__name__)

#: Mismatches and missing entities printed per group (the JSON report has them all).
SHOWN = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_conf_arguments(parser, help="environment configuration, e.g. conf/local.yaml")
    add_group_argument(parser)
    parser.add_argument("--sample", type=int, default=1000, help="entities to compare per group (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the entity sample (default 7)")
    add_time_travel_arguments(parser, "the offline tables")


def run(args: argparse.Namespace) -> int:
    """Check every requested group; print a line per group, write a JSON report.

    0 when every group matched; 1 when any group has skew or could not be checked (the one-line
    failure names them); 2 on bad arguments.
    """
    setup_logging("WARNING")
    try:
        conf, groups = load(args)
        travel = time_travel(args, conf)
    except UsageError as exc:
        return usage(str(exc))
    if args.sample < 1:
        return usage(f"--sample must be at least 1, got {args.sample}")
    from features.io.fs import write_text
    from features.online.embedded import online_endpoint
    from features.online.reader import ReadRetry
    from features.session import get_spark
    from features.validate.skew import SkewChecker

    online = conf.online_store
    results: list[SkewResult] = []
    try:
        spark = get_spark(conf)
        with (
            online_endpoint(online) as endpoint_url,
            SkewChecker(
                spark,
                offline_root=conf.offline_store.root,
                endpoint_url=endpoint_url,
                region=online.region,
                sample=args.sample,
                seed=args.seed,
                retry=ReadRetry.from_conf(online),
                version=travel.version,
                timestamp=travel.timestamp,
            ) as checker,
        ):
            for group in groups:
                result = checker.check(group)
                results.append(result)
                print(result.summary(), flush=True)
                for mismatch in result.mismatches[:SHOWN]:
                    print(f"  mismatch: {json.dumps(mismatch, default=str)}")
                if result.missing:
                    more = f" (+{len(result.missing) - SHOWN} more)" if len(result.missing) > SHOWN else ""
                    print(f"  missing online: {', '.join(result.missing[:SHOWN])}{more}")
        path = f"{conf.reports.root.rstrip('/')}/skew_check/{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
        write_text(spark, path, json.dumps([r.to_dict() for r in results], indent=2, default=str))
    except Exception as exc:  # a command's contract: one line and a non-zero exit
        log.debug("skew check failed", exc_info=True)
        return fail("skew-check", one_line(exc))
    print(f"skew report: {path}")
    return EXIT_OK if all(r.ok for r in results) else fail("skew-check", verdict(results))


def verdict(results: list[SkewResult]) -> str:
    """``skew in customer_orders (...); could not check customer_profile: ...`` for the groups not matched."""
    parts = []
    for r in results:
        if r.status == "skew":
            parts.append(
                f"skew in {r.group} ({r.mismatched} mismatched, {r.missing_online} missing online "
                f"of {r.checked} checked)"
            )
        elif r.status == "error":
            parts.append(f"could not check {r.group}: {r.error}")
    matched = sum(r.ok for r in results)
    return f"{'; '.join(parts)} ({matched} of {len(results)} groups matched)"


SKEW_CHECK = Command(
    name="skew-check",
    help="compare a sample of the latest offline snapshot with the online store (training-serving skew)",
    add_arguments=add_arguments,
    run=run,
)
