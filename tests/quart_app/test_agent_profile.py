"""``[agent] model_profile = "auto"``: small for the embedded model, large otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest

from providers.pool import ProviderPool
from providers.settings import UpstreamSettings
from providers.upstream import Upstream
from quart_app.agent_profile import agent_profile
from quart_app.config import AgentSettings


@dataclass
class _Member:
    upstream: Upstream


class _Upstream:
    def __init__(self, kind: str) -> None:
        self.settings = UpstreamSettings(name=kind, kind=kind, base_url="http://127.0.0.1:1/v1")  # type: ignore[arg-type]


class _Pool:
    """The two questions ``agent_profile`` asks the pool."""

    def __init__(self, *kinds: str) -> None:
        self.members = [_Member(cast(Upstream, _Upstream(kind))) for kind in kinds]
        self.asked: list[str] = []

    async def default_model(self) -> str:
        return "the-default"

    async def candidates(self, model: str) -> list[_Member]:
        self.asked.append(model)
        return self.members


def _pool(*kinds: str) -> ProviderPool:
    return cast(ProviderPool, _Pool(*kinds))


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (("local",), "small"),
        (("openai",), "large"),
        (("ollama",), "large"),
        (("local", "openai-compatible"), "large"),  # either may serve: plan for the larger
    ],
)
async def test_auto_follows_who_serves_the_model(kinds: tuple[str, ...], expected: str) -> None:
    assert await agent_profile(AgentSettings(), _pool(*kinds), None) == expected


async def test_the_agents_own_model_is_the_one_asked_about() -> None:
    pool = _Pool("local")
    await agent_profile(AgentSettings(model="local/tiny"), cast(ProviderPool, pool), None)
    assert pool.asked == ["local/tiny"]


async def test_a_configured_profile_wins_and_byok_is_large() -> None:
    assert (
        await agent_profile(AgentSettings(model_profile="small"), _pool("openai"), None) == "small"
    )
    assert (
        await agent_profile(AgentSettings(model_profile="large"), _pool("local"), None) == "large"
    )
    byok = cast(Upstream, _Upstream("ollama"))
    assert await agent_profile(AgentSettings(), _pool("local"), byok) == "large"


def test_a_wrong_profile_is_refused_at_startup() -> None:
    from quart_app.config import ConfigError
    from quart_app.config import Settings

    with pytest.raises(ConfigError, match=r"agent\.model_profile"):
        Settings.load({"STORYWRITER_AGENT__MODEL_PROFILE": "tiny"})
    loaded = Settings.load({"STORYWRITER_AGENT__MODEL_PROFILE": "small"})
    assert loaded.agent.model_profile == "small"


def test_the_rule_itself() -> None:
    from agent.context import resolve_profile

    assert resolve_profile("auto", ["local"]) == "small"
    assert resolve_profile("auto", ["local", "local"]) == "small"
    assert resolve_profile("auto", []) == "large"
    assert resolve_profile("auto", ["local", "ollama"]) == "large"
    assert resolve_profile("small", ["openai"]) == "small"
    assert resolve_profile("large", ["local"]) == "large"
