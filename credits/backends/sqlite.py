"""SQLite backend: the zero-configuration ledger, safe for several processes on one host.

Why it looks like this:

* Statements run on the event loop's thread, through Python's own ``sqlite3``: a small
  transaction in WAL mode with ``synchronous=NORMAL`` writes to the OS page cache and
  takes tens of microseconds, where a hop to a thread per statement (aiosqlite) cost more
  than the statement and made credits halve the service's throughput (issue 15). Only
  waiting is moved off the loop: the connection has a zero busy timeout, and a statement
  that finds another process holding the write lock is retried on a thread that may wait
  up to ``lock_timeout_s`` for it.
* One connection per process, with an `asyncio.Lock` around each transaction, because a
  sqlite3 connection has one transaction at a time and a transaction that waits on a
  thread must not let another coroutine's statements in.
* Writers open with ``BEGIN IMMEDIATE``: the database write lock is taken before the first
  read, so a check-then-reserve cannot race a writer in another process.
* ``synchronous=NORMAL`` is durable against process crashes (the case reservations must
  survive); only an OS crash or power cut can lose the last commits. Checkpoints (which
  fsync) run on a thread with their own connection, never on the loop.
* A lock not obtained within ``lock_timeout_s``, a full disk or a file that cannot be read
  or written raise `LedgerUnavailable` (503 for new requests; settlements wait in the
  journal, ``credits.journal``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path

import orjson

from credits.backends import Row
from credits.backends import Transaction
from credits.errors import LedgerUnavailable

__all__ = ["SqliteDatabase", "is_unavailable"]

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 5.0
"""How long a statement waits (on a thread) for another process's write lock."""
CHECKPOINT_INTERVAL_S = 1.0
"""How often the WAL is copied back into the database file, off the loop."""

_PLACEHOLDER = re.compile(r"\$(\d+)")
#: SQLite result codes (primary, ``code & 0xff``) that mean "the database cannot be used
#: now", as opposed to a wrong statement: busy, locked, out of memory, read-only, I/O
#: error, corrupt, full, cannot open, protocol, not a database.
_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 11, 13, 14, 15, 26})
_BUSY = frozenset({5, 6})


@lru_cache(maxsize=256)
def _translate(sql: str) -> str:
    """Rewrite ``$1`` placeholders as SQLite's numbered ``?1`` (same binding by position)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def _code(error: sqlite3.Error) -> int:
    return int(getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be used now (not a wrong statement)."""
    if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError):
        return False
    if isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError):
        code = _code(error)
        return code in _UNAVAILABLE or (code == 0 and "locked" in str(error))
    return False


def _unavailable(error: sqlite3.Error) -> LedgerUnavailable:
    return LedgerUnavailable(f"the SQLite ledger cannot be used: {error}")


class _Statements:
    """Statements on the shared connection while the caller holds its lock."""

    for_update = ""  # BEGIN IMMEDIATE already excludes every other writer.
    any_text = "IN (SELECT value FROM json_each($1))"

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def text_list(self, keys: Sequence[str]) -> object:
        return orjson.dumps(list(keys)).decode()

    async def execute(self, sql: str, *args: object) -> None:
        await self._db._run(_translate(sql), args, many=False)

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            await self._db._run(_translate(sql), rows, many=True)

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        rows = await self._db._run(_translate(sql), args, many=False)
        return rows[0] if rows else None

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return await self._db._run(_translate(sql), args, many=False)


