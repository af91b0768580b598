"""The deploy commands the README and docs/deploy.md show parse with the real command line."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from features.cli.deploy import DEPLOY

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def shown_commands() -> list[tuple[str, str]]:
    """(file, command) for each ``feature-pipeline deploy ...`` line of a bash block."""
    found = []
    for name in ("README.md", "docs/deploy.md"):
        for block in _FENCE.findall((ROOT / name).read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                if "feature-pipeline deploy " in line:
                    found.append((name, line.split("feature-pipeline ", 1)[1].split("#")[0].strip()))
    return found


def test_the_readme_shows_every_subcommand_it_needs() -> None:
    shown = {command.split()[1] for name, command in shown_commands() if name == "README.md"}
    assert shown == {"upload", "serverless-run", "emr-step"}


@pytest.mark.parametrize(("name", "command"), shown_commands())
def test_shown_command_parses(name: str, command: str) -> None:
    parser = argparse.ArgumentParser(prog="feature-pipeline", exit_on_error=False)
    DEPLOY.add_arguments(parser)
    tokens = shlex.split(re.sub(r"\$\(?\w+\)?", "VALUE", command))
    args = parser.parse_args(tokens[1:])
    assert args.deploy_name == f"deploy {tokens[1]}", (name, command)
