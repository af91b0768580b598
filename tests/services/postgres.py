"""A throwaway PostgreSQL server from Debian's ``postgresql`` package, for JDBC tests.

Why a real server: the JDBC path's value is in what the database does (the pushed-down WHERE,
the partition queries, type mapping, authentication), which SQLite or a mock cannot show.

The cluster lives in a temporary directory: data, unix socket and log. It listens on 127.0.0.1 at
a free port only, with password (SCRAM) authentication over TCP, so the tests exercise the same
login path as RDS; the unix socket trusts only its own OS user (peer), which is how the helper
runs setup SQL without a password on any command line. Durability is switched off: it is
thrown away.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.services._server import (
    ServerProcess,
    ServiceUnavailableError,
    free_port,
    owned_dir,
    private_dir,
    run_as,
    server_user,
)

PG_ROOT = Path("/usr/lib/postgresql")
INSTALL_HINT = "install the server: apt-get install -y --no-install-recommends postgresql"
SUPERUSER = "postgres"


def find_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has the server and initdb."""
    found = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "postgres").is_file() and (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
    )
    if not found:
        raise ServiceUnavailableError(
            f"PostgreSQL server binaries not found under {PG_ROOT}/<version>/bin; {INSTALL_HINT}"
        )
    return found[-1]


@dataclass(frozen=True)
class Postgres:
    """A running server and the database/user made for the tests (the password is generated)."""

    port: int
    database: str
    user: str
    password: str
    bin_dir: Path
    socket_dir: Path
    os_user: str | None
    start_seconds: float

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def execute(self, sql: str) -> str:
        """Run SQL as the test user and return psql's unaligned output.

        Connects over the unix socket as the superuser (peer auth) and ``SET ROLE``s to the test
        user, so tables belong to that user and no password is on any command line.
        """
        script = f'SET ROLE "{self.user}";\n{sql}'
        return _psql(self, self.database, script)

    def __repr__(self) -> str:
        return f"Postgres(port={self.port}, database={self.database!r}, user={self.user!r})"


def _psql(server: Postgres, database: str, script: str) -> str:
    argv = [
        str(server.bin_dir / "psql"),
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        str(server.socket_dir),
        "-p",
        str(server.port),
        "-U",
        SUPERUSER,
        "-d",
        database,
    ]
    return run_as(server.os_user, argv, stdin=script, what="psql")


def _accepting(bin_dir: Path, port: int) -> bool:
    probe = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-d", "postgres"]
    return subprocess.run(probe, check=False, timeout=10).returncode == 0


@contextmanager
def postgres_server(*, database: str = "features", user: str = "features", timeout: float = 30.0) -> Iterator[Postgres]:
    """Start a private PostgreSQL, create ``database`` owned by ``user``, yield it, then stop and delete it."""
    bin_dir = find_bin_dir()
    os_user = server_user("postgres", INSTALL_HINT)
    root = private_dir("pg-test-", os_user)
    try:
        began = time.monotonic()
        data, sock, log = root / "data", root / "sock", root / "server.log"
        owned_dir(sock, os_user)
        run_as(
            os_user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=timeout,
            what="initdb",
        )
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(sock),
            "timezone": "UTC",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "30",
        }
        argv = [str(bin_dir / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast" shutdown: it ends open sessions instead of waiting for them.
        proc = ServerProcess(argv, user=os_user, log=log, stop_signal=signal.SIGINT)
        try:
            proc.wait_ready(lambda: _accepting(bin_dir, port), timeout=timeout, what="postgres")
            password = secrets.token_urlsafe(18)
            server = Postgres(
                port=port,
                database=database,
                user=user,
                password=password,
                bin_dir=bin_dir,
                socket_dir=sock,
                os_user=os_user,
                start_seconds=round(time.monotonic() - began, 2),
            )
            _psql(
                server,
                "postgres",
                f'CREATE ROLE "{user}" LOGIN PASSWORD \'{password}\';\nCREATE DATABASE "{database}" OWNER "{user}";\n',
            )
            yield server
        finally:
            proc.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
