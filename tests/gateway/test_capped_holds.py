"""A large ``max_tokens`` never refuses a member the balance can serve (issue 13, point 1).

The frontend sends ``max_tokens: 32000`` for every story. The hold is capped at what the
balance affords and at the model's output limit, the upstream is sent that cap, an answer
the cap ended says why, and 402 comes only when the prompt plus a minimum answer is out of
reach. Through the service and its SQLite ledger, with a scripted upstream that honours
``max_tokens`` (it ends with ``finish_reason: "length"`` when cut).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from quart import Quart

from credits.ledger import Ledger
from providers.settings import known_output_limit
from quart_app import create_app
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.agent.frames import classification
from tests.agent.samples import SAMPLE
from tests.blueprints.agent_support import AGENT
from tests.blueprints.agent_support import agent_frames
from tests.blueprints.agent_support import schema_name
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import settings_for
from tests.conftest import stream
from tests.serving import served

#: What the frontend sends for a story.
STORY = 32_000


def _settings(upstream: ScriptedUpstream, welcome: int, **provider: Any) -> Any:
    providers = [
        {
            "name": "openai-like",
            "base_url": upstream.base_url,
            "models": [MODEL],
            "max_concurrency": 4,
            "credit_multiplier": 1.0,
            **provider,
        }
    ]
    return settings_for(upstream, providers=providers, credits={"welcome_credits": welcome})


def _sent_max_tokens(upstream: ScriptedUpstream) -> int:
    body = upstream.chat_requests[-1].body
    assert isinstance(body, dict)
    return int(body["max_tokens"])


def _final(writes: list[bytes]) -> dict[str, Any]:
    payloads = frames(writes)
    assert payloads[-1] == b"[DONE]"
    return dict(orjson.loads(payloads[-2]))


def _ledger(app: Quart) -> Ledger:
    ledger = app.extensions["storywriter.services"].ledger
    assert isinstance(ledger, Ledger)
    return ledger


async def _settled(app: Quart) -> None:
    await app.extensions["storywriter.services"].settlements.drain()


@asynccontextmanager
async def _over_http(settings: Any) -> AsyncIterator[tuple[Quart, str]]:
    """The app under a real hypercorn on loopback: streams as the browser gets them."""
    app = create_app(settings, freeze_heap=False)
    async with served(app) as base:
        yield app, base


async def _post(base: str, path: str, body: dict[str, Any], token: str) -> tuple[int, list[bytes]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + path, json=body, headers=auth(token)) as response,
    ):
        return response.status, [await response.read()]


@pytest.mark.parametrize("path", [FRONTEND_CHAT, CHAT])
async def test_a_story_on_default_credits_is_written_and_capped_by_them(
    upstream: ScriptedUpstream, token: str, path: str
) -> None:
    upstream.script = Script(tokens=400)
    async with _over_http(_settings(upstream, welcome=300)) as (app, base):
        status, writes = await _post(base, path, chat_body(max_tokens=STORY), token)
        assert status == 200, writes
        sent = _sent_max_tokens(upstream)
        assert 200 < sent < 300, "the upstream is sent what the 300 credits pay for"
        last_content = orjson.loads(frames(writes)[-3])
        assert last_content["choices"][0]["finish_reason"] == "length"
        final = _final(writes)
        assert final["capped_by"] == "credits"
        assert final["max_tokens"] == sent
        assert final["usage"]["completion_tokens"] == sent
        await _settled(app)
        balance = await _ledger(app).balance("alice")
        assert balance.reserved == 0
        assert balance.balance == 300 - final["cost"]["credits"] >= 0, "never beyond the balance"


async def test_the_json_answer_says_why_it_was_capped(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=400)
    async with make_app(_settings(upstream, welcome=300)) as app:
        response = await app.test_client().post(
            CHAT,
            json=chat_body(max_tokens=STORY, stream=False),
            headers=auth(token, Accept="application/json"),
        )
        assert response.status_code == 200
        answer = await response.get_json()
        assert answer["choices"][0]["finish_reason"] == "length"
        assert answer["capped_by"] == "credits"
        assert answer["max_tokens"] == _sent_max_tokens(upstream)


async def test_an_answer_that_ends_before_the_cap_says_nothing(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=5)
    async with make_app(_settings(upstream, welcome=10_000)) as app:
        status, _, writes = await stream(
            app, FRONTEND_CHAT, chat_body(max_tokens=STORY), auth(token)
        )
        assert status == 200
        assert "capped_by" not in _final(writes)


async def test_402_only_when_the_prompt_and_a_minimum_answer_are_out_of_reach(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    async with make_app(_settings(upstream, welcome=100)) as app:
        response = await app.test_client().post(
            FRONTEND_CHAT, json=chat_body(max_tokens=STORY), headers=auth(token)
        )
        assert response.status_code == 402
        body = await response.get_json()
        assert body["code"] == "INSUFFICIENT_CREDITS"
        needed = body["detail"]["needed"]
        assert 256 < needed < 300, "the prompt plus min_completion_tokens (256), not 32000"
        assert str(needed) in body["error"] and "100" in body["error"]
        assert upstream.chat_requests == [], "the upstream was never called"
        # Asking for less than the minimum answer needs only that.
        small = await app.test_client().post(
            FRONTEND_CHAT, json=chat_body(max_tokens=50), headers=auth(token)
        )
        assert small.status_code == 200


async def test_a_model_limit_caps_what_the_upstream_is_sent(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=40)
    settings = _settings(upstream, welcome=10_000, model_max_output_tokens={MODEL: 12})
    async with make_app(settings) as app:
        status, _, writes = await stream(
            app, FRONTEND_CHAT, chat_body(max_tokens=STORY), auth(token)
        )
        assert status == 200
        assert _sent_max_tokens(upstream) == 12
        final = _final(writes)
        assert (final["capped_by"], final["max_tokens"]) == ("model_limit", 12)
        await _settled(app)
        [row] = await _ledger(app).recent_usage("alice")
        assert row.completion_tokens == 12


async def test_well_known_models_have_their_output_limits(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    assert known_output_limit("gpt-4o-mini") == 16_384
    assert known_output_limit("openai/gpt-4.1") == 32_768  # GitHub Models, OpenRouter
    assert known_output_limit("gpt-4o-2024-08-06") == 16_384
    assert known_output_limit("llama3.1:8b") is None
    upstream.script = Script(tokens=3)
    settings = settings_for(
        upstream,
        providers=[
            {
                "name": "openai",
                "kind": "openai",
                "base_url": upstream.base_url,
                "models": ["gpt-4o-mini"],
            }
        ],
        credits={"enabled": False},
    )
    async with make_app(settings) as app:
        body = chat_body(model="gpt-4o-mini", max_tokens=STORY)
        status, _, _ = await stream(app, FRONTEND_CHAT, body, auth(token))
        assert status == 200
        assert _sent_max_tokens(upstream) == 16_384


async def test_concurrent_capped_stories_never_overdraw(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=400, delay_s=0.001)
    settings = _settings(upstream, welcome=1_000, max_concurrency=16)
    settings.limits.concurrent_requests = 0  # a per-user limit would refuse some first
    async with make_app(settings) as app:
        results = await asyncio.gather(
            *(
                stream(app, FRONTEND_CHAT, chat_body(max_tokens=STORY), auth(token))
                for _ in range(12)
            )
        )
        served = [writes for status, _, writes in results if status == 200]
        refused = [status for status, _, _ in results if status != 200]
        assert set(refused) <= {402}
        assert served, "the first ones are served"
        await _settled(app)
        balance = await _ledger(app).balance("alice")
        charged = sum(_final(w)["cost"]["credits"] for w in served)
        assert balance.reserved == 0
        assert balance.balance == 1_000 - charged >= 0


def _agent_upstream(upstream: ScriptedUpstream, operations: int) -> None:
    ops = [("details", "scenario", f"Part {n}") for n in range(operations)]

    def responder(body: dict[str, Any]) -> Script:
        name = schema_name(body)
        if name == "classification":
            return Script(pieces=[classification(*ops)])
        if name is not None:
            return Script(pieces=[json.dumps({"questions": ["A?", "B?", "C?"]})])
        return Script(tokens=600)  # prose runs to whatever max_tokens allows

    upstream.responder = responder


async def test_an_agent_turn_holds_its_plan_and_never_spends_beyond_it(
    upstream: ScriptedUpstream, token: str
) -> None:
    _agent_upstream(upstream, operations=4)
    scenario = {**SAMPLE, "backstory": "A long history of the realm. " * 140}  # ~4,000 chars
    turn = {"message": "Explain it", "scenario": scenario}
    async with _over_http(_settings(upstream, welcome=3_000)) as (app, base):
        status, writes = await _post(base, AGENT, turn, token)
        assert status == 200
        events = agent_frames(writes)
        await _settled(app)
        ledger = _ledger(app)
        [row] = await ledger.recent_usage("alice")
        balance = await ledger.balance("alice")
        assert balance.reserved == 0
        assert balance.balance == 3_000 - row.credits >= 0, "never beyond the balance"
        # Four explanations of a big scenario (each ~1,900 tokens with its answer) do not fit
        # in 3,000 credits: a later call is capped to what is left, and the step that cannot
        # be paid says so.
        last = events[-1]["metadata"]
        assert (last["status"], last["code"]) == ("error", "INSUFFICIENT_CREDITS")
        assert "credits ran out" in events[-2]["content"]
        bodies = [r.body for r in upstream.chat_requests if isinstance(r.body, dict)]
        sent = [b.get("max_completion_tokens", b.get("max_tokens")) for b in bodies]
        assert len(sent) >= 3, "the explanations the hold could pay for were written"


async def test_an_agent_turn_on_a_small_balance_is_planned_not_quadrupled(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    _agent_upstream(upstream, operations=1)
    async with make_app(_settings(upstream, welcome=10_000)) as app:
        billing = app.extensions["storywriter.services"].billing
        seen: list[int] = []
        real = billing.reserve

        async def spy(user_id: str, request_id: str, amount: int, *args: Any) -> Any:
            seen.append(amount)
            return await real(user_id, request_id, amount, *args)

        billing.reserve = spy
        status, _, writes = await stream(app, AGENT, {"message": "Explain it"}, auth(token))
        assert status == 200
        assert agent_frames(writes)[-1]["metadata"]["status"] == "completed"
        hold = seen[-1]  # the first try of a new member fails until the welcome is granted
        # Three calls (classification, the explanation, follow-ups) of prompt + 512 tokens.
        assert 3 * 512 < hold < 3 * (512 + 1_000)
