"""Read explicit requests with code, so that a small model only writes what is open.

A 135M model cannot be trusted to tell "add a villain named Morvane" from a style change,
but English can: the request's verb (add, rename, delete, make, explain...), its object
(a kind of entity, an existing name, a field) and its literal values ("to Ann", "named
Morvane") say what to do. ``parse_request`` turns a message into ``Command`` operations
when every part of it is understood (``agent.clauses`` splits it, ``agent.rules`` reads
each part), and answers None otherwise, so the model is only asked to sort what the rules
do not cover; ``from_intent`` then builds the operation from the model's two words.

The rules are general English of story editing (``agent.lexicon``, ``agent.phrases``);
they look at a scenario only to know which names exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agent.clauses import split_clauses
from agent.clauses import states
from agent.command import Command
from agent.lexicon import TONE_WORDS
from agent.llm_schemas import Action
from agent.llm_schemas import Target
from agent.phrases import kind_of
from agent.rules import Reader
from agent.rules import Subject
from agent.targets import entities_of
from agent.targets import find_named
from agent.targets import plain
from agent.targets import words

__all__ = ["Command", "from_intent", "parse_request", "split_clauses"]

_CLARIFIED = re.compile(
    r"^(?P<base>.+?)\s*\((?:meaning\s+|i mean\s+)?(?P<name>[^()]{1,60})\)\s*[.!?]*$"
)


def _merge(commands: list[Command]) -> list[Command]:
    """Adjacent answers in prose become one; courtesy next to a request is dropped."""
    requests = [c for c in commands if c.action != "general_conversation"]
    if requests and any(c.action != "details" for c in requests):
        commands = requests
    merged: list[Command] = []
    for command in commands:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and command.action in ("general_conversation", "details")
            and previous.action == command.action
            and previous.target == command.target
            and previous.entity == command.entity
        ):
            prompt = f"{previous.prompt} {command.prompt}"
            merged[-1] = previous.model_copy(update={"prompt": prompt})
        else:
            merged.append(command)
    return merged


def _clarified(message: str, scenario: Mapping[str, Any]) -> tuple[str, str | None]:
    """Split a request resent after a clarifying question from the entity it names.

    "Change her name to Ann (Mira)" -> ("Change her name to Ann", "Mira").
    """
    found = _CLARIFIED.match(message.strip())
    if found is None:
        return message, None
    name = found.group("name").strip()
    for key in ("characters", "locations", "scenes"):
        if find_named(entities_of(scenario, key), name)[0]:
            return found.group("base"), name
    return message, None


def parse_request(message: str, scenario: Mapping[str, Any]) -> list[Command] | None:
    """Read a writer's message into operations, or None if any part is not understood.

    Args:
        message: The writer's message.
        scenario: The scenario, to know which names exist (never changed).

    Returns:
        The operations in the order asked, or None (the model should sort it).
    """
    message = plain(message)
    text, named = _clarified(message, scenario)
    reader = Reader(scenario)
    commands: list[Command] = []
    context: list[str] = []
    for clause in split_clauses(text):
        parsed = reader.clause(clause)
        if parsed is None and states(clause):
            context.append(clause)  # "It's too long-winded, tighten the synopsis": a reason
            continue
        if parsed is None:
            return None
        commands += parsed
    if context:
        edits = [c for c in commands if c.action in ("modification", "creation")]
        if not edits:
            return None
        commands = [
            c.model_copy(update={"prompt": message}) if c is edits[0] else c for c in commands
        ]
    if named is not None:
        commands = [
            c.model_copy(update={"entity": named, "prompt": message}) if c.entity else c
            for c in commands
        ]
    return _merge(commands) or None


def from_intent(
    action: Action, target: Target, message: str, scenario: Mapping[str, Any]
) -> Command:
    """Build the operation for a message the rules could not read, from a model's intent.

    The model said what the writer wants (``action``) and roughly about what (``target``).

    Code still finds what it is about where it can - a field noun, an existing entity by
    name, role or kind - so the model's words only decide what code cannot: change it,
    explain it or add to it. A change nothing identifies becomes an answer in prose
    rather than a guessed edit, and nothing is ever deleted (or a scenario replaced) on a
    model's guess: a small model's sorting is close to chance.
    """
    message = plain(message)
    reader = Reader(scenario)
    chat = Command(action="general_conversation", target="general", prompt=message)
    if action == "general_conversation":
        return chat
    if action == "deletion":
        return chat  # deleting is never done on a model's guess: the rules need "delete X"
    if action == "creation":
        kind = kind_of(message)
        if kind == "scenario":
            return Command(action="creation", target="scenario", prompt=message, hint=message)
        if kind in ("character", "location", "scene"):
            return reader.new_entities(kind, message, message, 1)[0]
        return chat
    about = reader.subject(message)
    if about is None and target in ("character", "location", "scene"):
        about = Subject(False, target, message)
    if about is None:
        tone = bool(set(words(message)) & TONE_WORDS)
        if action == "modification" and tone:
            return Command(action=action, target="writingStyle", prompt=message, focus="tone")
        if action == "details":
            return Command(action="details", target="scenario", prompt=message)
        return chat
    if about.field:
        if action == "modification":
            return reader.field_edit((about.target, about.detail), message)[0]
        if action == "details" and about.target != "writingStyle":
            return reader.op("details", about.target, message)
        return chat
    kind, phrase = about.target, about.detail
    if action == "modification":
        edited = reader.open_edit(phrase, message, message)
        return edited[0] if edited else chat
    return reader.op(action, kind, message, entity=phrase)
