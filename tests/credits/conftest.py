"""Fixtures running every ledger test against a real SQLite file and a real PostgreSQL.

PostgreSQL comes from ``STORYWRITER_TEST_POSTGRES_URL``; each test gets a fresh schema
(selected through ``search_path`` in the URL) that is dropped afterwards, so runs never
see each other's rows. An unreachable server skips the postgres variants, unless
``STORYWRITER_REQUIRE_SERVICES=1`` makes that a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from credits import Ledger

POSTGRES_URL = os.environ.get(
    "STORYWRITER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("STORYWRITER_REQUIRE_SERVICES") == "1"

OpenLedger = Callable[..., Awaitable[Ledger]]


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


async def _postgres_schema() -> AsyncIterator[str]:
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        reason = f"PostgreSQL not reachable at {_redacted(POSTGRES_URL)}: {error!r}"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"credits_test_{uuid.uuid4().hex[:16]}"
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture(
    name="ledger_url",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def _ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'credits.db'}"
        return
    async for schema in _postgres_schema():
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}search_path={schema}"


@pytest.fixture(name="open_ledger")
async def _open_ledger(ledger_url: str) -> AsyncIterator[OpenLedger]:
    """Open extra ledgers on the test database (more "workers"); all closed at teardown."""
    opened: list[Ledger] = []

    async def open_ledger(**options: object) -> Ledger:
        ledger = await Ledger.open(ledger_url, **options)  # type: ignore[arg-type]
        opened.append(ledger)
        return ledger

    yield open_ledger
    for ledger in opened:
        await ledger.close()


@pytest.fixture(name="ledger")
async def _ledger(open_ledger: OpenLedger) -> Ledger:
    return await open_ledger()
