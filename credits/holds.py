"""The SQL of a reservation's life: take a hold, settle it, or give it back.

These functions run inside a transaction the caller opened (`credits.ledger.Ledger` does)
and hold the money invariants, identically on both backends:

* ``balance >= 0`` always (also a CHECK constraint): a charge is capped at what the user
  can pay once their own hold is released.
* ``reserved`` equals the sum of the user's pending reservations: every status change away
  from ``pending`` adjusts it in the same transaction.
* A request is charged at most once: the reservation row is locked and its status checked
  before charging, and the charge row's ``request_id`` is UNIQUE as a second guard.

Settles and reconciles lock the reservation row, then the balance row; a reserve locks the
balance row and then inserts its new reservation row, which no other transaction can hold
(request ids are the service's own and unique). Batches (``Ledger.reserve``,
``Ledger.settle_many``) take their users in sorted order, so two batches on PostgreSQL
cannot deadlock one another either.
"""

from __future__ import annotations

from credits.backends import Transaction
from credits.errors import DuplicateRequest
from credits.errors import InsufficientCredits
from credits.errors import ReservationNotFound
from credits.models import UsageRecord
from credits.usage_log import insert_usage

__all__ = ["close_pending_hold", "ensure_balance_row", "settle_hold", "take_hold"]


async def take_hold(
    tx: Transaction,
    user_id: str,
    amount: int,
    request_id: str,
    now: float,
    expires_at: float,
    *,
    minimum: int | None = None,
) -> int:
    """Move up to ``amount`` from available to reserved and record the reservation.

    With ``minimum``, a balance that cannot cover ``amount`` but covers ``minimum`` holds
    everything available instead (the caller then caps the request to what that pays for);
    without it, the hold is all or nothing.

    Returns:
        The credits held.

    Raises:
        DuplicateRequest: ``request_id`` exists already.
        InsufficientCredits: ``balance - reserved`` is below ``minimum`` (or ``amount``).
    """
    # Every check comes before the reservation is written, so a refused hold writes nothing
    # (holds are taken in batches, one transaction for many requests: ``Ledger.reserve``).
    # The balance row is locked (FOR UPDATE; SQLite's BEGIN IMMEDIATE excludes every other
    # writer) from this read to the update, so concurrent holds never overdraw it.
    select = f"SELECT balance - reserved FROM balances WHERE user_id = $1{tx.for_update}"
    row = await tx.fetchrow(select, user_id)
    if row is None:  # a user seen for the first time
        await ensure_balance_row(tx, user_id, now)
        row = await tx.fetchrow(select, user_id)
    available = 0 if row is None else max(0, int(row[0]))
    needed = amount if minimum is None else min(minimum, amount)
    if available < needed:
        raise InsufficientCredits(available, needed)
    held = min(amount, available)
    inserted = await tx.fetchrow(
        "INSERT INTO reservations (request_id, user_id, amount, status, created_at, expires_at)"
        " VALUES ($1, $2, $3, 'pending', $4, $5)"
        " ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
        request_id,
        user_id,
        held,
        now,
        expires_at,
    )
    if inserted is None:
        raise DuplicateRequest(request_id)
    if held:
        await tx.execute(
            "UPDATE balances SET reserved = reserved + $2, updated_at = $3 WHERE user_id = $1",
            user_id,
            held,
            now,
        )
    return held


async def settle_hold(
    tx: Transaction,
    request_id: str,
    actual: int,
    usage: UsageRecord,
    now: float,
    *,
    store_prompt_text: bool,
) -> int:
    """Charge a request once, release the rest of its hold and log its usage.

    Returns:
        The credits charged by this call, or by the earlier call that settled it.

    Raises:
        ReservationNotFound: No reservation has this request id.
    """
    row = await tx.fetchrow(
        "SELECT user_id, amount, status, charged FROM reservations"
        f" WHERE request_id = $1{tx.for_update}",
        request_id,
    )
    if row is None:
        raise ReservationNotFound(request_id)
    user_id, amount, status, charged = row
    if status == "settled":
        return int(charged)
    if usage.user_id != user_id:
        raise ValueError("usage.user_id differs from the reservation's user")
    hold = int(amount) if status == "pending" else 0  # expired or released: already given back
    money = await tx.fetchrow(
        "UPDATE balances SET reserved = reserved - $2, updated_at = $3"
        " WHERE user_id = $1 RETURNING balance, reserved",
        user_id,
        hold,
        now,
    )
    balance, reserved = (0, 0) if money is None else (int(money[0]), int(money[1]))
    charge = max(0, min(actual, balance - reserved))
    if charge:
        await tx.execute(
            "UPDATE balances SET balance = balance - $2 WHERE user_id = $1", user_id, charge
        )
    await tx.execute(
        "INSERT INTO transactions (user_id, kind, amount, balance_after, request_id, created_at)"
        " VALUES ($1, 'charge', $2, $3, $4, $5)",
        user_id,
        -charge,
        balance - charge,
        request_id,
        now,
    )
    await tx.execute(
        "UPDATE reservations SET status = 'settled', charged = $2, closed_at = $3"
        " WHERE request_id = $1",
        request_id,
        charge,
        now,
    )
    await insert_usage(tx, usage, credits=charge, now=now, store_prompt_text=store_prompt_text)
    return charge


async def close_pending_hold(tx: Transaction, request_id: str, status: str, now: float) -> bool:
    """Give a pending hold back in full and mark the reservation ``status``.

    Args:
        tx: The transaction.
        request_id: The reservation.
        status: ``"released"`` (the caller gave up) or ``"expired"`` (reconciliation).
        now: Epoch seconds.

    Returns:
        False when the reservation was not pending (settled or closed meanwhile, or absent).
    """
    row = await tx.fetchrow(
        "UPDATE reservations SET status = $2, closed_at = $3"
        " WHERE request_id = $1 AND status = 'pending' RETURNING user_id, amount",
        request_id,
        status,
        now,
    )
    if row is None:
        return False
    await tx.execute(
        "UPDATE balances SET reserved = reserved - $2, updated_at = $3 WHERE user_id = $1",
        row[0],
        int(row[1]),
        now,
    )
    return True


async def ensure_balance_row(tx: Transaction, user_id: str, now: float) -> None:
    """Create a zero balance for a user seen for the first time."""
    await tx.execute(
        "INSERT INTO balances (user_id, balance, reserved, updated_at)"
        " VALUES ($1, 0, 0, $2) ON CONFLICT (user_id) DO NOTHING",
        user_id,
        now,
    )
