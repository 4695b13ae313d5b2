"""Concurrency slots of one upstream, held for a whole stream and shared fairly between users.

By default the pool never queues: a full upstream makes the request try the next one and a
full pool answers 409 at once (the frontend's "AI busy" modal). With ``queue_wait_s > 0`` a
request may wait, holding a *ticket* in each candidate's queue. The rules, identical here
and in the shared implementation (``coordination.slots.shared``, the same steps in Lua):

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
import math
from dataclasses import dataclass
from typing import Literal
from typing import Protocol

__all__ = [
    "ChangeSignal",
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
