"""The console's live view: the pool and the streams in flight, pushed every few seconds.

One snapshot is small JSON built from what the worker already keeps: the pool's
``status()`` (slots and queues, shared across workers with Redis), each provider's models
(the upstream's cached list), its readiness (the cached probe of ``/readyz``), its TTFT
and error rate over the window (``quart_app.metrics_window``) and this worker's streams
(``gateway.console``). The feed sends one ``data:`` frame per ``[console] push_interval_s``
(a comment instead when nothing but the clock changed) and ends when the worker drains, so
it never holds up a shutdown. With the streams listed capped, a frame stays a few KB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.console import stream_rows
from providers.errors import ProviderError
from providers.pool import PoolMember
from quart_app.operations import Operations
from quart_app.readiness import Check
from quart_app.readiness import Readiness

__all__ = ["MAX_STREAMS_LISTED", "console_feed", "console_snapshot"]

log = logging.getLogger(__name__)
#: Streams listed in a snapshot (the oldest); the total is always sent.
MAX_STREAMS_LISTED = 30
_MODELS_TIMEOUT_S = 2.0
_KEEP_ALIVE = b": keep-alive\n\n"


async def _models(member: PoolMember) -> list[str]:
    with contextlib.suppress(ProviderError, TimeoutError):
        async with asyncio.timeout(_MODELS_TIMEOUT_S):
            return await member.upstream.list_models()  # configured, or cached by the upstream
    return []


async def console_snapshot(operations: Operations) -> dict[str, Any]:
    """The pool, its providers and this worker's streams, now."""
    services = operations.services
    if services is None:  # starting or stopped: nothing to show yet
        empty: dict[str, Any] = {"providers": [], "streams": [], "streams_total": 0}
        return {**empty, "busy": False, "window_s": None, "worker": os.getpid()}
    pool = services.pool
    members = pool.members
    names = [m.upstream.name for m in members]
    readiness = operations.readiness
    status, models, checks = await asyncio.gather(
        pool.status(),
        asyncio.gather(*(_models(m) for m in members)),
        _checks(readiness, names),
    )
    window = operations.metrics_window
    stats = window.stats() if window is not None else {}
    providers = []
    for member, slots, served in zip(members, status["providers"], models, strict=True):
        name = member.upstream.name
        check = checks.get(name)
        numbers = stats.get(name)
        providers.append(
            {
                **slots,
                "kind": member.upstream.settings.kind,
                "models": served,
                "busy": slots["slots_in_use"] >= slots["slots_total"] or slots["queue_length"] > 0,
                # No age: it would change every frame, and an idle feed sends comments.
                "readiness": {"state": check.state, "detail": check.detail} if check else None,
                "ttft_p50_ms": _ms(numbers.ttft_p50_s) if numbers else None,
                "ttft_p95_ms": _ms(numbers.ttft_p95_s) if numbers else None,
                "streams": numbers.streams if numbers else 0,
                "errors": numbers.errors if numbers else 0,
                "error_rate": numbers.error_rate if numbers else None,
            }
        )
    streams, total = stream_rows(services.calls, MAX_STREAMS_LISTED)
    return {
        "busy": status["busy"],
        "window_s": window.window_s if window is not None else None,
        "worker": os.getpid(),
        "providers": providers,
        "streams": streams,
        "streams_total": total,
    }


async def _checks(readiness: Readiness | None, names: list[str]) -> dict[str, Check]:
    return await readiness.providers(names) if readiness is not None else {}


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


async def console_feed(operations: Operations, interval_s: float) -> AsyncIterator[bytes]:
    """SSE frames of snapshots until the worker drains (or the client leaves)."""
    last = b""
    while not operations.lifecycle.draining:
        try:
            snapshot = await console_snapshot(operations)
        except Exception as error:  # Redis down, say: say so and keep the feed
            log.warning("console snapshot failed: %s", type(error).__name__)
            snapshot = {"error": f"the pool cannot be read now ({type(error).__name__})"}
        body = orjson.dumps(snapshot)
        if body == last:
            yield _KEEP_ALIVE
        else:
            last = body
            yield b"data: " + body + b"\n\n"
        await asyncio.sleep(interval_s)
