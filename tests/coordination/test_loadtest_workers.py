"""The short load test (hypercorn with 4 workers on the real Redis) passes, as in CI."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.redis, pytest.mark.slow]  # ~25 s: four workers under load

ROOT = Path(__file__).resolve().parents[2]


async def test_short_load_test_holds_every_invariant(redis_url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadtest_workers",
        "--short",
        "--redis-url",
        redis_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 150)
    except TimeoutError:
        process.send_signal(signal.SIGTERM)  # it stops its hypercorn instances on SIGTERM
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        pytest.fail(f"the short load test took over 150 s:\n{output.decode()[-4000:]}")
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert "PASSED: 7/7 checks" in text
