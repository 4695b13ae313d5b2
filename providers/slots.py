"""Concurrency slots of one upstream, held for a whole stream and shared fairly between users.

By default the pool never queues: a full upstream makes the request try the next one and a
full pool answers 409 at once (the frontend's "AI busy" modal). With ``queue_wait_s > 0`` a
request may wait, holding a *ticket* in each candidate's queue. The rules, identical here
and in the shared implementation (``coordination.redis_slots``, the same steps in Lua):

1. A user holds at most ``user_cap = max(1, ceil(capacity * max_user_share))`` slots.
2. While another user is waiting (refused while holding nothing here, within
   ``fair_window_s``), a user who already holds a slot may not take the last free one: so
   under contention no single user holds every slot, yet a lone writer may use them all.
3. Queued tickets go first: a request is admitted only when fewer eligible tickets (owners
   under their cap) are ahead of it than there are free slots.
4. Tickets are ordered by virtual time (start-time fair queueing): a user's next ticket
   starts after their previous one and no earlier than the last one served, so waiting
   users are served round-robin, FIFO within a user.

``try_acquire`` is async because the shared implementation asks Redis; ``release`` never
waits (a shared release runs in the background; the lease's TTL covers a lost one).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from typing import Protocol

__all__ = [
    "ChangeSignal",
    "LocalSlots",
    "Refusal",
    "SlotHold",
    "SlotUsage",
    "Slots",
    "user_slot_cap",
]

Refusal = Literal["busy", "queue_full"]
"""Why ``try_acquire`` gave no slot: none may be taken now, or the ticket found no room."""


@dataclass(frozen=True, slots=True)
class SlotHold:
    """One held slot: who holds it and, for shared slots, the lease to give back."""

    user: str
    lease_id: str = ""
    shared: bool = False


@dataclass(frozen=True, slots=True)
class SlotUsage:
    """What ``/status`` shows of one upstream."""

    in_use: int
    capacity: int
    queue_length: int

    @property
    def free(self) -> bool:
        """A new request would get a slot here without waiting."""
        return self.in_use < self.capacity and self.queue_length == 0


def user_slot_cap(capacity: int, share: float) -> int:
    """Most slots of an upstream with ``capacity`` one user may hold (rule 1)."""
    return max(1, math.ceil(capacity * share - 1e-9))


class Slots(Protocol):
    """What the pool needs from a slot counter."""

    capacity: int
    poll_s: float | None
    """How often a waiter re-checks when no local wake-up comes (None: wake-ups only)."""

    @property
    def in_use(self) -> int:
        """Slots held, as last seen (exact in memory; the last answer from Redis)."""
        ...

    async def try_acquire(self, user: str, ticket: str | None = None) -> SlotHold | Refusal:
        """Take a slot for ``user`` if the rules allow it now; never waits.

        Args:
            user: Who asks (the JWT user).
            ticket: A waiting request's id, ``<32 hex digits>:<user>``: refused, it is
                queued (or kept) here.
        """
        ...

    def release(self, hold: SlotHold) -> None:
        """Give a slot back."""
        ...

    def leave(self, ticket: str) -> None:
        """Drop a waiting request's ticket (it gave up or was served elsewhere)."""
        ...

    def changed(self) -> asyncio.Event:
        """An event set the next time a slot or ticket is given back in this process."""
        ...

    async def usage(self) -> SlotUsage:
        """Slots in use, total and queue length, from the state every worker shares."""
        ...


_Ticket = tuple[int, int, str, str]  # (virtual time, arrival, ticket, user)
_PRUNE_WAITING_AT = 1024  # refused users remembered before expired ones are dropped


