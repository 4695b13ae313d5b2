"""Per-user rate limits on every HTTP request and every WebSocket message (the hooks).

quart-rate-limiter's design on our own limiter (``coordination.limits``): a view carries a
mark (``quart_app.limit_markers``) and ``before_request`` enforces it, refusing at once
with 429 rather than queueing. The user is the JWT's (BYOK requests too; ``anon:<address>``
in development mode). A request stays "in flight" for the concurrency limit until its
response body is finished, so a stream counts until its last frame. A ``@cheap_read`` view
is counted in its own reads bucket instead (per user, or per client address) and holds
nothing in flight. WebSocket handlers call :func:`check_message_limits` (or ``async with
message_limits(...)``) for each message they accept.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar

from quart import Quart
from quart import Response
from quart import current_app
from quart import g
from quart import request
from quart.wrappers import Request
from quart.wrappers.response import DataBody

from coordination.limits.admission import RateLimits
from coordination.limits.admission import describe
from coordination.limits.admission import retry_after
from coordination.limits.rules import Grant
from coordination.limits.rules import RateLimitExceeded
from coordination.limits.rules import Verdict
from quart_app.auth import Caller
from quart_app.errors import APIError
from quart_app.limit_markers import ReadMarker
from quart_app.limit_markers import is_exempt
from quart_app.limit_markers import limit_marker
from quart_app.limit_markers import read_marker
from quart_app.response_end import on_body_sent
from quart_app.services import EXTENSION_KEY
from quart_app.services import current_caller

__all__ = ["check_message_limits", "install_rate_limits", "message_limits"]

_OPEN = Verdict(True, None, 0, 0, 0.0, 0.0)
#: The request's grant, from ``before_request`` to ``after_request`` (same task, same
#: context; a ContextVar costs ~50 ns where ``g`` costs ~2 us).
_ADMITTED: ContextVar[tuple[RateLimits, Grant] | None] = ContextVar(
    "storywriter_rate_admitted", default=None
)
#: A cheap read's verdict, for its ``RateLimit-*`` headers.
_READ: ContextVar[tuple[RateLimits, Verdict] | None] = ContextVar(
    "storywriter_rate_read", default=None
)


def _limits() -> RateLimits | None:
    services = current_app.extensions.get(EXTENSION_KEY)
    coordination = getattr(services, "coordination", None)
    limits: RateLimits | None = getattr(coordination, "limits", None)
    return limits if limits is not None and limits.enabled else None


async def _admit(limits: RateLimits, user: str, request_id: str | None, tokens: int) -> Grant:
    try:
        return await limits.admit(user, request_id, tokens)
    except RateLimitExceeded as refused:
        raise _refusal(limits, refused.verdict) from None


async def _admit_read(limits: RateLimits, read: ReadMarker, req: Request) -> Verdict:
    """Count one cheap read in its bucket: the caller's user's, or the client address's."""
    by_address = read.by == "address"
    who = (req.remote_addr or "unknown") if by_address else current_caller().user_id
    try:
        return await limits.admit_read(who, by_address=by_address)
    except RateLimitExceeded as refused:
        raise _refusal(limits, refused.verdict) from None


def _refusal(limits: RateLimits, verdict: Verdict) -> APIError:
    """The 429 of a refusal, with ``Retry-After`` and the ``RateLimit-*`` headers."""
    detail = {
        "limit": verdict.limit,
        "quota": verdict.quota,
        "retry_after_s": retry_after(verdict),
    }
    return APIError(
        429, "RATE_LIMITED", describe(verdict), detail=detail, headers=limits.headers(verdict)
    )


async def check_message_limits(caller: Caller, tokens: int = 0) -> Grant:
    """Admit one WebSocket message of ``caller`` against the same per-user limits.

    Call ``grant.finish()`` when the message's work ends (it stays in flight until then),
    after ``grant.record_usage(n)`` if the real token usage is known; or use
    :func:`message_limits`.

    Raises:
        APIError: 429 ``RATE_LIMITED`` (``error.headers`` has ``Retry-After``); close 1008.
        CoordinationUnavailable: 503, Redis is down and the operator chose ``fail``.
    """
    limits = _limits()
    if limits is None:
        return Grant(None, caller.user_id, "", 0, _OPEN)
    return await _admit(limits, caller.user_id, None, tokens)


@contextlib.asynccontextmanager
async def message_limits(caller: Caller, tokens: int = 0) -> AsyncIterator[Grant]:
    """``check_message_limits`` for the duration of a block."""
    grant = await check_message_limits(caller, tokens)
    try:
        yield grant
    finally:
        grant.finish()


def install_rate_limits(app: Quart) -> None:
    """Enforce the markers; register after the CORS preflight and request-id hooks."""
    # The hot path: each context-local lookup (request, g, current_app) costs ~2 us here,
    # so each is done once per request and the app's own objects are used directly.
    views = app.view_functions
    extensions = app.extensions

    @app.before_request
    async def _limit_request() -> None:
        req = request._get_current_object()  # type: ignore[attr-defined]
        if req.method == "OPTIONS":
            return
        view = views.get(req.endpoint or "")
        if view is None or is_exempt(view):
            return
        coordination = getattr(extensions.get(EXTENSION_KEY), "coordination", None)
        limits: RateLimits | None = getattr(coordination, "limits", None)
        if limits is None:
            return
        read = read_marker(view)
        if read is not None:
            if limits.reads_enabled:
                _READ.set((limits, await _admit_read(limits, read, req)))
            return
        if not limits.enabled:
            return
        marker = limit_marker(view)
        estimate = marker.tokens if marker is not None else None
        user = current_caller().user_id
        tokens = await estimate() if estimate is not None else 0
        grant = await _admit(limits, user, g.get("request_id"), tokens)
        _ADMITTED.set((limits, grant))

    @app.after_request
    async def _finish_with_body(response: Response) -> Response:
        limited = _ADMITTED.get()
        if limited is None:
            read = _READ.get()
            if read is not None:
                _READ.set(None)
                response.headers._list.extend(read[0].headers(read[1]).items())
            return response
        _ADMITTED.set(None)
        limits, grant = limited
        # Appended as they are: werkzeug's add() re-validates each value (~1 us a header),
        # and these are new names with values built from numbers and the fixed policy.
        response.headers._list.extend(limits.headers(grant.verdict).items())
        if isinstance(response.response, DataBody):
            grant.finish(0)  # the work is done; sending a small body needs no slot
        else:
            on_body_sent(response, lambda _aborted: grant.finish(0))
        return response
