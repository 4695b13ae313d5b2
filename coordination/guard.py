"""Every Redis call goes through one guard: bounded in time, failing fast, logged once.

A request must never hang on Redis. Each call is bounded by ``redis_timeout_s`` (on top of
the client's own socket timeouts, with its retries turned off), and after a failure the
guard is *open* for ``retry_interval_s``: callers skip Redis at once - answering 503 or
using their local twin, as the operator chose - instead of each waiting for a timeout.
The first call after the interval probes Redis again; the switch is logged once each way.
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
                result = await call()
        except (RedisError, OSError, TimeoutError) as error:
            if self._last_ok > started:
                # Another call got its answer meanwhile: Redis is up, this one was slow (a
                # busy event loop). Fail this call only; do not declare Redis down.
                log.debug("one Redis call failed while others succeed: %r", error)
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
            log.debug("Redis still failing: %r", error)
            return
        self._down = True
        then = (
            "answering 503 COORDINATION_UNAVAILABLE"
            if self.mode == "fail"
            else "falling back to per-worker limits and slots"
        )
        log.error("Redis at %s failed (%r): %s until it answers", self._where, error, then)

    def background(self, work: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``work()`` without waiting for it; failures are the lease TTL's problem.

        Safe from finalizers: outside the loop's thread of control it is scheduled on the
        loop the guard was built in, and dropped (never started) once that loop is closed.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            home = self._loop
            if home is not None and not home.is_closed():
                home.call_soon_threadsafe(self._start, work)
            return
        self._start(work)

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
