"""Agent WebSocket sessions: auth without headers, history, cancel, queueing, bad frames."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from quart import Quart
from quart.testing.connections import WebsocketDisconnectError
from quart.typing import TestWebsocketConnectionProtocol as WebsocketConnection

from quart_app import create_app
from testing.upstream import ScriptedUpstream
from tests.agent.frames import classification
from tests.agent.samples import SAMPLE
from tests.blueprints.agent_support import answer_with
from tests.blueprints.agent_support import schema_name
from tests.conftest import AppFactory
from tests.conftest import settings_for
from tests.serving import served

WS = "/api/streaming_agent/scenario/ws"


@asynccontextmanager
async def session(app: Quart, token: str | None) -> AsyncIterator[WebsocketConnection]:
    path = f"{WS}?token={token}" if token else WS
    async with app.test_client().websocket(path) as ws:
        yield ws


async def frame(ws: WebsocketConnection, limit_s: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(limit_s):
        return dict(orjson.loads(await ws.receive()))


async def until_done(ws: WebsocketConnection) -> list[dict[str, Any]]:
    """Frames up to the turn's final status."""
    frames = []
    while True:
        got = await frame(ws)
        frames.append(got)
        meta = got.get("metadata", {})
        if got["type"] == "status" and (meta.get("status") == "completed" or meta.get("error")):
            return frames


async def closed_with(ws: WebsocketConnection) -> int:
    with pytest.raises(WebsocketDisconnectError) as closed:
        async with asyncio.timeout(10):
            while True:
                await ws.receive()
    return int(closed.value.args[0])


def explain(upstream: ScriptedUpstream, words: int = 4, delay_s: float = 0.0) -> None:
    answer_with(
        upstream,
        {"classification": classification(("details", "scenario", "Explain"))},
        [f"w{i} " for i in range(words)],
        delay_s=delay_s,
    )


async def test_token_in_url_then_turn(app: Quart, upstream: ScriptedUpstream, token: str) -> None:
    explain(upstream)
    async with session(app, token) as ws:
        ready = await frame(ws)
        assert ready["type"] == "session" and ready["status"] == "ready"
        assert ready["user"] == "alice"
        await ws.send_json({"type": "message", "message": "Explain", "scenario": SAMPLE})
        frames = await until_done(ws)
        assert frames[-1]["metadata"]["status"] == "completed"
        assert any(f["type"] == "chat" and f["streaming"] and f["content"] for f in frames)
        assert frames[-2]["metadata"]["final"] is True


async def test_token_in_first_message(app: Quart, token: str) -> None:
    async with session(app, None) as ws:
        await ws.send_json({"type": "auth", "token": token})
        assert (await frame(ws))["status"] == "ready"


@pytest.mark.parametrize(
    "first", [{"type": "auth", "token": "forged"}, {"type": "message"}, "not json"]
)
async def test_auth_failures_close_1008(app: Quart, first: Any) -> None:
    async with session(app, None) as ws:
        await ws.send(first if isinstance(first, str) else json.dumps(first))
        assert await closed_with(ws) == 1008


async def test_bad_token_in_url_closes_1008(app: Quart) -> None:
    async with session(app, "not-a-jwt") as ws:
        assert await closed_with(ws) == 1008


