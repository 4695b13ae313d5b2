"""One proxied chat completion from request to settled usage: hold, call, relay, settle.

Transport-free (no Quart): the blueprint validates the request, hands a ``ChatCall`` here
and returns what comes back. The call itself takes the one path every model call takes
(``providers.calls``: routing, slots, failover, timeouts, metrics); this module adds what
is the proxy's own - the credit hold, the relay of the stream in the contract's framing
with usage and cost at the end - and settles every ending exactly once through
``gateway.settlement``, in one ``finally``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from credits.models import UsageRecord
from credits.models import UsageStatus
from credits.models import new_request_id
from gateway.continuation import ContinuationPolicy
from gateway.continuation import Continuer
from gateway.holds import cap_reason
from gateway.holds import plan_hold
from gateway.holds import wanted_tokens
from gateway.proxy_call import Attempt
from gateway.proxy_call import ChatCall
from gateway.proxy_call import PaidCall
from gateway.proxy_call import ProxyStream
from gateway.proxy_call import call_record
from gateway.proxy_call import total_usage
from gateway.settlement import Settlements
from providers.calls import ModelCalls
from providers.calls import OpenedStream
from providers.calls import Route
from providers.errors import CallEnded
from providers.errors import ProviderError
from providers.errors import StreamTimeLimit
from providers.relay import ReasoningMode
from providers.relay import StreamRelay
from providers.relay import error_frame
from providers.tokens import estimate_prompt_tokens
from providers.upstream import Upstream
from providers.usage import Usage
from providers.usage import UsageSource

__all__ = ["ChatCall", "Gateway", "ProxyStream", "new_request_id"]

log = logging.getLogger(__name__)


class Gateway:
    """Proxied completions over the pool (members pay) or a BYOK upstream (free)."""

    def __init__(
        self,
        calls: ModelCalls,
        settlements: Settlements,
        *,
        min_completion_tokens: int = 256,
        continuation: ContinuationPolicy | None = None,
        max_stream_s: float | None = None,
    ) -> None:
        """Build the proxy.

        Args:
            calls: The one path of every model call.
            settlements: Holds before and settles after every call.
            min_completion_tokens: The shortest answer worth holding credits for: a member
                whose balance cannot pay for the prompt plus this many tokens gets 402.
            continuation: How streams cut mid-answer are continued (default: twice, after
                0.25 s then 0.5 s).
            max_stream_s: The longest a stream runs (``[server] max_stream_s``): it then
                ends with the ``max_stream_time`` error frame, charged for what was generated.
        """
        self.calls = calls
        self.pool = calls.pool
        self.settlements = settlements
        self.min_completion_tokens = min_completion_tokens
        self.continuation = continuation or ContinuationPolicy(limit=2, backoff_s=0.25)
        self._continuations = Continuer(calls, settlements, self.continuation)
        self.max_stream_s = max_stream_s

    @property
    def open_streams(self) -> int:
        """Streams being relayed right now (the agent's calls included)."""
        return self.calls.open_streams

    def stop_streams(self) -> int:
        """End every stream being relayed with the shutdown error frame; refuse none.

        Closing each upstream connection wakes its relay, which then sends one
        ``shutting_down`` error frame, releases its slot and settles what was generated.
        Returns how many streams were stopped.
        """
        return self.calls.stop()

    async def drain(self) -> None:
        """Wait for settlements still counting tokens, then the billing (at shutdown)."""
        await self.settlements.drain()

    async def _start(self, call: ChatCall, byok: Upstream | None) -> PaidCall:
        """Route and hold credits; the upstream is sent what the hold pays for."""
        route = await self.calls.route(call.model, call.user_id, byok)
        prompt = estimate_prompt_tokens(call.messages)
        wanted = wanted_tokens(call.max_tokens, route.output_limit)
        completion = wanted
        held: int | None = None
        if byok is None and self.settlements.charges:
            plan = plan_hold(
                prompt,
                call.max_tokens,
                route.multiplier,
                min_completion=self.min_completion_tokens,
                output_limit=route.output_limit,
            )
            held = await self.settlements.reserve(
                call.user_id, call.request_id, plan.maximum, plan.minimum
            )
            completion = plan.completion_for(held)
        reason = cap_reason(call.max_tokens, wanted, completion)
        return PaidCall(route, prompt, completion, reason, held)

    def _refused(self, call: ChatCall, route: Route) -> None:
        """Settle a call that reached no model: nothing charged, the hold released, logged."""
        self.settlements.settle(
            UsageRecord.of_calls(
                request_id=call.request_id,
                correlation_id=call.correlation_id,
                user_id=call.user_id,
                calls=(),
                duration_ms=0,
                status=UsageStatus.UPSTREAM_ERROR,
                byok=route.byok is not None,
                model=route.model,
            )
        )

    async def open_stream(self, call: ChatCall, byok: Upstream | None = None) -> ProxyStream:
        """Route, hold and open the upstream stream; errors here are real HTTP statuses."""
        started = time.monotonic()
        start = await self._start(call, byok)
        route = start.route
        try:
            opened = await self.calls.open_stream(
                route, call.payload(start.max_tokens), call.upstream_id, started=started
            )
        except BaseException:
            self._refused(call, route)
            raise
        source = UsageSource(
            opened.upstream.name,
            route.model,
            call.messages,
            start.prompt_estimate,
            start.max_tokens,
        )
        body = self._relay(call, opened, source, start, started, byok is not None)
        return ProxyStream(body=body, provider=opened.upstream.name, model=route.model)

    async def _relay(
        self,
        call: ChatCall,
        opened: OpenedStream,
        source: UsageSource,
        start: PaidCall,
        started: float,
        byok: bool,
    ) -> AsyncIterator[bytes]:
        ending = UsageStatus.CLIENT_DISCONNECT
        relay = StreamRelay(reasoning=call.reasoning, model=opened.model)
        attempts = [Attempt(opened.upstream, source)]
        settled = False
        loop = asyncio.get_running_loop()

        def too_long() -> None:  # ends the stream being read (a continuation's too)
            opened.end(StreamTimeLimit(self.max_stream_s or 0.0))

        limit = None
        if self.max_stream_s is not None:
            limit = loop.call_later(self.max_stream_s - (time.monotonic() - started), too_long)
        try:
            try:
                while True:
                    try:
                        out = relay.feed(opened.first)
                        # The frames of the read that ends the stream leave with our
                        # trailer, in one write: a fast upstream's whole answer often
                        # arrives in the first read.
                        if not relay.done:
                            if out:
                                yield out
                            out = b""
                            async with aclosing(opened.rest()) as rest:
                                async for data in rest:
                                    out = relay.feed(data)
                                    if relay.done:
                                        break
                                    if out:
                                        yield out
                                    out = b""
                        tail = relay.finish()
                        break
                    except CallEnded:  # shutdown or an operator's cancel: never resumed
                        raise
                    except ProviderError as error:
                        opened.failed(error)
                        if relay.unsent:
                            yield relay.unsent  # the good frames before the bad one
                        resumed = await self._continuations.resume(
                            call, start, relay, opened, error, attempts
                        )
                        if resumed is None:
                            raise
                        opened = resumed
                        if limit is not None and limit.when() <= loop.time():
                            too_long()  # the limit passed while it was being resumed
                last = attempts[-1]
                last.usage = last.source.now(relay.report, relay.attempt_text())
                if last.usage is None:
                    last.usage = await last.source.counted(relay.report, relay.attempt_text())
                priced = self.settlements.price(
                    call_record(call, attempts, started, UsageStatus.COMPLETED, byok)
                )
                extra = {
                    **_cost(priced, opened.upstream, byok),
                    **start.capped(relay.finish_reason),
                }
                if len(attempts) > 1:
                    extra["continuations"] = len(attempts) - 1
                ending = UsageStatus.COMPLETED
                # Durable (journaled) before the last frame: a worker killed after the
                # client has its answer cannot lose the charge.
                settled = True
                await self.settlements.settle_priced(priced)
                yield out + tail + relay.trailer(total_usage(attempts), extra)
            except CallEnded as ended:  # shutdown, or an operator's cancel (the console)
                ending = UsageStatus.CANCELLED  # bill what was generated, as for a cancel
                yield error_frame(ended.message, ended.code.lower())
            except ProviderError as error:
                ending = UsageStatus.UPSTREAM_ERROR
                log.warning(
                    "stream %s from %s failed: %s",
                    call.request_id,
                    opened.upstream.name,
                    error.code,
                )
                yield error_frame(error.message, error.code.lower())
        except asyncio.CancelledError:
            if ending == UsageStatus.CLIENT_DISCONNECT:
                ending = UsageStatus.CANCELLED
            raise
        finally:
            if limit is not None:
                limit.cancel()
            opened.close()
            if not settled:
                self._settle(call, attempts, relay, started, ending, byok)

    def _settle(
        self,
        call: ChatCall,
        attempts: list[Attempt],
        relay: StreamRelay,
        started: float,
        ending: UsageStatus,
        byok: bool,
    ) -> None:
        """Settle now when every attempt's usage is known, else once it is counted."""
        last = attempts[-1]
        if last.usage is None:
            last.usage = last.source.now(relay.report, relay.attempt_text())
        if last.usage is not None:
            self.settlements.settle(call_record(call, attempts, started, ending, byok))
            return
        report, text = relay.report, relay.attempt_text()

        async def counting() -> UsageRecord:
            last.usage = await last.source.counted(report, text)
            return call_record(call, attempts, started, ending, byok)

        self.settlements.settle_when_counted(counting())

    async def complete(self, call: ChatCall, byok: Upstream | None = None) -> dict[str, Any]:
        """A non-streamed completion as one ``chat.completion`` object with usage and cost."""
        started = time.monotonic()
        start = await self._start(call, byok)
        route = start.route
        try:
            upstream, answer = await self.calls.complete(
                route, call.payload(start.max_tokens), call.upstream_id, started=started
            )
        except BaseException:
            self._refused(call, route)
            raise
        content = _rewrite_message(answer, call.reasoning)
        source = UsageSource(
            upstream.name, route.model, call.messages, start.prompt_estimate, start.max_tokens
        )
        report = answer.get("usage")
        byok_call = byok is not None
        usage = source.now(report, content)
        if usage is not None:
            attempt = Attempt(upstream, source, usage)
            priced = self.settlements.price(
                call_record(call, [attempt], started, UsageStatus.COMPLETED, byok_call)
            )
            await self.settlements.settle_priced(priced)  # durable before the answer leaves
        else:
            # Our own counts, settled by a task even if this request is cancelled meanwhile.
            counted: asyncio.Future[Usage] = asyncio.get_running_loop().create_future()

            async def counting() -> UsageRecord:
                found = await source.counted(report, content)
                counted.set_result(found)
                attempt = Attempt(upstream, source, found)
                return call_record(call, [attempt], started, UsageStatus.COMPLETED, byok_call)

            self.settlements.settle_when_counted(counting())
            usage = await counted
            attempt = Attempt(upstream, source, usage)
            priced = self.settlements.price(
                call_record(call, [attempt], started, UsageStatus.COMPLETED, byok_call)
            )
        answer["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        answer.update(_cost(priced, upstream, byok_call))
        answer.update(start.capped(_finish_reason(answer)))
        return answer


def _finish_reason(answer: dict[str, Any]) -> object:
    choices = answer.get("choices") or []
    return choices[0].get("finish_reason") if choices and isinstance(choices[0], dict) else None


def _rewrite_message(answer: dict[str, Any], reasoning: ReasoningMode) -> str:
    """Apply 5.2 to a non-streamed answer; return its content for counting."""
    choices = answer.get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    if not isinstance(message, dict):
        return ""
    raw_content = message.get("content")
    content = raw_content if isinstance(raw_content, str) else ""
    thought = ""
    if reasoning != "passthrough":
        for key in ("reasoning_content", "reasoning"):
            value = message.pop(key, None)
            if isinstance(value, str) and value:
                thought = value
        if reasoning == "think" and thought:
            message["content"] = f"<think>{thought}</think>{content}"
    return content + thought


def _cost(record: UsageRecord, upstream: Upstream, byok: bool) -> dict[str, Any]:
    """The ``cost`` object of the final chunk and the JSON answer, from the priced record."""
    usd = (
        0.0 if byok else upstream.settings.cost_usd(record.prompt_tokens, record.completion_tokens)
    )
    return {"cost": {"credits": record.credits, "usd": usd, "provider": upstream.name}}
