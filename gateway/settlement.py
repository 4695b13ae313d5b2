"""One settlement pipeline for every request: priced once, reported to listeners, charged.

Every ending of a proxy call or an agent turn becomes one ``UsageRecord``. ``Settlements``
prices it with the one rule (``credits.pricing.price``), hands the same priced record to
each listener (the Prometheus metrics, the rate limiter's token correction) and then to
the billing (the ledger), so metrics and ledger can never disagree about what was used or
charged. A record whose token counts are still being counted (the tokenizer loads off the
event loop) is settled by a task that ``drain`` waits for at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence

from credits.models import UsageRecord
from credits.pricing import price
from gateway.billing import Billing

__all__ = ["SettlementListener", "Settlements"]

log = logging.getLogger(__name__)

SettlementListener = Callable[[UsageRecord], None]
"""Receives every priced record, once, on the event loop; it must be cheap and not fail."""


class Settlements:
    """Reserve through the billing; settle every ending through pricing and the listeners."""

    def __init__(
        self,
        billing: Billing,
        listeners: Sequence[SettlementListener] = (),
        *,
        charges: bool = True,
    ) -> None:
        """Build the pipeline once per worker.

        Args:
            billing: Where credits are held and charged (``NoBilling`` when credits are off).
            listeners: Told about every priced record (metrics, rate-limit correction).
            charges: Whether members pay at all (``[credits] enabled``): off, every record is
                priced at 0 and nothing is reserved.
        """
        self.billing = billing
        self.listeners: tuple[SettlementListener, ...] = tuple(listeners)
        """Told about every priced record (replaceable, e.g. by a benchmark)."""
        self._charges = charges
        self._counting: set[asyncio.Task[None]] = set()

    @property
    def charges(self) -> bool:
        """Whether members pay for their calls."""
        return self._charges

    async def reserve(
        self, user_id: str, request_id: str, amount: int, minimum: int | None = None
    ) -> int:
        """Hold up to ``amount`` credits for a member's request, at least ``minimum``.

        Returns:
            What was held (``amount`` when members do not pay).

        Raises:
            InsufficientCredits: the balance cannot cover ``minimum`` (402).
        """
        if not self._charges:
            return amount
        return await self.billing.reserve(user_id, request_id, amount, minimum)

    def price(self, record: UsageRecord) -> UsageRecord:
        """``record`` priced by the one rule (all zeros when members do not pay)."""
        if self._charges:
            return price(record)
        return record.priced([call.at(0) for call in record.calls])

    def settle(self, record: UsageRecord) -> Awaitable[None]:
        """Price ``record``, tell the listeners, then charge it; never raises.

        Returns:
            Done once the charge is durable (awaited before an answer's last frame, so a
            worker killed after it cannot lose the charge; awaiting is optional).
        """
        return self.settle_priced(self.price(record))

    def settle_priced(self, priced: UsageRecord) -> Awaitable[None]:
        """Tell the listeners about a record ``price`` already priced, then charge it.

        Returns:
            Done once the charge is durable, as for `settle`.
        """
        for listener in self.listeners:
            try:
                listener(priced)
            except Exception:  # a metrics bug must never cost a settlement
                log.exception("a settlement listener failed for %s", priced.request_id)
        return self.billing.settle(priced)

    def settle_when_counted(self, counting: Awaitable[UsageRecord]) -> None:
        """Settle the record ``counting`` produces, in a task the request cannot cancel."""

        async def count_then_settle() -> None:
            self.settle(await counting)

        task = asyncio.get_running_loop().create_task(count_then_settle())
        self._counting.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._counting.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("a settlement could not be counted: %r", error)

    async def drain(self) -> None:
        """Wait for settlements still counting, then for the billing's writes (shutdown)."""
        while self._counting:
            await asyncio.gather(*self._counting, return_exceptions=True)
        await self.billing.drain()
