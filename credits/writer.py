"""Settlements: durable in the local journal at once, applied to the ledger in batches.

``submit`` queues a priced record and returns a future that is done once the record is
durable: every record submitted in one turn of the event loop is written to this worker's
journal (``credits.journal``) in one ``write`` on the loop's thread. The proxy awaits it
before the answer's last frame, so an answer a client received is never lost, whatever
happens to the worker or the ledger next. The records are then applied to the ledger in
batches (``Ledger.settle_many``: one transaction for many requests) and forgotten by the
journal.

When the ledger cannot be written (`LedgerUnavailable`: PostgreSQL down, SQLite locked or
full) the records stay in the journal, `LedgerHealth` reports the outage (new member
requests get 503 with ``Retry-After``; ``/readyz`` is not ready), and a probe retries every
``retry_s``; once it answers, everything journaled meanwhile is applied, exactly once per
request (the ledger settles a request once whatever it is told afterwards). Journals left
by dead workers on this host are adopted and applied the same way, at start and every
``sweep_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path

from credits.errors import LedgerUnavailable
from credits.journal import Journal
from credits.journal import decode_record
from credits.journal import encode_record
from credits.journal import new_worker_id
from credits.leases import lease_prefix
from credits.ledger import Ledger
from credits.models import UsageRecord

__all__ = ["LedgerHealth", "SettlementWriter"]

log = logging.getLogger(__name__)

#: Most records applied in one ledger transaction.
_BATCH = 256
#: Records are applied this long after they are journaled, or as soon as this many wait:
#: one ledger commit then serves many requests. A commit writes every page the batch
#: touched (about 150 us of CPU on SQLite whatever the batch's size, against 17 us per
#: record), so a batch of 80 costs a record a fifth of what a batch of 16 did. Holds do
#: not wait for it (they are released in the worker's lease at once, ``credits.leases``);
#: only the balance and usage the console shows lag by up to this long. The cap bounds
#: how long one batch keeps the event loop (~2 ms).
_APPLY_DELAY_S = 0.1
_APPLY_AT = 128


class LedgerHealth:
    """Whether the ledger answers, as the writer and the reservations last found it."""

    def __init__(self, retry_s: float) -> None:
        self.retry_s = retry_s
        self.down_since: float | None = None
        self.reason = ""

    @property
    def up(self) -> bool:
        """Whether the ledger answered last time it was used."""
        return self.down_since is None

    def check(self) -> None:
        """Refuse at once while the ledger is down (no request waits on a dead server).

        Raises:
            LedgerUnavailable: the ledger is down; ``Retry-After`` is the next probe.
        """
        if self.down_since is not None:
            raise LedgerUnavailable(self.reason, self.retry_after_s)

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until the next probe may find it back."""
        return max(1, round(self.retry_s))

    def failed(self, error: LedgerUnavailable) -> None:
        """Record an outage (logged once, when it starts)."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error(
                "credit ledger unavailable (%s): new member requests get 503 "
                "LEDGER_UNAVAILABLE; settlements wait in the journal",
                error.detail,
            )
        self.reason = error.detail

    def answered(self, journaled: int = 0) -> None:
        """Record that the ledger answered (logs the end of an outage)."""
        if self.down_since is not None:
            log.warning(
                "credit ledger available again after %.1f s; applying %d journaled settlements",
                time.monotonic() - self.down_since,
                journaled,
            )
        self.down_since = None
        self.reason = ""


@dataclass(slots=True)
class _Entry:
    record: UsageRecord
    journal_id: int | None
    """None when the journal could not be written: the record is only in memory."""


class SettlementWriter:
    """One worker's settlements: journaled at once, applied to the ledger in batches."""

    def __init__(
        self,
        ledger: Ledger,
        journal_dir: Path | None,
        *,
        store_prompt_text: bool = False,
        retry_s: float = 2.0,
        sweep_s: float = 30.0,
        worker_id: str | None = None,
        on_applied: Callable[[Sequence[UsageRecord]], None] | None = None,
    ) -> None:
        """Prepare the writer; `start` opens the journal.

        Args:
            ledger: Where settlements end up.
            journal_dir: This host's journal directory; None keeps settlements in memory
                only (an in-memory ledger, or tests).
            store_prompt_text: Whether prompts are kept (else not even journaled).
            retry_s: Seconds between probes while the ledger is down.
            sweep_s: Seconds between looks for journals of dead workers.
            worker_id: This worker's name, its journal's (default: a new one).
            on_applied: Told about the settlements of this worker the ledger applied.
        """
        self.ledger = ledger
        self.worker_id = worker_id or new_worker_id()
        self._on_applied = on_applied
        self.health = LedgerHealth(retry_s)
        self._dir = journal_dir
        self._keep_text = store_prompt_text
        self._sweep_s = sweep_s
        self._journal: Journal | None = None
        self._incoming: list[tuple[UsageRecord, asyncio.Future[None]]] = []
        self._applying: list[_Entry] = []
        self._applier: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._applied: list[int] = []
        """Journal ids the ledger has, deleted with the next append."""
        self._watcher: asyncio.Task[None] | None = None
        self._journal_failed = False

    @property
    def backlog(self) -> int:
        """Settlements not applied to the ledger yet (waiting or journaled)."""
        return len(self._incoming) + len(self._applying)

    async def start(self) -> None:
        """Open this worker's journal and start watching (outages, dead workers' journals)."""
        if self._dir is not None:
            self._journal = await asyncio.to_thread(Journal.create, self._dir, self.worker_id)
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def submit(self, record: UsageRecord) -> asyncio.Future[None]:
        """Queue ``record``; the future is done once it is durable (it never fails)."""
        loop = asyncio.get_running_loop()
        durable: asyncio.Future[None] = loop.create_future()
        if not self._keep_text and record.prompt_text is not None:
            record = replace(record, prompt_text=None)
        self._incoming.append((record, durable))
        if len(self._incoming) == 1:
            loop.call_soon(self._commit)
        return durable

    def _commit(self) -> None:
        """Journal what came in this turn of the loop, in one transaction, then apply it."""
        batch, self._incoming = self._incoming, []
        if not batch:
            return
        ids: Sequence[int | None] = [None] * len(batch)
        if self._journal is not None:
            forget, self._applied = self._applied, []
            try:
                ids = self._journal.append([encode_record(r) for r, _ in batch], forget)
                self._journal_failed = False
            except OSError as error:
                if not self._journal_failed:  # once per failure streak, not per request
                    log.error(
                        "the settlement journal cannot be written (%s): in memory only", error
                    )
                self._journal_failed = True
        self._applying.extend(_Entry(r, i) for (r, _), i in zip(batch, ids, strict=True))
        for _, durable in batch:
            if not durable.done():
                durable.set_result(None)
        if not self.health.up:
            return
        if len(self._applying) >= _APPLY_AT:
            self._kick()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(_APPLY_DELAY_S, self._kick)

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._applier is None or self._applier.done():
            self._applier = asyncio.get_running_loop().create_task(self._apply())

    async def _apply(self) -> None:
        """Apply what is waiting, a batch per transaction, until nothing is or the ledger fails."""
        while self._applying and self.health.up:
            batch = self._applying[:_BATCH]
            try:
                outcomes = await self.ledger.settle_many([entry.record for entry in batch])
            except LedgerUnavailable as error:
                self.health.failed(error)
                return
            except Exception:
                log.exception("applying %d settlements failed; retrying later", len(batch))
                return
            del self._applying[: len(batch)]
            for entry, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    log.error("settlement of %s refused: %s", entry.record.request_id, outcome)
            if self._on_applied is not None:
                self._on_applied([entry.record for entry in batch])
            self._applied.extend(e.journal_id for e in batch if e.journal_id is not None)

    async def _watch(self) -> None:
        """Probe while the ledger is down; apply journals of dead workers now and then."""
        next_sweep = 0.0
        while True:
            if not self.health.up:
                try:
                    await self.ledger.ping()
                except LedgerUnavailable as error:
                    self.health.failed(error)
                else:
                    self.health.answered(self.backlog)
            if self.health.up:
                if self._applying:
                    self._kick()
                if time.monotonic() >= next_sweep and self._dir is not None:
                    next_sweep = time.monotonic() + self._sweep_s
                    await self._adopt_orphans()
            await asyncio.sleep(self.health.retry_s)

    async def _adopt_orphans(self) -> None:
        """Apply the journals of workers that died (this host), then remove them."""
        assert self._dir is not None
        for journal in Journal.orphans(self._dir):
            applied = released = 0
            try:
                lines = journal.pending()
                while batch := list(itertools.islice(lines, _BATCH)):
                    await self.ledger.settle_many([decode_record(line) for line in batch])
                    applied += len(batch)
                journal.forget_all()
                # Then what its leases still set aside returns (they would expire anyway).
                released = await self.ledger.release_prefixed(lease_prefix(journal.name))
            except LedgerUnavailable as error:
                self.health.failed(error)
                return
            except Exception:
                log.exception("could not apply the orphaned journal of %s", journal.name)
                continue
            finally:
                if applied:
                    log.warning(
                        "applied %d settlements left by a dead worker (%s)",
                        applied,
                        journal.name,
                    )
            if released:
                log.warning("released %d leases of a dead worker (%s)", released, journal.name)

    async def drain(self) -> None:
        """Journal and apply everything submitted so far; stops early while the ledger is down."""
        self._commit()
        while self._applying and self.health.up:
            before = len(self._applying)
            self._kick()
            assert self._applier is not None
            await asyncio.gather(self._applier, return_exceptions=True)
            if len(self._applying) >= before:
                break  # no progress: the watcher retries
        if self._journal is not None:
            forget, self._applied = self._applied, []
            self._journal.forget(forget)

    async def close(self) -> None:
        """Drain, stop watching, close the journal (what is left in it waits for a sweep)."""
        await self.drain()
        if self._timer is not None:
            self._timer.cancel()
        for task in (self._watcher, self._applier):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._applying and self._journal is None:
            log.error("%d settlements were never applied (no journal)", len(self._applying))
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._dir is not None:
            with contextlib.suppress(OSError):  # not empty: other workers' or unapplied
                self._dir.rmdir()
