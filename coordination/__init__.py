"""Shared state of the workers: per-user rate limits, pool slots and the busy status.

Quart-free, like ``providers``: the wiring lives in ``quart_app.ratelimit``. In memory by
default; with ``[coordination] redis_url`` in Redis, so several workers and hosts share one
set of limits and one pool capacity, and a killed worker's slots come back by themselves.
"""

from coordination.errors import CoordinationUnavailable
from coordination.factory import Coordination
from coordination.factory import open_coordination
from coordination.limits import Grant
from coordination.limits import LimitPolicy
from coordination.limits import RateLimiter
from coordination.limits import RateLimitExceeded
from coordination.limits import Verdict
from coordination.ratelimits import RateLimits
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
