"""targets.md "Concurrency on credits": 50 parallel requests, balance for 10."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import pytest

from credits import Balance
from credits import InsufficientCredits
from credits import Ledger
from tests.credits.conftest import OpenLedger
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import charges
from tests.credits.helpers import usage

REQUESTS = 50
PRICE = 10
COVERED = 10
REPO_ROOT = Path(__file__).resolve().parents[2]

# A worker process: its share of the 50 requests, all at once; prints the ids it won.
_WORKER = """
import asyncio, json, sys
from credits import InsufficientCredits, Ledger, UsageRecord

async def one(ledger, request_id):
    try:
        await ledger.reserve("alice", 10, request_id)
    except InsufficientCredits:
        return None
    await asyncio.sleep(0.005)
    record = UsageRecord(request_id, "alice", "openai", "m", 0, 10, 5, "completed")
    assert await ledger.settle(request_id, 10, record) == 10
    return request_id

async def main(url, ids):
    async with await Ledger.open(url) as ledger:
        won = await asyncio.gather(*(one(ledger, request_id) for request_id in ids))
    print(json.dumps([request_id for request_id in won if request_id]))

asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


async def _one_request(ledgers: list[Ledger], index: int, seed: random.Random) -> bool:
    """Reserve, "stream" a moment, settle (twice, from two workers, concurrently)."""
    request_id = f"req-{index}"
    ledger = ledgers[index % len(ledgers)]
    try:
        await ledger.reserve("alice", PRICE, request_id)
    except InsufficientCredits:
        return False
    await asyncio.sleep(seed.random() / 100)
    record = usage(request_id, completion_tokens=PRICE)
    other = ledgers[(index + 1) % len(ledgers)]
    results = await asyncio.gather(
        ledger.settle(request_id, PRICE, record), other.settle(request_id, PRICE, record)
    )
    assert list(results) == [PRICE, PRICE]
    return True


async def _watch_balance(ledger: Ledger, stop: asyncio.Event, seen: list[Balance]) -> None:
    while not stop.is_set():
        seen.append(await ledger.balance("alice"))
        await asyncio.sleep(0)


@pytest.mark.parametrize("workers", [1, 2])
async def test_fifty_requests_balance_for_ten(
    open_ledger: OpenLedger, ledger_url: str, workers: int
) -> None:
    ledgers = [await open_ledger() for _ in range(workers)]
    await ledgers[0].grant("alice", PRICE * COVERED)
    seed = random.Random(workers)
    stop = asyncio.Event()
    seen: list[Balance] = []
    watcher = asyncio.create_task(_watch_balance(ledgers[-1], stop, seen))

    try:
        outcomes = await asyncio.gather(
            *(_one_request(ledgers, index, seed) for index in range(REQUESTS))
        )
    finally:
        stop.set()
        await watcher

    assert sum(outcomes) == COVERED
    assert await ledgers[0].balance("alice") == Balance(0, 0)
    assert seen and all(0 <= b.reserved <= b.balance for b in seen)
    charged = await charges(ledger_url)
    assert sorted(charged) == sorted(f"req-{i}" for i, ok in enumerate(outcomes) if ok)
    assert all(amounts == [PRICE] for amounts in charged.values())
    assert len(await ledgers[0].recent_usage("alice", limit=100)) == COVERED
    await assert_consistent(ledger_url)


async def test_other_users_are_not_blocked(open_ledger: OpenLedger, ledger_url: str) -> None:
    ledgers = [await open_ledger() for _ in range(2)]
    users = [f"user-{n}" for n in range(10)]
    for user in users:
        await ledgers[0].grant(user, 30)

    async def spend(n: int) -> None:
        user = users[n % len(users)]
        ledger = ledgers[n % 2]
        await ledger.reserve(user, 10, f"r{n}")
        await ledger.settle(f"r{n}", 7, usage(f"r{n}", user, completion_tokens=7))

    await asyncio.gather(*(spend(n) for n in range(30)))
    for user in users:
        assert await ledgers[0].balance(user) == Balance(30 - 3 * 7, 0)
    await assert_consistent(ledger_url)


@pytest.mark.slow  # real worker processes
async def test_fifty_requests_from_worker_processes(ledger: Ledger, ledger_url: str) -> None:
    """Four real processes share the database, as hypercorn workers (or hosts) do."""
    await ledger.grant("alice", PRICE * COVERED)
    ids = [f"proc-{index}" for index in range(REQUESTS)]
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            ledger_url,
            *ids[shard::4],
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for shard in range(4)
    ]
    outputs = await asyncio.wait_for(
        asyncio.gather(*(worker.communicate() for worker in workers)), timeout=120
    )
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0]
    won = [request_id for out, _ in outputs for request_id in json.loads(out)]
    assert len(won) == COVERED
    assert await charges(ledger_url) == {request_id: [PRICE] for request_id in won}
    assert await ledger.balance("alice") == Balance(0, 0)
    await assert_consistent(ledger_url)


@pytest.mark.parametrize("workers", [1, 2])
async def test_capped_holds_never_overdraw(
    open_ledger: OpenLedger, ledger_url: str, workers: int
) -> None:
    """Holds that take what is left (a story on a small balance) stay within the balance."""
    ledgers = [await open_ledger() for _ in range(workers)]
    await ledgers[0].grant("alice", 100)
    held: dict[str, int] = {}
    stop = asyncio.Event()
    seen: list[Balance] = []
    watcher = asyncio.create_task(_watch_balance(ledgers[-1], stop, seen))

    async def story(index: int) -> None:
        request_id = f"story-{index}"
        ledger = ledgers[index % len(ledgers)]
        try:
            reservation = await ledger.reserve("alice", 30, request_id, minimum=8)
        except InsufficientCredits as refused:
            assert refused.available < 8 and refused.needed == 8
            return
        held[request_id] = reservation.amount
        await asyncio.sleep(0)
        # The request spends its whole hold: the upstream was sent what it pays for.
        used = reservation.amount
        assert (
            await ledger.settle(request_id, used, usage(request_id, completion_tokens=used)) == used
        )

    try:
        await asyncio.gather(*(story(index) for index in range(REQUESTS)))
    finally:
        stop.set()
        await watcher

    assert sum(held.values()) == 100, "the whole balance is used, never more"
    assert all(8 <= amount <= 30 for amount in held.values())
    assert await ledgers[0].balance("alice") == Balance(0, 0)
    assert seen and all(0 <= b.reserved <= b.balance for b in seen)
    charged = await charges(ledger_url)
    assert {request_id: sum(amounts) for request_id, amounts in charged.items()} == held
    await assert_consistent(ledger_url)
