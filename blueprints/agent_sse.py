"""The scenario agent over SSE: one turn per request (contract 8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint
from quart import Response
from quart import request

from agent.events import AgentEvent
from blueprints.sse import sse_response
from gateway.sessions import TurnMessage
from quart_app.facade import byok_upstream
from quart_app.facade import current_caller
from quart_app.facade import get_services
from quart_app.facade import rate_exempt
from quart_app.facade import rate_limit

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
    ready = bool(services.pool.members)
    if ready:
        services.turns.loader.warm()
    body = {
        "status": "healthy" if ready else "unhealthy",
        "agent": "scenario",
        "model": services.settings.agent.model,
        "providers": len(services.pool.members),
    }
    return body, 200 if ready else 503


@blueprint.post("/stream")
@rate_limit
async def post_scenario_stream() -> Response:
    """Run one turn and stream its frames; errors before the first frame are statuses."""
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
