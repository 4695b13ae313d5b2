"""The one error the shared state adds to the provider hierarchy: Redis is unreachable.

It is a ``ProviderError`` so that the pool can raise it from a slot acquisition and
``quart_app.errors`` maps it like every other provider error: 503 with a clear message,
answered within ``redis_timeout_s`` rather than after a hang.
"""

from __future__ import annotations

from providers.errors import ProviderError

__all__ = ["CoordinationUnavailable"]


class CoordinationUnavailable(ProviderError):
    """The shared state (Redis) did not answer in time and the operator chose ``fail``."""

    status_code = 503
    code = "COORDINATION_UNAVAILABLE"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:  # noqa: D102
        return {"Retry-After": str(self.retry_after_s)}
