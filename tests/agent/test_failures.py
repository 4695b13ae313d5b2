from __future__ import annotations

import json
from typing import Any

from agent import AgentContext
from agent.events import AgentEvent
from agent.events import ChatEvent
from agent.events import StatusEvent
from agent.graph import AgentGraph
from tests.agent.fakes import Boom
from tests.agent.fakes import FakeModels
from tests.agent.fakes import Refusal
from tests.agent.fakes import Stream
from tests.agent.frames import classification
from tests.agent.frames import run_turn
from tests.agent.frames import statuses
from tests.agent.frames import tool_calls


def _error_pair(frames: list[AgentEvent]) -> tuple[ChatEvent, StatusEvent]:
    *_, chat, status = frames
    assert isinstance(chat, ChatEvent) and isinstance(status, StatusEvent)
    assert chat.streaming is False and chat.metadata.streaming is False
    assert status.to_dict() == {
        "type": "status",
        "content": "error",
        "metadata": {"status": "error", "error": chat.content},
    }
    assert "completed" not in statuses(frames)
    return chat, status


async def test_malformed_json_twice_ends_with_error_pair(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", "{not json", '{"operations": []}')
    frames = await run_turn(graph, context, "Rename Aria", scenario)
    chat, _ = _error_pair(frames)
    assert statuses(frames) == ["analyzing", "error"]
    assert "classification step" in chat.content
    assert models.kinds() == ["classification", "classification"]
    assert models.active == 0


async def test_malformed_edit_repaired_once(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script(
        "classification", classification(("modification", "character", "rename Mira", "Mira"))
    )
    models.script("character_edit", '{"name": "Ann"', json.dumps({"name": "Ann"}))
    frames = await run_turn(graph, context, "rename Mira to Ann", scenario)
    assert statuses(frames)[-1] == "completed"
    assert len(tool_calls(frames)) == 1


async def test_refusal_ends_with_error_pair(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("creation", "character", "add a villain")))
    models.script("new_character", Refusal())
    frames = await run_turn(graph, context, "add a villain", scenario)
    chat, _ = _error_pair(frames)
    assert "declined" in chat.content
    assert not tool_calls(frames)


async def test_upstream_failure_mid_turn_applies_nothing(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script(
        "classification",
        classification(
            ("modification", "character", "Rename Mira to Ann", "Mira"),
            ("creation", "location", "add a tavern"),
        ),
    )
    models.script("character_edit", json.dumps({"name": "Ann"}))
    models.script("new_location", Boom(RuntimeError("upstream 500 with key sk-SECRET")))
    frames = await run_turn(graph, context, "Rename Mira to Ann and add a tavern", scenario)
    chat, _ = _error_pair(frames)
    assert not tool_calls(frames), "a half-done turn must not change the scenario"
    assert "RuntimeError" in chat.content
    assert "sk-SECRET" not in json.dumps([f.to_dict() for f in frames])
    assert statuses(frames) == ["analyzing", "modifying", "creating", "error"]
    assert models.active == 0


async def test_exception_mid_prose_after_chunks(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("details", "scenario", "Explain it")))
    models.script("prose", Stream(["The ", "story ", "is ", "about ", "salt."], fail_after=3))
    frames = await run_turn(graph, context, "Explain it", scenario)
    chunks = [f.content for f in frames if isinstance(f, ChatEvent) and f.streaming]
    assert chunks == ["The ", "story ", "is "]
    chat, _ = _error_pair(frames)
    assert "ConnectionResetError" in chat.content and "SECRET" not in chat.content
    assert models.active == 0


async def test_pool_refusing_a_slot_is_an_error_pair(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    class PoolSaturated(Exception):
        pass

    models.enter_error = PoolSaturated("all slots busy")
    frames = await run_turn(graph, context, "Explain it", scenario)
    chat, _ = _error_pair(frames)
    assert "PoolSaturated" in chat.content
    assert statuses(frames) == ["analyzing", "error"]


async def test_follow_up_failure_falls_back_to_canned(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("details", "scenario", "Explain it")))
    models.script("prose", "It is a sea story.")
    models.script("follow_ups", Boom(TimeoutError()))
    frames = await run_turn(graph, context, "Explain it", scenario)
    assert statuses(frames)[-1] == "completed"
    follow = frames[-2]
    assert isinstance(follow, ChatEvent)
    assert follow.metadata.follow_up_questions == (
        "What are the weak points of my story?",
        "Tell me more about the main character.",
        "How could the story arc be more gripping?",
    )


async def test_follow_up_invalid_json_is_not_repaired(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("details", "scenario", "Explain it")))
    models.script("prose", "It is a sea story.")
    models.script("follow_ups", json.dumps({"questions": ["Only one?"]}))
    frames = await run_turn(graph, context, "Explain it", scenario)
    assert models.kinds().count("follow_ups") == 1
    follow = frames[-2]
    assert isinstance(follow, ChatEvent) and follow.metadata.follow_up_questions is not None
    assert len(follow.metadata.follow_up_questions) == 3


async def test_duplicate_follow_ups_are_topped_up(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("details", "scenario", "Explain it")))
    models.script("prose", "It is a sea story.")
    models.script("follow_ups", json.dumps({"questions": ["Same?", "same?", " "]}))
    frames = await run_turn(graph, context, "Explain it", scenario)
    follow = frames[-2]
    assert isinstance(follow, ChatEvent)
    assert follow.metadata.follow_up_questions == (
        "Same?",
        "What are the weak points of my story?",
        "Tell me more about the main character.",
    )


async def test_empty_message(graph: AgentGraph, context: AgentContext) -> None:
    frames = await run_turn(graph, context, "   ", {})
    _error_pair(frames)
    assert len(frames) == 2


async def test_scenario_that_is_not_an_object(graph: AgentGraph, context: AgentContext) -> None:
    frames = await run_turn(graph, context, "hi", ["not", "a", "scenario"])  # type: ignore[arg-type]
    chat, _ = _error_pair(frames)
    assert "not a JSON object" in chat.content
