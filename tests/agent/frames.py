"""Helpers to run a turn and check its frames the way the frontend would read them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

from agent import AgentContext
from agent import AgentEvent
from agent import stream_turn
from agent.events import ChatEvent
from agent.events import StatusEvent
from agent.events import ToolCallEvent
from agent.graph import AgentGraph
from agent.scenario import Scenario
from agent.state import HistoryMessage


def classification(*operations: tuple[str, str, str] | tuple[str, str, str, str]) -> str:
    """Return a classification reply: (action, target, prompt[, entity]) per operation."""
    ops = [
        {"action": o[0], "target": o[1], "prompt": o[2], "entity": o[3] if len(o) > 3 else None}
        for o in operations
    ]
    return json.dumps({"operations": ops})


async def run_turn(
    graph: AgentGraph,
    context: AgentContext,
    message: str,
    scenario: Mapping[str, Any] | None,
    history: Sequence[HistoryMessage] = (),
) -> list[AgentEvent]:
    """Run a whole turn and return its frames."""
    frames: list[AgentEvent] = []
    turn = stream_turn(graph, message=message, scenario=scenario, history=history, context=context)
    async with aclosing(turn):
        async for event in turn:
            frames.append(event)
    return frames


def apply_frames(scenario: Mapping[str, Any], frames: Sequence[AgentEvent]) -> dict[str, Any]:
    """Apply tool_call frames as the frontend does: a shallow merge of the payload."""
    merged = dict(scenario)
    for frame in frames:
        if isinstance(frame, ToolCallEvent):
            call = frame.metadata.tool_call
            key = "updated_scenario" if call.action == "update_scenario" else "scenario"
            merged = {**merged, **call.parameters[key]}
    return merged


def tool_calls(frames: Sequence[AgentEvent]) -> list[ToolCallEvent]:
    return [f for f in frames if isinstance(f, ToolCallEvent)]


def statuses(frames: Sequence[AgentEvent]) -> list[str]:
    return [f.metadata.status for f in frames if isinstance(f, StatusEvent)]


def prose(frames: Sequence[AgentEvent]) -> str:
    """The bubble text the frontend would show after the streamed chunks."""
    return "".join(
        f.content
        for f in frames
        if isinstance(f, ChatEvent) and f.streaming and f.metadata.follow_up_questions is None
    )


def iter_entities(scenario: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("characters", "locations", "scenes"):
        for entity in scenario.get(key) or []:
            yield key, entity


def assert_intact(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    changed: Mapping[str, set[str]] | None = None,
    top: set[str] | None = None,
) -> None:
    """Check that a merged scenario validates and kept everything not asked to change.

    Args:
        before: The scenario the turn started from.
        after: The scenario after applying the turn's frames.
        changed: Per entity id, the fields the writer asked to change.
        top: Top-level keys (other than entity lists) the writer asked to change.
    """
    Scenario.model_validate(after)
    changed = changed or {}
    for key, value in before.items():
        if key not in ("characters", "locations", "scenes") and key not in (top or set()):
            assert after.get(key) == value, key
    now = {e["id"]: e for _, e in iter_entities(after)}
    assert len(now) == sum(1 for _ in iter_entities(after)), "duplicate ids"
    for _, entity in iter_entities(before):
        assert entity["id"] in now, f"lost {entity['id']}"
        kept = now[entity["id"]]
        for name, value in entity.items():
            if name not in changed.get(entity["id"], set()):
                assert kept.get(name) == value, (entity["id"], name)


def follow_up_frame(frames: Sequence[AgentEvent]) -> ChatEvent:
    """Check that a turn ended with the follow-ups and ``completed``; return the former."""
    *_, follow, done = frames
    assert done.to_dict() == {
        "type": "status",
        "content": "completed",
        "metadata": {"status": "completed"},
    }
    assert isinstance(follow, ChatEvent) and follow.metadata.final is True
    assert follow.metadata.follow_up_questions is not None
    assert len(follow.metadata.follow_up_questions) == 3
    return follow
