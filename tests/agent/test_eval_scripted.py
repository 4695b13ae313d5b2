"""The agent evaluation against a flawless scripted model: the mechanics must be perfect.

``bench.agent_eval --scripted`` runs every dev-set case through the real HTTP API, with a
ScriptedUpstream that answers each model call as a perfect model would (the oracle). Any
failure is then the agent's own: routing, the request parser, entity resolution, patching
by id, frames, follow-ups. Both profiles are run: ``large`` (the model classifies and
edits) and ``small`` (code reads the request, the model writes the open parts). Not a
timed test: the numbers of a real model are the benchmark's business, not CI's.
"""

from __future__ import annotations

import pytest

from bench.agent_eval import Run
from bench.agent_eval import evaluate
from bench.agent_eval import select
from bench.agent_eval_cases import CASES
from bench.agent_eval_cases import STARTERS
from bench.agent_eval_model import Op
from bench.agent_eval_report import CaseResult


def _failures(results: list[CaseResult]) -> str:
    return "\n".join(
        f"{r.id}: {r.message!r}\n  expected: {r.expected}\n  happened: {r.happened}\n"
        f"  why: {'; '.join(r.problems)}"
        for r in results
        if not r.correct
    )


@pytest.mark.parametrize("profile", ["large", "small"])
async def test_mechanics_are_perfect_with_a_perfect_model(profile: str) -> None:
    results = await evaluate(Run(scripted=True, profile=profile), select(None))
    assert len(results) == len(CASES)
    assert all(r.valid for r in results), _failures(results)
    assert all(r.correct for r in results), _failures(results)


def test_the_dev_set_covers_what_the_issue_asks_for() -> None:
    ops: set[Op] = {step.op for case in CASES for step in case.steps}
    assert ops == {"explain", "chat", "modify", "create", "delete", "clarify"}
    targets = {step.target for case in CASES for step in case.steps}
    assert {"character", "location", "scene", "scenario", "writingStyle", "title"} <= targets
    assert {"synopsis", "storyarc", "backstory", "notes"} <= targets
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.message for c in CASES if c.starter} == set(STARTERS)
    assert any(len(c.steps) > 1 for c in CASES), "several operations in one message"
    assert any(s.op == "clarify" and not s.ids for c in CASES for s in c.steps), "a missing name"
    assert any(len(s.ids) > 1 and s.op == "modify" for c in CASES for s in c.steps)
