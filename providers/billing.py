"""The seam between completions and the credit ledger.

The gateway reserves before the call and settles after it on every ending; what a credit
costs and where balances live is the ledger's business. ``NoBilling`` is used when credits
are off (and for BYOK requests, which cost nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import Protocol

__all__ = ["Billing", "Ending", "NoBilling", "ObservedBilling", "Settlement"]

Ending = Literal["completed", "upstream_error", "client_disconnect", "cancelled"]


@dataclass(frozen=True, slots=True)
class Settlement:
    """Everything the ledger's usage log records about one finished call."""

    request_id: str
    user_id: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    multiplier: float
    duration_ms: int
    ending: Ending
    byok: bool
    credits: int | None = None
    """The price when already known (an agent turn sums calls at several multipliers);
    otherwise it is computed from the tokens and ``multiplier``."""


class Billing(Protocol):
    """Reserve credits before a call, settle them after it."""

    async def reserve(self, user_id: str, request_id: str, estimate: int) -> None:
        """Hold ``estimate`` credits or raise an error that maps to 402."""
        ...

    def settle(self, settlement: Settlement) -> None:
        """Settle in the background: it must survive the request's own cancellation."""
        ...


class NoBilling:
    """Credits switched off: nothing is reserved or charged."""

    async def reserve(self, user_id: str, request_id: str, estimate: int) -> None:  # noqa: D102
        return None

    def settle(self, settlement: Settlement) -> None:  # noqa: D102
        return None


class ObservedBilling:
    """A ``Billing`` that reports each settlement to ``listener`` before passing it on."""

    __slots__ = ("_inner", "_listener")

    def __init__(self, inner: Billing, listener: Callable[[Settlement], None]) -> None:
        self._inner = inner
        self._listener = listener

    async def reserve(self, user_id: str, request_id: str, estimate: int) -> None:  # noqa: D102
        await self._inner.reserve(user_id, request_id, estimate)

    def settle(self, settlement: Settlement) -> None:  # noqa: D102
        try:
            self._listener(settlement)
        finally:
            self._inner.settle(settlement)

    def __getattr__(self, name: str) -> Any:
        # Transparent for everything else the ledger's billing offers (``drain``, ...).
        return getattr(self._inner, name)
