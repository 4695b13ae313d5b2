"""The front of the per-user limits: admit, learn the real usage, render the headers.

The wiring (``quart_app``) calls :meth:`RateLimits.admit` once per HTTP request or
WebSocket message and finishes the grant when the work ends. Each settled call is reported
to :meth:`RateLimits.settled`, so that the tokens charged at admission are corrected to what
the call really used. When every limit is 0 nothing is counted at all. Cheap reads go
through :meth:`RateLimits.admit_read` instead: their own bucket, nothing in flight.
"""

from __future__ import annotations

import math
from weakref import WeakValueDictionary

from coordination.limits.local import LocalRateLimiter
from coordination.limits.rules import Grant
from coordination.limits.rules import LimitPolicy
from coordination.limits.rules import RateLimiter
from coordination.limits.rules import RateLimitExceeded
from coordination.limits.rules import Verdict
from coordination.limits.rules import new_entry

__all__ = ["RateLimits"]

_UNLIMITED = Verdict(True, None, 0, 0, 0.0, 0.0)


class RateLimits:
    """Per-user limits of one worker, over a local or shared ``RateLimiter``."""

    def __init__(self, policy: LimitPolicy, limiter: RateLimiter) -> None:
        self.policy = policy
        self.limiter: RateLimiter | None = limiter if policy.enabled else None
        self._reads: RateLimiter | None = limiter if policy.reads_enabled else None
        in_memory = limiter if isinstance(limiter, LocalRateLimiter) else None
        self._local = in_memory if policy.enabled else None
        self._local_reads = in_memory if policy.reads_enabled else None
        self._policy_header = policy.header()
        self._pending: WeakValueDictionary[tuple[str, str], Grant] = WeakValueDictionary()

    @property
    def enabled(self) -> bool:
        """Some limit is on."""
        return self.limiter is not None

    async def admit(self, user: str, request_id: str | None = None, tokens: int = 0) -> Grant:
        """Admit one request of ``user`` that may use ``tokens``, or refuse it.

        Raises:
            RateLimitExceeded: a limit is reached (nothing was charged).
            CoordinationUnavailable: Redis is down and the operator chose ``fail``.
        """
        limiter = self.limiter
        if limiter is None:
            return Grant(None, user, "", 0, _UNLIMITED)
        entry = new_entry()
        if self._local is not None:  # no coroutine to await in memory
            verdict = self._local.admit_now(user, entry, tokens)
        else:
            verdict = await limiter.admit(user, entry, tokens)
        if not verdict.allowed:
            raise RateLimitExceeded(verdict)
        quota = self.policy.tokens_per_minute
        charged = min(tokens, quota) if quota and tokens > 0 else 0
        grant = Grant(limiter, user, entry, charged, verdict)
        if charged and request_id:
            self._pending[(user, request_id)] = grant
        return grant

    @property
    def reads_enabled(self) -> bool:
        """A cheap-read bucket is on."""
        return self._reads is not None

    async def admit_read(self, who: str, *, by_address: bool = False) -> Verdict:
        """Admit one cheap read of ``who`` (a user id, or a client address), or refuse it.

        Raises:
            RateLimitExceeded: the reads bucket is full (nothing was charged).
            CoordinationUnavailable: Redis is down and the operator chose ``fail``.
        """
        policy = self.policy
        quota = policy.address_reads_per_minute if by_address else policy.reads_per_minute
        limiter = self._reads
        if limiter is None or not quota:
            return _UNLIMITED
        key = f"a:{who}" if by_address else f"u:{who}"  # two namespaces: no user is an address
        if self._local_reads is not None:
            verdict = self._local_reads.read_now(key, quota)
        else:
            verdict = await limiter.admit_read(key, quota)
        if not verdict.allowed:
            raise RateLimitExceeded(verdict)
        return verdict

    def settled(self, user_id: str, request_id: str, tokens: int) -> None:
        """Record the tokens a settled call really used on its grant."""
        grant = self._pending.pop((user_id, request_id), None)
        if grant is not None:
            grant.record_usage(tokens)

    def headers(self, verdict: Verdict) -> dict[str, str]:
        """``RateLimit-*`` (and ``Retry-After`` for a refusal) describing ``verdict``."""
        if verdict.limit is None:
            return {}
        policy = self._policy_header
        if verdict.limit == "reads":
            policy = f'{verdict.quota};w=60;name="reads"'
        headers = {
            "RateLimit-Limit": str(verdict.quota),
            "RateLimit-Remaining": str(verdict.remaining),
            "RateLimit-Reset": str(math.ceil(verdict.reset_s)),
            "RateLimit-Policy": policy,
        }
        if not verdict.allowed:
            headers["Retry-After"] = str(retry_after(verdict))
        return headers


def retry_after(verdict: Verdict) -> int:
    """Whole seconds until the refused request would pass (rounded up, at least 1)."""
    return max(1, math.ceil(verdict.retry_after_s - 1e-6))


def describe(verdict: Verdict) -> str:
    """A refusal in words for the error body."""
    wait = retry_after(verdict)
    if verdict.limit == "concurrency":
        return (
            f"rate limit: at most {verdict.quota} requests at once per user; "
            "retry when one of yours finishes"
        )
    if verdict.limit == "reads":
        return (
            f"rate limit: {verdict.quota} model-list or status reads per minute; retry in {wait} s"
        )
    return f"rate limit: {verdict.quota} {verdict.limit} per minute per user; retry in {wait} s"
