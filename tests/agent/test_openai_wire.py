"""The agent through the real ChatOpenAI client against a scripted OpenAI-compatible upstream.

This checks what the fake chat model cannot: the JSON-schema request body, SSE token
streaming through the openai SDK, and that cancelling a turn closes the HTTP stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from contextlib import aclosing
from contextlib import asynccontextmanager
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agent import AgentContext
from agent import stream_turn
from agent.events import ChatEvent
from agent.graph import AgentGraph
from tests.agent.frames import apply_frames
from tests.agent.frames import assert_intact
from tests.agent.frames import classification
from tests.agent.frames import prose


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def _chunk(model: str, content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


class ScriptedOpenAI:
    """An OpenAI-compatible upstream on httpx.MockTransport, plus a pool-like source."""

    def __init__(self, answers: dict[str, str], tokens: list[str], delay: float = 0.0) -> None:
        self.answers = answers
        self.tokens = tokens
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.stream_closed = asyncio.Event()
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        assert request.url.path == "/v1/chat/completions"
        if body.get("stream"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=self.sse(body["model"])
            )
        name = body["response_format"]["json_schema"]["name"]
        return httpx.Response(200, json=_completion(body["model"], self.answers[name]))

    async def sse(self, model: str) -> AsyncIterator[bytes]:
        try:
            for token in self.tokens:
                yield _chunk(model, token)
                await asyncio.sleep(self.delay)
            yield _chunk(model, None, "stop") + b"data: [DONE]\n\n"
        finally:
            self.stream_closed.set()

    def chat_model(self, model: str | None) -> AbstractAsyncContextManager[BaseChatModel]:
        return self._lease(model)

    @asynccontextmanager
    async def _lease(self, model: str | None) -> AsyncIterator[BaseChatModel]:
        yield ChatOpenAI(
            model=model or "smollm2",
            base_url="http://upstream.test/v1",
            api_key=SecretStr("sk-test"),
            http_async_client=self.client,
            max_retries=0,
            temperature=0.7,
        )


async def test_modify_and_explain_through_chat_openai(
    graph: AgentGraph, scenario: dict[str, Any]
) -> None:
    upstream = ScriptedOpenAI(
        {
            "classification": classification(
                ("modification", "character", "Rename Mira to Ann", "Mira"),
                ("details", "character", "describe her", "Ann"),
            ),
            "character_edit": json.dumps({"name": "Ann"}),
            "follow_ups": json.dumps({"questions": ["A?", "B?", "C?"]}),
        },
        ["Ann ", "is ", "a ", "cartographer."],
    )
    context = AgentContext(models=upstream, model="tiny")
    frames = []
    turn = stream_turn(
        graph, message="Rename Mira to Ann and describe her", scenario=scenario, context=context
    )
    async with aclosing(turn):
        async for frame in turn:
            frames.append(frame)
    await upstream.client.aclose()

    after = apply_frames(scenario, frames)
    assert after["characters"][1]["name"] == "Ann"
    assert_intact(scenario, after, changed={"legacy-id-mira": {"name"}})
    assert prose(frames).endswith("\n\nAnn is a cartographer.")
    assert frames[-1].to_dict()["metadata"] == {"status": "completed"}
    structured = [b for b in upstream.bodies if "response_format" in b]
    assert [b["response_format"]["json_schema"]["name"] for b in structured] == [
        "classification",
        "character_edit",
        "follow_ups",
    ]
    assert all(
        b["model"] == "tiny" and b["response_format"]["type"] == "json_schema" for b in structured
    )
    (streamed,) = [b for b in upstream.bodies if b.get("stream")]
    assert "response_format" not in streamed
    # JSON steps sample greedily; prose keeps the model's own temperature (0.7 here).
    assert [b["temperature"] for b in structured] == [0.0, 0.0, 0.0]
    assert streamed["temperature"] == 0.7


async def test_cancel_closes_the_upstream_stream(
    graph: AgentGraph, scenario: dict[str, Any]
) -> None:
    upstream = ScriptedOpenAI(
        {"classification": classification(("details", "scenario", "Tell me"))},
        ["word "] * 500,
        delay=0.02,
    )
    context = AgentContext(models=upstream)
    got_chunk = asyncio.Event()

    async def consume() -> None:
        turn = stream_turn(graph, message="Tell me", scenario=scenario, context=context)
        async with aclosing(turn):
            async for frame in turn:
                if isinstance(frame, ChatEvent) and frame.content:
                    got_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_chunk.wait(), 5)
    task.cancel()
    await asyncio.wait_for(upstream.stream_closed.wait(), 1)
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    await upstream.client.aclose()
