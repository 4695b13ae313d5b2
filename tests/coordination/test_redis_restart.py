"""A real Redis restarted under the coordination layer: no flapping, no limit bypass.

Each test starts its own ``redis-server`` without persistence and restarts it mid-test, so
the service meets both halves of a real restart: every pooled connection is stale, and
every key (leases, buckets, loaded scripts) is gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from redis.asyncio import Redis

from coordination import factory
from coordination.errors import CoordinationUnavailable
from coordination.factory import Coordination
from coordination.factory import open_coordination
from coordination.limits.rules import Grant
from coordination.limits.rules import RateLimitExceeded
from coordination.lua import ADMIT
from coordination.settings import CoordinationSettings
from coordination.settings import LimitsSettings
from coordination.slots.rules import SlotHold
from tests.coordination.redis_server import RedisServer

OUTAGE = "until it answers"
RECOVERY = "answers again"


def limits(**values: Any) -> LimitsSettings:
    base = {"requests_per_minute": 0, "concurrent_requests": 0, "tokens_per_minute": 0}
    return LimitsSettings(**{**base, **values})


async def opened(
    stack: AsyncExitStack, server: RedisServer, mode: str, **quotas: Any
) -> Coordination:
    """The coordination of one worker on ``server``, closed with ``stack``."""
    return await open_coordination(limits(**quotas), shared(server.url, on_redis_error=mode), stack)


def shared(url: str, **values: Any) -> CoordinationSettings:
    base: dict[str, Any] = {
        "redis_url": url,
        "retry_interval_s": 0.2,
        "redis_timeout_s": 1.0,  # a loaded CI box: the bound is not under test here
        "lease_ttl_s": 3.0,
        "key_prefix": "restart",
    }
    return CoordinationSettings(**{**base, **values})


async def until(condition: Callable[[], Awaitable[bool]], within_s: float, what: str) -> float:
    """Poll ``condition`` until true; returns the seconds it took."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < within_s, f"not within {within_s} s: {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """What the coordination layer logged containing ``text``."""
    found = (r.getMessage() for r in caplog.records if r.name == "coordination")
    return [message for message in found if text in message]


async def admit_ok(coordination: Coordination, user: str) -> Grant:
    return await coordination.limits.admit(user)


async def burst(coordination: Coordination, direct: Redis, users: int) -> None:
    """Admit and finish ``users`` requests at once (opening as many pooled connections);
    returns once their background finishes have landed, so that none races a restart."""
    grants = await asyncio.gather(*(admit_ok(coordination, f"u{i}") for i in range(users)))
    for grant in grants:
        grant.finish(0)

    async def landed() -> bool:
        return not await direct.keys("restart:rl:*:c")

    await until(landed, 2.0, "the finishes reached Redis")


async def refused_by(coordination: Coordination, user: str, tokens: int = 0) -> str | None:
    try:
        grant = await coordination.limits.admit(user, tokens=tokens)
    except RateLimitExceeded as refusal:
        return refusal.verdict.limit
    grant.finish()  # ends at once, its tokens stay charged
    return None


async def test_a_restart_replaces_stale_connections_without_an_outage(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="coordination")
    direct = redis_server.client()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(direct.aclose)
        coordination = await opened(
            stack, redis_server, "fail", requests_per_minute=1000, concurrent_requests=100
        )
        slots = coordination.slots("p", 64)
        # A burst opens many pooled connections; all of them go stale with the restart.
        await burst(coordination, direct, 40)
        await redis_server.restart()
        assert (await direct.script_exists(_sha(ADMIT))) == [False], "the restart lost the scripts"
        # As many calls at once as the pool has connections, each on a stale one.
        calls: list[Awaitable[Any]] = [coordination.limits.admit(f"u{i}") for i in range(40)]
        calls += [slots.try_acquire(f"u{i}") for i in range(16)]
        calls += [slots.usage() for _ in range(8)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{len(failures)} of {len(results)} failed: {failures[0]!r}"
        assert not messages(caplog, OUTAGE), "no outage is declared for stale connections"
        assert (await slots.usage()).in_use == 16
        for result in results[:40]:
            assert isinstance(result, Grant)
            result.finish(0)


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # Redis's id of a loaded script


async def test_a_restart_that_loses_every_key_keeps_the_limits_and_slots(
    redis_server: RedisServer,
) -> None:
    async with AsyncExitStack() as stack:
        coordination = await opened(stack, redis_server, "fail", concurrent_requests=3)
        slots = coordination.slots("p", 2)
        running = [await admit_ok(coordination, "alice") for _ in range(3)]
        assert await refused_by(coordination, "alice") == "concurrency"
        holds = [await slots.try_acquire(user) for user in ("alice", "bob")]
        assert all(isinstance(hold, SlotHold) for hold in holds)

        await redis_server.restart()  # the three streams and two slots are still running

        assert await refused_by(coordination, "alice") == "concurrency"
        assert await slots.try_acquire("carol") == "busy"
        assert (await slots.usage()).in_use == 2
        for grant in running:
            grant.finish(0)
        for hold in holds:
            assert isinstance(hold, SlotHold)
            slots.release(hold)
        await until(lambda: _in_use_is(slots, 0), 2.0, "released slots come back")
        assert await refused_by(coordination, "alice") is None


async def _in_use_is(slots: Any, expected: int) -> bool:
    return bool((await slots.usage()).in_use == expected)


async def test_the_local_fallback_admits_at_most_the_per_worker_share(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(factory, "worker_count", lambda: 4)
    async with AsyncExitStack() as stack:
        coordination = await opened(
            stack,
            redis_server,
            "local",
            requests_per_minute=8,
            concurrent_requests=3,
            tokens_per_minute=1000,
        )
        slots = coordination.slots("p", 4)
        alice = await admit_ok(coordination, "alice")  # shared, still running
        alice_slot = await slots.try_acquire("alice")
        assert isinstance(alice_slot, SlotHold) and alice_slot.shared
        await redis_server.stop()

        # Four workers: each may admit ceil(limit / 4) on its own.
        assert await refused_by(coordination, "alice") == "concurrency"  # holds 1 = her share
        bob = await admit_ok(coordination, "bob")
        assert not bob.verdict.shared
        assert await refused_by(coordination, "bob") == "concurrency"
        assert await refused_by(coordination, "carol") is None
        assert await refused_by(coordination, "carol") is None
        assert await refused_by(coordination, "carol") == "requests"  # ceil(8 / 4) = 2
        assert await refused_by(coordination, "dave", tokens=250) is None  # 1000 / 4
        assert await refused_by(coordination, "dave", tokens=10) == "tokens"
        assert await slots.try_acquire("erin") == "busy"  # this worker holds its 1 of 4
        slots.release(alice_slot)
        erin = await slots.try_acquire("erin")
        assert isinstance(erin, SlotHold) and not erin.shared
        assert await slots.try_acquire("frank") == "busy"
        alice.finish(0)
        bob.finish(0)
        slots.release(erin)


async def test_what_the_fallback_admitted_counts_in_redis_once_it_is_back(
    redis_server: RedisServer,
) -> None:
    direct = redis_server.client()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(direct.aclose)
        coordination = await opened(
            stack, redis_server, "local", requests_per_minute=1000, concurrent_requests=3
        )
        slots = coordination.slots("p", 2)
        await redis_server.stop()
        running = [await admit_ok(coordination, "alice") for _ in range(3)]
        assert not any(grant.verdict.shared for grant in running)
        holds = [await slots.try_acquire(user) for user in ("alice", "bob")]
        assert all(isinstance(hold, SlotHold) for hold in holds)
        await redis_server.start()

        async def shared_again() -> bool:
            grant = await coordination.limits.admit("probe")
            grant.finish(0)
            return grant.verdict.shared

        await until(shared_again, 3.0, "Redis is used again")
        assert await refused_by(coordination, "alice") == "concurrency"
        assert await slots.try_acquire("carol") == "busy"
        assert (await slots.usage()).in_use == 2
        assert await direct.zcard("restart:rl:{alice}:c") == 3
        for grant in running:
            grant.finish(0)
        for hold in holds:
            assert isinstance(hold, SlotHold)
            slots.release(hold)

        async def alice_gone() -> bool:
            return bool(await direct.zcard("restart:rl:{alice}:c") == 0)

        await until(alice_gone, 2.0, "finished fallback requests leave Redis")
        await until(lambda: _in_use_is(slots, 0), 2.0, "released fallback slots leave Redis")
        assert await refused_by(coordination, "alice") is None


@pytest.mark.parametrize("mode", ["fail", "local"])
async def test_a_restart_under_traffic_is_one_outage_and_one_recovery(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    caplog.set_level(logging.WARNING, logger="coordination")
    direct = redis_server.client()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(direct.aclose)
        coordination = await opened(
            stack, redis_server, mode, requests_per_minute=100_000, concurrent_requests=3
        )
        slots = coordination.slots("p", 8)
        stop = asyncio.Event()
        outcomes: list[tuple[float, str]] = []  # (time, "shared" | "local" | "503" | "429")

        async def user(name: str) -> None:
            while not stop.is_set():
                try:
                    grant = await coordination.limits.admit(name)
                except (CoordinationUnavailable, RateLimitExceeded) as refusal:
                    code = "503" if isinstance(refusal, CoordinationUnavailable) else "429"
                    outcomes.append((time.monotonic(), code))
                    await asyncio.sleep(0.01)
                    continue
                hold = await _try_slot(slots, name)
                outcomes.append((time.monotonic(), "shared" if grant.verdict.shared else "local"))
                await asyncio.sleep(0.01)
                if isinstance(hold, SlotHold):
                    slots.release(hold)
                grant.finish(0)

        # A busy moment opens many pooled connections, then one user keeps going while
        # Redis restarts, then the crowd comes back.
        await burst(coordination, direct, 40)
        tasks = [asyncio.create_task(user("u0"))]
        await asyncio.sleep(0.1)
        await redis_server.stop()
        await asyncio.sleep(0.6)
        await redis_server.start()
        back = time.monotonic()
        tasks += [asyncio.create_task(user(f"u{i}")) for i in range(1, 16)]
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*tasks)
        recovered = min(t for t, what in outcomes if t > back and what == "shared")
        after = [what for t, what in outcomes if t > recovered]
        assert after and set(after) == {"shared"}, f"not shared after recovery: {set(after)}"
        assert len(messages(caplog, OUTAGE)) == 1, messages(caplog, "Redis")
        assert len(messages(caplog, RECOVERY)) == 1, messages(caplog, "Redis")


async def _try_slot(slots: Any, user: str) -> Any:
    try:
        return await slots.try_acquire(user)
    except CoordinationUnavailable:
        return None
