"""The small-model profile: code reads the request, the model only writes what is open."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from agent import AgentContext
from agent.commands import parse_request
from agent.events import ChatEvent
from agent.graph import AgentGraph
from agent.nodes.fields import WRITER_WORDS
from tests.agent.fakes import FakeModels
from tests.agent.frames import apply_frames
from tests.agent.frames import assert_intact
from tests.agent.frames import follow_up_frame
from tests.agent.frames import prose
from tests.agent.frames import run_turn
from tests.agent.frames import statuses
from tests.agent.frames import tool_calls

MIRA = "legacy-id-mira"
SYNOPSIS_COPY = "A courier crosses a drowned empire. A courier crosses a drowned empire."


@pytest.fixture(name="small")
def _small(models: FakeModels) -> AgentContext:
    return AgentContext(models=models, model="tiny", model_profile="small")


async def test_stated_values_need_no_model(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    frames = await run_turn(
        graph, small, "Rename Mira to Ann, then set the genre to noir", scenario
    )
    after = apply_frames(scenario, frames)
    assert after["characters"][1]["name"] == "Ann"
    assert after["writingStyle"]["genre"] == "noir"
    assert_intact(scenario, after, changed={MIRA: {"name"}}, top={"writingStyle"})
    assert models.kinds() == [], "no call: not even for the follow-ups"
    assert len(follow_up_frame(frames).metadata.follow_up_questions or ()) == 3


async def test_delete_keeps_the_scenes_and_says_so(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    frames = await run_turn(graph, small, "Delete Port Veil", scenario)
    (call,) = tool_calls(frames)
    assert call.metadata.tool_call.parameters == {"updated_scenario": {"locations": []}}
    assert statuses(frames) == ["analyzing", "deleting", "suggesting", "completed"]
    assert "1 scene still names it" in prose(frames)
    assert models.kinds() == []


async def test_open_edit_adds_the_models_sentence(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("appearance_text", json.dumps({"text": "Her hair has gone grey with age."}))
    frames = await run_turn(graph, small, "Make Mira older", scenario)
    after = apply_frames(scenario, frames)
    assert after["characters"][1]["appearance"] == "Her hair has gone grey with age."
    assert_intact(scenario, after, changed={MIRA: {"appearance"}})
    (call,) = models.calls
    assert "iVBOR" not in str(call.messages) and "drowned empire" not in str(call.messages)
    assert call.kwargs["frequency_penalty"] == 0.8
    assert call.kwargs["extra_body"]["response_format"]["json_schema"]["name"] == (
        "appearance_text"
    )


async def test_a_copied_text_is_replaced_by_the_writers_words(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    scenario["characters"][1]["appearance"] = "Small, ink-stained fingers."
    models.script("appearance_text", json.dumps({"text": SYNOPSIS_COPY}))
    frames = await run_turn(graph, small, "Give Mira a scar across her cheek", scenario)
    after = apply_frames(scenario, frames)
    assert after["characters"][1]["appearance"] == (
        "Small, ink-stained fingers. A scar across her cheek."
    )
    assert WRITER_WORDS in prose(frames)


async def test_a_request_only_a_model_can_do_fails_with_what_to_try(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    copy = json.dumps({"text": "Departure, betrayal, return. " * 3})
    models.script("synopsis_text", copy, copy)
    frames = await run_turn(graph, small, "Improve the synopsis", scenario)
    first, retry = models.calls
    assert (first.kwargs["temperature"], retry.kwargs["temperature"]) == (0.0, 0.8)
    assert not tool_calls(frames)
    message = frames[-2]
    assert isinstance(message, ChatEvent) and message.streaming is False
    assert "I understood that you want to change the synopsis of the story" in message.content
    assert "(it repeated other parts of the story)" in message.content
    assert '"Rewrite the synopsis: <the new text>"' in message.content
    assert statuses(frames)[-1] == "error"


async def test_a_new_character_survives_a_useless_model(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("new_character", "{not json")
    message = "Add a villain named Morvane: a jealous court wizard"
    frames = await run_turn(graph, small, message, scenario)
    after = apply_frames(scenario, frames)
    new = after["characters"][-1]
    assert uuid.UUID(new["id"]).version == 4
    assert {k: v for k, v in new.items() if k != "id"} == {
        "name": "Morvane",
        "role": "villain",
        "backstory": "A jealous court wizard.",
    }
    assert_intact(scenario, after)
    assert statuses(frames)[-1] == "completed"


async def test_a_new_character_keeps_only_what_fits(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    sketch = {
        "name": "Aria Stone",  # taken
        "role": "supporting",
        "gender": "male",
        "appearance": "<img src='x'>",  # junk
        "backstory": "A ferry pilot who owes the guild a debt.",
    }
    models.script("new_character", json.dumps(sketch))
    frames = await run_turn(graph, small, "Create a new supporting character", scenario)
    new = apply_frames(scenario, frames)["characters"][-1]
    assert new["name"] not in {c["name"] for c in scenario["characters"]}
    assert new["backstory"] == "A ferry pilot who owes the guild a debt."
    assert "appearance" not in new and new["gender"] == "male"
    suggestions = follow_up_frame(frames).metadata.follow_up_questions or ()
    assert suggestions[0] == f"Tell me about {new['name']}"
    after = apply_frames(scenario, frames)
    assert all(parse_request(s, after) is not None for s in suggestions), suggestions


async def test_what_the_rules_cannot_read_goes_to_the_intent_step(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("intent", json.dumps({"action": "chat", "target": "story"}))
    models.script("prose", "Happy to help.")
    frames = await run_turn(graph, small, "the middle part drags on forever", scenario)
    assert models.kinds() == ["intent", "prose"]
    assert prose(frames) == "Happy to help."
    intent = models.calls[0]
    assert intent.kwargs["max_tokens"] == 40


async def test_a_models_guess_never_deletes(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("intent", json.dumps({"action": "delete", "target": "character"}))
    models.script("prose", "Which one would you like to remove?")
    frames = await run_turn(graph, small, "ugh, Mira", scenario)
    assert not tool_calls(frames)
    assert statuses(frames) == ["analyzing", "chatting", "suggesting", "completed"]


async def test_a_missing_name_gets_a_clarifying_question(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    frames = await run_turn(graph, small, "Make Zoltan older", scenario)
    assert prose(frames) == (
        "There is no character called Zoltan in this scenario. Did you mean Aria Stone, "
        "Mira or Bram Holt? Or should I add Zoltan as a new character?"
    )
    assert follow_up_frame(frames).metadata.follow_up_questions == (
        "Add a new character named Zoltan",
        "Make Aria Stone older",
        "Make Mira older",
    )
    assert models.kinds() == []


async def test_explain_shows_a_small_model_only_the_entity(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("prose", "Bram is the Gull.")
    await run_turn(graph, small, "Who is Bram?", scenario)
    (call,) = models.calls
    assert "Bram Holt" in call.system and "Aria Stone" not in call.system
    assert call.kwargs["max_tokens"] == 200


async def test_a_fix_that_repeats_the_complaint_does_not_fit(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("communicationStyle_text", json.dumps({"text": "stiff and formal"}))
    frames = await run_turn(graph, small, "The dialogue feels stiff", scenario)
    after = apply_frames(scenario, frames)
    assert after["writingStyle"]["communicationStyle"] == "no longer stiff"
    assert WRITER_WORDS in prose(frames)


async def test_tighten_asks_for_a_shorter_text(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    longer = json.dumps({"text": "A courier crosses a drowned empire, slowly and at length."})
    shorter = json.dumps({"text": "A courier crosses a sunken realm."})
    models.script("synopsis_text", longer, shorter)
    frames = await run_turn(graph, small, "Tighten the synopsis", scenario)
    assert apply_frames(scenario, frames)["synopsis"] == "A courier crosses a sunken realm."


async def test_the_failure_says_why_the_text_did_not_fit(
    graph: AgentGraph, small: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    longer = json.dumps({"text": "A courier crosses a drowned empire, slowly and at length."})
    models.script("synopsis_text", longer, longer)
    frames = await run_turn(graph, small, "Shorten the synopsis", scenario)
    message = frames[-2]
    assert isinstance(message, ChatEvent)
    assert "(it was not shorter)" in message.content
