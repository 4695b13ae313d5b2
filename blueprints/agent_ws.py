"""Two-way agent sessions over a WebSocket: multi-turn history, cancel, keep-alive.

Protocol (JSON text messages; the server's turn frames are exactly the SSE envelope):

- Auth without headers: ``?token=<JWT>`` in the URL, or a first message
  ``{"type":"auth","token":"<JWT>"}`` within ``[agent] ws_auth_timeout_s``. Failure closes
  with 1008.
- Client: ``{"type":"message","message":str,"scenario":obj|null}`` runs a turn;
  ``{"type":"cancel"}`` stops the running turn within a second (queued messages are
  dropped too); ``{"type":"reset"}`` forgets the history; ``{"type":"ping"}`` -> ``pong``.
- A message arriving while a turn runs is QUEUED (up to ``ws_max_queued``) and runs after
  it, in order; beyond that it is refused with an error frame.
- Server: ``{"type":"session","status":"ready",...}`` once authenticated, the turn frames,
  ``{"type":"status","content":"cancelled","metadata":{"status":"cancelled"}}`` after a
  cancel, ``{"type":"error","code":...,"error":...}`` for a refused message (bad frame,
  rate limit, credits, busy: the session stays open), ``{"type":"ping"}`` when idle.
- BYOK: ``X-BYOK-*`` headers on the handshake (clients that can set them) apply to every
  turn of the session, like on the SSE endpoint; refused ones close with 1008.
- Close codes: 1008 auth or policy (repeated bad frames), 1009 a message over
  ``ws_max_message_bytes``, 1011 an unexpected server error.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from quart import Blueprint
from quart import websocket

from gateway.sessions import AgentSession
from gateway.sessions import SessionClosed
from providers.errors import ProviderError
from quart_app.facade import APIError
from quart_app.facade import byok_upstream
from quart_app.facade import check_message_limits
from quart_app.facade import error_parts
from quart_app.facade import get_services
from quart_app.facade import rate_exempt
from quart_app.facade import websocket_caller

__all__ = ["blueprint"]

log = logging.getLogger(__name__)
blueprint = Blueprint("agent_ws", __name__, url_prefix="/api/streaming_agent/scenario")


@blueprint.websocket("/ws")
@rate_exempt  # each message is limited instead (AgentSession's admit)
async def scenario_session() -> None:
    """Authenticate, then serve messages until the client leaves."""
    await websocket.accept()
    services = get_services()
    session_id = uuid.uuid4().hex
    try:
        caller = await websocket_caller(services.settings.agent.ws_auth_timeout_s)

        async def admit() -> None:
            (await check_message_limits(caller)).finish()

        session = AgentSession(
            services.turns,
            services.settings.agent,
            session_id=session_id,
            user_id=caller.user_id,
            send=websocket.send,
            admit=admit,
            refusal=_refusal,
            byok=await byok_upstream(websocket.headers),
        )
        await session.serve(websocket.receive)
    except SessionClosed as closed:
        await websocket.close(closed.code, closed.reason)
    except (APIError, ProviderError) as refused:  # authentication or BYOK headers refused
        await websocket.close(1008, refused.message[:120])
    except asyncio.CancelledError:
        raise  # the client went away: Quart cancels us, and that must propagate
    except Exception:
        log.exception("agent session %s crashed", session_id)
        await websocket.close(1011, "internal error")


def _refusal(error: Exception) -> dict[str, Any]:
    """The error frame for a refused message (the session stays open)."""
    parts = error_parts(error)
    frame: dict[str, Any] = {
        "type": "error",
        "code": parts.code,
        "error": parts.message,
        "status": parts.status,
    }
    if parts.detail is not None:
        frame["detail"] = parts.detail
    if parts.retry_after is not None:
        frame["retry_after"] = parts.retry_after
    return frame
