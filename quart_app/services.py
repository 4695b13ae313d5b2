"""The per-worker services and the accessors request handlers use to reach them.

HTTP sessions, slot counters and limiters bind to the loop that creates them, so they are
built in ``while_serving`` by ``quart_app.wiring`` (never at import or in ``create_app``)
and stored on the app, not on ``g``. ``get_services()`` is the one accessor;
``current_caller()`` and ``byok_upstream()`` read the current request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from quart import current_app
from quart import g
from quart import request
from quart import websocket
from werkzeug.datastructures import Headers

from coordination import Coordination
from credits.billing import LedgerBilling
from credits.ledger import Ledger
from gateway.completions import Gateway
from gateway.sessions import SessionClosed
from gateway.sessions import parse_object
from gateway.settlement import Settlements
from gateway.turns import AgentTurns
from providers.byok import AddressPolicy
from providers.byok import check_base_url
from providers.byok import parse_byok
from providers.calls import ModelCalls
from providers.embedded import EmbeddedHandle
from providers.pool import ProviderPool
from providers.upstream import Upstream
from quart_app.auth import Caller
from quart_app.auth import TokenVerifier
from quart_app.config import Settings

__all__ = [
    "EXTENSION_KEY",
    "Services",
    "byok_upstream",
    "current_caller",
    "get_services",
    "websocket_caller",
]

EXTENSION_KEY = "storywriter.services"


@dataclass(eq=False)
class Services:
    """Per-worker singletons."""

    settings: Settings
    verifier: TokenVerifier
    pool: ProviderPool
    calls: ModelCalls
    """The one path of every model call (the proxy's and the agent's)."""
    gateway: Gateway
    """Proxied completions."""
    turns: AgentTurns
    """Agent turns; the agent stack loads on first use (``turns.loader``)."""
    settlements: Settlements
    """Every ending of every request: priced, reported, charged."""
    byok_session: aiohttp.ClientSession
    byok_policy: AddressPolicy
    embedded: EmbeddedHandle | None = None
    ledger: Ledger | None = None
    billing: LedgerBilling | None = None
    """The ledger's writer and health (None when credits are off)."""
    coordination: Coordination | None = None


def get_services() -> Services:
    """The running app's services."""
    services: Services = current_app.extensions[EXTENSION_KEY]
    return services


def current_caller() -> Caller:
    """Authenticate the current request (401 ``APIError`` when it cannot be)."""
    caller: Caller | None = g.get("caller")
    if caller is None:
        caller = get_services().verifier.caller(
            request.headers.get("Authorization"), request.remote_addr or "unknown"
        )
        g.caller = caller
    return caller


async def byok_upstream(headers: Headers | None = None) -> Upstream | None:
    """The caller's own upstream from ``X-BYOK-*`` headers, checked against the SSRF policy.

    Args:
        headers: The WebSocket handshake's headers; default: the current request's.
    """
    if headers is None:
        headers = request.headers
    if not any(name[:7].lower() == "x-byok-" for name, _ in headers.items()):
        return None  # the usual case, without werkzeug raising KeyError thrice (~3 us)
    spec = parse_byok(
        headers.get("X-BYOK-API-Key"),
        headers.get("X-BYOK-Base-URL"),
        headers.get("X-BYOK-Provider"),
    )
    if spec is None:
        return None
    services = get_services()
    await check_base_url(spec.base_url, services.byok_policy)
    return Upstream(spec.settings(), services.byok_session, api_key=spec.api_key)


async def websocket_caller(timeout_s: float) -> Caller:
    """Authenticate a WebSocket: ``?token=``, else a first ``auth`` message within ``timeout_s``.

    Browsers cannot set headers on a WebSocket. Development mode lets a connection without
    a token in as ``anon:<address>``, as it does HTTP requests.

    Raises:
        APIError: 401, the token does not verify.
        SessionClosed: 1008, no token arrived in time or the first message was not ``auth``.
    """
    verifier = get_services().verifier
    token = websocket.args.get("token")
    if token:
        caller = Caller(verifier.user_for_token(token), authenticated=True)
    elif verifier.development:
        caller = Caller(f"anon:{websocket.remote_addr or 'unknown'}", authenticated=False)
    else:
        try:
            async with asyncio.timeout(timeout_s):
                raw = await websocket.receive()
        except TimeoutError:
            raise SessionClosed(1008, "authentication required") from None
        message = parse_object(raw) if raw is not None else None
        if message is None or message.get("type") != "auth" or not message.get("token"):
            raise SessionClosed(1008, 'the first message must be {"type":"auth","token":...}')
        caller = Caller(verifier.user_for_token(str(message["token"])), authenticated=True)
    g.caller = caller
    return caller
