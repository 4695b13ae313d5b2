"""Turns answered in prose: explain, chat, and the frame sequence around them."""

from __future__ import annotations

import json
from typing import Any

from agent import AgentContext
from agent import HistoryMessage
from agent.events import ChatEvent
from agent.events import StatusEvent
from agent.graph import AgentGraph
from tests.agent.fakes import FakeModels
from tests.agent.frames import classification
from tests.agent.frames import follow_up_frame
from tests.agent.frames import prose
from tests.agent.frames import run_turn
from tests.agent.frames import statuses
from tests.agent.frames import tool_calls

ARIA = "0b6c3f5e-8f0a-4c55-9c1e-1d2a3b4c5d6e"


async def test_explain_turn_sequence(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script(
        "classification", classification(("details", "character", "Who is Aria?", "Aria"))
    )
    models.script("prose", "Aria is the courier at the heart of the story.")
    frames = await run_turn(graph, context, "Who is Aria?", scenario)

    assert [type(f).__name__ for f in frames[:2]] == ["StatusEvent", "StatusEvent"]
    assert statuses(frames) == ["analyzing", "explaining", "suggesting", "completed"]
    chunks = [f for f in frames if isinstance(f, ChatEvent) and f.content]
    assert len(chunks) > 3 and all(c.streaming and c.metadata.streaming for c in chunks)
    assert prose(frames) == "Aria is the courier at the heart of the story."
    assert not tool_calls(frames)
    assert follow_up_frame(frames).metadata.follow_up_questions == (
        "Next one?",
        "Next two?",
        "Next three?",
    )
    explain_call = models.calls[1]
    assert explain_call.human == "Who is Aria?"
    assert "Salt-white hair." in explain_call.system and "iVBOR" not in explain_call.system
    assert models.kinds() == ["classification", "prose", "follow_ups"]
    assert models.max_active == 1 and models.active == 0


async def test_general_conversation_and_history(
    graph: AgentGraph, context: AgentContext, models: FakeModels
) -> None:
    models.script("classification", classification(("general_conversation", "general", "Thanks!")))
    models.script("prose", "You're welcome!")
    history = [HistoryMessage(role="user", content=f"m{i}") for i in range(15)]
    frames = await run_turn(graph, context, "Thanks!", {}, history)
    assert statuses(frames) == ["analyzing", "chatting", "suggesting", "completed"]
    assert prose(frames) == "You're welcome!"
    for call in models.calls[:2]:  # classification and the answer both see the last 10
        history_part = call.messages[-11:-1]
        assert [m.content for m in history_part] == [f"m{i}" for i in range(5, 15)]
        assert call.messages[-12].content != "m4"


async def test_frames_are_plain_contract_json(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("details", "title", "What is the title?")))
    models.script("prose", "The Salt Road.")
    frames = await run_turn(graph, context, "What is the title?", scenario)
    for frame in frames:
        data = json.loads(frame.to_json())
        assert data["type"] in {"status", "chat", "tool_call"}
        if isinstance(frame, StatusEvent) and frame is not frames[-1]:
            assert data["metadata"]["status"] != "completed" and "error" not in data["metadata"]


async def test_misclassified_scenario_creation_never_wipes_content(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    # The embedded model really answered "create a scenario" for this message.
    models.script("classification", classification(("creation", "scenario", "Rename the hero")))
    models.script("prose", "Sure, what name should the hero get?")
    frames = await run_turn(graph, context, "Rename the hero", scenario)
    assert not tool_calls(frames)
    assert statuses(frames) == ["analyzing", "chatting", "suggesting", "completed"]
