"""The cheap-read bucket: the same rules in memory and in Redis (``make_limiter``)."""

from __future__ import annotations

import pytest

from coordination.limits.rules import LimitPolicy
from coordination.limits.rules import Verdict
from coordination.limits.shared import RedisRateLimiter
from tests.coordination.conftest import LimiterFactory
from tests.coordination.conftest import Worker

POLICY = LimitPolicy(requests_per_minute=2, concurrent_requests=0, tokens_per_minute=0)


def seen(verdict: Verdict) -> tuple[object, ...]:
    """What a caller sees of a verdict: the Retry-After whole seconds, not the float."""
    return (verdict.allowed, verdict.limit, verdict.quota, verdict.remaining)


async def test_reads_leak_like_the_request_bucket(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(POLICY)
    verdicts = [await limiter.admit_read("u:alice", 5) for _ in range(6)]
    assert [seen(v) for v in verdicts] == [
        (True, "reads", 5, 4),
        (True, "reads", 5, 3),
        (True, "reads", 5, 2),
        (True, "reads", 5, 1),
        (True, "reads", 5, 0),
        (False, "reads", 5, 0),
    ]
    refused = verdicts[-1]
    assert 11.5 < refused.retry_after_s <= 12.0  # one read leaks every 12 s
    assert 59 < refused.reset_s <= 60.0


async def test_reads_spend_nothing_of_the_requests(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(POLICY)
    for _ in range(3):
        await limiter.admit_read("u:alice", 3)
    assert not (await limiter.admit_read("u:alice", 3)).allowed
    assert (await limiter.admit("alice", "e1", 0)).allowed
    assert (await limiter.admit("alice", "e2", 0)).allowed
    assert not (await limiter.admit("alice", "e3", 0)).allowed
    assert (await limiter.admit_read("u:bob", 3)).allowed  # each key its own bucket
    assert (await limiter.admit_read("a:10.0.0.1", 1)).allowed
    assert not (await limiter.admit_read("a:10.0.0.1", 1)).allowed


@pytest.mark.redis
async def test_the_fallback_reads_the_per_worker_share(worker: Worker) -> None:
    shared = await worker(mode="local", url="redis://127.0.0.1:1/0")  # nothing listens there
    limiter = RedisRateLimiter(
        redis=shared.redis,
        guard=shared.guard,
        keeper=shared.keeper,
        prefix=shared.prefix,
        policy=POLICY,
        lease_ttl_s=15.0,
        workers=4,
    )
    allowed = [(await limiter.admit_read("u:alice", 10)).allowed for _ in range(4)]
    assert allowed == [True, True, True, False]  # ceil(10 / 4)
