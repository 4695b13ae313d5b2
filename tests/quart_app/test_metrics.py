"""``/metrics``: what is counted after real requests, and what labels never contain."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from quart import Quart

from bench.upstream import Fault
from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from quart_app.metrics import MAX_MODELS
from quart_app.metrics import Metrics
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import settings_for
from tests.conftest import stream

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(app: Quart) -> tuple[str, Samples]:
    # Settlements whose tokens are still being counted (the tokenizer loads off the loop)
    # are counted in the metrics when they settle: wait for them, as a scrape after the
    # stream would in production a moment later.
    await app.extensions["storywriter.services"].settlements.drain()
    response = await app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    text = (await response.get_data()).decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_stream_is_counted_once_with_tokens_credits_and_ttft(
    app: Quart, token: str
) -> None:
    status, _, _ = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
    assert status == 200
    _, samples = await scrape(app)
    route = FRONTEND_CHAT
    assert (
        value(samples, "storywriter_http_requests_total", route=route, method="POST", status="200")
        == 1
    )
    assert value(samples, "storywriter_http_request_duration_seconds_count", route=route) == 1
    who = {"provider": "scripted", "model": "scripted-model"}
    assert value(samples, "storywriter_tokens_total", kind="completion", **who) == 8
    assert value(samples, "storywriter_tokens_total", kind="prompt", **who) > 0
    assert value(samples, "storywriter_credits_charged_total", **who) > 0
    assert value(samples, "storywriter_completions_total", ending="completed", **who) == 1
    assert (
        value(samples, "storywriter_time_to_first_token_seconds_count", mode="stream", **who) == 1
    )
    assert value(samples, "storywriter_overhead_seconds_count", mode="stream") == 1
    assert value(samples, "storywriter_open_streams") == 0
    assert value(samples, "storywriter_pool_slots", provider="scripted") == 2
    assert value(samples, "storywriter_pool_slots_in_use", provider="scripted") == 0
    assert value(samples, "storywriter_pool_queue_length", provider="scripted") == 0


async def test_a_json_completion_has_its_own_mode(app: Quart, token: str) -> None:
    client = app.test_client()
    headers = auth(token, Accept="application/json")
    response = await client.post(CHAT, json=chat_body(stream=False), headers=headers)
    assert response.status_code == 200
    _, samples = await scrape(app)
    labels = {"provider": "scripted", "model": "scripted-model", "mode": "json"}
    assert value(samples, "storywriter_time_to_first_token_seconds_count", **labels) == 1


async def test_upstream_errors_are_counted_by_kind_and_phase(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.enqueue(
        Script(fault=Fault("http_status", status=500)),
        Script(tokens=6, fault=Fault("reset_mid_stream", after_chunks=2)),
    )
    first, _, _ = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
    assert first == 502
    once = auth(token, **{"X-Stream-Continuation": "off"})  # one mid-stream failure, not three
    second, _, _ = await stream(app, FRONTEND_CHAT, chat_body(), once)
    assert second == 200
    _, samples = await scrape(app)
    name = "storywriter_upstream_errors_total"
    before = value(
        samples, name, provider="scripted", kind="upstream_error", phase="before_first_byte"
    )
    mid = value(samples, name, provider="scripted", kind="upstream_unavailable", phase="mid_stream")
    assert (before, mid) == (1, 1)
    # A call that failed before any upstream answered is settled under provider "none".
    endings = sum(
        v
        for (name, labels), v in samples.items()
        if name == "storywriter_completions_total" and ("ending", "upstream_error") in labels
    )
    assert endings == 2


async def test_labels_never_hold_users_keys_or_request_ids(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    settings = settings_for(upstream, byok={"allow_private_addresses": True})
    async with make_app(settings) as app:
        byok = auth(
            token,
            **{
                "X-BYOK-API-Key": "sk-byok-secret-key-0123456789",
                "X-BYOK-Base-URL": upstream.base_url,
                "X-Request-Id": "request-id-in-no-label",
            },
        )
        status, _, _ = await stream(app, FRONTEND_CHAT, chat_body(model="users-own-model"), byok)
        assert status == 200
        await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
        text, samples = await scrape(app)
    for secret in ("alice", "sk-byok", "0123456789", "request-id-in-no-label", "users-own-model"):
        assert secret not in text
    byok_labels = {"provider": "byok", "model": "byok"}
    assert value(samples, "storywriter_tokens_total", kind="completion", **byok_labels) == 8
    assert value(samples, "storywriter_credits_charged_total", **byok_labels) == 0


async def test_rate_limit_refusals_are_counted(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str
) -> None:
    async with make_app(settings_for(upstream, limits={"requests_per_minute": 1})) as app:
        client = app.test_client()
        route = FRONTEND_CHAT
        assert (await client.post(route, json=chat_body(), headers=auth(token))).status_code == 200
        refused = await client.post(route, json=chat_body(), headers=auth(token))
        assert refused.status_code == 429
        _, samples = await scrape(app)
    assert value(samples, "storywriter_rate_limit_refusals_total", route=route) == 1


async def test_unknown_paths_share_one_route_label(app: Quart) -> None:
    client = app.test_client()
    for path in ("/nope/1", "/nope/2", "/secret-looking-path"):
        assert (await client.get(path)).status_code == 404
    text, samples = await scrape(app)
    assert "secret-looking-path" not in text
    assert (
        value(
            samples,
            "storywriter_http_requests_total",
            route="unmatched",
            method="GET",
            status="404",
        )
        == 3
    )


async def test_metrics_can_be_turned_off(make_app: AppFactory, upstream: ScriptedUpstream) -> None:
    async with make_app(settings_for(upstream, server={"metrics_enabled": False})) as app:
        response = await app.test_client().get("/metrics")
        assert response.status_code == 404


def test_model_labels_are_capped() -> None:
    metrics = Metrics()
    labels = {metrics.model_label(f"m{i}") for i in range(MAX_MODELS + 10)}
    assert len(labels) == MAX_MODELS + 1
    assert "other" in labels
    assert metrics.model_label("m0") == "m0"
