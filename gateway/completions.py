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
from dataclasses import dataclass
from typing import Any

from credits.models import CallUsage
from credits.models import UsageRecord
from credits.models import UsageStatus
from credits.models import new_request_id
from credits.pricing import tokens_for
from gateway.continuation import ContinuationPolicy
from gateway.continuation import continuation_payload
from gateway.holds import CapReason
from gateway.holds import cap_reason
from gateway.holds import plan_hold
from gateway.holds import wanted_tokens
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
#: The shortest rest of an answer worth asking another upstream stream for.
_MIN_CONTINUATION_TOKENS = 16


@dataclass(slots=True)
class ChatCall:
    """A validated chat completion request."""

    request_id: str
    """The service's own unique id: it keys the credit hold and the usage row."""
    user_id: str
    model: str | None
    messages: list[dict[str, Any]]
    max_tokens: int
    params: dict[str, Any]
    """Optional sampling fields to forward (temperature, top_p, seed, ...)."""
    reasoning: ReasoningMode
    keep_alive: str | int | None = None
    continuation: bool = True
    """False when the client opted out (``X-Stream-Continuation: off``)."""
    correlation_id: str | None = None
    """The client's ``X-Request-Id`` (or the one generated for the logs): forwarded
    upstream and logged for correlation, never a key - a client may reuse it at will."""

    @property
    def upstream_id(self) -> str:
        """The id sent upstream as ``X-Request-Id``."""
        return self.correlation_id or self.request_id

    def payload(self, max_tokens: int) -> dict[str, Any]:
        """The fields sent upstream (``providers.calls.request_body`` adds the rest)."""
        payload: dict[str, Any] = {
            "messages": self.messages,
            "max_tokens": max_tokens,
            **self.params,
        }
        if self.keep_alive is not None:
            payload["keep_alive"] = self.keep_alive
        return payload


@dataclass(slots=True)
class ProxyStream:
    """A stream whose upstream answered; iterate ``body`` to relay it."""

    body: AsyncIterator[bytes]
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class _Start:
    """A call routed and paid for: where it goes and the ``max_tokens`` it is sent."""

    route: Route
    prompt_estimate: int
    max_tokens: int
    capped_by: CapReason | None
    held: int | None = None
    """Credits held for it (None: it pays nothing - BYOK, or credits off)."""

    def capped(self, finish_reason: object) -> dict[str, Any]:
        """What the final chunk and the JSON answer say when the cap ended the answer."""
        if self.capped_by is None or finish_reason != "length":
            return {}
        return {"capped_by": self.capped_by, "max_tokens": self.max_tokens}


@dataclass(slots=True)
class _Attempt:
    """One upstream stream of an answer (a continuation adds another) and what it used."""

    upstream: Upstream
    source: UsageSource
    usage: Usage | None = None

    @property
    def counted(self) -> Usage:
        """The usage, once it is known."""
        assert self.usage is not None, "an attempt is counted before it is priced"
        return self.usage

    def call_usage(self) -> CallUsage:
        """This attempt as one call of the request's settlement."""
        usage = self.counted
        return CallUsage(
            self.upstream.name,
            self.source.model,
            usage.prompt_tokens,
            usage.completion_tokens,
            self.upstream.settings.multiplier,
        )


