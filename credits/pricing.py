"""What credits cost: credits from tokens and a multiplier, and the one pricing rule.

contract.md 7 prices a request at ``ceil((prompt + completion tokens) x multiplier)``.
Multipliers such as 0.1 or 1.1 are not exact in binary floating point (``50 * 1.1`` is
``55.00000000000001``), so a naive ``math.ceil`` would overcharge by one credit. The
multiplier goes through its shortest decimal representation (the value the operator wrote),
kept as an exact fraction of two integers, so every price is integer arithmetic: exact, and
~0.1 us where a `Decimal` product took ~0.3 (a request is priced a few times: its hold, its
cost chunk, its settlement).
"""

from __future__ import annotations

from decimal import Decimal

from credits.models import UsageRecord
from credits.models import UsageStatus

__all__ = ["credits_for", "estimate_reservation", "price", "tokens_for"]


def _as_fraction(multiplier: float | int | Decimal) -> tuple[int, int]:
    """The multiplier the operator meant as (numerator, denominator), rejecting nonsense."""
    found = _FRACTIONS.get(multiplier)
    if found is None:
        # str() of a float is its shortest round-tripping repr: 0.1 -> "0.1", not 0.10...055.
        value = multiplier if isinstance(multiplier, Decimal) else Decimal(str(multiplier))
        if not value.is_finite() or value < 0:
            raise ValueError(f"credit multiplier must be a finite number >= 0, got {multiplier!r}")
        found = value.as_integer_ratio()
        if len(_FRACTIONS) < 256:  # a deployment has a handful of multipliers
            _FRACTIONS[multiplier] = found
    return found


#: Multipliers already converted: each request prices a few times, always with the same few.
_FRACTIONS: dict[float | int | Decimal, tuple[int, int]] = {}


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
    numerator, denominator = _as_fraction(multiplier)
    return -(-(prompt_tokens + completion_tokens) * numerator // denominator)  # ceiling


def tokens_for(credits: int, multiplier: float | int | Decimal) -> int | None:
    """The most tokens ``credits`` pay for at ``multiplier`` (None: free, no limit).

    The inverse of `credits_for`: ``credits_for(tokens_for(c, m), 0, m) <= c``.
    """
    numerator, denominator = _as_fraction(multiplier)
    if numerator == 0:
        return None
    return max(0, credits * denominator // numerator)


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


def price(record: UsageRecord) -> UsageRecord:
    """Price a settled request once: each call at its own multiplier, rounded up per call.

    The one rule for what a request costs (the ledger charges it, the metrics count it):
    BYOK requests are free, and so is a request that delivered nothing - no completion
    token and not completed (it failed before the first byte). Otherwise every call costs
    ``credits_for`` its tokens at its upstream's multiplier.

    Returns:
        ``record`` with ``credits`` and each call's ``credits`` filled in.
    """
    delivered = record.completion_tokens > 0 or record.status == UsageStatus.COMPLETED
    free = record.byok or not delivered
    return record.priced(
        [
            call.at(
                0
                if free
                else credits_for(call.prompt_tokens, call.completion_tokens, call.multiplier)
            )
            for call in record.calls
        ]
    )
