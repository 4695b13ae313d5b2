"""Fixtures for the shared-state tests: the real Redis, a fresh key prefix per test.

Redis comes from ``STORYWRITER_TEST_REDIS_URL`` (default db 15 on loopback). Each test gets
its own key prefix and its keys are deleted afterwards. An unreachable Redis skips the
Redis tests with the reason, unless ``STORYWRITER_REQUIRE_SERVICES=1`` makes it a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from coordination.guard import RedisGuard
from coordination.leases import LeaseKeeper
from coordination.limits.local import LocalRateLimiter
from coordination.limits.rules import LimitPolicy
from coordination.limits.rules import RateLimiter
from coordination.limits.shared import RedisRateLimiter
from coordination.slots.local import LocalSlots
from coordination.slots.rules import Slots
from coordination.slots.shared import RedisSlots
from tests.conftest import require_services
from tests.coordination.redis_server import RedisServer
from tests.coordination.redis_server import running_redis_server

REDIS_URL = os.environ.get("STORYWRITER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_port(url: str) -> int:
    """The TCP port of a ``redis://`` URL (for the proxies that simulate trouble)."""
    return urlsplit(url).port or 6379


def via_port(url: str, port: int) -> str:
    """``url`` pointed at ``127.0.0.1:port`` (a proxy), same credentials and database."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return parts._replace(
        netloc=f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    ).geturl()


async def _reachable(url: str) -> str | None:
    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        await client.ping()
        return None
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    finally:
        await client.aclose()


async def _require_redis() -> str:
    problem = await _reachable(REDIS_URL)
    if problem is not None:
        message = f"Redis at {REDIS_URL} is unreachable ({problem}); set STORYWRITER_TEST_REDIS_URL"
        if require_services():
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture(name="redis_url")
async def _redis_url() -> str:
    return await _require_redis()


@contextlib.asynccontextmanager
async def _fresh_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"swtest-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(name="redis_server")
async def _redis_server() -> AsyncIterator[RedisServer]:
    """A ``redis-server`` of the test's own, which the test may stop and restart."""
    async with running_redis_server() as server:
        yield server


@pytest.fixture(name="prefix")
async def _prefix(redis_url: str) -> AsyncIterator[str]:
    async with _fresh_prefix(redis_url) as prefix:
        yield prefix


@dataclass
class Shared:
    """One simulated worker's view of the shared Redis."""

    redis: Redis
    guard: RedisGuard
    keeper: LeaseKeeper
    prefix: str

    def slots(self, capacity: int, name: str = "p", **options: Any) -> RedisSlots:
        defaults: dict[str, Any] = {
            "max_user_share": 1.0,
            "fair_window_s": 30.0,
            "queue_max": 32,
            "lease_ttl_s": 15.0,
        }
        defaults.update(options)
        return RedisSlots(
            redis=self.redis,
            guard=self.guard,
            keeper=self.keeper,
            prefix=self.prefix,
            name=name,
            capacity=capacity,
            **defaults,
        )

    def limiter(self, policy: LimitPolicy, lease_ttl_s: float = 15.0) -> RedisRateLimiter:
        return RedisRateLimiter(
            redis=self.redis,
            guard=self.guard,
            keeper=self.keeper,
            prefix=self.prefix,
            policy=policy,
            lease_ttl_s=lease_ttl_s,
        )


Worker = Callable[..., Awaitable[Shared]]


@contextlib.asynccontextmanager
async def _workers(redis_url: str, prefix: str) -> AsyncIterator[Worker]:
    made: list[Shared] = []

    async def make(ttl_s: float = 15.0, mode: str = "fail", url: str = redis_url) -> Shared:
        redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        guard = RedisGuard(mode=mode, timeout_s=0.5, retry_interval_s=0.2, where="test")  # type: ignore[arg-type]
        shared = Shared(redis, guard, LeaseKeeper(redis, guard, ttl_s, prefix), prefix)
        made.append(shared)
        return shared

    try:
        yield make
    finally:
        for shared in made:
            await shared.keeper.aclose()
            await shared.guard.drain()
            await shared.redis.aclose()


@pytest.fixture(name="worker")
async def _worker(redis_url: str, prefix: str) -> AsyncIterator[Worker]:
    """Make simulated workers: each its own client, guard and (unstarted) lease keeper."""
    async with _workers(redis_url, prefix) as make:
        yield make


SlotsFactory = Callable[..., Awaitable[Slots]]


@pytest.fixture(name="make_slots", params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def _make_slots(request: pytest.FixtureRequest) -> AsyncIterator[SlotsFactory]:
    """The same slot rules, in memory and in Redis."""
    if request.param == "local":

        async def local(capacity: int, **options: Any) -> Slots:
            return LocalSlots(capacity, **options)

        yield local
        return
    url = await _require_redis()
    async with _fresh_prefix(url) as prefix, _workers(url, prefix) as make:
        shared = await make()

        async def redis(capacity: int, **options: Any) -> Slots:
            return shared.slots(capacity, **options)

        yield redis


LimiterFactory = Callable[[LimitPolicy], Awaitable[RateLimiter]]


@pytest.fixture(
    name="make_limiter", params=["local", pytest.param("redis", marks=pytest.mark.redis)]
)
async def _make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[LimiterFactory]:
    """The same rate-limit rules, in memory and in Redis."""
    if request.param == "local":

        async def local(policy: LimitPolicy) -> RateLimiter:
            return LocalRateLimiter(policy)

        yield local
        return
    url = await _require_redis()
    async with _fresh_prefix(url) as prefix, _workers(url, prefix) as make:
        shared = await make()

        async def redis(policy: LimitPolicy) -> RateLimiter:
            return shared.limiter(policy)

        yield redis


async def settle_background() -> None:
    """Let fire-and-forget Redis releases land."""
    for _ in range(20):
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def tcp_proxy(target_port: int) -> AsyncIterator[Any]:
    """A loopback TCP proxy to ``target_port`` that a test can stop, stall and restart."""
    proxy = _Proxy(target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


class _Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.stalled = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if self.stalled:
                await reader.read()  # accept, never answer
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._writers.add(up_writer)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()
