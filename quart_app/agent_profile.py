"""Resolve ``[agent] model_profile = "auto"`` for one turn, from who serves the model.

The embedded model (provider kind ``local``, SmolLM2-135M by default) follows instructions
weakly and reads prompts at ~120 tokens/s: it gets the ``small`` profile. Anything else -
a hosted API, LM Studio, Ollama, vLLM, a user's own key - gets ``large`` unless the
operator says otherwise, because only they know how big the model behind it is.
"""

from __future__ import annotations

from agent.context import ModelProfile
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
        return config.model_profile
    if byok is not None:
        return "large"
    members = await pool.candidates(config.model or await pool.default_model())
    local = bool(members) and all(m.upstream.settings.kind == "local" for m in members)
    return "small" if local else "large"
