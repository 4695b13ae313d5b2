"""Fair use of a full pool through the app: the last slot for a waiting user, the fair queue."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import orjson
from quart import Quart

from quart_app.auth import mint_token
from quart_app.config import Settings
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import stream
from tests.conftest import until

STATUS = "/api/proxy/llm/v1/status"


def pool_settings(upstream: ScriptedUpstream, capacity: int, **limits: Any) -> Settings:
    providers = [
        {
            "name": "scripted",
            "base_url": upstream.base_url,
            "models": [MODEL],
            "max_concurrency": capacity,
        }
    ]
    limits = {"requests_per_minute": 0, "concurrent_requests": 0, "tokens_per_minute": 0, **limits}
    return Settings.model_validate(
        {
            "auth": {"jwt_secret": SECRET},
            "embedded": {"enabled": False},
            "credits": {"enabled": False},
            "limits": limits,
            "providers": providers,
        }
    )


def user(name: str) -> dict[str, str]:
    return auth(mint_token(SECRET.encode(), name))


def tagged(tag: str) -> dict[str, Any]:
    return chat_body(messages=[{"role": "user", "content": tag}])


def upstream_order(upstream: ScriptedUpstream) -> list[str]:
    return [r.body["messages"][0]["content"] for r in upstream.chat_requests]


async def status(app: Quart) -> dict[str, Any]:
    return dict(await (await app.test_client().get(STATUS)).get_json())


def queued(app: Quart, count: int) -> Callable[[], Awaitable[bool]]:
    """A condition for ``until``: ``count`` requests wait in the (only) provider's queue."""

    async def check() -> bool:
        return bool((await status(app))["providers"][0]["queue_length"] == count)

    return check


async def let_go(holder: asyncio.Task[Any]) -> None:
    """The holder's client leaves (its stream has served its purpose): its slot comes back."""
    holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder
    assert holder.cancelled()


