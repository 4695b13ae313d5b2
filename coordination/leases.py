"""Keeps this worker's Redis leases alive: one renewal call for all of them every TTL/3.

Every slot a stream holds and every in-flight entry of the concurrency limit is a member
of a sorted set scored by its expiry. While the stream lives, this task pushes the expiry
forward; when the worker dies (SIGKILL, OOM, a lost host) nothing renews them and the next
acquisition by any worker drops them, so capacity comes back within the TTL. Renewal uses
``ZADD XX``: a lease that was released or already expired is never brought back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from typing import Any

from redis.asyncio import Redis

from coordination.guard import RedisDown
from coordination.guard import RedisGuard
from coordination.lua import RENEW

__all__ = ["LeaseKeeper"]

log = logging.getLogger("coordination")
_BATCH = 1000


class LeaseKeeper:
    """The renewal task of one worker."""

    def __init__(self, redis: Redis, guard: RedisGuard, ttl_s: float) -> None:
        self._renew = redis.register_script(RENEW)
        self._guard = guard
        self._ttl_ms = int(ttl_s * 1000)
        self._interval = ttl_s / 3
        self._held: dict[tuple[str, str], None] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, key: str, member: str) -> None:
        """Renew ``member`` of sorted set ``key`` from now on."""
        self._held[(key, member)] = None

    def drop(self, key: str, member: str) -> None:
        """Stop renewing it (released)."""
        self._held.pop((key, member), None)

    @property
    def held(self) -> int:
        """Leases being renewed."""
        return len(self._held)

    async def renew_now(self) -> int:
        """Renew every held lease; returns how many were already gone."""
        items = list(self._held)
        lost = 0
        for start in range(0, len(items), _BATCH):
            batch = items[start : start + _BATCH]
            lost += int(await self._guard.run(partial(self._renew_batch, batch)))
        if lost:
            log.warning("%d lease(s) had expired before renewal (stalled worker or Redis)", lost)
        return lost

    async def _renew_batch(self, batch: list[tuple[str, str]]) -> Any:
        keys = [key for key, _ in batch]
        args: list[str | int] = [self._ttl_ms, *(member for _, member in batch)]
        return await self._renew(keys=keys, args=args)

    def start(self) -> None:
        """Start renewing in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._held:
                with contextlib.suppress(RedisDown):
                    await self.renew_now()

    async def aclose(self) -> None:
        """Stop renewing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
