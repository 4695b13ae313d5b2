"""The first node: split the writer's message into operations (contract.md 8.4).

A large model classifies the message itself. For a small one (``model_profile =
"small"``) code reads the request first (``agent.commands``); only a message the rules
cannot read goes to the model, which then answers two words (what, about what) under a
grammar, and code finds the entity.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.messages import SystemMessage

from agent import events
from agent.commands import from_intent
from agent.commands import parse_request
from agent.examples import classification_shots
from agent.examples import intent_shots
from agent.llm_schemas import Action
from agent.llm_schemas import Classification
from agent.llm_schemas import Operation
from agent.llm_schemas import Target
from agent.nodes.common import NodeRuntime
from agent.nodes.common import emit
from agent.prompts import CLASSIFY
from agent.prompts import SMALL_INTENT
from agent.prompts import conversation
from agent.prompts import fill
from agent.sketches import Intent
from agent.state import State
from agent.structured import ask_structured
from agent.views import scenario_index

__all__ = ["classify"]


_INTENT_ACTIONS: dict[str, Action] = {
    "explain": "details",
    "chat": "general_conversation",
    "change": "modification",
    "add": "creation",
    "delete": "deletion",
}
_INTENT_TARGETS: dict[str, Target] = {
    "story": "scenario",
    "character": "character",
    "location": "location",
    "scene": "scene",
    "style": "writingStyle",
}


async def _by_model(state: State, runtime: NodeRuntime) -> list[Operation]:
    """A large model splits the message into operations itself."""
    prompt = [
        SystemMessage(fill(CLASSIFY, index=scenario_index(state.scenario))),
        *classification_shots(),
        *conversation(state.history),
        HumanMessage(state.message),
    ]
    result = await ask_structured(runtime.context, Classification, prompt, name="classification")
    return list(result.operations)


async def _by_rules(state: State, runtime: NodeRuntime) -> list[Operation]:
    """Code reads the request; a small model only sorts what the rules could not read."""
    parsed = parse_request(state.message, state.scenario)
    if parsed is not None:
        return list(parsed)
    prompt = [SystemMessage(SMALL_INTENT), *intent_shots(), HumanMessage(state.message)]
    intent = await ask_structured(
        runtime.context,
        Intent,
        prompt,
        name="intent",
        max_tokens=40,
        understood="get help with your story",
        suggestion=(
            'Try a direct request, for example "Add a character named ...", '
            '"Rename ... to ...", "Make ... older" or "Explain the main conflict".'
        ),
    )
    action = _INTENT_ACTIONS[intent.action]
    target = _INTENT_TARGETS[intent.target]
    return [from_intent(action, target, state.message, state.scenario)]


async def classify(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Split the message into ordered operations: by the model, or by rules (small profile).

    Args:
        state: The turn's state (message, scenario, history).
        runtime: LangGraph runtime carrying the ``AgentContext``.

    Returns:
        The operations (at most ``max_operations``) and a fresh working scenario.
    """
    emit(runtime, events.status("analyzing", node="classify", content="Analyzing your request"))
    if runtime.context.model_profile == "small":
        operations = await _by_rules(state, runtime)
    else:
        operations = await _by_model(state, runtime)
    return {
        "operations": operations[: runtime.context.max_operations],
        "cursor": 0,
        "working": dict(state.scenario),
    }