async def test_the_last_slot_goes_to_the_user_who_was_turned_away(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    # The second stream must outlast the first by a few requests: 0.3 s against 1 s.
    upstream.enqueue(Script(tokens=30, delay_s=0.01), Script(tokens=100, delay_s=0.01))
    async with make_app(pool_settings(upstream, capacity=2)) as app:
        client = app.test_client()
        first = asyncio.create_task(stream(app, FRONTEND_CHAT, chat_body(), user("alice")))
        await until(lambda: upstream.active_streams == 1, "the first stream runs")
        second = asyncio.create_task(stream(app, FRONTEND_CHAT, chat_body(), user("alice")))
        await until(lambda: upstream.active_streams == 2, "the second stream runs")
        assert (await status(app))["busy"] is True  # alone, alice may use every slot
        refused = await client.post(FRONTEND_CHAT, json=chat_body(), headers=user("bob"))
        assert refused.status_code == 409
        assert (await refused.get_json())["code"] == "AI_BUSY"
        assert (await first)[0] == 200
        # One slot is free again, but bob was turned away: alice may not take it back.
        again = await client.post(FRONTEND_CHAT, json=chat_body(), headers=user("alice"))
        assert again.status_code == 409
        bob = await stream(app, FRONTEND_CHAT, chat_body(), user("bob"))
        assert bob[0] == 200 and frames(bob[2])[-1] == b"[DONE]"
        assert (await second)[0] == 200


async def test_max_user_share_caps_a_user_even_alone(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    upstream.script = Script(tokens=30, delay_s=0.01)
    async with make_app(pool_settings(upstream, capacity=4, max_user_share=0.5)) as app:
        holds = [
            asyncio.create_task(stream(app, FRONTEND_CHAT, chat_body(), user("alice")))
            for _ in range(2)
        ]
        await until(lambda: upstream.active_streams == 2, "both streams run")
        third = await app.test_client().post(FRONTEND_CHAT, json=chat_body(), headers=user("alice"))
        assert third.status_code == 409
        body = await status(app)
        assert body["busy"] is False and body["providers"][0]["slots_in_use"] == 2
        assert [r[0] for r in await asyncio.gather(*holds)] == [200, 200]


async def test_by_default_a_full_pool_answers_409_at_once(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    upstream.script = Script(tokens=100, delay_s=0.01)
    async with make_app(pool_settings(upstream, capacity=1)) as app:
        holder = asyncio.create_task(stream(app, FRONTEND_CHAT, chat_body(), user("xavier")))
        await until(lambda: upstream.active_streams == 1, "the holder streams")
        started = time.monotonic()
        response = await app.test_client().post(
            FRONTEND_CHAT, json=chat_body(), headers=user("bob")
        )
        assert response.status_code == 409 and time.monotonic() - started < 0.5
        await let_go(holder)


async def test_waiting_requests_are_served_in_fair_order(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    upstream.script = Script(tokens=5, delay_s=0.02)
    upstream.enqueue(Script(tokens=25, delay_s=0.02))  # the holder's: 0.5 s
    async with make_app(pool_settings(upstream, capacity=1, queue_wait_s=10)) as app:
        holder = asyncio.create_task(stream(app, FRONTEND_CHAT, tagged("x"), user("xavier")))
        await until(lambda: upstream.active_streams == 1, "the holder streams")
        waiting = []
        for tag, name in (("a1", "alice"), ("a2", "alice"), ("a3", "alice"), ("b1", "bob")):
            waiting.append(asyncio.create_task(stream(app, FRONTEND_CHAT, tagged(tag), user(name))))
            await until(queued(app, len(waiting)), f"{tag} waits in the queue")
        assert (await status(app))["busy"] is True
        results = await asyncio.gather(holder, *waiting)
        assert all(r[0] == 200 and frames(r[2])[-1] == b"[DONE]" for r in results)
        assert upstream_order(upstream) == ["x", "a1", "b1", "a2", "a3"]
        assert (await status(app))["providers"][0]["queue_length"] == 0


async def test_a_bounded_wait_ends_in_409_and_leaves_the_queue(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    upstream.script = Script(tokens=100, delay_s=0.02)
    async with make_app(pool_settings(upstream, capacity=1, queue_wait_s=0.2, queue_max=1)) as app:
        holder = asyncio.create_task(stream(app, FRONTEND_CHAT, chat_body(), user("xavier")))
        await until(lambda: upstream.active_streams == 1, "the holder streams")
        client = app.test_client()
        started = time.monotonic()
        waiting = asyncio.create_task(
            client.post(FRONTEND_CHAT, json=chat_body(), headers=user("bob"))
        )
        await until(queued(app, 1), "bob waits in the queue")
        full = await client.post(FRONTEND_CHAT, json=chat_body(), headers=user("carol"))
        waited = await waiting
        assert waited.status_code == 409 and 0.2 <= time.monotonic() - started < 1.2
        assert full.status_code == 409  # the queue (max 1) was full: answered at once
        assert (await status(app))["providers"][0]["queue_length"] == 0
        await let_go(holder)


async def test_a_waiter_that_disconnects_leaves_the_queue(
    upstream: ScriptedUpstream, make_app: AppFactory
) -> None:
    upstream.script = Script(tokens=20, delay_s=0.02)
    async with make_app(pool_settings(upstream, capacity=1, queue_wait_s=10)) as app:
        holder = asyncio.create_task(stream(app, FRONTEND_CHAT, chat_body(), user("xavier")))
        await until(lambda: upstream.active_streams == 1, "the holder streams")
        client = app.test_client()
        async with client.request(FRONTEND_CHAT, method="POST", headers=user("bob")) as connection:
            await connection.send(orjson.dumps(chat_body()))
            await connection.send_complete()
            await until(queued(app, 1), "bob waits in the queue")
            await connection.disconnect()
        await until(queued(app, 0), "bob's place in the queue is given up")
        await holder
