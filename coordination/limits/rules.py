"""Per-user rate limits: the policy, one limiter protocol, grants and the RateLimit headers.

Three limits per user, each off at 0: requests per minute and tokens per minute (leaky
buckets, as aiolimiter keeps them: a burst of the whole quota, then a steady drip) and
requests in flight. A request is admitted only if all three have room, and then all three
are charged at once (atomically: in one process here, in one Lua script with Redis). Tokens
are charged at admission as prompt + ``max_tokens`` (an estimate) and corrected to the real
usage when the gateway settles the call; a request that never reached an upstream gets its
tokens back. The limiter backends (``limits.local``, ``limits.shared``) return raw numbers;
:func:`decide` turns them into one :class:`Verdict` the same way for both. Cheap reads (the
model list, the status) have a leaky bucket of their own, per user or per client address,
which neither spends nor is refused by the three (:func:`decide_read`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import uuid
from dataclasses import dataclass
from typing import Literal
from typing import NamedTuple
from typing import Protocol

from coordination.workers import worker_share

__all__ = ["Grant", "LimitName", "LimitPolicy", "RateLimitExceeded", "RateLimiter", "Verdict"]

LimitName = Literal["requests", "concurrency", "tokens", "reads"]
#: Retry-After for a refusal by the concurrency limit: when a stream ends is unknowable.
CONCURRENCY_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """The per-user quotas of a deployment (0 = that limit is off)."""

    requests_per_minute: int
    concurrent_requests: int
    tokens_per_minute: int
    reads_per_minute: int = 0
    """Cheap reads per user (the model list): a bucket apart from the three above."""
    address_reads_per_minute: int = 0
    """Cheap reads per client address (the status, which has no user)."""

    @property
    def enabled(self) -> bool:
        """Any limit on requests is on (cheap reads aside)."""
        return bool(self.requests_per_minute or self.concurrent_requests or self.tokens_per_minute)

    @property
    def reads_enabled(self) -> bool:
        """A cheap-read bucket is on."""
        return bool(self.reads_per_minute or self.address_reads_per_minute)

    def per_worker(self, workers: int) -> LimitPolicy:
        """What one of ``workers`` workers may admit on its own (the Redis fallback)."""
        return LimitPolicy(
            requests_per_minute=worker_share(self.requests_per_minute, workers),
            concurrent_requests=worker_share(self.concurrent_requests, workers),
            tokens_per_minute=worker_share(self.tokens_per_minute, workers),
            reads_per_minute=worker_share(self.reads_per_minute, workers),
            address_reads_per_minute=worker_share(self.address_reads_per_minute, workers),
        )

    def header(self) -> str:
        """``RateLimit-Policy``: every enabled quota (draft-ietf-httpapi-ratelimit-headers)."""
        parts = []
        if self.requests_per_minute:
            parts.append(f'{self.requests_per_minute};w=60;name="requests"')
        if self.concurrent_requests:
            parts.append(f'{self.concurrent_requests};name="concurrency"')
        if self.tokens_per_minute:
            parts.append(f'{self.tokens_per_minute};w=60;name="tokens"')
        return ", ".join(parts)


class Verdict(NamedTuple):
    """One admission decision and the quota its numbers describe."""

    allowed: bool
    limit: LimitName | None
    """The limit reported: the one that refused (the longest wait), else requests."""
    quota: int
    remaining: int
    reset_s: float
    """Seconds until that quota is whole again."""
    retry_after_s: float
    """Seconds until the same request would be admitted (0 when allowed)."""
    shared: bool = False
    """Decided by the shared state (its grant is finished there too)."""


class RateLimitExceeded(Exception):
    """A refusal; the wiring turns it into 429 ``RATE_LIMITED``."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"rate limit '{verdict.limit}' exceeded")
        self.verdict = verdict


