"""Edits read by code: set the values the writer stated, or have one field rewritten.

"Rename Mira to Ann", "set the genre to noir", "add a note: ..." need no model at all.
An open request ("make Mira older", "make the tone darker") names one field - the parser
chose it - and a small model writes only that: one sentence added to a description
("make", "give": what was there stays), a rewrite when the writer asked for one
("rewrite", "instead"), or a few words for a short field (tone, role). Each prompt is a
worked example and the current text, nothing to copy from; what comes back is checked
(``agent.quality``): a copy of other text or a text without a word of the request is
replaced by the writer's own words ("Now older."), and the chat line says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Literal

from langchain_core.messages import BaseMessage
from langchain_core.messages import HumanMessage
from langchain_core.messages import SystemMessage

from agent.command import Command
from agent.errors import AgentError
from agent.errors import AgentOutputError
from agent.examples import EDIT_SHOTS
from agent.examples import edit_shots
from agent.lexicon import FAULT_WORDS
from agent.nodes.common import NodeRuntime
from agent.patches import SCENARIO_PROTECTED
from agent.patches import changed_fields
from agent.patches import edit_entities
from agent.patches import entity_by_id
from agent.patches import merge_fields
from agent.prompts import SMALL_ADD
from agent.prompts import SMALL_EDIT_TASK
from agent.prompts import SMALL_REPLACE
from agent.prompts import SMALL_SHORT
from agent.prompts import fill
from agent.prompts import task_text
from agent.quality import SHOT_CHARS
from agent.quality import copied
from agent.quality import junk
from agent.quality import keywords
from agent.quality import on_topic
from agent.quality import scenario_texts
from agent.quality import tidy
from agent.quality import writer_words
from agent.sketches import LONG
from agent.sketches import SHORT_FIELDS
from agent.sketches import Sentence
from agent.sketches import ShortText
from agent.sketches import TextAnswer
from agent.sketches import text_schema
from agent.state import State
from agent.structured import ask_structured
from agent.targets import collection_key
from agent.targets import entities_of
from agent.targets import entity_label
from agent.targets import resolve
from agent.targets import target_label
from agent.targets import words

__all__ = ["DEFAULT_FOCUS", "WRITER_WORDS", "edit_fields", "field_label", "summarize_entities"]

DEFAULT_FOCUS = {
    "character": "extraInfo",
    "location": "visualDescription",
    "scene": "description",
    "writingStyle": "tone",
}
"""The field an open request rewrites when nothing in it names one."""

WRITER_WORDS = "the AI model's text did not fit, so I used your words"
"""Said when the model's text was replaced by the writer's own."""

SAMPLING = {"frequency_penalty": 0.8}
"""A small model at temperature 0 loops; a frequency penalty keeps its text moving (0.8
measured on SmolLM2-135M; llama.cpp's repeat_penalty broke its JSON instead)."""
RETRY_SAMPLING = {"frequency_penalty": 1.0, "temperature": 0.8}
"""A second try, when only a model can make the change: greedy decoding gives the same
text again, some randomness gives another."""

_REWRITE_VERBS = frozenset(
    {"rewrite", "redo", "replace", "reword", "rephrase", "redesign", "rework", "transform",
     "improve", "polish", "tighten", "shorten", "condense", "trim", "simplify", "streamline",
     "fix", "sharpen", "refine"}
)  # fmt: skip
_SHORTER = frozenset(
    {"tighten", "shorten", "condense", "trim", "shorter", "briefer", "tighter", "concise"}
)
_FIELD_LABELS = {
    "extraInfo": "notes",
    "visualDescription": "description",
    "storyarc": "story arc",
    "communicationStyle": "dialogue style",
}
_STYLE_LABELS = {"style": "narrative style", "other": "style notes"}

Mode = Literal["add", "replace", "short"]


def field_label(field: str, kind: str = "") -> str:
    """A field as words ("visualDescription" -> "description")."""
    if kind == "writingStyle":
        return _STYLE_LABELS.get(field, field)
    return _FIELD_LABELS.get(field, field)


def summarize_entities(kind: str, notes: list[tuple[str, list[str]]]) -> str:
    """The chat line that reports entity edits ("Updated character Ann (name).")."""
    if not notes:
        return f"I could not tell what to change in that {kind}."
    parts = [label + " (" + ", ".join(fields) + ")" for label, fields in notes]
    return f"Updated {kind} {'; '.join(parts)}."


def _appended(current: Any, addition: str, separator: str = "\n") -> str:
    if not isinstance(current, str) or not current.strip():
        return addition
    return f"{current.rstrip()}{separator}{addition}"


def _mode(field: str, current: Any, request: str) -> Mode:
    if field in SHORT_FIELDS:
        return "short"
    said = words(request)
    has_text = isinstance(current, str) and bool(current.strip())
    if not has_text or set(said) & _REWRITE_VERBS or "instead" in said:
        return "replace"
    return "add"


def _names(scenario: Mapping[str, Any]) -> list[str]:
    names = [
        str(e.get(k))
        for key in ("characters", "locations", "scenes")
        for e in entities_of(scenario, key)
        for k in ("name", "alias", "title")
        if isinstance(e.get(k), str)
    ]
    title = scenario.get("title")
    return [*names, title] if isinstance(title, str) else names


@dataclass(frozen=True, slots=True)
class _Written:
    value: str
    """The field's new value."""
    own_words: bool
    """Whether the writer's words replaced the model's text."""


async def _ask(
    runtime: NodeRuntime,
    prompt: list[BaseMessage],
    schema: type[TextAnswer],
    *,
    field: str,
    current: str,
    sampling: Mapping[str, Any],
) -> str:
    """One call for a field's text; empty when the model gave nothing valid."""
    try:
        answer = await ask_structured(
            runtime.context,
            schema,
            prompt,
            name=f"{field}_text",
            validation_context={"current": current},
            max_repairs=0,
            max_tokens=200,
            guide=False,
            sampling=sampling,
        )
    except AgentOutputError:
        return ""
    return tidy(answer.text) if schema is not ShortText else answer.text.strip(" .")


async def _write(
    runtime: NodeRuntime,
    state: State,
    *,
    field: str,
    current: Any,
    what: str,
    about: str = "",
    kind: str = "",
) -> _Written:
    """Have the model write one field's change; check it; fall back to the writer's words.

    Args:
        runtime: LangGraph runtime carrying the ``AgentContext``.
        state: The turn's state.
        field: The field to change.
        current: Its current value.
        what: What it belongs to, in words ("the character Mira").
        about: A few words about it ("mentor"), for a sentence to add: the current text
            is not shown then, a small model would only repeat it.
        kind: ``writingStyle`` for its keys (their labels differ).
    """
    label = field_label(field, kind)
    request = task_text(state)
    mode = _mode(field, current, request)
    text = " ".join(current.split()) if isinstance(current, str) and current.strip() else ""
    system = {"add": SMALL_ADD, "replace": SMALL_REPLACE, "short": SMALL_SHORT}[mode]
    shown = (about or "(see the request)") if mode == "add" else (text[:LONG] or "(empty)")
    task = fill(
        SMALL_EDIT_TASK,
        Label=label[:1].upper() + label[1:],
        what=what,
        current=shown,
        request=request,
    )
    schemas: dict[Mode, type[TextAnswer]] = {
        "add": Sentence,
        "replace": text_schema(field),
        "short": ShortText,
    }
    prompt = [
        SystemMessage(fill(system, label=label, what=what)),
        *edit_shots(mode),
        HumanMessage(task),
    ]
    names = _names(state.working)
    sources = scenario_texts(state.working)
    others = [s for s in sources if " ".join(s.split()) != text] if mode == "replace" else sources
    shots = [shot for _, shot in EDIT_SHOTS.values()]
    wanted = keywords(request, names)
    said = set(words(request))
    faults = said & FAULT_WORDS  # "the dialogue is too stiff": the fix must not be stiff
    shorter = bool(said & _SHORTER) and mode == "replace" and bool(text)

    def why_not(written: str) -> str | None:
        """Why a text does not fit, in words for the writer; None when it fits."""
        checks = (
            (not written or junk(written), "it gave no usable text"),
            (copied(written, others), "it repeated other parts of the story"),
            (copied(written, shots, SHOT_CHARS), "it copied its example"),
            (not on_topic(written, wanted), "it was not about what you asked"),
            (bool(faults & set(words(written))), "it said the same problem again"),
            (shorter and len(written) >= len(text), "it was not shorter"),
        )
        return next((reason for failed, reason in checks if failed), None)

    own = writer_words(request, names)
    attempts = [SAMPLING] if own else [SAMPLING, RETRY_SAMPLING]  # only a model can do it
    reason = "it gave no usable text"
    for sampling in attempts:
        written = await _ask(
            runtime, prompt, schemas[mode], field=field, current=text, sampling=sampling
        )
        found = why_not(written)
        if found is None:
            value = _appended(text, written, " ") if mode == "add" else written
            return _Written(value, own_words=False)
        reason = found
    if not own:
        raise AgentError(
            f"I understood that you want to change the {label} of {what}, but the AI model's "
            f"text did not fit the request ({reason}). Try saying what to change, for "
            f'example: "{_example(field, what)}", or use a larger model.'
        )
    if mode == "short":
        phrase = own.removeprefix("Now ").rstrip(".")
        phrase = phrase[:1].lower() + phrase[1:]
        return _Written(f"{text}, but {phrase}" if text else phrase, own_words=True)
    return _Written(_appended(text, own, " "), own_words=True)


def _about(entity: Mapping[str, Any]) -> str:
    """A few words about an entity for a small model: name and role, never long texts."""
    parts = [entity.get(k) for k in ("name", "title", "role", "gender")]
    return ", ".join(str(p) for p in parts if isinstance(p, str) and p.strip())


def _example(field: str, what: str) -> str:
    if what == "the story":
        return f"Rewrite the {field_label(field)}: <the new text>"
    subject = what.removeprefix("the character ").removeprefix("the location ")
    subject = subject.removeprefix("the scene ").removeprefix("the ")
    if field == "backstory":
        return f"{subject} lost a brother at sea"
    if field in ("appearance", "visualDescription"):
        return f"Give {subject} a scar"
    return f"Make {subject} more hopeful"


def _own_words_note(used: bool) -> str:
    return f" ({WRITER_WORDS})" if used else ""


async def _edit_entities(
    runtime: NodeRuntime, state: State, command: Command, kind: str, key: str
) -> tuple[dict[str, Any], str]:
    changes: dict[str, dict[str, Any]] = {}
    used_words = False
    for entity_id in resolve(command, state.working, state.message).ids:
        entity = entity_by_id(state.working.get(key), entity_id)
        if entity is None:
            continue
        values: dict[str, Any] = dict(command.values)
        if not values:
            field = command.focus or DEFAULT_FOCUS[kind]
            written = await _write(
                runtime,
                state,
                field=field,
                current=entity.get(field),
                what=f"the {kind} {entity_label(entity)}",
                about=_about(entity),
            )
            values[field] = written.value
            used_words = used_words or written.own_words
        elif command.append:
            values = {k: _appended(entity.get(k), v) for k, v in values.items()}
        changes[entity_id] = values
    working, notes = edit_entities(state.working, kind, key, changes)
    return working, summarize_entities(kind, notes).rstrip(".") + _own_words_note(used_words) + "."


async def _edit_scenario(
    runtime: NodeRuntime, state: State, command: Command
) -> tuple[dict[str, Any], str]:
    target = command.target
    working = state.working
    values: dict[str, Any] = dict(command.values)
    used_words = False
    if target == "writingStyle":
        style = working.get("writingStyle")
        style = style if isinstance(style, Mapping) else {}
        if not values:
            key = command.focus or DEFAULT_FOCUS["writingStyle"]
            written = await _write(
                runtime, state, field=key, current=style.get(key), what="the story", kind=target
            )
            values[key] = written.value
            used_words = written.own_words
        changes: dict[str, Any] = {"writingStyle": values}
    else:
        if not values:
            field = command.focus or target
            written = await _write(
                runtime, state, field=field, current=working.get(field), what="the story"
            )
            values[field] = written.value
            used_words = written.own_words
        elif command.append:
            values = {k: _appended(working.get(k), v) for k, v in values.items()}
        changes = values
    updated = merge_fields(working, changes, protected=SCENARIO_PROTECTED)
    if fields := changed_fields(working, updated):
        labels = ", ".join(target_label(f) for f in fields)
        return updated, f"Updated the {labels}{_own_words_note(used_words)}."
    return working, f"The {target_label(target)} already says that; nothing changed."


async def edit_fields(
    runtime: NodeRuntime, state: State, command: Command
) -> tuple[dict[str, Any], str]:
    """Apply a modification read by code; return the new working scenario and a summary.

    Args:
        runtime: LangGraph runtime carrying the ``AgentContext``.
        state: The turn's state.
        command: The modification (its target resolved when it is an entity).
    """
    key = collection_key(command.target)
    if key is not None:
        return await _edit_entities(runtime, state, command, command.target, key)
    return await _edit_scenario(runtime, state, command)
