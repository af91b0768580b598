"""``feature-pipeline serve-local``: the local Feature Store runtime, when it is installed.

The runtime is a developer tool packaged on its own (``featurestore-local``); job artifacts do
not contain it, so this command says how to get it instead of failing on an import.
"""

from __future__ import annotations

import argparse

from features.cli.base import Command
from features.cli.errors import usage

MISSING = (
    "serve-local needs the local Feature Store runtime, which is not installed here: "
    "pip install -e featurestore-local (make setup does)"
)


def _runtime_missing(exc: ModuleNotFoundError) -> bool:
    """The runtime package itself is absent (not a module it imports)."""
    return (exc.name or "").partition(".")[0] == "featurestore_local"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        from featurestore_local.cli import add_arguments as runtime_arguments
    except ModuleNotFoundError as exc:
        if not _runtime_missing(exc):
            raise
        parser.set_defaults(unknown_arguments_allowed=True)  # run() explains what to install
        return
    runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        from featurestore_local.cli import run as serve
    except ModuleNotFoundError as exc:
        if not _runtime_missing(exc):
            raise
        return usage(MISSING)
    return serve(args)


SERVE_LOCAL = Command(
    name="serve-local",
    help="run the local SageMaker Feature Store runtime (for development and tests)",
    description="Local SageMaker Feature Store runtime on 127.0.0.1, backed by SQLite.",
    add_arguments=add_arguments,
    run=run,
)
