"""The ledger behind the gateway's ``Billing`` seam (``gateway.billing``).

Reserve is awaited before the upstream is called (402 when the balance cannot cover the
hold); settle runs in the background so that a client disconnect or a cancelled request
can never skip it, and the ledger makes a second settle of the same request a no-op. What
a request costs was decided once, upstream of here (``credits.pricing.price``): this
module charges ``record.credits`` and never re-derives it.
"""

from __future__ import annotations

import asyncio
import logging

from credits.errors import InsufficientCredits
from credits.ledger import Ledger
from credits.models import UsageRecord

__all__ = ["LedgerBilling"]

log = logging.getLogger(__name__)


class LedgerBilling:
    """Credits for member requests; a free usage-log row for BYOK requests."""

    def __init__(self, ledger: Ledger, *, welcome_credits: int = 0) -> None:
        self.ledger = ledger
        self._welcome = welcome_credits
        self._tasks: set[asyncio.Task[None]] = set()

    async def reserve(
        self, user_id: str, request_id: str, amount: int, minimum: int | None = None
    ) -> int:
        """Hold up to ``amount`` (at least ``minimum``); returns what was held.

        A user seen for the first time gets the welcome credits first.
        """
        try:
            held = await self.ledger.reserve(user_id, amount, request_id, minimum=minimum)
        except InsufficientCredits:
            if not self._welcome:
                raise
            # Whichever concurrent first request wins the welcome grant, all of them retry.
            await self.ledger.open_account(user_id, self._welcome)
            held = await self.ledger.reserve(user_id, amount, request_id, minimum=minimum)
        return held.amount

    def settle(self, record: UsageRecord) -> None:
        """Charge ``record.credits`` (every ending), in a task the request cannot cancel."""
        task = asyncio.get_running_loop().create_task(self._settle(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, record: UsageRecord) -> None:
        try:
            if record.byok:
                await self.ledger.record_free_usage(record)
            else:
                await self.ledger.settle(record.request_id, record.credits, record)
        except Exception:
            # The hold expires and is reconciled; log without user data or secrets.
            log.exception("settling request %s failed", record.request_id)

    async def drain(self) -> None:
        """Wait for settlements in flight (graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
