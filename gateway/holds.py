"""How many credits a request holds before it runs, and how many tokens that buys.

One rule for the proxy and the agent (contract.md 7): a request holds what it may cost -
its prompt (estimated without a tokenizer, ``providers.tokens.estimate_prompt_tokens``)
plus every completion token it may get, at the highest multiplier of the upstreams that
may serve it - but never more than the balance affords. The completion it may get is what
it asked for, cut to the model's output limit when that is known. A balance that cannot
pay for the prompt plus a minimum answer (``[credits] min_completion_tokens``) is refused
with 402; any balance above that is held whole, and the upstream is sent the
``max_tokens`` the hold pays for, so the bill can never exceed the balance. The settlement
then charges the real usage and releases the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from credits.pricing import credits_for
from credits.pricing import tokens_for

__all__ = ["CapReason", "HoldPlan", "cap_reason", "plan_hold", "wanted_tokens"]

CapReason = Literal["credits", "model_limit"]
"""Why a request was sent fewer ``max_tokens`` than it asked for."""


@dataclass(frozen=True, slots=True)
class HoldPlan:
    """What a request should hold, at most and at least, and what a hold buys."""

    prompt_tokens: int
    """The prompt's estimate."""
    asked: int
    """The ``max_tokens`` the request asked for."""
    wanted: int
    """``asked`` cut to the model's output limit."""
    multiplier: float
    """The highest credit multiplier of the upstreams that may serve it."""
    maximum: int
    """Credits for the prompt and ``wanted`` completion tokens."""
    minimum: int
    """Credits for the prompt and the minimum answer: less is refused (402)."""

    def completion_for(self, held: int) -> int:
        """Completion tokens ``held`` credits pay for after the prompt (at most ``wanted``)."""
        affordable = tokens_for(held, self.multiplier)
        if held >= self.maximum or affordable is None:
            return self.wanted
        return max(0, min(self.wanted, affordable - self.prompt_tokens))


def wanted_tokens(max_tokens: int, output_limit: int | None) -> int:
    """What a call asking for ``max_tokens`` may get from a model of ``output_limit``."""
    return max_tokens if output_limit is None else min(max_tokens, output_limit)


def cap_reason(asked: int, wanted: int, completion: int) -> CapReason | None:
    """Why a call asking for ``asked`` is sent only ``completion`` (None: it is not)."""
    if completion >= asked:
        return None
    return "credits" if completion < wanted else "model_limit"


def plan_hold(
    prompt_tokens: int,
    max_tokens: int,
    multiplier: float,
    *,
    min_completion: int,
    output_limit: int | None = None,
    min_prompt_tokens: int | None = None,
) -> HoldPlan:
    """Plan the hold of a call of ``prompt_tokens`` asking for up to ``max_tokens``.

    Args:
        prompt_tokens: The prompt's estimated tokens.
        max_tokens: The completion tokens asked for (an agent turn: over all its calls).
        multiplier: The highest credit multiplier of the upstreams that may serve it.
        min_completion: The shortest answer worth paying for (``[credits]
            min_completion_tokens``); never more than what was asked.
        output_limit: The model's own completion limit, when known.
        min_prompt_tokens: The prompt of the cheapest useful run, when it is less than the
            whole (an agent turn can answer without its optional last call).
    """
    wanted = wanted_tokens(max_tokens, output_limit)
    floor = min(min_completion, wanted)
    return HoldPlan(
        prompt_tokens=prompt_tokens,
        asked=max_tokens,
        wanted=wanted,
        multiplier=multiplier,
        maximum=credits_for(prompt_tokens, wanted, multiplier),
        minimum=credits_for(
            prompt_tokens if min_prompt_tokens is None else min_prompt_tokens, floor, multiplier
        ),
    )
