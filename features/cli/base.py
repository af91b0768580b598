"""What every command shares: the :class:`Command` record, common arguments, logging, times.

A command module declares ``Command`` objects at its top level; ``features.cli`` finds them by
import and type, as the registry finds feature groups.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from features.cli.errors import UsageError
from features.config import ConfigError, PipelineConf, load_conf
from features.definitions import DefinitionError, FeatureGroup, Window
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
    add_set_argument(parser, "override a configuration key, e.g. --set offline_store.root=/tmp/out (repeatable)")


def add_set_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Repeatable ``--set KEY=VALUE`` conf overrides, collected in ``args.overrides``."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


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


#: What ``--as-of`` accepts; commands reuse it as their help text (docs/deploy.md#the-snapshot-time).
AS_OF_HELP = (
    "snapshot time T; windows cover [T - w, T): ISO-8601 with a zone (2026-10-31T00:00:00Z), 'now', "
    "or 'floor(TIME, UNIT)' with TIME an ISO time or now and UNIT dividing a day (1h, 6h, 1d), e.g. "
    "'floor(now, 1d)' = the last UTC midnight"
)

_FLOOR = re.compile(r"^floor\(\s*(?P<time>[^,()]+?)\s*,\s*(?P<unit>[^,()]+?)\s*\)$", re.IGNORECASE)
_DAY = 86_400


def parse_as_of(text: str, *, clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC)) -> datetime:
    """``--as-of`` -> an aware UTC datetime with whole seconds.

    Besides a plain ISO time (zone required), ``now`` reads ``clock`` and ``floor(TIME, UNIT)``
    rounds TIME down to a multiple of UNIT counted from UTC midnight, so a scheduler can pass its
    own fire time (EventBridge Scheduler's ``<aws.scheduler.scheduled-time>``) and the job
    snapshots the last complete day: ``floor(2026-10-31T00:17:03Z, 1d)`` is 2026-10-31T00:00:00Z.
    """
    spelled = text.strip()
    floor = _FLOOR.match(spelled)
    if floor is None:
        value = _instant(text, spelled, clock)
        if value.microsecond:
            raise UsageError(
                f"--as-of {text!r}: snapshot times have whole seconds (event times are written to the second); "
                f"use e.g. 'floor({spelled}, 1h)'"
            )
        return value
    unit = floor_unit(floor["unit"], f"--as-of {text!r}")
    value = _instant(text, floor["time"], clock)
    midnight = value.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((value - midnight).total_seconds())
    return midnight + timedelta(seconds=elapsed - elapsed % unit)


def floor_unit(unit: str, where: str) -> int:
    """The seconds of a ``floor(TIME, UNIT)`` unit; it must divide a day, so floors fall on the same
    times every day."""
    try:
        seconds = Window.parse(unit, where).seconds
    except DefinitionError:
        raise UsageError(f"{where}: floor unit {unit!r} is not a duration; use e.g. 1h or 1d") from None
    if _DAY % seconds:
        raise UsageError(f"{where}: floor unit {unit} does not divide a day; use e.g. 1h, 6h or 1d")
    return seconds


def _instant(text: str, spelled: str, clock: Callable[[], datetime], flag: str = "--as-of") -> datetime:
    """One ISO-8601 time with a zone, or ``now``, as aware UTC (sub-second digits kept)."""
    if spelled.lower() == "now":
        return clock().astimezone(UTC).replace(microsecond=0)
    if spelled.startswith("<aws.scheduler."):
        raise UsageError(
            f"{flag} {text!r}: {spelled} is filled in only by EventBridge Scheduler; "
            "pass a time, e.g. 2026-10-31T00:00:00Z"
        )
    try:
        value = datetime.fromisoformat(spelled.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        forms = "an ISO-8601 time, 'now' or 'floor(TIME, UNIT)'" if flag == "--as-of" else "an ISO-8601 time"
        raise UsageError(f"{flag} {text!r} is not {forms}; use e.g. 2026-10-31T00:00:00Z") from None
    if value.tzinfo is None:
        raise UsageError(f"{flag} {text!r} has no time zone; add Z for UTC, e.g. 2026-10-31T00:00:00Z")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class TimeTravel:
    """Which state of the offline store's Delta tables to read: the current one (both None), the
    one at a table version, or the one at a time."""

    version: int | None = None
    timestamp: datetime | None = None


def add_time_travel_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--as-of-version N`` / ``--as-of-timestamp TIME``: read Delta tables as they were (one of them)."""
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--as-of-version",
        type=int,
        default=None,
        metavar="N",
        help=f"read {what} as they were at this Delta table version",
    )
    chosen.add_argument(
        "--as-of-timestamp",
        default=None,
        metavar="TIME",
        help=f"read {what} as they were at this time (ISO-8601 with a zone; Delta only)",
    )


def time_travel(args: argparse.Namespace, conf: PipelineConf) -> TimeTravel:
    """The checked ``--as-of-version`` / ``--as-of-timestamp``; a UsageError on a Parquet store."""
    version, text = getattr(args, "as_of_version", None), getattr(args, "as_of_timestamp", None)
    if version is None and text is None:
        return TimeTravel()
    flag = "--as-of-version" if version is not None else "--as-of-timestamp"
    if version is not None and version < 0:
        raise UsageError(f"--as-of-version must be 0 or more, got {version}")
    if conf.offline_store.format != "delta":
        raise UsageError(
            f"{flag} reads Delta tables as they were; the offline store is parquet, which keeps no versions "
            "(set offline_store.format: delta)"
        )
    if text is None:
        return TimeTravel(version=version)
    timestamp = _instant(text, text.strip(), lambda: datetime.now(tz=UTC), flag=flag)
    return TimeTravel(timestamp=timestamp)
