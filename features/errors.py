"""One-line error text, shared by the pipeline, the readers and every command.

A job's contract is one line saying why it failed (docs/architecture.md); Spark's own errors arrive
as Py4J wrappers whose first line names only the JVM call, so the innermost Java cause is used.
"""

from __future__ import annotations

import contextlib

from py4j.protocol import Py4JError

#: Longest Java cause text kept (a JVM message can carry a whole plan or file listing).
MAX_LENGTH = 400


def root_cause(exc: BaseException) -> str:
    """The innermost Java cause's message (the driver's own words), else the first line of ``exc``."""
    return _java_cause(exc) or _first_line(str(exc)) or type(exc).__name__


def one_line(exc: BaseException) -> str:
    """``exc`` as one line: a Java cause or our own errors (RuntimeError, OSError) as they are,
    anything else prefixed with its type."""
    java = _java_cause(exc)
    if java:
        return java
    first = _first_line(str(exc))
    if not first:
        return type(exc).__name__
    return first if isinstance(exc, RuntimeError | OSError) else f"{type(exc).__name__}: {first}"


def _java_cause(exc: BaseException) -> str:
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    text = ""
    with contextlib.suppress(Py4JError):  # the JVM may be gone; fall back to the Python text
        while java is not None:
            text = str(java.toString())
            java = java.getCause()
    return _first_line(text)[:MAX_LENGTH]


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""
