"""The credit ledger: reserve before a request, settle after it, on every ending.

The old backend checked credits after the work and deducted them non-atomically. Here a
request first *reserves* its worst-case price (402 before the first byte if it cannot),
then *settles* the real usage in one transaction that charges, releases the rest of the
hold and writes the usage row (`credits.holds` holds that SQL and its invariants). The
same code runs on SQLite and PostgreSQL; `credits.backends` adapts the drivers.

Holds asked for in the same turn of the event loop are taken in one transaction (group
commit: each request still waits for its own durable hold), and the service settles in
batches too (`settle_many`, fed by ``credits.writer``): a commit is the expensive part of
a small transaction, and under load one commit then serves many requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from credits.accounts import apply_grant
from credits.accounts import open_account
from credits.accounts import select_balance
from credits.backends import Database
from credits.backends import open_database
from credits.errors import CreditsError
from credits.holds import HoldRequest
from credits.holds import close_pending_hold
from credits.holds import settle_holds
from credits.holds import take_holds
from credits.migrations import migrate
from credits.models import Balance
from credits.models import Reservation
from credits.models import UsageRecord
from credits.models import from_timestamp
from credits.models import to_timestamp
from credits.reports import GrantEntry
from credits.reports import PendingHold
from credits.reports import Ranking
from credits.reports import UserTotals
from credits.reports import select_grants
from credits.reports import select_pending_holds
from credits.reports import select_top_users
from credits.shielded import ShieldedWrites
from credits.usage_log import insert_usage
from credits.usage_log import select_recent_usage

__all__ = ["Ledger"]

logger = logging.getLogger(__name__)
_RECONCILE_BATCH = 500


class Ledger:
    """Balances, holds, charges and the usage log, in SQLite or PostgreSQL."""

    def __init__(
        self,
        db: Database,
        *,
        reservation_ttl_s: float = 900.0,
        store_prompt_text: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._ttl = reservation_ttl_s
        self._store_prompt_text = store_prompt_text
        self._clock = clock
        self._writes = ShieldedWrites()
        self._closed = False
        self._holds: list[tuple[HoldRequest, asyncio.Future[int]]] = []
        self._holding: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        reservation_ttl_s: float = 900.0,
        store_prompt_text: bool = False,
        max_connections: int = 10,
        lock_timeout_s: float = 5.0,
    ) -> Ledger:
        """Connect to the ledger database and bring its schema up to date.

        Args:
            url: ``sqlite:///path.db`` (the zero-configuration default) or
                ``postgresql://user@host:port/db`` for several workers or hosts.
            reservation_ttl_s: How long an unsettled hold lives before reconciliation may
                give it back; make it longer than the longest request.
            store_prompt_text: Keep `UsageRecord.prompt_text` (off: prompts stay private).
            max_connections: PostgreSQL pool size per process.
            lock_timeout_s: The longest a statement waits for a lock (SQLite) or for the
                server (PostgreSQL) before raising `LedgerUnavailable`.

        Returns:
            The open ledger; close it with `close` (or use ``async with``).
        """
        db = await open_database(
            url, max_connections=max_connections, lock_timeout_s=lock_timeout_s
        )
        try:
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, reservation_ttl_s=reservation_ttl_s, store_prompt_text=store_prompt_text)

    async def close(self) -> None:
        """Let writes still in flight finish, then close the database (once)."""
        if self._closed:
            return
        self._closed = True
        while self._holding:
            await asyncio.gather(*self._holding, return_exceptions=True)
        await self._writes.wait()
        await self._db.close()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def reserve(
        self,
        user_id: str,
        amount: int,
        request_id: str,
        *,
        ttl_s: float | None = None,
        minimum: int | None = None,
    ) -> Reservation:
        """Hold ``amount`` credits for a request, or as many as the user has above ``minimum``.

        If the caller is cancelled during this call the hold may or may not exist; calling
        `release` then is safe either way, and `reconcile_expired` catches it otherwise.

        Args:
            user_id: The member paying.
            amount: The most the request may cost (``gateway.holds`` sizes it).
            request_id: Unique per request; `settle` finds the hold by it.
            ttl_s: This hold's lifetime, for a request known to run longer than usual.
            minimum: The least hold worth having (the prompt and a short answer): with it,
                a balance between ``minimum`` and ``amount`` is held whole and the caller
                caps the request to it; without it the hold is all or nothing.

        Returns:
            The reservation; its ``amount`` is what was held.

        Raises:
            InsufficientCredits: the available balance is below ``minimum`` (or ``amount``);
                nothing was held.
            DuplicateRequest: ``request_id`` was reserved before; nothing was held.
            LedgerUnavailable: the database cannot be used now; nothing was held.
        """
        _require_ids(user_id, request_id)
        ttl = self._ttl if ttl_s is None else ttl_s
        if amount < 0 or ttl <= 0 or (minimum is not None and minimum < 0):
            raise ValueError("amounts must be >= 0 and the hold's lifetime > 0")
        expires_at = self._clock() + ttl
        held = await self._hold(HoldRequest(user_id, amount, request_id, minimum, expires_at))
        return Reservation(request_id, user_id, held, from_timestamp(expires_at))

    async def extend_lease(
        self,
        user_id: str,
        lease_id: str,
        amount: int,
        *,
        minimum: int | None,
        spare: int,
        spare_min: int = 0,
    ) -> int:
        """Add up to ``amount`` (at least ``minimum``) and some ``spare`` to a worker's lease.

        A lease (``credits.leases``) is a pending reservation that many requests of one
        user are held from in the worker's memory; this creates it or makes it larger, and
        pushes its expiry back by the reservation TTL.

        Returns:
            The credits added: ``min(amount, available)`` plus up to ``spare`` more, never
            more than half of what the user has left beyond that, and none when that half
            is below ``spare_min``.

        Raises:
            InsufficientCredits: the available balance is below ``minimum`` (or ``amount``).
            DuplicateRequest: the lease is closed (expired or released): start another.
            LedgerUnavailable: the database cannot be used now; nothing was added.
        """
        _require_ids(user_id, lease_id)
        if min(amount, spare, spare_min) < 0 or (minimum is not None and minimum < 0):
            raise ValueError("amounts must be >= 0")
        expires_at = self._clock() + self._ttl
        hold = HoldRequest(
            user_id,
            amount,
            lease_id,
            minimum,
            expires_at,
            lease=True,
            spare=spare,
            spare_min=spare_min,
        )
        return await self._hold(hold)

    async def _hold(self, hold: HoldRequest) -> int:
        """Queue ``hold`` for this turn of the loop's transaction; what it got once committed."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._holds.append((hold, done))
        if len(self._holds) == 1:  # the first of this turn of the loop takes them all
            task = asyncio.get_running_loop().create_task(self._take_holds())
            self._holding.add(task)
            task.add_done_callback(self._holding.discard)
        return await done

    async def _take_holds(self) -> None:
        """Take every hold asked for so far in one transaction; answer each its own way."""
        batch, self._holds = self._holds, []
        outcomes: list[int | CreditsError] | list[BaseException]
        try:
            async with self._db.transaction() as tx:
                outcomes = await take_holds(tx, [hold for hold, _ in batch], self._clock())
        except BaseException as error:
            outcomes = [error] * len(batch)
        for (_, done), outcome in zip(batch, outcomes, strict=True):
            if done.done():
                continue
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

    async def settle(self, request_id: str, actual_credits: int, usage: UsageRecord) -> int:
        """Charge what a request really used, release the rest of its hold, log its usage.

        Call it on every ending: success, upstream error, client disconnect, cancellation
        (bill what was generated). It completes even if the calling task is cancelled
        meanwhile, and it is idempotent.

        Args:
            request_id: The reservation's request id.
            actual_credits: The price of the real usage (`credits.pricing.price`).
            usage: The usage log entry (same request and user as the reservation).

        Returns:
            Credits charged: ``actual_credits`` capped at what the user can pay. A repeated
            call charges nothing more and returns the first call's charge. A hold that
            already expired or was released is still charged once, if payable.

        Raises:
            ReservationNotFound: No reservation has this request id.
        """
        if actual_credits < 0:
            raise ValueError("actual_credits must be >= 0")
        if usage.request_id != request_id:
            raise ValueError("usage.request_id differs from request_id")

        async def write() -> int:
            [outcome] = await self.settle_many([replace(usage, credits=actual_credits)])
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        charged = await self._writes.run(write())
        if charged < actual_credits:
            logger.warning(
                "request %s used %d credits, charged %d", request_id, actual_credits, charged
            )
        return charged

    async def settle_many(self, records: Sequence[UsageRecord]) -> list[int | Exception]:
        """Settle many requests in one transaction (what the service's writer does).

        Each record is settled as `settle` would (``record.credits`` charged, once) or, for
        BYOK, logged free as `record_free_usage` would.

        Returns:
            Per record, in order: the credits charged, or the error that refused it alone
            (`ReservationNotFound`, or ValueError for a user that is not the hold's).

        Raises:
            LedgerUnavailable: The database cannot be used now; nothing was written.
        """
        async with self._db.transaction() as tx:
            return await settle_holds(
                tx, records, self._clock(), store_prompt_text=self._store_prompt_text
            )

    async def renew(self, request_ids: Sequence[str], ttl_s: float | None = None) -> set[str]:
        """Push back the expiry of pending holds whose requests are still running.

        Holds in use are renewed (``credits.billing`` does it every fraction of the TTL),
        so only the holds of a dead worker ever expire.

        Returns:
            The holds renewed: those of ``request_ids`` still pending.
        """
        if not request_ids:
            return set()
        expires_at = self._clock() + (self._ttl if ttl_s is None else ttl_s)
        async with self._db.transaction() as tx:
            rows = await tx.fetch(
                "UPDATE reservations SET expires_at = $2"
                f" WHERE request_id {tx.any_text} AND status = 'pending' RETURNING request_id",
                tx.text_list(sorted(set(request_ids))),
                expires_at,
            )
        return {str(row[0]) for row in rows}

    async def ping(self) -> None:
        """One trivial read: raises `LedgerUnavailable` when the database cannot be used."""
        async with self._db.read() as reader:
            await reader.fetch("SELECT 1")

    async def release(self, request_id: str) -> bool:
        """Give a hold back uncharged, for a request that never reached a model.

        A later `settle` of the same request still charges its usage, once.

        Returns:
            False when the reservation was not pending (already closed) or does not exist.
        """

        async def write() -> bool:
            async with self._db.transaction() as tx:
                return await close_pending_hold(tx, request_id, "released", self._clock())

        return await self._writes.run(write())

    async def release_many(self, request_ids: Sequence[str]) -> int:
        """Give back many pending holds (a worker's idle leases) in one transaction.

        Returns:
            How many were pending and are released now.
        """
        if not request_ids:
            return 0

        async def write() -> int:
            async with self._db.transaction() as tx:
                now = self._clock()
                closed = [
                    await close_pending_hold(tx, request_id, "released", now)
                    for request_id in sorted(set(request_ids))
                ]
            return sum(closed)

        return await self._writes.run(write())

    async def release_prefixed(self, prefix: str) -> int:
        """Give back every pending hold whose request id starts with ``prefix``.

        What a dead worker's leases (``credits.leases.lease_prefix``) still held returns
        at once when another worker adopts its journal, instead of when they expire.

        Returns:
            How many holds were released.
        """
        if not prefix:
            raise ValueError("the prefix must not be empty")
        async with self._db.read() as reader:
            rows = await reader.fetch(
                "SELECT request_id FROM reservations"
                " WHERE status = 'pending' AND substr(request_id, 1, $2) = $1",
                prefix,
                len(prefix),
            )
        return await self.release_many([str(row[0]) for row in rows])

    async def record_free_usage(self, usage: UsageRecord) -> None:
        """Log a BYOK request: no reservation, zero credits, one usage row.

        Args:
            usage: The entry; it is stored with ``byok=True`` and ``credits=0``.
        """
        free = replace(usage, byok=True, credits=0)

        async def write() -> None:
            async with self._db.transaction() as tx:
                await insert_usage(
                    tx,
                    free,
                    credits=0,
                    now=self._clock(),
                    store_prompt_text=self._store_prompt_text,
                )

        await self._writes.run(write())

    async def reconcile_expired(self, now: datetime | None = None) -> int:
        """Give back holds whose request never settled (its worker died); mark them expired.

        What such a request used is unknown, so the whole hold returns; should it settle
        after all, `settle` charges it then, once. Safe to run on every worker at once.

        Args:
            now: Reference time (default: the clock); holds expiring at or before it go.

        Returns:
            How many reservations this call expired.
        """
        cutoff = self._clock() if now is None else to_timestamp(now)
        expired = 0
        while True:
            async with self._db.read() as reader:
                batch = await reader.fetch(
                    "SELECT request_id FROM reservations WHERE status = 'pending'"
                    " AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
                    cutoff,
                    _RECONCILE_BATCH,
                )
            for (request_id,) in batch:
                # One short transaction per hold, claiming the reservation row first (the
                # lock order of settle); a concurrent settle or reconcile finds it taken.
                async with self._db.transaction() as tx:
                    expired += await close_pending_hold(tx, request_id, "expired", self._clock())
            if len(batch) < _RECONCILE_BATCH:
                break
        if expired:
            logger.warning("released %d expired credit reservations", expired)
        return expired

    async def grant(self, user_id: str, amount: int, note: str | None = None) -> int:
        """Add credits, or remove them with a negative amount (the balance stops at 0).

        Args:
            user_id: The member.
            amount: Credits to add; not 0.
            note: Why, for the transaction log.

        Returns:
            The new balance.
        """
        _require_ids(user_id)
        if amount == 0:
            raise ValueError("amount must not be 0")

        async def write() -> int:
            async with self._db.transaction() as tx:
                return await apply_grant(tx, user_id, amount, note, self._clock())

        return await self._writes.run(write())

    async def open_account(self, user_id: str, welcome: int) -> bool:
        """Give a user seen for the first time ``welcome`` credits, exactly once.

        Returns:
            True when this call created the account.
        """
        _require_ids(user_id)

        async def write() -> bool:
            async with self._db.transaction() as tx:
                return await open_account(tx, user_id, welcome, self._clock())

        return await self._writes.run(write())

    async def balance(self, user_id: str) -> Balance:
        """Return a user's balance and holds (zeros for an unknown user)."""
        async with self._db.read() as tx:
            return await select_balance(tx, user_id)

    async def recent_usage(self, user_id: str, limit: int = 20) -> list[UsageRecord]:
        """Return a user's latest usage log entries, newest first."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        async with self._db.read() as tx:
            return await select_recent_usage(tx, user_id, limit)

    async def top_users(
        self, since: datetime, limit: int = 20, by: Ranking = "tokens"
    ) -> list[UserTotals]:
        """The users who used the most tokens (or were charged the most) since ``since``."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        async with self._db.read() as tx:
            return await select_top_users(tx, to_timestamp(since), limit, by)

    async def pending_holds(self, user_id: str, limit: int = 20) -> list[PendingHold]:
        """A user's holds still pending, newest first."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        async with self._db.read() as tx:
            return await select_pending_holds(tx, user_id, limit)

    async def grants(self, user_id: str, limit: int = 20) -> list[GrantEntry]:
        """A user's grants and removals (with their notes), newest first."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        async with self._db.read() as tx:
            return await select_grants(tx, user_id, limit)


def _require_ids(*ids: str) -> None:
    if not all(isinstance(value, str) and value for value in ids):
        raise ValueError("user and request ids must be non-empty strings")
