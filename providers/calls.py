"""The one path every model call takes to an upstream, the proxy's and the agent's alike.

A call is routed to the least-loaded upstream serving its model (or the caller's own BYOK
upstream), holds a pool slot for as long as it runs, fails over to the next upstream when
one refuses or fails before the first byte (refused, timeout, 5xx, 429; never a 4xx), and
reports its time to first byte and every upstream failure to the observer (the metrics).
Errors are ``providers.errors`` types, converted at the ``Upstream`` boundary. Streams
being relayed are tracked so that shutdown can end them (after ``stop`` every call in
flight and every new one fails with ``ShuttingDown``) and so that the operator console can
list them and cancel one (``OpenedStream.cancel``: its reader fails with ``StreamCancelled``).

The proxy (``gateway.completions``) relays what comes back; the agent's LangChain models
(``providers.chat_models``) ride on the same calls through an httpx transport.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncGenerator
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

import orjson

from providers.errors import InvalidUpstreamConfig
from providers.errors import ProviderError
from providers.errors import ShuttingDown
from providers.errors import StreamCancelled
from providers.observer import CallObserver
from providers.observer import NoObserver
from providers.pool import Lease
from providers.pool import PoolMember
from providers.pool import ProviderPool
from providers.upstream import Upstream
from providers.upstream import UpstreamStream

__all__ = ["ModelCalls", "OpenedStream", "Route", "request_body"]

T = TypeVar("T")


@dataclass(slots=True)
class Route:
    """Where one call may go: a model of the pool (with its candidates) or a BYOK upstream."""

    model: str
    """The model to ask for."""
    user: str
    """Whose call it is: slots are shared fairly per user."""
    byok: Upstream | None = None
    """The caller's own upstream; None for the pool."""
    candidates: list[PoolMember] | None = None
    """The pool members serving ``model``, least loaded first (None for BYOK)."""
    lease: Lease | None = None
    """A slot taken earlier for this call (an agent turn takes its first before streaming)."""

    @property
    def multiplier(self) -> float:
        """The highest credit multiplier among the candidates (what a hold must cover)."""
        if not self.candidates:
            return 0.0
        return max(m.upstream.settings.multiplier for m in self.candidates)

    @property
    def output_limit(self) -> int | None:
        """The smallest known completion limit of the model here.

        Any upstream that may serve the call would refuse more ``max_tokens`` than its own.
        """
        if self.byok is not None:
            upstreams = [self.byok]
        else:
            upstreams = [m.upstream for m in self.candidates or []]
        limits = [u.settings.output_limit(self.model) for u in upstreams]
        known = [limit for limit in limits if limit is not None]
        return min(known) if known else None


def request_body(payload: Mapping[str, Any], upstream: Upstream, model: str, stream: bool) -> bytes:
    """The JSON body sent to ``upstream``: the call's fields plus what that upstream needs.

    Streams ask for the usage chunk (``stream_options.include_usage``); Ollama gets the
    call's or the provider's ``keep_alive``, no other upstream does.
    """
    body: dict[str, Any] = {**payload, "model": model, "stream": stream}
    keep_alive = body.pop("keep_alive", None)
    if stream:
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream_options", None)
    if upstream.settings.kind == "ollama":
        keep_alive = keep_alive if keep_alive is not None else upstream.settings.keep_alive
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
    return orjson.dumps(body)


