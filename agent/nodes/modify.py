"""The ``modify`` node: edit existing content through validated, id-safe patches.

Two ways in. A ``Command`` read by code (``agent.commands``) carries the values the writer
stated and, for an open request, the one field to rewrite: ``agent.nodes.fields`` applies
those, asking the model for that field only. An operation a large model classified is
edited the model's way: it proposes any fields of the entity (``agent.llm_schemas``).
Either way which entity is edited comes from ``agent.targets`` and how values land comes
from ``agent.patches``, so ids, photos and fields not asked about survive.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from agent import events
from agent.command import Command
from agent.llm_schemas import CharacterEdit
from agent.llm_schemas import LocationEdit
from agent.llm_schemas import ScenarioEdit
from agent.llm_schemas import SceneEdit
from agent.llm_schemas import TextEdit
from agent.llm_schemas import WritingStyleEdit
from agent.nodes.common import NodeRuntime
from agent.nodes.common import advance
from agent.nodes.common import emit
from agent.nodes.common import say
from agent.nodes.fields import edit_fields
from agent.nodes.fields import summarize_entities
from agent.patches import SCENARIO_PROTECTED
from agent.patches import changed_fields
from agent.patches import edit_entities
from agent.patches import entity_by_id
from agent.patches import merge_fields
from agent.prompts import EDIT
from agent.prompts import fill
from agent.prompts import messages
from agent.state import State
from agent.structured import ask_structured
from agent.targets import collection_key
from agent.targets import resolve
from agent.targets import target_label
from agent.views import entity_view
from agent.views import scenario_json

__all__ = ["modify"]

_TEXT_FIELDS = frozenset({"title", "notes", "backstory", "storyarc", "synopsis"})
_EDITS: dict[str, type[BaseModel]] = {
    "character": CharacterEdit,
    "location": LocationEdit,
    "scene": SceneEdit,
}


async def _ask(
    runtime: NodeRuntime, state: State, model: type[BaseModel], target: str, current: Any
) -> dict[str, Any]:
    context = runtime.context
    system = fill(
        EDIT,
        scenario=scenario_json(state.working, context.max_scenario_chars),
        target=target,
        current=json.dumps(current, ensure_ascii=False),
    )
    answer = await ask_structured(context, model, messages(system, state), name=f"{target}_edit")
    return answer.model_dump(exclude_none=True)


async def _edit_entities(runtime: NodeRuntime, state: State) -> tuple[dict[str, Any], str]:
    kind = state.operation.target
    key = collection_key(kind)
    assert key is not None  # routing sends only characters, locations and scenes here
    changes: dict[str, dict[str, Any]] = {}
    for entity_id in resolve(state.operation, state.working, state.message).ids:
        before = entity_by_id(state.working.get(key), entity_id)
        if before is not None:
            view = entity_view(before, kind)
            changes[entity_id] = await _ask(runtime, state, _EDITS[kind], kind, view)
    working, notes = edit_entities(state.working, kind, key, changes)
    return working, summarize_entities(kind, notes)


async def _edit_scenario(runtime: NodeRuntime, state: State) -> tuple[dict[str, Any], str]:
    target = state.operation.target
    working = state.working
    if target == "writingStyle":
        style = await _ask(runtime, state, WritingStyleEdit, target, working.get(target) or {})
        changes: dict[str, Any] = {"writingStyle": style}
    elif target in _TEXT_FIELDS:
        text = (await _ask(runtime, state, TextEdit, target, working.get(target) or ""))["text"]
        changes = {target: text}
    else:
        changes = await _ask(runtime, state, ScenarioEdit, "scenario", _main_texts(working))
    updated = merge_fields(working, changes, protected=SCENARIO_PROTECTED)
    if fields := changed_fields(working, updated):
        return updated, f"Updated the scenario: {', '.join(fields)}."
    return working, "I could not tell what to change; the scenario is unchanged."


def _main_texts(scenario: dict[str, Any]) -> dict[str, Any]:
    keys = ("title", "synopsis", "storyarc", "backstory", "notes", "writingStyle")
    return {k: scenario[k] for k in keys if scenario.get(k)}


async def modify(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Apply the current modification operation to the working scenario.

    Args:
        state: The turn's state; the current operation is a modification (or the creation
            of a text field such as a backstory).
        runtime: LangGraph runtime carrying the ``AgentContext``.

    Returns:
        The new working scenario and the operation's summary.
    """
    target = state.operation.target
    emit(
        runtime,
        events.status("modifying", node="modify", content=f"Updating the {target_label(target)}"),
    )
    if isinstance(state.operation, Command):
        working, summary = await edit_fields(runtime, state, state.operation)
    elif collection_key(target):
        working, summary = await _edit_entities(runtime, state)
    else:
        working, summary = await _edit_scenario(runtime, state)
    say(runtime, state, summary)
    return advance(state, summary, working=working)
