"""SIGTERM to a real hypercorn mid-stream: the stream completes or ends with the shutdown
frame, the slot and the reservation are released, and the call is settled exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import MODEL
from tests.conftest import SECRET
from tests.serving import Served
from tests.serving import hypercorn_service
from tests.serving import stream_and_act

pytestmark = pytest.mark.slow  # a real hypercorn per test, ~2.5 s each


def _service(upstream: ScriptedUpstream, db: Path, grace_s: float) -> dict[str, Any]:
    return {
        "server": {"shutdown_grace_s": grace_s, "log_format": "json"},
        "auth": {"jwt_secret": SECRET},
        "embedded": {"enabled": False},
        "credits": {"database_url": f"sqlite:///{db}"},
        "providers": [{"name": "scripted", "base_url": upstream.base_url, "models": [MODEL]}],
    }


async def _stream_then_sigterm(served: Served, request_id: str) -> list[bytes]:
    """Start a stream, SIGTERM hypercorn after the first frames, read until the end."""

    async def sigterm() -> None:
        os.kill(served.process.pid, signal.SIGTERM)

    return await stream_and_act(served, request_id, sigterm)


async def _exit_code(served: Served) -> int:
    return await asyncio.to_thread(served.process.wait, 30)


def _ledger_rows(db: Path, request_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The usage rows and holds of the request the client called ``request_id``.

    The client's X-Request-Id is kept as the rows' correlation id (the service keys them
    by its own unique id).
    """
    with sqlite3.connect(db) as conn:
        usage = conn.execute(
            "SELECT status, completion_tokens, credits FROM usage_log WHERE correlation_id = ?",
            (request_id,),
        ).fetchall()
        holds = conn.execute(
            "SELECT status FROM reservations WHERE request_id IN"
            " (SELECT request_id FROM usage_log WHERE correlation_id = ?)",
            (request_id,),
        ).fetchall()
    return usage, holds


async def test_a_stream_longer_than_the_grace_ends_with_the_shutdown_frame(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    upstream.script = Script(tokens=400, delay_s=0.025)  # 10 s: far longer than the grace
    db = tmp_path / "credits.db"
    with hypercorn_service(tmp_path, _service(upstream, db, grace_s=1.0)) as served:
        payloads = await _stream_then_sigterm(served, "shutdown-cut")
        assert await _exit_code(served) == 0, served.log()
    last = orjson.loads(payloads[-1])
    assert last == {"error": {"message": "the service is shutting down", "type": "shutting_down"}}
    assert b"[DONE]" not in payloads
    await upstream.wait_for_disconnect(timeout=5)  # the upstream call was ended too
    usage, holds = _ledger_rows(db, "shutdown-cut")
    assert len(usage) == 1, "settled exactly once"
    status, completion_tokens, credits = usage[0]
    assert status == "cancelled"
    assert 0 < completion_tokens < 400 and credits > 0  # what was generated, no more
    assert holds == [("settled",)], "the reservation is closed, not left pending"
    log = served.log()
    assert '"event": "drain"' in log or '"event":"drain"' in log


async def test_a_stream_within_the_grace_completes(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    upstream.script = Script(tokens=40, delay_s=0.025)  # 1 s, well inside the grace
    db = tmp_path / "credits.db"
    with hypercorn_service(tmp_path, _service(upstream, db, grace_s=8.0)) as served:
        payloads = await _stream_then_sigterm(served, "shutdown-finish")
        assert await _exit_code(served) == 0, served.log()
    assert payloads[-1] == b"[DONE]"
    assert all(b'"error"' not in p for p in payloads)
    usage, holds = _ledger_rows(db, "shutdown-finish")
    assert usage == [("completed", 40, usage[0][2])]
    assert holds == [("settled",)]
