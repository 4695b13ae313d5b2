"""Shared state in the real Redis: several workers, one capacity, one set of limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from coordination.leases import RedisLease
from coordination.limits.rules import LimitPolicy
from coordination.slots.rules import SlotHold
from tests.coordination.conftest import Worker
from tests.coordination.conftest import settle_background

pytestmark = pytest.mark.redis


async def test_workers_share_one_capacity_and_status(worker: Worker) -> None:
    one, two = await worker(), await worker()
    a, b = one.slots(3), two.slots(3)
    assert isinstance(await a.try_acquire("alice"), SlotHold)
    assert isinstance(await b.try_acquire("bob"), SlotHold)
    held = await b.try_acquire("carol")
    assert isinstance(held, SlotHold)
    assert await a.try_acquire("dave") == "busy"
    assert (await a.usage()).in_use == (await b.usage()).in_use == 3
    b.release(held)
    await settle_background()
    assert (await a.usage()).in_use == 2
    assert isinstance(await a.try_acquire("dave"), SlotHold)


async def test_a_killed_workers_slots_come_back_after_the_lease_ttl(worker: Worker) -> None:
    dead = await worker(ttl_s=1.0)  # its keeper never runs: like a SIGKILLed worker
    alive = await worker(ttl_s=1.0)
    slots = dead.slots(2, lease_ttl_s=1.0, max_user_share=0.5)
    assert isinstance(await slots.try_acquire("alice"), SlotHold)
    assert isinstance(await slots.try_acquire("bob"), SlotHold)
    survivor = alive.slots(2, lease_ttl_s=1.0, max_user_share=0.5)
    assert await survivor.try_acquire("carol") == "busy"
    await asyncio.sleep(1.2)
    assert (await survivor.usage()).in_use == 0
    # The per-user counts went with the leases: alice may hold her share again.
    assert isinstance(await survivor.try_acquire("alice"), SlotHold)
    assert await survivor.try_acquire("alice") == "busy"


async def test_renewal_keeps_a_long_stream_s_slot(worker: Worker) -> None:
    shared = await worker(ttl_s=1.0)
    shared.keeper.start()
    slots = shared.slots(1, lease_ttl_s=1.0)
    hold = await slots.try_acquire("alice")
    assert isinstance(hold, SlotHold)
    await asyncio.sleep(1.6)
    assert (await slots.usage()).in_use == 1
    slots.release(hold)
    await settle_background()
    assert (await slots.usage()).in_use == 0
    assert shared.keeper.held == 0


async def test_workers_share_the_requests_per_minute(worker: Worker) -> None:
    policy = LimitPolicy(requests_per_minute=5, concurrent_requests=0, tokens_per_minute=0)
    one, two = (await worker()).limiter(policy), (await worker()).limiter(policy)
    for limiter in (one, two, one, two, one):
        assert (await limiter.admit("alice", "e", 0)).allowed
    refused = await two.admit("alice", "e", 0)
    assert not refused.allowed and refused.limit == "requests" and refused.shared
    assert 11.5 < refused.retry_after_s <= 12.0  # one request leaks every 12 s
    assert refused.remaining == 0
    assert (await one.admit("bob", "e", 0)).allowed


async def test_workers_share_concurrency_and_a_dead_worker_s_entries_expire(
    worker: Worker,
) -> None:
    policy = LimitPolicy(requests_per_minute=0, concurrent_requests=2, tokens_per_minute=0)
    dead = (await worker(ttl_s=1.0)).limiter(policy, lease_ttl_s=1.0)
    alive_worker = await worker(ttl_s=1.0)
    alive = alive_worker.limiter(policy, lease_ttl_s=1.0)
    assert (await dead.admit("alice", "d1", 0)).allowed
    assert (await alive.admit("alice", "a1", 0)).allowed
    assert not (await alive.admit("alice", "a2", 0)).allowed
    alive.finish("alice", "a1", 0, shared=True)
    await settle_background()
    assert (await alive.admit("alice", "a3", 0)).allowed
    assert not (await alive.admit("alice", "a4", 0)).allowed
    alive_worker.keeper.start()  # a3 stays; d1 (never renewed) expires
    await asyncio.sleep(1.3)
    assert (await alive.admit("alice", "a5", 0)).allowed


async def test_tokens_are_corrected_to_the_real_usage(worker: Worker) -> None:
    policy = LimitPolicy(requests_per_minute=0, concurrent_requests=0, tokens_per_minute=1000)
    limiter = (await worker()).limiter(policy)
    assert (await limiter.admit("alice", "t1", 900)).allowed
    refused = await limiter.admit("alice", "t2", 900)
    assert not refused.allowed and refused.limit == "tokens"
    assert 47 < refused.retry_after_s <= 48.1  # 800 tokens at 1000/60 per second
    limiter.finish("alice", "t1", 20 - 900, shared=True)  # it used 20
    await settle_background()
    verdict = await limiter.admit("alice", "t3", 900)
    assert verdict.allowed and 80 <= verdict.remaining <= 100  # 1000 - 20 - 900, plus leak


async def test_a_provider_s_lease_set_never_expires_as_a_whole(worker: Worker) -> None:
    shared = await worker(ttl_s=1.0)
    slots = shared.slots(1, lease_ttl_s=1.0)
    assert isinstance(await slots.try_acquire("alice"), SlotHold)
    await shared.keeper.renew_now()
    # The per-user counts live in other keys: were the set to expire by itself (a dead
    # worker, then an idle provider), alice's count would stay and refuse her for ever.
    assert await shared.redis.pttl(f"{shared.prefix}:slot:{{p}}:lease") == -1


async def test_a_lease_released_while_it_is_restored_is_taken_out_again(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = await worker()
    keeper = shared.keeper
    key = f"{shared.prefix}:rl:{{alice}}:c"
    lease = RedisLease((key,), "e1")
    keeper.hold(lease, unshared=True)  # admitted by the fallback: not in Redis yet
    renew = keeper._renew_batch

    async def released_meanwhile(batch: list[RedisLease]) -> Any:
        keeper.drop(lease)  # the request ends while its renewal is on the way
        return await renew(batch)

    monkeypatch.setattr(keeper, "_renew_batch", released_meanwhile)
    assert await keeper.renew_now() == 1
    for _ in range(100):
        if not await shared.redis.zcard(key):
            break
        await asyncio.sleep(0.01)
    assert await shared.redis.zcard(key) == 0
    assert keeper.held == 0


async def test_a_worker_whose_marker_is_gone_puts_its_leases_back_before_deciding(
    worker: Worker,
) -> None:
    policy = LimitPolicy(requests_per_minute=0, concurrent_requests=1, tokens_per_minute=0)
    shared = await worker()
    limiter = shared.limiter(policy)
    slots = shared.slots(1)
    assert (await limiter.admit("alice", "a1", 0)).allowed
    assert isinstance(await slots.try_acquire("alice"), SlotHold)
    keys = [k async for k in shared.redis.scan_iter(match=f"{shared.prefix}:*")]
    await shared.redis.delete(*keys)  # what a restart without persistence does
    assert not (await limiter.admit("alice", "a2", 0)).allowed
    assert await slots.try_acquire("bob") == "busy"
    assert (await slots.usage()).in_use == 1
