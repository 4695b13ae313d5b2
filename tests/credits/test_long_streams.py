"""A stream longer than its hold's TTL keeps its hold; ``max_stream_s`` ends it (issue 14.2).

The holds of running requests are renewed, so only the holds of dead workers expire: a
6 s stream under a 2 s TTL (reconciled every 0.2 s) is not under-charged, and its credits
cannot be spent twice meanwhile. A stream that reaches ``[server] max_stream_s`` ends with
the usual terminal frame (the proxy's error frame, the agent's error pair) and is charged
for what was generated.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

from credits import Balance
from credits.pricing import credits_for
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.agent.frames import classification
from tests.blueprints.agent_support import AGENT
from tests.blueprints.agent_support import agent_frames
from tests.blueprints.agent_support import schema_name
from tests.conftest import FRONTEND_CHAT
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import stream
from tests.credits.helpers import assert_consistent
from tests.credits.test_service_billing import MULTIPLIER
from tests.credits.test_service_billing import billed_app
from tests.credits.test_service_billing import final_usage
from tests.credits.test_service_billing import ledger_of
from tests.credits.test_service_billing import settled


@pytest.mark.slow  # a stream outliving the hold's TTL, ~6 s
async def test_a_stream_longer_than_the_hold_ttl_keeps_its_hold(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    upstream.script = Script(tokens=60, delay_s=0.1)  # 6 s
    async with billed_app(
        make_app, upstream, ledger_url, reservation_ttl_s=2.0, reconcile_interval_s=0.2
    ) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 130)  # one hold of ~108 (prompt + 100), and 22 more
        long = asyncio.create_task(
            stream(app, FRONTEND_CHAT, chat_body(max_tokens=100), auth(token), limit_s=20)
        )
        await asyncio.sleep(3.0)  # past the TTL, many reconciliations later
        assert not long.done()
        second = await app.test_client().post(
            FRONTEND_CHAT, json=chat_body(max_tokens=100), headers=auth(token)
        )
        assert second.status_code == 402, "the running stream's credits were held all along"
        status, _, writes = await long
        assert status == 200 and frames(writes)[-1] == b"[DONE]"
        await settled(app)
        usage = final_usage(writes)
        assert usage["completion_tokens"] == 60
        price = credits_for(usage["prompt_tokens"], 60, MULTIPLIER)
        assert await ledger.balance("alice") == Balance(130 - price, 0)
        [row] = await ledger.recent_usage("alice")
        assert row.credits == price, "charged in full, not capped by an expired hold"
        await assert_consistent(ledger_url)


async def test_max_stream_s_ends_a_proxied_stream_with_an_error_frame(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    upstream.script = Script(tokens=40, delay_s=0.1)  # 4 s
    async with billed_app(make_app, upstream, ledger_url, {"server": {"max_stream_s": 1.0}}) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 5000)
        status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
        assert status == 200
        payloads = frames(writes)
        last = orjson.loads(payloads[-1])
        assert last["error"]["type"] == "max_stream_time" and last["error"]["message"]
        assert b"[DONE]" not in payloads
        await upstream.wait_for_disconnect(timeout=2)
        await settled(app)
        [row] = await ledger.recent_usage("alice")
        assert row.status == "cancelled"
        assert 1 <= row.completion_tokens < 40, "what was generated in the first second"
        assert row.credits == credits_for(row.prompt_tokens, row.completion_tokens, MULTIPLIER)
        balance = await ledger.balance("alice")
        assert (balance.balance, balance.reserved) == (5000 - row.credits, 0)


def _slow_agent(upstream: ScriptedUpstream) -> None:
    """The agent classifies at once, then its prose streams for 4 s."""
    explain = classification(("details", "scenario", "Tell me about it"))

    def responder(body: dict[str, Any]) -> Script:
        name = schema_name(body)
        if name is None:
            return Script(pieces=["word "] * 40, delay_s=0.1)
        if name == "classification":
            return Script(pieces=[explain])
        return Script(pieces=[json.dumps({"questions": ["One?", "Two?", "Three?"]})])

    upstream.responder = responder


async def test_max_stream_s_ends_an_agent_turn_with_its_error_pair(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    _slow_agent(upstream)
    async with billed_app(make_app, upstream, ledger_url, {"server": {"max_stream_s": 1.0}}) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 50_000)
        status, _, writes = await stream(app, AGENT, {"message": "Tell me about it"}, auth(token))
        assert status == 200
        events = agent_frames(writes)
        chat, end = events[-2], events[-1]
        assert chat["type"] == "chat" and chat["content"]
        assert end["type"] == "status" and end["metadata"]["status"] == "error"
        assert end["metadata"]["code"] == "MAX_STREAM_TIME"
        await upstream.wait_for_disconnect(timeout=2)
        await settled(app)
        [row] = await ledger.recent_usage("alice")
        assert row.status == "cancelled" and row.credits > 0
        balance = await ledger.balance("alice")
        assert (balance.balance, balance.reserved) == (50_000 - row.credits, 0)
