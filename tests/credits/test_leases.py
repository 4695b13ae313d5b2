"""Holds taken in a worker's memory from per-user leases (``credits.leases``), on both backends.

What a lease must keep of a hold of its own: never overdrawn across workers, a request
charged once, a balance near its end held exactly, what a lease sets aside given back
when idle, at shutdown, when the ledger expires it, and when its worker dies.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest

from credits import Balance
from credits import InsufficientCredits
from credits.billing import LedgerBilling
from credits.models import UsageRecord
from tests.credits.conftest import OpenLedger
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import charges
from tests.credits.helpers import eventually
from tests.credits.helpers import query
from tests.credits.helpers import usage

Worker = Callable[..., Awaitable[LedgerBilling]]


@pytest.fixture(name="worker")
async def _worker(open_ledger: OpenLedger, tmp_path: Path) -> AsyncIterator[Worker]:
    """Start a billing "worker" (its own ledger connection and journal); closed at teardown."""
    started: list[LedgerBilling] = []

    async def worker(**options: object) -> LedgerBilling:
        ledger = await open_ledger()
        billing = LedgerBilling(ledger, journal_dir=tmp_path / "journal", **options)  # type: ignore[arg-type]
        await billing.start()
        started.append(billing)
        return billing

    yield worker
    for billing in started:
        await billing.close()


def _priced(request_id: str, credits: int, user_id: str = "alice") -> UsageRecord:
    return replace(usage(request_id, user_id, completion_tokens=credits), credits=credits)


async def _pending(url: str) -> list[tuple[str, int]]:
    rows = await query(
        url, "SELECT request_id, amount FROM reservations WHERE status = 'pending' ORDER BY 1"
    )
    return [(str(request_id), int(amount)) for request_id, amount in rows]


async def test_holds_of_one_user_come_from_one_lease(worker: Worker, ledger_url: str) -> None:
    billing = await worker()
    await billing.ledger.grant("alice", 10_000)
    assert await billing.reserve("alice", "r0", 100) == 100
    # The lease holds the request's 100 and a spare of eight more (9,900 >= 2 x 800 left).
    assert await _pending(ledger_url) == [(f"{billing.leases.prefix}alice:1", 900)]
    for i in range(1, 9):
        assert await billing.reserve("alice", f"r{i}", 100) == 100
    assert await billing.ledger.balance("alice") == Balance(10_000, 900), "no ledger write"
    for i in range(9):
        await billing.settle(_priced(f"r{i}", 10 + i))
    await billing.drain()  # applies the charges, then gives the idle lease back
    assert await billing.ledger.balance("alice") == Balance(10_000 - 126, 0)
    assert await _pending(ledger_url) == []
    assert await charges(ledger_url) == {f"r{i}": [10 + i] for i in range(9)}
    rows = await billing.ledger.recent_usage("alice", limit=50)
    assert sorted((r.request_id, r.credits) for r in rows) == [(f"r{i}", 10 + i) for i in range(9)]
    await assert_consistent(ledger_url)


async def test_a_balance_near_its_end_is_held_exactly_and_capped(
    worker: Worker, ledger_url: str
) -> None:
    billing = await worker()
    await billing.ledger.grant("alice", 150)
    # No spare (150 - 100 < 2 x 800): the lease holds just the request's 100.
    assert await billing.reserve("alice", "r1", 100) == 100
    assert await billing.ledger.balance("alice") == Balance(150, 100)
    # At least 30, up to 400: capped to the 50 left.
    assert await billing.reserve("alice", "r2", 400, minimum=30) == 50
    with pytest.raises(InsufficientCredits) as refused:
        await billing.reserve("alice", "r3", 100, minimum=1)
    assert (refused.value.available, refused.value.needed) == (0, 1)
    await billing.settle(_priced("r1", 100))
    await billing.settle(_priced("r2", 500))  # more than its hold: capped at what is left
    await billing.drain()
    assert await billing.ledger.balance("alice") == Balance(0, 0)
    assert await charges(ledger_url) == {"r1": [100], "r2": [50]}
    await assert_consistent(ledger_url)


async def test_what_a_settled_request_left_serves_the_next_without_the_ledger(
    worker: Worker,
) -> None:
    billing = await worker()
    await billing.ledger.grant("alice", 300)
    assert await billing.reserve("alice", "r1", 200) == 200
    await billing.settle(_priced("r1", 50))
    # The lease keeps r1's unused 150, so r2 needs no ledger transaction even though the
    # ledger has not applied r1's charge yet (it never held more than the balance).
    assert await billing.reserve("alice", "r2", 150) == 150
    with pytest.raises(InsufficientCredits) as refused:
        await billing.reserve("alice", "r3", 200)
    assert refused.value.available == 100
    await billing.settle(_priced("r2", 150))
    await billing.drain()
    assert await billing.ledger.balance("alice") == Balance(100, 0)


@pytest.mark.parametrize("workers", [1, 3])
async def test_concurrent_requests_on_several_workers_never_overdraw(
    worker: Worker, ledger_url: str, workers: int
) -> None:
    """targets.md "Concurrency on credits", through leases: 60 requests, credits for 10."""
    billings = [await worker() for _ in range(workers)]
    ledger = billings[0].ledger
    await ledger.grant("alice", 10 * 40)
    seed = random.Random(workers)
    seen: list[Balance] = []
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            seen.append(await ledger.balance("alice"))
            await asyncio.sleep(0)

    async def one(i: int) -> bool:
        billing = billings[i % workers]
        try:
            assert await billing.reserve("alice", f"r{i}", 40) == 40
        except InsufficientCredits:
            return False
        await asyncio.sleep(seed.random() / 100)
        await billing.settle(_priced(f"r{i}", 40))
        return True

    watcher = asyncio.create_task(watch())
    won = await asyncio.gather(*(one(i) for i in range(60)))
    stop.set()
    await watcher
    for billing in billings:
        await billing.drain()
    assert won.count(True) == 10, "exactly the ten the balance covers"
    assert all(0 <= b.reserved <= b.balance for b in seen), "never held more than there is"
    assert await ledger.balance("alice") == Balance(0, 0)
    assert sorted(await charges(ledger_url)) == sorted(f"r{i}" for i in range(60) if won[i])
    await assert_consistent(ledger_url)


async def test_a_settlement_repeated_charges_nothing_more(worker: Worker, ledger_url: str) -> None:
    billing = await worker()
    await billing.ledger.grant("alice", 10_000)
    await billing.reserve("alice", "once", 100)
    record = _priced("once", 60)
    await asyncio.gather(billing.settle(record), billing.settle(record))
    await billing.drain()
    await billing.settle(record)  # again, after it was applied
    await billing.drain()
    assert await charges(ledger_url) == {"once": [60]}
    assert await billing.ledger.balance("alice") == Balance(10_000 - 60, 0)
    assert len(await billing.ledger.recent_usage("alice")) == 1
    await assert_consistent(ledger_url)


async def test_other_workers_find_room_beside_a_lease(worker: Worker, ledger_url: str) -> None:
    first, second = await worker(), await worker()
    await first.ledger.grant("alice", 2_000)
    assert await first.reserve("alice", "a", 100) == 100  # 100 + a spare of 800
    assert await second.reserve("alice", "b", 100) == 100  # 1,100 left: no spare
    assert await second.reserve("alice", "c", 1_000) == 1_000
    assert sorted(amount for _, amount in await _pending(ledger_url)) == [900, 1_100]
    await first.settle(_priced("a", 1))
    await second.settle(_priced("b", 1))
    await second.settle(_priced("c", 1))
    await first.drain()
    await second.drain()
    assert await first.ledger.balance("alice") == Balance(1_997, 0)
    await assert_consistent(ledger_url)


async def test_an_idle_lease_is_given_back_by_itself(worker: Worker, ledger_url: str) -> None:
    billing = await worker(lease_idle_s=0.1)
    await billing.ledger.grant("alice", 10_000)
    await billing.reserve("alice", "r1", 100)
    await asyncio.sleep(0.3)
    assert await billing.ledger.balance("alice") == Balance(10_000, 900), "in use: kept"
    await billing.settle(_priced("r1", 7))

    async def given_back() -> bool:
        return await billing.ledger.balance("alice") == Balance(9_993, 0)

    await eventually(given_back, "the idle lease given back", timeout_s=5)
    await assert_consistent(ledger_url)


async def test_a_lease_the_ledger_expired_is_charged_once_and_replaced(
    worker: Worker, ledger_url: str
) -> None:
    """A lease not renewed (a long outage) expires; its requests still settle, once."""
    billing = await worker(reservation_ttl_s=0.4)  # renewed every 0.1 s
    ledger = billing.ledger
    await ledger.grant("alice", 10_000)
    await billing.reserve("alice", "old", 100)
    later = datetime.now(UTC) + timedelta(days=1)
    assert await ledger.reconcile_expired(later) == 1
    assert await ledger.balance("alice") == Balance(10_000, 0)
    await asyncio.sleep(0.3)  # the next renewal finds it closed: no more holds from it
    assert await billing.reserve("alice", "new", 100) == 100
    leases = [lease for lease, _ in await _pending(ledger_url)]
    assert leases == [f"{billing.leases.prefix}alice:2"]
    await billing.settle(_priced("old", 30))  # from what is available: the lease is gone
    await billing.settle(_priced("new", 20))
    await billing.settle(_priced("old", 30))
    await billing.drain()
    assert await charges(ledger_url) == {"old": [30], "new": [20]}
    assert await ledger.balance("alice") == Balance(10_000 - 50, 0)
    await assert_consistent(ledger_url)
