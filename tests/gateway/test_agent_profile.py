"""``[agent] model_profile = "auto"``: small for the embedded model, large otherwise."""

from __future__ import annotations

import copy

import pytest

from agent.context import resolve_profile
from bench.upstream import ScriptedUpstream
from quart_app.config import ConfigError
from quart_app.config import Settings
from tests.agent.frames import classification
from tests.agent.samples import SAMPLE
from tests.blueprints.agent_support import AGENT
from tests.blueprints.agent_support import agent_frames
from tests.blueprints.agent_support import answer_with
from tests.blueprints.agent_support import schema_name
from tests.conftest import MODEL
from tests.conftest import AppFactory
from tests.conftest import auth
from tests.conftest import settings_for
from tests.conftest import stream


def test_the_rule_itself() -> None:
    assert resolve_profile("auto", ["local"]) == "small"
    assert resolve_profile("auto", ["local", "local"]) == "small"
    assert resolve_profile("auto", []) == "large"
    assert resolve_profile("auto", ["local", "ollama"]) == "large"  # plan for the larger
    assert resolve_profile("small", ["openai"]) == "small"
    assert resolve_profile("large", ["local"]) == "large"


def test_a_wrong_profile_is_refused_at_startup() -> None:
    with pytest.raises(ConfigError, match=r"agent\.model_profile"):
        Settings.load({"STORYWRITER_AGENT__MODEL_PROFILE": "tiny"})
    loaded = Settings.load({"STORYWRITER_AGENT__MODEL_PROFILE": "small"})
    assert loaded.agent.model_profile == "small"


@pytest.mark.parametrize(("kind", "classified"), [("local", False), ("openai", True)])
async def test_a_turn_takes_the_profile_of_who_serves_the_agents_model(
    make_app: AppFactory, upstream: ScriptedUpstream, token: str, kind: str, classified: bool
) -> None:
    # An explicit rename: the small profile reads it with code, the large one asks the model.
    answer_with(
        upstream,
        {"classification": classification(("modification", "character", "Rename", "Mira"))},
        ["Done."],
    )
    providers = [{"name": "p", "kind": kind, "base_url": upstream.base_url, "models": [MODEL]}]
    async with make_app(settings_for(upstream, providers=providers)) as app:
        body = {"message": "Rename Mira to Ann", "scenario": copy.deepcopy(SAMPLE)}
        status, _, writes = await stream(app, AGENT, body, auth(token))
        assert status == 200
        assert agent_frames(writes)[-1]["metadata"]["status"] in ("completed", "error")
    names = [schema_name(r.body) for r in upstream.chat_requests if isinstance(r.body, dict)]
    assert ("classification" in names) is classified
