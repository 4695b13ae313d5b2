"""SQLite backend: the zero-configuration ledger, safe for several processes on one host.

Why it looks like this:

* One aiosqlite connection per process, with an `asyncio.Lock` around each transaction,
  because a sqlite3 connection has one transaction at a time and coroutines must not
  interleave statements inside it.
* Writers open with ``BEGIN IMMEDIATE``: the database write lock is taken before the first
  read, so a check-then-reserve cannot race a writer in another process (a deferred
  transaction would read, then fail to upgrade with SQLITE_BUSY instead of waiting).
* WAL lets readers proceed while one process writes; ``busy_timeout`` makes other
  processes wait for the write lock instead of failing. ``synchronous=NORMAL`` is durable
  against process crashes (the case reservations must survive); only an OS crash or power
  cut can lose the last commits, which under-charges rather than double-charges.
* aiosqlite runs statements on its own thread, so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path

import aiosqlite

from credits.backends import Row
from credits.backends import Transaction
from credits.backends import result_rows

__all__ = ["SqliteDatabase"]

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a writer waits for another process's write lock before failing."""

_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=256)
def _translate(sql: str) -> str:
    """Rewrite ``$1`` placeholders as SQLite's numbered ``?1`` (same binding by position)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


async def _enable_wal(conn: aiosqlite.Connection) -> None:
    """Switch the file to WAL (persistent, so usually a no-op), retrying lock conflicts.

    Workers opening a fresh file at the same moment can each hold a shared lock while
    asking for the exclusive one; SQLite then answers "database is locked" at once instead
    of calling the busy handler, to avoid a deadlock. Backing off and retrying resolves it.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            await conn.execute_fetchall("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.01 + random.random() / 20)


class _SqliteTransaction:
    """Statements on the shared connection while the caller holds its lock."""

    for_update = ""  # BEGIN IMMEDIATE already excludes every other writer.

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.execute_fetchall(_translate(sql), args)

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        # execute_fetchall is one thread hop and drains RETURNING statements completely.
        return result_rows(list(await self._conn.execute_fetchall(_translate(sql), args)))


class SqliteDatabase:
    """An SQLite file (or in-memory database) behind the `Database` protocol."""

    dialect = "sqlite"
    id_column = "INTEGER PRIMARY KEY"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str) -> SqliteDatabase:
        """Open (creating if needed) the database file and configure it for the ledger.

        Args:
            path: File path, or ``:memory:`` for a private in-memory database.

        Returns:
            The connected backend.
        """
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; timeout sets busy_timeout
        # before the first statement, which matters for the journal_mode switch below.
        conn = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            await _enable_wal(conn)
            await conn.execute_fetchall("PRAGMA synchronous=NORMAL")
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    @asynccontextmanager
    async def _begin(self, begin: str | None) -> AsyncIterator[Transaction]:
        async with self._lock:
            if self._conn.in_transaction:
                # An earlier transaction's ROLLBACK was cancelled before it was queued.
                await self._rollback_quietly()
            if begin is None:
                yield _SqliteTransaction(self._conn)
                return
            await self._conn.execute_fetchall(begin)
            try:
                yield _SqliteTransaction(self._conn)
                await self._conn.execute_fetchall("COMMIT")
            except BaseException:
                await self._rollback_quietly()
                raise

    async def _rollback_quietly(self) -> None:
        """Roll back, tolerating "no transaction is active".

        If we were cancelled while awaiting COMMIT, the COMMIT is already queued on the
        connection thread and will still run, so by the time this ROLLBACK runs there may be
        nothing left to roll back.
        """
        try:
            await self._conn.execute_fetchall("ROLLBACK")
        except sqlite3.OperationalError:
            if self._conn.in_transaction:
                raise

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a ``BEGIN IMMEDIATE`` write transaction."""
        return self._begin("BEGIN IMMEDIATE")

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """Use the connection for single, autocommitted read statements."""
        return self._begin(None)

    def migration_lock(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a write transaction; BEGIN IMMEDIATE already excludes other migrators."""
        return self._begin("BEGIN IMMEDIATE")

    async def close(self) -> None:
        """Close the connection and stop its thread."""
        async with self._lock:
            await self._conn.close()
