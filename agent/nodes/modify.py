"""The ``modify`` node: edit existing content through validated, id-safe patches.

The model only proposes field values (``agent.llm_schemas``); which entity is edited comes
from ``agent.targets`` and how the values land comes from ``agent.patches``, so ids,
photos and fields the writer did not mention survive whatever the model answers.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from agent import events
from agent.llm_schemas import CharacterEdit
from agent.llm_schemas import LocationEdit
from agent.llm_schemas import ScenarioEdit
from agent.llm_schemas import TextEdit
from agent.llm_schemas import WritingStyleEdit
from agent.nodes.common import NodeRuntime
from agent.nodes.common import advance
from agent.nodes.common import emit
from agent.nodes.common import say
from agent.patches import CHARACTER_PROTECTED
from agent.patches import LOCATION_PROTECTED
from agent.patches import SCENARIO_PROTECTED
from agent.patches import changed_fields
from agent.patches import entity_by_id
from agent.patches import merge_entities
from agent.patches import merge_fields
from agent.patches import rename_in_scenes
from agent.prompts import EDIT
from agent.prompts import fill
from agent.prompts import messages
from agent.state import State
from agent.structured import ask_structured
from agent.targets import collection_key
from agent.targets import entity_label
from agent.targets import resolve
from agent.targets import target_label
from agent.views import entity_view
from agent.views import scenario_json

__all__ = ["modify"]

_TEXT_FIELDS = frozenset({"title", "notes", "backstory", "storyarc"})


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
    assert key is not None  # routing sends only character/location here
    model = CharacterEdit if kind == "character" else LocationEdit
    protected = CHARACTER_PROTECTED if kind == "character" else LOCATION_PROTECTED
    items = state.working.get(key)
    notes: list[str] = []
    renames: dict[str, str] = {}
    for entity_id in resolve(state.operation, state.working, state.message).ids:
        before = entity_by_id(items, entity_id)
        if before is None:
            continue
        changes = await _ask(runtime, state, model, kind, entity_view(before, kind))
        items = merge_entities(items, [{**changes, "id": entity_id}], protected=protected)
        after = entity_by_id(items, entity_id) or before
        if fields := changed_fields(before, after):
            notes.append(f"{entity_label(after)} ({', '.join(fields)})")
        old_name, new_name = before.get("name"), after.get("name")
        if isinstance(old_name, str) and isinstance(new_name, str) and old_name != new_name:
            renames[old_name] = new_name
    if not notes:
        return state.working, f"I could not tell what to change in that {kind}."
    working = {**state.working, key: items}
    scenes = rename_in_scenes(working.get("scenes"), kind, renames)
    if scenes is not working.get("scenes"):
        working["scenes"] = scenes  # scenes name characters and locations: keep them pointing
    return working, f"Updated {kind} {'; '.join(notes)}."


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
    if collection_key(target):
        working, summary = await _edit_entities(runtime, state)
    else:
        working, summary = await _edit_scenario(runtime, state)
    say(runtime, state, summary)
    return advance(state, summary, working=working)