async def test_silent_client_is_closed_1008(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    settings = settings_for(upstream, agent={"ws_auth_timeout_s": 0.2})
    async with make_app(settings) as app, session(app, None) as ws:
        assert await closed_with(ws) == 1008


async def test_history_is_kept_across_turns(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    explain(upstream)
    async with session(app, token) as ws:
        await frame(ws)
        await ws.send_json({"type": "message", "message": "Who is Mira?"})
        await until_done(ws)
        await ws.send_json({"type": "message", "message": "And Bram?"})
        await until_done(ws)
    second = [r.body for r in upstream.chat_requests if schema_name(r.body) == "classification"][-1]
    text = json.dumps(second["messages"])
    assert "Who is Mira?" in text and "w0 w1 w2 w3" in text


async def test_reset_forgets_history(app: Quart, upstream: ScriptedUpstream, token: str) -> None:
    explain(upstream)
    async with session(app, token) as ws:
        await frame(ws)
        await ws.send_json({"type": "message", "message": "Who is Mira?"})
        await until_done(ws)
        await ws.send_json({"type": "reset"})
        assert (await frame(ws))["status"] == "reset"
        await ws.send_json({"type": "message", "message": "And Bram?"})
        await until_done(ws)
    last = [r.body for r in upstream.chat_requests if schema_name(r.body) == "classification"][-1]
    assert "Who is Mira?" not in json.dumps(last["messages"])


async def test_cancel_stops_turn_and_upstream_within_a_second(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    explain(upstream, words=500, delay_s=0.02)
    async with session(app, token) as ws:
        await frame(ws)
        await ws.send_json({"type": "message", "message": "Explain", "scenario": SAMPLE})
        while not ((got := await frame(ws))["type"] == "chat" and got["content"]):
            pass
        started = time.monotonic()
        await ws.send_json({"type": "cancel"})
        while (got := await frame(ws))["type"] != "status" or got["content"] != "cancelled":
            pass
        await upstream.wait_for_disconnect(timeout=1.0)
        assert time.monotonic() - started < 1.0
        status = await (await app.test_client().get("/api/proxy/llm/v1/status")).get_json()
        assert status["providers"][0]["slots_in_use"] == 0
        await ws.send_json({"type": "ping"})
        assert (await frame(ws))["type"] == "pong", "the session survives a cancel"


async def test_message_during_a_turn_is_queued(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    explain(upstream, words=10, delay_s=0.01)
    async with session(app, token) as ws:
        await frame(ws)
        await ws.send_json({"type": "message", "message": "First"})
        await ws.send_json({"type": "message", "message": "Second"})
        first = await until_done(ws)
        second = await until_done(ws)
        assert first[-1]["metadata"]["status"] == second[-1]["metadata"]["status"] == "completed"
    asked = [
        json.dumps(r.body["messages"])
        for r in upstream.chat_requests
        if schema_name(r.body) == "classification"
    ]
    assert "First" in asked[0] and "Second" in asked[1]


async def test_bad_frames_get_errors_and_the_session_lives(app: Quart, token: str) -> None:
    async with session(app, token) as ws:
        await frame(ws)
        for bad in (
            "not json",
            "[1, 2]",
            json.dumps({"type": "dance"}),
            json.dumps({"type": "message", "message": ""}),
        ):
            await ws.send(bad)
            error = await frame(ws)
            assert error["type"] == "error" and error["code"] in ("BAD_FRAME", "INVALID_REQUEST")
        await ws.send_json({"type": "ping"})
        assert (await frame(ws))["type"] == "pong"


async def test_repeated_garbage_closes_1008(app: Quart, token: str) -> None:
    async with session(app, token) as ws:
        await frame(ws)
        for _ in range(10):
            await ws.send("garbage")
        codes = []
        with pytest.raises(WebsocketDisconnectError) as closed:
            async with asyncio.timeout(10):
                while True:
                    codes.append(orjson.loads(await ws.receive())["code"])
        assert closed.value.args[0] == 1008
        assert set(codes) == {"BAD_FRAME"}


async def test_oversized_message_closes_1009(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    settings = settings_for(upstream, agent={"ws_max_message_bytes": 2048})
    async with make_app(settings) as app, session(app, token) as ws:
        await frame(ws)
        big = {"type": "message", "message": "x", "scenario": copy.deepcopy(SAMPLE)}
        await ws.send(json.dumps(big))
        assert await closed_with(ws) == 1009


async def test_keepalive_pings_when_idle(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    settings = settings_for(upstream, agent={"ws_ping_interval_s": 0.1})
    async with make_app(settings) as app, session(app, token) as ws:
        await frame(ws)
        assert (await frame(ws, limit_s=2))["type"] == "ping"


async def test_empty_binary_frame_is_a_bad_frame_not_a_crash(
    upstream: ScriptedUpstream, token: str
) -> None:
    # Only a real server delivers this frame (Quart hands it over as None).
    app = create_app(settings_for(upstream), freeze_heap=False)
    async with (
        served(app) as base,
        aiohttp.ClientSession() as client,
        client.ws_connect(base.replace("http", "ws") + f"{WS}?token={token}") as ws,
    ):
        assert (await ws.receive_json(timeout=10))["status"] == "ready"
        await ws.send_bytes(b"")
        assert (await ws.receive_json(timeout=10))["code"] == "BAD_FRAME"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=10))["type"] == "pong"


async def test_byok_handshake_headers_apply_to_the_session(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    explain(upstream)
    key = "sk-session-own-key-0123456789"
    headers = {"X-BYOK-API-Key": key, "X-BYOK-Base-URL": upstream.base_url}
    settings = settings_for(
        upstream, byok={"allowed_networks": ["127.0.0.0/8"]}, agent={"model": "scripted-model"}
    )
    async with make_app(settings) as app:
        async with app.test_client().websocket(f"{WS}?token={token}", headers=headers) as ws:
            await frame(ws)
            await ws.send_json({"type": "message", "message": "Explain"})
            assert (await until_done(ws))[-1]["metadata"]["status"] == "completed"
        assert {r.headers["authorization"] for r in upstream.chat_requests} == {f"Bearer {key}"}
        services = app.extensions["storywriter.services"]
        await services.settlements.drain()
        [row] = await services.ledger.recent_usage("alice")
        assert row.byok and row.credits == 0


async def test_forbidden_byok_base_url_closes_1008(app: Quart, token: str) -> None:
    headers = {"X-BYOK-API-Key": "sk-x-0123456789", "X-BYOK-Base-URL": "http://10.0.0.1/v1"}
    async with app.test_client().websocket(f"{WS}?token={token}", headers=headers) as ws:
        assert await closed_with(ws) == 1008
