"""The last two nodes: ``commit`` (the one scenario change) and ``follow_ups``.

``commit`` runs only after every operation succeeded, so a failure midway never leaves a
half-applied turn on the client. ``follow_ups`` never fails a turn: if its LLM call
fails, canned suggestions for the turn's first action are used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.messages import SystemMessage
from pydantic import ValidationError

from agent import events
from agent.errors import AgentError
from agent.llm_schemas import FollowUps
from agent.nodes.common import NodeRuntime
from agent.nodes.common import emit
from agent.nodes.create import SCENARIO_CONTENT
from agent.patches import scenario_changes
from agent.prompts import FOLLOW_UPS
from agent.prompts import fill
from agent.scenario import ScenarioUpdate
from agent.state import State
from agent.structured import ask_structured
from agent.suggestions import suggest
from agent.views import scenario_index

__all__ = ["CANNED", "commit", "follow_ups", "pick_questions"]

logger = logging.getLogger(__name__)

FOLLOW_UP_COUNT = 3
"""Suggestions per turn (contract.md 8.3)."""

CANNED: dict[str, tuple[str, ...]] = {
    "details": (
        "What are the weak points of my story?",
        "Tell me more about the main character.",
        "How could the story arc be more gripping?",
    ),
    "modification": (
        "Explain what you changed.",
        "Make the tone darker.",
        "Add a new supporting character.",
    ),
    "creation": (
        "Describe the new addition in more detail.",
        "Add a location for this story.",
        "Suggest a plot twist.",
    ),
    "deletion": (
        "Summarize the story so far.",
        "Create a new supporting character.",
        "Suggest a plot twist.",
    ),
    "general_conversation": (
        "Explain my scenario.",
        "Create a new supporting character.",
        "Suggest a title for my story.",
    ),
}
"""Fallback suggestions per action of the turn's first operation."""


def pick_questions(proposed: Sequence[str], fallback: Sequence[str]) -> list[str]:
    """Return exactly three distinct, non-empty suggestions, topped up from ``fallback``."""
    picked: list[str] = []
    for question in [*proposed, *fallback, *CANNED["general_conversation"]]:
        text = " ".join(question.split())
        if text and text.casefold() not in {p.casefold() for p in picked}:
            picked.append(text)
        if len(picked) == FOLLOW_UP_COUNT:
            break
    return picked


async def commit(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Emit the turn's single tool_call frame, if the scenario changed.

    Raises:
        AgentError: The merged change does not validate against the scenario schema.
    """
    changes = scenario_changes(state.scenario, state.working)
    if state.created:
        changes = {**{k: state.working[k] for k in SCENARIO_CONTENT}, **changes}
    if not changes:
        return {}
    try:
        ScenarioUpdate.model_validate(changes)
    except ValidationError as exc:
        logger.warning("scenario change rejected: %s", [e["loc"] for e in exc.errors()])
        raise AgentError(
            "The AI produced a scenario change the editor cannot use, so nothing was changed."
        ) from None
    emit(
        runtime,
        events.create_scenario(changes) if state.created else events.update_scenario(changes),
    )
    return {}


async def follow_ups(state: State, runtime: NodeRuntime) -> dict[str, Any]:
    """Emit the follow-up frame with exactly three suggestions; never fails the turn."""
    emit(runtime, events.status("suggesting", node="follow_ups", content="Suggesting next steps"))
    action = state.operations[0].action if state.operations else "general_conversation"
    proposed: Sequence[str] = state.suggestions
    if not proposed and runtime.context.model_profile == "small":
        proposed = suggest(state)  # a small model's suggestions cost a call and rarely help
    if not proposed:
        prompt = [
            SystemMessage(
                fill(FOLLOW_UPS, index=scenario_index(state.working), done="; ".join(state.done))
            ),
            HumanMessage(state.message),
        ]
        try:
            answer = await ask_structured(
                runtime.context, FollowUps, prompt, name="follow_ups", max_repairs=0
            )
            proposed = answer.questions
        except Exception as exc:  # CancelledError is not an Exception: it propagates
            logger.info("follow-up suggestions failed (%s); using canned ones", type(exc).__name__)
    emit(runtime, events.follow_ups(pick_questions(proposed, CANNED[action])))
    return {}
