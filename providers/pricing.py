"""Credit prices and cost estimates: integer credits from token counts and a multiplier.

contract.md 7 prices a request at ``ceil((prompt + completion tokens) x multiplier)``.
Multipliers such as 0.1 or 1.1 are not exact in binary floating point (``50 * 1.1`` is
``55.00000000000001``), so a naive ``math.ceil`` would overcharge by one credit. The
multiplier goes through its shortest decimal representation and the product is computed
in `Decimal`, which is exact for the values an operator writes.
"""

from __future__ import annotations

import math
from decimal import Decimal

from providers.settings import UpstreamSettings

__all__ = ["cost_usd", "credits_for", "estimate_reservation"]


def _as_decimal(multiplier: float | int | Decimal) -> Decimal:
    """Convert a multiplier to the decimal the operator meant, rejecting nonsense."""
    # str() of a float is its shortest round-tripping repr: 0.1 -> "0.1", not 0.1000...0555.
    value = multiplier if isinstance(multiplier, Decimal) else Decimal(str(multiplier))
    if not value.is_finite() or value < 0:
        raise ValueError(f"credit multiplier must be a finite number >= 0, got {multiplier!r}")
    return value


def credits_for(
    prompt_tokens: int, completion_tokens: int, multiplier: float | int | Decimal
) -> int:
    """Price a request's actual usage.

    Args:
        prompt_tokens: Tokens sent to the model.
        completion_tokens: Tokens the model generated.
        multiplier: The provider's ``credit_multiplier`` (openai 1.0, github 1.5, ...).

    Returns:
        ``ceil((prompt_tokens + completion_tokens) * multiplier)`` computed exactly.

    Raises:
        ValueError: A token count is negative or the multiplier is negative or not finite.
    """
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError("token counts must be >= 0")
    return math.ceil((prompt_tokens + completion_tokens) * _as_decimal(multiplier))


def estimate_reservation(
    prompt_tokens: int, max_tokens: int, multiplier: float | int | Decimal
) -> int:
    """Price the worst case of a request before it runs, to reserve that many credits.

    Args:
        prompt_tokens: Estimated prompt tokens (from the tokenizer).
        max_tokens: The request's completion limit, the most the model may generate.
        multiplier: The provider's ``credit_multiplier``.

    Returns:
        The reservation: the same formula as `credits_for` on the upper bound.

    Raises:
        ValueError: As for `credits_for`.
    """
    return credits_for(prompt_tokens, max_tokens, multiplier)


def cost_usd(settings: UpstreamSettings, prompt_tokens: int, completion_tokens: int) -> float:
    """The upstream's price for the call in USD, from its per-1,000-token prices."""
    return round(
        prompt_tokens * settings.price_prompt_per_1k / 1000
        + completion_tokens * settings.price_completion_per_1k / 1000,
        8,
    )
