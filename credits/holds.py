"""The SQL of a reservation's life: take a hold, settle it, or give it back.

These functions run inside a transaction the caller opened (`credits.ledger.Ledger` does)
and hold the money invariants, identically on both backends:

* ``balance >= 0`` always (also a CHECK constraint): a charge is capped at what the user
  can pay once their own hold is released.
* ``reserved`` equals the sum of the user's pending reservations: every status change away
  from ``pending`` adjusts it in the same transaction.
* A request is charged at most once: the reservation row is locked and its status checked
  before charging, and the charge row's ``request_id`` is UNIQUE as a second guard.

Holds and settlements come in batches (one transaction serves every request of a turn of
the event loop) and touch each user's balance row once: read (locked) once, written once.
Settles and reconciles lock a user's reservation rows, then the balance row; a reserve
locks the balance row and inserts new reservation rows, which no other transaction can
hold (request ids are the service's own and unique). Batches take their users in sorted
order, so two of them on PostgreSQL cannot deadlock one another.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Any
from typing import TypeVar

from credits.backends import Transaction
from credits.errors import CreditsError
from credits.errors import DuplicateRequest
from credits.errors import InsufficientCredits
from credits.errors import ReservationNotFound
from credits.models import UsageRecord
from credits.usage_log import insert_usages

__all__ = [
    "HoldRequest",
    "close_pending_hold",
    "ensure_balance_row",
    "settle_holds",
    "take_holds",
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """One hold to take: up to ``amount``, at least ``minimum`` (None: all or nothing).

    With ``lease``, ``request_id`` names a worker's lease (``credits.leases``): the hold is
    added to that reservation if it is still pending (created if absent), with up to
    ``spare`` more: at most half of what the user has beyond the hold (other workers
    always find room), and nothing when that half is below ``spare_min`` (a balance near
    its end is held exactly, request by request).
    """

    user_id: str
    amount: int
    request_id: str
    minimum: int | None
    expires_at: float
    lease: bool = False
    spare: int = 0
    spare_min: int = 0


_INSERT_HOLD = (
    "INSERT INTO reservations (request_id, user_id, amount, status, created_at, expires_at)"
    " VALUES ($1, $2, $3, 'pending', $4, $5)"
    " ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
)
#: A lease grows while it is pending; one closed meanwhile (expired, released) is not
#: reopened: no row comes back, and the caller starts a new lease.
_EXTEND_LEASE = (
    "INSERT INTO reservations (request_id, user_id, amount, status, created_at, expires_at)"
    " VALUES ($1, $2, $3, 'pending', $4, $5)"
    " ON CONFLICT (request_id) DO UPDATE SET amount = reservations.amount + excluded.amount,"
    " expires_at = excluded.expires_at"
    " WHERE reservations.status = 'pending' AND reservations.user_id = excluded.user_id"
    " RETURNING request_id"
)


async def take_holds(
    tx: Transaction, holds: Sequence[HoldRequest], now: float
) -> list[int | CreditsError]:
    """Take a batch of holds: per user one locked read, one insert per hold, one update.

    A hold moves up to its ``amount`` from available to reserved and records the
    reservation. With ``minimum``, a balance that cannot cover ``amount`` but covers
    ``minimum`` holds everything available instead (the caller then caps the request to
    what that pays for); without it, the hold is all or nothing. The holds of one user are
    taken in the order given, each from what the earlier ones left.

    Returns:
        Per hold, in order: the credits held, or why nothing was held -
        `InsufficientCredits` (``balance - reserved`` below ``minimum`` or ``amount``) or
        `DuplicateRequest` (the request id exists already). A refused hold writes nothing.
    """
    outcomes: list[int | CreditsError] = [0] * len(holds)
    for user_id, indices in _by_user(holds, lambda hold: hold.user_id):
        # The balance row is locked (FOR UPDATE; SQLite's BEGIN IMMEDIATE excludes every
        # other writer) from this read to the update, so concurrent holds never overdraw it.
        select = f"SELECT balance - reserved FROM balances WHERE user_id = $1{tx.for_update}"
        row = await tx.fetchrow(select, user_id)
        if row is None:  # a user seen for the first time
            await ensure_balance_row(tx, user_id, now)
            row = await tx.fetchrow(select, user_id)
        available = 0 if row is None else max(0, int(row[0]))
        taken = 0
        for i in indices:
            hold = holds[i]
            needed = hold.amount if hold.minimum is None else min(hold.minimum, hold.amount)
            if available < needed:
                outcomes[i] = InsufficientCredits(available, needed)
                continue
            held = min(hold.amount, available)
            room = (available - held) // 2
            if hold.spare > 0 and room >= hold.spare_min:
                held += min(hold.spare, room)
            inserted = await tx.fetchrow(
                _EXTEND_LEASE if hold.lease else _INSERT_HOLD,
                hold.request_id,
                user_id,
                held,
                now,
                hold.expires_at,
            )
            if inserted is None:
                outcomes[i] = DuplicateRequest(hold.request_id)
                continue
            outcomes[i] = held
            available -= held
            taken += held
        if taken:
            await tx.execute(
                "UPDATE balances SET reserved = reserved + $2, updated_at = $3 WHERE user_id = $1",
                user_id,
                taken,
                now,
            )
    return outcomes


async def settle_holds(
    tx: Transaction, records: Sequence[UsageRecord], now: float, *, store_prompt_text: bool
) -> list[int | Exception]:
    """Settle a batch: charge each request once, release the rest of its hold, log usage.

    Each record is charged its ``credits`` (capped at what the user can pay once the hold
    is released); a BYOK record is only logged, free. Per user the balance row is read
    (locked) once and written once, after that user's reservation rows were locked.

    Returns:
        Per record, in order: the credits charged by this call or, for a request settled
        before, by that earlier call; or why it was refused alone - `ReservationNotFound`,
        or ValueError for a user that is not the hold's. A refused record writes nothing.
    """
    outcomes: list[int | Exception] = [0] * len(records)
    # Every reservation of the batch in one statement, locked in one order (request id),
    # before any balance row: the order close_pending_hold takes them in too.
    paid = sorted(
        {r.request_id for r in records if not r.byok}
        | {r.hold_id for r in records if r.hold_id is not None and not r.byok}
    )
    state: dict[str, list[Any]] = {}
    if paid:
        rows = await tx.fetch(
            "SELECT request_id, user_id, amount, status, charged FROM reservations"
            f" WHERE request_id {tx.any_text} ORDER BY request_id{tx.for_update}",
            tx.text_list(paid),
        )
        state = {str(row[0]): list(row[1:]) for row in rows}
    charges: list[tuple[object, ...]] = []
    settled: list[tuple[object, ...]] = []
    usages: list[tuple[UsageRecord, int]] = []
    balances: list[tuple[object, ...]] = []
    leased: list[tuple[object, ...]] = []  # the rows of requests paid from a lease
    leases: set[str] = set()  # the leases those charges came out of
    for user_id, indices in _by_user(records, lambda record: record.user_id):
        money: list[int] | None = None  # [balance, reserved], read once the first charge needs it
        for i in indices:
            record = records[i]
            if record.byok:
                usages.append((replace(record, credits=0), 0))
                continue
            reservation = state.get(record.request_id)
            lease = None  # the lease paying when the request has no reservation of its own
            if reservation is None:
                if record.hold_id is None:
                    outcomes[i] = ReservationNotFound(record.request_id)
                    continue
                lease = state.get(record.hold_id)
            elif reservation[2] == "settled":
                outcomes[i] = int(reservation[3])
                continue
            payer = reservation if reservation is not None else lease
            if payer is not None and payer[0] != user_id:
                outcomes[i] = ValueError("usage.user_id differs from the reservation's user")
                continue
            if record.credits < 0:
                outcomes[i] = ValueError("credits must be >= 0")
                continue
            if money is None:
                money = await _read_money(tx, user_id)
            if reservation is not None:
                if reservation[2] == "pending":  # else expired or released: given back already
                    money[1] -= int(reservation[1])
                charge = max(0, min(record.credits, money[0] - money[1]))
                money[0] -= charge
                reservation[2:] = ["settled", charge]  # a repeat later in the batch sees it
                settled.append((record.request_id, charge, now))
            else:
                charge = _charge_from_lease(lease, record.credits, money)
                if lease is not None and record.hold_id is not None:
                    leases.add(record.hold_id)
                state[record.request_id] = [user_id, charge, "settled", charge]
                leased.append((record.request_id, user_id, charge, now))
            charges.append((user_id, -charge, money[0], record.request_id, now))
            usages.append((record, charge))
            outcomes[i] = charge
        if money is not None:
            balances.append((user_id, money[0], money[1], now))
    await tx.executemany(
        "INSERT INTO transactions"
        " (user_id, kind, amount, balance_after, request_id, created_at)"
        " VALUES ($1, 'charge', $2, $3, $4, $5)",
        charges,
    )
    await tx.executemany(
        "UPDATE reservations SET status = 'settled', charged = $2, closed_at = $3"
        " WHERE request_id = $1",
        settled,
    )
    await tx.executemany(
        "INSERT INTO reservations"
        " (request_id, user_id, amount, status, charged, created_at, expires_at, closed_at)"
        " VALUES ($1, $2, $3, 'settled', $3, $4, $4, $4)",
        leased,
    )
    await tx.executemany(
        "UPDATE reservations SET amount = $2 WHERE request_id = $1",
        [(lease_id, state[lease_id][1]) for lease_id in sorted(leases)],
    )
    await insert_usages(tx, usages, now=now, store_prompt_text=store_prompt_text)
    await tx.executemany(
        "UPDATE balances SET balance = $2, reserved = $3, updated_at = $4 WHERE user_id = $1",
        balances,
    )
    return outcomes


async def _read_money(tx: Transaction, user_id: str) -> list[int]:
    """A user's ``[balance, reserved]``, locked until the transaction ends."""
    found = await tx.fetchrow(
        f"SELECT balance, reserved FROM balances WHERE user_id = $1{tx.for_update}", user_id
    )
    return [0, 0] if found is None else [int(found[0]), int(found[1])]


def _charge_from_lease(lease: list[Any] | None, credits: int, money: list[int]) -> int:
    """Charge ``credits`` out of a pending lease first, the rest from what is available.

    The part the lease covers leaves the lease, ``reserved`` and ``balance`` together (the
    user's available credits do not change: they were set aside already). A lease closed
    meanwhile (its worker died, or it expired) covers nothing; then, as for an expired
    hold, the charge is what the user can still pay. ``lease`` and ``money`` are updated.
    """
    covered = 0
    if lease is not None and lease[2] == "pending":
        covered = max(0, min(credits, int(lease[1]), money[0], money[1]))
        lease[1] = int(lease[1]) - covered
        money[1] -= covered
    extra = max(0, min(credits - covered, money[0] - covered - money[1]))
    money[0] -= covered + extra
    return covered + extra


def _by_user(items: Sequence[_T], user_of: Callable[[_T], str]) -> list[tuple[str, list[int]]]:
    """Indices of ``items`` per user, users in sorted order (one lock order for every batch)."""
    grouped: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        grouped.setdefault(user_of(item), []).append(i)
    return sorted(grouped.items())


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
