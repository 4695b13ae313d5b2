"""A Redis restart as the frontend sees it, through the service on a real hypercorn.

The service's own ``redis-server`` (no persistence) is stopped and started again on the
same port while users call completions, ``/models`` and ``/status``. After recovery nothing
may answer 503, nobody may get more requests admitted than the limit, and ``/status`` must
be true again within ``lease_ttl_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from quart_app import create_app
from quart_app.auth import mint_token
from quart_app.config import Settings
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import settings_for
from tests.coordination.conftest import tcp_proxy
from tests.coordination.redis_server import RedisServer
from tests.coordination.test_redis_restart import OUTAGE
from tests.coordination.test_redis_restart import RECOVERY
from tests.coordination.test_redis_restart import messages
from tests.coordination.test_redis_restart import until
from tests.serving import served

STATUS = "/api/proxy/llm/v1/status"
MODELS = "/api/proxy/llm/v1/models"
PREFIX = "restart-http"
pytestmark = pytest.mark.slow  # a redis-server of its own, restarted, per test (~13 s)


def service_settings(
    upstream: ScriptedUpstream, url: str, mode: str, capacity: int = 16, **limits: Any
) -> Settings:
    providers = [
        {"name": "scripted", "base_url": upstream.base_url, "models": [MODEL]}
        | {"max_concurrency": capacity}
    ]
    quotas = {"requests_per_minute": 100_000, "concurrent_requests": 3, "tokens_per_minute": 0}
    return settings_for(
        upstream,
        providers=providers,
        credits={"enabled": False},
        limits={**quotas, **limits},
        coordination={
            "redis_url": url,
            "on_redis_error": mode,
            "key_prefix": PREFIX,
            "redis_timeout_s": 1.0,  # a loaded CI box: the bound is not under test here
            "retry_interval_s": 0.2,
            "lease_ttl_s": 2.0,
        },
    )


def token(user: str) -> str:
    return mint_token(SECRET.encode(), user)


async def call(session: aiohttp.ClientSession, base: str, path: str, user: str) -> int:
    """One request of ``user``, read to its end; its status."""
    if path == FRONTEND_CHAT:
        request = session.post(base + path, json=chat_body(), headers=auth(token(user)))
    else:
        request = session.get(base + path, headers=auth(token(user)))
    async with request as response:
        await response.read()
        return response.status


async def used_redis(direct: Redis, user: str, bucket: str = "rl:{%s}:r") -> bool:
    """The user's bucket (default: requests) is in Redis: it was counted there."""
    return bool(await direct.exists(f"{PREFIX}:{bucket % user}"))


@pytest.mark.parametrize("mode", ["fail", "local"])
async def test_after_a_restart_nothing_answers_503(
    upstream: ScriptedUpstream,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="coordination")
    app = create_app(service_settings(upstream, redis_server.url, mode), freeze_heap=False)
    direct = redis_server.client()
    paths = (FRONTEND_CHAT, MODELS, STATUS)
    try:
        async with served(app) as base, aiohttp.ClientSession() as session:
            # A busy moment: many pooled Redis connections, all stale after the restart.
            warm = [call(session, base, paths[i % 3], f"u{i}") for i in range(48)]
            assert set(await asyncio.gather(*warm)) == {200}
            await redis_server.stop()
            during = {await call(session, base, FRONTEND_CHAT, "u0") for _ in range(3)}
            assert during == ({503} if mode == "fail" else {200})
            await redis_server.start()

            async def recovered() -> bool:
                status = await call(session, base, FRONTEND_CHAT, "probe")
                return status == 200 and await used_redis(direct, "probe")

            await until(recovered, 3.0, "the service uses Redis again")
            statuses: list[int] = []
            for burst in range(6):
                wave = [call(session, base, paths[(burst + i) % 3], f"u{i}") for i in range(12)]
                statuses += await asyncio.gather(*wave)
            assert statuses.count(200) == len(statuses), sorted(set(statuses))
    finally:
        await direct.aclose()
    assert len(messages(caplog, OUTAGE)) == 1, messages(caplog, "Redis")
    assert len(messages(caplog, RECOVERY)) == 1, messages(caplog, "Redis")


