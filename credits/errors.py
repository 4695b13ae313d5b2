"""Errors raised by the credit ledger.

The service maps `InsufficientCredits` to HTTP 402 before the first byte (contract.md 7);
the others are programming or configuration errors and should surface as 500s or CLI
failures. Hierarchy:

* CreditsError
    * InsufficientCredits
    * ReservationNotFound
    * DuplicateRequest
    * UnsupportedDatabaseURL
"""

from __future__ import annotations

__all__ = [
    "CreditsError",
    "DuplicateRequest",
    "InsufficientCredits",
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
