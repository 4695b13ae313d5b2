"""The ledger keeps user ids whole up to the longest the service accepts (issue 14, 9).

Authentication refuses ids over ``MAX_USER_ID_CHARS`` instead of cutting them; this checks
the other half of that promise on SQLite and PostgreSQL: ids up to that length are stored
and matched exactly, so two that differ only in their last character stay two accounts.
"""

from __future__ import annotations

from credits import Ledger
from quart_app.auth import MAX_USER_ID_CHARS
from tests.credits.conftest import OpenLedger
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import usage


async def test_ids_of_the_longest_accepted_length_are_kept_whole(
    ledger: Ledger, open_ledger: OpenLedger, ledger_url: str
) -> None:
    stem = "é" * (MAX_USER_ID_CHARS - 1)  # two bytes each in UTF-8
    first, second = stem + "1", stem + "2"
    await ledger.grant(first, 100)
    await ledger.grant(second, 100)
    await ledger.reserve(first, 30, "r1")
    await ledger.settle("r1", 25, usage("r1", first, completion_tokens=25))
    other_worker = await open_ledger()
    assert (await other_worker.balance(first)).balance == 75
    assert (await other_worker.balance(second)).balance == 100
    [row] = await other_worker.recent_usage(first)
    assert row.user_id == first
    assert await other_worker.recent_usage(second) == []
    await assert_consistent(ledger_url)
