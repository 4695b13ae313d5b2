"""One proxied call: the request, its route and hold, and the attempts its answer took.

Shared by ``gateway.completions`` (the relay) and ``gateway.continuation`` (which adds an
attempt when a stream dies mid-answer), so neither needs the other's internals.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from credits.models import CallUsage
from credits.models import UsageRecord
from credits.models import UsageStatus
from gateway.holds import CapReason
from providers.calls import Route
from providers.relay import ReasoningMode
from providers.upstream import Upstream
from providers.usage import Usage
from providers.usage import UsageSource

__all__ = ["Attempt", "ChatCall", "PaidCall", "ProxyStream", "call_record", "total_usage"]


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
class PaidCall:
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
class Attempt:
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


def total_usage(attempts: list[Attempt]) -> Usage:
    """The usage of every attempt of an answer, summed (what the client is told)."""
    return Usage(
        sum(a.counted.prompt_tokens for a in attempts),
        sum(a.counted.completion_tokens for a in attempts),
        reported=all(a.counted.reported for a in attempts),
    )


def call_record(
    call: ChatCall,
    attempts: list[Attempt],
    started: float,
    ending: UsageStatus,
    byok: bool,
) -> UsageRecord:
    """The settlement record of a call whose attempts are all counted."""
    return UsageRecord.of_calls(
        request_id=call.request_id,
        correlation_id=call.correlation_id,
        user_id=call.user_id,
        calls=[attempt.call_usage() for attempt in attempts],
        duration_ms=int((time.monotonic() - started) * 1000),
        status=ending,
        byok=byok,
    )
