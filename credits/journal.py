"""The settlement journal: a local SQLite file where every settlement is durable first.

A settlement is written here before the answer's last frame leaves (one group commit per
turn of the event loop, on the loop's thread: a few microseconds a record), and deleted
once the ledger has applied it (with the next group commit). So a settlement survives
what the ledger's database may not be there for - PostgreSQL stopped, the SQLite ledger
locked or its disk full - and the worker's own death (SIGKILL): the rows stay in the
file, and the next worker to look applies them. Applying twice is harmless: the ledger
settles a request once, whatever it is told afterwards.

Each worker writes its own file, ``<dir>/<pid>-<random>.db``, so workers never wait for
one another's locks, and holds an exclusive ``flock`` on ``<same>.lock`` for as long as it
lives: a file whose lock can be taken belongs to a dead worker, and any worker on the host
may then adopt it (`orphans`). The file runs in exclusive locking mode (no lock call per
transaction) with ``synchronous=NORMAL`` in WAL: durable against a crash of the process,
not of the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import sqlite3
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from credits.models import UsageRecord

__all__ = ["Journal", "decode_record", "encode_record"]

log = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS settlements (id INTEGER PRIMARY KEY, record BLOB NOT NULL)"
_FIELDS = (
    "request_id",
    "user_id",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "duration_ms",
    "status",
    "credits",
    "byok",
    "prompt_text",
    "correlation_id",
)


def encode_record(record: UsageRecord) -> bytes:
    """The fields the ledger stores, as JSON (the per-call breakdown is not stored)."""
    return orjson.dumps({name: getattr(record, name) for name in _FIELDS})


def decode_record(data: bytes) -> UsageRecord:
    """The record `encode_record` wrote."""
    values: dict[str, Any] = orjson.loads(data)
    return UsageRecord(**{name: values[name] for name in _FIELDS if name in values})


class Journal:
    """One worker's journal file: append, delete, and read back what is left."""

    def __init__(self, path: Path, conn: sqlite3.Connection, lock_fd: int | None) -> None:
        self.path = path
        self._conn = conn
        self._lock_fd = lock_fd

    @classmethod
    def create(cls, directory: Path) -> Journal:
        """Start this worker's own journal file in ``directory`` (created if needed)."""
        path = directory / f"{os.getpid()}-{secrets.token_hex(4)}.db"
        for attempt in range(3):
            directory.mkdir(parents=True, exist_ok=True)
            try:
                lock_fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
                break
            except FileNotFoundError:  # a worker closing removed the empty directory
                if attempt == 2:
                    raise
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return cls(path, _connect(path), lock_fd)
        except BaseException:
            os.close(lock_fd)
            raise

    @classmethod
    def orphans(cls, directory: Path) -> Iterator[Journal]:
        """The journals in ``directory`` whose worker is gone, each adopted while yielded.

        A journal whose lock another process holds is skipped (its worker is alive).
        """
        if not directory.is_dir():
            return
        for lock in sorted(directory.glob("*.lock")):
            path = lock.with_suffix(".db")
            try:
                lock_fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue  # adopted and removed by another worker meanwhile
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock_fd)
                continue
            if not path.exists():  # an empty journal already removed by its adopter
                _remove_lock(lock, lock_fd)
                continue
            journal = cls(path, _connect(path), lock_fd)
            try:
                yield journal
            finally:
                journal.close()

    def append(self, records: Sequence[bytes], forget: Sequence[int] = ()) -> list[int]:
        """Write encoded records in one transaction; their ids once durable.

        Args:
            records: The encoded settlements.
            forget: Ids the ledger has applied since, deleted in the same transaction
                (one commit instead of two; deleting late only means applying again).

        Raises:
            sqlite3.Error: The file cannot be written (e.g. the disk is full).
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if forget:
                conn.executemany("DELETE FROM settlements WHERE id = ?", [(i,) for i in forget])
            insert = "INSERT INTO settlements (record) VALUES (?)"
            ids = [int(conn.execute(insert, (data,)).lastrowid or 0) for data in records]
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return ids

    def delete(self, ids: Iterable[int]) -> None:
        """Forget records the ledger has applied (a failure only means applying again)."""
        rows = [(i,) for i in ids]
        if not rows:
            return
        try:
            self._conn.executemany("DELETE FROM settlements WHERE id = ?", rows)
        except sqlite3.Error as error:
            log.warning("could not delete applied settlements from the journal: %s", error)

    def pending(self, limit: int = 500) -> list[tuple[int, bytes]]:
        """The oldest records not deleted yet."""
        rows = self._conn.execute(
            "SELECT id, record FROM settlements ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [(int(i), bytes(data)) for i, data in rows]

    def count(self) -> int:
        """How many records wait to be applied."""
        (count,) = self._conn.execute("SELECT COUNT(*) FROM settlements").fetchone()
        return int(count)

    def close(self, *, remove_if_empty: bool = True) -> None:
        """Close the file; an empty one is removed (with its lock) so the directory stays small."""
        empty = False
        with contextlib.suppress(sqlite3.Error):
            empty = remove_if_empty and self.count() == 0
        self._conn.close()
        if empty:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
        if self._lock_fd is not None:
            if empty:
                _remove_lock(_lock_path(self.path), self._lock_fd)
            else:
                os.close(self._lock_fd)
            self._lock_fd = None


def _lock_path(path: Path) -> Path:
    return path.with_suffix(".lock")


def _remove_lock(lock: Path, lock_fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        lock.unlink()
    os.close(lock_fd)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # Only this worker opens the file while it lives: no lock call per transaction.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn
