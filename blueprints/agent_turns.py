"""One agent turn for either transport: reserve credits, hold the first slot, relay events.

The SSE route and the WebSocket session both call ``start_turn``: everything that can fail
before the first frame (validation, 402, 409) raises here, as an HTTP status or a WebSocket
error frame; everything after is an event of the one producer, ``agent.stream_turn``.
Settling happens in one ``finally`` on every ending, as for proxy requests.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from collections.abc import Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from agent.context import AgentContext
from agent.events import AgentEvent
from agent.events import StatusEvent
from agent.state import HistoryMessage
from providers.billing import Billing
from providers.billing import Ending
from providers.billing import Settlement
from providers.pricing import estimate_reservation
from providers.tokens import estimate_prompt_tokens
from providers.upstream import Upstream
from quart_app.agent_profile import agent_profile
from quart_app.errors import APIError
from quart_app.services import get_services

if TYPE_CHECKING:  # the agent stack is imported on first use (quart_app.agent_runtime)
    from providers.agent_models import ActiveTurns
    from providers.agent_models import PoolChatModels
    from providers.agent_models import UsageMeter

__all__ = ["TurnRequest", "start_turn"]

#: Tokens of the agent's own instructions around the writer's message, for the estimate.
_PROMPT_OVERHEAD_TOKENS = 600


class TurnRequest(BaseModel):
    """Body of ``POST /api/streaming_agent/scenario/stream`` (contract 8.1)."""

    model_config = ConfigDict(extra="ignore")

    message: str = Field(min_length=1)
    """The writer's message."""
    scenario: dict[str, Any] | None = None
    """The current scenario; null or missing counts as empty."""


async def start_turn(
    user_id: str,
    turn: TurnRequest,
    *,
    history: Sequence[HistoryMessage] = (),
    byok: Upstream | None = None,
) -> AsyncGenerator[AgentEvent, None]:
    """Check, reserve and take the first slot; return the turn's events to relay.

    Raises:
        APIError: the message is too long (400).
        InsufficientCredits: the balance cannot cover the turn's estimate (402).
        ProviderError: no model, or the pool is full (409).
    """
    services = get_services()
    config = services.settings.agent
    if len(turn.message) > config.max_message_chars:
        raise APIError(
            400, "INVALID_REQUEST", f"message is longer than {config.max_message_chars} characters"
        )
    runtime = await services.agent.get()  # loads the agent stack on the first turn
    from agent.stream import stream_turn  # both loaded by now: plain dictionary lookups
    from providers.agent_models import PoolChatModels
    from providers.agent_models import UsageMeter

    pool = services.pool
    billing = services.gateway.billing
    request_id = uuid.uuid4().hex
    meter = UsageMeter()
    models = PoolChatModels(
        pool,
        runtime.client,
        meter,
        user=user_id,
        byok=byok,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
    )
    if byok is None:
        model = config.model or await pool.default_model()
        multiplier = max(m.upstream.settings.multiplier for m in await pool.candidates(model))
        shown = min(len(orjson.dumps(turn.scenario or {})), config.max_scenario_chars)
        message = [{"role": "user", "content": turn.message}]
        prompt = estimate_prompt_tokens(message) + shown // 3 + _PROMPT_OVERHEAD_TOKENS
        estimate = estimate_reservation(prompt, config.max_tokens, multiplier)
        await billing.reserve(user_id, request_id, estimate * config.reservation_calls)
    try:
        await models.prepare(config.model)
    except BaseException:
        billing.settle(_settlement(request_id, user_id, meter, 0.0, "upstream_error", byok))
        raise
    context = AgentContext(
        models=models,
        model=config.model,
        supports_json_schema=config.supports_json_schema,
        structured_temperature=config.structured_temperature,
        max_scenario_chars=config.max_scenario_chars,
        model_profile=await agent_profile(config, pool, byok),
    )
    events = stream_turn(
        runtime.graph,
        message=turn.message,
        scenario=turn.scenario,
        history=history,
        context=context,
    )
    return _relay(events, models, billing, runtime.turns, request_id, user_id, meter, byok)


async def _relay(
    events: AsyncGenerator[AgentEvent, None],
    models: PoolChatModels,
    billing: Billing,
    turns: ActiveTurns,
    request_id: str,
    user_id: str,
    meter: UsageMeter,
    byok: Upstream | None,
) -> AsyncGenerator[AgentEvent, None]:
    started = time.monotonic()
    ending: Ending = "client_disconnect"
    turns.count += 1
    try:
        async with aclosing(events) as frames:
            async for event in frames:
                if isinstance(event, StatusEvent) and event.metadata.error:
                    ending = "upstream_error"
                yield event
        if ending != "upstream_error":
            ending = "completed"
    except asyncio.CancelledError:
        ending = "cancelled"
        raise
    finally:
        turns.count -= 1
        models.close()
        seconds = time.monotonic() - started
        billing.settle(_settlement(request_id, user_id, meter, seconds, ending, byok))


def _settlement(
    request_id: str,
    user_id: str,
    meter: UsageMeter,
    seconds: float,
    ending: Ending,
    byok: Upstream | None,
) -> Settlement:
    last = meter.calls[-1] if meter.calls else None
    return Settlement(
        request_id=request_id,
        user_id=user_id,
        provider=last.provider if last else (byok.name if byok else ""),
        model=f"agent:{last.model}" if last else "agent",
        prompt_tokens=meter.prompt_tokens,
        completion_tokens=meter.completion_tokens,
        multiplier=last.multiplier if last else 0.0,
        duration_ms=int(seconds * 1000),
        ending=ending,
        byok=byok is not None,
        credits=meter.credits(byok is not None),
    )
