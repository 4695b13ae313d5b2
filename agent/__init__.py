"""StoryWriter's scenario agent: a LangGraph that explains, edits and creates scenarios.

Transport-free by design (it never imports Quart): blueprints build an ``AgentContext``
around the provider pool and relay the events of ``stream_turn`` over SSE or WebSocket.
"""

from __future__ import annotations

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
from agent.schema import Character
from agent.schema import Location
from agent.schema import Scenario
from agent.schema import ScenarioUpdate
from agent.schema import Scene
from agent.schema import WritingStyle
from agent.state import HistoryMessage
from agent.stream import stream_turn

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
