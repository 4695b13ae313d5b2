"""Slots of an upstream that runs once per host (the embedded model), shared by its workers.

Without Redis every hypercorn worker counts slots in its own memory, so N workers would
send up to N x ``n_parallel`` requests to the one model server of the host. Here a slot is
also an exclusive ``flock`` on one of ``capacity`` files: the kernel counts them across the
host's processes, and releases them when a worker dies, so a killed worker never leaks one.
Fairness between users within a worker stays with the wrapped ``LocalSlots``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import uuid
from pathlib import Path

from coordination.slots.local import LocalSlots
from coordination.slots.rules import Refusal
from coordination.slots.rules import SlotHold
from coordination.slots.rules import SlotUsage

__all__ = ["HostSlots"]


class HostSlots:
    """``LocalSlots`` plus one host-wide file lock per held slot."""

    def __init__(self, inner: LocalSlots, lock_dir: Path) -> None:
        self.capacity = inner.capacity
        #: Another worker's release wakes nobody here: waiters re-check this often.
        self.poll_s: float | None = 0.05
        self._inner = inner
        lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._files = [lock_dir / f"slot-{i}.lock" for i in range(self.capacity)]
        self._held: dict[str, tuple[SlotHold, int]] = {}

    @property
    def in_use(self) -> int:
        """Slots this worker holds (cheap; ``usage`` counts the whole host)."""
        return self._inner.in_use

    async def try_acquire(self, user: str, ticket: str | None = None) -> SlotHold | Refusal:
        """A slot if this worker's fairness rules and a free host-wide lock both allow it."""
        got = await self._inner.try_acquire(user, ticket)
        if isinstance(got, str):
            return got
        fd = self._lock_any()
        if fd is None:
            self._inner.release(got)
            return "busy"
        hold = SlotHold(user=user, lease_id=uuid.uuid4().hex)
        self._held[hold.lease_id] = (got, fd)
        return hold

    def _lock_any(self) -> int | None:
        for path in self._files:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    def release(self, hold: SlotHold) -> None:
        """Unlock (closing the file releases the lock) and give the worker's slot back."""
        entry = self._held.pop(hold.lease_id, None)
        if entry is None:
            return
        inner, fd = entry
        os.close(fd)
        self._inner.release(inner)

    def leave(self, ticket: str) -> None:  # noqa: D102
        self._inner.leave(ticket)

    def changed(self) -> asyncio.Event:  # noqa: D102
        return self._inner.changed()

    async def usage(self) -> SlotUsage:
        """Slots held by every worker of the host (a lock probe per slot file)."""
        local = await self._inner.usage()
        busy = sum(1 for path in self._files if _locked(path))
        return SlotUsage(in_use=busy, capacity=self.capacity, queue_length=local.queue_length)


def _locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the probe's shared lock
    return False
