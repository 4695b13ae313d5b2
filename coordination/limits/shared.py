"""Per-user limits shared by every worker and host: one Lua call per admission.

The three keys of a user (requests bucket, tokens bucket, in-flight set) share a hash tag,
so the script that checks and charges all three is atomic and one round trip. In-flight
entries are leases renewed by the worker's ``LeaseKeeper``, so a killed worker's requests
stop counting within the lease TTL, and are put back if Redis loses them while the
request runs (see ``coordination.leases``). Finishing (dropping the entry, correcting the
tokens) runs in the background. When Redis fails the operator's choice applies: 503, or
this worker's own ``LocalRateLimiter`` until Redis answers again. That twin holds this
worker's *share* of each limit (``ceil(limit / workers)``) and counts every request the
worker runs, admitted by Redis or by itself, so the fallback never admits more than the
share; what it admitted goes into Redis as soon as Redis answers again.
"""

from __future__ import annotations

from redis.asyncio import Redis

from coordination.guard import RedisDown
from coordination.guard import RedisGuard
from coordination.leases import LeaseKeeper
from coordination.leases import RedisLease
from coordination.limits.local import LocalRateLimiter
from coordination.limits.rules import LimitPolicy
from coordination.limits.rules import Measure
from coordination.limits.rules import Verdict
from coordination.limits.rules import decide
from coordination.limits.rules import decide_read
from coordination.lua import ADMIT
from coordination.lua import FINISH
from coordination.lua import READ
from coordination.workers import worker_share

__all__ = ["RedisRateLimiter"]


class RedisRateLimiter:
    """The ``RateLimiter`` over Redis, with a local twin for the fallback."""

    def __init__(
        self,
        *,
        redis: Redis,
        guard: RedisGuard,
        keeper: LeaseKeeper,
        prefix: str,
        policy: LimitPolicy,
        lease_ttl_s: float,
        workers: int = 1,
    ) -> None:
        self._guard = guard
        self._keeper = keeper
        self._prefix = prefix
        self._policy = policy
        self._quotas = [
            policy.requests_per_minute,
            policy.concurrent_requests,
            policy.tokens_per_minute,
        ]
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._workers = workers
        self._local = LocalRateLimiter(policy.per_worker(workers))
        self._admit = redis.register_script(ADMIT)
        self._finish = redis.register_script(FINISH)
        self._read = redis.register_script(READ)

    def _keys(self, user: str) -> list[str]:
        base = f"{self._prefix}:rl:{{{user}}}"
        return [f"{base}:r", f"{base}:t", f"{base}:c"]

    async def admit(self, user: str, entry: str, tokens: int) -> Verdict:  # noqa: D102
        keys = self._keys(user)
        script_keys = [*keys, self._keeper.marker]
        args: list[str | int] = [*self._quotas, tokens, entry, self._ttl_ms]
        counted = self._policy.concurrent_requests > 0
        try:
            result = await self._keeper.call(lambda: self._admit(keys=script_keys, args=args))
        except RedisDown:
            if self._guard.mode == "fail":
                raise self._guard.unavailable() from None
            verdict = self._local.admit_now(user, entry, tokens)
            if verdict.allowed and counted:
                self._keeper.hold(RedisLease((keys[2],), entry), unshared=True)
            return verdict
        allowed, ok_r, level_r, wait_r, ok_c, inflight, ok_t, level_t, wait_t = map(int, result)
        if allowed and counted:
            self._keeper.hold(RedisLease((keys[2],), entry))
            self._local.count_in(user)
        return decide(
            self._policy,
            Measure(ok_r == 1, level_r / 1000, wait_r / 1000),
            Measure(ok_c == 1, inflight),
            Measure(ok_t == 1, level_t / 1000, wait_t / 1000),
            shared=True,
        )

    async def admit_read(self, key: str, quota: int) -> Verdict:  # noqa: D102
        keys = [f"{self._prefix}:rd:{{{key}}}"]
        try:
            ok, level, wait = await self._guard.run(lambda: self._read(keys=keys, args=[quota]))
        except RedisDown:
            if self._guard.mode == "fail":
                raise self._guard.unavailable() from None
            return self._local.read_now(key, worker_share(quota, self._workers))
        return decide_read(quota, Measure(ok == 1, level / 1000, wait / 1000), shared=True)

    def finish(self, user: str, entry: str, token_delta: int, *, shared: bool) -> None:  # noqa: D102
        keys = self._keys(user)
        counted = self._policy.concurrent_requests > 0
        if counted:
            self._keeper.drop(RedisLease((keys[2],), entry))
        if shared:
            self._local.finish(user, entry, 0)  # the twin's count of it
            if not (counted or (token_delta and self._policy.tokens_per_minute)):
                return
            args: list[str | int] = [self._policy.tokens_per_minute, entry, token_delta]
        else:
            self._local.finish(user, entry, token_delta)
            if not counted:
                return
            args = [0, entry, 0]  # its entry may have been put into Redis since: drop it
        self._guard.background(
            lambda: self._guard.run(lambda: self._finish(keys=keys[1:], args=args))
        )
