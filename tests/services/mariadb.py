"""A throwaway MariaDB server from Debian's ``mariadb-server`` package, for the MySQL-family JDBC path.

RDS offers MySQL and MariaDB beside PostgreSQL; the same ``read_jdbc_table`` serves them with a
different URL and driver, and this server proves the SQL it generates (time literals, subquery,
partition predicates, the UTC session statement) is understood by the MySQL dialect too.

Same shape as :mod:`tests.services.postgres`: data, socket and log in a private temporary
directory, TCP on 127.0.0.1 at a free port with password login for the test user, socket login
(``unix_socket`` auth) for setup SQL, so no password is on any command line.
"""

from __future__ import annotations

import dataclasses
import getpass
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
    private_dir,
    run_as,
    server_user,
)

INSTALL_HINT = "install the server: apt-get install -y --no-install-recommends mariadb-server"
SERVER = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")
CLIENT = Path("/usr/bin/mariadb")


@dataclass(frozen=True)
class MariaDB:
    """A running server and the database/user made for the tests (the password is generated)."""

    port: int
    database: str
    user: str
    password: str
    socket: Path
    admin: str
    os_user: str | None
    start_seconds: float

    @property
    def jdbc_url(self) -> str:
        """A ``jdbc:mysql:`` URL for MariaDB's driver, so Spark applies its MySQL dialect."""
        return f"jdbc:mysql://127.0.0.1:{self.port}/{self.database}?permitMysqlScheme"

    def execute(self, sql: str) -> str:
        """Run SQL in the test database over the unix socket (as its OS user) and return tab-separated rows."""
        return _client(self, sql, database=self.database)

    def __repr__(self) -> str:
        return f"MariaDB(port={self.port}, database={self.database!r}, user={self.user!r})"


def _client(server: MariaDB, sql: str, *, database: str | None = None) -> str:
    argv = [str(CLIENT), "--no-defaults", f"--socket={server.socket}", f"--user={server.admin}", "--batch", "-N"]
    if database is not None:
        argv.append(f"--database={database}")
    return run_as(server.os_user, argv, stdin=sql, what="mariadb client")


def _alive(server: MariaDB) -> bool:
    probe = [str(CLIENT), "--no-defaults", f"--socket={server.socket}", f"--user={server.admin}", "-e", "SELECT 1"]
    return subprocess.run(probe, user=server.os_user, capture_output=True, check=False, timeout=10).returncode == 0


@contextmanager
def mariadb_server(*, database: str = "features", user: str = "features", timeout: float = 30.0) -> Iterator[MariaDB]:
    """Start a private MariaDB, create ``database`` and ``user``, yield it, then stop and delete it."""
    missing = [str(p) for p in (SERVER, INSTALL_DB, CLIENT) if not p.is_file()]
    if missing:
        raise ServiceUnavailableError(f"MariaDB binaries not found ({', '.join(missing)}); {INSTALL_HINT}")
    os_user = server_user("mysql", INSTALL_HINT)
    admin = os_user or getpass.getuser()
    root = private_dir("mariadb-test-", os_user)
    try:
        began = time.monotonic()
        data, sock, log = root / "data", root / "mysqld.sock", root / "server.log"
        run_as(
            os_user,
            [
                str(INSTALL_DB),
                "--no-defaults",
                f"--datadir={data}",
                f"--user={admin}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            timeout=timeout,
            what="mariadb-install-db",
        )
        port = free_port()
        argv = [
            str(SERVER),
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={root / 'mariadbd.pid'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--default-time-zone=+00:00",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=0",
            "--max-connections=30",
        ]
        # SIGTERM is mariadbd's clean shutdown.
        proc = ServerProcess(argv, user=os_user, log=log, stop_signal=signal.SIGTERM)
        try:
            server = MariaDB(
                port=port,
                database=database,
                user=user,
                password=secrets.token_urlsafe(18),
                socket=sock,
                admin=admin,
                os_user=os_user,
                start_seconds=0.0,
            )
            proc.wait_ready(lambda: _alive(server), timeout=timeout, what="mariadbd")
            server = dataclasses.replace(server, start_seconds=round(time.monotonic() - began, 2))
            _client(
                server,
                f"CREATE DATABASE `{database}`;\n"
                f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{server.password}';\n"
                f"GRANT ALL ON `{database}`.* TO '{user}'@'127.0.0.1';\n",
            )
            yield server
        finally:
            proc.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
