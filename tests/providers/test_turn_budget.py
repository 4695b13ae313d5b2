"""An agent turn's calls are capped to what is left of its hold, never beyond it."""

from __future__ import annotations

import pytest

from credits.models import CallUsage
from providers.chat_models import TurnUsage
from providers.errors import BudgetExhausted


def test_without_a_hold_a_call_gets_what_it_asks() -> None:
    assert TurnUsage().completion_cap(prompt_estimate=900, asked=512, multiplier=1.0) == 512


def test_a_call_is_capped_to_the_remainder_after_its_prompt() -> None:
    usage = TurnUsage(held=2_000)
    usage.calls.append(CallUsage("p", "m", 700, 100, 1.0))  # 800 spent, 1,200 left
    assert usage.completion_cap(prompt_estimate=1_000, asked=512, multiplier=1.0) == 200
    assert usage.completion_cap(prompt_estimate=100, asked=512, multiplier=1.0) == 512


def test_the_multiplier_decides_what_is_left_buys() -> None:
    usage = TurnUsage(held=150)
    # 150 credits at x0.1 buy 1,500 tokens: 1,000 of prompt leave 500 for the answer.
    assert usage.completion_cap(prompt_estimate=1_000, asked=512, multiplier=0.1) == 500
    assert usage.completion_cap(prompt_estimate=1_000, asked=512, multiplier=0.0) == 512


def test_a_call_the_remainder_cannot_pay_for_is_never_sent() -> None:
    usage = TurnUsage(held=1_000)
    usage.calls.append(CallUsage("p", "m", 600, 300, 1.5))  # 1,350 > 1,000: all spent
    with pytest.raises(BudgetExhausted) as refused:
        usage.completion_cap(prompt_estimate=10, asked=512, multiplier=1.0)
    assert refused.value.code == "INSUFFICIENT_CREDITS"
    assert refused.value.status_code == 402
