"""The ``clarify`` node: ask which entity is meant instead of guessing.

Two cases: the reference fits several entities ("her" with two women in the cast), or it
names one that does not exist ("Zoltan"). Either way nothing changes, and the follow-ups
are the request made unambiguous, so one click resends it (the frontend sends no history).
"""

from __future__ import annotations

from typing import Any

from agent import events
from agent.nodes.common import NodeRuntime
from agent.nodes.common import advance
from agent.nodes.common import emit
from agent.nodes.common import say
from agent.state import State
from agent.targets import entity_label
from agent.targets import resolve

__all__ = ["clarify"]


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


async def clarify(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Ask a clarifying question about an unclear target; change nothing.

    Args:
        state: The turn's state; the current operation's target could not be resolved.
        runtime: LangGraph runtime carrying the ``AgentContext``.

    Returns:
        The state update with the suggested follow-ups.
    """
    operation = state.operation
    kind = operation.target
    emit(runtime, events.status("clarifying", node="clarify", content="Checking what you mean"))
    found = resolve(operation, state.working, state.message)
    names = list(dict.fromkeys(entity_label(c) for c in found.candidates))
    request = (operation.prompt.strip() or state.message.strip()).rstrip(".!?")
    if found.missing:
        question = f"There is no {kind} called {found.missing} in this scenario."
        if names:
            question += f" Did you mean {_listing(names[:6])}?"
        if kind != "scene":
            question += f" Or should I add {found.missing} as a new {kind}?"
        suggestions = [f"Add a new {kind} named {found.missing}"] if kind != "scene" else []
        suggestions += [request.replace(found.missing, name) for name in names[:2]]
    elif names:
        question = f"Which {kind} do you mean: {_listing(names)}?"
        suggestions = [f"{request} ({name})" for name in names[:3]]
    else:
        question = f"There is no {kind} in this scenario yet. Should I create one?"
        suggestions = [f"Create a new {kind}"]
    say(runtime, state, question)
    return advance(state, f"asked which {kind} was meant", suggestions=suggestions)
