"""The agent's LangChain chat models, riding on the same calls as the proxy.

The graph talks to ``ChatOpenAI`` (langchain-openai, as the design card says), but every
HTTP request the openai SDK makes goes through :class:`PoolTransport`, an httpx transport
that hands it to ``providers.calls.ModelCalls``: so an agent call gets exactly what a proxy
call gets - the pool's slots and per-user fairness, failover to the next upstream before
the first byte, the same timeouts, the same ``providers.errors`` types and codes (they
propagate through the SDK unwrapped), time to first token and upstream errors in the
metrics, and the usage rule of ``providers.usage``. No second HTTP stack: the bytes travel
over the upstreams' aiohttp sessions. Each call's tokens are kept in a :class:`TurnUsage`
so that the turn is settled like any proxy request: one hold before it, one settlement
after it, each call priced at its own upstream's multiplier.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from contextlib import asynccontextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx
import orjson
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from credits.models import CallUsage
from credits.pricing import credits_for
from credits.pricing import tokens_for
from providers.calls import ModelCalls
from providers.calls import OpenedStream
from providers.calls import Route
from providers.errors import BudgetExhausted
from providers.errors import ProviderError
from providers.errors import ShuttingDown
from providers.errors import UpstreamProtocolError
from providers.relay import StreamRelay
from providers.tokens import estimate_prompt_tokens
from providers.upstream import Upstream
from providers.usage import Usage
from providers.usage import UsageSource

__all__ = ["PoolChatModels", "PoolTransport", "TurnUsage"]

#: The shortest answer worth sending a call for when a turn's hold runs low.
_MIN_CALL_TOKENS = 16
#: ChatOpenAI needs a base URL; requests never leave through it (the transport routes them).
_POOL_URL = "http://model-pool.invalid/v1"


@dataclass(eq=False)
class TurnUsage:
    """The tokens of every call of one agent turn, in order, and the turn's credit budget."""

    calls: list[CallUsage] = field(default_factory=list)
    held: int | None = None
    """Credits the turn holds; None when it pays nothing (BYOK, credits off)."""
    _counting: set[asyncio.Task[None]] = field(default_factory=set)
    _pending_credits: int = 0
    """The most the calls still being counted may cost."""

    def record(self, upstream: Upstream, model: str, usage: Usage) -> None:
        """Add one call's usage."""
        self.calls.append(
            CallUsage(
                upstream.name,
                model,
                usage.prompt_tokens,
                usage.completion_tokens,
                upstream.settings.multiplier,
            )
        )

    def record_when_counted(
        self, source: UsageSource, upstream: Upstream, report: Any, text: str
    ) -> None:
        """Add one call's usage, now if it is known, else once the tokenizer counted it."""
        usage = source.now(report, text)
        if usage is not None:
            self.record(upstream, source.model, usage)
            return
        worst = credits_for(
            source.prompt_estimate, source.max_tokens or 0, upstream.settings.multiplier
        )
        self._pending_credits += worst

        async def count() -> None:
            try:
                self.record(upstream, source.model, await source.counted(report, text))
            finally:
                self._pending_credits -= worst

        task = asyncio.get_running_loop().create_task(count())
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    def spent(self) -> int:
        """Credits the calls so far cost (the most, for calls still being counted)."""
        known = sum(
            credits_for(c.prompt_tokens, c.completion_tokens, c.multiplier) for c in self.calls
        )
        return known + self._pending_credits

    def completion_cap(self, prompt_estimate: int, asked: int, multiplier: float) -> int:
        """The ``max_tokens`` the next call may be sent so the turn stays within its hold.

        Raises:
            BudgetExhausted: what is left pays for no answer after this call's prompt.
        """
        if self.held is None:
            return asked
        affordable = tokens_for(max(0, self.held - self.spent()), multiplier)
        if affordable is None:
            return asked
        cap = min(asked, affordable - prompt_estimate)
        if cap < _MIN_CALL_TOKENS:
            raise BudgetExhausted(
                "Your credits ran out during this turn: the next step of the assistant would "
                "cost more than your balance had left. Add credits, or ask for something "
                "smaller, and try again."
            )
        return cap

    @property
    def counted(self) -> bool:
        """Every call's usage is known."""
        return not self._counting

    async def all_calls(self) -> list[CallUsage]:
        """Every call's usage, once those still being counted are done."""
        while self._counting:
            await asyncio.gather(*self._counting, return_exceptions=True)
        return list(self.calls)


