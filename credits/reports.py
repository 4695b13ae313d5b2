"""Read-only reports over the ledger for the operator console: who uses most, holds, grants.

Kept apart from the money logic (`credits.holds`, `credits.accounts`): nothing here writes.
Each report is one statement in the shared ``$1`` style, so it runs unchanged on SQLite
and PostgreSQL; sums come back as ``int`` from SQLite and ``Decimal`` from PostgreSQL and
are converted here. The ranking's ``ORDER BY`` comes from a fixed table, never from input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from credits.backends import Transaction
from credits.models import from_timestamp

__all__ = [
    "GrantEntry",
    "PendingHold",
    "Ranking",
    "UserTotals",
    "select_grants",
    "select_pending_holds",
    "select_top_users",
]

Ranking = Literal["tokens", "credits"]
"""What the top users are ranked by."""
_ORDER: dict[Ranking, str] = {
    "tokens": "SUM(prompt_tokens) + SUM(completion_tokens)",
    "credits": "SUM(credits)",
}


@dataclass(frozen=True, slots=True)
class UserTotals:
    """One user's usage over a window."""

    user_id: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    credits: int

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class PendingHold:
    """Credits held for a request still running (or never settled, until reconciled)."""

    request_id: str
    amount: int
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class GrantEntry:
    """An operator's grant or removal (or the welcome credits), as the ledger logged it."""

    amount: int
    """The change actually applied (a removal is clamped at a zero balance)."""
    balance_after: int
    note: str | None
    created_at: datetime


async def select_top_users(
    tx: Transaction, since: float, limit: int, by: Ranking
) -> list[UserTotals]:
    """The users with the most tokens (or credits) logged since ``since`` (epoch seconds)."""
    rows = await tx.fetch(
        "SELECT user_id, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(credits)"
        " FROM usage_log WHERE created_at >= $1 GROUP BY user_id"
        f" ORDER BY {_ORDER[by]} DESC, user_id LIMIT $2",
        since,
        limit,
    )
    return [
        UserTotals(str(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in rows
    ]


async def select_pending_holds(tx: Transaction, user_id: str, limit: int) -> list[PendingHold]:
    """A user's pending holds, newest first."""
    rows = await tx.fetch(
        "SELECT request_id, amount, created_at, expires_at FROM reservations"
        " WHERE user_id = $1 AND status = 'pending' ORDER BY created_at DESC LIMIT $2",
        user_id,
        limit,
    )
    return [
        PendingHold(
            str(row[0]), int(row[1]), from_timestamp(float(row[2])), from_timestamp(float(row[3]))
        )
        for row in rows
    ]


async def select_grants(tx: Transaction, user_id: str, limit: int) -> list[GrantEntry]:
    """A user's grants and removals, newest first."""
    rows = await tx.fetch(
        "SELECT amount, balance_after, note, created_at FROM transactions"
        " WHERE user_id = $1 AND kind = 'grant' ORDER BY created_at DESC, id DESC LIMIT $2",
        user_id,
        limit,
    )
    return [
        GrantEntry(int(row[0]), int(row[1]), row[2], from_timestamp(float(row[3]))) for row in rows
    ]
