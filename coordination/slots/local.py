"""Slots counted in this process: exact for one worker, per worker otherwise.

The rules are those of ``coordination.slots.rules`` (the shared implementation,
``coordination.slots.shared``, runs the same steps in Lua); this is their reference
implementation, and the fallback of the shared one when Redis is down.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Callable

from coordination.slots.rules import ChangeSignal
from coordination.slots.rules import Refusal
from coordination.slots.rules import SlotHold
from coordination.slots.rules import SlotUsage
from coordination.slots.rules import user_slot_cap

__all__ = ["LocalSlots"]

_Ticket = tuple[int, int, str, str]  # (virtual time, arrival, ticket, user)
_PRUNE_WAITING_AT = 1024  # refused users remembered before expired ones are dropped


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

    def take(self, user: str) -> None:
        """Count a slot taken elsewhere (in Redis) as held here too, whatever the rules say.

        The Redis slots' twin counts every slot its worker holds, so that, should Redis
        fail, the fallback's capacity sees the streams already running.
        """
        self._in_use += 1
        self._held[user] = self._held.get(user, 0) + 1

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
