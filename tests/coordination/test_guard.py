"""The guard: one closed connection is retried, two failures in a row are an outage."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from coordination.guard import RedisDown
from coordination.guard import RedisGuard


def guard() -> RedisGuard:
    return RedisGuard(mode="fail", timeout_s=0.5, retry_interval_s=1.0, where="test")


async def test_a_connection_the_server_closed_is_retried_not_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="coordination")
    calls = 0

    async def stale_then_fine() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RedisConnectionError("Connection closed by server.")
        return "ok"

    checked = guard()
    assert await checked.run(stale_then_fine) == "ok"
    assert calls == 2
    assert not checked.down and checked.outages == 0
    assert not caplog.records


async def test_a_second_failure_is_an_outage_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="coordination")

    async def refused() -> str:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    checked = guard()
    for _ in range(3):
        with pytest.raises(RedisDown):
            await checked.run(refused)
    assert checked.down and checked.outages == 1
    [record] = caplog.records
    assert "Connection refused" in record.getMessage()  # the reason, not just the type
