"""One agent turn for either transport: hold credits, take the first slot, relay events.

Transport-free, next to the proxy's ``gateway.completions``: the SSE route and the
WebSocket session both call :meth:`AgentTurns.start`. Everything that can fail before the
first frame (validation, 402, 409) raises here; everything after is an event of the one
producer, ``agent.stream_turn``. The turn's model calls take the proxy's path
(``providers.chat_models`` over ``providers.calls``), and the turn is settled once, on every
ending, through ``gateway.settlement`` - each call priced at its own upstream's multiplier.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from collections.abc import Awaitable
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING
from typing import Any

from agent.events import AgentEvent
from agent.events import StatusEvent
from agent.events import failure
from agent.settings import AgentSettings
from agent.state import HistoryMessage
from credits.models import CallUsage
from credits.models import UsageRecord
from credits.models import UsageStatus
from credits.models import new_request_id
from gateway.agent_runtime import AgentLoader
from gateway.billing import DONE
from gateway.holds import HoldPlan
from gateway.holds import plan_hold
from gateway.settlement import Settlements
from providers.calls import ModelCalls
from providers.errors import StreamCancelled
from providers.errors import StreamTimeLimit
from providers.tokens import estimate_prompt_tokens
from providers.upstream import Upstream

if TYPE_CHECKING:  # the agent stack is imported on first use (gateway.agent_runtime)
    from providers.chat_models import PoolChatModels
    from providers.chat_models import TurnUsage

__all__ = ["AgentTurns", "MessageTooLong"]

#: Tokens of the agent's own instructions (and few-shot examples) in each call's prompt.
_STEP_OVERHEAD_TOKENS = 600


class MessageTooLong(ValueError):
    """The writer's message is longer than ``[agent] max_message_chars`` (400)."""

    status_code = 400
    code = "INVALID_REQUEST"

    def __init__(self, limit: int) -> None:
        self.message = f"message is longer than {limit} characters"
        super().__init__(self.message)

    @property
    def headers(self) -> dict[str, str]:
        """No extra headers."""
        return {}


