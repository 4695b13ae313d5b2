from __future__ import annotations

import math
from decimal import Decimal

import pytest

from credits.pricing import credits_for
from credits.pricing import estimate_reservation


@pytest.mark.parametrize(
    ("prompt", "completion", "multiplier", "expected"),
    [
        (10, 20, 1.0, 30),
        (10, 20, 1.5, 45),
        (1, 0, 0.1, 1),  # rounds up: a request is never free by truncation
        (10, 0, 0.1, 1),
        (11, 0, 0.1, 2),
        (0, 0, 1.5, 0),
        (30, 20, 1.1, 55),  # 50 * 1.1 is 55.00000000000001 in floats
        (100, 0, 0.07, 7),  # 100 * 0.07 is 7.000000000000001 in floats
        (7, 0, 0, 0),
        (3, 4, 2, 14),
    ],
)
def test_credits_for(prompt: int, completion: int, multiplier: float, expected: int) -> None:
    assert credits_for(prompt, completion, multiplier) == expected


def test_no_float_surprises_across_common_multipliers() -> None:
    for text in ("0.1", "1.1", "0.07", "1.5", "0.3"):
        for tokens in range(0, 5000, 7):
            assert credits_for(tokens, 0, float(text)) == math.ceil(tokens * Decimal(text))


def test_decimal_multiplier() -> None:
    assert credits_for(3, 0, Decimal("0.333")) == 1


def test_estimate_prices_the_upper_bound() -> None:
    assert estimate_reservation(120, 1024, 1.5) == credits_for(120, 1024, 1.5) == 1716
    assert estimate_reservation(0, 1, 0.1) == 1


@pytest.mark.parametrize(
    ("prompt", "completion", "multiplier"),
    [(-1, 0, 1.0), (0, -1, 1.0), (1, 1, -0.5), (1, 1, math.nan), (1, 1, math.inf)],
)
def test_rejects_nonsense(prompt: int, completion: int, multiplier: float) -> None:
    with pytest.raises(ValueError):
        credits_for(prompt, completion, multiplier)
