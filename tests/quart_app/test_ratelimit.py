"""Per-user rate limits through the app: markers, 429s with true Retry-After, every kind of user."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from quart import Quart

from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from coordination.limits.local import LocalRateLimiter
from coordination.limits.rules import LimitPolicy
from quart_app.auth import Caller
from quart_app.auth import mint_token
from quart_app.errors import APIError
from quart_app.limit_hooks import check_message_limits
from quart_app.limit_hooks import message_limits
from quart_app.limit_markers import ReadMarker
from quart_app.limit_markers import estimate_body_tokens
from quart_app.limit_markers import is_cheap_read
from quart_app.limit_markers import is_exempt
from quart_app.limit_markers import is_limited
from quart_app.limit_markers import read_marker
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import settings_for
from tests.conftest import stream

MODELS = "/api/proxy/llm/v1/models"
STATUS = "/api/proxy/llm/v1/status"
OFF = {"requests_per_minute": 0, "concurrent_requests": 0, "tokens_per_minute": 0}


def limited(upstream: ScriptedUpstream, capacity: int = 8, **limits: Any) -> Any:
    providers = [
        {
            "name": "scripted",
            "base_url": upstream.base_url,
            "models": [MODEL],
            "max_concurrency": capacity,
        }
    ]
    # Credits off: these tests are about the limits alone.
    limits = {**OFF, **limits}
    return settings_for(upstream, providers=providers, limits=limits, credits={"enabled": False})


async def assert_rate_limited(response: Any, limit: str) -> dict[str, Any]:
    assert response.status_code == 429
    body = await response.get_json()
    assert body["code"] == "RATE_LIMITED" and body["error"]
    assert body["detail"]["limit"] == limit
    assert response.headers["Retry-After"].isdigit()
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"):
        assert name in response.headers, name
    assert response.headers["RateLimit-Remaining"] == "0" or limit == "tokens"
    return dict(body)


async def test_every_route_is_limited_or_exempt(app: Quart) -> None:
    undecided, several = [], []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        marks = [is_limited(view), is_cheap_read(view), is_exempt(view)].count(True)
        if marks == 0:
            undecided.append(rule.rule)
        elif marks > 1:
            several.append(rule.rule)
    assert not undecided, f"mark these @rate_limit, @cheap_read or @rate_exempt: {undecided}"
    assert not several, f"more than one mark: {several}"
    assert read_marker(app.view_functions["proxy.get_status"]) == ReadMarker("address")
    assert read_marker(app.view_functions["proxy.get_models"]) == ReadMarker("user")
    assert is_limited(app.view_functions["proxy.post_frontend_chat"])


async def test_requests_per_minute_answer_429_with_true_retry_after(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    async with make_app(limited(upstream, requests_per_minute=6)) as app:
        client = app.test_client()
        for expected in (5, 4, 3, 2, 1, 0):
            response = await chat(client, token)
            assert response.status_code == 200
            assert response.headers["RateLimit-Limit"] == "6"
            assert response.headers["RateLimit-Remaining"] == str(expected)
            assert response.headers["RateLimit-Policy"] == '6;w=60;name="requests"'
        refused = await chat(client, token)
        body = await assert_rate_limited(refused, "requests")
        # The bucket leaks one request every 10 s: the next one passes in (just under) 10 s.
        assert refused.headers["Retry-After"] == "10"
        assert body["detail"]["retry_after_s"] == 10
        assert 9 <= int(refused.headers["RateLimit-Reset"]) <= 60
        # /status answers, and another user has their own quota.
        assert (await client.get(STATUS)).status_code == 200
        other = mint_token(SECRET.encode(), "bob")
        assert (await chat(client, other)).status_code == 200


async def chat(client: Any, token: str, **headers: str) -> Any:
    """One completion (a limited request), read to its end."""
    return await client.post(FRONTEND_CHAT, json=chat_body(), headers=auth(token, **headers))


async def test_retry_after_is_the_true_wait() -> None:
    limiter = LocalRateLimiter(LimitPolicy(60, 0, 0))  # one request a second after the burst
    for _ in range(60):
        assert (await limiter.admit("alice", "", 0)).allowed
    refused = await limiter.admit("alice", "", 0)
    refused_at = time.monotonic()
    assert not refused.allowed and refused.limit == "requests"
    assert 0.9 < refused.retry_after_s <= 1.0
    await asyncio.sleep(refused.retry_after_s * 0.3)
    early = await limiter.admit("alice", "", 0)
    assert not early.allowed  # not before the time it said
    assert (
        abs(early.retry_after_s - (refused.retry_after_s - (time.monotonic() - refused_at))) < 0.05
    )
    await asyncio.sleep(early.retry_after_s + 0.02)
    assert (await limiter.admit("alice", "", 0)).allowed  # and not (much) after it


async def test_concurrent_requests_count_until_the_stream_ends(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    upstream.script = Script(tokens=100, delay_s=0.01)
    async with make_app(limited(upstream, concurrent_requests=2)) as app:
        results = await asyncio.gather(
            stream(app, FRONTEND_CHAT, chat_body(), auth(token)),
            stream(app, FRONTEND_CHAT, chat_body(), auth(token)),
            _after(
                0.1, app.test_client().post(FRONTEND_CHAT, json=chat_body(), headers=auth(token))
            ),
        )
        assert results[0][0] == results[1][0] == 200
        assert frames(results[0][2])[-1] == b"[DONE]"
        await assert_rate_limited(results[2], "concurrency")
        assert results[2].headers["Retry-After"] == "1"
        status, headers, _ = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
        assert status == 200 and headers["RateLimit-Policy"] == '2;name="concurrency"'


async def _after(delay_s: float, call: Any) -> Any:
    await asyncio.sleep(delay_s)
    return await call


async def test_tokens_per_minute_charge_the_estimate_then_the_real_usage(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    upstream.script = Script(tokens=20, delay_s=0.05)
    async with make_app(limited(upstream, tokens_per_minute=1000)) as app:
        client = app.test_client()
        first = asyncio.create_task(
            stream(app, FRONTEND_CHAT, chat_body(max_tokens=900), auth(token))
        )
        await asyncio.sleep(0.1)  # streaming: its estimate (900 + body) is still charged
        refused = await client.post(
            FRONTEND_CHAT, json=chat_body(max_tokens=900), headers=auth(token)
        )
        await assert_rate_limited(refused, "tokens")
        # 900 + ~30 charged, 900 + ~30 more asked: ~860 must leak at 1000/60 per second.
        assert 45 <= int(refused.headers["Retry-After"]) <= 60
        status, _, _ = await first
        assert status == 200
        # Settled at its real usage (~20 tokens): the same request now fits.
        again = await client.post(
            FRONTEND_CHAT, json=chat_body(max_tokens=900), headers=auth(token)
        )
        assert again.status_code == 200
        assert int(again.headers["RateLimit-Remaining"]) < 100


async def test_requests_that_reach_no_upstream_get_their_tokens_back(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    async with make_app(limited(upstream, tokens_per_minute=1000)) as app:
        client = app.test_client()
        for _ in range(3):  # each would charge ~930 tokens if the 400 kept them
            bad = await client.post(
                FRONTEND_CHAT, json=chat_body(max_tokens=900, messages=[]), headers=auth(token)
            )
            assert bad.status_code == 400
        ok = await client.post(FRONTEND_CHAT, json=chat_body(max_tokens=900), headers=auth(token))
        assert ok.status_code == 200


async def test_byok_users_are_limited_too(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    settings = limited(upstream, requests_per_minute=2)
    settings = settings.model_copy(
        update={"byok": settings.byok.model_copy(update={"allow_private_addresses": True})}
    )
    headers = auth(token, **{"X-BYOK-API-Key": "sk-user-key", "X-BYOK-Base-URL": upstream.base_url})
    async with make_app(settings) as app:
        client = app.test_client()
        for _ in range(2):
            response = await client.post(FRONTEND_CHAT, json=chat_body(), headers=headers)
            assert response.status_code == 200
        await assert_rate_limited(
            await client.post(FRONTEND_CHAT, json=chat_body(), headers=headers), "requests"
        )
        # Without BYOK the same user is the same user: still limited.
        await assert_rate_limited(await chat(client, token), "requests")


async def test_development_users_are_keyed_by_address(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    settings = limited(upstream, requests_per_minute=1)
    settings = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"mode": "development"})}
    )
    async with make_app(settings) as app:
        client = app.test_client()

        async def from_address(address: str) -> Any:
            return await client.post(
                FRONTEND_CHAT, json=chat_body(), scope_base={"client": (address, 40000)}
            )

        assert (await from_address("10.0.0.1")).status_code == 200
        await assert_rate_limited(await from_address("10.0.0.1"), "requests")
        assert (await from_address("10.0.0.2")).status_code == 200


async def test_no_limits_no_headers(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    async with make_app(limited(upstream)) as app:
        response = await app.test_client().get(MODELS, headers=auth(token))
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers


async def test_streamed_responses_carry_the_headers(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    async with make_app(limited(upstream, requests_per_minute=100, tokens_per_minute=10**6)) as app:
        status, headers, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
        assert status == 200 and frames(writes)[-1] == b"[DONE]"
        assert headers["RateLimit-Limit"] == "100" and headers["RateLimit-Remaining"] == "99"
        assert headers["RateLimit-Policy"] == '100;w=60;name="requests", 1000000;w=60;name="tokens"'


async def test_each_websocket_message_is_limited(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    async with make_app(limited(upstream, requests_per_minute=2, concurrent_requests=1)) as app:
        caller = Caller("carol", authenticated=True)
        async with app.app_context():
            async with message_limits(caller):
                with pytest.raises(APIError) as busy:
                    await check_message_limits(caller)  # the first message is still running
                assert busy.value.status_code == 429 and busy.value.headers["Retry-After"] == "1"
            grant = await check_message_limits(caller)
            grant.finish()
            with pytest.raises(APIError) as refused:
                await check_message_limits(caller)
            assert refused.value.code == "RATE_LIMITED"
            assert refused.value.headers["Retry-After"] == "30"


def test_token_estimate_is_cheap_and_not_too_low() -> None:
    body = orjson.dumps(
        chat_body(max_tokens=300, messages=[{"role": "user", "content": "x" * 4000}])
    )
    assert 1300 <= estimate_body_tokens(body) <= 1400
    assert estimate_body_tokens(b'{"messages": []}') == 4 + 1024
    assert estimate_body_tokens(b'{"max_tokens" : 7}') == 4 + 7
    assert estimate_body_tokens(b'{"max_tokens": "lots"}') == 5 + 1024


@pytest.fixture(name="slow_upstream")
async def _slow_upstream() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream(models=[MODEL], script=Script(tokens=20, delay_s=0.02)) as up:
        yield up


async def test_a_client_leaving_mid_stream_frees_its_concurrency(
    slow_upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    async with make_app(limited(slow_upstream, concurrent_requests=1)) as app:
        client = app.test_client()
        async with client.request(FRONTEND_CHAT, method="POST", headers=auth(token)) as connection:
            await connection.send(orjson.dumps(chat_body()))
            await connection.send_complete()
            assert (await connection.receive()).startswith(b"data: ")
            await connection.disconnect()
        deadline = time.monotonic() + 1.0
        while True:
            response = await client.post(FRONTEND_CHAT, json=chat_body(), headers=auth(token))
            if response.status_code == 200:
                break
            assert response.status_code == 429 and time.monotonic() < deadline
            await asyncio.sleep(0.02)


async def test_the_model_list_answers_while_completions_are_rate_limited(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    async with make_app(limited(upstream, requests_per_minute=3)) as app:
        client = app.test_client()
        for _ in range(10):  # the frontend polls: none of it spends the request budget
            assert (await client.get(MODELS, headers=auth(token))).status_code == 200
            assert (await client.get(STATUS)).status_code == 200
        for _ in range(3):
            assert (await chat(client, token)).status_code == 200
        await assert_rate_limited(await chat(client, token), "requests")
        models = await client.get(MODELS, headers=auth(token))
        assert models.status_code == 200
        assert [m["id"] for m in (await models.get_json())["data"]] == [MODEL]
        status = await client.get(STATUS)
        assert status.status_code == 200 and (await status.get_json())["busy"] is False


async def test_model_list_floods_meet_a_bucket_of_their_own(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    async with make_app(limited(upstream, requests_per_minute=2)) as app:  # reads: 10 x 2
        client = app.test_client()
        for expected in range(19, -1, -1):
            response = await client.get(MODELS, headers=auth(token))
            assert response.status_code == 200
            assert response.headers["RateLimit-Remaining"] == str(expected)
            assert response.headers["RateLimit-Policy"] == '20;w=60;name="reads"'
        refused = await client.get(MODELS, headers=auth(token))
        body = await assert_rate_limited(refused, "reads")
        assert body["detail"]["quota"] == 20 and refused.headers["Retry-After"] == "3"
        assert "20 model-list or status reads per minute" in body["error"]
        # The flood spent no request: completions still pass, and others read on.
        assert (await chat(client, token)).status_code == 200
        other = mint_token(SECRET.encode(), "bob")
        assert (await client.get(MODELS, headers=auth(other))).status_code == 200


async def test_reads_have_their_own_setting(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    async with make_app(limited(upstream, reads_per_minute=2)) as app:  # requests unlimited
        client = app.test_client()
        for _ in range(2):
            assert (await client.get(MODELS, headers=auth(token))).status_code == 200
        await assert_rate_limited(await client.get(MODELS, headers=auth(token)), "reads")
        response = await chat(client, token)
        assert response.status_code == 200 and "RateLimit-Limit" not in response.headers


async def test_status_is_guarded_per_address_only_when_configured(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    def poll(client: Any, address: str) -> Any:
        return client.get(STATUS, scope_base={"client": (address, 40000)})

    async with make_app(limited(upstream, requests_per_minute=1)) as app:
        client = app.test_client()
        for _ in range(30):  # default: behind a proxy every frontend shares one address
            response = await poll(client, "10.0.0.1")
            assert response.status_code == 200 and "RateLimit-Limit" not in response.headers
    async with make_app(limited(upstream, address_reads_per_minute=3)) as app:
        client = app.test_client()
        for _ in range(3):
            assert (await poll(client, "10.0.0.1")).status_code == 200
        await assert_rate_limited(await poll(client, "10.0.0.1"), "reads")
        assert (await poll(client, "10.0.0.2")).status_code == 200
