"""What every throwaway server needs: a private directory, a free loopback port, a process that
runs as an unprivileged user, a bounded wait for readiness, and a stop that always happens.

Database servers refuse to run as root (initdb, mariadbd), and CI runs as root, so under root the
server runs as its package's system user (``postgres``, ``mysql``) and everything it touches lives
in a temporary directory owned by that user. Started without root, it runs as the current user.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ServiceUnavailableError(RuntimeError):
    """The server cannot be run on this machine (binaries or system user missing); says how to fix it."""


class ServiceError(RuntimeError):
    """The server was there but did not start or answer in time; the message ends with its log."""


def free_port() -> int:
    """A port nobody listens on right now on 127.0.0.1 (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_user(system_user: str, install_hint: str) -> str | None:
    """The user to run the server as: ``system_user`` under root, else None (the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(system_user)
    except KeyError:
        raise ServiceUnavailableError(f"system user {system_user!r} does not exist; {install_hint}") from None
    return system_user


def private_dir(prefix: str, owner: str | None) -> Path:
    """A fresh temporary directory only ``owner`` (or the current user) can enter."""
    return owned_dir(Path(tempfile.mkdtemp(prefix=prefix)), owner)


def owned_dir(path: Path, owner: str | None) -> Path:
    """Create ``path`` if needed, mode 0700, owned by ``owner`` (None: the current user)."""
    path.mkdir(mode=0o700, exist_ok=True)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)
    return path


def run_as(user: str | None, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 60.0, what: str) -> str:
    """Run a client or setup tool as ``user`` and return its stdout; a failure names ``what`` and shows stderr."""
    try:
        done = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=user,
            cwd="/",
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{what} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise ServiceError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


class ServerProcess:
    """A server started in the foreground (not daemonised), so its pid is ours to stop.

    ``stop`` sends ``stop_signal`` (each engine's fast shutdown), waits a bounded time, then kills;
    it is registered with atexit too, so an interrupted session does not leave a server behind.
    """

    def __init__(self, argv: Sequence[str], *, user: str | None, log: Path, stop_signal: int) -> None:
        self.log = log
        self._stop_signal = stop_signal
        with log.open("ab") as out:
            self._proc = subprocess.Popen(
                list(argv), user=user, cwd="/", stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        atexit.register(self.stop)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def running(self) -> bool:
        return self._proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return "(no log)"

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float, what: str) -> float:
        """Poll ``probe`` until it answers True; fail early if the process died. Returns seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if not self.running():
                raise ServiceError(
                    f"{what} exited with code {self._proc.returncode} while starting:\n{self.log_tail()}"
                )
            if probe():
                return time.monotonic() - began
            time.sleep(0.1)
        raise ServiceError(f"{what} was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(self._stop_signal)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        atexit.unregister(self.stop)
