"""The provider pool as the agent's ``ChatModelSource``, with usage metered for credits.

Each agent LLM call leases a pool slot (or uses the caller's BYOK upstream) only while it
runs, and talks to the upstream through ``ChatOpenAI`` on one shared httpx client (the agent
makes a few calls per turn, so the openai SDK's client is fine here; the proxy's hot path
uses aiohttp). A callback records every call's token usage so the turn can be settled like
any proxy request: one reservation before the turn, one settlement after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from uuid import UUID

import httpx
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration
from langchain_core.outputs import LLMResult
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from providers.pool import Lease
from providers.pool import ProviderPool
from providers.pricing import credits_for
from providers.tokens import count_text_tokens
from providers.tokens import load_tokenizer
from providers.upstream import Upstream

__all__ = ["ActiveTurns", "CallUsage", "PoolChatModels", "UsageMeter"]


@dataclass(eq=False)
class ActiveTurns:
    """Agent turns being streamed by this worker, so that shutdown can end them.

    Closing the agent's HTTP client fails every call in flight (and any later one); each turn
    then ends with the agent's own error pair, settles what it used and releases its slot.
    """

    client: httpx.AsyncClient
    count: int = 0
    _closing: asyncio.Task[None] | None = field(default=None, repr=False)

    def stop(self) -> int:
        """End every turn in flight; returns how many there were."""
        if self.count:
            self._closing = asyncio.get_running_loop().create_task(self.client.aclose())
        return self.count


@dataclass(frozen=True, slots=True)
class CallUsage:
    """Tokens of one LLM call and the upstream that served it."""

    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    multiplier: float


@dataclass
class UsageMeter:
    """Usage of every call of one agent turn."""

    calls: list[CallUsage] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:  # noqa: D102
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:  # noqa: D102
        return sum(c.completion_tokens for c in self.calls)

    def credits(self, byok: bool) -> int:
        """The turn's price: each call at its own upstream's multiplier."""
        if byok:
            return 0
        return sum(
            credits_for(c.prompt_tokens, c.completion_tokens, c.multiplier) for c in self.calls
        )


class _Recorder(AsyncCallbackHandler):
    """Records one call's usage: the upstream's report, else our own count of the text."""

    def __init__(self, meter: UsageMeter, upstream: Upstream, model: str) -> None:
        self._meter = meter
        self._upstream = upstream
        self._model = model

    async def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        prompt = completion = 0
        text = ""
        for generations in response.generations:
            for generation in generations:
                text += generation.text
                message = generation.message if isinstance(generation, ChatGeneration) else None
                usage = message.usage_metadata if isinstance(message, AIMessage) else None
                if usage:
                    prompt += usage.get("input_tokens", 0)
                    completion += usage.get("output_tokens", 0)
        if not completion and text:
            await load_tokenizer(self._model)  # off the loop, the first time
            completion = count_text_tokens(text, self._model)
        settings = self._upstream.settings
        self._meter.calls.append(
            CallUsage(settings.name, self._model, prompt, completion, settings.multiplier)
        )


@dataclass(eq=False)
class PoolChatModels:
    """``agent.ChatModelSource`` over the pool, or over one BYOK upstream when given."""

    pool: ProviderPool
    client: httpx.AsyncClient
    meter: UsageMeter
    user: str = ""
    """Whose turn it is: the pool's per-user fairness applies to agent calls too."""
    byok: Upstream | None = None
    max_tokens: int = 512
    temperature: float = 0.7
    _ready: Lease | None = None

    async def prepare(self, model: str | None) -> None:
        """Take the first call's slot now, so a full pool answers 409 before streaming."""
        if self.byok is None and self._ready is None:
            name = model or await self.pool.default_model()
            self._ready = await self.pool.acquire(await self.pool.candidates(name), name, self.user)

    def close(self) -> None:
        """Give back a slot taken by ``prepare`` that no call used."""
        ready, self._ready = self._ready, None
        if ready is not None:
            ready.release()

    @asynccontextmanager
    async def chat_model(self, model: str | None) -> AsyncIterator[BaseChatModel]:
        """Hold a slot for one call and yield a ``ChatOpenAI`` bound to its upstream."""
        if self.byok is not None:
            lease = Lease(self.byok, None)
            name = model or ""
        elif self._ready is not None:
            lease, self._ready = self._ready, None
            name = model or await self.pool.default_model()
        else:
            name = model or await self.pool.default_model()
            lease = await self.pool.acquire(await self.pool.candidates(name), name, self.user)
        try:
            upstream = lease.upstream
            yield ChatOpenAI(
                model=name,
                base_url=upstream.settings.base_url,
                api_key=SecretStr(upstream.secret or "unused"),
                http_async_client=self.client,
                max_retries=0,
                timeout=upstream.settings.first_byte_timeout_s,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                stream_usage=True,
                callbacks=[_Recorder(self.meter, upstream, name)],
            )
        finally:
            lease.release()
