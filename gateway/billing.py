"""The seam between the gateway and the credit ledger: hold before a call, settle after it.

What a credit costs is ``credits.pricing``'s business and where balances live is the
ledger's (``credits.billing.LedgerBilling`` implements this protocol); the gateway only
holds before the call and hands every ending's priced ``UsageRecord`` over.
``NoBilling`` is used when credits are off.
"""

from __future__ import annotations

from typing import Protocol

from credits.models import UsageRecord

__all__ = ["Billing", "NoBilling"]


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

    def settle(self, record: UsageRecord) -> None:
        """Charge ``record.credits`` in the background.

        It must survive the request's own cancellation, and a second settlement of the
        same request charges nothing.
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

    def settle(self, record: UsageRecord) -> None:  # noqa: D102
        return None

    async def drain(self) -> None:  # noqa: D102
        return None