class SqliteDatabase:
    """An SQLite file (or in-memory database) behind the `Database` protocol."""

    dialect = "sqlite"
    id_column = "INTEGER PRIMARY KEY"

    def __init__(
        self, conn: sqlite3.Connection, path: str, lock_timeout_s: float = LOCK_TIMEOUT_SECONDS
    ) -> None:
        self._conn = conn
        self._path = path
        self._lock = asyncio.Lock()
        self._lock_timeout_ms = max(0, int(lock_timeout_s * 1000))
        self._statements = _Statements(self)
        self._wrote = False
        self._checkpointer: asyncio.Task[None] | None = None
        if path != ":memory:":
            self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoints())

    @classmethod
    async def connect(
        cls, path: str, *, lock_timeout_s: float = LOCK_TIMEOUT_SECONDS
    ) -> SqliteDatabase:
        """Open (creating if needed) the database file and configure it for the ledger.

        Args:
            path: File path, or ``:memory:`` for a private in-memory database.
            lock_timeout_s: How long a statement may wait for another process's lock
                before the ledger counts as unavailable.

        Returns:
            The connected backend.
        """
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await asyncio.to_thread(_open, path, lock_timeout_s)
        return cls(conn, path, lock_timeout_s)

    async def _run(self, sql: str, args: Sequence[object], *, many: bool) -> list[Row]:
        """One statement on the loop; on a lock held elsewhere, again on a thread that waits."""
        self._wrote = True
        try:
            return _execute(self._conn, sql, args, many)
        except sqlite3.Error as error:
            if not is_unavailable(error):
                raise
            if _code(error) not in _BUSY and "locked" not in str(error):
                raise _unavailable(error) from error
        waiting = asyncio.ensure_future(asyncio.to_thread(self._waiting, sql, args, many))
        try:
            return await asyncio.shield(waiting)
        except asyncio.CancelledError:
            await asyncio.wait([waiting])  # the connection is the thread's until it is done
            raise
        except sqlite3.Error as error:
            if is_unavailable(error):
                raise _unavailable(error) from error
            raise

    def _waiting(self, sql: str, args: Sequence[object], many: bool) -> list[Row]:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={self._lock_timeout_ms}")
        try:
            return _execute(conn, sql, args, many)
        finally:
            conn.execute("PRAGMA busy_timeout=0")

    @asynccontextmanager
    async def _begin(self, begin: str | None) -> AsyncIterator[Transaction]:
        async with self._lock:
            if self._conn.in_transaction:
                self._rollback_quietly()  # an earlier transaction ended without one
            if begin is None:
                yield self._statements
                return
            await self._run(begin, (), many=False)
            try:
                yield self._statements
                await self._run("COMMIT", (), many=False)
            except BaseException:
                self._rollback_quietly()
                raise

    def _rollback_quietly(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a ``BEGIN IMMEDIATE`` write transaction."""
        return self._begin("BEGIN IMMEDIATE")

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """Use the connection for single, autocommitted read statements."""
        return self._begin(None)

    def migration_lock(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a write transaction; BEGIN IMMEDIATE already excludes other migrators."""
        return self._begin("BEGIN IMMEDIATE")

    async def _checkpoints(self) -> None:
        """Copy the WAL back into the file now and then, on a thread with its own connection.

        The loop's connection never checkpoints (``wal_autocheckpoint=0``): a checkpoint
        fsyncs, which can take milliseconds. PASSIVE never waits for readers or writers.
        """
        checkpointer: sqlite3.Connection | None = None
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_INTERVAL_S)
                if not self._wrote:
                    continue
                self._wrote = False
                try:
                    if checkpointer is None:
                        checkpointer = await asyncio.to_thread(_open_checkpointer, self._path)
                    await asyncio.to_thread(checkpointer.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as error:
                    log.debug("WAL checkpoint skipped: %s", error)
        finally:
            if checkpointer is not None:
                checkpointer.close()

    async def close(self) -> None:
        """Stop checkpointing and close the connection."""
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
        async with self._lock:
            self._conn.close()


def _execute(conn: sqlite3.Connection, sql: str, args: Sequence[object], many: bool) -> list[Row]:
    if many:
        conn.executemany(sql, args)  # type: ignore[arg-type]
        return []
    # fetchall drains RETURNING statements completely, so they have finished on return.
    return conn.execute(sql, args).fetchall()


def _open(path: str, lock_timeout_s: float) -> sqlite3.Connection:
    """Connect and switch to WAL, retrying the lock conflicts of workers starting together.

    Workers opening a fresh file at the same moment can each hold a shared lock while
    asking for the exclusive one; SQLite then answers "database is locked" at once instead
    of calling the busy handler, to avoid a deadlock. Backing off and retrying resolves it.
    """
    # isolation_level=None: we issue BEGIN/COMMIT ourselves.
    conn = sqlite3.connect(
        path, timeout=max(lock_timeout_s, 1.0), isolation_level=None, check_same_thread=False
    )
    try:
        deadline = time.monotonic() + max(lock_timeout_s, 30.0)
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(0.01 + random.random() / 20)
        conn.execute("PRAGMA synchronous=NORMAL")
        if path != ":memory:":
            conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA busy_timeout=0")
    except BaseException:
        conn.close()
        raise
    return conn


def _open_checkpointer(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=1.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=1000")
    return conn
