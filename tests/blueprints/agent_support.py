"""A scripted upstream that answers the agent's structured, prose and follow-up calls."""

from __future__ import annotations

import json
from typing import Any

import orjson

from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import FRONTEND_CHAT

AGENT = "/api/streaming_agent/scenario/stream"
_ = FRONTEND_CHAT


def schema_name(body: dict[str, Any]) -> str | None:
    """The json_schema name of a structured call, or None for prose."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        return str(response_format.get("json_schema", {}).get("name"))
    return None


def answer_with(
    upstream: ScriptedUpstream,
    answers: dict[str, Script | str],
    prose: list[str],
    *,
    delay_s: float = 0.0,
) -> None:
    """Route each agent call to its scripted answer by schema name; prose streams tokens."""

    def responder(body: dict[str, Any]) -> Script:
        name = schema_name(body)
        if name is None:
            return Script(pieces=prose, delay_s=delay_s)
        answer = answers.get(name, json.dumps({"questions": ["One?", "Two?", "Three?"]}))
        return answer if isinstance(answer, Script) else Script(pieces=[answer])

    upstream.responder = responder


def agent_frames(writes: list[bytes]) -> list[dict[str, Any]]:
    """Parse the agent's SSE writes, asserting whole frames per write."""
    out = []
    for write in writes:
        assert write.endswith(b"\n\n"), write
        for event in write[:-2].split(b"\n\n"):
            assert event.startswith(b"data: ")
            out.append(orjson.loads(event[6:]))
    return out


def apply(scenario: dict[str, Any], frames: list[dict[str, Any]]) -> dict[str, Any]:
    """Shallow-merge tool calls the way the frontend does."""
    merged = dict(scenario)
    for frame in frames:
        if frame["type"] == "tool_call":
            call = frame["metadata"]["tool_call"]
            params = call["parameters"]
            merged = {**merged, **(params.get("updated_scenario") or params.get("scenario") or {})}
    return merged
