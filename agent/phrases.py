"""Pieces of a writer's request the parser reads: names, literal values, kinds, fields.

Each function looks at one phrase ("a villain character: a jealous court wizard named
Morvane", "Lord Varric's role to reluctant ally") and answers one question about it. They
know English, not any scenario; ``agent.commands`` combines them into operations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.lexicon import APPEARANCE_WORDS
from agent.lexicon import BACKSTORY_WORDS
from agent.lexicon import CHARACTER_FIELD_NOUNS
from agent.lexicon import CHARACTER_KIND
from agent.lexicon import FILLERS
from agent.lexicon import LOCATION_FIELD_NOUNS
from agent.lexicon import LOCATION_KIND
from agent.lexicon import NUMBERS
from agent.lexicon import PERSON_NOUNS
from agent.lexicon import PERSONALITY_WORDS
from agent.lexicon import PLACE_NOUNS
from agent.lexicon import SCENARIO_NOUNS
from agent.lexicon import SCENE_FIELD_NOUNS
from agent.lexicon import SCENE_KIND
from agent.lexicon import STYLE_NOUNS
from agent.lexicon import TEXT_FIELD_NOUNS
from agent.targets import entities_of
from agent.targets import find_named
from agent.targets import plain
from agent.targets import words

__all__ = [
    "Mention",
    "as_name",
    "as_text",
    "clean_value",
    "count_of",
    "entity_field",
    "find_phrase",
    "head_of",
    "kind_of",
    "mentions",
    "name_after_marker",
    "name_markers",
    "quoted",
    "scenario_field",
]

_NAME_MARKER = re.compile(
    r"\b(?:named|called|known as|by the name of|with the name|name(?:d)? (?:him|her|it|them))\s+",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"[\"']([^\"]{1,80}?)[\"']")
_CONNECTORS = frozenset({"of", "the", "and", "de", "van", "von", "la", "le", "du", "da", "del"})
_HEAD_END = re.compile(
    r"\s*(?::|;| - |,|\bnamed\b|\bcalled\b|\bwhere\b|\bwho\b|\bwhich\b|\bthat\b"
    r"|\babout\b|\bwith\b|\bfor\b|\bon\b|\bat\b|\bin\b|\bto\b|\bbetween\b)",
    re.IGNORECASE,
)
_KINDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("scene", SCENE_KIND),
    ("character", CHARACTER_KIND),
    ("location", LOCATION_KIND),
    ("scenario", SCENARIO_NOUNS),
)
_COLLECTIONS = {"characters": "character", "locations": "location", "scenes": "scene"}


def _locate(
    text: str, phrases: Sequence[str] | frozenset[str] | Mapping[str, Any]
) -> tuple[int, str] | None:
    """(where, which) of the first (leftmost, then longest) of ``phrases`` in ``text``."""
    joined = " " + " ".join(words(text)) + " "
    best: tuple[int, str] | None = None
    for phrase in phrases:
        at = joined.find(" " + phrase + " ")
        if at >= 0 and (best is None or (at, -len(phrase)) < (best[0], -len(best[1]))):
            best = (at, phrase)
    return best


def find_phrase(
    text: str, phrases: Sequence[str] | frozenset[str] | Mapping[str, Any]
) -> str | None:
    """The first (leftmost, then longest) of ``phrases`` found in ``text`` as whole words."""
    found = _locate(text, phrases)
    return found[1] if found else None


def quoted(text: str) -> list[str]:
    """Quoted strings in ``text`` ("'The Coronation' to 'The False Crown'")."""
    return [m.strip() for m in _QUOTED.findall(plain(text)) if m.strip()]


def clean_value(text: str) -> str:
    """A literal value as the writer gave it, without quotes, fillers and end punctuation."""
    value = plain(text).strip().strip("\"'").strip()
    changed = True
    while changed:
        changed = False
        value = value.rstrip(" .!?,;:")
        for filler in FILLERS:
            if value.casefold().endswith(" " + filler):
                value = value[: -len(filler) - 1]
                changed = True
    return value.strip().strip("\"'").strip()


def as_text(text: str) -> str:
    """Return a value that is prose as a sentence ("keep it short" -> "Keep it short.")."""
    value = clean_value(text)
    if not value:
        return value
    value = value[:1].upper() + value[1:]
    return value if value[-1] in ".!?" else value + "."


def as_name(text: str) -> str:
    """Return a value that is a name, with capitals where the writer typed none.

    "ann" -> "Ann", "the Velvet Room" -> "The Velvet Room".
    """
    value = clean_value(text)
    if value and value == value.casefold() and len(value.split()) <= 4:
        return value.title()
    return value[:1].upper() + value[1:]


def name_markers(text: str) -> list[re.Match[str]]:
    """Every "named X" / "called X" in ``text``."""
    return list(_NAME_MARKER.finditer(text))


def _name_at(text: str) -> str | None:
    """The name that starts ``text``: quoted, or capitalised words (a lone lower-case word)."""
    text = plain(text)
    if found := re.match(r"\s*[\"']([^\"]{1,80})[\"']", text):
        return found.group(1).strip()
    tokens: list[str] = re.findall(r"[\w'.-]+|[^\w\s]", text)
    picked: list[str] = []
    for index, token in enumerate(tokens):
        core = token.rstrip(".")
        if (core[:1].isupper() and core[:1].isalpha()) or (core.isdigit() and picked):
            picked.append(core)
            if core != token:  # "Morvane." ends the name
                break
            continue
        later = tokens[index + 1] if index + 1 < len(tokens) else ""
        if picked and core.casefold() in _CONNECTORS and later[:1].isupper():
            picked.append(core)
            continue
        if not picked and index == 0 and core.casefold() == "the" and later[:1].isupper():
            picked.append("The")
            continue
        if not picked and index == 0 and core.isalpha() and core.islower():
            return core.title()  # "named dolan"
        break
    return " ".join(picked) or None


def name_after_marker(match: re.Match[str]) -> str | None:
    """The name a "named"/"called" marker introduces."""
    return _name_at(match.string[match.end() :])


def head_of(text: str) -> str:
    """Return the head of a noun phrase: up to its first description.

    "a tavern called X where smugglers meet" -> "a tavern".
    """
    found = _HEAD_END.search(text)
    return text[: found.start()] if found else text


def kind_of(text: str) -> str | None:
    """What a creation phrase makes: character, location, scene or scenario.

    An explicit kind word in the phrase's head wins ("a tavern scene" is a scene), then
    the first person or place noun of the head, then of the whole phrase.
    """
    head = head_of(text)
    placed = [(found[0], kind) for kind, kinds in _KINDS if (found := _locate(head, kinds))]
    if placed:
        return min(placed)[1]
    for phrase in (head, text):
        person = _locate(phrase, PERSON_NOUNS)
        place = _locate(phrase, PLACE_NOUNS)
        if person or place:
            at_person = person[0] if person else 10**6
            at_place = place[0] if place else 10**6
            return "character" if at_person <= at_place else "location"
    return None


def count_of(text: str) -> int:
    """How many entities a creation asks for ("two characters" -> 2), 1 by default."""
    found = find_phrase(head_of(text), NUMBERS)
    return NUMBERS[found] if found else 1


@dataclass(frozen=True, slots=True)
class Mention:
    """Entities of one kind a phrase names."""

    kind: str
    """``character``, ``location`` or ``scene``."""
    entities: tuple[Mapping[str, Any], ...]


def mentions(scenario: Mapping[str, Any], text: str, kinds: Sequence[str] = ()) -> Mention | None:
    """The existing entities ``text`` names, of the first kind that has any.

    Args:
        scenario: The scenario.
        text: A phrase of the request.
        kinds: Only these collections (``characters`` ...); all three when empty.
    """
    for key in kinds or _COLLECTIONS:
        named, unclear = find_named(entities_of(scenario, key), text)
        if named or unclear:
            return Mention(_COLLECTIONS[key], tuple(named or unclear))
    return None


def entity_field(kind: str, text: str) -> tuple[str | None, str]:
    """Which field of an entity a change is about: (named field or None, the best guess).

    A field noun ("Mira's role", "the title of the scene") names it; otherwise attribute
    words decide (older, scar -> appearance; childhood, depth -> backstory; kinder ->
    notes) and each kind has a default for open requests.
    """
    nouns = {
        "character": CHARACTER_FIELD_NOUNS,
        "location": LOCATION_FIELD_NOUNS,
        "scene": SCENE_FIELD_NOUNS,
    }[kind]
    named = find_phrase(text, nouns)
    if named:
        return nouns[named], nouns[named]
    said = set(words(text))
    if kind == "scene":
        return None, "description"
    looks = "appearance" if kind == "character" else "visualDescription"
    history = "backstory" if kind == "character" else "background"
    if said & BACKSTORY_WORDS:
        return None, history
    if said & APPEARANCE_WORDS:
        return None, looks
    if kind == "character" and said & PERSONALITY_WORDS:
        return None, "extraInfo"
    return None, "extraInfo" if kind == "character" else looks


def scenario_field(text: str) -> tuple[str, str] | None:
    """The scenario field a phrase names: ("writingStyle", key) or (text field, field)."""
    style = _locate(text, STYLE_NOUNS)
    field = _locate(text, TEXT_FIELD_NOUNS)
    if style and field and field[0] < style[0]:
        style = None
    if style:
        return "writingStyle", STYLE_NOUNS[style[1]]
    if field:
        return TEXT_FIELD_NOUNS[field[1]], TEXT_FIELD_NOUNS[field[1]]
    return None
