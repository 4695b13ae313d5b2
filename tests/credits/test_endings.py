"""Every way a request can end is settled: charged for what was generated, the rest released.

Each test plays the service's side: reserve the estimate, "stream", settle in ``finally``.
"""

from __future__ import annotations

import asyncio

import pytest

from credits import Balance
from credits import Ledger
from credits import UsageStatus
from credits import credits_for
from credits import estimate_reservation
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import charges
from tests.credits.helpers import usage

PROMPT = 20
MAX_TOKENS = 100
MULTIPLIER = 1.5
ESTIMATE = estimate_reservation(PROMPT, MAX_TOKENS, MULTIPLIER)  # 180


class UpstreamDied(Exception):
    pass


async def _serve(
    ledger: Ledger,
    request_id: str,
    *,
    tokens: int,
    fail_after: int | None = None,
    started: asyncio.Event | None = None,
) -> int:
    """A miniature request handler: reserve, stream ``tokens``, settle on every ending."""
    await ledger.reserve("alice", ESTIMATE, request_id)
    generated = 0
    status = UsageStatus.COMPLETED
    try:
        for _ in range(tokens):
            if fail_after is not None and generated == fail_after:
                raise UpstreamDied
            await asyncio.sleep(0.001)
            generated += 1
            if started is not None and generated == 5:
                started.set()
    except UpstreamDied:
        status = UsageStatus.UPSTREAM_ERROR
    except asyncio.CancelledError:
        status = UsageStatus.CANCELLED
        raise
    finally:
        record = usage(request_id, prompt_tokens=PROMPT, completion_tokens=generated, status=status)
        await ledger.settle(request_id, credits_for(PROMPT, generated, MULTIPLIER), record)
    return generated


async def _assert_settled(
    ledger: Ledger, url: str, request_id: str, charged: int, status: str
) -> None:
    assert await ledger.balance("alice") == Balance(1000 - charged, 0)
    assert (await charges(url))[request_id] == [charged]
    [record] = await ledger.recent_usage("alice")
    assert (record.credits, record.status) == (charged, status)
    await assert_consistent(url)


@pytest.fixture(autouse=True)
async def _funded(ledger: Ledger) -> None:
    await ledger.grant("alice", 1000)


async def test_success_charges_the_full_usage(ledger: Ledger, ledger_url: str) -> None:
    assert await _serve(ledger, "ok", tokens=60) == 60
    charged = credits_for(PROMPT, 60, MULTIPLIER)
    await _assert_settled(ledger, ledger_url, "ok", charged, "completed")


async def test_upstream_error_charges_partial_output(ledger: Ledger, ledger_url: str) -> None:
    assert await _serve(ledger, "err", tokens=60, fail_after=7) == 7
    charged = credits_for(PROMPT, 7, MULTIPLIER)
    await _assert_settled(ledger, ledger_url, "err", charged, "upstream_error")


async def test_cancelled_request_charges_what_was_generated(
    ledger: Ledger, ledger_url: str
) -> None:
    started = asyncio.Event()
    task = asyncio.create_task(_serve(ledger, "cancel", tokens=10_000, started=started))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [record] = await ledger.recent_usage("alice")
    assert record.status == "cancelled" and record.completion_tokens >= 5
    charged = credits_for(PROMPT, record.completion_tokens, MULTIPLIER)
    await _assert_settled(ledger, ledger_url, "cancel", charged, "cancelled")


async def test_client_disconnect_charges_partial_output(ledger: Ledger, ledger_url: str) -> None:
    await ledger.reserve("alice", ESTIMATE, "gone")
    record = usage("gone", prompt_tokens=PROMPT, completion_tokens=12, status="client_disconnect")
    await ledger.settle("gone", credits_for(PROMPT, 12, MULTIPLIER), record)
    charged = credits_for(PROMPT, 12, MULTIPLIER)
    await _assert_settled(ledger, ledger_url, "gone", charged, "client_disconnect")


async def test_zero_tokens_charge_nothing_and_release_all(ledger: Ledger, ledger_url: str) -> None:
    await ledger.reserve("alice", ESTIMATE, "refused")
    record = usage("refused", status=UsageStatus.UPSTREAM_ERROR)
    assert await ledger.settle("refused", 0, record) == 0
    await _assert_settled(ledger, ledger_url, "refused", 0, "upstream_error")


async def test_cancelling_the_settle_itself_still_settles(ledger: Ledger, ledger_url: str) -> None:
    await ledger.reserve("alice", ESTIMATE, "twice-cancelled")
    record = usage("twice-cancelled", prompt_tokens=PROMPT, completion_tokens=3)
    settling = asyncio.create_task(ledger.settle("twice-cancelled", 35, record))
    await asyncio.sleep(0)  # let the settle start, then cancel it (a second cancellation)
    settling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settling
    # The write finished regardless; a retry finds it done and charges nothing more.
    assert await ledger.settle("twice-cancelled", 35, record) == 35
    await _assert_settled(ledger, ledger_url, "twice-cancelled", 35, "completed")
