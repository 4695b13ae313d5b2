"""Credits and cost estimates of one call (contract 7).

Credits are ``ceil((prompt + completion tokens) x multiplier)``; the reservation uses the same
formula on the upper bound ``prompt + max_tokens``. The float product is rounded to 1e-9
first so that ``10 x 0.1`` is 1 credit, not 2.
"""

from __future__ import annotations

import math

from providers.settings import UpstreamSettings

__all__ = ["cost_usd", "credits_for"]


def credits_for(tokens: int, multiplier: float) -> int:
    """Credits for ``tokens`` at ``multiplier``."""
    return math.ceil(round(tokens * multiplier, 9))


def cost_usd(settings: UpstreamSettings, prompt_tokens: int, completion_tokens: int) -> float:
    """The upstream's price for the call, from its per-1,000-token prices."""
    return round(
        prompt_tokens * settings.price_prompt_per_1k / 1000
        + completion_tokens * settings.price_completion_per_1k / 1000,
        8,
    )