class AgentTurns:
    """Runs agent turns over the pool's calls and settles each once."""

    def __init__(
        self,
        calls: ModelCalls,
        settlements: Settlements,
        settings: AgentSettings,
        loader: AgentLoader | None = None,
        *,
        min_completion_tokens: int = 256,
        max_stream_s: float | None = None,
    ) -> None:
        self.calls = calls
        self.settlements = settlements
        self.settings = settings
        self.min_completion_tokens = min_completion_tokens
        self.max_stream_s = max_stream_s
        """The longest a turn runs (``[server] max_stream_s``): checked at every event,
        the turn then ends with the agent's error pair, charged for the calls it made."""
        self.loader = loader or AgentLoader()
        self.count = 0
        """Turns being streamed by this worker right now."""

    async def start(
        self,
        user_id: str,
        message: str,
        scenario: Mapping[str, Any] | None,
        *,
        history: Sequence[HistoryMessage] = (),
        byok: Upstream | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Check, hold and take the first slot; return the turn's events to relay.

        Raises:
            MessageTooLong: the message is too long (400).
            InsufficientCredits: the balance cannot cover the turn's hold (402).
            ProviderError: no model (404), or the pool is full (409).
        """
        config = self.settings
        if len(message) > config.max_message_chars:
            raise MessageTooLong(config.max_message_chars)
        graph = await self.loader.get()  # loads the agent stack on the first turn
        from agent.context import AgentContext  # loaded by now: plain dictionary lookups
        from agent.context import resolve_profile
        from agent.stream import stream_turn
        from providers.chat_models import PoolChatModels
        from providers.chat_models import TurnUsage

        request_id = new_request_id()
        usage = TurnUsage()
        models = PoolChatModels(
            self.calls,
            usage,
            user=user_id,
            byok=byok,
            request_id=request_id,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
        )
        route = await self.calls.route(config.model, user_id, byok)
        if byok is None and self.settlements.charges:
            plan = self._plan(message, scenario or {}, route.multiplier)
            usage.held = await self.settlements.reserve(
                user_id, request_id, plan.maximum, plan.minimum
            )
        started = time.monotonic()
        try:
            await models.prepare(config.model)
        except BaseException:
            self._settle(request_id, user_id, usage, started, UsageStatus.UPSTREAM_ERROR, byok)
            raise
        kinds = (
            [byok.settings.kind]
            if byok is not None
            else [m.upstream.settings.kind for m in route.candidates or []]
        )
        context = AgentContext(
            models=models,
            model=config.model,
            supports_json_schema=config.supports_json_schema,
            structured_temperature=config.structured_temperature,
            max_scenario_chars=config.max_scenario_chars,
            model_profile=resolve_profile(config.model_profile, kinds),
        )
        events = stream_turn(
            graph, message=message, scenario=scenario, history=history, context=context
        )
        return self._relay(events, models, request_id, user_id, usage, byok, started)

    def _plan(self, message: str, scenario: Mapping[str, Any], multiplier: float) -> HoldPlan:
        """The turn's hold, from the calls it plans and what each shows the model.

        The plan (``[agent] reservation_calls``, 3 by default): the classification, one
        operation and the follow-ups, each up to ``max_tokens``. The classification and the
        follow-ups are shown the scenario's index; an operation is shown the scenario
        itself (what ``[agent] max_scenario_chars`` lets through). More operations get their
        calls while the hold lasts (``TurnUsage`` caps each call to what is left). The least
        useful turn - the classification and one short answer - is the 402 threshold.
        """
        from agent.views import scenario_index  # the agent stack is loaded by now
        from agent.views import scenario_json

        config = self.settings

        def tokens(text: str) -> int:
            return estimate_prompt_tokens([{"role": "user", "content": text}])

        asked = tokens(message)
        light = _STEP_OVERHEAD_TOKENS + asked + tokens(scenario_index(scenario))
        heavy = light + tokens(scenario_json(scenario, config.max_scenario_chars))
        calls = config.reservation_calls
        prompts = [light, heavy, *[heavy] * (calls - 3), light][:calls]
        return plan_hold(
            sum(prompts),
            config.max_tokens * calls,
            multiplier,
            min_completion=min(self.min_completion_tokens, config.max_tokens),
            min_prompt_tokens=sum(prompts[:2]),
        )

    async def _relay(
        self,
        events: AsyncGenerator[AgentEvent, None],
        models: PoolChatModels,
        request_id: str,
        user_id: str,
        usage: TurnUsage,
        byok: Upstream | None,
        started: float,
    ) -> AsyncGenerator[AgentEvent, None]:
        ending = UsageStatus.CLIENT_DISCONNECT
        self.count += 1
        deadline = None if self.max_stream_s is None else started + self.max_stream_s
        settled = False
        try:
            async with aclosing(events) as frames:
                async for event in frames:
                    if deadline is not None and time.monotonic() > deadline:
                        break  # closing the producer ends its model call
                    if isinstance(event, StatusEvent) and event.metadata.error:
                        ending = _failed_ending(event.metadata.code)
                    if _ends_turn(event) and usage.counted:
                        # Durable (journaled) before the turn's last frame, as the proxy's.
                        if ending == UsageStatus.CLIENT_DISCONNECT:
                            ending = UsageStatus.COMPLETED
                        settled = True
                        await self._settle(request_id, user_id, usage, started, ending, byok)
                    yield event
                else:
                    deadline = None
            if deadline is not None:
                ending = UsageStatus.CANCELLED  # ended on our side: bill the calls made
                too_long = StreamTimeLimit(self.max_stream_s or 0.0)
                for frame in failure(too_long.message, code=too_long.code):
                    yield frame
            elif ending == UsageStatus.CLIENT_DISCONNECT:
                ending = UsageStatus.COMPLETED
        except asyncio.CancelledError:
            ending = UsageStatus.CANCELLED
            raise
        finally:
            self.count -= 1
            models.close()
            if not settled:
                self._settle(request_id, user_id, usage, started, ending, byok)

    def _settle(
        self,
        request_id: str,
        user_id: str,
        usage: TurnUsage,
        started: float,
        ending: UsageStatus,
        byok: Upstream | None,
    ) -> Awaitable[None]:
        """Settle the turn; done once durable (at once when its calls are still counted)."""
        duration_ms = int((time.monotonic() - started) * 1000)

        def record(calls: list[CallUsage]) -> UsageRecord:
            last = calls[-1] if calls else None
            return UsageRecord.of_calls(
                request_id=request_id,
                user_id=user_id,
                calls=calls,
                duration_ms=duration_ms,
                status=ending,
                byok=byok is not None,
                provider=byok.name if byok is not None else "",
                model=f"agent:{last.model}" if last is not None else "agent",
            )

        if usage.counted:
            return self.settlements.settle(record(list(usage.calls)))

        async def counting() -> UsageRecord:
            return record(await usage.all_calls())

        self.settlements.settle_when_counted(counting())
        return DONE


def _ends_turn(event: AgentEvent) -> bool:
    """The turn's last frame: ``completed``, or the status of a failure."""
    return isinstance(event, StatusEvent) and (
        event.metadata.status == "completed" or bool(event.metadata.error)
    )


def _failed_ending(code: str | None) -> UsageStatus:
    """How a turn that ended with an error status is logged.

    A turn ended on our side (an operator's cancel, ``max_stream_s``) is a cancel, charged
    for what was generated; any other error is the upstream's.
    """
    ended_by_us = code in (StreamCancelled.code, StreamTimeLimit.code)
    return UsageStatus.CANCELLED if ended_by_us else UsageStatus.UPSTREAM_ERROR
