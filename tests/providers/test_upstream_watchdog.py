"""The stream watchdog: the between-chunk timeout counts only while a read is waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from providers.errors import UpstreamTimeout
from providers.settings import UpstreamSettings
from providers.upstream import Upstream
from testing.upstream import Fault
from testing.upstream import Script
from testing.upstream import ScriptedUpstream

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})


@pytest.fixture(name="session")
async def _session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _upstream(base_url: str, session: aiohttp.ClientSession, **timeouts: float) -> Upstream:
    settings = UpstreamSettings(name="s", base_url=base_url, models=["m"], **timeouts)
    return Upstream(settings, session)


async def test_a_stall_after_some_chunks_times_out(session: aiohttp.ClientSession) -> None:
    script = Script(tokens=10, delay_s=0.01, fault=Fault("stall", after_chunks=2))
    async with ScriptedUpstream(models=["m"], script=script) as scripted:
        upstream = _upstream(scripted.base_url, session, chunk_timeout_s=0.2)
        stream = await upstream.open_stream(BODY)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            async for _ in stream.chunks():
                pass
        assert 0.15 < time.monotonic() - started < 2.0
        stream.close()


async def test_a_slow_reader_is_not_a_silent_upstream(session: aiohttp.ClientSession) -> None:
    script = Script(tokens=6, delay_s=0.01)
    async with ScriptedUpstream(models=["m"], script=script) as scripted:
        upstream = _upstream(scripted.base_url, session, chunk_timeout_s=0.1)
        stream = await upstream.open_stream(BODY)
        received = b""
        async for data in stream.chunks():
            received += data
            await asyncio.sleep(0.25)  # longer than the timeout, between reads only
        assert received.endswith(b"data: [DONE]\n\n")
        stream.close()


async def test_close_disarms_the_watchdog(session: aiohttp.ClientSession) -> None:
    script = Script(tokens=4, fault=Fault("stall", after_chunks=1))
    async with ScriptedUpstream(models=["m"], script=script) as scripted:
        upstream = _upstream(scripted.base_url, session, chunk_timeout_s=0.1)
        stream = await upstream.open_stream(BODY)
        await anext(stream.chunks())
        stream.close()
        assert stream._watchdog is None
