"""Credit leases: request holds taken in a worker's memory, out of credits set aside in the ledger.

Why: a hold written to the ledger costs a write transaction per request, and with the
journal and the settlement it made credits cost the service a fifth of its throughput
(issue 15). Instead a worker sets part of a user's credits aside in one reservation - its
*lease* for that user - and takes the holds of that user's requests from it in memory;
the ledger sees a transaction only when the lease must grow, and when it is given back.

Every guarantee of a hold of its own still holds, because a lease is an ordinary pending
reservation in the ledger:

* Never overdrawn, across workers and hosts: a worker holds no more than its lease has,
  and a lease grows only in a ledger transaction, from what the user has available.
* Other workers still find room: a lease takes what the request needs and a spare - what
  the user spent through it in about ``spare_s`` lately, at least ``spare_holds`` such
  holds - of at most half of what the user has beyond; near the end of a balance (that
  half below ``spare_holds`` holds) holds are taken exactly, as before leases.
* Exactly once: a request's settlement writes its own reservation row, settled, with the
  charge (``credits.holds.settle_holds``), out of the lease first.
* A dead worker's leases are given back when another worker on its host adopts its
  journal (`lease_prefix` names them); otherwise they expire like any hold nobody renews.
* An idle lease (no hold in flight, every charge applied) is given back after ``idle_s``,
  so what a user sees held is what their requests in flight need, a moment later.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace

from credits.errors import DuplicateRequest
from credits.errors import InsufficientCredits
from credits.ledger import Ledger
from credits.models import UsageRecord

__all__ = ["Leases", "lease_prefix"]


def lease_prefix(worker_id: str) -> str:
    """What the ids of one worker's leases start with."""
    return f"lease:{worker_id}:"


@dataclass(slots=True, eq=False)
class _Lease:
    lease_id: str
    user_id: str
    amount: int = 0
    """What the lease holds in the ledger once the charges submitted so far are applied."""
    held: int = 0
    """The holds of requests in flight, taken from ``amount``."""
    unapplied: int = 0
    """Settlements charged to it that the ledger has not applied yet."""
    last_used: float = field(default=0.0)
    confirmed_at: float = field(default=float("-inf"))
    """When the ledger last confirmed it pending (it grew or was renewed)."""
    grown_at: float = field(default=float("-inf"))
    charged_since: int = 0
    """Credits charged to it since it last grew: its spending rate, for the next spare."""
    growing: asyncio.Future[None] | None = None
    """Done when the growth in flight ends: other holds wait for it, then look again."""


@dataclass(slots=True)
class _Hold:
    lease: _Lease
    amount: int
    taken_at: float


