"""Shared state of the workers: per-user rate limits, pool slots and the busy status.

Quart-free and the lowest layer of the service: it imports nothing of the other packages
(``providers`` builds its pool on these slots). The wiring lives in ``quart_app``. In memory by
default; with ``[coordination] redis_url`` in Redis, so several workers and hosts share one
set of limits and one pool capacity, and a killed worker's slots come back by themselves.
"""

from coordination.errors import CoordinationUnavailable
from coordination.factory import Coordination
from coordination.factory import open_coordination
from coordination.limits.admission import RateLimits
from coordination.limits.rules import Grant
from coordination.limits.rules import LimitPolicy
from coordination.limits.rules import RateLimiter
from coordination.limits.rules import RateLimitExceeded
from coordination.limits.rules import Verdict
from coordination.settings import CoordinationSettings
from coordination.settings import LimitsSettings

__all__ = [
    "Coordination",
    "CoordinationSettings",
    "CoordinationUnavailable",
    "Grant",
    "LimitPolicy",
    "LimitsSettings",
    "RateLimitExceeded",
    "RateLimiter",
    "RateLimits",
    "Verdict",
    "open_coordination",
]
