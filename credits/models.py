"""Value objects the ledger takes and returns.

They are frozen dataclasses rather than pydantic models: they never cross the wire as-is,
and constructing one sits on the request hot path. Timestamps are UTC-aware datetimes at
this boundary and epoch seconds in the database (portable across SQLite and PostgreSQL).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from enum import StrEnum

__all__ = [
    "Balance",
    "CallUsage",
    "Reservation",
    "UsageRecord",
    "UsageStatus",
    "new_request_id",
]


def new_request_id() -> str:
    """A unique request id of 32 hex digits, in time order (nanoseconds, then random).

    The service's own ids key holds and usage rows; in time order, each new row lands
    at the end of the ledger's indexes, so a batch of them writes a few shared pages
    instead of one random page per request.
    """
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


class UsageStatus(StrEnum):
    """How a request ended, as written to the usage log.

    Every way a model call or an agent turn can end; the gateway records one of these.
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
class CallUsage:
    """The tokens of one model call and the upstream that served it.

    A proxy request is one call; an agent turn is several, possibly on providers with
    different multipliers, and each call is priced at its own (``credits.pricing``).
    """

    provider: str
    """The upstream's configured name (``byok`` for a caller's own)."""
    model: str
    """The model asked of it."""
    prompt_tokens: int
    """Tokens sent."""
    completion_tokens: int
    """Tokens generated."""
    multiplier: float = 0.0
    """The upstream's credit multiplier."""
    credits: int = 0
    """This call's share of the price; set by ``credits.pricing.price``."""

    def at(self, credits: int) -> CallUsage:
        """This call priced at ``credits`` (a new object: records are immutable)."""
        return CallUsage(
            self.provider,
            self.model,
            self.prompt_tokens,
            self.completion_tokens,
            self.multiplier,
            credits,
        )


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One request's usage: what the gateway settles, the ledger logs and metrics count.

    The gateway builds it from the calls a request made (:meth:`of_calls`), pricing fills
    in ``credits`` once (``credits.pricing.price``), and from then on every consumer - the
    ledger, the metrics, the rate limiter's token correction - reads the same numbers.
    Never put secrets here: there is deliberately no field for keys or headers, and
    `prompt_text` is dropped unless the ledger was opened with ``store_prompt_text=True``.
    """

    request_id: str
    """The request's unique id (the same as its reservation's)."""
    user_id: str
    """The member who made the request."""
    provider: str
    """The upstream provider's name (an agent turn: the last call's)."""
    model: str
    """The model id (an agent turn: ``agent:<model>``)."""
    prompt_tokens: int
    """Tokens sent, over every call."""
    completion_tokens: int
    """Tokens generated (what was streamed, however the request ended), over every call."""
    duration_ms: int
    """Wall time of the request."""
    status: str
    """How it ended, usually a `UsageStatus`."""
    credits: int = 0
    """The price; set by ``credits.pricing.price`` (the ledger may charge less: never more
    than the balance)."""
    byok: bool = False
    """The request ran on the user's own key (free)."""
    calls: tuple[CallUsage, ...] = ()
    """The model calls it made (empty when it failed before reaching a model, and in rows
    read back from the log)."""
    prompt_text: str | None = None
    """The prompt, stored only when the operator enabled it."""
    created_at: datetime | None = None
    """When the entry was written; filled in by the ledger."""
    correlation_id: str | None = None
    """The client's ``X-Request-Id``, kept for correlation with its logs; never a key
    (clients reuse them), unlike ``request_id``, which the service makes unique."""
    hold_id: str | None = None
    """The reservation that pays for the request when it is not the request's own: the
    worker's lease it was held from (``credits.leases``); None for a hold of its own."""

    def __post_init__(self) -> None:
        if not self.request_id or not self.user_id:
            raise ValueError("usage needs a request_id and a user_id")
        if min(self.prompt_tokens, self.completion_tokens, self.duration_ms) < 0:
            raise ValueError("token counts and duration must be >= 0")

    @classmethod
    def of_calls(
        cls,
        *,
        request_id: str,
        user_id: str,
        calls: Sequence[CallUsage],
        duration_ms: int,
        status: UsageStatus,
        byok: bool,
        provider: str = "",
        model: str = "",
        correlation_id: str | None = None,
    ) -> UsageRecord:
        """The record of a request that made ``calls``: token sums, the last call's names.

        Args:
            request_id: The request's unique id.
            user_id: Who made it.
            calls: Its model calls, in order.
            duration_ms: Its wall time.
            status: How it ended.
            byok: Whether it ran on the caller's own key.
            provider: The provider to log when no call was made (else the last call's).
            model: The model to log instead of the last call's (e.g. ``agent:<model>``).
            correlation_id: The client's own request id, if it sent one.
        """
        last = calls[-1] if calls else None
        prompt = completion = 0
        for call in calls:
            prompt += call.prompt_tokens
            completion += call.completion_tokens
        return cls(
            request_id,
            user_id,
            last.provider if last is not None else provider,
            model or (last.model if last is not None else ""),
            prompt,
            completion,
            duration_ms,
            status,
            0,
            byok,
            tuple(calls),
            correlation_id=correlation_id,
        )

    def priced(self, calls: Sequence[CallUsage]) -> UsageRecord:
        """This record with each call's price and their sum as ``credits``."""
        # Built field by field: dataclasses.replace introspects the fields on every call
        # (~8 us here), and every request is priced on its hot path.
        return UsageRecord(
            self.request_id,
            self.user_id,
            self.provider,
            self.model,
            self.prompt_tokens,
            self.completion_tokens,
            self.duration_ms,
            self.status,
            sum(c.credits for c in calls),
            self.byok,
            tuple(calls),
            self.prompt_text,
            self.created_at,
            self.correlation_id,
        )


def to_timestamp(moment: datetime) -> float:
    """Convert an aware datetime (naive ones are taken as UTC) to epoch seconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def from_timestamp(seconds: float) -> datetime:
    """Convert epoch seconds from the database to an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)
