"""Turns that edit the scenario: patches by id, several operations, ambiguity."""

from __future__ import annotations

import json
from typing import Any

from agent import AgentContext
from agent.events import ToolCallEvent
from agent.graph import AgentGraph
from tests.agent.fakes import FakeModels
from tests.agent.frames import apply_frames
from tests.agent.frames import assert_intact
from tests.agent.frames import classification
from tests.agent.frames import follow_up_frame
from tests.agent.frames import prose
from tests.agent.frames import run_turn
from tests.agent.frames import statuses
from tests.agent.frames import tool_calls

ARIA = "0b6c3f5e-8f0a-4c55-9c1e-1d2a3b4c5d6e"


async def test_modify_character_keeps_ids_photos_and_other_fields(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script(
        "classification",
        classification(("modification", "character", "Rename the hero to Lyra", "hero")),
    )
    # The model tries to write an id and a photo; both must be ignored.
    models.script("character_edit", json.dumps({"name": "Lyra", "id": "x", "photo_data": ""}))
    frames = await run_turn(graph, context, "Rename the hero to Lyra", scenario)

    assert statuses(frames) == ["analyzing", "modifying", "suggesting", "completed"]
    (call,) = tool_calls(frames)
    payload = call.metadata.tool_call.parameters["updated_scenario"]
    assert call.metadata.tool_call.action == "update_scenario"
    # The scene that named her follows the rename (scenes refer to characters by name).
    assert list(payload) == ["characters", "scenes"]
    after = apply_frames(scenario, frames)
    assert after["characters"][0]["name"] == "Lyra"
    assert after["scenes"][0]["characters"] == ["Lyra"]
    assert_intact(scenario, after, changed={ARIA: {"name"}, "scene-1": {"characters"}})
    assert "Updated character Lyra (name)." in prose(frames)
    # The edit prompt shows the resolved character without photos.
    edit = models.calls[1]
    assert "Salt-white hair." in edit.system and "iVBOR" not in edit.system


async def test_multi_operation_performs_all_in_one_tool_call(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    message = "Rename the hero to Lyra and add a tavern"
    models.script(
        "classification",
        classification(
            ("modification", "character", "Rename the hero to Lyra", "hero"),
            ("creation", "location", "add a tavern"),
            ("details", "scenario", "and tell me what changed"),
        ),
    )
    models.script("character_edit", json.dumps({"name": "Lyra"}))
    models.script(
        "new_location",
        json.dumps(
            {"name": "The Drowned Lantern", "visualDescription": "Low beams.", "background": "Old."}
        ),
    )
    models.script("prose", "Lyra now leads, and a tavern waits.")
    frames = await run_turn(graph, context, message, scenario)

    assert statuses(frames) == [
        "analyzing",
        "modifying",
        "creating",
        "explaining",
        "suggesting",
        "completed",
    ]
    (call,) = tool_calls(frames)
    assert sorted(call.metadata.tool_call.parameters["updated_scenario"]) == [
        "characters",
        "locations",
        "scenes",  # the scene naming the renamed hero
    ]
    # The tool_call comes after all prose and before the follow-ups.
    kinds = [type(f) for f in frames]
    assert kinds.index(ToolCallEvent) == len(frames) - 4
    after = apply_frames(scenario, frames)
    assert after["characters"][0]["name"] == "Lyra"
    assert [loc["name"] for loc in after["locations"]] == ["Port Veil", "The Drowned Lantern"]
    assert after["scenes"][0]["characters"] == ["Lyra"]
    assert_intact(scenario, after, changed={ARIA: {"name"}, "scene-1": {"characters"}})
    text = prose(frames)
    assert text.index("Updated character Lyra") < text.index("Added a new location")
    assert "\n\nLyra now leads" in text
    # Each operation's prompt names its own part.
    assert models.calls[2].human == "add a tavern"
    assert f"whole message was: {json.dumps(message)}" in models.calls[2].system
    # The explanation sees the edits made earlier in the same turn.
    assert "The Drowned Lantern" in models.calls[3].system


async def test_ambiguous_target_asks_instead_of_guessing(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script(
        "classification", classification(("modification", "character", "Change her name to Ann"))
    )
    frames = await run_turn(graph, context, "Change her name to Ann", scenario)

    assert not tool_calls(frames)
    assert statuses(frames) == ["analyzing", "clarifying", "suggesting", "completed"]
    assert prose(frames) == "Which character do you mean: Aria Stone or Mira?"
    follow = follow_up_frame(frames)
    assert follow.metadata.follow_up_questions == (
        "Change her name to Ann (Aria Stone)",
        "Change her name to Ann (Mira)",
        "Explain what you changed.",
    )
    assert models.kinds() == ["classification"]  # no edit, no follow-up call


async def test_ambiguous_rename_without_any_reference(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script(
        "classification", classification(("modification", "character", "Rename the character"))
    )
    frames = await run_turn(graph, context, "Rename the character", scenario)
    assert not tool_calls(frames)
    assert prose(frames) == "Which character do you mean: Aria Stone, Mira or Bram Holt?"


async def test_clarified_follow_up_resolves(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    message = "Change her name to Ann (Mira)"
    models.script("classification", classification(("modification", "character", message)))
    models.script("character_edit", json.dumps({"name": "Ann"}))
    frames = await run_turn(graph, context, message, scenario)
    after = apply_frames(scenario, frames)
    assert after["characters"][1]["name"] == "Ann"
    assert_intact(scenario, after, changed={"legacy-id-mira": {"name"}})


async def test_writing_style_edit_merges_fields(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script(
        "classification", classification(("modification", "writingStyle", "Make the tone darker"))
    )
    models.script("writingStyle_edit", json.dumps({"tone": "grim", "genre": None}))
    frames = await run_turn(graph, context, "Make the tone darker", scenario)
    (call,) = tool_calls(frames)
    payload = call.metadata.tool_call.parameters["updated_scenario"]
    assert payload == {"writingStyle": {**scenario["writingStyle"], "tone": "grim"}}
    assert_intact(scenario, apply_frames(scenario, frames), top={"writingStyle"})


async def test_scenario_wide_edit(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("modification", "scenario", "Retitle it")))
    models.script("scenario_edit", json.dumps({"title": "Salt and Ash", "id": "nope"}))
    frames = await run_turn(graph, context, "Retitle it", scenario)
    (call,) = tool_calls(frames)
    assert call.metadata.tool_call.parameters == {"updated_scenario": {"title": "Salt and Ash"}}


async def test_edit_that_changes_nothing_sends_no_tool_call(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("modification", "character", "fix Mira")))
    models.script("character_edit", json.dumps({"name": "Mira", "role": ""}))
    frames = await run_turn(graph, context, "fix Mira", scenario)
    assert not tool_calls(frames)
    assert "could not tell what to change" in prose(frames)
