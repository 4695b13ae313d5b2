"""One chat completion from request to settled usage: routing, streaming relay, billing.

Transport-free (no Quart): the blueprint validates the request, hands a ``ChatCall`` here and
returns what comes back. Everything that must happen on every ending - slot release, closing
the upstream connection, settling credits - happens in one ``finally``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from providers.billing import Billing
from providers.billing import Ending
from providers.billing import NoBilling
from providers.billing import Settlement
from providers.errors import InvalidUpstreamConfig
from providers.errors import ProviderError
from providers.observer import GatewayObserver
from providers.observer import NoObserver
from providers.pool import Lease
from providers.pool import ProviderPool
from providers.pricing import cost_usd
from providers.pricing import credits_for
from providers.pricing import estimate_reservation
from providers.relay import ReasoningMode
from providers.relay import StreamRelay
from providers.relay import error_frame
from providers.tokens import count_message_tokens
from providers.tokens import count_text_tokens
from providers.tokens import estimate_prompt_tokens
from providers.tokens import load_tokenizer
from providers.tokens import tokenizer_loaded
from providers.upstream import Upstream
from providers.upstream import UpstreamStream

__all__ = ["ChatCall", "Gateway", "OpenedStream"]

log = logging.getLogger(__name__)
#: Prompts longer than this are tokenised in a thread so the event loop keeps serving.
_INLINE_COUNT_CHARS = 200_000


def _counts_inline(call: ChatCall, model: str) -> bool:
    """Whether the prompt can be counted on the loop right now (tokenizer loaded, not huge)."""
    if not tokenizer_loaded(model):
        return False
    return sum(len(str(m.get("content", ""))) for m in call.messages) <= _INLINE_COUNT_CHARS


async def _count_prompt(call: ChatCall, model: str) -> int:
    """The tokenizer's count of a prompt, loading the tokenizer off the loop if needed."""
    if _counts_inline(call, model):
        return count_message_tokens(call.messages, model)
    await load_tokenizer(model)
    return await asyncio.to_thread(count_message_tokens, call.messages, model)


#: The frame that ends a stream the service stops at shutdown (contract 5.1 shape).
SHUTDOWN_MESSAGE = "the service is shutting down"


@dataclass(slots=True)
class ChatCall:
    """A validated chat completion request."""

    request_id: str
    user_id: str
    model: str | None
    messages: list[dict[str, Any]]
    max_tokens: int
    params: dict[str, Any]
    """Optional sampling fields to forward (temperature, top_p, seed, ...)."""
    reasoning: ReasoningMode
    keep_alive: str | int | None = None


@dataclass(slots=True)
class OpenedStream:
    """A stream whose upstream answered; iterate ``body`` to relay it."""

    body: AsyncIterator[bytes]
    provider: str
    model: str


def _body(call: ChatCall, model: str, upstream: Upstream, stream: bool) -> bytes:
    payload: dict[str, Any] = {
        "model": model,
        "messages": call.messages,
        "max_tokens": call.max_tokens,
        "stream": stream,
        **call.params,
    }
    if stream:
        payload["stream_options"] = {"include_usage": True}
    if upstream.settings.kind == "ollama":
        keep_alive = (
            call.keep_alive if call.keep_alive is not None else upstream.settings.keep_alive
        )
        if keep_alive is not None:
            payload["keep_alive"] = keep_alive
    return orjson.dumps(payload)


