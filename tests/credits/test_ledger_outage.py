"""The ledger's database goes away and comes back (issue 14.1, targets.md reliability).

A real PostgreSQL server (a private one: the shared cluster is never stopped) is stopped
with 8 streams in flight and started again a few seconds later. Meanwhile new member
requests get 503 ``LEDGER_UNAVAILABLE`` with ``Retry-After``, ``/readyz`` is not ready,
BYOK requests work; the 8 streams complete, their settlements wait in the journal, and
once the server is back each is charged exactly once. The same for SQLite, locked by
another process past ``lock_timeout_s`` and full (``SQLITE_FULL``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import orjson
import pytest
from quart import Quart
from quart.testing.connections import TestHTTPConnection as HTTPConnection

from credits.backends.sqlite import SqliteDatabase
from testing.upstream import Script
from testing.upstream import ScriptedUpstream
from tests.conftest import FRONTEND_CHAT
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import chat_body
from tests.conftest import frames
from tests.conftest import read_writes
from tests.conftest import stream
from tests.credits.helpers import assert_consistent
from tests.credits.helpers import charges
from tests.credits.helpers import eventually
from tests.credits.private_postgres import private_postgres
from tests.credits.test_service_billing import billed_app
from tests.credits.test_service_billing import final_usage
from tests.credits.test_service_billing import ledger_of
from tests.credits.test_service_billing import settled

STREAMS = 8


def outage_app(
    make_app: AppFactory, upstream: ScriptedUpstream, url: str, journal: Path
) -> AbstractAsyncContextManager[Quart]:
    """The billed app, probing a ledger that is down every 0.2 s; BYOK to loopback allowed."""
    return billed_app(
        make_app,
        upstream,
        url,
        {"byok": {"allow_private_addresses": True}},
        journal_dir=str(journal),
        lock_timeout_s=1.0,
        retry_s=0.2,
    )


async def _open_stream(app: Quart, token: str, first: asyncio.Event) -> tuple[int, list[bytes]]:
    """A stream that signals its first frame, then reads to the end."""
    client = app.test_client()
    async with client.request(FRONTEND_CHAT, method="POST", headers=auth(token)) as conn:
        await conn.send(orjson.dumps(chat_body(max_tokens=100)))
        await conn.send_complete()
        writes = [await conn.receive()]
        first.set()
        writes += await read_writes(conn, 30)
    assert isinstance(conn, HTTPConnection)  # Quart's protocol omits the status
    assert conn.status_code is not None
    return conn.status_code, writes


async def _streams_in_flight(app: Quart, token: str) -> list[asyncio.Task[tuple[int, list[bytes]]]]:
    """``STREAMS`` streams, each past its first frame."""
    started = [asyncio.Event() for _ in range(STREAMS)]
    tasks = [asyncio.create_task(_open_stream(app, token, event)) for event in started]
    async with asyncio.timeout(10):
        await asyncio.gather(*(event.wait() for event in started))
    return tasks


async def _assert_refused_while_down(app: Quart, token: str) -> None:
    response = await app.test_client().post(FRONTEND_CHAT, json=chat_body(), headers=auth(token))
    body = await response.get_json()
    assert response.status_code == 503, body
    assert body["code"] == "LEDGER_UNAVAILABLE" and body["error"]
    assert int(response.headers["Retry-After"]) >= 1
    ready = await app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert (await ready.get_json())["checks"]["database"]["state"] == "down"


async def _assert_byok_works(app: Quart, token: str, upstream: ScriptedUpstream) -> None:
    headers = auth(token, **{"X-BYOK-API-Key": "sk-own-key", "X-BYOK-Base-URL": upstream.base_url})
    status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), headers)
    assert status == 200
    assert frames(writes)[-1] == b"[DONE]"


async def _wait_until_applied(app: Quart, delivered: list[list[bytes]], url: str) -> None:
    """Poll until the journaled settlements reached the ledger; check each charged once."""
    ledger = ledger_of(app)

    async def applied() -> bool:
        rows = await ledger.recent_usage("alice", limit=1000)
        return not (await ledger.balance("alice")).reserved and len(rows) >= len(delivered)

    await eventually(applied, "the journaled settlements applied")
    rows = [row for row in await ledger.recent_usage("alice", limit=1000) if not row.byok]
    assert len(rows) == len(delivered)
    expected = sorted(final_usage(writes)["total_tokens"] for writes in delivered)
    assert sorted(row.credits for row in rows) == expected
    charged = await charges(url)
    assert sorted(charged) == sorted(row.request_id for row in rows)
    assert all(len(amounts) == 1 for amounts in charged.values())
    assert (await ledger.balance("alice")).balance == 50_000 - sum(expected)
    await assert_consistent(url)


@pytest.mark.slow  # a PostgreSQL outage played out, ~9 s
async def test_postgres_outage_loses_no_settlement(
    make_app: AppFactory, upstream: ScriptedUpstream, tmp_path: Path, token: str
) -> None:
    upstream.script = Script(tokens=40, delay_s=0.1)  # 4 s streams
    with private_postgres() as server:
        async with outage_app(make_app, upstream, server.url, tmp_path / "journal") as app:
            await ledger_of(app).grant("alice", 50_000)
            tasks = await _streams_in_flight(app, token)
            await asyncio.to_thread(server.stop)
            await _assert_refused_while_down(app, token)
            await _assert_byok_works(app, token, upstream)
            answers = await asyncio.gather(*tasks)
            assert [status for status, _ in answers] == [200] * STREAMS
            assert all(frames(writes)[-1] == b"[DONE]" for _, writes in answers)
            await asyncio.to_thread(server.start)
            await _wait_until_applied(app, [writes for _, writes in answers], server.url)
            status, _, _ = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
            assert status == 200, "new requests are served again"
            ready = await app.test_client().get("/readyz")
            assert (await ready.get_json())["checks"]["database"]["state"] == "up"


def _ledger_db(app: Quart) -> Any:
    database = ledger_of(app)._db
    assert isinstance(database, SqliteDatabase)
    return database


@pytest.mark.slow  # another process holds the lock, ~4 s
async def test_sqlite_locked_by_another_process_loses_no_settlement(
    make_app: AppFactory, upstream: ScriptedUpstream, tmp_path: Path, token: str
) -> None:
    upstream.script = Script(tokens=30, delay_s=0.1)
    db = tmp_path / "credits.db"
    async with outage_app(make_app, upstream, f"sqlite:///{db}", tmp_path / "journal") as app:
        await ledger_of(app).grant("alice", 50_000)
        tasks = await _streams_in_flight(app, token)
        # Another process (an operator's shell, a backup) takes the write lock and keeps it.
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            await _assert_refused_while_down(app, token)
            await _assert_byok_works(app, token, upstream)
            answers = await asyncio.gather(*tasks)
            assert [status for status, _ in answers] == [200] * STREAMS
        finally:
            other.execute("ROLLBACK")
            other.close()
        await _wait_until_applied(app, [writes for _, writes in answers], f"sqlite:///{db}")


@pytest.mark.slow  # ~3 s
async def test_sqlite_full_loses_no_settlement(
    make_app: AppFactory, upstream: ScriptedUpstream, tmp_path: Path, token: str
) -> None:
    upstream.script = Script(tokens=3)
    upstream.enqueue(*[Script(tokens=30, delay_s=0.1)] * STREAMS)
    db = tmp_path / "credits.db"
    url = f"sqlite:///{db}"
    async with outage_app(make_app, upstream, url, tmp_path / "journal") as app:
        await ledger_of(app).grant("alice", 50_000)
        tasks = await _streams_in_flight(app, token)
        # The file may not grow any more: SQLite answers SQLITE_FULL, as on a full disk,
        # as soon as a write needs a new page (rows still fit in pages with room left).
        conn = _ledger_db(app)._conn
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count={pages}")
        served: list[list[bytes]] = []
        for _ in range(200):
            status, _, writes = await stream(app, FRONTEND_CHAT, chat_body(), auth(token))
            if status == 503:
                break
            assert status == 200
            served.append(writes)
            # Holds come from the worker's lease: the ledger is written when settlements
            # are applied (every 100 ms). Apply now, so a full file shows at once instead
            # of after more requests than the rate limit lets through.
            await settled(app)
        else:
            raise AssertionError("the ledger never filled up")
        await _assert_refused_while_down(app, token)
        answers = await asyncio.gather(*tasks)
        assert [status for status, _ in answers] == [200] * STREAMS
        conn.execute("PRAGMA max_page_count=1073741823")
        await _wait_until_applied(app, [writes for _, writes in answers] + served, url)
