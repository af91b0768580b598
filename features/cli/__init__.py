"""The console commands: ``feature-pipeline <command>`` and ``build-features``.

Each module of this package declares its :class:`~features.cli.base.Command` objects at the top
level and :func:`main` collects them by import and type: adding a command is adding a module
(docs/architecture.md). ``jobs/*.py`` call the same functions, so ``spark-submit jobs/X.py ARGS``
and the console command take the same arguments.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Sequence

from features.cli.base import Command
from features.cli.build import build_main

__all__ = ["build_main", "commands", "main"]


def commands() -> dict[str, Command]:
    """Every Command declared in a module of this package, by name."""
    found: dict[str, Command] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Command):
                found[value.name] = value
    return dict(sorted(found.items()))


def main(argv: Sequence[str] | None = None) -> int:
    """``feature-pipeline <command>``: the umbrella console command."""
    parser = argparse.ArgumentParser(prog="feature-pipeline", description="Feature pipeline for EMR.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    table = commands()
    for command in table.values():
        command.add_arguments(
            sub.add_parser(command.name, help=command.help, description=command.description or command.help)
        )
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "unknown_arguments_allowed", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return table[args.command].run(args)
