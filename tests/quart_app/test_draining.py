"""Draining in-process: refusals, probes, and streams stopped after the grace period."""

from __future__ import annotations

import orjson
import pytest
from quart import Quart
from quart.testing.connections import WebsocketResponseError

from quart_app.operations import OPERATIONS_KEY
from quart_app.operations import Operations
from quart_app.services import EXTENSION_KEY
from quart_app.services import Services
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import FRONTEND_CHAT
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import read_writes
from tests.conftest import settings_for


def _operations(app: Quart) -> Operations:
    operations: Operations = app.extensions[OPERATIONS_KEY]
    return operations


def _services(app: Quart) -> Services:
    services: Services = app.extensions[EXTENSION_KEY]
    return services


async def test_new_requests_are_refused_while_probes_still_answer(app: Quart, token: str) -> None:
    _operations(app).lifecycle.begin_drain("test")
    client = app.test_client()
    refused = await client.post(FRONTEND_CHAT, json=chat_body(), headers=auth(token))
    assert refused.status_code == 503
    body = await refused.get_json()
    assert body["code"] == "DRAINING"
    assert body["error"]
    assert refused.headers["Retry-After"]
    assert (await client.get("/api/proxy/llm/v1/status")).status_code == 503
    for probe in ("/livez", "/metrics"):
        assert (await client.get(probe)).status_code == 200


async def test_a_stream_in_flight_ends_with_the_shutdown_frame_after_the_grace(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=300, delay_s=0.02)
    async with make_app(settings_for(upstream, server={"shutdown_grace_s": 0.2})) as app:
        client = app.test_client()
        async with client.request(FRONTEND_CHAT, method="POST", headers=auth(token)) as conn:
            await conn.send(orjson.dumps(chat_body(max_tokens=400)))
            await conn.send_complete()
            first = await conn.receive()
            _operations(app).lifecycle.begin_drain("test")
            writes = [first, *await read_writes(conn)]
        payloads = frames(writes)
        assert orjson.loads(payloads[-1]) == {
            "error": {"message": "the service is shutting down", "type": "shutting_down"}
        }
        assert b"[DONE]" not in payloads
        services = _services(app)
        assert services.gateway.open_streams == 0
        status = await services.pool.status()
        assert status["providers"][0]["slots_in_use"] == 0
        await services.settlements.drain()  # those counting tokens, then the ledger's writes
        assert services.ledger is not None
        usage = await services.ledger.recent_usage("alice")
        assert [u.status for u in usage] == ["cancelled"]
        balance = await services.ledger.balance("alice")
        assert balance.reserved == 0


async def test_a_stream_shorter_than_the_grace_completes(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=10, delay_s=0.02)
    async with make_app(settings_for(upstream, server={"shutdown_grace_s": 5})) as app:
        client = app.test_client()
        async with client.request(FRONTEND_CHAT, method="POST", headers=auth(token)) as conn:
            await conn.send(orjson.dumps(chat_body()))
            await conn.send_complete()
            first = await conn.receive()
            _operations(app).lifecycle.begin_drain("test")
            writes = [first, *await read_writes(conn)]
        assert frames(writes)[-1] == b"[DONE]"


async def test_new_websockets_are_refused_while_draining(app: Quart, token: str) -> None:
    _operations(app).lifecycle.begin_drain("test")
    client = app.test_client()
    with pytest.raises(WebsocketResponseError) as refused:
        async with client.websocket(
            "/api/streaming_agent/scenario/ws", query_string={"token": token}
        ) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 503


async def test_an_agent_turn_in_flight_ends_with_its_error_pair_after_the_grace(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    from tests.agent.frames import classification
    from tests.blueprints.agent_support import AGENT
    from tests.blueprints.agent_support import answer_with

    answer_with(
        upstream,
        {"classification": classification(("details", "scenario", "Tell"))},
        ["word "] * 400,
        delay_s=0.02,
    )
    async with make_app(settings_for(upstream, server={"shutdown_grace_s": 0.2})) as app:
        client = app.test_client()
        async with client.request(AGENT, method="POST", headers=auth(token)) as conn:
            await conn.send(orjson.dumps({"message": "Tell me"}))
            await conn.send_complete()
            first = await conn.receive()
            _operations(app).lifecycle.begin_drain("test")
            writes = [first, *await read_writes(conn)]
        events = [orjson.loads(p) for p in frames(writes)]
        assert events[-1]["type"] == "status" and events[-1]["metadata"]["status"] == "error"
        assert events[-2]["type"] == "chat" and events[-2]["streaming"] is False
        assert events[-1]["metadata"]["code"] == "SHUTTING_DOWN"
        services = _services(app)
        assert services.turns.count == 0
        status = await services.pool.status()
        assert status["providers"][0]["slots_in_use"] == 0
        await services.settlements.drain()  # those counting tokens, then the ledger's writes
        assert services.ledger is not None
        [usage] = await services.ledger.recent_usage("alice")
        assert usage.status == "upstream_error"
        assert (await services.ledger.balance("alice")).reserved == 0
