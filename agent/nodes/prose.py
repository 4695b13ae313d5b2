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
from agent.patches import entity_by_id
from agent.prompts import CHAT
from agent.prompts import EXPLAIN
from agent.prompts import SMALL_CHAT
from agent.prompts import SMALL_EXPLAIN
from agent.prompts import fill
from agent.prompts import messages
from agent.state import State
from agent.targets import collection_key
from agent.targets import resolve
from agent.targets import target_label
from agent.views import entity_brief
from agent.views import scenario_index
from agent.views import scenario_json
from agent.views import story_brief

__all__ = ["chat", "explain", "stream_prose"]

_EMPTY_ANSWER = "(The AI model returned an empty answer. Please try rephrasing.)"
SMALL_PROSE_TOKENS = 200
"""Longest answer of a small model: ~3-5 s at 40-70 tokens/s; they ramble beyond it."""
SMALL_PROSE_SAMPLING = {"frequency_penalty": 0.5}
"""Keeps a small model's answer from looping ("a master of his own mind, a master of...")."""
SMALL_STORY_CHARS = 1100
"""The story brief a small model reads (~300 tokens: ~2.5 s at ~120 prompt tokens/s)."""


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
    small = context.model_profile == "small"
    limit: dict[str, Any] = (
        {"max_tokens": SMALL_PROSE_TOKENS, **SMALL_PROSE_SAMPLING} if small else {}
    )
    async with context.models.chat_model(context.model) as llm:
        async for chunk in llm.astream(list(prompt), **limit):
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


def _history(runtime: NodeRuntime) -> int | None:
    """Earlier messages a prose answer sees: two for a small model, all kept otherwise."""
    return 2 if runtime.context.model_profile == "small" else None


def _small_story(state: State) -> str:
    """What a small model is shown to explain: the entities asked about, or a brief."""
    operation = state.operation
    key = collection_key(operation.target)
    if key is not None:
        found = resolve(operation, state.working, state.message)
        entities = [entity_by_id(state.working.get(key), i) for i in found.ids]
        briefs = [entity_brief(e, operation.target) for e in entities if e is not None]
        if briefs:
            title = state.working.get("title")
            head = f"The story: {title}\n" if isinstance(title, str) and title else ""
            return head + f"The {operation.target}:\n" + "\n\n".join(briefs)
    return "The story:\n" + story_brief(state.working, SMALL_STORY_CHARS)


async def explain(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Explain or analyse part of the scenario (action ``details``)."""
    emit(runtime, events.status("explaining", node="explain", content="Reading your scenario"))
    if runtime.context.model_profile == "small":
        system = fill(SMALL_EXPLAIN, story=_small_story(state))
    else:
        scenario = scenario_json(state.working, runtime.context.max_scenario_chars)
        system = fill(EXPLAIN, scenario=scenario)
    await stream_prose(runtime, state, messages(system, state, max_history=_history(runtime)))
    return advance(state, f"explained the {target_label(state.operation.target)}")


async def chat(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Answer a message that is not about editing the scenario."""
    emit(runtime, events.status("chatting", node="chat", content="Writing an answer"))
    if runtime.context.model_profile == "small":
        system = SMALL_CHAT
    else:
        system = fill(CHAT, index=scenario_index(state.working))
    await stream_prose(runtime, state, messages(system, state, max_history=_history(runtime)))
    return advance(state, "answered a general question")