class Leases:
    """One worker's leases, one per user it serves, and the holds taken from them."""

    def __init__(
        self,
        ledger: Ledger,
        worker_id: str,
        *,
        spare_holds: int = 8,
        spare_s: float = 1.0,
        idle_s: float = 1.0,
        stale_s: float = 450.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Lease from ``ledger`` for the worker ``worker_id`` (unique among live workers).

        Args:
            ledger: Where leases are reservations.
            worker_id: This worker's name (its journal's), the middle of its lease ids.
            spare_holds: How many more holds like the current one a growing lease sets
                aside at least, so the next requests of the user need no ledger transaction.
            spare_s: A busy lease sets aside about this long's worth of what it was charged
                lately, so it grows about once per ``spare_s`` however busy it is.
            idle_s: How long a lease with nothing in flight is kept before it is given back.
            stale_s: A lease the ledger has not confirmed pending for this long (half the
                reservation TTL: renewals failed) takes no more holds; a new one is opened.
            clock: Monotonic seconds (tests).
        """
        self._ledger = ledger
        self._prefix = lease_prefix(worker_id)
        self._spare_holds = spare_holds
        self._spare_s = spare_s
        self.idle_s = idle_s
        self._stale_s = stale_s
        self._clock = clock
        self._numbers = itertools.count(1)
        self._leases: dict[str, _Lease] = {}
        """User id -> the lease new holds are taken from (a retired one is not here)."""
        self._holds: dict[str, _Hold] = {}
        """Request id -> its hold, until the request settles."""

    @property
    def prefix(self) -> str:
        """What this worker's lease ids start with."""
        return self._prefix

    def lease_ids(self) -> list[str]:
        """The leases to renew: every lease this worker still uses, but one growing now.

        A growing lease's row may not be committed yet (a renewal would not find it and
        take it for closed); its growth pushes its expiry back anyway.
        """
        return [lease.lease_id for lease in self._leases.values() if lease.growing is None]

    async def hold(
        self, user_id: str, request_id: str, amount: int, minimum: int | None = None
    ) -> int:
        """Hold up to ``amount`` (at least ``minimum``; None: all or nothing) for a request.

        Returns:
            What was held: ``amount``, or with ``minimum`` as much as the user has.

        Raises:
            InsufficientCredits: the user's available credits (this lease's included)
                cannot cover ``minimum`` (or ``amount``); nothing was held.
            DuplicateRequest: ``request_id`` holds already.
            LedgerUnavailable: the lease had to grow and the ledger cannot be used now.
        """
        if request_id in self._holds:
            raise DuplicateRequest(request_id)
        needed = amount if minimum is None else min(minimum, amount)
        while True:
            lease = self._leases.get(user_id) or self._open(user_id)
            if lease.confirmed_at < self._clock() - self._stale_s and lease.amount:
                self._retire(lease)  # it may have expired in the ledger: do not rely on it
                continue
            free = lease.amount - lease.held
            if free >= amount:
                break
            if lease.growing is not None:  # one growth at a time; then look again
                await lease.growing
                continue
            growing = lease.growing = asyncio.get_running_loop().create_future()
            asked_at = self._clock()
            try:
                added = await self._ledger.extend_lease(
                    user_id,
                    lease.lease_id,
                    amount - free,
                    minimum=None if minimum is None else max(0, needed - free),
                    spare=max(amount * self._spare_holds, self._recent_spending(lease, asked_at)),
                    spare_min=amount * self._spare_holds,
                )
            except InsufficientCredits as refused:
                free = lease.amount - lease.held
                if free >= needed:  # requests that settled meanwhile left enough after all
                    break
                raise InsufficientCredits(free + refused.available, needed) from None
            except DuplicateRequest:  # the ledger closed this lease (expired): take another
                self._retire(lease)
                continue
            finally:
                lease.growing = None
                growing.set_result(None)
            lease.amount += added
            lease.confirmed_at = lease.grown_at = asked_at
            lease.charged_since = 0
            free = lease.amount - lease.held
            if free >= needed:  # else requests meanwhile took what was added: grow again
                break
        held = min(amount, free)
        lease.held += held
        lease.last_used = now = self._clock()
        self._holds[request_id] = _Hold(lease, held, now)
        return held

    def settled(self, record: UsageRecord) -> UsageRecord:
        """Release a request's hold; the record, naming the lease its charge comes out of.

        A record without a hold here (a BYOK request, or one never held) is returned as is.
        """
        hold = self._holds.pop(record.request_id, None)
        if hold is None:
            return record
        lease = hold.lease
        lease.held -= hold.amount
        covered = min(record.credits, lease.amount)  # as the ledger will take it
        lease.amount -= covered
        lease.charged_since += covered
        lease.unapplied += 1
        lease.last_used = self._clock()
        return replace(record, hold_id=lease.lease_id)

    def applied(self, records: Iterable[UsageRecord]) -> None:
        """The ledger applied these settlements (what an idle lease waits for)."""
        for record in records:
            lease = self._leases.get(record.user_id)
            if lease is not None and lease.lease_id == record.hold_id:
                lease.unapplied -= 1

    def renewed(self, asked: Iterable[str], renewed: set[str], at: float) -> None:
        """The ledger renewed ``renewed`` of the leases ``asked`` at ``at``; the rest closed.

        A lease the ledger no longer has pending (it expired during an outage) takes no
        more holds; its requests in flight still settle, charged once. One that grew
        meanwhile is judged by the next renewal.
        """
        judged = set(asked)
        for lease in list(self._leases.values()):
            if lease.lease_id not in judged or lease.growing is not None or lease.grown_at > at:
                continue
            if lease.lease_id in renewed:
                lease.confirmed_at = max(lease.confirmed_at, at)
            else:
                self._retire(lease)

    def idle(self, *, everything: bool = False) -> list[str]:
        """Forget the leases idle for ``idle_s`` (or now, with ``everything``); their ids.

        Idle: no hold in flight and every settlement charged to it applied. The caller
        gives them back to the ledger (`Ledger.release_many`).
        """
        cutoff = self._clock() - (0.0 if everything else self.idle_s)
        idle = [
            lease
            for lease in self._leases.values()
            if not lease.held and lease.unapplied <= 0 and lease.last_used <= cutoff
        ]
        for lease in idle:
            self._retire(lease)
        return [lease.lease_id for lease in idle]

    def expire_holds(self, taken_before: float) -> list[str]:
        """Stop setting credits aside for holds older than ``taken_before``; their requests.

        For a request whose settlement never came (it ran past every limit): its hold no
        longer keeps the lease busy. Should it settle after all, it is still charged once.
        """
        expired = [
            request_id
            for request_id, hold in self._holds.items()
            if hold.amount and hold.taken_at < taken_before
        ]
        for request_id in expired:
            hold = self._holds[request_id]
            hold.lease.held -= hold.amount
            hold.amount = 0
        return expired

    def _recent_spending(self, lease: _Lease, now: float) -> int:
        """About ``spare_s`` worth of what ``lease`` was charged since it last grew."""
        elapsed = max(now - lease.grown_at, 0.05)  # a burst is not a rate
        return int(lease.charged_since * self._spare_s / elapsed)

    def _open(self, user_id: str) -> _Lease:
        lease = _Lease(f"{self._prefix}{user_id}:{next(self._numbers)}", user_id)
        self._leases[user_id] = lease
        return lease

    def _retire(self, lease: _Lease) -> None:
        """New holds no longer come from ``lease`` (its holds in flight still settle to it)."""
        if self._leases.get(lease.user_id) is lease:
            del self._leases[lease.user_id]
