"""Micro-benchmark of the credit ledger's request path: reserve, then settle, per request.

Prints the CPU time per request (this process only, so other load on the machine barely
matters) for one request at a time and for 32 concurrent ones, on a fresh SQLite file
(or the PostgreSQL URL given). ``--billing`` goes through ``LedgerBilling`` (the service's
path: hold renewal, group-committed settlements through the journal) instead of calling
the ledger directly.

    python -m bench.ledger_micro [--requests 4000] [--url postgresql://...] [--billing]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

from credits import Ledger
from credits import UsageRecord
from credits.models import new_request_id

Request = Callable[[str], Awaitable[None]]


def _record(request_id: str) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        user_id="bench",
        provider="p",
        model="m",
        prompt_tokens=20,
        completion_tokens=64,
        duration_ms=1,
        status="completed",
        credits=84,
    )


async def _measure(label: str, one: Request, count: int, concurrency: int) -> None:
    ids = [new_request_id() for _ in range(count)]
    started_cpu, started = time.process_time(), time.perf_counter()
    for i in range(0, count, concurrency):
        await asyncio.gather(*(one(request_id) for request_id in ids[i : i + concurrency]))
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    print(
        f"{label:<34} c={concurrency:<3} {cpu / count * 1e6:8.1f} us CPU"
        f" {wall / count * 1e6:8.1f} us wall per request"
    )


async def main(argv: Sequence[str] | None = None) -> None:
    """Run the micro-benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_micro")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--billing", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'credits.db'}"
        ledger = await Ledger.open(url)
        await ledger.grant("bench", 10**12)
        one: Request

        if args.billing:
            from credits.billing import LedgerBilling

            billing = LedgerBilling(ledger, journal_dir=Path(tmp) / "journal")
            await billing.start()

            async def one(request_id: str) -> None:
                await billing.reserve("bench", request_id, 2000, 100)
                await billing.settle(_record(request_id))

        else:

            async def one(request_id: str) -> None:
                await ledger.reserve("bench", 2000, request_id)
                await ledger.settle(request_id, 84, _record(request_id))

        await _measure("warm-up", one, 200, 1)
        for concurrency in (1, 32):
            await _measure("billing" if args.billing else "ledger", one, args.requests, concurrency)
        if args.billing:
            await billing.close()
        await ledger.close()


if __name__ == "__main__":
    asyncio.run(main())
