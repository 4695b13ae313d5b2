"""The seam between the gateway and the credit ledger: hold before a call, settle after it.

What a credit costs is ``credits.pricing``'s business and where balances live is the
ledger's (``credits.billing.LedgerBilling`` implements this protocol); the gateway only
holds before the call and hands every ending's priced ``UsageRecord`` over.
``NoBilling`` is used when credits are off.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Generator
from typing import Any
from typing import Protocol

from credits.models import UsageRecord

__all__ = ["DONE", "Billing", "NoBilling"]


class _Done:
    """An awaitable that is done already: a settlement with nothing to write."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


DONE: Awaitable[None] = _Done()
"""Awaiting it returns at once."""


class Billing(Protocol):
    """Reserve credits before a call, settle them after it."""

    async def reserve(
        self, user_id: str, request_id: str, amount: int, minimum: int | None = None
    ) -> int:
        """Hold up to ``amount`` credits (at least ``minimum``) and return what was held.

        Raises:
            InsufficientCredits: the balance cannot cover ``minimum`` (402).
        """
        ...

    def settle(self, record: UsageRecord) -> Awaitable[None]:
        """Charge ``record.credits``; the awaitable is done once the charge is durable.

        It must survive the request's own cancellation (awaiting is optional and may be
        cancelled), and a second settlement of the same request charges nothing.
        """
        ...

    async def drain(self) -> None:
        """Wait for settlements in flight (graceful shutdown)."""
        ...


class NoBilling:
    """Credits switched off: nothing is reserved or charged."""

    async def reserve(  # noqa: D102
        self, user_id: str, request_id: str, amount: int, minimum: int | None = None
    ) -> int:
        return amount

    def settle(self, record: UsageRecord) -> Awaitable[None]:  # noqa: D102
        return DONE

    async def drain(self) -> None:  # noqa: D102
        return None
