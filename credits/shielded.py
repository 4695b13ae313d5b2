"""Writes that finish even when the task awaiting them is cancelled.

Settlement runs in the ``finally`` blocks of requests being torn down (client gone,
shutdown), where a second cancellation can arrive at any await. If that interrupted a
settle half-way, the charge for what was generated would be lost. So each ledger write
runs in its own task behind `asyncio.shield`: the caller may stop waiting, the write does
not stop, `ShieldedWrites.wait` lets shutdown wait for it, and a failure that nobody is left
to see is logged rather than dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any
from typing import TypeVar

__all__ = ["ShieldedWrites"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


class ShieldedWrites:
    """Tracks the shielded writes of one ledger."""

    def __init__(self) -> None:
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` to completion regardless of the caller's cancellation.

        Args:
            coro: The write.

        Returns:
            Its result, if the caller is still waiting.
        """
        task = asyncio.ensure_future(coro)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_log_orphan_failure)
            raise

    async def wait(self) -> None:
        """Wait until every write started so far has finished (errors are not raised)."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)


def _log_orphan_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("credit ledger write failed after its caller was cancelled", exc_info=error)
