"""The console's data endpoints over HTTP: admins only, real answers matching their models."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from quart import Quart

from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from blueprints.console import ASSETS
from blueprints.console_models import AccountResponse
from blueprints.console_models import CancelResponse
from blueprints.console_models import ConsoleMe
from blueprints.console_models import ConsoleSnapshot
from blueprints.console_models import GrantResponse
from blueprints.console_models import ProviderReadiness
from blueprints.console_models import StreamsResponse
from blueprints.console_models import TopUsersResponse
from quart_app.auth import mint_token
from quart_app.operations import OPERATIONS_KEY
from quart_app.operations import Operations
from tests.conftest import FRONTEND_CHAT
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import read_writes
from tests.conftest import settings_for
from tests.conftest import stream

CONSOLE = {
    "admin_users": ["root"],
    "admin_role": "admin",
    "push_interval_s": 0.1,
    "sample_interval_s": 0.1,
}
DATA = [
    ("GET", "/api/console/me"),
    ("GET", "/api/console/pool"),
    ("GET", "/api/console/live"),
    ("GET", "/api/console/streams"),
    ("POST", "/api/console/streams/abc-1/cancel"),
    ("GET", "/api/console/users"),
    ("GET", "/api/console/account?user=alice"),
    ("POST", "/api/console/grants"),
]


def _token(user: str, *roles: str) -> str:
    return mint_token(SECRET.encode(), user, roles=roles)


ROOT = auth(_token("root"))


@pytest.fixture(name="console_app")
async def _console_app(upstream: ScriptedUpstream, make_app: AppFactory) -> AsyncIterator[Quart]:
    async with make_app(settings_for(upstream, console=CONSOLE)) as app:
        yield app


async def _json(app: Quart, method: str, path: str, **kwargs: Any) -> Any:
    response = await app.test_client().open(path, method=method, **kwargs)
    assert response.status_code == 200, await response.get_data()
    return await response.get_json()


async def test_everyone_but_an_admin_is_refused(console_app: Quart) -> None:
    client = console_app.test_client()
    member = auth(_token("alice", "writer"))
    for method, path in DATA:
        refused = await client.open(path, method=method, headers=member, json={})
        assert refused.status_code == 403, path
        body = await refused.get_json()
        assert body["code"] == "FORBIDDEN" and body["error"]
        assert (await client.open(path, method=method)).status_code == 401, path
    for admin in (ROOT, auth(_token("alice", "admin"))):
        me = ConsoleMe.model_validate(
            await _json(console_app, "GET", "/api/console/me", headers=admin)
        )
        assert me.credits and me.push_interval_s == 0.1


async def test_nobody_is_an_admin_until_configured(app: Quart) -> None:
    refused = await app.test_client().get("/api/console/me", headers=ROOT)
    assert refused.status_code == 403
    assert "admin_users or admin_role" in (await refused.get_json())["error"]


async def test_the_page_and_its_assets_are_static_and_locked_down(console_app: Quart) -> None:
    client = console_app.test_client()
    page = await client.get("/console")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    html = (await page.get_data()).decode()
    # No CDN: everything the page loads comes from the service (it works offline).
    assert re.findall(r'(?:src|href)="([^"]*)"', html) == [
        "data:,",
        "/console/assets/console.css",
        "/console/assets/console.js",
    ]
    for name, media in ASSETS.items():
        asset = await client.get(f"/console/assets/{name}")
        assert asset.status_code == 200 and asset.content_type == media
        assert f"assets/{name}" in html or name == "sample-scenario.json"
    missing = await client.get("/console/assets/..%2Fconsole.py")
    assert missing.status_code == 404 and (await missing.get_json())["code"] == "NOT_FOUND"


async def test_the_pool_shows_slots_models_readiness_and_the_windowed_ttft(
    console_app: Quart, token: str
) -> None:
    status, _, writes = await stream(console_app, FRONTEND_CHAT, chat_body(), auth(token))
    assert status == 200 and frames(writes)[-1] == b"[DONE]"
    snapshot = ConsoleSnapshot.model_validate(
        await _json(console_app, "GET", "/api/console/pool", headers=ROOT)
    )
    [provider] = snapshot.providers
    assert (provider.name, provider.kind, provider.models) == (
        "scripted",
        "openai-compatible",
        [MODEL],
    )
    assert (provider.slots_in_use, provider.slots_total, provider.busy) == (0, 2, False)
    assert provider.readiness == ProviderReadiness(state="up", detail=None)
    assert provider.streams == 1 and provider.errors == 0 and provider.error_rate == 0
    assert provider.ttft_p50_ms is not None and provider.ttft_p95_ms is not None
    assert snapshot.streams == [] and snapshot.window_s == 300


async def test_a_stream_is_listed_then_cancelled_by_an_admin(
    console_app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    upstream.script = Script(tokens=400, delay_s=0.02)
    client = console_app.test_client()
    async with client.request(FRONTEND_CHAT, method="POST", headers=auth(token)) as conn:
        await conn.send(orjson.dumps(chat_body(max_tokens=500)))
        await conn.send_complete()
        first = await conn.receive()
        listed = StreamsResponse.model_validate(
            await _json(console_app, "GET", "/api/console/streams", headers=ROOT)
        )
        [row] = listed.streams
        assert (row.user, row.provider, row.model, row.mode) == (
            "alice",
            "scripted",
            MODEL,
            "stream",
        )
        assert listed.streams_total == 1 and not row.byok and row.chunks >= 1
        pool = ConsoleSnapshot.model_validate(
            await _json(console_app, "GET", "/api/console/pool", headers=ROOT)
        )
        assert pool.providers[0].slots_in_use == 1
        assert [s.id for s in pool.streams] == [row.id]
        path = f"/api/console/streams/{row.id}/cancel"
        done = CancelResponse.model_validate(await _json(console_app, "POST", path, headers=ROOT))
        assert done.id == row.id
        writes = [first, *await read_writes(conn)]
    assert orjson.loads(frames(writes)[-1])["error"]["type"] == "cancelled"
    again = await client.post(path, headers=ROOT)
    assert again.status_code == 404 and (await again.get_json())["code"] == "STREAM_NOT_FOUND"


async def test_grants_top_users_and_one_account(console_app: Quart, token: str) -> None:
    for _ in range(2):
        status, _, _ = await stream(console_app, FRONTEND_CHAT, chat_body(), auth(token))
        assert status == 200
    await console_app.extensions["storywriter.services"].settlements.drain()
    body = {"user": "alice", "amount": 500, "note": "support ticket 42"}
    granted = GrantResponse.model_validate(
        await _json(console_app, "POST", "/api/console/grants", headers=ROOT, json=body)
    )
    account = AccountResponse.model_validate(
        await _json(console_app, "GET", "/api/console/account?user=alice", headers=ROOT)
    )
    assert granted.balance == account.balance and granted.granted == 500
    assert [g.note for g in account.grants] == ["support ticket 42", "welcome credits"]
    assert account.grants[0].balance_after == granted.balance
    assert len(account.usage) == 2 and account.holds == []
    removed = await _json(
        console_app,
        "POST",
        "/api/console/grants",
        headers=ROOT,
        json={"user": "alice", "amount": -(10**9)},
    )
    assert removed["balance"] == 0  # the balance stops at 0, as with storywriter grant
    top = TopUsersResponse.model_validate(
        await _json(console_app, "GET", "/api/console/users?window_s=600&by=credits", headers=ROOT)
    )
    assert [u.user for u in top.users] == ["alice"] and top.users[0].requests == 2
    assert top.users[0].tokens == sum(u.prompt_tokens + u.completion_tokens for u in account.usage)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/console/grants", {"user": "alice", "amount": 0}),
        ("POST", "/api/console/grants", {"user": "", "amount": 5}),
        ("POST", "/api/console/grants", {"user": "alice", "amount": 10**13}),
        ("GET", "/api/console/users?by=vibes", None),
        ("GET", "/api/console/users?window_s=1", None),
        ("GET", "/api/console/account", None),
        ("GET", "/api/console/account?user=alice&limit=0", None),
    ],
)
async def test_bad_input_is_a_clear_400(
    console_app: Quart, method: str, path: str, body: dict[str, Any] | None
) -> None:
    refused = await console_app.test_client().open(path, method=method, headers=ROOT, json=body)
    assert refused.status_code == 400
    assert (await refused.get_json())["code"] == "INVALID_REQUEST"


async def test_the_live_feed_pushes_snapshots_and_ends_when_the_worker_drains(
    console_app: Quart,
) -> None:
    client = console_app.test_client()
    async with client.request("/api/console/live", method="GET", headers=ROOT) as conn:
        await conn.send_complete()
        first = await asyncio.wait_for(conn.receive(), 5)
        assert first.startswith(b"data: {") and first.endswith(b"\n\n")
        ConsoleSnapshot.model_validate_json(first[6:-2])
        second = await asyncio.wait_for(conn.receive(), 5)
        assert second == b": keep-alive\n\n"  # nothing changed
        operations: Operations = console_app.extensions[OPERATIONS_KEY]
        operations.lifecycle.begin_drain("test")
        assert await read_writes(conn, 5) in ([], [b": keep-alive\n\n"])
