"""Errors raised by the credit ledger.

The service maps `InsufficientCredits` to HTTP 402 before the first byte (contract.md 7)
and `LedgerUnavailable` to 503 with ``Retry-After``; the others are programming or
configuration errors and should surface as 500s or CLI failures. Hierarchy:

* CreditsError
    * InsufficientCredits
    * ReservationNotFound
    * DuplicateRequest
    * UnsupportedDatabaseURL
    * LedgerUnavailable
"""

from __future__ import annotations

__all__ = [
    "CreditsError",
    "DuplicateRequest",
    "InsufficientCredits",
    "LedgerUnavailable",
    "ReservationNotFound",
    "UnsupportedDatabaseURL",
]


class CreditsError(Exception):
    """Base class of every error the ledger raises on purpose."""


class InsufficientCredits(CreditsError):
    """The user's available balance cannot cover the reservation.

    Attributes:
        available: Credits the user could still reserve (balance minus holds, never < 0).
        needed: Credits the reservation asked for.
    """

    def __init__(self, available: int, needed: int) -> None:
        super().__init__(f"insufficient credits: {available} available, {needed} needed")
        self.available = available
        self.needed = needed


class ReservationNotFound(CreditsError):
    """No reservation exists for the request id given to `settle` or `release`."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"no reservation for request {request_id!r}")
        self.request_id = request_id


class DuplicateRequest(CreditsError):
    """A reservation with this request id already exists; request ids must be unique."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"request id {request_id!r} was already reserved")
        self.request_id = request_id


class UnsupportedDatabaseURL(CreditsError, ValueError):
    """The ledger URL names neither `sqlite:///...` nor `postgresql://...`."""


class LedgerUnavailable(CreditsError):
    """The ledger's database cannot be used now: down, unreachable, locked too long, full.

    New member requests are refused with it (503 ``LEDGER_UNAVAILABLE`` and
    ``Retry-After``) because their credits cannot be held; requests already running finish,
    and their settlements wait in the local journal until the database is back.

    Attributes:
        retry_after_s: When a new request may succeed (the next recovery probe).
    """

    status_code = 503
    code = "LEDGER_UNAVAILABLE"

    def __init__(self, detail: str, retry_after_s: int = 2) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.message = (
            "the credit ledger is unavailable, so member requests cannot be started; "
            f"retry in {retry_after_s} s"
        )

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After``, as for every 503 of the service."""
        return {"Retry-After": str(self.retry_after_s)}
