"""The one error the shared state raises: Redis is unreachable and the operator chose "fail".

It carries the same three things every error of the service carries (a message safe to show,
a stable SNAKE code and the HTTP status), so that ``quart_app.errors`` maps it like a
provider error: 503 with ``Retry-After``, answered within ``redis_timeout_s`` rather than
after a hang. It is not a ``providers`` error because this package sits below ``providers``
(the pool's slots live here) and imports nothing of the service.
"""

from __future__ import annotations

__all__ = ["CoordinationUnavailable"]


class CoordinationUnavailable(Exception):
    """The shared state (Redis) did not answer in time and the operator chose ``fail``."""

    status_code = 503
    code = "COORDINATION_UNAVAILABLE"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After``: Redis is retried after ``retry_interval_s``."""
        return {"Retry-After": str(self.retry_after_s)}
