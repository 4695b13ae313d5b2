"""The first node: split the writer's message into operations (contract.md 8.4)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.messages import SystemMessage

from agent import events
from agent.examples import classification_shots
from agent.llm_schemas import Classification
from agent.nodes.common import NodeRuntime
from agent.nodes.common import emit
from agent.prompts import CLASSIFY
from agent.prompts import conversation
from agent.prompts import fill
from agent.state import State
from agent.structured import ask_structured
from agent.views import scenario_index

__all__ = ["classify"]


async def classify(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Classify the message into ordered operations with a structured-output call.

    Args:
        state: The turn's state (message, scenario, history).
        runtime: LangGraph runtime carrying the ``AgentContext``.

    Returns:
        The operations (at most ``max_operations``) and a fresh working scenario.
    """
    emit(runtime, events.status("analyzing", node="classify", content="Analyzing your request"))
    prompt = [
        SystemMessage(fill(CLASSIFY, index=scenario_index(state.scenario))),
        *classification_shots(),
        *conversation(state.history),
        HumanMessage(state.message),
    ]
    result = await ask_structured(runtime.context, Classification, prompt, name="classification")
    return {
        "operations": list(result.operations[: runtime.context.max_operations]),
        "cursor": 0,
        "working": dict(state.scenario),
    }
