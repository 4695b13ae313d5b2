"""Fixtures of the agent tests: a fake model pool, its context, the graph, a scenario."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent import AgentContext
from agent import build_graph
from agent.graph import AgentGraph
from tests.agent.fakes import FakeModels
from tests.agent.samples import SAMPLE


@pytest.fixture(name="models")
def _models() -> FakeModels:
    return FakeModels()


@pytest.fixture(name="context")
def _context(models: FakeModels) -> AgentContext:
    return AgentContext(models=models, model="scripted-model")


@pytest.fixture(name="graph", scope="session")
def _graph() -> AgentGraph:
    return build_graph()


@pytest.fixture(name="scenario")
def _scenario() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE)
