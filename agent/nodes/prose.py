"""Nodes that answer in prose: ``explain`` (details) and ``chat`` (general conversation).

Tokens are forwarded as ``chat`` frames while the upstream streams them, not after the
call returns; the pool slot is held only for the duration of that one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from agent import events
from agent.nodes.common import NodeRuntime
from agent.nodes.common import advance
from agent.nodes.common import emit
from agent.nodes.common import separator
from agent.prompts import CHAT
from agent.prompts import EXPLAIN
from agent.prompts import fill
from agent.prompts import messages
from agent.state import State
from agent.targets import target_label
from agent.views import scenario_index
from agent.views import scenario_json

__all__ = ["chat", "explain", "stream_prose"]

_EMPTY_ANSWER = "(The AI model returned an empty answer. Please try rephrasing.)"


async def stream_prose(runtime: NodeRuntime, state: State, prompt: Sequence[BaseMessage]) -> str:
    """Stream the model's answer to the chat bubble, token by token.

    Args:
        runtime: LangGraph runtime carrying the ``AgentContext``.
        state: The turn's state (decides the blank line before the answer).
        prompt: Messages to send.

    Returns:
        The whole text sent.
    """
    context = runtime.context
    lead = separator(state)
    parts: list[str] = []
    async with context.models.chat_model(context.model) as llm:
        async for chunk in llm.astream(list(prompt)):
            text = str(chunk.text)
            if not text:
                continue
            if not parts:
                text = lead + text
            emit(runtime, events.chat_chunk(text))
            parts.append(text)
    if not parts:
        parts.append(lead + _EMPTY_ANSWER)
        emit(runtime, events.chat_chunk(parts[0]))
    return "".join(parts)


async def explain(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Explain or analyse part of the scenario (action ``details``)."""
    emit(runtime, events.status("explaining", node="explain", content="Reading your scenario"))
    scenario = scenario_json(state.working, runtime.context.max_scenario_chars)
    await stream_prose(runtime, state, messages(fill(EXPLAIN, scenario=scenario), state))
    return advance(state, f"explained the {target_label(state.operation.target)}")


async def chat(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Answer a message that is not about editing the scenario."""
    emit(runtime, events.status("chatting", node="chat", content="Writing an answer"))
    system = fill(CHAT, index=scenario_index(state.working))
    await stream_prose(runtime, state, messages(system, state))
    return advance(state, "answered a general question")
