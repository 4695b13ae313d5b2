"""The per-worker services and the accessors request handlers use to reach them.

HTTP sessions, slot counters and limiters bind to the loop that creates them, so they are
built in ``while_serving`` by ``quart_app.wiring`` (never at import or in ``create_app``)
and stored on the app, not on ``g``. ``get_services()`` is the one accessor;
``current_caller()`` and ``byok_upstream()`` read the current request.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from quart import current_app
from quart import g
from quart import request
from werkzeug.datastructures import Headers

from coordination import Coordination
from credits.ledger import Ledger
from providers.byok import AddressPolicy
from providers.byok import check_base_url
from providers.byok import parse_byok
from providers.embedded import EmbeddedHandle
from providers.gateway import Gateway
from providers.pool import ProviderPool
from providers.upstream import Upstream
from quart_app.agent_runtime import AgentLoader
from quart_app.auth import Caller
from quart_app.auth import TokenVerifier
from quart_app.config import Settings

__all__ = ["EXTENSION_KEY", "Services", "byok_upstream", "current_caller", "get_services"]

EXTENSION_KEY = "storywriter.services"


@dataclass(eq=False)
class Services:
    """Per-worker singletons."""

    settings: Settings
    verifier: TokenVerifier
    pool: ProviderPool
    gateway: Gateway
    byok_session: aiohttp.ClientSession
    byok_policy: AddressPolicy
    agent: AgentLoader
    """The scenario agent's graph and client, loaded on first use (``quart_app.agent_runtime``)."""
    embedded: EmbeddedHandle | None = None
    ledger: Ledger | None = None
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
