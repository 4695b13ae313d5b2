"""How many credits a request holds before it runs: one rule for the proxy and the agent.

The hold covers the worst case - the prompt (estimated without a tokenizer, see
``providers.tokens.estimate_prompt_tokens``) plus every completion token the request may
ask for - at the highest multiplier among the upstreams that may serve it. The settlement
then charges the real usage and releases the rest.
"""

from __future__ import annotations

from credits.pricing import estimate_reservation

__all__ = ["hold_for"]


def hold_for(prompt_estimate: int, max_tokens: int, multiplier: float) -> int:
    """Credits to hold for a call of ``prompt_estimate`` + up to ``max_tokens`` tokens.

    Args:
        prompt_estimate: The prompt's estimated tokens.
        max_tokens: The most the model may generate (an agent turn: over all its calls).
        multiplier: The highest credit multiplier of the upstreams that may serve it.
    """
    return estimate_reservation(prompt_estimate, max_tokens, multiplier)
