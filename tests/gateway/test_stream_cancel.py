"""The core hook behind the console's cancel button: open streams are listed and cancellable.

A cancelled proxy stream ends like a client disconnect on our side: the upstream sees the
connection close, the slot comes back, what was generated is billed once (ending
``cancelled``), and the client gets the contract's one error frame (5.1). An agent turn
whose call is cancelled ends with its error pair and is logged as cancelled too.
"""

from __future__ import annotations

import asyncio

import orjson
from quart import Quart

from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from providers.calls import OpenedStream
from quart_app.services import EXTENSION_KEY
from quart_app.services import Services
from tests.agent.frames import classification
from tests.blueprints.agent_support import AGENT
from tests.blueprints.agent_support import agent_frames
from tests.blueprints.agent_support import answer_with
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import content_of
from tests.conftest import frames
from tests.conftest import read_writes
from tests.conftest import settings_for


def _services(app: Quart) -> Services:
    services: Services = app.extensions[EXTENSION_KEY]
    return services


async def _listed(services: Services, mode: str) -> OpenedStream:
    async with asyncio.timeout(10):
        while True:
            found = [s for s in services.calls.streams() if s.mode == mode]
            if found and found[0].reads >= 2:
                return found[0]
            await asyncio.sleep(0.01)


async def test_a_cancelled_stream_ends_with_one_error_frame_and_is_billed_as_cancelled(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=400, delay_s=0.02)
    async with make_app(settings_for(upstream)) as app:
        services = _services(app)
        client = app.test_client()
        headers = auth(token, **{"X-Request-Id": "cancel-me-1"})
        async with client.request(FRONTEND_CHAT, method="POST", headers=headers) as conn:
            await conn.send(orjson.dumps(chat_body(max_tokens=500)))
            await conn.send_complete()
            first = await conn.receive()
            opened = await _listed(services, "stream")
            assert (opened.user, opened.model, opened.request_id) == ("alice", MODEL, "cancel-me-1")
            assert opened.upstream.name == "scripted" and opened.id
            assert services.calls.find_stream(opened.id) is opened
            assert (await services.pool.status())["providers"][0]["slots_in_use"] == 1
            assert opened.cancel() is True
            assert opened.cancel() is False  # once
            writes = [first, *await read_writes(conn)]
        payloads = frames(writes)
        assert orjson.loads(payloads[-1]) == {
            "error": {"message": "an operator cancelled this stream", "type": "cancelled"}
        }
        assert b"[DONE]" not in payloads
        generated = content_of(payloads[:-1])
        assert generated  # tokens arrived before the cancel
        await upstream.wait_for_disconnect(timeout=5)
        assert services.calls.streams() == []
        assert (await services.pool.status())["providers"][0]["slots_in_use"] == 0
        await services.settlements.drain()
        assert services.ledger is not None
        [usage] = await services.ledger.recent_usage("alice")
        assert usage.status == "cancelled"
        assert 0 < usage.completion_tokens < 400
        assert (await services.ledger.balance("alice")).reserved == 0


async def test_a_cancelled_agent_call_ends_the_turn_with_its_error_pair(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    answer_with(
        upstream,
        {"classification": classification(("details", "scenario", "Tell me"))},
        ["word "] * 400,
        delay_s=0.02,
    )
    async with make_app(settings_for(upstream)) as app:
        services = _services(app)
        client = app.test_client()
        async with client.request(AGENT, method="POST", headers=auth(token)) as conn:
            await conn.send(orjson.dumps({"message": "Tell me"}))
            await conn.send_complete()
            first = await conn.receive()
            opened = await _listed(services, "agent_stream")
            assert opened.user == "alice"
            assert opened.cancel() is True
            writes = [first, *await read_writes(conn)]
        events = agent_frames(writes)
        assert events[-1]["metadata"]["status"] == "error"
        assert events[-1]["metadata"]["code"] == "CANCELLED"
        assert events[-2]["type"] == "chat" and events[-2]["streaming"] is False
        assert services.turns.count == 0
        assert (await services.pool.status())["providers"][0]["slots_in_use"] == 0
        await services.settlements.drain()
        assert services.ledger is not None
        [usage] = await services.ledger.recent_usage("alice")
        assert usage.status == "cancelled"
        assert usage.completion_tokens > 0
