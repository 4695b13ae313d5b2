"""The ledger behind the gateway's ``Billing`` seam (``gateway.billing``).

Reserve is awaited before the upstream is called (402 when the balance cannot cover the
hold, 503 ``LEDGER_UNAVAILABLE`` while the ledger is down). Settle hands the priced record
to the writer (``credits.writer``), whose future is done once the record is durable in the
journal; the ledger applies it in a batch shortly after, and a second settle of the same
request charges nothing. What a request costs was decided once, upstream of here
(``credits.pricing.price``): this module charges ``record.credits`` and never re-derives it.

Holds are taken in this worker's memory from its per-user leases (``credits.leases``):
a ledger transaction only when a lease must grow or is given back, not per request.

Leases in use are renewed every quarter of the reservation TTL, so a stream longer than
the TTL keeps its hold (issue 14.2): only the leases of a dead worker stop being renewed
and expire (or are released at once when another worker adopts its journal). A hold is
kept for at most ``max_hold_s`` (the longest a request may run, ``[server] max_stream_s``,
plus a margin), so a request whose settlement was somehow never submitted cannot keep
credits forever. Idle leases are given back every ``lease_idle_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from pathlib import Path

from credits.errors import InsufficientCredits
from credits.errors import LedgerUnavailable
from credits.journal import new_worker_id
from credits.leases import Leases
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
        lease_idle_s: float = 1.0,
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
            lease_idle_s: How long a lease with nothing in flight is kept.
        """
        self.ledger = ledger
        self._welcome = welcome_credits
        self._ttl = reservation_ttl_s
        self._max_hold = max_hold_s
        worker_id = new_worker_id()
        self.leases = Leases(ledger, worker_id, idle_s=lease_idle_s, stale_s=reservation_ttl_s / 2)
        self.writer = SettlementWriter(
            ledger,
            journal_dir,
            store_prompt_text=store_prompt_text,
            retry_s=retry_s,
            worker_id=worker_id,
            on_applied=self.leases.applied,
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def health(self) -> LedgerHealth:
        """Whether the ledger answers (readiness, 503s)."""
        return self.writer.health

    async def start(self) -> None:
        """Open the journal, apply what dead workers left, renew live holds from now on."""
        await self.writer.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._renew_leases()),
            loop.create_task(self._give_back_idle_leases()),
        ]

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
                return await self.leases.hold(user_id, request_id, amount, minimum)
            except InsufficientCredits:
                if not self._welcome:
                    raise
                # Whichever concurrent first request wins the welcome grant, all of them retry.
                await self.ledger.open_account(user_id, self._welcome)
                return await self.leases.hold(user_id, request_id, amount, minimum)
        except LedgerUnavailable as error:
            health.failed(error)
            raise LedgerUnavailable(error.detail, health.retry_after_s) from error

    def settle(self, record: UsageRecord) -> Awaitable[None]:
        """Charge ``record.credits`` (every ending); done once the settlement is durable.

        The settlement goes on even if the caller stops waiting (the request is cancelled).
        """
        return self.writer.submit(self.leases.settled(record))

    async def _renew_leases(self) -> None:
        interval = self._ttl / 4
        while True:
            await asyncio.sleep(interval)
            for request_id in self.leases.expire_holds(time.monotonic() - self._max_hold):
                log.error(
                    "hold of %s is no longer kept (older than the longest request)", request_id
                )
            leases = self.leases.lease_ids()
            if not leases:
                continue
            try:
                asked_at = time.monotonic()
                self.leases.renewed(leases, await self.ledger.renew(leases), asked_at)
            except LedgerUnavailable as error:
                self.writer.health.failed(error)
            except Exception:
                log.exception("renewing %d credit leases failed", len(leases))

    async def _give_back_idle_leases(self) -> None:
        while True:
            await asyncio.sleep(self.leases.idle_s / 2)
            await self._release(self.leases.idle())

    async def _release(self, leases: list[str]) -> None:
        """Give leases back; one the ledger cannot take back now expires instead."""
        if not leases:
            return
        try:
            await self.ledger.release_many(leases)
        except LedgerUnavailable as error:
            self.writer.health.failed(error)
        except Exception:
            log.exception("giving back %d credit leases failed; they expire", len(leases))

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
        """Apply the settlements submitted so far, give back leases with nothing in flight."""
        await self.writer.drain()
        await self._release(self.leases.idle(everything=True))

    async def close(self) -> None:
        """Stop renewing, drain (leases too) and close the writer."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.drain()
        await self.writer.close()
