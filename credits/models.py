"""Value objects the ledger takes and returns.

They are frozen dataclasses rather than pydantic models: they never cross the wire as-is,
and constructing one sits on the request hot path. Timestamps are UTC-aware datetimes at
this boundary and epoch seconds in the database (portable across SQLite and PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from enum import StrEnum

__all__ = ["Balance", "Reservation", "UsageRecord", "UsageStatus"]


class UsageStatus(StrEnum):
    """How a request ended, as written to the usage log.

    The values are those of ``providers.billing.Ending``, so an ending passes straight
    through to the log.
    """

    COMPLETED = "completed"
    """The upstream finished the answer."""
    UPSTREAM_ERROR = "upstream_error"
    """The upstream failed, before or after producing output."""
    CLIENT_DISCONNECT = "client_disconnect"
    """The client went away mid-stream."""
    CANCELLED = "cancelled"
    """The request was cancelled on our side (shutdown, timeout)."""


@dataclass(frozen=True, slots=True)
class Balance:
    """A user's credits: the total and the part held by reservations in flight."""

    balance: int
    """Credits the user owns."""
    reserved: int
    """Credits held by pending reservations."""

    @property
    def available(self) -> int:
        """Credits a new reservation may take (never negative)."""
        return max(0, self.balance - self.reserved)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A hold on credits taken before a request runs; `Ledger.settle` closes it."""

    request_id: str
    """The unique id of the request the hold pays for."""
    user_id: str
    """Whose credits are held."""
    amount: int
    """Credits held."""
    expires_at: datetime
    """When `Ledger.reconcile_expired` may give the hold back if it was never settled."""


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One request's entry in the usage log.

    Never put secrets here: there is deliberately no field for keys or headers, and
    `prompt_text` is dropped unless the ledger was opened with ``store_prompt_text=True``.
    """

    request_id: str
    """The request's unique id (the same as its reservation's)."""
    user_id: str
    """The member who made the request."""
    provider: str
    """The upstream provider's name."""
    model: str
    """The model id."""
    prompt_tokens: int
    """Tokens sent."""
    completion_tokens: int
    """Tokens generated (what was streamed, however the request ended)."""
    duration_ms: int
    """Wall time of the request."""
    status: str
    """How it ended, usually a `UsageStatus`."""
    credits: int = 0
    """Credits charged; filled in by the ledger, ignored on input."""
    byok: bool = False
    """The request ran on the user's own key (free); set by `Ledger.record_free_usage`."""
    prompt_text: str | None = None
    """The prompt, stored only when the operator enabled it."""
    created_at: datetime | None = None
    """When the entry was written; filled in by the ledger."""

    def __post_init__(self) -> None:
        if not self.request_id or not self.user_id:
            raise ValueError("usage needs a request_id and a user_id")
        if min(self.prompt_tokens, self.completion_tokens, self.duration_ms) < 0:
            raise ValueError("token counts and duration must be >= 0")


def to_timestamp(moment: datetime) -> float:
    """Convert an aware datetime (naive ones are taken as UTC) to epoch seconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def from_timestamp(seconds: float) -> datetime:
    """Convert epoch seconds from the database to an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)
