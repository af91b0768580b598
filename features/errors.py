"""One-line error text, shared by the pipeline, the readers and every command.

A job's contract is one line saying why it failed (docs/architecture.md); Spark's own errors arrive
as Py4J wrappers whose first line names only the JVM call, so the innermost Java cause is used,
and the file Spark was reading when it failed is kept in the line (the innermost cause rarely
names it).
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import unquote, urlsplit

from py4j.protocol import Py4JError

#: Longest Java cause text kept (a JVM message can carry a whole plan or file listing).
MAX_LENGTH = 400

#: How Spark names the file a failed read task was reading (``FAILED_READ_FILE``); Spark 3.5 says
#: it only when the file fails on its first record.
_FAILED_FILE = re.compile(r"Encountered error while reading file (\S+?)\.?(?:\s|$)")


def root_cause(exc: BaseException) -> str:
    """The innermost Java cause's message (the driver's own words), else the first line of ``exc``."""
    chain = _java_chain(exc)
    return (chain[-1] if chain else "") or _first_line(str(exc)) or type(exc).__name__


def one_line(exc: BaseException) -> str:
    """``exc`` as one line: a Java cause (prefixed with the file being read, when Spark named one)
    or our own errors (RuntimeError, OSError) as they are, anything else prefixed with its type."""
    chain = _java_chain(exc)
    if chain and chain[-1]:
        innermost = chain[-1]
        path = next((m.group(1) for text in chain if (m := _FAILED_FILE.search(text))), None)
        if path is not None and unquote(urlsplit(path).path) not in innermost:
            return f"cannot read {path}: {innermost}"[:MAX_LENGTH]
        return innermost
    first = _first_line(str(exc))
    if not first:
        return type(exc).__name__
    return first if isinstance(exc, RuntimeError | OSError) else f"{type(exc).__name__}: {first}"


def failed_file(exc: BaseException) -> str | None:
    """The file Spark says it was reading when ``exc`` happened, as Spark spelled it; else None."""
    match = _FAILED_FILE.search(str(exc))
    return match.group(1) if match else None


def _java_chain(exc: BaseException) -> list[str]:
    """The first line of each Java exception in ``exc``'s cause chain, outermost first."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    chain: list[str] = []
    with contextlib.suppress(Py4JError):  # the JVM may be gone; fall back to the Python text
        while java is not None:
            chain.append(_first_line(str(java.toString()))[:MAX_LENGTH])
            java = java.getCause()
    return chain


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""
