from __future__ import annotations

import asyncio
from datetime import UTC
from datetime import datetime

import pytest

from credits import Balance
from credits import DuplicateRequest
from credits import InsufficientCredits
from credits import Ledger
from credits import ReservationNotFound
from credits import UnsupportedDatabaseURL
from tests.credits.conftest import OpenLedger
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import charges
from tests.credits.helpers import query
from tests.credits.helpers import usage


async def test_grant_and_balance(ledger: Ledger, ledger_url: str) -> None:
    assert await ledger.balance("alice") == Balance(0, 0)
    assert await ledger.grant("alice", 100, "welcome") == 100
    assert await ledger.grant("alice", 50) == 150
    balance = await ledger.balance("alice")
    assert (balance.balance, balance.reserved, balance.available) == (150, 0, 150)
    await assert_consistent(ledger_url)


async def test_negative_grant_stops_at_zero(ledger: Ledger, ledger_url: str) -> None:
    await ledger.grant("alice", 30)
    assert await ledger.grant("alice", -100, "correction") == 0
    rows = await query(ledger_url, "SELECT amount, note FROM transactions ORDER BY id")
    assert [tuple(row) for row in rows] == [(30, None), (-30, "correction")]
    with pytest.raises(ValueError):
        await ledger.grant("alice", 0)
    await assert_consistent(ledger_url)


async def test_reserve_holds_credits(ledger: Ledger) -> None:
    await ledger.grant("alice", 100)
    reservation = await ledger.reserve("alice", 60, "r1")
    assert (reservation.user_id, reservation.amount) == ("alice", 60)
    assert reservation.expires_at > datetime.now(UTC)
    assert (await ledger.balance("alice")).available == 40


async def test_reserve_refuses_what_cannot_be_covered(ledger: Ledger, ledger_url: str) -> None:
    await ledger.grant("alice", 100)
    await ledger.reserve("alice", 70, "r1")
    with pytest.raises(InsufficientCredits) as refused:
        await ledger.reserve("alice", 31, "r2")
    assert (refused.value.available, refused.value.needed) == (30, 31)
    with pytest.raises(InsufficientCredits) as unknown:
        await ledger.reserve("nobody", 1, "r3")
    assert (unknown.value.available, unknown.value.needed) == (0, 1)
    assert await ledger.balance("alice") == Balance(100, 70)
    # Refused reservations leave nothing behind, so their ids remain usable.
    assert await query(ledger_url, "SELECT request_id FROM reservations") == [("r1",)]
    await assert_consistent(ledger_url)


async def test_zero_reservation_needs_no_balance(ledger: Ledger) -> None:
    await ledger.reserve("newcomer", 0, "free-1")
    assert await ledger.settle("free-1", 0, usage("free-1", "newcomer")) == 0


async def test_duplicate_request_id_is_refused(ledger: Ledger) -> None:
    await ledger.grant("alice", 100)
    await ledger.reserve("alice", 10, "r1")
    with pytest.raises(DuplicateRequest):
        await ledger.reserve("alice", 10, "r1")
    assert await ledger.balance("alice") == Balance(100, 10)


async def test_settle_charges_once_and_is_idempotent(ledger: Ledger, ledger_url: str) -> None:
    await ledger.grant("alice", 100)
    await ledger.reserve("alice", 50, "r1")
    record = usage("r1", prompt_tokens=10, completion_tokens=20)
    assert await ledger.settle("r1", 30, record) == 30
    assert await ledger.settle("r1", 30, record) == 30
    assert await ledger.settle("r1", 45, record) == 30  # the first settlement stands
    assert await ledger.balance("alice") == Balance(70, 0)
    assert await charges(ledger_url) == {"r1": [30]}
    assert len(await ledger.recent_usage("alice")) == 1
    await assert_consistent(ledger_url)


async def test_concurrent_double_settle_charges_once(
    ledger: Ledger, open_ledger: OpenLedger, ledger_url: str
) -> None:
    other = await open_ledger()
    await ledger.grant("alice", 100)
    await ledger.reserve("alice", 50, "r1")
    record = usage("r1", completion_tokens=40)
    results = await asyncio.gather(
        *(target.settle("r1", 40, record) for target in (ledger, other) * 5)
    )
    assert results == [40] * 10
    assert await charges(ledger_url) == {"r1": [40]}
    assert await ledger.balance("alice") == Balance(60, 0)


async def test_settle_never_overdraws(ledger: Ledger, ledger_url: str) -> None:
    await ledger.grant("alice", 100)
    await ledger.reserve("alice", 50, "r1")
    await ledger.reserve("alice", 30, "r2")
    # r1 used more than it reserved: it may take its hold plus what nobody else holds.
    assert await ledger.settle("r1", 500, usage("r1", completion_tokens=500)) == 70
    assert await ledger.balance("alice") == Balance(30, 30)
    assert await ledger.settle("r2", 30, usage("r2", completion_tokens=30)) == 30
    assert await ledger.balance("alice") == Balance(0, 0)
    await assert_consistent(ledger_url)


