"""``feature-pipeline offline``: the Delta offline store's history, compaction and vacuum; Athena DDL.

``history`` lists a group's table versions with the snapshot and run each write committed;
``optimize`` compacts (``--zorder``: by the record identifier); ``vacuum`` deletes files older
versions need, never with a retention below ``offline_store.vacuum_retention_floor``; ``ddl``
prints the group's Athena DDL (features/catalog/glue.py). docs/offline-store.md.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from datetime import timedelta

from features.cli.base import Command, add_conf_arguments, load, setup_logging
from features.cli.errors import EXIT_OK, UsageError, fail, usage
from features.config import PipelineConf
from features.definitions import DefinitionError, FeatureGroup, Window
from features.errors import one_line

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="offline_command", required=True, metavar="SUBCOMMAND")
    helps = {
        "history": "list the versions of a group's Delta table (version, time, operation, snapshot, run, rows)",
        "optimize": "compact a group's Delta table into fewer, larger files",
        "vacuum": "delete data files that versions older than --retain need (time travel stops there)",
        "ddl": "print the Athena DDL of a group's offline table",
    }
    for name, text in helps.items():
        command = sub.add_parser(name, help=text, description=text)
        add_conf_arguments(command)
        command.add_argument("--group", required=True, help="feature group name, or 'all'")
        if name == "history":
            command.add_argument("--limit", type=int, default=None, help="newest versions to list (default all)")
        elif name == "optimize":
            command.add_argument("--zorder", action="store_true", help="Z-order by the record identifier too")
        elif name == "vacuum":
            command.add_argument(
                "--retain",
                default=None,
                help="history to keep, e.g. 168h or 30d (default offline_store.vacuum_retention_floor)",
            )


def run(args: argparse.Namespace) -> int:
    """0 done; 1 the operation failed (one line); 2 bad arguments, or a conf whose store is not Delta."""
    setup_logging("WARNING")
    try:
        conf, groups = load(args)
        action = _action(args, conf)
    except UsageError as exc:
        return usage(str(exc))
    try:
        for group in groups:
            action(conf, group)
    except Exception as exc:  # a command's contract: one line and a non-zero exit
        log.debug("offline %s failed", args.offline_command, exc_info=True)
        return fail(f"offline {args.offline_command}", one_line(exc))
    return EXIT_OK


def _action(args: argparse.Namespace, conf: PipelineConf) -> Callable[[PipelineConf, FeatureGroup], None]:
    """What the subcommand does per group; every argument is checked here, before Spark starts."""
    if args.offline_command == "ddl":
        return _ddl
    if conf.offline_store.format != "delta":
        raise UsageError(
            f"offline {args.offline_command} works on Delta tables, and this conf's offline_store.format is "
            f"{conf.offline_store.format}; pass --set offline_store.format=delta"
        )
    if args.offline_command == "history":
        if args.limit is not None and args.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {args.limit}")
        return lambda c, g: _history(c, g, args.limit)
    if args.offline_command == "optimize":
        return lambda c, g: _optimize(c, g, args.zorder)
    floor = conf.offline_store.vacuum_retention_floor
    retain = floor if args.retain is None else _duration(args.retain)
    if retain < floor:
        raise UsageError(
            f"--retain {args.retain} is below offline_store.vacuum_retention_floor ({_hours(floor)}); versions older "
            "than the retention could no longer be read; retain at least the floor"
        )
    return lambda c, g: _vacuum(c, g, retain)


def _duration(text: str) -> timedelta:
    try:
        return Window.parse(text, "--retain").length
    except DefinitionError:
        raise UsageError(
            f"--retain {text!r} is not a duration; use a whole number and one of m, h, d, e.g. 168h"
        ) from None


def _hours(value: timedelta) -> str:
    return f"{value.total_seconds() / 3600:g}h"


def _table(conf: PipelineConf, group: FeatureGroup) -> str:
    from features.load import delta
    from features.session import get_spark

    spark = get_spark(conf)
    if not delta.is_table(spark, conf.offline_store.root, group.name):
        raise FileNotFoundError(
            f"{group.name} has no Delta table at {delta.table_path(conf.offline_store.root, group.name)}; "
            "write a snapshot with offline_store.format delta first"
        )
    return delta.table_path(conf.offline_store.root, group.name)


def _history(conf: PipelineConf, group: FeatureGroup, limit: int | None) -> None:
    from features.load import delta
    from features.session import get_spark

    path = _table(conf, group)
    print(f"{group.name}: {path}")
    print(f"{'version':>7}  {'timestamp (UTC)':<20} {'operation':<18} {'snapshot':<21} {'rows':>9}  run id")
    for v in delta.history(get_spark(conf), conf.offline_store.root, group.name, limit):
        rows = "" if v.rows is None else str(v.rows)
        print(
            f"{v.version:>7}  {v.timestamp:%Y-%m-%dT%H:%M:%SZ}  {v.operation:<18} {v.snapshot or '-':<21} "
            f"{rows:>9}  {v.run_id or '-'}"
        )


def _optimize(conf: PipelineConf, group: FeatureGroup, zorder: bool) -> None:
    from features.load import delta
    from features.session import get_spark

    path = _table(conf, group)
    key = group.entity.join_key if zorder else None
    metrics = delta.optimize(get_spark(conf), conf.offline_store.root, group.name, zorder_by=key)
    order = f", Z-ordered by {key}" if key else ""
    print(
        f"{group.name}: {path} optimized{order}: {metrics.get('numFilesRemoved', 0)} file(s) compacted into "
        f"{metrics.get('numFilesAdded', 0)}"
    )


def _vacuum(conf: PipelineConf, group: FeatureGroup, retain: timedelta) -> None:
    from features.load import delta
    from features.session import get_spark

    path = _table(conf, group)
    floor = conf.offline_store.vacuum_retention_floor
    deleted = delta.vacuum(get_spark(conf), conf.offline_store.root, group.name, retain, floor)
    print(f"{group.name}: {path} vacuumed: {deleted} file(s) deleted, history of {_hours(retain)} kept")


def _ddl(conf: PipelineConf, group: FeatureGroup) -> None:
    from features.catalog.glue import athena_ddl

    print(athena_ddl(conf, group), end="")


OFFLINE = Command(
    name="offline",
    help="offline store maintenance: history, optimize, vacuum (Delta) and ddl (Athena)",
    add_arguments=add_arguments,
    run=run,
)
