"""Per-user limits counted in this process, on aiolimiter's leaky buckets.

One ``AsyncLimiter(quota, 60)`` per user and limit keeps the level; admission never waits
(``has_capacity`` then charge, never ``acquire``, which would queue), and the few things
aiolimiter has no public call for - the exact wait, a refund, charging past the brim when
the real usage exceeded the estimate - go through :class:`_Bucket`, which reads the same
``_level`` its ``_leak`` keeps. Idle users are dropped every few thousand admissions so
memory follows the active users, not everyone ever seen.
"""

from __future__ import annotations

import time

from aiolimiter import AsyncLimiter

from coordination.limits.rules import LimitPolicy
from coordination.limits.rules import Measure
from coordination.limits.rules import Verdict
from coordination.limits.rules import decide
from coordination.limits.rules import decide_read

__all__ = ["LocalRateLimiter"]

_SWEEP_EVERY = 4096


class _Bucket(AsyncLimiter):
    """An aiolimiter bucket with the exact wait and signed charges."""

    __slots__ = ()

    def _leak(self) -> None:
        # aiolimiter's own, on the monotonic clock directly: its ``_loop`` lookup costs more
        # than the arithmetic, and these buckets never wait, so they need no loop at all.
        now = time.monotonic()
        if self._level:
            self._level = max(self._level - (now - self._last_check) * self._rate_per_sec, 0)
        self._last_check = now

    def level(self) -> float:
        """The level after leaking until now."""
        self._leak()
        return float(self._level)

    def add(self, amount: float) -> float:
        """Charge (or refund, when negative) ``amount``; the level may pass the brim."""
        self._leak()
        self._level = max(0.0, self._level + amount)
        return float(self._level)

    def charge_checked(self, amount: float) -> float:
        """Charge right after ``has_capacity`` said yes (it just leaked: no second leak)."""
        self._level += amount
        return float(self._level)

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0 when it fits now)."""
        over = self.level() + amount - self.max_rate
        return max(0.0, over / self._rate_per_sec)


class LocalRateLimiter:
    """The ``RateLimiter`` of one worker: exact for one process, per process otherwise."""

    def __init__(self, policy: LimitPolicy) -> None:
        self._policy = policy
        self._requests: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}
        self._reads: dict[str, _Bucket] = {}
        self._inflight: dict[str, int] = {}
        self._admissions = 0

    async def admit(self, user: str, entry: str, tokens: int) -> Verdict:  # noqa: D102
        return self.admit_now(user, entry, tokens)

    def admit_now(self, user: str, entry: str, tokens: int) -> Verdict:
        """``admit`` without the coroutine (the Redis fallback calls it too)."""
        policy = self._policy
        self._admissions += 1
        if self._admissions % _SWEEP_EVERY == 0:
            self._sweep()
        requests = tokens_bucket = None
        req_ok, req_wait = True, 0.0
        if policy.requests_per_minute:
            requests = self._bucket(self._requests, user, policy.requests_per_minute)
            req_ok = requests.has_capacity(1)
            req_wait = 0.0 if req_ok else requests.wait_s(1)
        count = self._inflight.get(user, 0)
        conc_ok = not policy.concurrent_requests or count < policy.concurrent_requests
        amount = min(tokens, policy.tokens_per_minute)
        tok_ok, tok_wait = True, 0.0
        if policy.tokens_per_minute:
            tokens_bucket = self._bucket(self._tokens, user, policy.tokens_per_minute)
            tok_ok = amount <= 0 or tokens_bucket.has_capacity(amount)
            tok_wait = 0.0 if tok_ok else tokens_bucket.wait_s(amount)
        if req_ok and conc_ok and tok_ok:
            if policy.concurrent_requests:
                count += 1
                self._inflight[user] = count
            req_level = requests.charge_checked(1) if requests is not None else 0.0
            tok_level = 0.0
            if tokens_bucket is not None:
                tok_level = (
                    tokens_bucket.charge_checked(amount) if amount > 0 else tokens_bucket.level()
                )
        else:
            req_level = requests.level() if requests is not None else 0.0
            tok_level = tokens_bucket.level() if tokens_bucket is not None else 0.0
        return decide(
            policy,
            Measure(req_ok, req_level, req_wait),
            Measure(conc_ok, count),
            Measure(tok_ok, tok_level, tok_wait),
        )

    async def admit_read(self, key: str, quota: int) -> Verdict:  # noqa: D102
        return self.read_now(key, quota)

    def read_now(self, key: str, quota: int) -> Verdict:
        """``admit_read`` without the coroutine (the Redis fallback calls it too)."""
        bucket = self._bucket(self._reads, key, quota)
        if bucket.has_capacity(1):
            return decide_read(quota, Measure(True, bucket.charge_checked(1)))
        return decide_read(quota, Measure(False, bucket.level(), bucket.wait_s(1)))

    def count_in(self, user: str) -> None:
        """Count a request admitted elsewhere (by Redis) as in flight here too.

        The Redis limiter's twin counts every request its worker runs, so that, should
        Redis fail, the fallback's concurrency limit sees the streams already running.
        """
        if self._policy.concurrent_requests:
            self._inflight[user] = self._inflight.get(user, 0) + 1

    def finish(self, user: str, entry: str, token_delta: int, *, shared: bool = False) -> None:  # noqa: D102
        if self._policy.concurrent_requests:
            count = self._inflight.get(user, 0) - 1
            if count > 0:
                self._inflight[user] = count
            else:
                self._inflight.pop(user, None)
        if token_delta and self._policy.tokens_per_minute:
            self._bucket(self._tokens, user, self._policy.tokens_per_minute).add(token_delta)

    def _bucket(self, buckets: dict[str, _Bucket], user: str, quota: int) -> _Bucket:
        bucket = buckets.get(user)
        if bucket is None:
            bucket = buckets[user] = _Bucket(quota, 60)
        return bucket

    def _sweep(self) -> None:
        for buckets in (self._requests, self._tokens, self._reads):
            for user in [u for u, b in buckets.items() if b.level() == 0.0]:
                del buckets[user]