class OpenedStream:
    """An upstream stream that answered: its first bytes, the rest, and one ``close``.

    It also says whose it is and how far it got (``user``, ``request_id``, ``started``,
    ``reads``) for the operator console, which may ``cancel`` it. ``reads`` is the one
    thing updated per chunk: an integer increment, nothing more on the hot path.
    """

    __slots__ = (
        "_calls",
        "_closed",
        "_ended",
        "_stream",
        "cancelled",
        "first",
        "id",
        "lease",
        "mode",
        "model",
        "reads",
        "request_id",
        "started",
        "user",
    )

    def __init__(
        self,
        calls: ModelCalls,
        lease: Lease,
        stream: UpstreamStream,
        first: bytes,
        model: str,
        *,
        stream_id: str = "",
        user: str = "",
        request_id: str = "",
        started: float = 0.0,
        mode: str = "stream",
    ) -> None:
        self._calls = calls
        self.lease = lease
        self._stream = stream
        self.first = first
        """The bytes of the first read (often the whole answer of a fast upstream)."""
        self.model = model
        self.id = stream_id
        """Unique across workers (a random prefix per worker), for the console's cancel."""
        self.user = user
        self.request_id = request_id
        self.started = started
        """``time.monotonic()`` when the service received the call."""
        self.mode = mode
        """``stream`` (the proxy) or ``agent_stream`` (an agent turn's call)."""
        self.reads = 1
        """Reads from the upstream so far, ``first`` included (about one token each while
        the model writes slower than the relay reads)."""
        self.cancelled = False
        self._closed = False
        self._ended: ProviderError | None = None

    @property
    def upstream(self) -> Upstream:
        """The upstream that is answering."""
        return self.lease.upstream

    async def rest(self) -> AsyncGenerator[bytes, None]:
        """The bytes after ``first``, as they arrive.

        The consumer reports a failure with :meth:`failed` (it also finds failures in the
        content: an in-band error, a malformed chunk), so each is counted once.

        Raises:
            ShuttingDown: the worker ended the stream (``ModelCalls.stop``).
            StreamCancelled: an operator cancelled it (:meth:`cancel`).
            ProviderError: the upstream failed mid-stream (timeout, reset, ...).
        """
        try:
            async for data in self._stream.chunks():
                self.reads += 1
                yield data
        except ProviderError:
            if self._ended is not None:
                raise self._ended from None
            if self.cancelled:
                raise StreamCancelled() from None
            if self._calls.stopping:
                raise ShuttingDown() from None
            raise
        if self._ended is not None:  # closed between two reads: the body just ended
            raise self._ended
        if self.cancelled:
            raise StreamCancelled()

    def end(self, error: ProviderError) -> None:
        """End the stream from our side: its reader raises ``error`` (e.g. a time limit)."""
        if self._ended is None and not self._closed and not self.cancelled:
            self._ended = error
            self._stream.close()  # wakes the reader, which then raises ``error``

    def failed(self, error: ProviderError) -> None:
        """Report a mid-stream failure to the observer (not one we caused: stop, cancel)."""
        if not self._calls.stopping and not self.cancelled and self._ended is None:
            self._calls.observer.upstream_error(self.upstream.name, error.code, True)

    def cancel(self) -> bool:
        """End the stream as a cancelled call: its reader raises ``StreamCancelled``.

        Closing the upstream connection stops the generation; the consumer then ends its
        own way (the proxy sends the one error frame and bills what was generated) and
        closes, which gives the slot back. Returns False when it had already ended.
        """
        if self._closed or self.cancelled:
            return False
        self.cancelled = True
        self._stream.close()
        return True

    def close(self) -> None:
        """Close the upstream connection and give the slot back (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._calls._streams.discard(self)
        self._stream.close()
        self.lease.release()


class ModelCalls:
    """Routing, slots, failover, timeouts and observation for every call to a model."""

    def __init__(self, pool: ProviderPool, observer: CallObserver | None = None) -> None:
        self.pool = pool
        self.observer: CallObserver = observer or NoObserver()
        self.stopping = False
        self._streams: set[OpenedStream] = set()
        self._stoppable: set[asyncio.Task[Any]] = set()
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)

    @property
    def open_streams(self) -> int:
        """Streams open right now (proxy and agent)."""
        return len(self._streams)

    def streams(self) -> list[OpenedStream]:
        """The streams open right now, oldest first (the operator console lists them)."""
        return sorted(self._streams, key=lambda opened: opened.started)

    def find_stream(self, stream_id: str) -> OpenedStream | None:
        """The open stream with this id, if it is open in this worker."""
        return next((s for s in self._streams if s.id == stream_id), None)

    def stop(self) -> int:
        """End every stream and stoppable call in flight; later calls fail. Returns how many."""
        self.stopping = True
        streams = list(self._streams)
        for opened in streams:
            opened._stream.close()  # its reader raises, then closes and releases as usual
        calls = list(self._stoppable)
        for task in calls:
            task.cancel()
        return len(streams) + len(calls)

    async def route(self, model: str | None, user: str, byok: Upstream | None = None) -> Route:
        """Resolve the model (the pool's default when None) and its candidates.

        Raises:
            ModelNotFound: no upstream serves the model.
            InvalidUpstreamConfig: a BYOK call names no model.
        """
        if byok is not None:
            if not model:
                raise InvalidUpstreamConfig("a request to a BYOK upstream must name its model")
            return Route(model, user, byok=byok)
        name = model or await self.pool.default_model()
        return Route(name, user, candidates=await self.pool.candidates(name))

    async def take_slot(self, route: Route) -> None:
        """Take the first call's slot now (so a full pool answers 409 before streaming)."""
        if route.byok is None and route.lease is None:
            route.lease = await self.pool.acquire(route.candidates or [], route.model, route.user)

    async def open_stream(
        self,
        route: Route,
        payload: Mapping[str, Any] | Callable[[Upstream], Mapping[str, Any]],
        request_id: str,
        *,
        started: float,
        mode: str = "stream",
    ) -> OpenedStream:
        """Open a streamed call and read its first bytes; errors here are before the first byte.

        Args:
            route: Where it may go (``route.lease`` is used first, then failover).
            payload: The call's fields (messages, max_tokens, sampling), or a function of the
                upstream that gives them (a continuation is asked differently per upstream);
                see ``request_body``.
            request_id: Forwarded upstream as ``X-Request-Id``.
            started: ``time.monotonic()`` when the service received the call.
            mode: The observer's label for the call.
        """
        waited = 0.0

        async def attempt(upstream: Upstream) -> tuple[UpstreamStream, bytes]:
            nonlocal waited
            sent = time.monotonic()
            try:
                fields = payload(upstream) if callable(payload) else payload
                body = request_body(fields, upstream, route.model, True)
                stream = await upstream.open_stream(body, request_id)
                try:
                    first = await anext(stream.chunks(), b"")
                except BaseException:
                    stream.close()
                    raise
            except ProviderError as error:
                self.observer.upstream_error(upstream.name, error.code, False)
                raise
            finally:
                waited += time.monotonic() - sent
            return stream, first

        lease, (stream, first) = await self._run(route, attempt)
        opened = OpenedStream(
            self,
            lease,
            stream,
            first,
            route.model,
            stream_id=f"{self._prefix}-{next(self._ids)}",
            user=route.user,
            request_id=request_id,
            started=started,
            mode=mode,
        )
        self._streams.add(opened)
        if self.stopping:  # stopped while this one was connecting
            opened.close()
            raise ShuttingDown()
        self.observer.first_byte(
            lease.upstream.name, route.model, time.monotonic() - started, waited, mode
        )
        return opened

    async def complete(
        self,
        route: Route,
        payload: Mapping[str, Any],
        request_id: str,
        *,
        started: float,
        mode: str = "json",
        stoppable: bool = False,
    ) -> tuple[Upstream, dict[str, Any]]:
        """A non-streamed call: the upstream that answered and its ``chat.completion``.

        ``stoppable`` calls run in a task that ``stop`` cancels (the agent's steps, which
        must end at shutdown); the proxy's do not pay for one.
        """
        waited = 0.0

        async def attempt(upstream: Upstream) -> dict[str, Any]:
            nonlocal waited
            sent = time.monotonic()
            try:
                body = request_body(payload, upstream, route.model, False)
                if stoppable:
                    return await self._stoppable_call(upstream.complete(body, request_id))
                return await upstream.complete(body, request_id)
            except ProviderError as error:
                if not isinstance(error, ShuttingDown):
                    self.observer.upstream_error(upstream.name, error.code, False)
                raise
            finally:
                waited += time.monotonic() - sent

        lease, answer = await self._run(route, attempt)
        lease.release()
        self.observer.first_byte(
            lease.upstream.name, route.model, time.monotonic() - started, waited, mode
        )
        return lease.upstream, answer

    async def _stoppable_call(self, call: Awaitable[T]) -> T:
        task = asyncio.ensure_future(call)
        self._stoppable.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and self.stopping and not (current and current.cancelling()):
                raise ShuttingDown() from None
            raise
        finally:
            self._stoppable.discard(task)
            task.cancel()

    async def _run(
        self, route: Route, attempt: Callable[[Upstream], Awaitable[T]]
    ) -> tuple[Lease, T]:
        """Run ``attempt`` with a slot held: the route's own lease first, then the pool."""
        if self.stopping:
            raise ShuttingDown()
        if route.byok is not None:
            return Lease(route.byok, None), await attempt(route.byok)
        lease, route.lease = route.lease, None
        return await self.pool.call(
            route.model, attempt, list(route.candidates or []), user=route.user, first=lease
        )
