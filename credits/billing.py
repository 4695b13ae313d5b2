"""The ledger behind the gateway's ``Billing`` seam (providers/billing.py).

Reserve is awaited before the upstream is called (402 when the balance cannot cover the
estimate); settle runs in the background so that a client disconnect or a cancelled request
can never skip it, and the ledger makes a second settle of the same request a no-op.
"""

from __future__ import annotations

import asyncio
import logging

from credits.errors import InsufficientCredits
from credits.ledger import Ledger
from credits.models import UsageRecord
from credits.models import UsageStatus
from providers.billing import Settlement
from providers.pricing import credits_for

__all__ = ["LedgerBilling"]

log = logging.getLogger(__name__)


class LedgerBilling:
    """Credits for member requests; a free usage-log row for BYOK requests."""

    def __init__(self, ledger: Ledger, *, welcome_credits: int = 0) -> None:
        self.ledger = ledger
        self._welcome = welcome_credits
        self._tasks: set[asyncio.Task[None]] = set()

    async def reserve(self, user_id: str, request_id: str, estimate: int) -> None:
        """Hold the estimate; a user seen for the first time gets the welcome credits."""
        try:
            await self.ledger.reserve(user_id, estimate, request_id)
        except InsufficientCredits:
            if not self._welcome:
                raise
            # Whichever concurrent first request wins the welcome grant, all of them retry.
            await self.ledger.open_account(user_id, self._welcome)
            await self.ledger.reserve(user_id, estimate, request_id)

    def settle(self, settlement: Settlement) -> None:
        """Charge what was used (every ending), in a task the request cannot cancel."""
        task = asyncio.get_running_loop().create_task(self._settle(settlement))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, s: Settlement) -> None:
        usage = UsageRecord(
            request_id=s.request_id,
            user_id=s.user_id,
            provider=s.provider,
            model=s.model,
            prompt_tokens=s.prompt_tokens,
            completion_tokens=s.completion_tokens,
            duration_ms=s.duration_ms,
            status=UsageStatus(s.ending),
            byok=s.byok,
        )
        try:
            if s.byok:
                await self.ledger.record_free_usage(usage)
                return
            # Nothing reached the user when the call failed before streaming: no charge.
            tokens_used = s.completion_tokens > 0 or s.ending == "completed"
            charge = s.credits
            if charge is None:
                charge = credits_for(s.prompt_tokens, s.completion_tokens, s.multiplier)
            await self.ledger.settle(s.request_id, charge if tokens_used else 0, usage)
        except Exception:
            # The hold expires and is reconciled; log without user data or secrets.
            log.exception("settling request %s failed", s.request_id)

    async def drain(self) -> None:
        """Wait for settlements in flight (graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
