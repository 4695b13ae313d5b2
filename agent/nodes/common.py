"""Helpers every node uses: emitting frames and writing prose to the chat bubble.

Nodes emit their frames through LangGraph's stream writer (``stream_mode="custom"``) the
moment they have them, which is what lets prose reach the writer token by token while a
node is still running; ``agent.stream`` relays them unchanged.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent import events
from agent.context import AgentContext
from agent.events import AgentEvent
from agent.state import State

__all__ = ["NodeRuntime", "advance", "emit", "say", "separator"]

NodeRuntime = Runtime[AgentContext]
"""The runtime every node receives."""


def emit(runtime: NodeRuntime, event: AgentEvent) -> None:
    """Send one frame to the turn's consumer now."""
    runtime.stream_writer(event)


def separator(state: State) -> str:
    """Return the text that must precede new prose: a blank line after earlier prose."""
    return "\n\n" if state.wrote_text else ""


def say(runtime: NodeRuntime, state: State, text: str) -> None:
    """Append a whole piece of prose to the chat bubble as one streamed frame."""
    emit(runtime, events.chat_chunk(separator(state) + text))


def advance(state: State, done: str, **updates: Any) -> dict[str, Any]:
    """Return the state update that finishes the current operation.

    Args:
        state: The current state.
        done: One line saying what the operation did (feeds the follow-ups).
        **updates: Further state fields to set.
    """
    return {"cursor": state.cursor + 1, "done": [done], "wrote_text": True, **updates}
