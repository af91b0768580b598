"""Session-scoped database server fixtures, loaded with ``pytest_plugins`` from ``tests/conftest.py``.

A server missing from the machine fails the tests that need it in CI (``CI=true``), where
``.ci/run`` installs it, so a broken install can never pass as "skipped"; on a developer's
machine those tests are skipped with the command that installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.services._server import ServiceUnavailableError
from tests.services.mariadb import MariaDB, mariadb_server
from tests.services.postgres import Postgres, postgres_server


def _unavailable(exc: ServiceUnavailableError) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{exc} (CI=true: .ci/run must install it)", pytrace=False)
    pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL on 127.0.0.1 with an empty database and a password-protected user."""
    try:
        with postgres_server() as server:
            yield server
    except ServiceUnavailableError as exc:
        _unavailable(exc)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """A private MariaDB on 127.0.0.1 with an empty database and a password-protected user."""
    try:
        with mariadb_server() as server:
            yield server
    except ServiceUnavailableError as exc:
        _unavailable(exc)
