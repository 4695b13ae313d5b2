"""Graceful shutdown: drain on SIGTERM, let streams finish within a grace period, then stop.

Hypercorn tells the application nothing when it starts shutting down: on SIGTERM its master
sets an event that each worker polls, the worker stops listening, waits up to
``graceful_timeout`` for open connections, then cancels them and only then runs the ASGI
lifespan shutdown. A stream still running at that point would be cut without the
contract's error frame (5.1). So each worker watches for the start of shutdown itself:

- the master's shutdown event, which hypercorn hands each worker process as a keyword
  argument (``internals.hypercorn_worker_argument``; polled every 0.1 s exactly as
  hypercorn does; ``tests/test_internals.py`` and the end-to-end test in
  ``tests/quart_app``, which runs a real hypercorn, catch an upgrade that moves it);
- SIGTERM delivered to the worker itself (``systemctl stop`` signals the whole process
  group), which would otherwise kill it on the spot.

From then on the worker is *draining*: ``/readyz`` answers 503, new requests get 503
``DRAINING`` (health and metrics still answer), and streams in flight may finish for
``[server] shutdown_grace_s``. Streams still open then end with one
``{"error": {"message": "the service is shutting down", "type": "shutting_down"}}`` frame;
each releases its slot and settles what it generated (the ledger makes a second settlement
of the same request a no-op). The lifespan shutdown that follows drains billing and closes
the ledger last. Keep ``shutdown_grace_s`` below hypercorn's ``graceful_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from collections.abc import Callable
from typing import Any

from internals import hypercorn_worker_argument

__all__ = ["Lifecycle", "hypercorn_shutdown_event"]

log = logging.getLogger("storywriter.lifecycle")
_POLL_S = 0.1


def hypercorn_shutdown_event() -> Any | None:
    """The event hypercorn's master sets to stop this worker, when this is such a worker."""
    event = hypercorn_worker_argument("shutdown_event")
    return event if callable(getattr(event, "is_set", None)) else None


class Lifecycle:
    """Serving or draining, and what stops the streams once the grace period is over."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.draining = False
        self._open_streams: Callable[[], int] = lambda: 0
        self._stop_streams: Callable[[], int] = lambda: 0
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, open_streams: Callable[[], int], stop_streams: Callable[[], int]) -> None:
        """Tell the lifecycle how to count and stop the streams being relayed."""
        self._open_streams = open_streams
        self._stop_streams = stop_streams

    def begin_drain(self, reason: str) -> None:
        """Refuse new work from now on and stop streams after the grace period (idempotent)."""
        if self.draining:
            return
        self.draining = True
        log.warning(
            "draining: new requests are refused; streams in flight may finish",
            extra={"event": "drain", "reason": reason, "grace_s": self.grace_s},
        )
        self._spawn(self._expire())

    async def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_s
        # Polled: a stream count has no event to wait on, and this runs only while draining.
        while self._open_streams() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(min(_POLL_S, max(0.0, deadline - loop.time())))
        self._stop_now("grace period over")

    def _stop_now(self, why: str) -> None:
        stopped = self._stop_streams()
        if stopped:
            log.warning(
                "ended %d stream(s) with the shutting_down frame",
                stopped,
                extra={"event": "streams_stopped", "reason": why, "streams": stopped},
            )

    async def _watch_master(self, event: Any) -> None:
        # A multiprocessing event cannot be awaited; hypercorn polls it the same way.
        while not event.is_set():  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S)
        self.begin_drain("hypercorn is shutting down")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Watch for shutdown while the app serves; at lifespan shutdown, stop what is left."""
        loop = asyncio.get_running_loop()
        event = hypercorn_shutdown_event()
        handled = False
        if event is not None:
            self._spawn(self._watch_master(event))
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                loop.add_signal_handler(signal.SIGTERM, self.begin_drain, "SIGTERM")
                handled = True
        try:
            yield
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGTERM)
            await self._shutdown()

    async def _shutdown(self) -> None:
        # Hypercorn has already waited for connections; whatever still streams ends now.
        self.draining = True
        self._stop_now("lifespan shutdown")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while self._open_streams() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