def _total(attempts: list[_Attempt]) -> Usage:
    """The usage of every attempt of an answer, summed (what the client is told)."""
    return Usage(
        sum(a.counted.prompt_tokens for a in attempts),
        sum(a.counted.completion_tokens for a in attempts),
        reported=all(a.counted.reported for a in attempts),
    )


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

    async def _start(self, call: ChatCall, byok: Upstream | None) -> _Start:
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
        return _Start(route, prompt, completion, reason, held)

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
        start: _Start,
        started: float,
        byok: bool,
    ) -> AsyncIterator[bytes]:
        ending = UsageStatus.CLIENT_DISCONNECT
        relay = StreamRelay(reasoning=call.reasoning, model=opened.model)
        attempts = [_Attempt(opened.upstream, source)]
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
                        resumed = await self._resume(call, start, relay, opened, error, attempts)
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
                    self._record(call, attempts, started, UsageStatus.COMPLETED, byok)
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
                yield out + tail + relay.trailer(_total(attempts), extra)
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

    async def _resume(
        self,
        call: ChatCall,
        start: _Start,
        relay: StreamRelay,
        failed: OpenedStream,
        error: ProviderError,
        attempts: list[_Attempt],
    ) -> OpenedStream | None:
        """Ask for the rest of an answer whose stream failed, or None when it may not be.

        ``gateway.continuation`` says why and how. The failed attempt is counted now (it
        reported no usage), and the continuation may generate no more than what the
        request may still get: its ``max_tokens`` and, for a member, its credit hold.
        """
        policy = self.continuation
        done = len(attempts) - 1
        payload = call.payload(start.max_tokens)
        if not policy.allows(done, payload, opted_out=not call.continuation):
            return None
        last = attempts[-1]
        last.usage = await last.source.counted(None, relay.attempt_text())
        failed.close()  # its slot is free for the continuation, which may go to it again
        left = start.max_tokens - sum(a.counted.completion_tokens for a in attempts)
        answer = relay.delivered_text()
        model = last.source.model
        route = await self.calls.route(model, call.user_id, start.route.byok)
        route.candidates = [
            m for m in route.candidates or [] if m.upstream.settings.continuation_mode != "off"
        ]
        byok = start.route.byok
        if (byok is not None and byok.settings.continuation_mode == "off") or (
            byok is None and not route.candidates
        ):
            return None
        probe = continuation_payload(payload, answer, byok or route.candidates[0].upstream, 1)
        prompt = estimate_prompt_tokens((probe or payload)["messages"])
        if start.held is not None:
            spent = self.settlements.price(
                self._record(call, attempts, time.monotonic(), UsageStatus.COMPLETED, byok=False)
            ).credits
            affordable = tokens_for(max(0, start.held - spent), route.multiplier)
            if affordable is not None:
                left = min(left, affordable - prompt)
        if left < _MIN_CONTINUATION_TOKENS:
            log.warning(
                "stream %s cannot be continued: %d tokens left of its limit or hold",
                call.request_id,
                left,
            )
            return None
        await asyncio.sleep(policy.pause(done))

        def fields(upstream: Upstream) -> dict[str, Any]:
            body = continuation_payload(payload, answer, upstream, left)
            return body if body is not None else {**payload, "max_tokens": left}

        try:
            opened = await self.calls.open_stream(
                route, fields, call.upstream_id, started=time.monotonic()
            )
        except ProviderError as refused:
            self.calls.observer.continuation(failed.upstream.name, "failed")
            log.warning(
                "stream %s could not be continued after %s: %s",
                call.request_id,
                error.code,
                refused.code,
            )
            return None
        upstream = opened.upstream
        self.calls.observer.continuation(upstream.name, "resumed")
        log.info(
            "stream %s continued on %s after %s (continuation %d of at most %d)",
            call.request_id,
            upstream.name,
            error.code,
            done + 1,
            policy.limit,
            extra={"event": "continuation", "request_id": call.request_id},
        )
        relay.continue_after_failure(repeats=upstream.settings.continuation_mode == "instruction")
        sent = fields(upstream)
        attempts.append(
            _Attempt(upstream, UsageSource(upstream.name, model, sent["messages"], prompt, left))
        )
        return opened

    def _settle(
        self,
        call: ChatCall,
        attempts: list[_Attempt],
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
            self.settlements.settle(self._record(call, attempts, started, ending, byok))
            return
        report, text = relay.report, relay.attempt_text()

        async def counting() -> UsageRecord:
            last.usage = await last.source.counted(report, text)
            return self._record(call, attempts, started, ending, byok)

        self.settlements.settle_when_counted(counting())

    @staticmethod
    def _record(
        call: ChatCall,
        attempts: list[_Attempt],
        started: float,
        ending: UsageStatus,
        byok: bool,
    ) -> UsageRecord:
        return UsageRecord.of_calls(
            request_id=call.request_id,
            correlation_id=call.correlation_id,
            user_id=call.user_id,
            calls=[attempt.call_usage() for attempt in attempts],
            duration_ms=int((time.monotonic() - started) * 1000),
            status=ending,
            byok=byok,
        )

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
            attempt = _Attempt(upstream, source, usage)
            priced = self.settlements.price(
                self._record(call, [attempt], started, UsageStatus.COMPLETED, byok_call)
            )
            await self.settlements.settle_priced(priced)  # durable before the answer leaves
        else:
            # Our own counts, settled by a task even if this request is cancelled meanwhile.
            counted: asyncio.Future[Usage] = asyncio.get_running_loop().create_future()

            async def counting() -> UsageRecord:
                found = await source.counted(report, content)
                counted.set_result(found)
                attempt = _Attempt(upstream, source, found)
                return self._record(call, [attempt], started, UsageStatus.COMPLETED, byok_call)

            self.settlements.settle_when_counted(counting())
            usage = await counted
            attempt = _Attempt(upstream, source, usage)
            priced = self.settlements.price(
                self._record(call, [attempt], started, UsageStatus.COMPLETED, byok_call)
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
