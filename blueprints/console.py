"""The operator console: its page at ``/console`` and its data under ``/api/console``.

The page and its assets are static files shipped in the package (``console_static/``, no
CDN, no build step) and hold no secret: the page asks the operator for a token and keeps
it in ``sessionStorage``. Every data endpoint is for admins only (``[console]``: 403 for
everyone else), rate limited like the rest of the API and described in the OpenAPI
document. The handlers stay thin: the work is in ``gateway.console`` (streams, users,
credits) and ``quart_app.console_feed`` (the live pool).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from quart import Blueprint
from quart import Response
from quart import request

from blueprints.console_models import AccountQuery
from blueprints.console_models import GrantRequest
from blueprints.console_models import TopUsersQuery
from blueprints.sse import sse_response
from gateway import console
from quart_app.facade import APIError
from quart_app.facade import console_admin
from quart_app.facade import console_feed
from quart_app.facade import console_ledger
from quart_app.facade import console_snapshot
from quart_app.facade import get_operations
from quart_app.facade import get_services
from quart_app.facade import rate_exempt
from quart_app.facade import rate_limit

__all__ = ["ASSETS", "blueprint"]

blueprint = Blueprint("console", __name__)

_STATIC = Path(__file__).with_name("console_static")
#: The files the page loads, with their media types; read once, at import (never per request).
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "sample-scenario.json": "application/json",
}
_FILES = {name: (_STATIC / name).read_bytes() for name in (*ASSETS, "index.html")}
_HEADERS = {
    # Everything from this origin, nothing inline, no frames: the page handles a token.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_STREAMS_LISTED = 200


@blueprint.get("/console")
@rate_exempt
async def get_console_page() -> Response:
    """The console's page (static; it asks for an admin's token)."""
    return Response(_FILES["index.html"], content_type="text/html; charset=utf-8", headers=_HEADERS)


@blueprint.get("/console/assets/<name>")
@rate_exempt
async def get_console_asset(name: str) -> Response:
    """A script, style sheet or sample file of the page."""
    media = ASSETS.get(name)
    if media is None:
        raise APIError(404, "NOT_FOUND", "no such console asset")
    return Response(_FILES[name], content_type=media, headers=_HEADERS)


@blueprint.get("/api/console/me")
@rate_limit
async def get_console_me() -> dict[str, Any]:
    """The admin the token names (403 for anyone else), and the console's settings."""
    caller = console_admin()
    settings = get_services().settings
    return {
        "user": caller.user_id,
        "roles": sorted(caller.roles),
        "worker": os.getpid(),
        "credits": settings.credits.enabled,
        "push_interval_s": settings.console.push_interval_s,
        "window_s": settings.console.window_s,
    }


@blueprint.get("/api/console/pool")
@rate_limit
async def get_console_pool() -> dict[str, Any]:
    """The pool and the streams in flight, now (one frame of the live feed)."""
    console_admin()
    return await console_snapshot(get_operations())


@blueprint.get("/api/console/live")
@rate_limit
async def get_console_live() -> Response:
    """The same snapshot pushed every ``[console] push_interval_s`` (SSE) until draining."""
    console_admin()
    interval = get_services().settings.console.push_interval_s
    return sse_response(console_feed(get_operations(), interval))


@blueprint.get("/api/console/streams")
@rate_limit
async def get_console_streams() -> dict[str, Any]:
    """The streams in flight on this worker, oldest first."""
    console_admin()
    streams, total = console.stream_rows(get_services().calls, _STREAMS_LISTED)
    return {"streams": streams, "streams_total": total}


@blueprint.post("/api/console/streams/<stream_id>/cancel")
@rate_limit
async def post_console_cancel(stream_id: str) -> dict[str, Any]:
    """Cancel a stream: upstream closed, one error frame to its client, billed as generated."""
    admin = console_admin()
    if not console.cancel_stream(get_services().calls, stream_id, admin.user_id):
        raise APIError(
            404, "STREAM_NOT_FOUND", "no such stream is open on this worker (it may have ended)"
        )
    return {"id": stream_id, "cancelled": True}


@blueprint.get("/api/console/users")
@rate_limit
async def get_console_users() -> dict[str, Any]:
    """The users with the most tokens (or credits) over the window."""
    console_admin()
    query = TopUsersQuery.model_validate(request.args.to_dict())
    return await console.top_users(console_ledger(), query.window_s, query.by, query.limit)


@blueprint.get("/api/console/account")
@rate_limit
async def get_console_account() -> dict[str, Any]:
    """One user's balance, pending holds, latest usage and grants."""
    console_admin()
    query = AccountQuery.model_validate(request.args.to_dict())
    return await console.account(console_ledger(), query.user, query.limit)


@blueprint.post("/api/console/grants")
@rate_limit
async def post_console_grant() -> dict[str, Any]:
    """Grant credits, or remove them with a negative amount (as ``storywriter grant``)."""
    admin = console_admin()
    body = GrantRequest.model_validate_json(await request.get_data())
    return await console.grant(console_ledger(), body.user, body.amount, body.note, admin.user_id)
