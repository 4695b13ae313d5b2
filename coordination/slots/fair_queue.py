"""Taking a slot from the candidates of a model, waiting for one in a fair queue if allowed.

The first pass never waits (the hot path: one ``try_acquire`` per candidate until one
succeeds). Only when every candidate is full and the deployment allows waiting
(``[limits] queue_wait_s > 0``) does the request take a ticket in each candidate's queue
and retry whenever a slot comes back in this process, or every ``poll_s`` for shared slots
whose releases happen in other workers. The queues themselves decide the order (see
``coordination.slots.rules``); this loop only bounds the wait and always gives its tickets back.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from typing import Protocol
from typing import TypeVar

from coordination.slots.rules import SlotHold
from coordination.slots.rules import Slots

__all__ = ["take_slot"]


class _HasSlots(Protocol):
    @property
    def slots(self) -> Slots: ...


M = TypeVar("M", bound=_HasSlots)


async def take_slot(
    members: Sequence[M], user: str, wait_s: float = 0.0
) -> tuple[M, SlotHold] | None:
    """A slot on the first member that gives one, or None when none did within ``wait_s``.

    Args:
        members: Candidates in order of preference (least loaded first).
        user: Who asks; fairness is per user.
        wait_s: How long to wait in the members' queues; 0 answers at once.
    """
    for member in members:
        got = await member.slots.try_acquire(user)
        if isinstance(got, SlotHold):
            return member, got
    if wait_s <= 0 or not members:
        return None
    return await _wait(members, user, wait_s)


async def _wait(members: Sequence[M], user: str, wait_s: float) -> tuple[M, SlotHold] | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    ticket = f"{uuid.uuid4().hex}:{user}"  # the shared queue reads the owner from it
    winner: M | None = None
    try:
        while True:
            # Take the events before trying, so a release between the try and the wait
            # still wakes this waiter.
            events = [member.slots.changed() for member in members]
            full = 0
            for member in members:
                got = await member.slots.try_acquire(user, ticket)
                if isinstance(got, SlotHold):
                    winner = member
                    return member, got
                full += got == "queue_full"
            left = deadline - loop.time()
            if full == len(members) or left <= 0:
                return None
            polls = [m.slots.poll_s for m in members if m.slots.poll_s]
            if polls:
                left = min(left, min(polls) * random.uniform(0.8, 1.2))
            await _first_of(events, left)
    finally:
        for member in members:
            if member is not winner:
                member.slots.leave(ticket)


async def _first_of(events: list[asyncio.Event], limit_s: float) -> None:
    unique = {id(event): event for event in events}.values()
    waiters = [asyncio.ensure_future(event.wait()) for event in unique]
    try:
        await asyncio.wait(waiters, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
