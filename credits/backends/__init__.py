"""The seam between the ledger's SQL and the two database drivers.

The ledger writes every statement once, in PostgreSQL's ``$1`` placeholder style, against
the small `Database`/`Transaction` protocols below. A backend only adapts what really
differs: placeholders, how a write transaction takes its lock, row locking syntax, the
auto-increment column type and connection handling. Anything smarter in a backend would
split the money logic into two code paths, which is exactly what this layer prevents.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from typing import Protocol

from credits.errors import UnsupportedDatabaseURL

__all__ = ["Database", "Row", "Transaction", "open_database", "result_rows"]

Row = tuple[Any, ...]
"""A result row, as a plain tuple in the order of the SELECT/RETURNING list."""


class Transaction(Protocol):
    """Statements run inside one transaction (or one connection, for reads)."""

    for_update: str
    """Suffix that row-locks a SELECT (``" FOR UPDATE"``; empty where writers serialise)."""

    any_text: str
    """``<column> {any_text}`` matches a text column against the list bound to ``$1``
    (`text_list`): one statement for a whole batch instead of one per key."""

    def text_list(self, keys: Sequence[str]) -> object:
        """``keys`` as the one argument ``any_text`` expects."""

    async def execute(self, sql: str, *args: object) -> None:
        """Run a statement that returns no rows."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run a statement that returns no rows once per row of arguments."""

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        """Run a statement and return its first row, or None."""

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        """Run a statement and return all its rows."""


class Database(Protocol):
    """A connection pool that hands out transactions."""

    dialect: str
    """``"sqlite"`` or ``"postgresql"``."""
    id_column: str
    """DDL for an auto-increment integer primary key."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a write transaction, committed on exit and rolled back on any exception.

        Concurrent write transactions that touch the same user are serialised, so a
        check-then-update inside one is atomic.
        """

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a connection for read-only statements, each atomic on its own."""

    def migration_lock(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a write transaction that also excludes every other migrating process."""

    async def close(self) -> None:
        """Close all connections."""


async def open_database(
    url: str, *, max_connections: int = 10, lock_timeout_s: float = 5.0
) -> Database:
    """Connect to the database a ledger URL names.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:`` or
            ``postgresql://user@host:port/db`` (``postgres://`` too; extra query parameters
            such as ``?search_path=credits`` become PostgreSQL session settings).
        max_connections: PostgreSQL pool size per process (SQLite uses one connection).
        lock_timeout_s: The longest a statement waits for a lock or a connection before
            the ledger counts as unavailable (`LedgerUnavailable`).

    Returns:
        The connected backend.

    Raises:
        UnsupportedDatabaseURL: The scheme is neither sqlite nor postgresql.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "sqlite":
        from credits.backends.sqlite import SqliteDatabase

        return await SqliteDatabase.connect(_sqlite_path(rest), lock_timeout_s=lock_timeout_s)
    if sep and scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        from credits.backends.postgres import PostgresDatabase

        return await PostgresDatabase.connect(
            "postgresql://" + rest, max_size=max_connections, timeout_s=lock_timeout_s
        )
    raise UnsupportedDatabaseURL(
        "ledger URL must start with sqlite:/// or postgresql:// "
        f"(got scheme {scheme!r})"  # never echo the whole URL: it may hold a password
    )


def _sqlite_path(rest: str) -> str:
    """Turn the part after ``sqlite://`` into a file path (SQLAlchemy's convention).

    ``sqlite:///a.db`` is relative, ``sqlite:////srv/a.db`` absolute, and ``sqlite://`` or
    ``sqlite:///:memory:`` an in-memory database.
    """
    if rest in ("", "/"):
        return ":memory:"
    if not rest.startswith("/"):
        raise UnsupportedDatabaseURL("sqlite URLs have three slashes: sqlite:///path/to/file.db")
    return rest[1:]


def result_rows(rows: Sequence[Sequence[Any]]) -> list[Row]:
    """Copy driver rows into plain tuples so callers see one row type."""
    return [tuple(row) for row in rows]
