"""Turns that create: one character or location, or a whole scenario."""

from __future__ import annotations

import json
import uuid
from typing import Any

from agent import AgentContext
from agent import Scenario
from agent.graph import AgentGraph
from tests.agent.fakes import FakeModels
from tests.agent.frames import apply_frames
from tests.agent.frames import assert_intact
from tests.agent.frames import classification
from tests.agent.frames import run_turn
from tests.agent.frames import statuses
from tests.agent.frames import tool_calls

ARIA = "0b6c3f5e-8f0a-4c55-9c1e-1d2a3b4c5d6e"


async def test_create_supporting_character_adds_exactly_one(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    message = "Create a new supporting character"
    models.script("classification", classification(("creation", "character", message)))
    draft = {
        "name": "Nell Brine",
        "role": "supporting",
        "gender": "female",
        "appearance": "Tall.",
        "backstory": "A ferry pilot.",
    }
    models.script("new_character", json.dumps(draft))
    frames = await run_turn(graph, context, message, scenario)

    (call,) = tool_calls(frames)
    assert list(call.metadata.tool_call.parameters["updated_scenario"]) == ["characters"]
    after = apply_frames(scenario, frames)
    assert len(after["characters"]) == len(scenario["characters"]) + 1
    new = after["characters"][-1]
    assert uuid.UUID(new["id"]).version == 4
    assert {k: v for k, v in new.items() if k != "id"} == draft
    assert after["characters"][:-1] == scenario["characters"]
    assert_intact(scenario, after)
    assert statuses(frames) == ["analyzing", "creating", "suggesting", "completed"]


async def test_create_backstory_sets_the_text_field(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("creation", "backstory", "Write a backstory")))
    models.script("backstory_edit", json.dumps({"text": "Long ago the tide turned."}))
    frames = await run_turn(graph, context, "Write a backstory", scenario)
    after = apply_frames(scenario, frames)
    assert after["backstory"] == "Long ago the tide turned."
    assert_intact(scenario, after, top={"backstory"})


async def test_create_scenario_from_nothing(
    graph: AgentGraph, context: AgentContext, models: FakeModels
) -> None:
    models.script("classification", classification(("creation", "scenario", "A sea story")))
    models.script(
        "new_scenario",
        json.dumps(
            {
                "title": "Tides",
                "synopsis": "S.",
                "storyarc": "A.",
                "backstory": "B.",
                "writingStyle": {"genre": "adventure"},
                "characters": [
                    {
                        "name": "Io",
                        "role": "lead",
                        "gender": "f",
                        "appearance": "x",
                        "backstory": "y",
                    }
                ],
                "locations": [{"name": "Reef", "visualDescription": "v", "background": "b"}],
            }
        ),
    )
    frames = await run_turn(graph, context, "A sea story", None)
    (call,) = tool_calls(frames)
    assert call.metadata.tool_call.action == "create_scenario"
    created = call.metadata.tool_call.parameters["scenario"]
    scenario = Scenario.model_validate(apply_frames({}, frames))
    assert uuid.UUID(scenario.id).version == 4
    assert created["title"] == "Tides" and created["scenes"] == []
    assert all(
        uuid.UUID(c["id"]).version == 4 for c in created["characters"] + created["locations"]
    )


async def test_create_scenario_keeps_id_owner_and_images(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("creation", "scenario", "Start over")))
    models.script(
        "new_scenario",
        json.dumps(
            {
                "title": "New",
                "synopsis": "S.",
                "storyarc": "A.",
                "backstory": "B.",
                "writingStyle": {},
                "characters": [
                    {
                        "name": "Io",
                        "role": "lead",
                        "gender": "f",
                        "appearance": "x",
                        "backstory": "y",
                    }
                ],
            }
        ),
    )
    frames = await run_turn(graph, context, "Start over", scenario)
    created = tool_calls(frames)[0].metadata.tool_call.parameters["scenario"]
    assert "id" not in created and "userId" not in created and "imageUrl" not in created
    after = apply_frames(scenario, frames)
    assert after["id"] == scenario["id"] and after["imageUrl"] == scenario["imageUrl"]
    Scenario.model_validate(after)


async def test_new_character_with_a_taken_name_is_repaired(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    message = "Create a new supporting character"
    models.script("classification", classification(("creation", "character", message)))
    copy_of_aria = {
        "name": "aria stone",
        "role": "supporting",
        "gender": "female",
        "appearance": "x",
        "backstory": "y",
    }
    models.script("new_character", json.dumps(copy_of_aria))
    models.script("new_character", json.dumps({**copy_of_aria, "name": "Nell"}))
    frames = await run_turn(graph, context, message, scenario)
    assert "already taken" in models.calls[2].human
    after = apply_frames(scenario, frames)
    assert [c["name"] for c in after["characters"]][-2:] == ["Bram Holt", "Nell"]
