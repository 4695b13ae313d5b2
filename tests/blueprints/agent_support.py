"""A scripted upstream that answers the agent's structured, prose and follow-up calls."""

from __future__ import annotations

import json
from typing import Any

import orjson
from quart import Response

from bench.upstream import Script
from bench.upstream import ScriptedUpstream

AGENT = "/api/streaming_agent/scenario/stream"
#: The query that keeps real HTTP statuses for the agent's refusals (API clients).
STATUSES = {"errors": "status"}


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


def rename_mira_to_ann(upstream: ScriptedUpstream, *, delay_s: float) -> None:
    """Script a turn that renames Mira to Ann, then describes her in streamed prose."""
    from tests.agent.frames import classification

    answer_with(
        upstream,
        {
            "classification": classification(
                ("modification", "character", "Rename Mira to Ann", "Mira"),
                ("details", "character", "describe her", "Ann"),
            ),
            "character_edit": json.dumps({"name": "Ann"}),
        },
        ["Ann ", "is ", "a ", "cartographer."],
        delay_s=delay_s,
    )


def agent_frames(writes: list[bytes]) -> list[dict[str, Any]]:
    """Parse the agent's SSE writes, asserting whole frames per write."""
    out = []
    for write in writes:
        assert write.endswith(b"\n\n"), write
        for event in write[:-2].split(b"\n\n"):
            assert event.startswith(b"data: ")
            out.append(orjson.loads(event[6:]))
    return out


async def refusal(response: Response) -> tuple[str, int | None]:
    """``(code, retry_after)`` of a refusal the agent endpoint sent in band (contract 8.3).

    Asserts the shape the chat panel needs: HTTP 200, a non-streaming chat frame with a
    readable message, then the terminal error status carrying the code.
    """
    assert response.status_code == 200
    assert response.content_type.startswith("text/event-stream")
    frames = agent_frames([await response.get_data()])
    assert [f["type"] for f in frames] == ["chat", "status"]
    chat, status = frames
    assert chat["streaming"] is False and chat["content"][:1].isupper()
    metadata = status["metadata"]
    assert metadata["status"] == "error" and metadata["error"] == chat["content"]
    return metadata["code"], metadata.get("retry_after")


def apply(scenario: dict[str, Any], frames: list[dict[str, Any]]) -> dict[str, Any]:
    """Shallow-merge tool calls the way the frontend does."""
    merged = dict(scenario)
    for frame in frames:
        if frame["type"] == "tool_call":
            call = frame["metadata"]["tool_call"]
            params = call["parameters"]
            merged = {**merged, **(params.get("updated_scenario") or params.get("scenario") or {})}
    return merged
