"""Wire models of the operator console's data endpoints: queries, bodies and answers.

The handlers validate queries and bodies with these models (a bad value is a 400 from the
error table) and the OpenAPI document describes the answers with them, so description and
behaviour cannot drift apart (``tests/blueprints/test_console_api.py`` checks real answers).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator

from blueprints.responses import UsageEntry

__all__ = [
    "AccountQuery",
    "AccountResponse",
    "CancelResponse",
    "ConsoleMe",
    "ConsoleSnapshot",
    "GrantRequest",
    "GrantResponse",
    "ProviderReadiness",
    "StreamsResponse",
    "TopUsersQuery",
    "TopUsersResponse",
]

_MAX_AMOUNT = 10**12  # far above any plan, far below the BIGINT columns' range


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TopUsersQuery(_Query):
    """``GET /api/console/users``: the window, what to rank by, how many."""

    window_s: int = Field(default=3600, ge=60, le=90 * 86400)
    """The last this many seconds."""
    by: Literal["tokens", "credits"] = "tokens"
    limit: int = Field(default=20, ge=1, le=100)


class AccountQuery(_Query):
    """``GET /api/console/account``: whose account, and how many rows of each list."""

    user: str = Field(min_length=1, max_length=256)
    limit: int = Field(default=20, ge=1, le=100)


class GrantRequest(BaseModel):
    """Credits to add (negative: to remove; the balance stops at 0), with a note."""

    model_config = ConfigDict(extra="ignore")

    user: str = Field(min_length=1, max_length=256)
    amount: int = Field(ge=-_MAX_AMOUNT, le=_MAX_AMOUNT)
    note: str | None = Field(default=None, max_length=500)

    @field_validator("amount")
    @classmethod
    def _not_zero(cls, amount: int) -> int:
        if amount == 0:
            raise ValueError("amount must not be 0")
        return amount


class ConsoleMe(BaseModel):
    """The admin the token names, and how the console is set up on this worker."""

    user: str
    roles: list[str]
    worker: int
    credits: bool
    push_interval_s: float
    window_s: float


class ProviderReadiness(BaseModel):
    """The provider's cached readiness probe (``/readyz``): up or down, and why."""

    state: Literal["up", "down"]
    detail: str | None


class ProviderRow(BaseModel):
    """One provider of the pool, live."""

    name: str
    kind: str
    models: list[str]
    slots_in_use: int
    slots_total: int
    queue_length: int
    busy: bool
    readiness: ProviderReadiness | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    streams: int
    """Streamed calls that got their first token in the window."""
    errors: int
    error_rate: float | None


class StreamRow(BaseModel):
    """A stream in flight on this worker."""

    id: str
    user: str
    provider: str
    model: str
    mode: str
    request_id: str
    age_s: float
    chunks: int
    """Reads from the upstream so far (about one token each while the model writes)."""
    byok: bool


class StreamsResponse(BaseModel):
    """This worker's streams (the oldest ones when there are many) and their number."""

    streams: list[StreamRow]
    streams_total: int


class ConsoleSnapshot(StreamsResponse):
    """The pool and the streams, as one frame of the live feed carries them."""

    busy: bool
    window_s: float | None
    worker: int
    providers: list[ProviderRow]


class CancelResponse(BaseModel):
    """The stream was cancelled: its client gets the error frame, its slot comes back."""

    id: str
    cancelled: Literal[True]


class UserTotalsRow(BaseModel):
    """One user's usage over the window."""

    user: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    tokens: int
    credits: int


class TopUsersResponse(BaseModel):
    """The top users over the window."""

    window_s: int
    by: Literal["tokens", "credits"]
    users: list[UserTotalsRow]


class HoldRow(BaseModel):
    """A pending hold."""

    request_id: str
    amount: int
    created_at: str
    expires_at: str


class GrantRow(BaseModel):
    """A grant or removal, as logged."""

    amount: int
    balance_after: int
    note: str | None
    created_at: str


class GrantResponse(BaseModel):
    """The balance after a grant."""

    user: str
    granted: int
    balance: int
    reserved: int
    available: int


class AccountResponse(BaseModel):
    """One user's balance, holds, latest usage and grants."""

    user: str
    balance: int
    reserved: int
    available: int
    holds: list[HoldRow]
    usage: list[UsageEntry]
    grants: list[GrantRow]
