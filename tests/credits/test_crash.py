"""Workers killed mid-request: a hold expires and is reconciled; a settlement survives.

A worker killed between reserve and settle leaves a hold that expires (nobody renews it)
and is reconciled. A worker killed after settling - the answer's last frame sent - loses
nothing: the settlement was durable in its journal first, and another worker applies it.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

from credits import Balance
from credits import Ledger
from credits.billing import LedgerBilling
from tests.credits.conftest import OpenLedger
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import charges
from tests.credits.helpers import eventually
from tests.credits.helpers import usage

REPO_ROOT = Path(__file__).resolve().parents[2]

# The worker: open the ledger, reserve, then die by SIGKILL (no cleanup of any kind).
_WORKER = """
import asyncio, os, signal, sys
from credits import Ledger

async def main() -> None:
    ledger = await Ledger.open(sys.argv[1], reservation_ttl_s=60)
    await ledger.reserve("carol", 40, "doomed")
    print("reserved", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def _reconcile_and_settle_late(ledger: Ledger, url: str) -> None:
    assert await ledger.balance("carol") == Balance(100, 40)
    assert await ledger.reconcile_expired() == 0  # not expired yet
    later = datetime.now(UTC) + timedelta(seconds=61)
    assert await ledger.reconcile_expired(later) == 1
    assert await ledger.reconcile_expired(later) == 0
    assert await ledger.balance("carol") == Balance(100, 0)
    await assert_consistent(url)
    # The request's usage shows up after all (a slow worker, not a dead one): charged once.
    record = usage("doomed", "carol", completion_tokens=25)
    assert await ledger.settle("doomed", 25, record) == 25
    assert await ledger.settle("doomed", 25, record) == 25
    assert await ledger.balance("carol") == Balance(75, 0)
    assert (await charges(url))["doomed"] == [25]
    await assert_consistent(url)


async def test_killed_worker_hold_is_reconciled(open_ledger: OpenLedger, ledger_url: str) -> None:
    ledger = await open_ledger()
    await ledger.grant("carol", 100)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WORKER,
        ledger_url,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert output == b"reserved\n"
    assert worker.returncode == -9
    await _reconcile_and_settle_late(ledger, ledger_url)


async def test_dropped_ledger_hold_is_reconciled_after_reopen(
    open_ledger: OpenLedger, ledger_url: str
) -> None:
    first = await open_ledger(reservation_ttl_s=60)
    await first.grant("carol", 100)
    await first.reserve("carol", 40, "doomed")
    await first.close()  # the process goes away without settling
    reopened = await open_ledger()
    await _reconcile_and_settle_late(reopened, ledger_url)


async def test_reconcile_leaves_live_and_settled_holds_alone(
    ledger: Ledger, ledger_url: str
) -> None:
    await ledger.grant("carol", 100)
    await ledger.reserve("carol", 10, "short", ttl_s=1)
    await ledger.reserve("carol", 20, "settled", ttl_s=1)
    await ledger.reserve("carol", 30, "long", ttl_s=3600)
    await ledger.settle("settled", 5, usage("settled", "carol", completion_tokens=5))
    assert await ledger.reconcile_expired(datetime.now(UTC) + timedelta(seconds=2)) == 1
    assert await ledger.balance("carol") == Balance(95, 30)
    await assert_consistent(ledger_url)


# A worker that settles (durable in its journal, as before an answer's last frame) and is
# killed before its writer applied the settlement to the ledger (that waits 100 ms).
_SETTLING_WORKER = """
import asyncio, os, signal, sys
from pathlib import Path
from credits import Ledger, UsageRecord
from credits.billing import LedgerBilling

async def main() -> None:
    ledger = await Ledger.open(sys.argv[1], reservation_ttl_s=60)
    billing = LedgerBilling(ledger, journal_dir=Path(sys.argv[2]))
    await billing.start()
    await billing.reserve("dave", "answered", 40)
    record = UsageRecord("answered", "dave", "openai", "m", 5, 20, 7, "completed", credits=25)
    await billing.settle(record)
    print("durable", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_settlement_of_a_killed_worker_is_applied_from_its_journal(
    ledger: Ledger, ledger_url: str, tmp_path: Path
) -> None:
    """Settled usage is durable before the answer's last frame: a SIGKILL cannot lose it."""
    journal = tmp_path / "journal"
    await ledger.grant("dave", 100)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SETTLING_WORKER,
        ledger_url,
        str(journal),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert output == b"durable\n" and worker.returncode == -9
    assert await ledger.balance("dave") == Balance(100, 40), "not applied before the kill"
    assert len(list(journal.glob("*.jsonl"))) == 1
    # The next worker on this host (a replacement, or any other) adopts the journal.
    survivor = LedgerBilling(ledger, journal_dir=journal)
    await survivor.start()
    try:

        async def applied() -> bool:  # charged once, and the dead worker's lease returned
            return await ledger.balance("dave") == Balance(75, 0)

        await eventually(applied, "the journal of the killed worker applied")
    finally:
        await survivor.close()
    assert (await charges(ledger_url))["answered"] == [25]
    assert list(journal.glob("*.jsonl")) == [], "the adopted journal is removed once applied"
    await assert_consistent(ledger_url)
