"""The settlement journal: local append-only files where every settlement is durable first.

A settlement is written here before the answer's last frame leaves (one ``write`` per turn
of the event loop, on the loop's thread), and forgotten once the ledger has applied it. So
a settlement survives what the ledger's database may not be there for - PostgreSQL
stopped, the SQLite ledger locked or its disk full - and the worker's own death (SIGKILL):
the lines stay in the file, and the next worker to look applies them. Applying twice is
harmless: the ledger settles a request once, whatever it is told afterwards.

Why files and not a database: a record is appended once and read back only after a crash,
so the journal needs no index, no transaction and no delete - one ``write`` of the turn's
lines costs a few microseconds where an SQLite commit cost tens (issue 15). Records go to
numbered segments, ``<dir>/<worker>.<n>.jsonl``, one JSON line each; a segment whose
records were all applied is unlinked once the worker has moved on to the next one. A
``write`` that returned is in the OS page cache: durable against a crash of the process,
not of the machine (as SQLite with ``synchronous=NORMAL``). A line cut short (the disk
filled mid-write) is cut off the file at once, and skipped if it is left anyway.

Each worker writes its own files and holds an exclusive ``flock`` on ``<dir>/<worker>.lock``
for as long as it lives: files whose lock can be taken belong to a dead worker, and any
worker on the host may then adopt them (`orphans`).
"""

from __future__ import annotations

import bisect
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

__all__ = ["Journal", "decode_record", "encode_record", "new_worker_id"]

log = logging.getLogger(__name__)

#: Records per segment before the next one starts (a few hundred KiB of lines).
SEGMENT_RECORDS = 2048
#: The suffix of the single SQLite file a worker of the previous version journaled to.
_LEGACY = ".db"

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
    "hold_id",
)


def encode_record(record: UsageRecord) -> bytes:
    """The fields the ledger stores, as one JSON line (the per-call breakdown is not stored)."""
    return orjson.dumps({name: getattr(record, name) for name in _FIELDS}) + b"\n"


def decode_record(data: bytes) -> UsageRecord:
    """The record `encode_record` wrote."""
    values: dict[str, Any] = orjson.loads(data)
    return UsageRecord(**{name: values[name] for name in _FIELDS if name in values})


