"""The ``create`` node: add one character, location or scene, or a whole new scenario.

One creation operation adds exactly one entity, whatever the model answers: the draft
schema describes a single entity and the code gives it a fresh UUID v4. Creating a
scenario replaces its content keys but keeps its id, owner and editor settings, so
"create a character" can never wipe a scenario (contract.md 9.9). A creation read by
code (a ``Command``: the small-model profile) goes through ``agent.nodes.invent``: the
stated values, a short sketch by the model, and defaults for the rest.
"""

from __future__ import annotations

from typing import Any

from agent import events
from agent.command import Command
from agent.llm_schemas import CharacterDraft
from agent.llm_schemas import LocationDraft
from agent.llm_schemas import ScenarioDraft
from agent.llm_schemas import SceneDraft
from agent.nodes.common import NodeRuntime
from agent.nodes.common import advance
from agent.nodes.common import emit
from agent.nodes.common import say
from agent.nodes.invent import invent_entity
from agent.nodes.invent import invent_scenario
from agent.patches import CHARACTER_PROTECTED
from agent.patches import LOCATION_PROTECTED
from agent.patches import SCENE_PROTECTED
from agent.patches import merge_entities
from agent.patches import new_entity
from agent.patches import new_id
from agent.prompts import CREATE_ENTITY
from agent.prompts import CREATE_SCENARIO
from agent.prompts import fill
from agent.prompts import messages
from agent.state import State
from agent.structured import ask_structured
from agent.targets import collection_key
from agent.targets import entity_label
from agent.views import scenario_json

__all__ = ["SCENARIO_CONTENT", "create"]

SCENARIO_CONTENT = (
    "title",
    "synopsis",
    "storyarc",
    "backstory",
    "notes",
    "writingStyle",
    "characters",
    "locations",
    "scenes",
)
"""Keys a new scenario replaces; everything else (id, owner, images, settings) is kept."""


async def _create_entity(runtime: NodeRuntime, state: State) -> tuple[dict[str, Any], str]:
    kind = state.operation.target
    context = runtime.context
    system = fill(
        CREATE_ENTITY,
        kind=kind,
        scenario=scenario_json(state.working, context.max_scenario_chars),
    )
    prompt = messages(system, state)
    key = collection_key(kind)
    assert key is not None  # routing sends only characters, locations and scenes here
    existing = state.working.get(key)
    taken = {
        "taken_names": {entity_label(e).casefold() for e in existing or [] if isinstance(e, dict)}
    }
    draft: CharacterDraft | LocationDraft | SceneDraft
    if kind == "character":
        draft = await ask_structured(
            context, CharacterDraft, prompt, name="new_character", validation_context=taken
        )
        protected, label = CHARACTER_PROTECTED, draft.name
    elif kind == "location":
        draft = await ask_structured(
            context, LocationDraft, prompt, name="new_location", validation_context=taken
        )
        protected, label = LOCATION_PROTECTED, draft.name
    else:
        draft = await ask_structured(context, SceneDraft, prompt, name="new_scene")
        protected, label = SCENE_PROTECTED, draft.title
    items = merge_entities(existing, [draft.model_dump(exclude_none=True)], protected=protected)
    return {**state.working, key: items}, f"Added a new {kind}: {label.strip()}."


async def _create_scenario(runtime: NodeRuntime, state: State) -> tuple[dict[str, Any], str]:
    draft = await ask_structured(
        runtime.context, ScenarioDraft, messages(CREATE_SCENARIO, state), name="new_scenario"
    )
    working = dict(state.working)
    if not isinstance(working.get("id"), str) or not working["id"]:
        working["id"] = new_id()
    working.update(
        title=draft.title,
        synopsis=draft.synopsis,
        storyarc=draft.storyarc,
        backstory=draft.backstory,
        notes=draft.notes or "",
        writingStyle=draft.writingStyle.model_dump(exclude_none=True),
        characters=[
            new_entity(c.model_dump(exclude_none=True), protected=CHARACTER_PROTECTED)
            for c in draft.characters
        ],
        locations=[
            new_entity(loc.model_dump(exclude_none=True), protected=LOCATION_PROTECTED)
            for loc in draft.locations
        ],
        scenes=[],
    )
    return working, f"Created a new scenario: {draft.title.strip()}."


async def create(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Perform the current creation operation (character, location or scenario).

    Args:
        state: The turn's state; the current operation is a creation.
        runtime: LangGraph runtime carrying the ``AgentContext``.

    Returns:
        The new working scenario and the operation's summary.
    """
    target = state.operation.target
    emit(runtime, events.status("creating", node="create", content=f"Creating a new {target}"))
    operation = state.operation
    if target == "scenario":
        if isinstance(operation, Command):
            working, summary = await invent_scenario(runtime, state, operation)
        else:
            working, summary = await _create_scenario(runtime, state)
        updates: dict[str, Any] = {"working": working, "created": True}
    else:
        if isinstance(operation, Command):
            working, summary = await invent_entity(runtime, state, operation)
        else:
            working, summary = await _create_entity(runtime, state)
        updates = {"working": working}
    say(runtime, state, summary)
    return advance(state, summary, **updates)
