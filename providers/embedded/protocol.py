"""The files through which workers and the embedded model server coordinate.

One model server runs per host and model (:mod:`providers.embedded.server`); workers find
or start it (:mod:`providers.embedded`). They never talk directly, only through files in
the runtime directory, named after a key that hashes the model path and parameters, so
another GGUF gets a server of its own:

- ``<key>.lock``: held exclusively by the server for its whole life; free means no server.
- ``<key>.clients``: every attached worker holds a shared lock. When the server can take it
  exclusively no client is left, and it stops; a crashed worker's lock dies with it.
- ``<key>.spawn``: workers serialise "attach or start" on it; the server never takes it.
- ``<key>.json``: the state (pid, base URL, API key, ...), written once the server listens.
- ``<key>.log``: the server's and llama.cpp's output, capped in size.

``flock`` locks belong to the open file and vanish when the process dies, so no crash can
leave a lock behind; lock files themselves are never deleted, to keep every process
locking the same inode. This module uses only the standard library: the model process
imports it too.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ERROR_MARKER",
    "EXIT_LOCKED",
    "RuntimeFiles",
    "ServerConfig",
    "open_lock_file",
    "read_state",
    "try_flock",
]

#: Prefix of the one-line reason the server logs before exiting during startup.
ERROR_MARKER = "EMBEDDED-ERROR: "
#: Exit code of the launcher when another server already holds ``<key>.lock``.
EXIT_LOCKED = 3


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """What the worker tells the server process, as one JSON command-line argument."""

    model_path: str
    model_id: str
    n_parallel: int
    n_threads: int
    n_ctx: int
    runtime_dir: str
    key: str
    idle_check_s: float = 0.5

    def to_json(self) -> str:
        """Serialise for the command line."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        """Parse what :meth:`to_json` wrote."""
        return cls(**json.loads(text))


@dataclasses.dataclass(frozen=True)
class RuntimeFiles:
    """The files one server and its clients share (see the module docstring)."""

    lock: Path
    """Held exclusively by the live server."""
    clients: Path
    """Held shared by every attached worker."""
    spawn: Path
    """Serialises the workers that attach or start."""
    state: Path
    """JSON written by the live server."""
    log: Path
    """The server's stdout and stderr."""

    @classmethod
    def for_key(cls, directory: Path, key: str) -> RuntimeFiles:
        """The files of the server ``key`` in ``directory``."""
        names = ("lock", "clients", "spawn", "json", "log")
        return cls(*(directory / f"{key}.{name}" for name in names))


def try_flock(fd: int, *, exclusive: bool) -> bool:
    """Take an exclusive or shared ``flock`` without blocking; return whether it was taken."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def open_lock_file(path: Path) -> int:
    """Open (creating it private) a lock file; lock files are never deleted."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def read_state(path: Path) -> dict[str, Any] | None:
    """Read a ``<key>.json`` state file; ``None`` when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
