"""A batch of settlements (``Ledger.settle_many``, what the settlement writer applies) on
both backends: one statement reads every reservation of the batch, and the outcome of each
record is what settling them one by one would give - repeats, refusals, BYOK and released
holds included.
"""

from __future__ import annotations

from dataclasses import replace

from credits import Ledger
from credits import ReservationNotFound
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import charges
from tests.credits.helpers import query
from tests.credits.helpers import usage


async def test_a_mixed_batch_settles_each_record_as_alone(ledger: Ledger, ledger_url: str) -> None:
    await ledger.grant("alice", 100)
    await ledger.grant("bob", 50)
    await ledger.reserve("alice", 40, "a1")
    await ledger.reserve("alice", 30, "a2")
    await ledger.reserve("bob", 50, "b1")
    await ledger.reserve("bob", 0, "b2")
    assert await ledger.release("b2")  # given back: still charged once if payable
    batch = [
        replace(usage("b1", "bob"), credits=20),
        replace(usage("a1"), credits=35),
        replace(usage("ghost"), credits=5),  # never reserved
        replace(usage("a2", "bob"), credits=5),  # someone else's reservation
        replace(usage("a1"), credits=99),  # a repeat in the same batch: the first charge
        replace(usage("byok-1", "carol"), credits=7, byok=True),  # logged, free
        replace(usage("a2"), credits=-1),  # refused alone
        replace(usage("b2", "bob"), credits=40),  # released hold: what bob can still pay
    ]
    outcomes = await ledger.settle_many(batch)
    assert outcomes[0] == 20 and outcomes[1] == 35
    assert isinstance(outcomes[2], ReservationNotFound)
    assert isinstance(outcomes[3], ValueError) and isinstance(outcomes[6], ValueError)
    assert outcomes[4] == 35  # not charged twice
    assert outcomes[5] == 0
    assert outcomes[7] == 30  # 50 - 20 left once b1's hold of 50 is released
    assert await charges(ledger_url) == {"b1": [20], "a1": [35], "b2": [30]}
    alice, bob = await ledger.balance("alice"), await ledger.balance("bob")
    assert (alice.balance, alice.reserved) == (65, 30)  # a2 still pending
    assert (bob.balance, bob.reserved) == (0, 0)
    logged = await query(ledger_url, "SELECT request_id, credits, byok FROM usage_log")
    assert sorted((str(r), int(c), int(b)) for r, c, b in logged) == [
        ("a1", 35, 0),
        ("b1", 20, 0),
        ("b2", 30, 0),
        ("byok-1", 0, 1),
    ]
    # Told again (a journal applied twice), nothing changes.
    again = await ledger.settle_many(batch)
    assert again[0] == 20 and again[1] == 35 and again[7] == 30
    assert await charges(ledger_url) == {"b1": [20], "a1": [35], "b2": [30]}
    await assert_consistent(ledger_url)


async def test_an_empty_batch_and_a_batch_of_byok_only(ledger: Ledger, ledger_url: str) -> None:
    assert await ledger.settle_many([]) == []
    assert await ledger.settle_many([replace(usage("k1"), credits=3, byok=True)]) == [0]
    assert await query(ledger_url, "SELECT request_id FROM usage_log") == [("k1",)]
    await assert_consistent(ledger_url)
