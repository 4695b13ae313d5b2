"""StoryWriter's scenario agent: a LangGraph that explains, edits and creates scenarios.

Transport-free by design (it never imports Quart): blueprints build an ``AgentContext``
around the provider pool and relay the events of ``stream_turn`` over SSE or WebSocket.

The names below are loaded on first use (PEP 562): the graph, its nodes and the langchain /
langgraph / openai stack under them weigh ~55 MiB per worker and a second of imports, which
a worker that only proxies completions should never pay. ``import agent.events`` (the wire
events, the scenario schema) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from agent.context import AgentContext
    from agent.context import ChatModelSource
    from agent.errors import AgentError
    from agent.errors import AgentOutputError
    from agent.errors import AgentRefusalError
    from agent.events import AgentEvent
    from agent.events import ChatEvent
    from agent.events import StatusEvent
    from agent.events import ToolCallEvent
    from agent.graph import AgentGraph
    from agent.graph import build_graph
    from agent.scenario import Character
    from agent.scenario import Location
    from agent.scenario import Scenario
    from agent.scenario import ScenarioUpdate
    from agent.scenario import Scene
    from agent.scenario import WritingStyle
    from agent.state import HistoryMessage
    from agent.stream import stream_turn

_HOMES = {
    "AgentContext": "agent.context",
    "ChatModelSource": "agent.context",
    "AgentError": "agent.errors",
    "AgentOutputError": "agent.errors",
    "AgentRefusalError": "agent.errors",
    "AgentEvent": "agent.events",
    "ChatEvent": "agent.events",
    "StatusEvent": "agent.events",
    "ToolCallEvent": "agent.events",
    "AgentGraph": "agent.graph",
    "build_graph": "agent.graph",
    "Character": "agent.scenario",
    "Location": "agent.scenario",
    "Scenario": "agent.scenario",
    "ScenarioUpdate": "agent.scenario",
    "Scene": "agent.scenario",
    "WritingStyle": "agent.scenario",
    "HistoryMessage": "agent.state",
    "stream_turn": "agent.stream",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain global
    return value


__all__ = [
    "AgentContext",
    "AgentError",
    "AgentEvent",
    "AgentGraph",
    "AgentOutputError",
    "AgentRefusalError",
    "Character",
    "ChatEvent",
    "ChatModelSource",
    "HistoryMessage",
    "Location",
    "Scenario",
    "ScenarioUpdate",
    "Scene",
    "StatusEvent",
    "ToolCallEvent",
    "WritingStyle",
    "build_graph",
    "stream_turn",
]
