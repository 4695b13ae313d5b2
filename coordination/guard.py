"""Every Redis call goes through one guard: bounded in time, failing fast, logged once.

A request must never hang on Redis. Each call is bounded by ``redis_timeout_s`` (on top of
the client's own socket timeouts, with its retries turned off), and after a failure the
guard is *open* for ``retry_interval_s``: callers skip Redis at once - answering 503 or
using their local twin, as the operator chose - instead of each waiting for a timeout.
The first call after the interval probes Redis again; the switch is logged once each way.

A connection the server closed (Redis restarted, or dropped an idle client) fails the one
command sent on it. That is not an outage: the call is retried once, at once, on a fresh
connection, and only a second failure opens the guard. Without this, every stale pooled
connection would fail once after a restart and each failure would open the guard again,
so requests flapped between served and 503 for seconds after Redis was back.
Background work (releases, renewals) is fire-and-forget but kept referenced here so that
shutdown can wait for it briefly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
from typing import Any
from typing import Literal
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from coordination.errors import CoordinationUnavailable

__all__ = ["RedisDown", "RedisGuard"]

log = logging.getLogger("coordination")
T = TypeVar("T")


class RedisDown(Exception):
    """Redis failed or was skipped because it failed a moment ago."""


class RedisGuard:
    """Timeouts, the fail-fast window and the fallback choice for one Redis."""

    def __init__(
        self,
        *,
        mode: Literal["fail", "local"],
        timeout_s: float,
        retry_interval_s: float,
        where: str,
    ) -> None:
        self.mode = mode
        self._timeout = timeout_s
        self._interval = retry_interval_s
        self._where = where
        self._open_until = 0.0
        self._last_ok = 0.0
        self._down = False
        #: Outages declared so far: the lease keeper puts leases back after each one.
        self.outages = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    @property
    def down(self) -> bool:
        """The last call failed (until one succeeds)."""
        return self._down

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call within the timeout.

        Raises:
            RedisDown: it failed, timed out, or Redis failed less than an interval ago.
        """
        started = time.monotonic()
        if self._down and started < self._open_until:
            raise RedisDown("skipped: Redis failed moments ago")
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    result = await call()
                except RedisConnectionError as error:
                    # redis-py dropped the connection; a fresh one tells a closed socket
                    # (Redis restarted, or dropped an idle client) from Redis being down.
                    log.debug("retrying a Redis call on a fresh connection after %s", _said(error))
                    result = await call()
        except (RedisError, OSError, TimeoutError) as error:
            if self._last_ok > started:
                # Another call got its answer meanwhile: Redis is up, this one was slow (a
                # busy event loop). Fail this call only; do not declare Redis down.
                log.debug("one Redis call failed while others succeed: %s", _said(error))
            else:
                self._failed(error)
            raise RedisDown(str(error) or type(error).__name__) from error
        self._last_ok = time.monotonic()
        if self._down:
            self._down = False
            log.warning("Redis at %s answers again: limits and slots are shared again", self._where)
        return result

    def unavailable(self) -> CoordinationUnavailable:
        """The 503 for ``on_redis_error = "fail"``."""
        return CoordinationUnavailable(
            "the shared rate-limit and slot state (Redis) is unavailable; try again shortly"
        )

    def _failed(self, error: BaseException) -> None:
        self._open_until = time.monotonic() + self._interval
        if self._down:
            log.debug("Redis still failing: %s", _said(error))
            return
        self._down = True
        self.outages += 1
        then = (
            "answering 503 COORDINATION_UNAVAILABLE"
            if self.mode == "fail"
            else "falling back to per-worker limits and slots"
        )
        log.error("Redis at %s failed (%s): %s until it answers", self._where, _said(error), then)

    def background(self, work: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``work()`` without waiting for it; failures are the lease TTL's problem.

        Safe from finalizers: outside the loop the guard was built in (another thread, or
        another loop, as in a test suite) it is scheduled on that loop, and dropped (never
        started) once that loop is closed.
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        home = self._loop
        if running is not None and (home is None or running is home):
            self._start(work)
        elif home is not None and not home.is_closed():
            # A finalizer that ran in another thread, or inside another loop of this
            # thread: this guard's client belongs to its own loop.
            home.call_soon_threadsafe(self._start, work)

    def _start(self, work: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quietly(self, work: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        with contextlib.suppress(RedisDown):
            await work()

    async def drain(self, timeout_s: float = 2.0) -> None:
        """Wait a little for background work at shutdown."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)


def _said(error: BaseException) -> str:
    """``Type: message`` (redis-py 8's own ``repr`` drops the message)."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
