"""The scenario agent over SSE: one turn per request (contract 8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint
from quart import Response
from quart import request

from agent.events import AgentEvent
from agent.events import failure
from blueprints.sse import SSE_HEADERS
from blueprints.sse import sse_response
from gateway.sessions import TurnMessage
from quart_app.facade import ErrorParts
from quart_app.facade import agent_health
from quart_app.facade import byok_upstream
from quart_app.facade import current_caller
from quart_app.facade import get_operations
from quart_app.facade import get_services
from quart_app.facade import rate_exempt
from quart_app.facade import rate_limit
from quart_app.facade import refusals_in_band

__all__ = ["blueprint"]

blueprint = Blueprint("agent_sse", __name__, url_prefix="/api/streaming_agent/scenario")


@blueprint.get("/stream/health")
@rate_exempt
async def get_agent_health() -> tuple[dict[str, Any], int]:
    """The frontend enables its chat panel only when this says ``healthy``.

    It asks when a writer opens that panel: the moment to start loading the agent stack
    in the background, so that the first turn rarely waits for it.
    """
    services = get_services()
    body, status = await agent_health(services, get_operations().readiness)
    if status == 200:
        services.turns.loader.warm()
    return body, status


def _refusal(parts: ErrorParts) -> Response:
    """A refusal as the turn's own failure pair, which the chat panel shows (contract 8.3)."""
    message = parts.message[:1].upper() + parts.message[1:]
    frames = failure(message, code=parts.code, retry_after=parts.retry_after)
    body = b"".join(b"data: " + frame.to_bytes() + b"\n\n" for frame in frames)
    response = Response(body, status=200, headers={**SSE_HEADERS, **parts.headers})
    response.timeout = None
    return response


@blueprint.post("/stream")
@rate_limit
@refusals_in_band(_refusal)
async def post_scenario_stream() -> Response:
    """Run one turn and stream its frames.

    A refusal before the first frame (auth, validation, rate limit, credits, busy, no
    model, unavailable) is sent in band, as the failure pair with ``metadata.code`` and
    ``metadata.retry_after``: the frontend reads no error status. ``?errors=status``
    answers the real HTTP status and JSON error body instead.
    """
    caller = current_caller()
    turn = TurnMessage.model_validate_json(await request.get_data())
    turns = get_services().turns
    events = await turns.start(
        caller.user_id, turn.message, turn.scenario, byok=await byok_upstream()
    )
    return sse_response(_frames(events))


async def _frames(events: AsyncIterator[AgentEvent]) -> AsyncIterator[bytes]:
    async for event in events:
        yield b"data: " + event.to_bytes() + b"\n\n"