class ChangeSignal:
    """``changed()`` for a ``Slots`` implementation: one event per round of waiters.

    Waiters get the current event; ``_notify`` sets it and drops it, so the next waiters
    get a fresh one and nobody misses a change that happened before they started waiting.
    """

    _event: asyncio.Event | None = None

    def changed(self) -> asyncio.Event:
        """The event set at the next change of usage or queue."""
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def _notify(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.set()


class LocalSlots(ChangeSignal):
    """Slots counted in this process: exact for one worker, per worker otherwise."""

    def __init__(
        self,
        capacity: int,
        *,
        max_user_share: float = 1.0,
        fair_window_s: float = 30.0,
        queue_max: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.user_cap = user_slot_cap(capacity, max_user_share)
        self.poll_s: float | None = None
        self._window = fair_window_s
        self._queue_max = queue_max
        self._clock = clock
        self._in_use = 0
        self._held: dict[str, int] = {}
        self._waiting: dict[str, float] = {}  # user -> until when they count as waiting
        self._queue: list[_Ticket] = []
        self._tickets: dict[str, _Ticket] = {}
        self._served = 0
        self._last: dict[str, int] = {}
        self._arrivals = itertools.count()

    @property
    def in_use(self) -> int:  # noqa: D102
        return self._in_use

    async def try_acquire(  # noqa: D102
        self, user: str, ticket: str | None = None
    ) -> SlotHold | Refusal:
        return self.acquire_now(user, ticket)

    def acquire_now(self, user: str, ticket: str | None = None) -> SlotHold | Refusal:
        """``try_acquire`` without the coroutine (the Redis fallback calls it too)."""
        held = self._held.get(user, 0)
        if self._admissible(user, held, ticket):
            self._in_use += 1
            self._held[user] = held + 1
            if ticket is not None:
                self._dequeue(ticket, served=True)
            if self._waiting:
                self._waiting.pop(user, None)
            return SlotHold(user)
        if held == 0:
            if len(self._waiting) >= _PRUNE_WAITING_AT:
                self._others_waiting(user)  # drops the expired ones
            self._waiting[user] = self._clock() + self._window
        if ticket is not None and ticket not in self._tickets:
            if len(self._queue) >= self._queue_max:
                return "queue_full"
            start = max(self._served, self._last.get(user, 0)) + 1
            self._last[user] = start
            entry = (start, next(self._arrivals), ticket, user)
            bisect.insort(self._queue, entry)
            self._tickets[ticket] = entry
        return "busy"

    def _admissible(self, user: str, held: int, ticket: str | None) -> bool:
        free = self.capacity - self._in_use
        if free <= 0 or held >= self.user_cap:
            return False
        if free == 1 and held >= 1 and self.capacity > 1 and self._others_waiting(user):
            return False
        return not self._queue or self._eligible_ahead(ticket) < free

    def _others_waiting(self, user: str) -> bool:
        if not self._waiting:
            return False
        now = self._clock()
        for who, until in list(self._waiting.items()):
            if until <= now:
                del self._waiting[who]
        return any(who != user for who in self._waiting)

    def _eligible_ahead(self, ticket: str | None) -> int:
        mine = self._tickets.get(ticket) if ticket is not None else None
        ahead = 0
        for entry in self._queue:
            if entry is mine:
                break
            if self._held.get(entry[3], 0) < self.user_cap:
                ahead += 1
        return ahead

    def _dequeue(self, ticket: str, *, served: bool) -> None:
        entry = self._tickets.pop(ticket, None)
        if entry is None:
            return
        self._queue.remove(entry)
        if served:
            self._served = max(self._served, entry[0])
        if not self._queue:
            self._last.clear()  # nobody waits: everyone starts level again

    def release(self, hold: SlotHold) -> None:  # noqa: D102
        if self._in_use > 0:
            self._in_use -= 1
        count = self._held.get(hold.user, 0) - 1
        if count > 0:
            self._held[hold.user] = count
        else:
            self._held.pop(hold.user, None)
        self._notify()

    def leave(self, ticket: str) -> None:  # noqa: D102
        if ticket in self._tickets:
            self._dequeue(ticket, served=False)
            self._notify()

    async def usage(self) -> SlotUsage:  # noqa: D102
        return SlotUsage(self._in_use, self.capacity, len(self._queue))
