"""Everything a blueprint may use from ``quart_app``, in one leaf module.

Blueprints stay thin: they validate, call one service and return. What they need from the
app - its services, the caller, the caller's own upstream, the rate-limit marks, the error
type and the operational state for the probes - comes from here and from nowhere else in
``quart_app`` (``tests/test_architecture.py`` checks it), so a blueprint can never reach
the factory or the wiring, and the wiring can import blueprints without a cycle.
"""

from __future__ import annotations

from quart_app.agent_health import agent_health
from quart_app.console_access import console_admin
from quart_app.console_access import console_ledger
from quart_app.console_feed import console_feed
from quart_app.console_feed import console_snapshot
from quart_app.errors import APIError
from quart_app.errors import ErrorParts
from quart_app.errors import error_parts
from quart_app.errors import refusals_in_band
from quart_app.limit_hooks import check_message_limits
from quart_app.limit_markers import chat_tokens
from quart_app.limit_markers import cheap_read
from quart_app.limit_markers import rate_exempt
from quart_app.limit_markers import rate_limit
from quart_app.operations import get_operations
from quart_app.services import byok_upstream
from quart_app.services import current_caller
from quart_app.services import get_services
from quart_app.services import websocket_caller

__all__ = [
    "APIError",
    "ErrorParts",
    "agent_health",
    "byok_upstream",
    "chat_tokens",
    "cheap_read",
    "check_message_limits",
    "console_admin",
    "console_feed",
    "console_ledger",
    "console_snapshot",
    "current_caller",
    "error_parts",
    "get_operations",
    "get_services",
    "rate_exempt",
    "rate_limit",
    "refusals_in_band",
    "websocket_caller",
]
