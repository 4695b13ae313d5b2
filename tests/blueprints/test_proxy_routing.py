"""Models, status, failover between upstreams and cancellation on client disconnect."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
from quart import Quart

from quart_app import create_app
from testing.upstream import Fault
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import content_of
from tests.conftest import frames
from tests.conftest import settings_for
from tests.conftest import stream
from tests.serving import served

MODELS = "/api/proxy/llm/v1/models"
STATUS = "/api/proxy/llm/v1/status"


async def test_models_lists_configured_ids(app: Quart, token: str) -> None:
    response = await app.test_client().get(MODELS, headers=auth(token))
    assert response.status_code == 200
    assert (await response.get_json())["data"] == [
        {"id": MODEL, "object": "model", "owned_by": "scripted"}
    ]


async def test_models_listed_from_upstream_and_cached(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    upstream.models = ["a", "b"]
    providers = [{"name": "lms", "kind": "lmstudio", "base_url": upstream.base_url}]
    async with make_app(settings_for(upstream, providers=providers)) as app:
        client = app.test_client()
        for _ in range(3):
            response = await client.get(MODELS, headers=auth(token))
            assert [m["id"] for m in (await response.get_json())["data"]] == ["a", "b"]
        assert [r.path for r in upstream.requests].count("/v1/models") == 1


async def test_models_unreachable_upstream_is_an_error(make_app: AppFactory, token: str) -> None:
    providers = [{"name": "dead", "base_url": "http://127.0.0.1:9/v1"}]
    async with make_app(settings_for(None, providers=providers)) as app:
        response = await app.test_client().get(MODELS, headers=auth(token))
        assert response.status_code == 502
        body = await response.get_json()
        assert body["code"] == "UPSTREAM_UNAVAILABLE" and "dead" in body["error"]


async def test_status_needs_no_auth_and_reports_slots(app: Quart) -> None:
    response = await app.test_client().get(STATUS)
    body = await response.get_json()
    assert body["busy"] is False
    assert body["providers"] == [
        {"name": "scripted", "slots_in_use": 0, "slots_total": 2, "queue_length": 0}
    ]


async def test_failover_to_next_upstream_before_first_byte(
    make_app: AppFactory, token: str
) -> None:
    async with ScriptedUpstream(models=[MODEL]) as bad, ScriptedUpstream(models=[MODEL]) as good:
        bad.script = Script(fault=Fault("http_status", status=503))
        good.script = Script(pieces=["from", " good"])
        providers = [
            {"name": "bad", "base_url": bad.base_url, "models": [MODEL]},
            {"name": "good", "base_url": good.base_url, "models": [MODEL]},
            {"name": "refused", "base_url": "http://127.0.0.1:9/v1", "models": [MODEL]},
        ]
        async with make_app(settings_for(None, providers=providers)) as app:
            for _ in range(3):
                status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
                assert status == 200
                assert content_of(frames(writes)) == "from good"
            status_body = await (await app.test_client().get(STATUS)).get_json()
            assert all(p["slots_in_use"] == 0 for p in status_body["providers"])


async def test_no_failover_on_client_error(make_app: AppFactory, token: str) -> None:
    async with (
        ScriptedUpstream(models=[MODEL]) as first,
        ScriptedUpstream(models=[MODEL]) as second,
    ):
        first.script = second.script = Script(fault=Fault("http_status", status=400))
        providers = [
            {"name": "first", "base_url": first.base_url, "models": [MODEL]},
            {"name": "second", "base_url": second.base_url, "models": [MODEL]},
        ]
        async with make_app(settings_for(None, providers=providers)) as app:
            response = await app.test_client().post(
                FRONTEND_CHAT, json=chat_body(), headers=auth(token)
            )
            assert response.status_code == 400
            chats = [r for r in first.requests + second.requests if r.method == "POST"]
            assert len(chats) == 1


async def test_client_disconnect_cancels_upstream_and_frees_slot(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    upstream.script = Script(tokens=500, delay_s=0.02)
    app = create_app(settings_for(upstream), freeze_heap=False)
    async with served(app) as base, aiohttp.ClientSession() as session:
        response = await session.post(base + FRONTEND_CHAT, json=chat_body(), headers=auth(token))
        assert response.status == 200
        await response.content.readuntil(b"\n\n")
        async with session.get(base + STATUS) as status:
            assert (await status.json())["providers"][0]["slots_in_use"] == 1
        closed_at = time.monotonic()
        response.close()  # the browser tab goes away
        await upstream.wait_for_disconnect(timeout=1.0)
        assert time.monotonic() - closed_at < 1.0
        deadline = time.monotonic() + 1.0
        while True:
            async with session.get(base + STATUS) as status:
                body = await status.json()
            if body["providers"][0]["slots_in_use"] == 0:
                break
            assert time.monotonic() < deadline, "slot not freed within 1 s"
            await asyncio.sleep(0.02)
        assert body["busy"] is False


async def test_writes_hold_whole_frames_over_real_http(
    upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=40, pieces=None)
    app = create_app(settings_for(upstream), freeze_heap=False)
    async with (
        served(app) as base,
        aiohttp.ClientSession() as session,
        session.post(base + FRONTEND_CHAT, json=chat_body(), headers=auth(token)) as response,
    ):
        reads = [chunk async for chunk in response.content.iter_any()]
    assert all(read.endswith(b"\n\n") for read in reads)
    payloads = frames(reads)
    assert payloads[-1] == b"[DONE]"
    assert orjson.loads(payloads[-2])["usage"]["completion_tokens"] == 40
