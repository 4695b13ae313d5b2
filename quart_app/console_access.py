"""Who may use the operator console's data: the admins of ``[console]``, nobody else.

An admin is a user listed in ``admin_users`` or the holder of ``admin_role`` (the token's
``role``/``roles`` claim, ``quart_app.auth``). Everyone else - members, development-mode
callers without a token - gets 403 on every data endpoint. The console page itself is
static and holds no secret, so it is served to anyone; it asks the operator for a token.
"""

from __future__ import annotations

from credits.ledger import Ledger
from quart_app.auth import Caller
from quart_app.config import ConsoleSettings
from quart_app.errors import APIError
from quart_app.services import current_caller
from quart_app.services import get_services

__all__ = ["console_admin", "console_ledger", "is_admin"]


def is_admin(caller: Caller, settings: ConsoleSettings) -> bool:
    """Whether ``caller`` is one of the console's admins."""
    if not caller.authenticated:
        return False
    if caller.user_id in settings.admin_users:
        return True
    return settings.admin_role is not None and settings.admin_role in caller.roles


def console_admin() -> Caller:
    """The current caller when an admin; else 401 (no valid token) or 403.

    Raises:
        APIError: 401 from the token check, or 403 ``FORBIDDEN`` for a non-admin.
    """
    caller = current_caller()
    settings = get_services().settings.console
    if is_admin(caller, settings):
        return caller
    why = (
        "" if settings.has_admins else " (none is configured: [console] admin_users or admin_role)"
    )
    raise APIError(403, "FORBIDDEN", f"the console is for admins only{why}")


def console_ledger() -> Ledger:
    """The ledger, or 404 ``CREDITS_DISABLED`` when credits are off."""
    ledger = get_services().ledger
    if ledger is None:
        raise APIError(404, "CREDITS_DISABLED", "credits are not enabled on this service")
    return ledger