class Gateway:
    """Completions over the pool (members) or a per-request BYOK upstream (free)."""

    def __init__(
        self,
        pool: ProviderPool,
        billing: Billing | None = None,
        observer: GatewayObserver | None = None,
    ) -> None:
        self.pool = pool
        self.billing: Billing = billing or NoBilling()
        self.observer: GatewayObserver = observer or NoObserver()
        #: Upstream streams being relayed, so that shutdown can end them (one add and one
        #: discard per stream, nothing per chunk).
        self._streams: set[UpstreamStream] = set()
        self._stopping = False
        #: Settlements waiting for the tokenizer to load (``_settle_counted``).
        self._counting: set[asyncio.Task[None]] = set()

    @property
    def open_streams(self) -> int:
        """Streams being relayed right now."""
        return len(self._streams)

    def stop_streams(self) -> int:
        """End every stream being relayed with the shutdown error frame; refuse none.

        Closing each upstream connection wakes its relay, which then sends one
        ``shutting_down`` error frame, releases its slot and settles what was generated.
        Returns how many streams were stopped.
        """
        self._stopping = True
        streams = list(self._streams)
        for stream in streams:
            stream.close()
        return len(streams)

    async def drain(self) -> None:
        """Wait for settlements still counting tokens (at shutdown, before billing drains)."""
        while self._counting:
            await asyncio.gather(*self._counting, return_exceptions=True)

    def _settle_counted(
        self, call: ChatCall, model: str, settle: Callable[[int | None], None]
    ) -> None:
        """Run ``settle(prompt_tokens)`` now if counting is ready, else once it is.

        ``settle`` gets the tokenizer's prompt count (None when the upstream reported it)
        and may count completion text itself. An ending that cannot wait (a client
        disconnect, a cancellation) must not load the tokenizer on the event loop (0.1-0.4
        s for every stream of the worker), so its settlement moves to a task that loads it
        in a thread first; ``drain`` waits for such tasks at shutdown.
        """
        if _counts_inline(call, model):
            settle(count_message_tokens(call.messages, model))
            return

        async def count_then_settle() -> None:
            try:
                prompt: int | None = await _count_prompt(call, model)
            except Exception:
                log.exception(
                    "counting the prompt of %s failed: kept the estimate", call.request_id
                )
                prompt = None
            settle(prompt)

        task = asyncio.get_running_loop().create_task(count_then_settle())
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    async def _start(
        self,
        call: ChatCall,
        byok: Upstream | None,
        attempt: Callable[[Upstream, str], Awaitable[Any]],
    ) -> tuple[Lease, Any, str, int]:
        """Route and reserve, then run ``attempt`` with a slot held (none for BYOK).

        A failure after the reservation settles it at zero tokens, which releases the hold
        and logs the attempt; BYOK calls reserve nothing but are logged the same way.
        """
        model = call.model or (await self.pool.default_model() if byok is None else "")
        if not model:
            raise InvalidUpstreamConfig("a request to a BYOK upstream must name its model")
        # The hold needs an estimate only: the settlement counts (or takes the upstream's count).
        prompt_tokens = estimate_prompt_tokens(call.messages)
        if byok is None:
            candidates = await self.pool.candidates(model)
            multiplier = max(m.upstream.settings.multiplier for m in candidates)
            estimate = estimate_reservation(prompt_tokens, call.max_tokens, multiplier)
            await self.billing.reserve(call.user_id, call.request_id, estimate)
        try:
            if byok is not None:
                return Lease(byok, None), await attempt(byok, model), model, prompt_tokens
            lease, result = await self.pool.call(
                model, lambda up: attempt(up, model), candidates, user=call.user_id
            )
        except BaseException:
            failed = _settlement(
                call, byok, model, prompt_tokens, 0, 0.0, "upstream_error", byok=byok is not None
            )
            self.billing.settle(failed)
            raise
        return lease, result, model, prompt_tokens

    async def open_stream(self, call: ChatCall, byok: Upstream | None = None) -> OpenedStream:
        """Route, reserve and open the upstream stream; errors here are real HTTP statuses."""
        started = time.monotonic()
        waited = [0.0]  # seconds spent waiting on upstreams, over every attempt

        async def attempt(upstream: Upstream, model: str) -> tuple[UpstreamStream, bytes]:
            sent = time.monotonic()
            try:
                stream = await upstream.open_stream(
                    _body(call, model, upstream, True), call.request_id
                )
                try:
                    chunks = stream.chunks()
                    first = await anext(chunks, b"")
                except BaseException:
                    stream.close()
                    raise
            except ProviderError as error:
                self.observer.upstream_error(upstream.name, error.code, False)
                raise
            finally:
                waited[0] += time.monotonic() - sent
            return stream, first

        lease, (stream, first), model, prompt_tokens = await self._start(call, byok, attempt)
        relay = StreamRelay(reasoning=call.reasoning, model=model, prompt_tokens=prompt_tokens)
        body = self._relay(
            call, lease, stream, first, relay, (started, waited[0]), byok is not None
        )
        return OpenedStream(body=body, provider=lease.upstream.name, model=model)

    async def _relay(
        self,
        call: ChatCall,
        lease: Lease,
        stream: UpstreamStream,
        first: bytes,
        relay: StreamRelay,
        timing: tuple[float, float],
        byok: bool,
    ) -> AsyncIterator[bytes]:
        ending: Ending = "client_disconnect"
        upstream = lease.upstream
        started, waited = timing
        counted = False  # whether relay.prompt_tokens holds the tokenizer's count
        self._streams.add(stream)
        try:
            try:
                out = relay.feed(first)
                self.observer.first_byte(
                    upstream.name, relay.model, time.monotonic() - started, waited, True
                )
                # The frames of the read that ends the stream leave with our trailer, in one
                # write: a fast upstream's whole answer often arrives in the first read.
                if not relay.done:
                    if out:
                        yield out
                    out = b""
                    async for data in stream.chunks():
                        out = relay.feed(data)
                        if relay.done:
                            break
                        if out:
                            yield out
                        out = b""
                tail = relay.finish()
                if not relay.prompt_reported:
                    relay.prompt_tokens = await _count_prompt(call, relay.model)
                    counted = True
                usage = relay.usage()
                extra = _cost(upstream, usage.prompt_tokens, usage.completion_tokens, byok)
                ending = "completed"
                yield out + tail + relay.trailer(extra)
            except ProviderError as error:
                if self._stopping:
                    ending = "cancelled"  # bill what was generated, as for a cancellation
                    yield error_frame(SHUTDOWN_MESSAGE, "shutting_down")
                    return
                ending = "upstream_error"
                self.observer.upstream_error(upstream.name, error.code, True)
                log.warning(
                    "stream %s from %s failed: %s", call.request_id, upstream.name, error.code
                )
                yield error_frame(error.message, error.code.lower())
        except asyncio.CancelledError:
            ending = "cancelled" if ending == "client_disconnect" else ending
            raise
        finally:
            self._streams.discard(stream)
            stream.close()
            lease.release()
            seconds = time.monotonic() - started

            def settle(prompt: int | None) -> None:
                if prompt is not None:
                    relay.prompt_tokens = prompt
                usage = relay.usage()
                self.billing.settle(
                    _settlement(
                        call,
                        upstream,
                        relay.model,
                        usage.prompt_tokens,
                        usage.completion_tokens,
                        seconds,
                        ending,
                        byok=byok,
                    )
                )

            if counted or relay.prompt_reported:
                settle(None)
            else:
                self._settle_counted(call, relay.model, settle)

    async def complete(self, call: ChatCall, byok: Upstream | None = None) -> dict[str, Any]:
        """A non-streamed completion as one ``chat.completion`` object with usage and cost."""
        started = time.monotonic()
        waited = [0.0]

        async def attempt(upstream: Upstream, model: str) -> dict[str, Any]:
            sent = time.monotonic()
            try:
                return await upstream.complete(_body(call, model, upstream, False), call.request_id)
            except ProviderError as error:
                self.observer.upstream_error(upstream.name, error.code, False)
                raise
            finally:
                waited[0] += time.monotonic() - sent

        lease, result, model, prompt_tokens = await self._start(call, byok, attempt)
        upstream = lease.upstream
        lease.release()
        self.observer.first_byte(upstream.name, model, time.monotonic() - started, waited[0], False)
        answer: dict[str, Any] = result
        content = _rewrite_message(answer, call.reasoning)
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        reported_prompt = usage.get("prompt_tokens")
        reported_completion = usage.get("completion_tokens")
        seconds = time.monotonic() - started

        def settle(counted_prompt: int | None) -> None:
            prompt = reported_prompt if isinstance(reported_prompt, int) else counted_prompt
            if prompt is None:
                prompt = prompt_tokens  # counting failed (logged): the estimate
            completion = (
                reported_completion
                if isinstance(reported_completion, int)
                else count_text_tokens(content, model)
            )
            answer["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            answer.update(_cost(upstream, prompt, completion, byok is not None))
            self.billing.settle(
                _settlement(
                    call,
                    upstream,
                    model,
                    prompt,
                    completion,
                    seconds,
                    "completed",
                    byok=byok is not None,
                )
            )

        if isinstance(reported_prompt, int) and isinstance(reported_completion, int):
            settle(None)
            return answer
        # Our own counts: settled even if this request is cancelled while the tokenizer loads.
        counted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle_then_answer(prompt: int | None) -> None:
            try:
                settle(prompt)
            finally:
                if not counted.done():
                    counted.set_result(None)

        self._settle_counted(call, model, settle_then_answer)
        await counted
        return answer


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


def _cost(upstream: Upstream, prompt: int, completion: int, byok: bool) -> dict[str, Any]:
    settings = upstream.settings
    credits = 0 if byok else credits_for(prompt, completion, settings.multiplier)
    return {
        "cost": {
            "credits": credits,
            "usd": 0.0 if byok else cost_usd(settings, prompt, completion),
            "provider": upstream.name,
        }
    }


def _settlement(
    call: ChatCall,
    upstream: Upstream | None,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    seconds: float,
    ending: Ending,
    *,
    byok: bool = False,
) -> Settlement:
    return Settlement(
        request_id=call.request_id,
        user_id=call.user_id,
        provider=upstream.name if upstream is not None else "",
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        multiplier=upstream.settings.multiplier if upstream is not None else 0.0,
        duration_ms=int(seconds * 1000),
        ending=ending,
        byok=byok,
    )
