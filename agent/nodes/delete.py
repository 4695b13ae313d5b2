"""The ``delete`` node: remove characters, locations or scenes the writer named.

No model call: which entity is meant was resolved by code (``agent.targets``), and an
unclear reference never gets here (it is asked about). Only the named entities leave;
every other entity, and the scenes, stay byte-identical. Scenes name characters and
locations as plain text, so a scene that still names a deleted one is pointed out
rather than silently edited.
"""

from __future__ import annotations

from typing import Any

from agent import events
from agent.nodes.common import NodeRuntime
from agent.nodes.common import advance
from agent.nodes.common import emit
from agent.nodes.common import say
from agent.state import State
from agent.targets import collection_key
from agent.targets import entity_label
from agent.targets import resolve
from agent.targets import words

__all__ = ["delete"]


def _still_named(scenes: Any, kind: str, names: list[str]) -> int:
    wanted = {" ".join(words(n)) for n in names}
    count = 0
    for scene in scenes if isinstance(scenes, list) else []:
        if not isinstance(scene, dict):
            continue
        refs = scene.get("characters") if kind == "character" else [scene.get("location")]
        if any(isinstance(r, str) and " ".join(words(r)) in wanted for r in refs or []):
            count += 1
    return count


async def delete(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Remove the resolved entities of the current deletion operation.

    Args:
        state: The turn's state; the current operation is a deletion whose target
            resolved to at least one entity (routing guarantees it).
        runtime: LangGraph runtime carrying the ``AgentContext``.

    Returns:
        The new working scenario and the operation's summary.
    """
    kind = state.operation.target
    key = collection_key(kind)
    assert key is not None  # routing sends only characters, locations and scenes here
    emit(runtime, events.status("deleting", node="delete", content=f"Deleting the {kind}"))
    ids = set(resolve(state.operation, state.working, state.message).ids)
    items = state.working.get(key)
    kept = [e for e in items or [] if not (isinstance(e, dict) and e.get("id") in ids)]
    names = [entity_label(e) for e in items or [] if isinstance(e, dict) and e.get("id") in ids]
    summary = f"Deleted the {kind} {', '.join(names)}."
    if kind != "scene" and (count := _still_named(state.working.get("scenes"), kind, names)):
        scenes = "scene still names" if count == 1 else "scenes still name"
        summary += f" {count} {scenes} it; edit them if you like."
    say(runtime, state, summary)
    return advance(state, summary, working={**state.working, key: kept})
