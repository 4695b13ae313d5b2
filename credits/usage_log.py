"""Reading and writing the per-request usage log.

Kept apart from the money logic in `credits.ledger` because it has a different rule to
enforce: privacy. No key ever reaches this table (`UsageRecord` has no field for one), and
prompt text is written only when the operator opted in when opening the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence

from credits.backends import Row
from credits.backends import Transaction
from credits.models import UsageRecord
from credits.models import from_timestamp

__all__ = ["insert_usage", "insert_usages", "select_recent_usage"]

_COLUMNS = (
    "request_id, user_id, provider, model, prompt_tokens, completion_tokens,"
    " credits, duration_ms, status, byok, prompt_text, created_at, correlation_id"
)


async def insert_usage(
    tx: Transaction, usage: UsageRecord, *, credits: int, now: float, store_prompt_text: bool
) -> None:
    """Write one usage row, once per request id (a repeat is ignored).

    Args:
        tx: The transaction that also moves the credits, so both commit or neither does.
        usage: The caller's record; its ``credits`` and ``created_at`` are ignored.
        credits: What the ledger actually charged.
        now: Epoch seconds for ``created_at``.
        store_prompt_text: The operator's opt-in for keeping prompts.
    """
    await insert_usages(tx, [(usage, credits)], now=now, store_prompt_text=store_prompt_text)


async def insert_usages(
    tx: Transaction,
    rows: Sequence[tuple[UsageRecord, int]],
    *,
    now: float,
    store_prompt_text: bool,
) -> None:
    """Write a batch of usage rows in one statement (``insert_usage`` for each, at once)."""
    await tx.executemany(
        f"INSERT INTO usage_log ({_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (request_id) DO NOTHING",
        [
            (
                usage.request_id,
                usage.user_id,
                usage.provider,
                usage.model,
                usage.prompt_tokens,
                usage.completion_tokens,
                credits,
                usage.duration_ms,
                str(usage.status),
                int(usage.byok),
                usage.prompt_text if store_prompt_text else None,
                now,
                usage.correlation_id,
            )
            for usage, credits in rows
        ],
    )


async def select_recent_usage(tx: Transaction, user_id: str, limit: int) -> list[UsageRecord]:
    """Return a user's latest usage rows, newest first.

    Args:
        tx: A read connection.
        user_id: Whose usage.
        limit: How many rows at most.

    Returns:
        The records, with ``credits`` and ``created_at`` as stored.
    """
    rows = await tx.fetch(
        f"SELECT {_COLUMNS} FROM usage_log WHERE user_id = $1"
        " ORDER BY created_at DESC, id DESC LIMIT $2",
        user_id,
        limit,
    )
    return [_to_record(row) for row in rows]


def _to_record(row: Row) -> UsageRecord:
    return UsageRecord(
        request_id=row[0],
        user_id=row[1],
        provider=row[2],
        model=row[3],
        prompt_tokens=int(row[4]),
        completion_tokens=int(row[5]),
        duration_ms=int(row[7]),
        status=row[8],
        byok=bool(row[9]),
        credits=int(row[6]),
        prompt_text=row[10],
        created_at=from_timestamp(float(row[11])),
        correlation_id=row[12],
    )
