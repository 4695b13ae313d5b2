"""The SQL of balances themselves: operator grants and balance look-ups.

Separate from `credits.holds` (the per-request reserve/settle cycle) because grants are
the other way money enters and leaves an account: by an operator, with a note, never tied
to a request.
"""

from __future__ import annotations

from credits.backends import Transaction
from credits.holds import ensure_balance_row
from credits.models import Balance

__all__ = ["apply_grant", "open_account", "select_balance"]


async def apply_grant(
    tx: Transaction, user_id: str, amount: int, note: str | None, now: float
) -> int:
    """Add ``amount`` (negative to remove) to a balance, stopping at 0, and log it.

    The transaction row records the change actually applied, so the log always sums to
    the balance even when a correction was clamped.

    Returns:
        The new balance.
    """
    await ensure_balance_row(tx, user_id, now)
    row = await tx.fetchrow(
        f"SELECT balance FROM balances WHERE user_id = $1{tx.for_update}", user_id
    )
    old = 0 if row is None else int(row[0])
    new = max(0, old + amount)
    await tx.execute(
        "UPDATE balances SET balance = $2, updated_at = $3 WHERE user_id = $1", user_id, new, now
    )
    await tx.execute(
        "INSERT INTO transactions (user_id, kind, amount, balance_after, note, created_at)"
        " VALUES ($1, 'grant', $2, $3, $4, $5)",
        user_id,
        new - old,
        new,
        note,
        now,
    )
    return new


async def open_account(tx: Transaction, user_id: str, welcome: int, now: float) -> bool:
    """Grant a user ``welcome`` credits unless they ever had them; True if granted now.

    Marking ``welcomed_at`` in the same conditional UPDATE is the once-only guard: of two
    workers seeing a new user together, exactly one matches the row and grants the credits.
    """
    await ensure_balance_row(tx, user_id, now)
    row = await tx.fetchrow(
        "UPDATE balances SET welcomed_at = $2 WHERE user_id = $1 AND welcomed_at IS NULL"
        " RETURNING user_id",
        user_id,
        now,
    )
    if row is None:
        return False
    if welcome > 0:
        await apply_grant(tx, user_id, welcome, "welcome credits", now)
    return True


async def select_balance(tx: Transaction, user_id: str) -> Balance:
    """Return a user's balance and holds (zeros for a user never seen)."""
    row = await tx.fetchrow("SELECT balance, reserved FROM balances WHERE user_id = $1", user_id)
    return Balance(0, 0) if row is None else Balance(int(row[0]), int(row[1]))
