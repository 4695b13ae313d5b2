"""What the chat panel sees when a turn is refused, and whether it is enabled at all.

Issue 13, points 2 and 3. The frontend's ``agentService`` throws a generic error on any
non-200 without reading the body, so every refusal before a turn starts comes in band: a
readable chat message, then the terminal error status with ``metadata.code`` (and
``retry_after`` where it applies). ``?errors=status`` keeps HTTP statuses for API clients;
the access log and metrics record the real outcome either way. The health endpoint says
whether the agent's model can be reached now, from the cached readiness probes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart

from bench.upstream import Fault
from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from quart_app import create_app
from tests.agent.frames import classification
from tests.blueprints.agent_support import AGENT
from tests.blueprints.agent_support import STATUSES
from tests.blueprints.agent_support import agent_frames
from tests.blueprints.agent_support import answer_with
from tests.blueprints.agent_support import refusal
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import settings_for
from tests.serving import served

HEALTH = "/api/streaming_agent/scenario/stream/health"
TURN = {"message": "Tell me about it"}


async def _requests_counted(app: Quart, status: str) -> float:
    text = (await (await app.test_client().get("/metrics")).get_data()).decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "storywriter_http_requests_total"
        and sample.labels.get("route") == AGENT
        and sample.labels.get("status") == status
    )


async def test_a_rate_limit_reaches_the_chat_panel_and_the_log_keeps_429(
    make_app: AppFactory,
    upstream: ScriptedUpstream,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer_with(
        upstream, {"classification": classification(("details", "scenario", "Tell"))}, ["Ok."]
    )
    async with make_app(settings_for(upstream, limits={"requests_per_minute": 1})) as app:
        client = app.test_client()
        first = await client.post(AGENT, json=TURN, headers=auth(token))
        assert agent_frames([await first.get_data()])[-1]["metadata"]["status"] == "completed"
        with caplog.at_level(logging.INFO, logger="storywriter.access"):
            refused = await client.post(AGENT, json=TURN, headers=auth(token))
        code, retry_after = await refusal(refused)
        assert code == "RATE_LIMITED"
        assert retry_after is not None and retry_after >= 1
        assert refused.headers["Retry-After"] == str(retry_after)
        line = [r for r in caplog.records if getattr(r, "event", None) == "access"][-1]
        assert line.status == 429, "the access log records the real outcome"
        assert await _requests_counted(app, "429") == 1
        assert await _requests_counted(app, "200") == 1
        statuses = await client.post(AGENT, json=TURN, headers=auth(token), query_string=STATUSES)
        assert statuses.status_code == 429
        assert (await statuses.get_json())["code"] == "RATE_LIMITED"


async def test_no_model_and_an_unreachable_upstream_are_readable_too(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    async with make_app(settings_for(upstream, agent={"model": "no-such-model"})) as app:
        refused = await app.test_client().post(AGENT, json=TURN, headers=auth(token))
        assert await refusal(refused) == ("MODEL_NOT_FOUND", None)
    dead = [{"name": "dead", "base_url": "http://127.0.0.1:9/v1", "models": [MODEL]}]
    async with make_app(settings_for(upstream, providers=dead)) as app:
        response = await app.test_client().post(AGENT, json=TURN, headers=auth(token))
        assert response.status_code == 200
        frames = agent_frames([await response.get_data()])
        assert frames[-2]["type"] == "chat" and "unreachable" in frames[-2]["content"]
        assert frames[-1]["metadata"]["code"] == "UPSTREAM_UNAVAILABLE"


async def test_a_refusal_in_band_over_real_http(upstream: ScriptedUpstream, token: str) -> None:
    app = create_app(settings_for(upstream, credits={"welcome_credits": 0}))
    async with served(app) as base, aiohttp.ClientSession() as session:
        async with session.post(base + AGENT, json=TURN, headers=auth(token)) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            frames = agent_frames([await response.read()])
        assert frames[0]["type"] == "chat" and "credits" in frames[0]["content"]
        assert frames[1]["metadata"]["code"] == "INSUFFICIENT_CREDITS"
        async with session.post(
            base + AGENT, json=TURN, headers=auth(token), params=STATUSES
        ) as response:
            assert response.status == 402


async def test_websocket_refusals_carry_the_same_code_and_retry_after(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    settings = settings_for(upstream, limits={"requests_per_minute": 1})
    answer_with(
        upstream, {"classification": classification(("details", "scenario", "Tell"))}, ["Ok."]
    )
    async with make_app(settings) as app:
        async with app.test_client().websocket(
            "/api/streaming_agent/scenario/ws", query_string={"token": token}
        ) as ws:
            assert '"ready"' in await ws.receive()
            await ws.send('{"type":"message","message":"one"}')
            await ws.send('{"type":"message","message":"two"}')
            frames: list[dict[str, Any]] = []
            while not any(f.get("type") == "error" for f in frames):
                frames.append(orjson.loads(await ws.receive()))
        [error] = [f for f in frames if f.get("type") == "error"]
        assert error["code"] == "RATE_LIMITED" and error["status"] == 429
        assert error["retry_after"] >= 1


@pytest.fixture(name="second")
async def _second() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream(models=[MODEL]) as upstream:
        yield upstream


def _two(upstream: ScriptedUpstream, second: ScriptedUpstream) -> list[dict[str, Any]]:
    return [
        {"name": "one", "base_url": upstream.base_url, "models": [MODEL]},
        {"name": "two", "base_url": second.base_url, "models": [MODEL]},
    ]


async def test_health_is_healthy_degraded_or_unhealthy_with_reasons(
    make_app: AppFactory, upstream: ScriptedUpstream, second: ScriptedUpstream
) -> None:
    settings = settings_for(
        upstream, providers=_two(upstream, second), server={"readiness_cache_s": 0}
    )
    async with make_app(settings) as app:
        client = app.test_client()
        healthy = await client.get(HEALTH)
        body = await healthy.get_json()
        assert (healthy.status_code, body["status"], body["state"]) == (200, "healthy", "healthy")
        assert set(body["providers"]) == {"one", "two"}
        await second.close()  # one provider down: turns still work, on the other
        degraded = await client.get(HEALTH)
        body = await degraded.get_json()
        assert degraded.status_code == 200
        assert (body["status"], body["state"]) == ("healthy", "degraded")
        assert body["providers"]["two"]["state"] == "down"
        assert body["providers"]["two"]["detail"] == "UPSTREAM_UNAVAILABLE"
        assert body["providers"]["one"]["state"] == "up"
        await upstream.close()
        unhealthy = await client.get(HEALTH)
        body = await unhealthy.get_json()
        assert (unhealthy.status_code, body["status"], body["state"]) == (
            503,
            "unhealthy",
            "unhealthy",
        )


async def test_health_reuses_the_cached_probe(
    make_app: AppFactory, upstream: ScriptedUpstream
) -> None:
    settings = settings_for(upstream, server={"readiness_cache_s": 60})
    async with make_app(settings) as app:
        client = app.test_client()
        for _ in range(5):
            assert (await client.get(HEALTH)).status_code == 200
        probes = [r for r in upstream.requests if r.path.endswith("/models")]
        assert len(probes) == 1, "one probe per readiness_cache_s, never one per call"


async def test_health_is_unhealthy_when_the_only_upstream_fails(
    make_app: AppFactory, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(Script(fault=Fault("http_status", status=500)))
    dead = [{"name": "dead", "base_url": "http://127.0.0.1:9/v1", "models": [MODEL]}]
    async with make_app(settings_for(upstream, providers=dead)) as app:
        response = await app.test_client().get(HEALTH)
        body = await response.get_json()
        assert response.status_code == 503
        assert body["providers"]["dead"]["state"] == "down"
