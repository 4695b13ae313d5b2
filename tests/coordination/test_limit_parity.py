"""The rate limits give the same verdicts in memory and in Redis, step for step.

Each case is one bucket (or a mix) and a sequence of admissions and finishes; it runs
against ``LocalRateLimiter`` and ``RedisRateLimiter`` and both must give the verdicts the
case expects, as a client sees them (the RateLimit headers and Retry-After in whole
seconds). A new bucket joins by adding a case, and a step kind if it needs one (a step is
any ``async (limiter, grants) -> Verdict | None``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from coordination.limits.admission import retry_after
from coordination.limits.local import LocalRateLimiter
from coordination.limits.rules import LimitPolicy
from coordination.limits.rules import RateLimiter
from coordination.limits.rules import Verdict
from tests.coordination.conftest import Worker
from tests.coordination.conftest import settle_background

pytestmark = pytest.mark.redis

Grants = dict[str, Verdict]
"""The verdict each admitted entry got (its ``shared`` flag says where to finish it)."""
Step = Callable[[RateLimiter, Grants], Awaitable[Verdict | None]]
Seen = tuple[bool, str | None, int, int, int, int | None]
"""allowed, limit, RateLimit-Limit, -Remaining, -Reset, Retry-After (refusals only)."""


def seen(verdict: Verdict) -> Seen:
    """A verdict as the client sees it (``RateLimits.headers``, ``retry_after``)."""
    wait = None if verdict.allowed else retry_after(verdict)
    reset = math.ceil(verdict.reset_s)
    return (verdict.allowed, verdict.limit, verdict.quota, verdict.remaining, reset, wait)


def admit(user: str, entry: str, tokens: int = 0) -> Step:
    async def step(limiter: RateLimiter, grants: Grants) -> Verdict:
        verdict = await limiter.admit(user, entry, tokens)
        if verdict.allowed:
            grants[entry] = verdict
        return verdict

    return step


def read(key: str, quota: int) -> Step:
    async def step(limiter: RateLimiter, grants: Grants) -> Verdict:
        return await limiter.admit_read(key, quota)

    return step


def finish(user: str, entry: str, token_delta: int = 0) -> Step:
    async def step(limiter: RateLimiter, grants: Grants) -> None:
        limiter.finish(user, entry, token_delta, shared=grants.pop(entry).shared)
        await settle_background()  # Redis finishes in the background

    return step


@dataclass(frozen=True)
class Case:
    """One bucket's rules: a policy, what is done, and what the client must see."""

    name: str
    policy: LimitPolicy
    steps: list[Step]
    expected: list[Seen]


CASES = [
    Case(
        "requests",
        LimitPolicy(requests_per_minute=3, concurrent_requests=0, tokens_per_minute=0),
        [
            admit("alice", "a1"),
            admit("alice", "a2"),
            admit("alice", "a3"),
            admit("alice", "a4"),
            admit("bob", "b1"),
        ],
        [
            (True, "requests", 3, 2, 20, None),
            (True, "requests", 3, 1, 40, None),
            (True, "requests", 3, 0, 60, None),
            (False, "requests", 3, 0, 60, 20),  # one request leaks every 20 s
            (True, "requests", 3, 2, 20, None),  # each user has a bucket of their own
        ],
    ),
    Case(
        "concurrency",
        LimitPolicy(requests_per_minute=0, concurrent_requests=2, tokens_per_minute=0),
        [
            admit("alice", "a1"),
            admit("alice", "a2"),
            admit("alice", "a3"),
            finish("alice", "a1"),
            admit("alice", "a4"),
            admit("alice", "a5"),
        ],
        [
            (True, "concurrency", 2, 1, 0, None),
            (True, "concurrency", 2, 0, 0, None),
            (False, "concurrency", 2, 0, 1, 1),
            (True, "concurrency", 2, 0, 0, None),  # a1 finished: its place is free
            (False, "concurrency", 2, 0, 1, 1),
        ],
    ),
    Case(
        "tokens",
        LimitPolicy(requests_per_minute=0, concurrent_requests=0, tokens_per_minute=1000),
        [
            admit("alice", "a1", 600),
            admit("alice", "a2", 600),
            finish("alice", "a1", -580),
            admit("alice", "a3", 600),
            admit("bob", "b1", 5000),
        ],
        [
            (True, "tokens", 1000, 400, 36, None),
            (False, "tokens", 1000, 400, 36, 12),  # 200 over: 12 s at 1000/60 a second
            (True, "tokens", 1000, 380, 38, None),  # a1 used 20: corrected
            (True, "tokens", 1000, 0, 60, None),  # an estimate over the quota takes it all
        ],
    ),
    Case(
        "longest wait is reported",
        LimitPolicy(requests_per_minute=2, concurrent_requests=5, tokens_per_minute=120),
        [admit("alice", "a1", 50), admit("alice", "a2", 50), admit("alice", "a3", 50)],
        [
            (True, "requests", 2, 1, 30, None),
            (True, "requests", 2, 0, 60, None),
            (False, "requests", 2, 0, 60, 30),  # tokens would pass in 15 s, requests in 30
        ],
    ),
    Case(
        "cheap reads",
        LimitPolicy(requests_per_minute=1, concurrent_requests=0, tokens_per_minute=0),
        [
            read("u:alice", 2),
            read("u:alice", 2),
            read("u:alice", 2),
            admit("alice", "a1"),  # reads spend nothing of the requests bucket
            read("a:10.0.0.1", 2),  # each key its own bucket
        ],
        [
            (True, "reads", 2, 1, 30, None),
            (True, "reads", 2, 0, 60, None),
            (False, "reads", 2, 0, 60, 30),
            (True, "requests", 1, 0, 60, None),
            (True, "reads", 2, 1, 30, None),
        ],
    ),
    Case(
        "all off",
        LimitPolicy(requests_per_minute=0, concurrent_requests=0, tokens_per_minute=0),
        [admit("alice", "a1", 10**6), finish("alice", "a1", -5)],
        [(True, None, 0, 0, 0, None)],
    ),
]


async def run(limiter: RateLimiter, case: Case) -> list[Seen]:
    grants: Grants = {}
    verdicts = [await step(limiter, grants) for step in case.steps]
    return [seen(verdict) for verdict in verdicts if verdict is not None]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_memory_and_redis_give_the_same_verdicts(worker: Worker, case: Case) -> None:
    in_memory = await run(LocalRateLimiter(case.policy), case)
    in_redis = await run((await worker()).limiter(case.policy), case)
    assert in_memory == case.expected, "in memory"
    assert in_redis == in_memory, "Redis differs from memory"
