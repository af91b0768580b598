"""Exit codes and the one-line failure every command prints, defined once.

0 success; 1 the run or operation failed; 2 bad arguments or configuration (nothing was done).
"""

from __future__ import annotations

import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """Bad arguments: exit code 2, before any work starts."""


def fail(command: str, message: str, code: int = EXIT_FAILED) -> int:
    """Print ``<command> failed: <message>`` on stderr and return ``code``."""
    print(f"{command} failed: {_one_line(message)}", file=sys.stderr)
    return code


def usage(message: str) -> int:
    """Print ``error: <message>`` on stderr and return the usage exit code."""
    print(f"error: {_one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


def _one_line(message: str) -> str:
    """The promise is one line whatever a library put in the text (PyYAML's marks span several)."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())
