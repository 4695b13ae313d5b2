"""Follow-up suggestions written by code, for the small-model profile.

A 135M model's suggestions are rarely usable and cost a call (~2-4 s on one CPU thread).
These are specific to what the turn did and name what it touched ("Tell me about
Morvane"), and each is phrased so that ``agent.commands`` reads it without the model:
a click on a suggestion always works.
"""

from __future__ import annotations

from agent.patches import entity_by_id
from agent.state import State
from agent.targets import collection_key
from agent.targets import entities_of
from agent.targets import entity_label
from agent.targets import resolve

__all__ = ["STARTERS", "suggest"]

STARTERS = (
    "Explain the main conflict in this scenario",
    "Add more depth to the main character",
    "Suggest plot twists for this story",
    "Create a new supporting character",
)
"""The chat panel's own starter suggestions."""


def _touched(state: State) -> str | None:
    """The name of the entity the turn's last operation was about, if any."""
    operation = state.operations[-1]
    key = collection_key(operation.target)
    if key is None or operation.action == "deletion":
        return None
    if operation.action == "creation":
        items = entities_of(state.working, key)
        return entity_label(items[-1]) if items else None
    found = resolve(operation, state.working, state.message)
    if len(found.ids) != 1:
        return None
    entity = entity_by_id(state.working.get(key), found.ids[0])
    return entity_label(entity) if entity is not None else None


def suggest(state: State) -> list[str]:
    """Three requests the writer could send next, after this turn."""
    if not state.operations:
        return list(STARTERS[:3])
    operation = state.operations[-1]
    name = _touched(state)
    kind = operation.target
    if operation.action == "creation" and name and kind == "character":
        return [f"Tell me about {name}", f"Give {name} a secret", "Add a location for this story"]
    if operation.action == "creation" and name and kind == "location":
        return [f"Tell me about {name}", f"Add a scene at {name}", STARTERS[3]]
    if operation.action == "creation" and kind == "scenario":
        return [STARTERS[0], STARTERS[3], "Add a location for this story"]
    if operation.action == "creation":
        return ["Summarize the story so far", "Add another scene", STARTERS[2]]
    if operation.action == "modification" and name and kind == "character":
        return [f"Tell me about {name}", f"Make {name} more mysterious", STARTERS[2]]
    if operation.action == "modification" and name:
        return [f"Tell me about {name}", "Summarize the story so far", STARTERS[2]]
    if operation.action == "modification":
        return ["Summarize the story so far", STARTERS[2], "Make the tone darker"]
    if operation.action == "deletion":
        return ["Summarize the story so far", STARTERS[3], STARTERS[2]]
    if operation.action == "details" and name and kind == "character":
        return [f"Add more depth to {name}", f"Give {name} a secret", STARTERS[2]]
    if operation.action == "details":
        return [STARTERS[2], STARTERS[1], STARTERS[3]]
    return [STARTERS[0], STARTERS[2], STARTERS[3]]
