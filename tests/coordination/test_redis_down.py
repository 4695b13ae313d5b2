"""Redis down or slow: a clear 503 at once, or the operator's local fallback; never a hang."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from bench.upstream import ScriptedUpstream
from quart_app.config import Settings
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import settings_for
from tests.coordination.conftest import redis_port
from tests.coordination.conftest import tcp_proxy
from tests.coordination.conftest import via_port

STATUS = "/api/proxy/llm/v1/status"
MODELS = "/api/proxy/llm/v1/models"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shared_settings(
    upstream: ScriptedUpstream, url: str, prefix: str, **coordination: Any
) -> Settings:
    providers = [
        {"name": "scripted", "base_url": upstream.base_url, "models": [MODEL], "max_concurrency": 4}
    ]
    return settings_for(
        upstream,
        providers=providers,
        credits={"enabled": False},
        limits={"requests_per_minute": 2, "concurrent_requests": 0, "tokens_per_minute": 0},
        coordination={
            "redis_url": url,
            "key_prefix": prefix,
            "redis_timeout_s": 0.25,
            **coordination,
        },
    )


async def test_redis_down_answers_503_at_once(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    async with make_app(shared_settings(upstream, url, "down")) as app:
        client = app.test_client()
        for path, method in ((FRONTEND_CHAT, "POST"), (MODELS, "GET"), (STATUS, "GET")):
            started = time.monotonic()
            if method == "POST":
                response = await client.post(path, json=chat_body(), headers=auth(token))
            else:
                response = await client.get(path, headers=auth(token))
            assert time.monotonic() - started < 1.0
            assert response.status_code == 503, path
            body = await response.get_json()
            assert body["code"] == "COORDINATION_UNAVAILABLE" and "Redis" in body["error"]
            assert response.headers["Retry-After"] == "1"


@pytest.mark.redis
async def test_slow_redis_answers_503_within_the_timeout(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str, redis_url: str
) -> None:
    async with tcp_proxy(redis_port(redis_url)) as proxy:
        proxy.stalled = True  # accepts connections, never answers
        url = f"redis://127.0.0.1:{proxy.port}/0"
        async with make_app(shared_settings(upstream, url, "slow")) as app:
            started = time.monotonic()
            response = await app.test_client().post(
                FRONTEND_CHAT, json=chat_body(), headers=auth(token)
            )
            assert response.status_code == 503
            assert time.monotonic() - started < 1.5  # the 0.25 s bound (plus a busy CI), no hang


async def test_local_fallback_serves_with_per_worker_limits(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    caplog.set_level(logging.WARNING, logger="coordination")
    settings = shared_settings(upstream, url, "fallback", on_redis_error="local")
    async with make_app(settings) as app:
        client = app.test_client()
        for _ in range(2):
            assert (
                await client.post(FRONTEND_CHAT, json=chat_body(), headers=auth(token))
            ).status_code == 200
        refused = await client.post(FRONTEND_CHAT, json=chat_body(), headers=auth(token))
        assert refused.status_code == 429  # limits still hold, in this worker
        assert (await client.get(MODELS, headers=auth(token))).status_code == 200
        status = await (await client.get(STATUS)).get_json()
        assert status["providers"][0]["slots_total"] == 4
    failures = [r for r in caplog.records if "falling back" in r.getMessage()]
    assert len(failures) == 1, "the switch is logged once"


@pytest.mark.redis
async def test_fallback_recovers_when_redis_comes_back(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str, redis_url: str, prefix: str
) -> None:
    async with tcp_proxy(redis_port(redis_url)) as proxy:
        url = via_port(redis_url, proxy.port)
        settings = shared_settings(
            upstream, url, prefix, on_redis_error="local", retry_interval_s=0.2
        )
        direct = Redis.from_url(redis_url)
        try:
            async with make_app(settings) as app:
                client = app.test_client()
                bucket = f"{prefix}:rd:{{u:alice}}"  # her model-list reads
                assert (await client.get(MODELS, headers=auth(token))).status_code == 200
                assert await direct.exists(bucket)
                await proxy.stop()  # Redis "goes down"
                assert (await client.get(MODELS, headers=auth(token))).status_code == 200
                await direct.delete(bucket)
                await proxy.start()  # ... and comes back on the same port
                await asyncio.sleep(0.3)
                assert (await client.get(MODELS, headers=auth(token))).status_code == 200
                assert await direct.exists(bucket), "shared again"
        finally:
            await direct.aclose()
