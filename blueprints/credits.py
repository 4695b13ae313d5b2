"""A member's own credits: balance and recent usage (never anyone else's)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart import request

from gateway.console import usage_row
from quart_app.facade import APIError
from quart_app.facade import current_caller
from quart_app.facade import get_services
from quart_app.facade import rate_limit

__all__ = ["blueprint"]

blueprint = Blueprint("credits", __name__, url_prefix="/api/credits")


@blueprint.get("/me")
@rate_limit
async def get_my_credits() -> dict[str, Any]:
    """Balance, holds in flight and the latest usage rows of the caller."""
    caller = current_caller()
    ledger = get_services().ledger
    if ledger is None:
        raise APIError(404, "CREDITS_DISABLED", "credits are not enabled on this service")
    limit = request.args.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise APIError(400, "INVALID_REQUEST", "limit must be an integer from 1 to 100")
    balance = await ledger.balance(caller.user_id)
    usage = await ledger.recent_usage(caller.user_id, int(limit))
    return {
        "user": caller.user_id,
        "balance": balance.balance,
        "reserved": balance.reserved,
        "available": balance.available,
        "usage": [usage_row(u) for u in usage],
    }
