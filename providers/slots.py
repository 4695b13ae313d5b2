"""Concurrency slots of one upstream: taken without waiting, held for a whole stream.

The pool never queues on a slot: a full upstream makes the request try the next one, and a
full pool answers 409 at once (the frontend's "AI busy" modal). ``Slots`` is the in-process
implementation; a shared one (Redis leases) implements the same three members.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["LocalSlots", "Slots"]


class Slots(Protocol):
    """What the pool needs from a slot counter."""

    capacity: int

    @property
    def in_use(self) -> int:
        """Slots currently held."""
        ...

    def try_acquire(self) -> bool:
        """Take a slot if one is free; never waits."""
        ...

    def release(self) -> None:
        """Give a slot back."""
        ...


class LocalSlots:
    """Slots counted in this process; correct for one worker, per worker otherwise."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._in_use = 0

    @property
    def in_use(self) -> int:  # noqa: D102
        return self._in_use

    def try_acquire(self) -> bool:  # noqa: D102
        if self._in_use >= self.capacity:
            return False
        self._in_use += 1
        return True

    def release(self) -> None:  # noqa: D102
        if self._in_use > 0:
            self._in_use -= 1
