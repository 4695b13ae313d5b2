"""Keeps this worker's Redis leases alive, and puts them back when Redis lost them.

Every slot a stream holds and every in-flight entry of the concurrency limit is a member
of a sorted set scored by its expiry. While the stream lives, this task pushes the expiry
forward (one call for all of them every TTL/3); when the worker dies (SIGKILL, OOM, a lost
host) nothing renews them and the next acquisition by any worker drops them, so capacity
comes back within the TTL.

A Redis restarted without persistence has lost every lease while the streams behind them
still run; a long outage lets them expire; and what the ``local`` fallback admitted during
an outage was never in Redis at all. In each case the worker still knows what it runs, so
renewal *restores* a held lease Redis no longer has, and this happens before anything is
decided again: each worker keeps a *marker* key alive next to its leases, the deciding
scripts answer ``STATE_LOST`` when it is gone, and :meth:`LeaseKeeper.call` then restores
and asks again. After an outage (or a fallback admission) the first call restores first.
Only leases still held are restored: one released while the renewal ran is taken out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from redis.asyncio import Redis

from coordination.guard import RedisDown
from coordination.guard import RedisGuard
from coordination.lua import RENEW
from coordination.lua import SLOT_RELEASE
from coordination.lua import STATE_LOST

__all__ = ["LeaseKeeper", "RedisLease"]

log = logging.getLogger("coordination")
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class RedisLease:
    """One lease a worker renews: ``member`` of the sorted set ``keys[0]``.

    A slot lease also names the provider's owners and per-user count hashes and its
    ``user``, so that a restored slot counts for its owner again.
    """

    keys: tuple[str, ...]
    member: str
    user: str = ""


class LeaseKeeper:
    """The renewal task and the leases of one worker."""

    def __init__(self, redis: Redis, guard: RedisGuard, ttl_s: float, prefix: str) -> None:
        self._redis = redis
        self._renew = redis.register_script(RENEW)
        self._release_slot = redis.register_script(SLOT_RELEASE)
        self._guard = guard
        self._ttl_ms = int(ttl_s * 1000)
        self._interval = ttl_s / 3
        #: This worker's marker: gone means Redis lost what this worker wrote.
        self.marker = f"{prefix}:worker:{uuid.uuid4().hex}"
        self._held: dict[RedisLease, None] = {}
        self._unsynced = 0  # leases admitted without Redis (the fallback), ever
        self._synced = 0  # ... of which the last completed renewal had seen this many
        self._outages_synced = 0
        self._lock = asyncio.Lock()
        self._started = 0  # renewals started
        self._done = 0  # the number of the last renewal that completed
        self._task: asyncio.Task[None] | None = None

    def hold(self, lease: RedisLease, *, unshared: bool = False) -> None:
        """Renew ``lease`` from now on; ``unshared``: admitted while Redis was unreachable."""
        self._held[lease] = None
        if unshared:
            self._unsynced += 1

    def drop(self, lease: RedisLease) -> None:
        """Stop renewing it (released)."""
        self._held.pop(lease, None)

    @property
    def held(self) -> int:
        """Leases being renewed."""
        return len(self._held)

    async def call(self, script: Callable[[], Awaitable[Any]]) -> Any:
        """Run a deciding script through the guard, with this worker's leases in Redis.

        Raises:
            RedisDown: Redis failed (or was skipped) while restoring or running it.
        """
        if self._outages_synced != self._guard.outages or self._synced != self._unsynced:
            await self._restore(self._started)
        result = await self._guard.run(script)
        if result and result[0] == STATE_LOST:
            await self._restore(self._started)
            result = await self._guard.run(script)
            if result and result[0] == STATE_LOST:
                raise RedisDown("Redis lost this worker's state again at once")
        return result

    async def _restore(self, seen: int) -> None:
        """Renew and restore, unless a renewal that started after ``seen`` completed."""
        async with self._lock:
            if self._done > seen:
                return  # another call renewed (and restored) everything meanwhile
            await self._sync()

    async def renew_now(self) -> int:
        """Renew (and restore) every held lease now; returns how many were put back."""
        async with self._lock:
            return await self._sync()

    async def _sync(self) -> int:
        self._started += 1
        number = self._started
        outages, unsynced = self._guard.outages, self._unsynced
        items = list(self._held)
        restored = 0
        for start in range(0, max(1, len(items)), _BATCH):
            batch = items[start : start + _BATCH]
            numbers = await self._guard.run(partial(self._renew_batch, batch))
            restored += len(numbers)
            for index in numbers:
                lease = batch[int(index) - 1]
                if lease not in self._held:  # released while this renewal ran
                    self._guard.background(partial(self._remove, lease))
        self._done = number
        self._outages_synced, self._synced = outages, unsynced
        if restored:
            log.warning(
                "put %d lease(s) back that Redis had lost (a restart, an outage or a stall)",
                restored,
            )
        return restored

    async def _renew_batch(self, batch: list[RedisLease]) -> Any:
        keys = [self.marker]
        args: list[str | int] = [self._ttl_ms, self._ttl_ms * 3]
        for lease in batch:
            keys += lease.keys
            args += (lease.member, lease.user)
        return await self._renew(keys=keys, args=args)

    async def _remove(self, lease: RedisLease) -> None:
        if lease.user:
            await self._guard.run(
                partial(self._release_slot, keys=list(lease.keys), args=[lease.member])
            )
        else:
            await self._guard.run(partial(self._redis.zrem, lease.keys[0], lease.member))

    def start(self) -> None:
        """Start renewing in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(RedisDown):
                await self.renew_now()  # also keeps the marker alive while nothing is held

    async def aclose(self) -> None:
        """Stop renewing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
