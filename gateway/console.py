"""What the operator console reads and does, without a transport: streams, users, credits.

The blueprint (``blueprints.console``) checks that the caller is an admin and hands the
request here; every answer is a JSON-ready dict. Streams are this worker's
(``ModelCalls.streams``: the proxy's and the agent turns' calls); cancelling one closes its
upstream connection, and its relay ends it as a cancelled call (``OpenedStream.cancel``).
Grants take the ledger's one path (``Ledger.grant``), the same as ``storywriter grant``:
the same rules (the balance stops at 0) and the same transaction row with its note.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from credits.ledger import Ledger
from credits.models import UsageRecord
from credits.reports import Ranking
from providers.calls import ModelCalls

__all__ = ["account", "cancel_stream", "grant", "stream_rows", "top_users", "usage_row"]

log = logging.getLogger(__name__)


def stream_rows(calls: ModelCalls, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The oldest ``limit`` streams in flight, and how many there are in all."""
    streams = calls.streams()
    pool = {member.upstream for member in calls.pool.members}
    now = time.monotonic()
    rows = [
        {
            "id": opened.id,
            "user": opened.user,
            "provider": opened.upstream.name,
            "model": opened.model,
            "mode": opened.mode,
            "request_id": opened.request_id,
            "age_s": round(now - opened.started, 1),
            "chunks": opened.reads,
            "byok": opened.upstream not in pool,
        }
        for opened in streams[:limit]
    ]
    return rows, len(streams)


def cancel_stream(calls: ModelCalls, stream_id: str, admin: str) -> bool:
    """Cancel a stream of this worker; False when it is not (or no longer) open here."""
    opened = calls.find_stream(stream_id)
    if opened is None or not opened.cancel():
        return False
    log.info(
        "stream %s of %s cancelled by %s from the console",
        opened.request_id,
        opened.user,
        admin,
        extra={"event": "stream_cancelled", "admin": admin},
    )
    return True


async def top_users(ledger: Ledger, window_s: int, by: Ranking, limit: int) -> dict[str, Any]:
    """The users who used the most tokens (or credits) in the last ``window_s`` seconds."""
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    totals = await ledger.top_users(since, limit, by)
    return {
        "window_s": window_s,
        "by": by,
        "users": [
            {
                "user": t.user_id,
                "requests": t.requests,
                "prompt_tokens": t.prompt_tokens,
                "completion_tokens": t.completion_tokens,
                "tokens": t.tokens,
                "credits": t.credits,
            }
            for t in totals
        ],
    }


async def account(ledger: Ledger, user: str, limit: int) -> dict[str, Any]:
    """One user's balance, pending holds, latest usage and grants."""
    balance = await ledger.balance(user)
    holds = await ledger.pending_holds(user, limit)
    usage = await ledger.recent_usage(user, limit)
    grants = await ledger.grants(user, limit)
    return {
        **_balance(user, balance.balance, balance.reserved, balance.available),
        "holds": [
            {
                "request_id": h.request_id,
                "amount": h.amount,
                "created_at": h.created_at.isoformat(),
                "expires_at": h.expires_at.isoformat(),
            }
            for h in holds
        ],
        "usage": [usage_row(u) for u in usage],
        "grants": [
            {
                "amount": g.amount,
                "balance_after": g.balance_after,
                "note": g.note,
                "created_at": g.created_at.isoformat(),
            }
            for g in grants
        ],
    }


async def grant(
    ledger: Ledger, user: str, amount: int, note: str | None, admin: str
) -> dict[str, Any]:
    """Add (or, negative, remove) credits with a note; the new balance."""
    await ledger.grant(user, amount, note)
    log.info(
        "%s granted %d credits to %s from the console",
        admin,
        amount,
        user,
        extra={"event": "console_grant", "admin": admin},
    )
    balance = await ledger.balance(user)
    return {
        "granted": amount,
        **_balance(user, balance.balance, balance.reserved, balance.available),
    }


def _balance(user: str, balance: int, reserved: int, available: int) -> dict[str, Any]:
    return {"user": user, "balance": balance, "reserved": reserved, "available": available}


def usage_row(usage: UsageRecord) -> dict[str, Any]:
    """A usage log row as the API shows it (counts only, never prompt text)."""
    return {
        "request_id": usage.request_id,
        "provider": usage.provider,
        "model": usage.model,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "credits": usage.credits,
        "duration_ms": usage.duration_ms,
        "status": str(usage.status),
        "byok": usage.byok,
        "created_at": usage.created_at.isoformat() if usage.created_at else None,
    }
