"""Which node performs the next operation: the graph's only branching rule.

Kept pure (state in, node name out) so it is cheap to run after every operation and easy
to test. Character, location and scene references are resolved here first, so an
ambiguous target (or a name that does not exist) goes to ``clarify`` instead of a node
that would have to guess.

One safety net sits on top of the classifier: replacing a scenario that has content is
the only destructive operation, and small models misclassify ("rename the hero" came
back as "create a scenario" from the embedded model). It therefore also needs the
request to speak of a whole story or scenario; otherwise the message gets a chat answer.
"""

from __future__ import annotations

import re
from typing import Literal

from agent.llm_schemas import Operation
from agent.state import State
from agent.targets import collection_key
from agent.targets import resolve

__all__ = ["Step", "route_next", "step_for"]

Step = Literal["explain", "chat", "modify", "create", "delete", "clarify", "commit"]

_TEXT_TARGETS = frozenset({"backstory", "storyarc", "writingStyle", "notes", "title", "synopsis"})
_CONTENT = ("title", "synopsis", "storyarc", "backstory", "notes", "characters", "locations")
_WHOLE = frozenset(
    {"scenario", "scenarios", "story", "stories", "plot", "premise", "scratch", "over"}
)


def _may_replace(operation: Operation, state: State) -> bool:
    if not any(state.working.get(key) for key in _CONTENT):
        return True
    words = re.findall(r"\w+", f"{operation.prompt} {state.message}".casefold())
    return not _WHOLE.isdisjoint(words)


def step_for(operation: Operation, state: State) -> Step:
    """Return the node that performs ``operation`` on the current working scenario."""
    action, target = operation.action, operation.target
    if action == "general_conversation":
        return "chat"
    if collection_key(target) and action in ("details", "modification", "deletion"):
        found = resolve(operation, state.working, state.message)
        if found.resolved:
            return (
                "modify"
                if action == "modification"
                else "delete"
                if action == "deletion"
                else "explain"
            )
        if action != "details" or found.missing:
            return "clarify"
        # Explaining all candidates is fine unless the writer pointed at one of them.
        return "clarify" if found.referenced and len(found.candidates) > 1 else "explain"
    if action == "details":
        return "explain"
    if action == "deletion":
        return "chat"  # only characters, locations and scenes can be deleted
    if action == "modification":
        return "modify"
    # creation
    if target == "scenario":
        return "create" if _may_replace(operation, state) else "chat"
    if collection_key(target):
        return "create"
    if target in _TEXT_TARGETS:
        return "modify"
    return "chat"


def route_next(state: State) -> Step:
    """Return the node for the next operation, or ``commit`` when all are done."""
    if state.cursor >= len(state.operations):
        return "commit"
    return step_for(state.operation, state)