async def test_settle_validates_its_input(ledger: Ledger) -> None:
    await ledger.grant("alice", 100)
    await ledger.reserve("alice", 10, "r1")
    with pytest.raises(ReservationNotFound):
        await ledger.settle("missing", 1, usage("missing"))
    with pytest.raises(ValueError):
        await ledger.settle("r1", 1, usage("other-request"))
    with pytest.raises(ValueError):
        await ledger.settle("r1", 1, usage("r1", user_id="mallory"))
    with pytest.raises(ValueError):
        await ledger.settle("r1", -1, usage("r1"))
    assert await ledger.balance("alice") == Balance(100, 10)


async def test_release_returns_the_hold(ledger: Ledger, ledger_url: str) -> None:
    await ledger.grant("alice", 100)
    await ledger.reserve("alice", 40, "r1")
    assert await ledger.release("r1") is True
    assert await ledger.release("r1") is False
    assert await ledger.release("missing") is False
    assert await ledger.balance("alice") == Balance(100, 0)
    # Usage reported after all is still billed, once.
    assert await ledger.settle("r1", 5, usage("r1", completion_tokens=5)) == 5
    assert await ledger.settle("r1", 5, usage("r1", completion_tokens=5)) == 5
    assert await ledger.balance("alice") == Balance(95, 0)
    await assert_consistent(ledger_url)


async def test_byok_usage_is_free_and_logged(ledger: Ledger, ledger_url: str) -> None:
    await ledger.record_free_usage(usage("b1", prompt_tokens=100, completion_tokens=200))
    [record] = await ledger.recent_usage("alice")
    assert (record.byok, record.credits, record.completion_tokens) == (True, 0, 200)
    assert await ledger.balance("alice") == Balance(0, 0)
    assert await charges(ledger_url) == {}


async def test_prompt_text_is_kept_only_when_enabled(open_ledger: OpenLedger) -> None:
    private = await open_ledger()
    await private.record_free_usage(usage("p1", prompt_text="my secret story"))
    assert (await private.recent_usage("alice"))[0].prompt_text is None
    keeping = await open_ledger(store_prompt_text=True)
    await keeping.record_free_usage(usage("p2", prompt_text="my secret story"))
    assert (await keeping.recent_usage("alice", limit=1))[0].prompt_text == "my secret story"


async def test_recent_usage_newest_first_with_limit(ledger: Ledger) -> None:
    await ledger.grant("alice", 1000)
    for index in range(5):
        request_id = f"r{index}"
        await ledger.reserve("alice", 10, request_id)
        await ledger.settle(request_id, index, usage(request_id, completion_tokens=index))
    await ledger.record_free_usage(usage("other", "bob"))
    records = await ledger.recent_usage("alice", limit=3)
    assert [record.request_id for record in records] == ["r4", "r3", "r2"]
    assert [record.credits for record in records] == [4, 3, 2]
    assert all(record.created_at is not None for record in records)


async def test_migrations_are_idempotent(open_ledger: OpenLedger, ledger_url: str) -> None:
    first = await open_ledger()
    await first.grant("alice", 10)
    await first.close()
    # Several workers starting at once on an already migrated database, then on the same one.
    await asyncio.gather(*(open_ledger() for _ in range(4)))
    reopened = await open_ledger()
    assert await reopened.balance("alice") == Balance(10, 0)
    assert await query(ledger_url, "SELECT version FROM schema_version ORDER BY version") == [
        (1,),
        (2,),
        (3,),
    ]


async def test_concurrent_first_start_migrates_once(
    open_ledger: OpenLedger, ledger_url: str
) -> None:
    await asyncio.gather(*(open_ledger() for _ in range(5)))
    assert await query(ledger_url, "SELECT version FROM schema_version ORDER BY version") == [
        (1,),
        (2,),
        (3,),
    ]


async def test_unsupported_url_is_refused() -> None:
    with pytest.raises(UnsupportedDatabaseURL):
        await Ledger.open("mysql://user:secret@host/db")
    with pytest.raises(UnsupportedDatabaseURL):
        await Ledger.open("sqlite://relative.db")


async def test_in_memory_sqlite() -> None:
    async with await Ledger.open("sqlite:///:memory:") as ledger:
        await ledger.grant("alice", 5)
        await ledger.reserve("alice", 5, "r1")
        assert await ledger.settle("r1", 3, usage("r1", completion_tokens=3)) == 3
        assert await ledger.balance("alice") == Balance(2, 0)


async def test_welcome_credits_are_granted_exactly_once(open_ledger: OpenLedger) -> None:
    workers = [await open_ledger() for _ in range(3)]
    granted = await asyncio.gather(*(w.open_account("newbie", 500) for w in workers for _ in "ab"))
    assert granted.count(True) == 1
    assert await workers[0].balance("newbie") == Balance(500, 0)
    assert await workers[1].open_account("newbie", 500) is False
