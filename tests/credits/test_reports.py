"""The console's ledger reports on both databases: top users, pending holds, grants."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from credits import Ledger
from tests.credits.helpers import usage


async def _spend(ledger: Ledger, user: str, request_id: str, tokens: int, credits: int) -> None:
    await ledger.reserve(user, credits, request_id)
    record = usage(
        request_id, user, prompt_tokens=tokens // 2, completion_tokens=tokens - tokens // 2
    )
    await ledger.settle(request_id, credits, record)


async def test_top_users_are_ranked_by_tokens_or_credits_within_the_window(ledger: Ledger) -> None:
    for user in ("alice", "bob", "carol"):
        await ledger.grant(user, 10_000, "plan")
    await _spend(ledger, "alice", "a1", 100, 10)
    await _spend(ledger, "alice", "a2", 50, 5)
    await _spend(ledger, "bob", "b1", 120, 900)
    await _spend(ledger, "carol", "c1", 10, 1)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    by_tokens = await ledger.top_users(hour_ago, limit=2, by="tokens")
    assert [(u.user_id, u.requests, u.tokens, u.credits) for u in by_tokens] == [
        ("alice", 2, 150, 15),
        ("bob", 1, 120, 900),
    ]
    assert by_tokens[0].prompt_tokens == 75 and by_tokens[0].completion_tokens == 75
    by_credits = await ledger.top_users(hour_ago, by="credits")
    assert [u.user_id for u in by_credits] == ["bob", "alice", "carol"]
    assert await ledger.top_users(datetime.now(UTC) + timedelta(minutes=1)) == []


async def test_pending_holds_and_grants_of_one_user(ledger: Ledger) -> None:
    await ledger.grant("alice", 500, "monthly plan")
    await ledger.grant("alice", -800, "refund reversed")  # clamped at zero
    await ledger.grant("alice", 300, None)
    await ledger.reserve("alice", 120, "held-1")
    await ledger.reserve("alice", 30, "held-2")
    await _spend(ledger, "alice", "done-1", 10, 10)
    holds = await ledger.pending_holds("alice")
    assert {(h.request_id, h.amount) for h in holds} == {("held-1", 120), ("held-2", 30)}
    assert all(h.expires_at > h.created_at for h in holds)
    grants = await ledger.grants("alice")
    assert [(g.amount, g.balance_after, g.note) for g in grants] == [
        (300, 300, None),
        (-500, 0, "refund reversed"),
        (500, 500, "monthly plan"),
    ]
    assert await ledger.pending_holds("nobody") == [] and await ledger.grants("nobody") == []
