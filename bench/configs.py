"""The configurations one benchmark run measures side by side, against one upstream.

Why several in one run: the machine is shared and its speed drifts by up to 1.7x between
hours, so a claim such as "the shipped defaults keep 0.85x of the lean figures" only holds
when both were measured in the same minutes. The runner interleaves them repetition by
repetition (direct, shipped, lean, ... in rotating order), each against the same scripted
upstream and the same load generator.

- ``shipped``: what a user runs - the credit ledger on (SQLite), the access log on, metrics
  on, rate limits on (with limits no benchmark reaches, so their bookkeeping is paid).
- ``lean``: ledger and access log off (the README's figures before issue 15).
- ``ledger-only`` / ``log-only``: one of the two on, to tell what each costs.
- ``postgres-2w``: the multi-worker deployment - two workers, PostgreSQL ledger, Redis for
  limits and slots, access log on; unpinned (both workers share the two cores with the
  upstream and the load generator), so its figures are absolute, not per core.
- ``quart-relay`` / ``asgi-relay``: ``bench.ceiling_app``, a relay that only forwards bytes
  (bare Quart, and plain ASGI without Quart): what the framework can do at all.
- ``before`` / ``before-shipped``: the lean and the shipped configurations served from
  another checkout (``--before TREE``), to put numbers before and after a change side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

__all__ = [
    "ASGI_RELAY",
    "BEFORE",
    "BEFORE_SHIPPED",
    "LEAN",
    "LEDGER_ONLY",
    "LOG_ONLY",
    "POSTGRES",
    "QUART_RELAY",
    "SHIPPED",
    "Configuration",
    "configurations",
]

SHIPPED: Final = "shipped"
LEAN: Final = "lean"
POSTGRES: Final = "postgres-2w"
QUART_RELAY: Final = "quart-relay"
ASGI_RELAY: Final = "asgi-relay"
BEFORE: Final = "before"
BEFORE_SHIPPED: Final = "before-shipped"
LEDGER_ONLY: Final = "ledger-only"
LOG_ONLY: Final = "log-only"


@dataclass(frozen=True, slots=True)
class Configuration:
    """One way to run the service, and the scenarios it is measured in."""

    name: str
    title: str
    scenarios: str
    options: dict[str, Any] = field(default_factory=dict)
    """``bench.stack.StackOptions`` fields (besides the work directory and the cores)."""
    pinned: bool = True
    """One worker on core 1 (targets.md); False lets the workers use both cores."""


def configurations(
    wanted: str, *, postgres_url: str, redis_url: str, before: Path | None
) -> list[Configuration]:
    """The configurations named in ``wanted`` (comma-separated), shipped first when named."""
    known = {
        SHIPPED: Configuration(
            SHIPPED,
            "Shipped defaults",
            "ABCDEG",
            {"credits": True, "access_log": True},
        ),
        LEAN: Configuration(LEAN, "Lean", "ABCDEG", {"credits": False, "access_log": False}),
        LEDGER_ONLY: Configuration(
            LEDGER_ONLY, "Ledger only", "ABCDEG", {"credits": True, "access_log": False}
        ),
        LOG_ONLY: Configuration(
            LOG_ONLY, "Access log only", "ABCDEG", {"credits": False, "access_log": True}
        ),
        POSTGRES: Configuration(
            POSTGRES,
            "PostgreSQL, 2 workers",
            "BCD",
            {
                "credits": True,
                "access_log": True,
                "workers": 2,
                "ledger_url": postgres_url,
                "redis_url": redis_url,
            },
            pinned=False,
        ),
        QUART_RELAY: Configuration(
            QUART_RELAY, "Bare Quart relay", "CE", {"app": "bench.ceiling_app:app"}
        ),
        ASGI_RELAY: Configuration(
            ASGI_RELAY, "Plain ASGI relay", "CE", {"app": "bench.ceiling_app:raw_app"}
        ),
    }
    if before is not None:
        known[BEFORE] = Configuration(
            BEFORE,
            f"Lean, before ({before.name})",
            "ABCDEG",
            {"credits": False, "access_log": False, "tree": before},
        )
        known[BEFORE_SHIPPED] = Configuration(
            BEFORE_SHIPPED,
            f"Shipped, before ({before.name})",
            "ABCDEG",
            {"credits": True, "access_log": True, "tree": before},
        )
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    if before is not None and not {BEFORE, BEFORE_SHIPPED} & set(names):
        names += [BEFORE, BEFORE_SHIPPED]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]
