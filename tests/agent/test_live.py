from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from agent import AgentContext
from agent import AgentEvent
from agent import stream_turn
from agent.events import ChatEvent
from agent.graph import AgentGraph
from tests.agent.fakes import FakeModels
from tests.agent.fakes import Hang
from tests.agent.fakes import Stream
from tests.agent.frames import classification

TOKENS = ["Once ", "upon ", "a ", "tide, ", "the ", "road ", "was ", "salt."]


async def test_prose_streams_while_the_model_is_generating(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    gate = asyncio.Event()
    models.script("classification", classification(("details", "scenario", "Tell me")))
    models.script("prose", Stream(TOKENS, gate=gate))
    seen_before_end: list[str] = []
    chunks: list[str] = []
    turn = stream_turn(graph, message="Tell me", scenario=scenario, context=context)
    async with aclosing(turn):
        async for frame in turn:
            if isinstance(frame, ChatEvent) and frame.streaming and frame.content:
                chunks.append(frame.content)
                if not models.finished.is_set():
                    seen_before_end.append(frame.content)
                gate.set()  # the model continues only once we saw its first token
    assert seen_before_end[:1] == ["Once "]
    assert chunks == TOKENS


async def test_cancelling_the_consumer_cancels_the_model_within_a_second(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("details", "scenario", "Tell me")))
    models.script("prose", Stream(TOKENS * 50, delay=0.05))
    first_chunk = asyncio.Event()

    async def consume() -> None:
        turn = stream_turn(graph, message="Tell me", scenario=scenario, context=context)
        async with aclosing(turn):
            async for frame in turn:
                if isinstance(frame, ChatEvent) and frame.content:
                    first_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_chunk.wait(), 5)
    task.cancel()
    await asyncio.wait_for(models.cancelled.wait(), 1)
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 1)
    assert task.cancelled()
    assert not models.finished.is_set()
    assert models.active == 0, "the pool slot must be released"


async def test_stopping_early_closes_the_graph(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    models.script("classification", classification(("details", "scenario", "Tell me")))
    models.script("prose", Stream(TOKENS * 50, delay=0.05))
    turn = stream_turn(graph, message="Tell me", scenario=scenario, context=context)
    async with aclosing(turn):
        async for frame in turn:
            if isinstance(frame, ChatEvent) and frame.content:
                break
    await asyncio.wait_for(models.cancelled.wait(), 1)
    assert models.active == 0


async def test_cancel_during_a_structured_call(
    graph: AgentGraph, context: AgentContext, models: FakeModels, scenario: dict[str, Any]
) -> None:
    hang = Hang()
    models.script("classification", hang)
    task = asyncio.create_task(
        _drain(stream_turn(graph, message="Tell me", scenario=scenario, context=context))
    )
    await asyncio.wait_for(hang.started.wait(), 5)
    task.cancel()
    await asyncio.wait_for(models.cancelled.wait(), 1)
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 1)
    assert task.cancelled() and models.active == 0


async def _drain(turn: AsyncGenerator[AgentEvent, None]) -> None:
    async with aclosing(turn):
        async for _ in turn:
            pass
