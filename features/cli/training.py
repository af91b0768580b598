"""``feature-pipeline training-set``: labels as-of joined to the offline snapshots (docs/training.md).

Exit 0 written; 1 the build or the leakage check failed (nothing written); 2 bad arguments, conf
or labels (nothing read from the store).
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from features.cli.base import Command, add_conf_arguments, add_time_travel_arguments, setup_logging, time_travel
from features.cli.errors import EXIT_OK, UsageError, fail, usage
from features.errors import one_line

if TYPE_CHECKING:
    from features.config import PipelineConf
    from features.training.build import TrainingRequest

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_conf_arguments(parser)
    parser.add_argument("--labels", required=True, help="labels table, Parquet or CSV: customer_id, label_time, ...")
    parser.add_argument("--out", required=True, help="output folder; the manifest is <out>/_manifest.json")
    parser.add_argument("--groups", default="all", help="feature groups, comma-separated, or 'all' (default)")
    parser.add_argument("--features", default=None, help="only these features, comma-separated (default: all)")
    parser.add_argument(
        "--max-age", default=None, help="a snapshot older than this at label time gives nulls, e.g. 2d (default: none)"
    )
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="output format")
    add_time_travel_arguments(parser, "the offline tables")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    setup_logging("WARNING")
    try:
        request, conf = _request(args)
    except UsageError as exc:
        return usage(str(exc))
    from features.session import get_spark
    from features.training.build import build_training_set
    from features.training.labels import LabelsError

    try:
        spark = get_spark(conf)
        manifest = build_training_set(spark, conf.offline_store, request)
    except LabelsError as exc:
        return usage(str(exc))
    except Exception as exc:  # a command's contract: one line and a non-zero exit
        log.debug("training-set failed", exc_info=True)
        return fail("training-set", one_line(exc))
    groups = ", ".join(f"{g} ({m['snapshots_used']['labels_matched']} matched)" for g, m in manifest["groups"].items())
    print(f"training set: {manifest['rows_written']} rows ({groups}) -> {request.out}; leakage check passed")
    print(f"manifest: {request.out.rstrip('/')}/_manifest.json")
    return EXIT_OK


def _request(args: argparse.Namespace) -> tuple[TrainingRequest, PipelineConf]:
    from features.config import ConfigError, load_conf
    from features.definitions import DefinitionError, Window
    from features.registry import resolve
    from features.training.build import TrainingRequest

    try:
        conf = load_conf(args.conf, args.overrides)
        names = [n.strip() for n in args.groups.split(",") if n.strip()]
        if not names:
            raise UsageError("--groups is empty; name groups, e.g. --groups customer_profile,customer_orders, or all")
        groups = [g for n in names for g in resolve(n)]
        max_age = Window.parse(args.max_age, "--max-age").length if args.max_age is not None else None
    except (ConfigError, DefinitionError) as exc:
        raise UsageError(str(exc)) from None
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features is not None else None
    if features is not None and not features:
        raise UsageError("--features is empty; name features, e.g. --features age,order_count_7d")
    travel = time_travel(args, conf)
    request = TrainingRequest(
        labels=args.labels,
        out=args.out,
        groups=list({g.name: g for g in groups}.values()),
        format=args.format,
        features=features,
        max_age=max_age,
        version=travel.version,
        timestamp=travel.timestamp,
        overwrite=args.overwrite,
    )
    return request, conf


TRAINING_SET = Command(
    name="training-set",
    help="point-in-time training set: labels joined as of their label time to the offline snapshots",
    add_arguments=add_arguments,
    run=run,
)
