"""Per-user rate limits: the rules, where they are counted, and admission.

``rules`` holds the policy, the verdict both backends give and the grant; ``local`` counts
in this process (aiolimiter buckets), ``shared`` in Redis (one Lua call per admission);
``admission`` is the front the wiring calls (admit, learn the real usage, headers).
"""

from coordination.limits.admission import RateLimits
from coordination.limits.admission import describe
from coordination.limits.admission import retry_after
from coordination.limits.local import LocalRateLimiter
from coordination.limits.rules import Grant
from coordination.limits.rules import LimitPolicy
from coordination.limits.rules import RateLimiter
from coordination.limits.rules import RateLimitExceeded
from coordination.limits.rules import Verdict

__all__ = [
    "Grant",
    "LimitPolicy",
    "LocalRateLimiter",
    "RateLimitExceeded",
    "RateLimiter",
    "RateLimits",
    "Verdict",
    "describe",
    "retry_after",
]
