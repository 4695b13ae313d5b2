"""A background loop that returns the holds of requests whose worker died.

A reservation is normally closed by `Ledger.settle`; if the worker running the request is
killed first, the hold would block the user's credits forever. Each service worker runs
this loop (at startup, then periodically); running it on several workers at once is safe.
"""

from __future__ import annotations

import asyncio
import logging

from credits.ledger import Ledger

__all__ = ["reconcile_periodically"]

logger = logging.getLogger(__name__)


async def reconcile_periodically(ledger: Ledger, interval_s: float = 60.0) -> None:
    """Reconcile expired reservations now and then every ``interval_s`` until cancelled.

    Args:
        ledger: The open ledger.
        interval_s: Seconds between runs; a small fraction of the reservation TTL.

    Example:
        .. code-block:: python

            task = asyncio.create_task(reconcile_periodically(ledger))
            ...
            task.cancel()
    """
    while True:
        try:
            await ledger.reconcile_expired()
        except Exception:
            # A database hiccup must not kill the loop; the next run catches up.
            logger.exception("credit reconciliation failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
