"""Shared fixtures: a scripted upstream on loopback, an app wired to it, tokens, stream reading."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from quart import Quart
from quart.testing.connections import TestHTTPConnection
from quart.typing import TestHTTPConnectionProtocol

from quart_app import create_app
from quart_app.auth import mint_token
from quart_app.config import Settings
from testing.upstream import ScriptedUpstream

SECRET = "test-secret-that-is-long-enough-for-hs256"
MODEL = "scripted-model"
CHAT = "/api/proxy/llm/v1/chat/completions"
FRONTEND_CHAT = "/api/proxy/llm/v1/frontend/chat/completions"

AppFactory = Callable[..., AbstractAsyncContextManager[Quart]]


def require_services() -> bool:
    """CI sets this so that Redis/PostgreSQL tests fail instead of skipping."""
    return os.environ.get("STORYWRITER_REQUIRE_SERVICES") == "1"


def settings_for(upstream: ScriptedUpstream | None, **overrides: Any) -> Settings:
    """Settings pointing at the scripted upstream, with the embedded model off."""
    providers = overrides.pop("providers", None)
    if providers is None and upstream is not None:
        providers = [
            {
                "name": "scripted",
                "base_url": upstream.base_url,
                "models": [MODEL],
                "max_concurrency": 2,
                "price_prompt_per_1k": 0.5,
                "price_completion_per_1k": 1.5,
            }
        ]
    data: dict[str, Any] = {
        "auth": {"jwt_secret": SECRET},
        "embedded": {"enabled": False},
        "credits": {"database_url": "sqlite:///:memory:"},
        # A stream cut mid-answer is continued after this pause (0.25 s by default, doubled
        # each time): the error paths of the suite would each wait it out.
        "server": {"continuation_backoff_s": 0.01},
        "providers": providers or [],
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return Settings.model_validate(data)


@pytest.fixture(name="upstream")
async def _upstream() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream(models=[MODEL]) as upstream:
        yield upstream


@pytest.fixture(name="make_app")
def _make_app(tmp_path: Any) -> AppFactory:
    @asynccontextmanager
    async def factory(settings: Settings) -> AsyncIterator[Quart]:
        app = create_app(settings, freeze_heap=False)
        async with app.test_app():
            yield app

    return factory


@pytest.fixture(name="app")
async def _app(upstream: ScriptedUpstream, make_app: AppFactory) -> AsyncIterator[Quart]:
    async with make_app(settings_for(upstream)) as app:
        yield app


@pytest.fixture(name="token")
def _token() -> str:
    return mint_token(SECRET.encode(), "alice")


def auth(token: str, **extra: str) -> dict[str, str]:
    """Headers with the bearer token."""
    return {"Authorization": f"Bearer {token}", **extra}


def chat_body(**overrides: Any) -> dict[str, Any]:
    """A minimal valid chat request."""
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    body.update(overrides)
    return body


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = 5.0
) -> None:
    """Poll ``condition`` (sync or async) until it holds; fail naming ``what`` after the timeout.

    What a test waits for (a stream started, a request queued), instead of a sleep long
    enough on a quiet machine and too short on a busy one.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.005)


async def read_writes(connection: TestHTTPConnectionProtocol, limit_s: float = 10.0) -> list[bytes]:
    """Every body write of a streamed response, as the client received them."""
    writes: list[bytes] = []
    async with asyncio.timeout(limit_s):
        while True:
            data = await connection.receive()
            if data == b"":
                return writes
            writes.append(data)


def frames(writes: list[bytes]) -> list[bytes]:
    """The ``data:`` payloads of the writes (asserting the contract's framing)."""
    out: list[bytes] = []
    for write in writes:
        assert write.endswith(b"\n\n"), f"a write ends inside a frame: {write!r}"
        for event in write[:-2].split(b"\n\n"):
            assert event.startswith(b"data: "), event
            out.append(event[6:])
    return out


def content_of(payloads: list[bytes]) -> str:
    """The concatenated ``delta.content`` of the chunks."""
    text = []
    for payload in payloads:
        if payload == b"[DONE]":
            continue
        chunk = orjson.loads(payload)
        for choice in chunk.get("choices", []):
            text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text)


async def stream(
    app: Quart, path: str, body: dict[str, Any], headers: dict[str, str], limit_s: float = 10.0
) -> tuple[int, Any, list[bytes]]:
    """POST and collect the writes: (status, headers, writes)."""
    client = app.test_client()
    async with client.request(path, method="POST", headers=headers) as connection:
        await connection.send(orjson.dumps(body))
        await connection.send_complete()
        writes = await read_writes(connection, limit_s)
    assert isinstance(connection, TestHTTPConnection)  # Quart's protocol omits the status
    assert connection.status_code is not None
    return connection.status_code, connection.headers, writes
