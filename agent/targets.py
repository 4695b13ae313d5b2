"""Resolve which characters, locations or scenes an operation is about, or why it cannot.

Resolution is code, never the model's guess: names and aliases first (whole names, then
a distinctive part such as "Aria" for "Aria Stone" or "the Red Dunes" for "The Red Dunes
of Tarsis"), then roles ("the villain", "the main character"), then what an entity is
("the tavern" is the location described as a tavern), then pronouns matched against
genders, then "the only one there is". A proper name that matches nothing is reported as
missing ("there is no Zoltan"), and anything still open is ambiguous: the writer gets a
clarifying question rather than a guess (contract.md 8.4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import Protocol

from agent.lexicon import CHARACTER_KIND
from agent.lexicon import LOCATION_KIND
from agent.lexicon import PERSON_NOUNS
from agent.lexicon import PLACE_NOUNS
from agent.lexicon import ROLE_SYNONYMS
from agent.lexicon import SCENE_KIND
from agent.lexicon import STOPWORDS

__all__ = [
    "Reference",
    "Resolution",
    "collection_key",
    "entities_of",
    "entity_label",
    "find_named",
    "name_positions",
    "plain",
    "proper_name",
    "resolve",
    "target_label",
    "words",
]

CollectionKey = Literal["characters", "locations", "scenes"]

_WORD = re.compile(r"[\w'-]+")
_TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
_ALL = frozenset({"all", "every", "each", "everyone", "everybody", "both"})
_FEMALE_PRONOUNS = frozenset({"she", "her", "hers", "herself"})
_MALE_PRONOUNS = frozenset({"he", "him", "his", "himself"})
_FEMALE = frozenset({"female", "woman", "girl", "f", "feminine", "lady", "she"})
_MALE = frozenset({"male", "man", "boy", "m", "masculine", "gentleman", "he"})
_GENERIC = (
    STOPWORDS | CHARACTER_KIND | LOCATION_KIND | SCENE_KIND | {"named", "called", "main", "old"}
)
_NOT_NAMES = _GENERIC | _FEMALE_PRONOUNS | _MALE_PRONOUNS | set(ROLE_SYNONYMS) | {"it", "they"}
_NAME_KEYS = ("name", "alias", "title")
_ABOUT_KEYS = (
    "role",
    "appearance",
    "backstory",
    "extraInfo",
    "visualDescription",
    "background",
    "description",
    "location",
)
_LABELS = {
    "writingStyle": "writing style",
    "storyarc": "story arc",
    "general": "scenario",
}


class Reference(Protocol):
    """What resolution reads from an operation (the LLM's ``Operation`` or a ``Command``)."""

    @property
    def target(self) -> str: ...  # noqa: D102

    @property
    def prompt(self) -> str: ...  # noqa: D102

    @property
    def entity(self) -> str | None: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class Resolution:
    """The entities an operation refers to."""

    ids: tuple[str, ...]
    """Ids of the resolved entities; empty when unresolved."""
    candidates: tuple[Mapping[str, Any], ...]
    """When unresolved: the entities the writer may have meant."""
    referenced: bool
    """Whether the message named or pointed at (pronoun, role) a specific entity."""
    missing: str | None = None
    """A name the writer used that no entity of this kind has."""

    @property
    def resolved(self) -> bool:
        """Whether at least one entity was identified."""
        return bool(self.ids)


def target_label(target: str) -> str:
    """Return a target as words for the writer (``writingStyle`` -> ``writing style``)."""
    return _LABELS.get(target, target)


def collection_key(target: str) -> CollectionKey | None:
    """Return the scenario list a target lives in, or None for non-entity targets."""
    if target == "character":
        return "characters"
    if target == "location":
        return "locations"
    if target == "scene":
        return "scenes"
    return None


def entity_label(entity: Mapping[str, Any]) -> str:
    """Return a short human name for an entity (a scene's title)."""
    for key in ("name", "title"):
        value = entity.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "(unnamed)"


def plain(text: str) -> str:
    """``text`` with typographic quotes and dashes as ASCII: writers' apps insert them."""
    return text.translate(_TYPOGRAPHY)


def words(text: str | None) -> list[str]:
    """Lower-case words of ``text``; a possessive "'s" is dropped ("Mira's" -> "mira")."""
    if not text:
        return []
    found = []
    for word in _WORD.findall(plain(text).casefold()):
        word = word.strip("'-")
        if word.endswith("'s"):
            word = word[:-2]
        if word:
            found.append(word)
    return found


def entities_of(scenario: Mapping[str, Any], key: str | None) -> list[Mapping[str, Any]]:
    """The entities with a string id in one of the scenario's lists."""
    stored = scenario.get(key) if key else None
    if not isinstance(stored, list):
        return []
    return [e for e in stored if isinstance(e, Mapping) and isinstance(e.get("id"), str)]


def _runs(haystack: Sequence[str], needle: Sequence[str]) -> list[int]:
    size = len(needle)
    return [
        i for i in range(len(haystack) - size + 1) if list(haystack[i : i + size]) == list(needle)
    ]


def name_positions(entity: Mapping[str, Any], text: Sequence[str]) -> set[int]:
    """The positions of ``text`` (its words) that name the entity.

    A whole name or alias counts, and so does any run of its words holding a distinctive
    one: "Aria" names "Aria Stone", "the Red Dunes" names "The Red Dunes of Tarsis", but
    "the" alone names nothing.
    """
    positions: set[int] = set()
    for key in _NAME_KEYS:
        value = entity.get(key)
        if not isinstance(value, str):
            continue
        name = words(value)
        trimmed = name[1:] if name[:1] == ["the"] and len(name) > 1 else name
        for size in range(len(trimmed), 0, -1):
            for start in range(len(trimmed) - size + 1):
                part = trimmed[start : start + size]
                if not any(len(w) > 2 and w not in _GENERIC for w in part):
                    continue
                for at in _runs(text, part):
                    positions.update(range(at, at + size))
    return positions


def find_named(
    entities: Sequence[Mapping[str, Any]], text: str | None
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Return (the entities ``text`` names, the candidates when a name fits several).

    Several entities named in different places are all meant ("Sera and Finn"); a name
    that covers another's ("Aria Stone" over "Aria Black" for "Aria Stone") wins; words
    that fit several equally ("Aria" for both) are ambiguous.
    """
    text_words = words(text)
    if not text_words:
        return [], []
    spans = [(e, name_positions(e, text_words)) for e in entities]
    spans = [(e, p) for e, p in spans if p]
    kept = [(e, p) for e, p in spans if not any(p < other for _, other in spans)]
    unclear = [e for e, p in kept if any(p & o for other, o in kept if other is not e)]
    if unclear:
        return [], unclear
    return [e for e, _ in kept], []


_ORDINALS = {
    "first": 0, "opening": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4,
    "last": -1, "final": -1, "closing": -1,
}  # fmt: skip


def _by_position(entities: Sequence[Mapping[str, Any]], said: set[str]) -> list[Mapping[str, Any]]:
    """Read "the last scene", "the second location": by ``order`` if set, else list order."""
    found = [_ORDINALS[w] for w in said if w in _ORDINALS]
    if len(found) != 1 or not entities:
        return []

    def order(entity: Mapping[str, Any]) -> float:
        value = entity.get("order")
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if numeric else float("inf")  # type: ignore[arg-type]

    ranked = sorted(entities, key=order)
    index = found[0]
    return [ranked[index]] if -len(ranked) <= index < len(ranked) else []


def _role_words(text: str) -> set[str]:
    lowered = " ".join(words(text))
    found = set(lowered.split())
    for phrase, role in ROLE_SYNONYMS.items():
        if re.search(rf"\b{re.escape(phrase)}\b", lowered):
            found.add(role)
    return {ROLE_SYNONYMS.get(w, w) for w in found} - _GENERIC


def _by_role(entities: Sequence[Mapping[str, Any]], text: str) -> list[Mapping[str, Any]]:
    wanted = _role_words(text)
    return [
        e
        for e in entities
        if isinstance(e.get("role"), str) and wanted & _role_words(str(e["role"]))
    ]


def _by_description(
    entities: Sequence[Mapping[str, Any]], text: str, kind: str | None
) -> list[Mapping[str, Any]]:
    """Entities whose description holds a noun of ``text`` ("the tavern", "the ferryman")."""
    said = {w for w in words(text) if w not in _GENERIC and len(w) > 2}
    nouns = said | {w[:-1] for w in said if w.endswith("s")}
    if kind != "scenes":
        nouns &= PLACE_NOUNS | PERSON_NOUNS
    if not nouns:
        return []
    found = []
    for entity in entities:
        about = set()
        for key in _NAME_KEYS + _ABOUT_KEYS:
            value = entity.get(key)
            if isinstance(value, str):
                about.update(words(value))
        about |= {w[:-1] for w in about if w.endswith("s")}
        if nouns & about:
            found.append(entity)
    return found


def _by_pronoun(entities: Sequence[Mapping[str, Any]], said: set[str]) -> list[Mapping[str, Any]]:
    if said & _FEMALE_PRONOUNS and not said & _MALE_PRONOUNS:
        wanted = _FEMALE
    elif said & _MALE_PRONOUNS and not said & _FEMALE_PRONOUNS:
        wanted = _MALE
    else:
        return list(entities)
    return [e for e in entities if set(words(e.get("gender"))) & wanted]


def proper_name(text: str | None) -> str | None:
    """The capitalised name in ``text``, if any ("Zoltan", "Lady Morwen"), else None."""
    if not text:
        return None
    found: list[str] = []
    for token in re.findall(r"[\w'-]+", plain(text)):
        word = words(token)
        core = word[0] if word else ""
        if token[:1].isupper() and core not in _NOT_NAMES:
            found.append(token.removesuffix("'s"))
        elif found:
            break
    return " ".join(found) or None


def resolve(operation: Reference, scenario: Mapping[str, Any], message: str = "") -> Resolution:
    """Find the entities an operation refers to.

    Args:
        operation: The operation (its ``target`` must be an entity kind); its ``entity``
            is the writer's reference when known, else its ``prompt`` is searched.
        scenario: The scenario as it stands (earlier operations of the turn included).
        message: The writer's whole message, used when the operation has no prompt of its
            own (the whole message is not searched otherwise: in "rename the hero and
            describe Bob", Bob is not the hero).

    Returns:
        The resolved ids, or the candidates (and a missing name) when it is unclear.
    """
    key = collection_key(operation.target)
    entities = entities_of(scenario, key)
    reference = (operation.entity or "").strip()
    text = reference or operation.prompt.strip() or message
    said = set(words(text))

    def found(matches: Sequence[Mapping[str, Any]], referenced: bool = True) -> Resolution:
        return Resolution(tuple(str(m["id"]) for m in matches), (), referenced)

    if key and said & _ALL and said & {key, key[:-1], "of them"}:
        return found(entities)
    named, unclear = find_named(entities, text)
    if named:
        return found(named)
    if unclear:
        return Resolution((), tuple(unclear), True)
    by_role = _by_role(entities, text)
    if len(by_role) == 1:
        return found(by_role)
    if placed := _by_position(entities, said):
        return found(placed)
    described = [] if by_role else _by_description(entities, text, key)
    if len(described) == 1:
        return found(described)
    if reference and not by_role and (name := proper_name(reference)):
        return Resolution((), tuple(entities), True, missing=name)
    pool = by_role or described or entities
    pronouns = said & (_FEMALE_PRONOUNS | _MALE_PRONOUNS)
    candidates = (_by_pronoun(pool, said) if pronouns else pool) or pool
    referenced = bool(pronouns or by_role or described or reference)
    if len(candidates) == 1:
        return found(candidates, referenced)
    return Resolution((), tuple(candidates), referenced)
