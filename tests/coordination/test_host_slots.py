"""Slots of a once-per-host upstream are counted across the host's worker processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from coordination.slots.host import HostSlots
from coordination.slots.local import LocalSlots
from coordination.slots.rules import SlotHold


def worker(lock_dir: Path, capacity: int = 2) -> HostSlots:
    # Each HostSlots opens its own file descriptions, so two of them lock like two processes.
    return HostSlots(LocalSlots(capacity), lock_dir)


async def test_two_workers_share_the_capacity(tmp_path: Path) -> None:
    a, b = worker(tmp_path), worker(tmp_path)
    first = await a.try_acquire("alice")
    second = await b.try_acquire("bob")
    assert isinstance(first, SlotHold) and isinstance(second, SlotHold)
    assert await b.try_acquire("carol") == "busy"
    assert (await a.usage()).in_use == 2
    a.release(first)
    assert (await b.usage()).in_use == 1
    third = await b.try_acquire("carol")
    assert isinstance(third, SlotHold)
    assert b.in_use == 2 and a.in_use == 0


async def test_a_killed_worker_gives_its_slots_back(tmp_path: Path) -> None:
    holder = subprocess.Popen(  # noqa: ASYNC220 - a plain child that holds two locks
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fds = [os.open('{tmp_path}/slot-{{}}.lock'.format(i), os.O_RDWR | os.O_CREAT) "
            "for i in range(2)]\n"
            "[fcntl.flock(fd, fcntl.LOCK_EX) for fd in fds]\n"
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        slots = worker(tmp_path)
        assert await slots.try_acquire("alice") == "busy"
        assert (await slots.usage()).in_use == 2
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 2
    while isinstance(got := await slots.try_acquire("alice"), str):
        assert time.monotonic() < deadline
    assert isinstance(got, SlotHold)


async def test_refusal_leaves_the_workers_own_count_untouched(tmp_path: Path) -> None:
    a, b = worker(tmp_path, capacity=1), worker(tmp_path, capacity=1)
    held = await a.try_acquire("alice")
    assert isinstance(held, SlotHold)
    assert await b.try_acquire("bob") == "busy"
    assert b.in_use == 0
    a.release(held)
    a.release(held)  # idempotent
    assert (await a.usage()).in_use == 0
