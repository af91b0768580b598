"""What every command shares: the :class:`Command` record, common arguments, logging, times.

A command module declares ``Command`` objects at its top level; ``features.cli`` finds them by
import and type, as the registry finds feature groups.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from features.cli.errors import UsageError
from features.config import ConfigError, PipelineConf, load_conf
from features.definitions import DefinitionError, FeatureGroup
from features.online.embedded import check_runtime_installed


@dataclass(frozen=True, kw_only=True)
class Command:
    """One ``feature-pipeline`` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


def add_conf_arguments(parser: argparse.ArgumentParser, *, required: bool = True, help: str | None = None) -> None:
    """``--conf`` and repeatable ``--set KEY=VALUE``: how every command takes its configuration."""
    parser.add_argument(
        "--conf",
        required=required,
        default=None,
        help=help or "environment configuration, e.g. conf/local.yaml",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration key, e.g. --set offline_store.root=/tmp/out (repeatable)",
    )


def add_group_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", default="all", help="feature group name, or 'all' (default)")


def load(args: argparse.Namespace) -> tuple[PipelineConf, list[FeatureGroup]]:
    """The conf and the groups a command was asked for; a UsageError naming the fix otherwise."""
    from features.registry import resolve

    try:
        conf = load_conf(args.conf, args.overrides)
        groups = resolve(getattr(args, "group", "all"))
        for group in groups:
            conf.source(group.source.name)
        if conf.online_store.enabled:
            check_runtime_installed(conf.online_store)
    except (ConfigError, DefinitionError) as exc:
        raise UsageError(str(exc)) from None
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return conf, groups


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Libraries that narrate at INFO (py4j per command, GX per registered function) drown the
    # pipeline's own progress lines.
    for noisy in ("py4j", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
