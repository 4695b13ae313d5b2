"""Choosing memory or Redis, and saying so when several workers count separately."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bench.workers_cluster import Instance
from coordination import factory
from coordination.factory import PER_WORKER_WARNING
from coordination.factory import open_coordination
from coordination.settings import CoordinationSettings
from coordination.settings import LimitsSettings
from coordination.slots.local import LocalSlots
from coordination.workers import worker_count


def test_a_plain_process_is_one_worker() -> None:
    assert worker_count() == 1


@pytest.mark.parametrize(("workers", "warned"), [(1, False), (4, True), (None, True)])
async def test_per_worker_state_is_announced(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    workers: int | None,
    warned: bool,
) -> None:
    monkeypatch.setattr(factory, "worker_count", lambda: workers)
    caplog.set_level(logging.WARNING, logger="coordination")
    async with AsyncExitStack() as stack:
        coordination = await open_coordination(LimitsSettings(), CoordinationSettings(), stack)
    assert not coordination.shared
    assert isinstance(coordination.slots("p", 2), LocalSlots)
    assert (PER_WORKER_WARNING in caplog.text) is warned


@pytest.mark.slow  # two hypercorn workers
async def test_hypercorn_workers_say_their_limits_are_per_worker(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text(
        "[auth]\njwt_secret = 'a-secret-that-is-long-enough-for-the-check'\n"
        "[embedded]\nenabled = false\n[credits]\nenabled = false\n"
    )
    instance = Instance("per-worker", 2, config, tmp_path / "log.txt")
    instance.start()
    try:
        await asyncio.to_thread(instance.wait_ready, 60.0)
        deadline = time.monotonic() + 5
        while instance.log_tail(200).count(PER_WORKER_WARNING) < 2:
            assert time.monotonic() < deadline, instance.log_tail()
            await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(instance.stop)
