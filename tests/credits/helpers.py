"""Raw looks at the ledger database, to check invariants the public API cannot show."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable
from collections.abc import Callable

from credits import UsageRecord
from credits import UsageStatus
from credits.backends import Row
from credits.backends import open_database


async def query(url: str, sql: str, *args: object) -> list[Row]:
    db = await open_database(url)
    try:
        async with db.read() as tx:
            return await tx.fetch(sql, *args)
    finally:
        await db.close()


async def charges(url: str) -> dict[str, list[int]]:
    """Charge amounts (positive) per request id, every row listed."""
    found: dict[str, list[int]] = defaultdict(list)
    for request_id, amount in await query(
        url, "SELECT request_id, amount FROM transactions WHERE kind = 'charge'"
    ):
        found[request_id].append(-int(amount))
    return dict(found)


async def assert_consistent(url: str) -> None:
    """Nothing lost: balances match the transaction log and holds match pending reservations."""
    for user_id, balance, reserved in await query(
        url, "SELECT user_id, balance, reserved FROM balances"
    ):
        assert balance >= 0
        (logged,) = (
            await query(
                url, "SELECT COALESCE(SUM(amount), 0) FROM transactions WHERE user_id = $1", user_id
            )
        )[0]
        assert balance == logged, f"{user_id}: balance {balance} != transaction sum {logged}"
        (held,) = (
            await query(
                url,
                "SELECT COALESCE(SUM(amount), 0) FROM reservations"
                " WHERE user_id = $1 AND status = 'pending'",
                user_id,
            )
        )[0]
        assert reserved == held, f"{user_id}: reserved {reserved} != pending holds {held}"


def usage(
    request_id: str,
    user_id: str = "alice",
    *,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    status: str = UsageStatus.COMPLETED,
    prompt_text: str | None = None,
) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        user_id=user_id,
        provider="openai",
        model="gpt-test",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        duration_ms=42,
        status=status,
        prompt_text=prompt_text,
    )


async def eventually(
    condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0
) -> None:
    """Poll ``condition`` until it holds (background settlements, a recovering ledger)."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:g} s"
        await asyncio.sleep(0.02)
