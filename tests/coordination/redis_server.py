"""A real ``redis-server`` the test starts, stops and starts again on the same port.

A restart of a Redis without persistence (``--save "" --appendonly no``) is the fault under
test: every pooled connection of the service goes stale at once and every key - leases,
buckets, loaded scripts - is gone. A proxy cannot simulate the second half, so these tests
run the server binary itself, on a free loopback port, as a subprocess of the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from tests.conftest import require_services

__all__ = ["RedisServer", "running_redis_server"]

_START_S = 10.0


def _free_port() -> int:
    """A free port *below* the ephemeral range.

    While the server is stopped for a restart its port must stay free: a port from the
    ephemeral range could meanwhile become another process's connection or test server.
    """
    while True:
        port = random.randrange(20_000, 32_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class RedisServer:
    """One ``redis-server`` process on ``port``, restartable."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the server and return once it answers ``PING``."""
        self._process = await asyncio.create_subprocess_exec(
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            async with asyncio.timeout(_START_S):
                while True:
                    if self._process.returncode is not None:
                        raise RuntimeError(f"redis-server on port {self.port} exited at start")
                    with contextlib.suppress(OSError, RedisError):
                        info = await client.info("server")
                        if info.get("process_id") == self._process.pid:  # ours, not another's
                            return
                    await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """Stop the server (SIGTERM, as a service manager does) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(_START_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    def client(self) -> Redis:
        """A client for the test's own checks that survives the restarts.

        redis-py 8's pool does not notice a connection the server closed unless
        maintenance notifications are off (redis/redis-py#4128); the service turns them
        off for the same reason.
        """
        return Redis.from_url(
            self.url, maint_notifications_config=MaintNotificationsConfig(enabled=False)
        )

    async def restart(self) -> None:
        """Stop, then start again on the same port: every key and loaded script is gone."""
        await self.stop()
        await self.start()


@contextlib.asynccontextmanager
async def running_redis_server() -> AsyncIterator[RedisServer]:
    """A fresh server for one test; skips (or fails in CI) when the binary is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed: the Redis restart tests need the binary"
        if require_services():
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(binary, _free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
