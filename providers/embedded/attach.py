"""How a worker finds the live embedded model server: locks, liveness and health checks.

:mod:`providers.embedded` uses these to attach and :mod:`providers.embedded.launch` to
watch a server it started. Blocking calls (file system, ``flock``) run in
``asyncio.to_thread``; waits poll with ``asyncio.sleep``, so they stay cancellable, which a
thread blocked in ``flock`` would not be.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from providers.embedded.protocol import RuntimeFiles
from providers.embedded.protocol import ServerConfig
from providers.embedded.protocol import open_lock_file
from providers.embedded.protocol import read_state
from providers.embedded.protocol import try_flock
from providers.embedded.settings import EmbeddedModelError

__all__ = ["POLL_S", "acquire_lock", "healthy", "live_state", "server_alive"]

#: Interval of every wait loop: short next to a model's startup, cheap on the loop.
POLL_S = 0.05
_HEALTH_TIMEOUT_S = 2.0


async def acquire_lock(path: Path, *, exclusive: bool, deadline: float, waiting_for: str) -> int:
    """Open a lock file and take a ``flock`` on it, polling until ``deadline``.

    Returns:
        The locked file descriptor; closing it releases the lock.

    Raises:
        EmbeddedModelError: The deadline (``loop.time()``) passed.
    """
    loop = asyncio.get_running_loop()
    fd = await asyncio.to_thread(open_lock_file, path)
    try:
        while not await asyncio.to_thread(try_flock, fd, exclusive=exclusive):
            if loop.time() > deadline:
                raise EmbeddedModelError(f"embedded model: timed out waiting for {waiting_for}")
            await asyncio.sleep(POLL_S)
    except BaseException:
        os.close(fd)  # closing a lock file never blocks; also runs when cancelled
        raise
    return fd


def server_alive(files: RuntimeFiles) -> bool:
    """Whether a server holds ``<key>.lock``, as it does for its whole life (never blocks)."""
    fd = open_lock_file(files.lock)
    try:
        return not try_flock(fd, exclusive=True)
    finally:
        os.close(fd)


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def healthy(base_url: str) -> bool:
    """Whether llama.cpp answers ``GET /health`` with 200 (it needs no API key)."""
    url = urlsplit(base_url)
    request = f"GET /health HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n"
    try:
        async with asyncio.timeout(_HEALTH_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(url.hostname, url.port)
            try:
                writer.write(request.encode("ascii"))
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    return status_line.split(b" ")[1:2] == [b"200"]


async def live_state(
    files: RuntimeFiles, config: ServerConfig, deadline: float
) -> dict[str, Any] | None:
    """The state of the live server for this key, or ``None`` after removing a stale one.

    Call it holding the spawn lock and a client lock: then the server cannot be leaving.

    Raises:
        EmbeddedModelError: A server runs but does not answer ``/health`` by ``deadline``.
    """
    state = await asyncio.to_thread(read_state, files.state)
    if state is None:
        return None
    if (
        state.get("key") != config.key
        or not _pid_alive(state.get("pid"))
        or not await asyncio.to_thread(server_alive, files)
    ):
        await asyncio.to_thread(files.state.unlink, missing_ok=True)
        return None
    loop = asyncio.get_running_loop()
    while not await healthy(str(state.get("base_url"))):
        if loop.time() > deadline:
            raise EmbeddedModelError(
                f"embedded model: the model server (pid {state.get('pid')}) does not answer"
                f" {state.get('base_url')}/health; see {files.log}"
            )
        await asyncio.sleep(POLL_S)
    return state