def new_worker_id() -> str:
    """A name for this worker, unique among live ones: its process id and a random part."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


class _Segment:
    """One file of the journal and how many of its records the ledger has not applied."""

    __slots__ = ("first_id", "path", "records", "size", "unapplied")

    def __init__(self, path: Path, first_id: int) -> None:
        self.path = path
        self.first_id = first_id
        self.records = 0
        self.unapplied = 0
        self.size = 0
        """Bytes this worker wrote to it (a failed write is cut back to here)."""


class Journal:
    """One worker's journal: append, forget what was applied, read back what is left."""

    def __init__(self, directory: Path, name: str, lock_fd: int) -> None:
        self.directory = directory
        self.name = name
        """The worker's name (`new_worker_id`): its adopter reads the worker's leases by it."""
        self._lock_fd: int | None = lock_fd
        self._segments: list[_Segment] = []
        self._starts: list[int] = []  # first ids of the segments, for bisect
        self._fd: int | None = None
        self._next_id = 1
        self._numbered = 0  # the last segment's number
        self._torn = False

    @classmethod
    def create(cls, directory: Path, name: str | None = None) -> Journal:
        """Start this worker's own journal in ``directory`` (created if needed).

        Args:
            directory: This host's journal directory.
            name: The worker's name, unique among live workers (default: a new one).
        """
        name = name or new_worker_id()
        for attempt in range(3):
            directory.mkdir(parents=True, exist_ok=True)
            try:
                lock_fd = os.open(directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                break
            except FileNotFoundError:  # a worker closing removed the empty directory
                if attempt == 2:
                    raise
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(directory, name, lock_fd)

    @classmethod
    def orphans(cls, directory: Path) -> Iterator[Journal]:
        """The journals in ``directory`` whose worker is gone, each adopted while yielded.

        A journal whose lock another process holds is skipped (its worker is alive).
        Its files are removed when it is closed after `forget_all` (all applied).
        """
        if not directory.is_dir():
            return
        for lock in sorted(directory.glob("*.lock")):
            try:
                lock_fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue  # adopted and removed by another worker meanwhile
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock_fd)
                continue
            journal = cls(directory, lock.stem, lock_fd)
            journal._find_segments()
            try:
                yield journal
            finally:
                journal.close()

    def append(self, records: Sequence[bytes], forget: Sequence[int] = ()) -> list[int]:
        """Write encoded records (`encode_record`) in one ``write``; their ids once durable.

        Args:
            records: The encoded settlements, each one line.
            forget: Ids the ledger has applied since (`forget`).

        Raises:
            OSError: The file cannot be written (e.g. the disk is full); nothing was added.
        """
        self.forget(forget)
        if not records:
            return []
        segment = self._writable_segment()
        assert self._fd is not None
        data = b"".join(records)
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a regular file writes all at once, but may not
                written += os.write(self._fd, data[written:])
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, segment.size)  # no cut-off line before the next ones
            self._torn = True  # and the next records go to a new segment all the same
            raise
        segment.size += len(data)
        first = self._next_id
        self._next_id += len(records)
        segment.records += len(records)
        segment.unapplied += len(records)
        return list(range(first, first + len(records)))

    def forget(self, ids: Iterable[int]) -> None:
        """Forget records the ledger has applied; a finished segment's file goes."""
        for record_id in ids:
            index = bisect.bisect_right(self._starts, record_id) - 1
            if index >= 0:
                self._segments[index].unapplied -= 1
        while len(self._segments) > 1 and self._segments[0].unapplied <= 0:
            self._drop(0)

    def pending(self) -> Iterator[bytes]:
        """Every record not known to be applied, oldest first (an adopted journal's)."""
        for segment in self._segments:
            if segment.path.suffix == _LEGACY:
                yield from _legacy_records(segment.path)
                continue
            try:
                data = segment.path.read_bytes()
            except FileNotFoundError:
                continue
            lines = data.split(b"\n")
            if lines[-1]:
                log.warning("%s ends in a cut-off record: skipped", segment.path.name)
            for line in lines[:-1]:
                if line:
                    yield line

    def count(self) -> int:
        """How many records wait to be applied."""
        return sum(segment.unapplied for segment in self._segments)

    def forget_all(self) -> None:
        """Every record was applied (an adopted journal): closing removes the files."""
        for segment in self._segments:
            segment.unapplied = 0

    def close(self) -> None:
        """Close the files; with nothing left to apply they are removed (with the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        empty = self.count() <= 0
        if empty:
            while self._segments:
                self._drop(0)
        if self._lock_fd is not None:
            if empty:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / f"{self.name}.lock").unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def _writable_segment(self) -> _Segment:
        segment = self._segments[-1] if self._segments else None
        if segment is None or self._torn or segment.records >= SEGMENT_RECORDS:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._numbered += 1
            path = self.directory / f"{self.name}.{self._numbered}.jsonl"
            segment = _Segment(path, self._next_id)
            self._segments.append(segment)
            self._starts.append(segment.first_id)
            self._torn = False
            while len(self._segments) > 1 and self._segments[0].unapplied <= 0:
                self._drop(0)
        if self._fd is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(segment.path, flags, 0o600)
        return segment

    def _find_segments(self) -> None:
        """The segments an adopted journal's worker left, in order; all counted unapplied.

        A worker of the version before these files (one SQLite file, ``<name>.db``) is
        adopted too: its file comes first.
        """
        found = []
        legacy = self.directory / f"{self.name}{_LEGACY}"
        if legacy.exists():
            found.append((0, legacy))
        for path in self.directory.glob(f"{self.name}.*.jsonl"):
            with contextlib.suppress(ValueError, IndexError):
                found.append((int(path.suffixes[-2][1:]), path))
        for _, path in sorted(found):
            segment = _Segment(path, self._next_id)
            segment.records = segment.unapplied = 1  # unknown until read; not empty
            self._segments.append(segment)
            self._starts.append(segment.first_id)
            self._next_id += 1

    def _drop(self, index: int) -> None:
        segment = self._segments.pop(index)
        self._starts.pop(index)
        suffixes = ("", "-wal", "-shm") if segment.path.suffix == _LEGACY else ("",)
        for suffix in suffixes:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{segment.path}{suffix}")


def _legacy_records(path: Path) -> Iterator[bytes]:
    """The records of a journal the previous version wrote (an SQLite file)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as error:
        log.error("cannot read the old journal %s: %s", path.name, error)
        return
    try:
        rows = conn.execute("SELECT record FROM settlements ORDER BY id").fetchall()
    except sqlite3.Error as error:
        log.error("cannot read the old journal %s: %s", path.name, error)
        rows = []
    finally:
        conn.close()
    for (record,) in rows:
        yield bytes(record)
