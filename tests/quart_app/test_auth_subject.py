"""Who a token names: the whole subject, string or integer, or a 401 (issue 14, point 9)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
from quart import Quart
from quart.testing.connections import WebsocketDisconnectError

from quart_app.auth import MAX_USER_ID_CHARS
from quart_app.auth import TokenVerifier
from quart_app.errors import APIError
from testing.upstream import ScriptedUpstream
from tests.conftest import CHAT
from tests.conftest import SECRET
from tests.conftest import chat_body
from tests.conftest import stream

CREDITS = "/api/credits/me"
WS = "/api/streaming_agent/scenario/ws"


def token_for(**claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 600, **claims}, SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def credits_of(app: Quart, token: str) -> dict[str, Any]:
    response = await app.test_client().get(CREDITS, headers=bearer(token))
    assert response.status_code == 200, await response.get_data()
    body: dict[str, Any] = await response.get_json()
    return body


async def test_long_subjects_that_share_128_characters_are_different_users(
    app: Quart, upstream: ScriptedUpstream
) -> None:
    common = "u" * 128
    first, second = token_for(sub=common + "-first"), token_for(sub=common + "-second")
    for token in (first, first, second):  # both are welcomed; the first spends twice
        status, _, _ = await stream(app, CHAT, chat_body(), bearer(token))
        assert status == 200
    await app.extensions["storywriter.services"].settlements.drain()
    one, other = await credits_of(app, first), await credits_of(app, second)
    assert (one["user"], other["user"]) == (common + "-first", common + "-second")
    assert (len(one["usage"]), len(other["usage"])) == (2, 1)
    assert one["balance"] < other["balance"], "one user's spending reached the other"


@pytest.mark.parametrize("claim", ["sub", "identity"])
async def test_a_subject_over_the_maximum_is_refused_not_cut(app: Quart, claim: str) -> None:
    at_limit = token_for(**{claim: "x" * MAX_USER_ID_CHARS})
    assert (await credits_of(app, at_limit))["user"] == "x" * MAX_USER_ID_CHARS
    too_long = token_for(**{claim: "x" * (MAX_USER_ID_CHARS + 1)})
    response = await app.test_client().get(CREDITS, headers=bearer(too_long))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.get_json()
    assert body["code"] == "INVALID_TOKEN" and str(MAX_USER_ID_CHARS) in body["error"]


async def test_a_too_long_sub_does_not_fall_back_to_identity(app: Quart) -> None:
    token = token_for(sub="x" * (MAX_USER_ID_CHARS + 1), identity="alice")
    response = await app.test_client().get(CREDITS, headers=bearer(token))
    assert response.status_code == 401


async def test_an_integer_sub_names_the_user(app: Quart) -> None:
    assert (await credits_of(app, token_for(sub=42)))["user"] == "42"


async def test_identity_is_the_fallback(app: Quart) -> None:
    assert (await credits_of(app, token_for(identity="bob")))["user"] == "bob"
    assert (await credits_of(app, token_for(identity=7)))["user"] == "7"
    assert (await credits_of(app, token_for(sub="", identity="carol")))["user"] == "carol"
    assert (await credits_of(app, token_for(sub=["x"], identity="dave")))["user"] == "dave"


@pytest.mark.parametrize(
    "claims",
    [{}, {"sub": ""}, {"sub": True}, {"sub": 1.5}, {"sub": None}, {"sub": {"id": 1}}],
)
async def test_a_token_naming_no_user_is_401(app: Quart, claims: dict[str, Any]) -> None:
    response = await app.test_client().get(CREDITS, headers=bearer(token_for(**claims)))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.get_json())["code"] == "INVALID_TOKEN"


def test_the_verifier_remembers_the_whole_subject() -> None:
    verifier = TokenVerifier(SECRET.encode(), leeway_s=0, development=False)
    long_sub = "s" * 200
    token = token_for(sub=long_sub)
    assert verifier.user_for_token(token) == long_sub
    assert verifier.user_for_token(token) == long_sub  # from the cache
    assert verifier.user_for_token(token_for(sub=12345)) == "12345"
    with pytest.raises(APIError) as refused:
        verifier.user_for_token(token_for(sub="s" * (MAX_USER_ID_CHARS + 1)))
    assert refused.value.status_code == 401


async def test_websocket_sessions_take_the_whole_subject(app: Quart) -> None:
    """The WebSocket authenticates through the same verifier (``user_for_token``)."""
    for claims, user in (({"sub": 42}, "42"), ({"sub": "w" * 200}, "w" * 200)):
        async with app.test_client().websocket(f"{WS}?token={token_for(**claims)}") as ws:
            ready = await ws.receive_json()
        assert (ready["type"], ready["status"], ready["user"]) == ("session", "ready", user)
    too_long = token_for(sub="w" * (MAX_USER_ID_CHARS + 1))
    async with app.test_client().websocket(f"{WS}?token={too_long}") as ws:
        with pytest.raises(WebsocketDisconnectError) as closed:
            async with asyncio.timeout(10):
                await ws.receive()
    assert closed.value.args[0] == 1008
