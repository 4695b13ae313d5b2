"""A private PostgreSQL server that a test may stop and start (the ledger's outage tests).

The machine's shared cluster serves other tests at the same time, so it is never stopped;
this starts a throw-away one instead (``initdb`` + ``pg_ctl`` from the installed
PostgreSQL, on a free port, as the ``postgres`` user when running as root, which PostgreSQL
refuses). When it cannot be started the test is skipped with the reason, unless
``STORYWRITER_REQUIRE_SERVICES=1`` makes that a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import require_services

__all__ = ["PrivatePostgres", "private_postgres"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PrivatePostgres:
    """One server in a temporary directory: ``url``, ``stop()``, ``start()``."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self._bin = bin_dir
        self._data = root / "data"
        self._log = root / "server.log"
        self._sockets = root / "sockets"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user: str | None = "postgres" if os.geteuid() == 0 else None

    def _run(self, *command: str, timeout: float = 60) -> None:
        argv = [str(self._bin / command[0]), *command[1:]]
        if self._user is not None:
            argv = ["runuser", "-u", self._user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=timeout)

    def init(self, root: Path) -> None:
        """Create the cluster (trust authentication, no fsync: a test server)."""
        self._sockets.mkdir()
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (root, self._sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self._sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self._data), "-l", str(self._log), "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        """Stop the server at once (fast shutdown: clients are disconnected)."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def log(self) -> str:
        """The server's log, for assertion messages."""
        return self._log.read_text() if self._log.exists() else ""


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private server (skips the test when there is none); removed afterwards.

    Its directory is not under pytest's ``tmp_path``, which the ``postgres`` user cannot
    enter.
    """
    bin_dir = _binaries()
    reason = "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
    server: PrivatePostgres | None = None
    root = Path(tempfile.mkdtemp(prefix="storywriter-pg-"))
    if bin_dir is not None:
        server = PrivatePostgres(bin_dir, root)
        try:
            server.init(root)
            server.start()
        except (OSError, subprocess.SubprocessError, KeyError) as error:
            detail = getattr(error, "stderr", b"") or b""
            reason = f"a private PostgreSQL server could not be started: {error!r} {detail!r}"
            server = None
    if server is None:
        shutil.rmtree(root, ignore_errors=True)
        if require_services():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield server
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            server.stop()  # unless the test left it stopped
        shutil.rmtree(root, ignore_errors=True)