class RateLimiter(Protocol):
    """Atomic check-and-charge of the three limits for one user."""

    async def admit(self, user: str, entry: str, tokens: int) -> Verdict:
        """Admit one request holding in-flight ``entry`` and ``tokens``, or charge nothing."""
        ...

    def finish(self, user: str, entry: str, token_delta: int, *, shared: bool) -> None:
        """Drop ``entry`` and add ``token_delta`` (negative: a refund); never waits."""
        ...

    async def admit_read(self, key: str, quota: int) -> Verdict:
        """Admit one cheap read against the reads bucket ``key`` of ``quota`` a minute."""
        ...


class Measure(NamedTuple):
    """One limit's state as a backend saw it (levels after the charge when admitted)."""

    ok: bool
    used: float
    wait_s: float = 0.0


def decide(
    policy: LimitPolicy,
    requests: Measure,
    inflight: Measure,
    tokens: Measure,
    *,
    shared: bool = False,
) -> Verdict:
    """The verdict both backends give for the same measures (on the hot path: keep it lean)."""
    rpm, conc, tpm = (
        policy.requests_per_minute,
        policy.concurrent_requests,
        policy.tokens_per_minute,
    )
    if requests.ok and inflight.ok and tokens.ok:
        if rpm:
            return _leaky(True, "requests", rpm, requests, shared)
        if tpm:
            return _leaky(True, "tokens", tpm, tokens, shared)
        if conc:
            return Verdict(True, "concurrency", conc, conc - int(inflight.used), 0.0, 0.0, shared)
        return Verdict(True, None, 0, 0, 0.0, 0.0, shared)
    refusals: list[Verdict] = []
    if rpm and not requests.ok:
        refusals.append(_leaky(False, "requests", rpm, requests, shared))
    if tpm and not tokens.ok:
        refusals.append(_leaky(False, "tokens", tpm, tokens, shared))
    if conc and not inflight.ok:
        wait = CONCURRENCY_RETRY_S
        refusals.append(Verdict(False, "concurrency", conc, 0, wait, wait, shared))
    return max(refusals, key=lambda verdict: verdict.retry_after_s)


def decide_read(quota: int, reads: Measure, *, shared: bool = False) -> Verdict:
    """The verdict both backends give for one cheap read."""
    return _leaky(reads.ok, "reads", quota, reads, shared)


def _leaky(allowed: bool, name: LimitName, quota: int, measure: Measure, shared: bool) -> Verdict:
    remaining = max(0, math.floor(quota - measure.used + 1e-9))
    reset = measure.used * 60.0 / quota
    return Verdict(
        allowed, name, quota, remaining, reset, 0.0 if allowed else measure.wait_s, shared
    )


_ENTRY_PREFIX = uuid.uuid4().hex[:12]
_entries = itertools.count()


def new_entry() -> str:
    """A cheap id for one in-flight request, unique across workers and hosts."""
    return f"{_ENTRY_PREFIX}-{next(_entries)}"


class Grant:
    """One admitted request: finish it when its work ends (idempotent; a safety net on GC)."""

    __slots__ = ("__weakref__", "_limiter", "charged", "entry", "used", "user", "verdict")

    def __init__(
        self, limiter: RateLimiter | None, user: str, entry: str, charged: int, verdict: Verdict
    ) -> None:
        self._limiter = limiter
        self.user = user
        self.entry = entry
        self.charged = charged
        self.verdict = verdict
        self.used: int | None = None

    def record_usage(self, tokens: int) -> None:
        """The real tokens the request used (the gateway's settlement)."""
        self.used = tokens

    def finish(self, default_used: int | None = None) -> None:
        """Release the in-flight slot and correct the token charge.

        Args:
            default_used: Tokens to settle at when no usage was recorded (HTTP passes 0:
                a request that reached no upstream used none); None keeps the estimate.
        """
        limiter, self._limiter = self._limiter, None
        if limiter is None:
            return
        used = self.used if self.used is not None else default_used
        delta = 0 if used is None else used - self.charged
        limiter.finish(self.user, self.entry, delta, shared=self.verdict.shared)

    def __del__(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nothing to release
            self.finish(None)