class Streams:
    """Long streams of one user, started together; counts how many are admitted at once."""

    def __init__(self, session: aiohttp.ClientSession, base: str, user: str) -> None:
        self.session = session
        self.base = base
        self.user = user
        self.running = 0
        self.most = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, n: int) -> list[int]:
        """Start ``n`` streams; returns their statuses once each answered."""
        answered: list[asyncio.Future[int]] = [
            asyncio.get_running_loop().create_future() for _ in range(n)
        ]
        self.tasks += [asyncio.create_task(self._one(f)) for f in answered]
        return list(await asyncio.gather(*answered))

    async def _one(self, answered: asyncio.Future[int]) -> None:
        async with self.session.post(
            self.base + FRONTEND_CHAT, json=chat_body(), headers=auth(token(self.user))
        ) as response:
            if response.status != 200:
                answered.set_result(response.status)
                await response.read()
                return
            self.running += 1
            self.most = max(self.most, self.running)
            answered.set_result(200)
            try:
                await response.read()
            finally:
                self.running -= 1

    async def finish(self) -> None:
        await asyncio.gather(*self.tasks)


async def test_one_user_never_streams_more_than_the_limit_across_a_restart(
    upstream: ScriptedUpstream, redis_server: RedisServer
) -> None:
    upstream.script = Script(tokens=30, delay_s=0.1)  # 3 s streams
    app = create_app(service_settings(upstream, redis_server.url, "local"), freeze_heap=False)
    direct = redis_server.client()
    try:
        async with served(app) as base, aiohttp.ClientSession() as session:
            alice = Streams(session, base, "alice")
            first = await alice.start(10)
            assert first.count(200) == 3
            await redis_server.stop()
            fallback = await alice.start(10)  # this one worker already runs her 3
            await redis_server.start()

            async def recovered() -> bool:
                reads = await call(session, base, MODELS, "bob")
                return reads == 200 and await used_redis(direct, "bob", "rd:{u:%s}")

            await until(recovered, 3.0, "the service uses Redis again")
            after = await alice.start(10)
            assert alice.running == 3, "the first three still run"
            assert fallback.count(200) == 0 and after.count(200) == 0
            await alice.finish()
            assert alice.most == 3
            again = await alice.start(10)
            assert again.count(200) == 3
            await alice.finish()
    finally:
        await direct.aclose()


async def status(session: aiohttp.ClientSession, base: str) -> tuple[int, int | None]:
    async with session.get(base + STATUS) as response:
        if response.status != 200:
            return response.status, None
        body = await response.json()
        return 200, int(body["providers"][0]["slots_in_use"])


async def test_status_is_true_across_a_restart_and_settles_within_the_lease_ttl(
    upstream: ScriptedUpstream, redis_server: RedisServer
) -> None:
    upstream.script = Script(tokens=20, delay_s=0.1)  # 2 s streams
    settings = service_settings(upstream, redis_server.url, "fail", capacity=4)
    ttl = settings.coordination.lease_ttl_s
    app = create_app(settings, freeze_heap=False)
    async with served(app) as base, aiohttp.ClientSession() as session:
        alice, bob = Streams(session, base, "alice"), Streams(session, base, "bob")
        assert await alice.start(1) == [200] and await bob.start(1) == [200]
        assert await status(session, base) == (200, 2)
        await redis_server.restart()
        seen: list[tuple[int, int | None]] = []

        async def answers() -> bool:
            seen.append(await status(session, base))
            return seen[-1][0] == 200

        await until(answers, 3.0, "/status answers after the restart")
        assert seen[-1] == (200, 2), "both streams still hold their slots"
        assert alice.running == bob.running == 1
        await alice.finish()
        await bob.finish()
        ended = time.monotonic()
        while (found := await status(session, base)) != (200, 0):
            assert found[0] == 200, f"/status answered {found[0]} after recovery"
            assert time.monotonic() - ended < ttl, f"/status still shows {found[1]} slots"
            await asyncio.sleep(0.05)


async def test_slots_released_while_redis_is_unreachable_come_back_within_the_lease_ttl(
    upstream: ScriptedUpstream, redis_server: RedisServer
) -> None:
    upstream.script = Script(tokens=10, delay_s=0.1)  # 1 s streams
    async with tcp_proxy(redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        settings = service_settings(upstream, url, "fail", capacity=4)
        ttl = settings.coordination.lease_ttl_s
        app = create_app(settings, freeze_heap=False)
        async with served(app) as base, aiohttp.ClientSession() as session:
            alice = Streams(session, base, "alice")
            assert await alice.start(2) == [200, 200]
            assert await status(session, base) == (200, 2)
            await proxy.stop()  # Redis keeps its leases but nobody reaches it
            await alice.finish()  # the releases are lost
            ended = time.monotonic()
            await proxy.start()

            async def answers() -> bool:
                return (await status(session, base))[0] == 200

            await until(answers, 3.0, "/status answers once Redis is reachable")
            while (found := await status(session, base)) != (200, 0):
                assert found[0] == 200
                assert time.monotonic() - ended < ttl, f"/status still shows {found[1]} slots"
                await asyncio.sleep(0.05)
