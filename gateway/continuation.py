"""Finishing an answer whose upstream died mid-stream, instead of cutting it short.

StoryWriter's stories are long generations, and the frontend's story generator ignores the
error frame that ends a failed stream: a writer would keep a half story that looks
finished. So when a stream fails after content was relayed (connection reset, read timeout
between chunks, malformed chunk, an in-band upstream error), the gateway asks again - the
same provider after a short backoff, or another serving the model - for the rest of the
same answer, and relays only the new text on the same client stream.

How to ask for the rest depends on the upstream (``[[providers]] continuation``): with
``prefill`` the answer so far goes as a final assistant message that the server extends
(llama.cpp, LM Studio and Ollama do so by themselves; vLLM is told with
``continue_final_message``); with ``instruction`` it is followed by a user message asking
to go on, and the relay drops whatever the model repeats at the seam. Structured output
(JSON schema, tools) is never continued: a JSON document cannot be resumed by guessing.
Each continuation is bounded (``[server] stream_continuations``), counted, logged and
paid for like the first attempt, within the request's credit hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from credits.models import UsageStatus
from credits.pricing import tokens_for
from gateway.proxy_call import Attempt
from gateway.proxy_call import ChatCall
from gateway.proxy_call import PaidCall
from gateway.proxy_call import call_record
from gateway.settlement import Settlements
from providers.calls import ModelCalls
from providers.calls import OpenedStream
from providers.errors import ProviderError
from providers.relay import StreamRelay
from providers.settings import ContinuationMode
from providers.tokens import estimate_prompt_tokens
from providers.upstream import Upstream
from providers.usage import UsageSource

__all__ = [
    "INSTRUCTION",
    "ContinuationPolicy",
    "Continuer",
    "continuation_payload",
    "is_structured",
]

log = logging.getLogger(__name__)

#: The shortest rest of an answer worth asking another upstream stream for.
_MIN_CONTINUATION_TOKENS = 16

INSTRUCTION = (
    "Your previous message was cut off. Continue it exactly where it stopped - in the "
    "middle of a word or sentence if that is where it stopped - without repeating anything "
    "and without any comment: write only the rest."
)
#: Fields that ask for structured output; such requests are never continued.
_STRUCTURED = ("response_format", "tools", "tool_choice", "functions", "function_call")


def is_structured(payload: Mapping[str, Any]) -> bool:
    """Whether a request asks for structured output (JSON schema, tool calls)."""
    return any(payload.get(name) for name in _STRUCTURED)


@dataclass(frozen=True, slots=True)
class ContinuationPolicy:
    """How many continuations a stream may have and how long to wait before each."""

    limit: int
    """``[server] stream_continuations``; 0 turns them off."""
    backoff_s: float
    """The pause before the first continuation, doubled for each next one."""

    def allows(self, done: int, payload: Mapping[str, Any], opted_out: bool) -> bool:
        """Whether a stream that already had ``done`` continuations may have another."""
        return not opted_out and done < self.limit and not is_structured(payload)

    def pause(self, done: int) -> float:
        """Seconds to wait before continuation number ``done + 1``."""
        return float(self.backoff_s * (2**done))


def continuation_payload(
    payload: Mapping[str, Any],
    answer_so_far: str,
    upstream: Upstream,
    max_tokens: int,
) -> dict[str, Any] | None:
    """The request that asks ``upstream`` for the rest of the answer (None: mode ``off``).

    Args:
        payload: The original request's fields (messages, sampling, max_tokens).
        answer_so_far: The content the client has received (or will, held-back tags too).
        upstream: Where the continuation goes (its ``continuation`` mode decides how).
        max_tokens: What the continuation may still generate.
    """
    mode: ContinuationMode = upstream.settings.continuation_mode
    if mode == "off":
        return None
    messages = list(payload.get("messages") or [])
    if answer_so_far:
        messages.append({"role": "assistant", "content": answer_so_far})
    body = {**payload, "messages": messages, "max_tokens": max_tokens}
    if not answer_so_far:
        return body  # nothing to extend: the same request again
    if mode == "instruction":
        messages.append({"role": "user", "content": INSTRUCTION})
    elif upstream.settings.kind == "vllm":
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    return body


class Continuer:
    """Asks for the rest of an answer whose stream died, on the pool's one path of calls."""

    def __init__(
        self, calls: ModelCalls, settlements: Settlements, policy: ContinuationPolicy
    ) -> None:
        self.calls = calls
        self.settlements = settlements
        self.policy = policy

    async def resume(
        self,
        call: ChatCall,
        start: PaidCall,
        relay: StreamRelay,
        failed: OpenedStream,
        error: ProviderError,
        attempts: list[Attempt],
    ) -> OpenedStream | None:
        """Ask for the rest of an answer whose stream failed, or None when it may not be.

        The module's docstring says why and how. The failed attempt is counted now (it
        reported no usage), and the continuation may generate no more than what the
        request may still get: its ``max_tokens`` and, for a member, its credit hold.
        """
        policy = self.policy
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
                call_record(call, attempts, time.monotonic(), UsageStatus.COMPLETED, byok=False)
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
            Attempt(upstream, UsageSource(upstream.name, model, sent["messages"], prompt, left))
        )
        return opened
