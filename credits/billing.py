"""The ledger behind the gateway's ``Billing`` seam (``gateway.billing``).

Reserve is awaited before the upstream is called (402 when the balance cannot cover the
hold, 503 ``LEDGER_UNAVAILABLE`` while the ledger is down). Settle hands the priced record
to the writer (``credits.writer``), whose future is done once the record is durable in the
journal; the ledger applies it in a batch shortly after, and a second settle of the same
request charges nothing. What a request costs was decided once, upstream of here
(``credits.pricing.price``): this module charges ``record.credits`` and never re-derives it.

The holds of requests still running are renewed every quarter of the reservation TTL, so
a stream longer than the TTL keeps its hold (issue 14.2): only the holds of a dead worker
stop being renewed and expire. A hold is renewed for at most ``max_hold_s`` (the longest a
request may run, ``[server] max_stream_s``, plus a margin), so a request whose settlement
was somehow never submitted cannot keep credits forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from pathlib import Path

from credits.errors import InsufficientCredits
from credits.errors import LedgerUnavailable
from credits.ledger import Ledger
from credits.models import UsageRecord
from credits.writer import LedgerHealth
from credits.writer import SettlementWriter

__all__ = ["LedgerBilling"]

log = logging.getLogger(__name__)


class LedgerBilling:
    """Credits for member requests; a free usage-log row for BYOK requests."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        welcome_credits: int = 0,
        journal_dir: Path | None = None,
        store_prompt_text: bool = False,
        reservation_ttl_s: float = 900.0,
        max_hold_s: float = 3600.0 + 300.0,
        retry_s: float = 2.0,
    ) -> None:
        """Wire the ledger; `start` starts the writer and the renewals.

        Args:
            ledger: The open ledger.
            welcome_credits: Granted once to a user seen for the first time.
            journal_dir: Where this host keeps settlements not applied yet (None: memory).
            store_prompt_text: Whether prompts are kept (else not even journaled).
            reservation_ttl_s: The holds' lifetime; live ones are renewed every quarter of it.
            max_hold_s: The longest a hold is renewed.
            retry_s: Seconds between probes of a ledger that is down (``Retry-After``).
        """
        self.ledger = ledger
        self._welcome = welcome_credits
        self._ttl = reservation_ttl_s
        self._max_hold = max_hold_s
        self.writer = SettlementWriter(
            ledger, journal_dir, store_prompt_text=store_prompt_text, retry_s=retry_s
        )
        self._live: dict[str, float] = {}
        """Request id -> when its hold was taken, for every hold not settled yet."""
        self._renewer: asyncio.Task[None] | None = None

    @property
    def health(self) -> LedgerHealth:
        """Whether the ledger answers (readiness, 503s)."""
        return self.writer.health

    async def start(self) -> None:
        """Open the journal, apply what dead workers left, renew live holds from now on."""
        await self.writer.start()
        self._renewer = asyncio.get_running_loop().create_task(self._renew_live_holds())

    async def reserve(
        self, user_id: str, request_id: str, amount: int, minimum: int | None = None
    ) -> int:
        """Hold up to ``amount`` (at least ``minimum``); returns what was held.

        A user seen for the first time gets the welcome credits first.

        Raises:
            InsufficientCredits: the balance cannot cover ``minimum`` (402).
            LedgerUnavailable: the ledger is down (503 with ``Retry-After``).
        """
        health = self.writer.health
        health.check()
        try:
            try:
                held = await self.ledger.reserve(user_id, amount, request_id, minimum=minimum)
            except InsufficientCredits:
                if not self._welcome:
                    raise
                # Whichever concurrent first request wins the welcome grant, all of them retry.
                await self.ledger.open_account(user_id, self._welcome)
                held = await self.ledger.reserve(user_id, amount, request_id, minimum=minimum)
        except LedgerUnavailable as error:
            health.failed(error)
            raise LedgerUnavailable(error.detail, health.retry_after_s) from error
        self._live[request_id] = time.monotonic()
        return held.amount

    def settle(self, record: UsageRecord) -> Awaitable[None]:
        """Charge ``record.credits`` (every ending); done once the settlement is durable.

        The settlement goes on even if the caller stops waiting (the request is cancelled).
        """
        self._live.pop(record.request_id, None)
        return self.writer.submit(record)

    async def _renew_live_holds(self) -> None:
        interval = self._ttl / 4
        while True:
            await asyncio.sleep(interval)
            oldest = time.monotonic() - self._max_hold
            for request_id in [r for r, taken in self._live.items() if taken < oldest]:
                del self._live[request_id]  # ran past every limit: let the hold expire
                log.error(
                    "hold of %s is no longer renewed (older than the longest request)", request_id
                )
            if not self._live:
                continue
            try:
                await self.ledger.renew(list(self._live))
            except LedgerUnavailable as error:
                self.writer.health.failed(error)
            except Exception:
                log.exception("renewing %d credit holds failed", len(self._live))

    async def check(self) -> str | None:
        """Readiness: raise while the ledger is down; else a note on journaled settlements.

        Raises:
            LedgerUnavailable: the ledger is down, or does not answer a trivial read now.
        """
        self.writer.health.check()
        await self.ledger.ping()
        backlog = self.writer.backlog
        return f"{backlog} settlements not applied yet" if backlog else None

    async def drain(self) -> None:
        """Apply the settlements submitted so far (graceful shutdown; tests)."""
        await self.writer.drain()

    async def close(self) -> None:
        """Stop renewing, drain and close the writer."""
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        await self.writer.close()
