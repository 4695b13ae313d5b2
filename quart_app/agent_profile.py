"""Resolve ``[agent] model_profile`` for one turn, from who serves the agent's model.

The rule itself is ``agent.context.resolve_profile`` (small only for the embedded
``local`` kind); this looks up the kinds of the upstreams that serve the turn.
"""

from __future__ import annotations

from agent.context import ModelProfile
from agent.context import resolve_profile
from providers.pool import ProviderPool
from providers.upstream import Upstream
from quart_app.config import AgentSettings

__all__ = ["agent_profile"]


async def agent_profile(
    config: AgentSettings, pool: ProviderPool, byok: Upstream | None
) -> ModelProfile:
    """The profile of a turn: the configured one, or ``auto`` decided by provider kind.

    Args:
        config: ``[agent]`` settings.
        pool: The provider pool the turn's calls go to.
        byok: The caller's own upstream, if the turn uses one.
    """
    if config.model_profile != "auto":
        return resolve_profile(config.model_profile, ())
    if byok is not None:
        return resolve_profile("auto", [byok.settings.kind])
    members = await pool.candidates(config.model or await pool.default_model())
    return resolve_profile("auto", [m.upstream.settings.kind for m in members])
