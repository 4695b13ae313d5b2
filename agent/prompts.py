"""Prompt texts and message builders for every LLM call of the agent.

Prompts are short and example-driven because the default model is a 135M-parameter local
model; structure comes from JSON schemas (``agent.structured``), not from prose rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from langchain_core.messages import AIMessage
from langchain_core.messages import BaseMessage
from langchain_core.messages import HumanMessage
from langchain_core.messages import SystemMessage

from agent.state import HistoryMessage
from agent.state import State

__all__ = [
    "CHAT",
    "CLASSIFY",
    "CREATE_ENTITY",
    "CREATE_SCENARIO",
    "EDIT",
    "EXPLAIN",
    "FOLLOW_UPS",
    "JSON_ONLY",
    "REPAIR",
    "SMALL_ADD",
    "SMALL_CHAT",
    "SMALL_CREATE",
    "SMALL_CREATE_TASK",
    "SMALL_EDIT_TASK",
    "SMALL_EXPLAIN",
    "SMALL_INTENT",
    "SMALL_REPLACE",
    "SMALL_SCENARIO",
    "SMALL_SHORT",
    "conversation",
    "fill",
    "messages",
    "task_text",
]

CLASSIFY = """You sort a writer's message to a story-writing assistant into operations:
one per request, in the order asked. "entity" is the name (or role) of the existing
character or location a request is about, else null.

The writer's scenario:
{index}"""

EXPLAIN = """You are a helpful story-writing assistant. Answer the writer's question about
their scenario clearly and concisely, in plain text (no JSON, no markdown tables).

The scenario:
{scenario}"""

CHAT = """You are a friendly story-writing assistant inside a story editor. Answer the
writer briefly, in plain text. You can explain the scenario, change it, or create
characters, locations or a whole scenario when asked.

The scenario: {index}"""

EDIT = """You edit part of a writer's story scenario. Return only the fields the writer
asked to change, each with its complete new text; leave every other field null.

The scenario:
{scenario}

What you are editing now ({target}):
{current}"""

CREATE_ENTITY = """You invent one new {kind} for a writer's story scenario, fitting the
story and different from the existing ones. Follow the writer's request.

The scenario:
{scenario}"""

CREATE_SCENARIO = """You invent a complete new story scenario for a writer, following
their request: title, synopsis, story arc, backstory, writing style, a few characters and
locations."""

FOLLOW_UPS = """Suggest exactly three short messages the writer could send next to a
story-writing assistant, written as the writer would type them (e.g. "Make the villain
scarier"), fitting what just happened.

The scenario: {index}
What the assistant just did: {done}"""

SMALL_EXPLAIN = """You are a helpful story-writing assistant. Answer the writer's question about
their story in a few clear sentences of plain text.

{story}"""

SMALL_CHAT = """You are a friendly assistant in a story-writing app. You can explain the
writer's story, change its characters, locations, scenes and style, or add new ones.
Answer briefly, in plain text."""

SMALL_ADD = """You help a writer edit their story. Write ONE new sentence for the {label} of
{what} that makes the change the writer asks for. Do not repeat the current text."""

SMALL_REPLACE = """You help a writer edit their story. Rewrite the {label} of {what} the way the
writer asks. Write the complete new text."""

SMALL_SHORT = """You help a writer edit their story. Write the new {label} of {what} the way
the writer asks, in a few words."""

SMALL_EDIT_TASK = """{Label} of {what}: {current}
Request: {request}"""

SMALL_CREATE = """You invent a new {kind} for a writer's story, doing what the writer asks.
It must fit the story and differ from what exists."""

SMALL_CREATE_TASK = """Story: {story}
Existing {plural}: {existing}
Request: {request}{known}"""

SMALL_SCENARIO = """You invent a new story for a writer, doing what the writer asks."""

SMALL_INTENT = """Sort the writer's message to a story-writing assistant: what they want
(explain, chat, change, add, delete) and what it is about."""

JSON_ONLY = """

Reply with one JSON object only, no other text. Its keys:
{guide}"""

REPAIR = """That reply was not valid ({problem}). Reply again with only the corrected JSON
object, matching the schema."""


def fill(template: str, **values: str) -> str:
    """Substitute ``{name}`` placeholders; unlike ``str.format`` it leaves JSON braces alone."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def conversation(history: Sequence[HistoryMessage]) -> list[BaseMessage]:
    """Turn earlier messages into langchain messages."""
    return [HumanMessage(m.content) if m.role == "user" else AIMessage(m.content) for m in history]


def task_text(state: State) -> str:
    """Return the request the current operation must handle.

    With one operation it is the writer's own message (the most faithful text); with
    several, the operation's own part (the whole message goes to the system prompt).
    """
    part = state.operation.prompt.strip()
    return part if len(state.operations) > 1 and part else state.message


def messages(
    system: str, state: State, *, history: bool = True, max_history: int | None = None
) -> list[BaseMessage]:
    """Build a system prompt, the history and the current task into a message list.

    Args:
        system: The system prompt.
        state: The turn's state (message, operations, history).
        history: Whether earlier messages are included.
        max_history: At most this many of them (a small model's context is short).
    """
    if len(state.operations) > 1:
        system += f"\n\nThe writer's whole message was: {json.dumps(state.message)}"
        system += "\nHandle only the request below; other parts are handled separately."
    kept = (
        state.history
        if max_history is None
        else state.history[-max_history:]
        if max_history
        else []
    )
    past = conversation(kept) if history else []
    return [SystemMessage(system), *past, HumanMessage(task_text(state))]
