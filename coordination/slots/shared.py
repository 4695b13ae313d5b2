"""Pool slots shared by every worker and host: leases in Redis with a TTL, taken fairly.

Each provider has a sorted set of leases scored by expiry; taking a slot is one Lua call
that first drops expired leases (a killed worker's), then applies the rules of
``coordination.slots.rules`` (per-user cap, the last slot kept for a waiting user, queued tickets
first, round-robin order) and adds the lease. Releasing is one call too, run in the
background so a stream's ending never waits for Redis; if it is lost, the lease expires.
``/status`` and the busy flag read the same keys, so every worker reports the same thing.
Waiters poll every ``poll_s`` (releases in other workers cannot wake them) and are woken
at once by releases in this worker.

Leases a Redis restart lost are put back by the worker that holds them before it decides
anything again (``coordination.leases``). With ``on_redis_error = "local"`` the fallback
is a ``LocalSlots`` twin with this worker's share of the capacity (``ceil(capacity /
workers)``) that counts every slot the worker holds, taken in Redis or by itself; slots it
gave out go into Redis as soon as Redis answers again.
"""

from __future__ import annotations

from redis.asyncio import Redis

from coordination.guard import RedisDown
from coordination.guard import RedisGuard
from coordination.leases import LeaseKeeper
from coordination.leases import RedisLease
from coordination.limits.rules import new_entry
from coordination.lua import LEAVE
from coordination.lua import SLOT_ACQUIRE
from coordination.lua import SLOT_RELEASE
from coordination.lua import SLOT_USAGE
from coordination.slots.local import LocalSlots
from coordination.slots.rules import ChangeSignal
from coordination.slots.rules import Refusal
from coordination.slots.rules import SlotHold
from coordination.slots.rules import SlotUsage
from coordination.slots.rules import user_slot_cap
from coordination.workers import worker_share

__all__ = ["RedisSlots"]

_SUFFIXES = ("lease", "owner", "held", "waiting", "queue", "ticket", "clock")


class RedisSlots(ChangeSignal):
    """The ``Slots`` of one provider, in Redis, with a local twin for the fallback."""

    def __init__(
        self,
        *,
        redis: Redis,
        guard: RedisGuard,
        keeper: LeaseKeeper,
        prefix: str,
        name: str,
        capacity: int,
        max_user_share: float,
        fair_window_s: float,
        queue_max: int,
        lease_ttl_s: float,
        poll_s: float = 0.05,
        workers: int = 1,
    ) -> None:
        self.capacity = capacity
        self.poll_s: float | None = poll_s
        self._guard = guard
        self._keeper = keeper
        self._keys = [f"{prefix}:slot:{{{name}}}:{suffix}" for suffix in _SUFFIXES]
        self._script_keys = [*self._keys, keeper.marker]
        self._lease_keys = tuple(self._keys[:3])
        self._static = [
            capacity,
            user_slot_cap(capacity, max_user_share),
            int(lease_ttl_s * 1000),
            int(fair_window_s * 1000),
        ]
        self._ticket_ttl_ms = max(2000, int(poll_s * 40_000))
        self._queue_max = queue_max
        self._local = LocalSlots(
            worker_share(capacity, workers),
            max_user_share=max_user_share,
            fair_window_s=fair_window_s,
            queue_max=queue_max,
        )
        self._acquire = redis.register_script(SLOT_ACQUIRE)
        self._release = redis.register_script(SLOT_RELEASE)
        self._leave = redis.register_script(LEAVE)
        self._usage = redis.register_script(SLOT_USAGE)
        self._in_use = 0

    @property
    def in_use(self) -> int:  # noqa: D102
        return self._local.in_use if self._guard.down else self._in_use

    async def try_acquire(  # noqa: D102
        self, user: str, ticket: str | None = None
    ) -> SlotHold | Refusal:
        lease = new_entry()
        args: list[str | int] = [user, lease, *self._static, ticket or ""]
        args += [self._ticket_ttl_ms, self._queue_max]
        try:
            status, in_use, _ = await self._keeper.call(
                lambda: self._acquire(keys=self._script_keys, args=args)
            )
        except RedisDown:
            if self._guard.mode == "fail":
                raise self._guard.unavailable() from None
            got = self._local.acquire_now(user, ticket)
            if isinstance(got, str):
                return got
            self._keeper.hold(RedisLease(self._lease_keys, lease, user), unshared=True)
            return SlotHold(user, lease)
        self._in_use = int(in_use)
        if status == 1:
            self._keeper.hold(RedisLease(self._lease_keys, lease, user))
            self._local.take(user)
            return SlotHold(user, lease, shared=True)
        return "queue_full" if status == -1 else "busy"

    def release(self, hold: SlotHold) -> None:  # noqa: D102
        self._local.release(hold)  # the twin counts every slot this worker holds
        self._keeper.drop(RedisLease(self._lease_keys, hold.lease_id, hold.user))
        if hold.shared:
            self._in_use = max(0, self._in_use - 1)
        else:
            self._notify()  # a fallback slot is free here at once
        # A fallback slot may have been put into Redis since: it is released there too.
        self._guard.background(lambda: self._release_shared(hold.lease_id))

    async def _release_shared(self, lease: str) -> None:
        try:
            in_use = await self._guard.run(lambda: self._release(keys=self._keys[:3], args=[lease]))
            self._in_use = int(in_use)
        finally:
            self._notify()

    def leave(self, ticket: str) -> None:  # noqa: D102
        self._local.leave(ticket)
        self._guard.background(
            lambda: self._guard.run(lambda: self._leave(keys=self._keys, args=[ticket]))
        )

    async def usage(self) -> SlotUsage:  # noqa: D102
        try:
            in_use, queued = await self._keeper.call(lambda: self._usage(keys=self._script_keys))
        except RedisDown:
            if self._guard.mode == "fail":
                raise self._guard.unavailable() from None
            return await self._local.usage()
        self._in_use = int(in_use)
        return SlotUsage(int(in_use), self.capacity, int(queued))
