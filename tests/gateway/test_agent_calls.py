"""Agent turns take the proxy's path to upstreams: failover, error codes, metrics, pricing.

Every test runs a whole turn through the service (the SSE endpoint, the pool, real HTTP to
scripted upstreams on loopback, the SQLite ledger), as the frontend would.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart

from credits.models import UsageRecord
from credits.pricing import credits_for
from testing.upstream import Fault
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.agent.frames import classification
from tests.blueprints.agent_support import AGENT
from tests.blueprints.agent_support import agent_frames
from tests.blueprints.agent_support import schema_name
from tests.conftest import CHAT
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import settings_for
from tests.conftest import stream

_FOLLOW_UPS = json.dumps({"questions": ["One?", "Two?", "Three?"]})
_EXPLAIN = classification(("details", "scenario", "Tell me about it"))


def _provider(name: str, upstream: ScriptedUpstream, multiplier: float) -> dict[str, Any]:
    return {
        "name": name,
        "base_url": upstream.base_url,
        "models": [MODEL],
        "max_concurrency": 2,
        "credit_multiplier": multiplier,
    }


def _agent(upstream: ScriptedUpstream, *, refuse: str | None = None, status: int = 503) -> None:
    """Answer the agent's calls; ``refuse`` ("prose", "structured", "all") answers ``status``."""

    def responder(body: dict[str, Any]) -> Script:
        name = schema_name(body)
        kind = "prose" if name is None else "structured"
        if refuse in (kind, "all"):
            return Script(fault=Fault("http_status", status=status, message="no, thanks"))
        if name is None:
            return Script(pieces=["Once ", "upon ", "a ", "time."])
        return Script(pieces=[_EXPLAIN if name == "classification" else _FOLLOW_UPS])

    upstream.responder = responder


@pytest.fixture(name="second")
async def _second() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream(models=[MODEL]) as upstream:
        yield upstream


async def _turn(app: Quart, token: str) -> list[dict[str, Any]]:
    status, _, writes = await stream(app, AGENT, {"message": "Tell me about it"}, auth(token))
    assert status == 200
    return agent_frames(writes)


async def _samples(app: Quart) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    await app.extensions["storywriter.services"].settlements.drain()
    text = await (await app.test_client().get("/metrics")).get_data(as_text=True)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _sum(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


async def test_a_turn_fails_over_to_the_next_provider_before_the_first_byte(
    make_app: AppFactory, upstream: ScriptedUpstream, second: ScriptedUpstream, token: str
) -> None:
    _agent(upstream, refuse="all")  # the first provider refuses every call
    _agent(second)
    providers = [_provider("first", upstream, 1.0), _provider("second", second, 1.0)]
    async with make_app(settings_for(upstream, providers=providers)) as app:
        events = await _turn(app, token)
        assert events[-1]["metadata"]["status"] == "completed", events[-2:]
        prose = "".join(e["content"] for e in events if e["type"] == "chat" and e["streaming"])
        assert "Once upon a time." in prose
        assert upstream.chat_requests and second.chat_requests, "both were asked"
        samples = await _samples(app)
        refused = _sum(
            samples,
            "storywriter_upstream_errors_total",
            provider="first",
            phase="before_first_byte",
        )
        assert refused == len(upstream.chat_requests), "every refusal is counted, as for the proxy"
        status = await app.extensions["storywriter.services"].pool.status()
        assert all(p["slots_in_use"] == 0 for p in status["providers"])


@pytest.mark.parametrize(
    ("upstream_status", "code"),
    [(429, "UPSTREAM_RATE_LIMITED"), (500, "UPSTREAM_ERROR"), (401, "UPSTREAM_AUTH_FAILED")],
)
async def test_an_upstream_error_in_a_step_has_the_code_the_proxy_gives(
    app: Quart, upstream: ScriptedUpstream, token: str, upstream_status: int, code: str
) -> None:
    _agent(upstream, refuse="all", status=upstream_status)
    proxied, _, _ = await stream(app, CHAT, chat_body(), auth(token))
    proxy_response = await app.test_client().post(
        CHAT, json=chat_body(stream=False), headers=auth(token, Accept="application/json")
    )
    assert (await proxy_response.get_json())["code"] == code
    events = await _turn(app, token)
    chat, status = events[-2], events[-1]
    assert status["metadata"]["status"] == "error"
    assert status["metadata"]["code"] == code, "the same code the proxy answered"
    assert chat["streaming"] is False and "no, thanks" in chat["content"]
    if upstream_status == 429:
        assert status["metadata"]["retry_after"] == 5
    assert proxied == proxy_response.status_code


async def test_agent_calls_appear_in_the_time_to_first_token_and_error_metrics(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    _agent(upstream)
    assert (await _turn(app, token))[-1]["metadata"]["status"] == "completed"
    _agent(upstream, refuse="structured", status=429)
    assert (await _turn(app, token))[-1]["metadata"]["code"] == "UPSTREAM_RATE_LIMITED"
    samples = await _samples(app)
    ttft = "storywriter_time_to_first_token_seconds_count"
    # classification + follow-ups are JSON steps, the explanation is streamed prose
    assert _sum(samples, ttft, provider="scripted", mode="agent_json") == 2
    assert _sum(samples, ttft, provider="scripted", mode="agent_stream") == 1
    errors = _sum(
        samples,
        "storywriter_upstream_errors_total",
        provider="scripted",
        kind="upstream_rate_limited",
        phase="before_first_byte",
    )
    assert errors == 1


async def test_a_turn_over_two_providers_is_charged_per_call_and_metrics_agree(
    make_app: AppFactory, upstream: ScriptedUpstream, second: ScriptedUpstream, token: str
) -> None:
    # The first provider (x1.5) answers the JSON steps and refuses prose, which fails over
    # to the second (x0.1): three calls at two multipliers in one turn.
    _agent(upstream, refuse="prose")
    _agent(second)
    providers = [_provider("dear", upstream, 1.5), _provider("cheap", second, 0.1)]
    async with make_app(settings_for(upstream, providers=providers)) as app:
        services = app.extensions["storywriter.services"]
        seen: list[UsageRecord] = []
        services.settlements.listeners += (seen.append,)
        assert (await _turn(app, token))[-1]["metadata"]["status"] == "completed"
        samples = await _samples(app)
        [record] = seen
        calls = [(c.provider, c.multiplier) for c in record.calls]
        assert calls == [("dear", 1.5), ("cheap", 0.1), ("dear", 1.5)]
        expected = sum(
            credits_for(c.prompt_tokens, c.completion_tokens, c.multiplier) for c in record.calls
        )
        [usage] = await services.ledger.recent_usage("alice")
        metric = _sum(samples, "storywriter_credits_charged_total")
        assert usage.credits == expected == metric, "the ledger and the metric price it alike"
        by_provider = {
            name: _sum(samples, "storywriter_credits_charged_total", provider=name)
            for name in ("dear", "cheap")
        }
        assert by_provider == {
            name: sum(c.credits for c in record.calls if c.provider == name)
            for name in ("dear", "cheap")
        }
        total = usage.prompt_tokens + usage.completion_tokens
        assert math.ceil(total * 0.1) != expected, "not priced at the last call's multiplier"
        balance = await services.ledger.balance("alice")
        assert (balance.balance, balance.reserved) == (10_000 - expected, 0)
