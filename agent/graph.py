"""The scenario agent's LangGraph: classify, perform each operation in order, then finish.

::

    START -> classify -> route_next -+-> explain --+
                            ^        +-> chat -----+
                            |        +-> modify ---+
                            |        +-> create ---+--> route_next (next operation)
                            |        +-> delete ---+
                            |        +-> clarify --+
                            +--------+-> commit -> follow_ups -> END

A message with several operations loops through ``route_next`` once per operation, so
"rename the hero and add a tavern" performs both, and ``commit`` then sends their merged
result as one scenario change. The graph holds no per-request state: compile it once with
``build_graph()`` and share it; requests differ only by input and ``AgentContext``.
"""

from __future__ import annotations

from langgraph.graph import END
from langgraph.graph import START
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.context import AgentContext
from agent.nodes.clarify import clarify
from agent.nodes.classify import classify
from agent.nodes.create import create
from agent.nodes.delete import delete
from agent.nodes.finish import commit
from agent.nodes.finish import follow_ups
from agent.nodes.modify import modify
from agent.nodes.prose import chat
from agent.nodes.prose import explain
from agent.nodes.routing import route_next
from agent.state import InputState
from agent.state import State

__all__ = ["AgentGraph", "build_graph"]

AgentGraph = CompiledStateGraph[State, AgentContext, InputState, State]
"""The compiled scenario agent."""

_OPERATION_NODES = ("explain", "chat", "modify", "create", "delete", "clarify")


def build_graph() -> AgentGraph:
    """Build and compile the scenario agent graph (no checkpointer: a turn is self-contained).

    Returns:
        The compiled graph, to be passed to ``agent.stream.stream_turn``.
    """
    builder = StateGraph(State, context_schema=AgentContext, input_schema=InputState)
    builder.add_node("classify", classify)
    builder.add_node("explain", explain)
    builder.add_node("chat", chat)
    builder.add_node("modify", modify)
    builder.add_node("create", create)
    builder.add_node("delete", delete)
    builder.add_node("clarify", clarify)
    builder.add_node("commit", commit)
    builder.add_node("follow_ups", follow_ups)
    builder.add_edge(START, "classify")
    targets = [*_OPERATION_NODES, "commit"]
    for source in ("classify", *_OPERATION_NODES):
        builder.add_conditional_edges(source, route_next, targets)
    builder.add_edge("commit", "follow_ups")
    builder.add_edge("follow_ups", END)
    return builder.compile(name="scenario_agent")
