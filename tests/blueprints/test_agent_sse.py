"""The scenario agent over SSE through the real pool, a scripted HTTP upstream and credits."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import orjson
import pytest
from quart import Quart

from agent.scenario import Scenario
from bench.upstream import Fault
from bench.upstream import Script
from bench.upstream import ScriptedUpstream
from tests.agent.frames import classification
from tests.agent.samples import SAMPLE
from tests.blueprints.agent_support import AGENT
from tests.blueprints.agent_support import STATUSES
from tests.blueprints.agent_support import agent_frames
from tests.blueprints.agent_support import answer_with
from tests.blueprints.agent_support import apply
from tests.blueprints.agent_support import refusal
from tests.blueprints.agent_support import rename_mira_to_ann
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import settings_for
from tests.conftest import stream

HEALTH = "/api/streaming_agent/scenario/stream/health"


def sample() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE)


async def test_health_is_healthy_with_a_provider(app: Quart) -> None:
    response = await app.test_client().get(HEALTH)
    assert response.status_code == 200
    assert (await response.get_json())["status"] == "healthy"


async def test_health_is_unhealthy_without_providers(make_app: AppFactory) -> None:
    async with make_app(settings_for(None)) as app:
        response = await app.test_client().get(HEALTH)
        assert response.status_code == 503
        assert (await response.get_json())["status"] == "unhealthy"


async def test_modify_and_explain_turn_frame_sequence(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    rename_mira_to_ann(upstream, delay_s=0.005)
    scenario = sample()
    status, headers, writes = await stream(
        app,
        AGENT,
        {"message": "Rename Mira to Ann and describe her", "scenario": scenario},
        auth(token),
    )
    assert status == 200
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    frames = agent_frames(writes)
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "status"
    assert kinds.count("tool_call") == 1
    tool_at = kinds.index("tool_call")
    streamed = [f for f in frames[:tool_at] if f["type"] == "chat" and f["streaming"]]
    assert len(streamed) >= 4, "prose streams token by token"
    follow = frames[-2]
    assert follow["type"] == "chat" and follow["metadata"]["final"] is True
    assert len(follow["metadata"]["follow_up_questions"]) == 3
    assert kinds.index("tool_call") < len(frames) - 2
    assert frames[-1] == {
        "type": "status",
        "content": "completed",
        "metadata": {"status": "completed"},
    }
    changes = frames[tool_at]["metadata"]["tool_call"]["parameters"]["updated_scenario"]
    assert set(changes) == {"characters"}
    after = apply(scenario, frames)
    Scenario.model_validate(after)
    by_id = {c["id"]: c for c in after["characters"]}
    assert by_id["legacy-id-mira"]["name"] == "Ann"
    assert by_id["legacy-id-mira"]["photo_data"] == scenario["characters"][1]["photo_data"]
    assert [c["id"] for c in after["characters"]] == [c["id"] for c in scenario["characters"]]
    assert {k: v for k, v in after.items() if k != "characters"} == {
        k: v for k, v in scenario.items() if k != "characters"
    }


async def test_create_supporting_character_adds_exactly_one(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    answer_with(
        upstream,
        {
            "classification": classification(
                ("creation", "character", "Create a new supporting character")
            ),
            "new_character": json.dumps(
                {
                    "name": "Tobin Reed",
                    "role": "supporting",
                    "gender": "male",
                    "appearance": "Tall.",
                    "backstory": "A ferryman.",
                }
            ),
        },
        ["Added ", "Tobin."],
    )
    scenario = sample()
    _, _, writes = await stream(
        app,
        AGENT,
        {"message": "Create a new supporting character", "scenario": scenario},
        auth(token),
    )
    frames = agent_frames(writes)
    after = apply(scenario, frames)
    Scenario.model_validate(after)
    assert len(after["characters"]) == len(scenario["characters"]) + 1
    new = after["characters"][-1]
    assert new["name"] == "Tobin Reed"
    assert uuid.UUID(new["id"]).version == 4
    assert after["characters"][:-1] == scenario["characters"]
    assert frames[-1]["metadata"]["status"] == "completed"


async def test_upstream_failure_mid_turn_ends_with_error_pair(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    answer_with(
        upstream,
        {"classification": classification(("details", "scenario", "Explain the story"))},
        [],
    )
    prose_failure = Script(tokens=20, fault=Fault("reset_mid_stream", after_chunks=3))
    base = upstream.responder
    assert base is not None
    upstream.responder = lambda body: prose_failure if body.get("stream") else base(body)
    _, _, writes = await stream(
        app, AGENT, {"message": "Explain the story", "scenario": sample()}, auth(token)
    )
    frames = agent_frames(writes)
    assert frames[-2]["type"] == "chat" and frames[-2]["streaming"] is False
    assert frames[-2]["content"]
    assert frames[-1]["type"] == "status"
    assert frames[-1]["metadata"]["status"] == "error" and frames[-1]["metadata"]["error"]
    assert all(f["type"] != "tool_call" for f in frames)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{}", 400),
        (b'{"message": ""}', 400),
        (b'{"message": "hi", "scenario": [1]}', 400),
        (b"not json", 400),
    ],
)
async def test_bad_agent_bodies_are_400(app: Quart, token: str, raw: bytes, status: int) -> None:
    response = await app.test_client().post(
        AGENT, data=raw, headers=auth(token), query_string=STATUSES
    )
    assert response.status_code == status
    assert (await response.get_json())["code"] == "INVALID_REQUEST"
    in_band = await app.test_client().post(AGENT, data=raw, headers=auth(token))
    assert await refusal(in_band) == ("INVALID_REQUEST", None)


async def test_agent_needs_auth(app: Quart) -> None:
    response = await app.test_client().post(AGENT, json={"message": "hi"}, query_string=STATUSES)
    assert response.status_code == 401
    in_band = await app.test_client().post(AGENT, json={"message": "hi"})
    assert await refusal(in_band) == ("MISSING_TOKEN", None)


async def test_agent_answers_409_when_pool_is_full(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    providers = [
        {"name": "one", "base_url": upstream.base_url, "models": [MODEL], "max_concurrency": 1}
    ]
    upstream.script = Script(tokens=200, delay_s=0.01)
    async with make_app(settings_for(upstream, providers=providers)) as app:
        client = app.test_client()
        async with client.request(
            "/api/proxy/llm/v1/frontend/chat/completions", method="POST", headers=auth(token)
        ) as holder:
            await holder.send(
                orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
            )
            await holder.send_complete()
            await holder.receive()
            response = await client.post(
                AGENT, json={"message": "hi"}, headers=auth(token), query_string=STATUSES
            )
            assert response.status_code == 409
            assert (await response.get_json())["code"] == "AI_BUSY"
            in_band = await client.post(AGENT, json={"message": "hi"}, headers=auth(token))
            assert await refusal(in_band) == ("AI_BUSY", 2)
            await holder.disconnect()


async def test_agent_turn_is_charged_and_402_without_credits(
    upstream: ScriptedUpstream, make_app: AppFactory, token: str
) -> None:
    answer_with(
        upstream,
        {"classification": classification(("details", "scenario", "Explain"))},
        ["It ", "is ", "a ", "story."],
    )
    settings = settings_for(upstream, credits={"welcome_credits": 0})
    async with make_app(settings) as app:
        response = await app.test_client().post(
            AGENT, json={"message": "Explain"}, headers=auth(token), query_string=STATUSES
        )
        assert response.status_code == 402
        in_band = await app.test_client().post(
            AGENT, json={"message": "Explain"}, headers=auth(token)
        )
        assert await refusal(in_band) == ("INSUFFICIENT_CREDITS", None)
        services = app.extensions["storywriter.services"]
        await services.ledger.grant("alice", 100_000)
        status, _, writes = await stream(app, AGENT, {"message": "Explain"}, auth(token))
        assert status == 200
        assert agent_frames(writes)[-1]["metadata"]["status"] == "completed"
        await services.settlements.drain()
        [row] = await services.ledger.recent_usage("alice")
        assert row.model.startswith("agent")
        assert row.credits > 0 and row.status == "completed"
        balance = await services.ledger.balance("alice")
        assert balance.reserved == 0 and balance.balance == 100_000 - row.credits


async def test_disconnect_mid_prose_cancels_upstream_and_frees_slot(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    answer_with(
        upstream,
        {"classification": classification(("details", "scenario", "Explain"))},
        ["word "] * 400,
        delay_s=0.02,
    )
    client = app.test_client()
    async with client.request(AGENT, method="POST", headers=auth(token)) as connection:
        await connection.send(orjson.dumps({"message": "Explain", "scenario": sample()}))
        await connection.send_complete()
        while True:
            frame = orjson.loads((await connection.receive())[6:-2])
            if frame["type"] == "chat" and frame["streaming"] and frame["content"]:
                break
        started = time.monotonic()
        await connection.disconnect()
    await upstream.wait_for_disconnect(timeout=1.0)
    assert time.monotonic() - started < 1.0
    status = await (await client.get("/api/proxy/llm/v1/status")).get_json()
    assert status["providers"][0]["slots_in_use"] == 0


async def test_malformed_json_twice_is_a_clear_error_pair(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    answer_with(upstream, {"classification": "{not json at all"}, [])
    _, _, writes = await stream(
        app, AGENT, {"message": "Rename Mira to Ann", "scenario": sample()}, auth(token)
    )
    frames = agent_frames(writes)
    classification_calls = [
        r
        for r in upstream.chat_requests
        if (r.body.get("response_format") or {}).get("json_schema", {}).get("name")
        == "classification"
    ]
    assert len(classification_calls) == 2, "one repair attempt, then an error"
    assert frames[-2]["type"] == "chat" and frames[-2]["streaming"] is False
    assert frames[-1]["metadata"]["status"] == "error" and frames[-1]["metadata"]["error"]
    assert all(f["type"] != "tool_call" for f in frames)


async def test_ambiguous_target_gets_a_clarifying_question(
    app: Quart, upstream: ScriptedUpstream, token: str
) -> None:
    # Two female characters (Aria and Mira): "her" names neither.
    answer_with(
        upstream,
        {"classification": classification(("modification", "character", "Change her name to Zoe"))},
        [],
    )
    scenario = sample()
    _, _, writes = await stream(
        app, AGENT, {"message": "Change her name to Zoe", "scenario": scenario}, auth(token)
    )
    frames = agent_frames(writes)
    assert all(f["type"] != "tool_call" for f in frames), "no guess is applied"
    question = " ".join(f["content"] for f in frames if f["type"] == "chat")
    assert "?" in question
    assert "Aria Stone" in question and "Mira" in question
    assert frames[-1]["metadata"]["status"] == "completed"
    assert apply(scenario, frames) == scenario
