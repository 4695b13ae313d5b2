"""Credits through the service: 402 before streaming, settled on every ending, BYOK free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
from quart import Quart

from credits import Ledger
from credits.pricing import credits_for
from providers import tokens
from quart_app.auth import mint_token
from quart_app.services import get_services
from testing.upstream import Fault
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import CHAT
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import settings_for
from tests.conftest import stream

MULTIPLIER = 1.0


@asynccontextmanager
async def billed_app(
    make_app: AppFactory,
    upstream: ScriptedUpstream,
    url: str,
    sections: dict[str, dict[str, object]] | None = None,
    **overrides: object,
) -> AsyncIterator[Quart]:
    """The app on ``url`` (``overrides`` go to ``[credits]``, ``sections`` to the others)."""
    providers = [
        {
            "name": "scripted",
            "base_url": upstream.base_url,
            "models": [MODEL],
            "max_concurrency": 64,
            "credit_multiplier": MULTIPLIER,
        }
    ]
    credits = {"database_url": url, "welcome_credits": 0, **overrides}
    # One user sends 50 requests at once here: the per-user concurrency limit (8 by default,
    # tested in tests/quart_app/test_ratelimit.py) would answer 429 before credits are checked.
    limits = {"concurrent_requests": 0}
    settings = settings_for(
        upstream, providers=providers, credits=credits, limits=limits, **(sections or {})
    )
    async with make_app(settings) as app:
        yield app


def ledger_of(app: Quart) -> Ledger:
    ledger = app.extensions["storywriter.services"].ledger
    assert isinstance(ledger, Ledger)
    return ledger


async def settled(app: Quart) -> None:
    """Wait for background settlements."""
    async with app.app_context():
        gateway = get_services().gateway
    await gateway.drain()  # settlements counting tokens, then the ledger's writes


def final_usage(writes: list[bytes]) -> dict[str, int]:
    return dict(orjson.loads(frames(writes)[-2])["usage"])


async def test_no_credits_is_402_before_the_upstream_is_called(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    async with billed_app(make_app, upstream, ledger_url) as app:
        for path in (CHAT, FRONTEND_CHAT):
            response = await app.test_client().post(path, json=chat_body(), headers=auth(token))
            assert response.status_code == 402
            body = await response.get_json()
            assert body["code"] == "INSUFFICIENT_CREDITS" and body["error"]
        assert upstream.chat_requests == []


async def test_success_charges_actual_usage_and_releases_the_rest(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    upstream.script = Script(tokens=10)
    async with billed_app(make_app, upstream, ledger_url) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 5000)
        status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(max_tokens=100), auth(token))
        assert status == 200
        usage = final_usage(writes)
        await settled(app)
        charged = credits_for(usage["prompt_tokens"], usage["completion_tokens"], MULTIPLIER)
        balance = await ledger.balance("alice")
        assert (balance.balance, balance.reserved) == (5000 - charged, 0)
        me = await (await app.test_client().get("/api/credits/me", headers=auth(token))).get_json()
        assert me["available"] == 5000 - charged
        assert me["usage"][0]["status"] == "completed"
        assert me["usage"][0]["credits"] == charged
        assert me["usage"][0]["completion_tokens"] == 10


async def test_non_streamed_json_is_charged(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    async with billed_app(make_app, upstream, ledger_url) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 5000)
        response = await app.test_client().post(
            CHAT, json=chat_body(stream=False), headers=auth(token, Accept="application/json")
        )
        answer = await response.get_json()
        await settled(app)
        assert (await ledger.balance("alice")).balance == 5000 - answer["cost"]["credits"]


@pytest.mark.parametrize(
    ("script", "status", "ending"),
    [
        (Script(fault=Fault("http_status", status=500)), 502, "upstream_error"),
        (Script(tokens=10, fault=Fault("reset_mid_stream", after_chunks=4)), 200, "upstream_error"),
    ],
)
async def test_upstream_errors_charge_only_what_was_generated(
    make_app: AppFactory,
    upstream: ScriptedUpstream,
    ledger_url: str,
    token: str,
    script: Script,
    status: int,
    ending: str,
) -> None:
    upstream.script = script
    async with billed_app(make_app, upstream, ledger_url) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 5000)
        # One attempt only: continuing the answer would generate (and charge) more.
        headers = auth(token, **{"X-Stream-Continuation": "off"})
        response = await app.test_client().post(FRONTEND_CHAT, json=chat_body(), headers=headers)
        assert response.status_code == status
        await response.get_data()
        await settled(app)
        [row] = await ledger.recent_usage("alice")
        assert row.status == ending
        balance = await ledger.balance("alice")
        assert balance.reserved == 0
        if status == 502:
            assert row.credits == 0 and balance.balance == 5000
        else:
            assert row.completion_tokens == 4  # the 4 chunks the user received
            assert row.credits == credits_for(row.prompt_tokens, 4, MULTIPLIER)
            assert balance.balance == 5000 - row.credits


async def test_client_disconnect_is_settled_for_what_was_generated(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    upstream.script = Script(tokens=500, delay_s=0.01)
    async with billed_app(make_app, upstream, ledger_url) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 5000)
        client = app.test_client()
        async with client.request(FRONTEND_CHAT, method="POST", headers=auth(token)) as conn:
            await conn.send(orjson.dumps(chat_body(max_tokens=1000)))
            await conn.send_complete()
            for _ in range(3):
                await conn.receive()
            await conn.disconnect()
        await upstream.wait_for_disconnect(timeout=1.0)
        await settled(app)
        [row] = await ledger.recent_usage("alice")
        assert row.status in ("client_disconnect", "cancelled")
        assert 1 <= row.completion_tokens < 500
        balance = await ledger.balance("alice")
        assert balance.reserved == 0
        assert balance.balance == 5000 - credits_for(
            row.prompt_tokens, row.completion_tokens, MULTIPLIER
        )


@pytest.mark.parametrize("route", [FRONTEND_CHAT, CHAT])
async def test_first_disconnect_without_usage_loads_the_tokenizer_off_the_loop(
    make_app: AppFactory,
    upstream: ScriptedUpstream,
    ledger_url: str,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
) -> None:
    # A worker that has never needed the tokenizer (it loads on first need, ~40 MiB): the
    # first stream it must count is cut by the client. Its settlement waits for the load
    # (in a thread) instead of stalling the loop or being lost, and counts exactly.
    monkeypatch.setattr(tokens, "_loaded", {})
    upstream.script = Script(tokens=500, delay_s=0.01, usage="never")
    async with billed_app(make_app, upstream, ledger_url) as app:
        ledger = ledger_of(app)
        await ledger.grant("alice", 5000)
        client = app.test_client()
        body = chat_body(max_tokens=1000)
        async with client.request(route, method="POST", headers=auth(token)) as conn:
            await conn.send(orjson.dumps(body))
            await conn.send_complete()
            received = b""
            while received.count(b"data: ") < 3:
                received += await conn.receive()
            assert not tokens.tokenizer_loaded(MODEL), "nothing needed counting yet"
            await conn.disconnect()
        await upstream.wait_for_disconnect(timeout=1.0)
        await settled(app)
        [row] = await ledger.recent_usage("alice")
        assert row.status in ("client_disconnect", "cancelled")
        assert tokens.tokenizer_loaded(MODEL)
        assert row.prompt_tokens == tokens.count_message_tokens(body["messages"], MODEL)
        assert 3 <= row.completion_tokens < 500
        balance = await ledger.balance("alice")
        assert balance.reserved == 0
        assert balance.balance == 5000 - row.credits


async def test_json_answer_without_usage_is_counted_by_the_tokenizer(
    make_app: AppFactory,
    upstream: ScriptedUpstream,
    ledger_url: str,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "_loaded", {})
    upstream.script = Script(pieces=["hello", " world"], usage="never")
    async with billed_app(make_app, upstream, ledger_url) as app:
        await ledger_of(app).grant("alice", 5000)
        body = chat_body(stream=False)
        headers = auth(token, Accept="application/json")
        status, _, writes = await stream(app, CHAT, body, headers)
        assert status == 200
        answer = orjson.loads(b"".join(writes))
        prompt = tokens.count_message_tokens(body["messages"], MODEL)
        assert answer["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": 2,
            "total_tokens": prompt + 2,
        }
        await settled(app)
        [row] = await ledger_of(app).recent_usage("alice")
        assert (row.prompt_tokens, row.completion_tokens) == (prompt, 2)
        assert answer["cost"]["credits"] == row.credits == credits_for(prompt, 2, MULTIPLIER)


async def test_byok_is_free_but_logged(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    async with billed_app(make_app, upstream, ledger_url) as app:
        app.extensions["storywriter.services"].byok_policy = type(
            app.extensions["storywriter.services"].byok_policy
        )(allow_private=True)
        headers = auth(
            token,
            **{"X-BYOK-API-Key": "sk-own-0123456789abcdef", "X-BYOK-Base-URL": upstream.base_url},
        )
        status, _, _ = await stream(app, FRONTEND_CHAT, chat_body(), headers)
        assert status == 200, "BYOK needs no balance"
        await settled(app)
        [row] = await ledger_of(app).recent_usage("alice")
        assert row.byok and row.credits == 0
        assert (await ledger_of(app).balance("alice")).balance == 0


async def test_fifty_concurrent_requests_never_overdraw(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str
) -> None:
    upstream.script = Script(tokens=20, delay_s=0.005)
    token = mint_token(SECRET.encode(), "bob")
    async with billed_app(make_app, upstream, ledger_url) as app:
        ledger = ledger_of(app)
        body = chat_body(max_tokens=100)
        # Find the estimate of one request, then grant exactly ten of them.
        probe = await app.test_client().post(FRONTEND_CHAT, json=body, headers=auth(token))
        needed = (await probe.get_json())["detail"]["needed"]
        await ledger.grant("bob", 10 * needed)

        async def one() -> tuple[int, bytes]:
            client = app.test_client()
            response = await client.post(FRONTEND_CHAT, json=body, headers=auth(token))
            return response.status_code, await response.get_data(as_text=False)

        results = await asyncio.gather(*(one() for _ in range(50)))
        await settled(app)
        statuses = [status for status, _ in results]
        assert set(statuses) <= {200, 402}
        assert statuses.count(200) >= 10
        balance = await ledger.balance("bob")
        assert balance.reserved == 0 and balance.balance >= 0
        rows = await ledger.recent_usage("bob", limit=100)
        assert len(rows) == statuses.count(200)
        assert len({r.request_id for r in rows}) == len(rows), "each request logged once"
        assert sum(r.credits for r in rows) == 10 * needed - balance.balance, "charged once each"


async def test_new_user_gets_welcome_credits_once(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str, token: str
) -> None:
    async with billed_app(make_app, upstream, ledger_url, welcome_credits=5000) as app:
        for _ in range(2):
            status, _, _ = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
            assert status == 200
        await settled(app)
        rows = await ledger_of(app).recent_usage("alice")
        balance = await ledger_of(app).balance("alice")
        assert len(rows) == 2
        assert balance.balance == 5000 - sum(r.credits for r in rows)


async def test_concurrent_first_requests_all_get_the_welcome_credits(
    make_app: AppFactory, upstream: ScriptedUpstream, ledger_url: str
) -> None:
    token = mint_token(SECRET.encode(), "newcomer")
    async with billed_app(make_app, upstream, ledger_url, welcome_credits=50_000) as app:

        async def one() -> int:
            response = await app.test_client().post(
                FRONTEND_CHAT, json=chat_body(), headers=auth(token)
            )
            await response.get_data()
            return response.status_code

        assert await asyncio.gather(*(one() for _ in range(5))) == [200] * 5
        await settled(app)
        rows = await ledger_of(app).recent_usage("newcomer")
        balance = await ledger_of(app).balance("newcomer")
        assert balance.balance == 50_000 - sum(r.credits for r in rows)