class _StreamBody(httpx.AsyncByteStream):
    """An upstream stream as an httpx response body: the raw bytes, checked and metered."""

    def __init__(self, opened: OpenedStream, source: UsageSource, usage: TurnUsage) -> None:
        self._opened = opened
        self._source = source
        self._usage = usage
        self._relay = StreamRelay(reasoning="passthrough", model=opened.model)
        self._recorded = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        relay, opened = self._relay, self._opened
        try:
            # The relay parses each frame (never invalid JSON, in-band errors raised as the
            # proxy raises them) and keeps the usage report; the SDK reads the raw bytes.
            relay.feed(opened.first)
            yield opened.first
            if not relay.done:
                async with aclosing(opened.rest()) as rest:
                    async for data in rest:
                        relay.feed(data)
                        yield data
                        if relay.done:
                            break
            relay.finish()
        except ShuttingDown:
            raise
        except ProviderError as error:
            opened.failed(error)
            raise
        finally:
            self._finish()

    async def aclose(self) -> None:
        """Close the upstream stream, free the slot and record what the call used (once)."""
        self._finish()

    def _finish(self) -> None:
        self._opened.close()
        if not self._recorded:
            self._recorded = True
            relay = self._relay
            self._usage.record_when_counted(
                self._source, self._opened.upstream, relay.report, relay.completion_text()
            )


def _answer_text(answer: dict[str, Any]) -> str:
    choices = answer.get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


class PoolTransport(httpx.AsyncBaseTransport):
    """Sends the openai SDK's chat completion requests through ``ModelCalls``."""

    def __init__(self, models: PoolChatModels) -> None:
        self._models = models

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route one SDK request to the pool (or the BYOK upstream) and answer it."""
        if not request.url.path.endswith("/chat/completions"):
            raise UpstreamProtocolError(f"the agent asked for {request.url.path}, not a chat")
        payload = orjson.loads(await request.aread())
        if not isinstance(payload, dict):
            raise UpstreamProtocolError("the agent's request body is not a JSON object")
        return await self._models.send(payload)


@dataclass(eq=False)
class PoolChatModels:
    """``agent.ChatModelSource`` for one turn: ChatOpenAI over the pool's calls."""

    calls: ModelCalls
    usage: TurnUsage
    user: str = ""
    """Whose turn it is: the pool's per-user fairness applies to agent calls too."""
    byok: Upstream | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Forwarded upstream as ``X-Request-Id`` on every call of the turn."""
    max_tokens: int = 512
    temperature: float = 0.7
    _prepared: Route | None = None
    _client: httpx.AsyncClient | None = None

    async def prepare(self, model: str | None) -> None:
        """Route and take the first call's slot now, so a full pool answers 409 up front."""
        route = await self.calls.route(model, self.user, self.byok)
        await self.calls.take_slot(route)
        self._prepared = route

    def close(self) -> None:
        """Give back a slot taken by ``prepare`` that no call used."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.lease is not None:
            prepared.lease.release()
            prepared.lease = None

    async def _route(self, model: str) -> Route:
        prepared = self._prepared
        if prepared is not None and prepared.model == model:
            self._prepared = None
            return prepared
        return await self.calls.route(model, self.user, self.byok)

    async def send(self, payload: dict[str, Any]) -> httpx.Response:
        """One SDK request: a stream or a JSON answer, through the shared calls."""
        started = time.monotonic()
        model = str(payload.pop("model", "") or "")
        stream = bool(payload.pop("stream", False))
        route = await self._route(model)
        limit_key = "max_completion_tokens" if "max_completion_tokens" in payload else "max_tokens"
        asked = payload.get(limit_key)
        messages = payload.get("messages") or []
        estimate = estimate_prompt_tokens(messages)
        limit = self.usage.completion_cap(
            estimate,
            min(asked if isinstance(asked, int) else self.max_tokens, route.output_limit or 2**31),
            route.multiplier,
        )
        payload[limit_key] = limit

        def source(upstream: Upstream) -> UsageSource:
            return UsageSource(upstream.name, route.model, messages, estimate, limit)

        if stream:
            opened = await self.calls.open_stream(
                route, payload, self.request_id, started=started, mode="agent_stream"
            )
            body = _StreamBody(opened, source(opened.upstream), self.usage)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)
        upstream, answer = await self.calls.complete(
            route, payload, self.request_id, started=started, mode="agent_json", stoppable=True
        )
        self.usage.record_when_counted(
            source(upstream), upstream, answer.get("usage"), _answer_text(answer)
        )
        return httpx.Response(
            200, headers={"content-type": "application/json"}, content=orjson.dumps(answer)
        )

    @asynccontextmanager
    async def chat_model(self, model: str | None) -> AsyncIterator[BaseChatModel]:
        """A ``ChatOpenAI`` whose calls take the pool's path; a slot is held per call."""
        if self._client is None:
            # Holds no connection (the transport owns none), so it needs no closing.
            self._client = httpx.AsyncClient(transport=PoolTransport(self), trust_env=False)
        name = model or (self._prepared.model if self._prepared is not None else "")
        if not name:
            name = (await self.calls.route(None, self.user, self.byok)).model
        yield ChatOpenAI(
            model=name,
            base_url=_POOL_URL,
            api_key=SecretStr("pool"),
            http_async_client=self._client,
            max_retries=0,  # failover happens below, before the first byte
            timeout=None,  # each upstream's own timeouts apply (providers.upstream)
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            stream_usage=True,
        )
