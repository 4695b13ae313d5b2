"""Property-based fuzzing of the agent's WebSocket with arbitrary frames (hypothesis).

Whatever a client sends - text, bytes, invalid UTF-8, JSON of the wrong shape, huge values,
real turns in between - the session must answer with JSON text frames or close with a policy
or data code, never crash (1011) or hang, and a new session must still run a turn to its end
afterwards. The scripted upstream answers the agent's calls, so the turns really run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from quart import Quart
from quart.testing.connections import WebsocketDisconnectError
from quart.testing.connections import WebsocketResponseError

from testing.upstream import ScriptedUpstream
from tests.agent.frames import classification
from tests.agent.samples import SAMPLE
from tests.blueprints.agent_support import answer_with
from tests.conftest import AppFactory
from tests.conftest import settings_for

WS_PATH = "/api/streaming_agent/scenario/ws"
#: Normal, going away, unsupported data, invalid payload, policy, too big, try again later.
CLEAN_CLOSES = {1000, 1001, 1003, 1007, 1008, 1009, 1013}

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_turn_like = st.fixed_dictionaries(
    {},
    optional={
        "message": st.none() | st.integers() | st.text(max_size=60),
        "scenario": st.none()
        | st.integers()
        | st.text(max_size=10)
        | st.dictionaries(st.text(max_size=8), _json, max_size=4),
        "type": st.sampled_from(["message", "ping", "cancel", "reset", "auth", ""])
        | st.text(max_size=8),
        "token": st.text(max_size=20),
    },
)
#: A turn the agent runs (the scripted upstream answers it).
_turn = st.fixed_dictionaries(
    {
        "type": st.just("message"),
        "message": st.text(min_size=1, max_size=60),
        "scenario": st.none() | st.just(SAMPLE),
    }
)
_frame: st.SearchStrategy[str | bytes] = st.one_of(
    st.text(max_size=200),
    # Not empty: Quart's test client sends an empty binary frame without the "text" key,
    # which Quart itself cannot read (hypercorn always sends both keys).
    st.binary(min_size=1, max_size=200),
    st.just(b"\xff\xfe\xfd not utf-8"),
    _json.map(json.dumps),  # stdlib: integers beyond 64 bits are fair game
    _turn_like.map(json.dumps),
    _turn.map(json.dumps),
)
OFF = {"requests_per_minute": 0, "concurrent_requests": 0, "tokens_per_minute": 0}


@pytest.fixture(name="ws_app")
async def _ws_app(upstream: ScriptedUpstream, make_app: AppFactory) -> AsyncIterator[Quart]:
    """The app with the agent's calls answered; limits and credits off (not what is fuzzed)."""
    answer_with(
        upstream,
        {"classification": classification(("details", "scenario", "Explain"))},
        ["A ", "short ", "answer."],
    )
    async with make_app(settings_for(upstream, limits=OFF, credits={"enabled": False})) as app:
        routes = [r.rule for r in app.url_map.iter_rules() if r.websocket]
        assert WS_PATH in routes, f"the agent WebSocket {WS_PATH} is gone (routes: {routes})"
        yield app


def _ends_turn(frame: dict[str, Any]) -> bool:
    """The last frame of a turn: completed, failed with an error, or refused."""
    meta = frame.get("metadata", {})
    done = frame["type"] == "status" and (meta.get("status") == "completed" or "error" in meta)
    return done or frame["type"] == "error"


async def _one_turn(app: Quart, token: str) -> None:
    """A new session runs a turn to its end: the app still serves turns."""
    async with (
        asyncio.timeout(10),
        app.test_client().websocket(WS_PATH, query_string={"token": token}) as ws,
    ):
        assert orjson.loads(await ws.receive())["status"] == "ready"
        await ws.send(json.dumps({"type": "message", "message": "Explain", "scenario": SAMPLE}))
        frames: list[dict[str, Any]] = []
        while not frames or not _ends_turn(frames[-1]):
            frames.append(orjson.loads(await ws.receive()))
        assert frames[-1].get("metadata", {}).get("status") == "completed", frames[-1]
        assert "".join(f["content"] for f in frames if f["type"] == "chat") == "A short answer."


async def _session(app: Quart, token: str, frames: list[str | bytes]) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            asyncio.timeout(10),
            client.websocket(WS_PATH, headers=headers, query_string={"token": token}) as ws,
        ):
            for frame in frames:
                await ws.send(frame)
            # Messages are handled in order: the pong says every frame before it was.
            await ws.send('{"type": "ping"}')
            while True:  # until the pong, or until the server closes
                message = await ws.receive()
                assert isinstance(message, str), "answers are JSON text frames"
                if orjson.loads(message).get("type") == "pong":
                    return
    except WebsocketDisconnectError as closed:
        code = closed.args[0] if closed.args else 1000
        assert code in CLEAN_CLOSES, f"closed with {code}"
    except WebsocketResponseError as refused:
        assert refused.response.status_code < 500


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(_frame, min_size=1, max_size=4))
async def test_arbitrary_frames_never_crash_the_session(
    ws_app: Quart, token: str, frames: list[str | bytes]
) -> None:
    await _session(ws_app, token, frames)
    await _one_turn(ws_app, token)


async def test_turns_between_bad_frames_run_to_their_end(ws_app: Quart, token: str) -> None:
    turn = json.dumps({"type": "message", "message": "Explain", "scenario": SAMPLE})
    async with (
        asyncio.timeout(10),
        ws_app.test_client().websocket(WS_PATH, query_string={"token": token}) as ws,
    ):
        for frame in (b"\xff\xfe", turn, "[1, 2]", '{"type": "turn"}', turn):
            await ws.send(frame)
        answers: list[dict[str, Any]] = []
        while sum(_ends_turn(a) and a["type"] == "status" for a in answers) < 2:
            answers.append(orjson.loads(await ws.receive()))
    statuses = [a["metadata"]["status"] for a in answers if a["type"] == "status"]
    assert statuses.count("completed") == 2, answers
    assert [a["code"] for a in answers if a["type"] == "error"] == ["BAD_FRAME"] * 3


async def test_a_session_without_credentials_is_refused_cleanly(ws_app: Quart) -> None:
    client = ws_app.test_client()
    try:
        async with asyncio.timeout(5), client.websocket(WS_PATH) as ws:
            await ws.send('{"message": "hi"}')
            message: Any = await ws.receive()
            assert "error" in str(message).lower()
    except WebsocketDisconnectError as closed:
        assert closed.args[0] in CLEAN_CLOSES
    except WebsocketResponseError as refused:
        assert refused.response.status_code == 401
