"""Resolve which character or location an operation is about, or detect ambiguity.

The classifier names the entity it thinks the writer means, but a small model guesses;
resolution is therefore code: names and aliases first, then roles, then pronouns matched
against genders, then "the only one there is". Anything still open is ambiguous and gets a
clarifying question rather than a guess (contract.md 8.4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Literal

from agent.llm_schemas import Operation

__all__ = ["Resolution", "collection_key", "entity_label", "resolve", "target_label"]

_WORD = re.compile(r"[\w']+")
_ALL = frozenset({"all", "every", "each", "everyone", "everybody"})
_FEMALE_PRONOUNS = frozenset({"she", "her", "hers", "herself"})
_MALE_PRONOUNS = frozenset({"he", "him", "his", "himself"})
_FEMALE = frozenset({"female", "woman", "girl", "f", "feminine", "lady"})
_MALE = frozenset({"male", "man", "boy", "m", "masculine", "gentleman"})
_ROLE_SYNONYMS = {"hero": "protagonist", "heroine": "protagonist", "villain": "antagonist"}
_GENERIC = frozenset({"character", "characters", "location", "locations", "the", "a", "an", "of"})


@dataclass(frozen=True, slots=True)
class Resolution:
    """The entities an operation refers to."""

    ids: tuple[str, ...]
    """Ids of the resolved entities; empty when unresolved."""
    candidates: tuple[Mapping[str, Any], ...]
    """When unresolved: the entities the writer may have meant."""
    referenced: bool
    """Whether the message named or pointed at (pronoun) a specific entity."""

    @property
    def resolved(self) -> bool:
        """Whether at least one entity was identified."""
        return bool(self.ids)


_LABELS = {"writingStyle": "writing style", "storyarc": "story arc", "general": "scenario"}


def target_label(target: str) -> str:
    """Return a target as words for the writer (``writingStyle`` -> ``writing style``)."""
    return _LABELS.get(target, target)


def collection_key(target: str) -> Literal["characters", "locations"] | None:
    """Return the scenario list a target lives in, or None for non-entity targets."""
    if target == "character":
        return "characters"
    if target == "location":
        return "locations"
    return None


def entity_label(entity: Mapping[str, Any]) -> str:
    """Return a short human name for an entity."""
    name = entity.get("name")
    return name.strip() if isinstance(name, str) and name.strip() else "(unnamed)"


def _words(text: str | None) -> list[str]:
    return _WORD.findall(text.casefold()) if text else []


def _contains(haystack: list[str], needle: list[str]) -> bool:
    size = len(needle)
    return size > 0 and any(haystack[i : i + size] == needle for i in range(len(haystack)))


def _named(entities: Sequence[Mapping[str, Any]], text: str | None) -> list[Mapping[str, Any]]:
    words = _words(text)
    found = []
    for entity in entities:
        names = [_words(entity.get(k)) for k in ("name", "alias") if isinstance(entity.get(k), str)]
        # "Aria" names "Aria Stone"; but "the" must not name "The Gull".
        firsts = [n[:1] for n in names if len(n) > 1 and len(n[0]) > 2 and n[0] not in _GENERIC]
        if any(_contains(words, n) for n in names + firsts):
            found.append(entity)
    return found


def _by_role(entities: Sequence[Mapping[str, Any]], text: str) -> list[Mapping[str, Any]]:
    words = {_ROLE_SYNONYMS.get(w, w) for w in _words(text)} - _GENERIC
    return [
        e
        for e in entities
        if isinstance(e.get("role"), str)
        and words & ({_ROLE_SYNONYMS.get(w, w) for w in _words(e["role"])} - _GENERIC)
    ]


def _by_pronoun(entities: Sequence[Mapping[str, Any]], words: set[str]) -> list[Mapping[str, Any]]:
    if words & _FEMALE_PRONOUNS and not words & _MALE_PRONOUNS:
        wanted = _FEMALE
    elif words & _MALE_PRONOUNS and not words & _FEMALE_PRONOUNS:
        wanted = _MALE
    else:
        return list(entities)
    return [e for e in entities if set(_words(e.get("gender"))) & wanted]


def resolve(operation: Operation, scenario: Mapping[str, Any], message: str = "") -> Resolution:
    """Find the characters or locations an operation refers to.

    Args:
        operation: The classified operation (its ``target`` must be character or location).
        scenario: The scenario as it stands (earlier operations of the turn included).
        message: The writer's whole message, used when the operation has no prompt of its
            own (the whole message is not searched otherwise: in "rename the hero and
            describe Bob", Bob is not the hero).

    Returns:
        The resolved ids, or the candidates when the reference is ambiguous.
    """
    key = collection_key(operation.target)
    stored = scenario.get(key) if key else None
    entities = [e for e in stored or [] if isinstance(e, Mapping) and isinstance(e.get("id"), str)]
    text = operation.prompt.strip() or message
    words = set(_words(text))

    def found(matches: Sequence[Mapping[str, Any]], referenced: bool = True) -> Resolution:
        return Resolution(tuple(str(m["id"]) for m in matches), (), referenced)

    if key and words & _ALL and words & {key, key[:-1]}:
        return found(entities)
    for source in (operation.entity, text):
        named = _named(entities, source)
        if len(named) == 1:
            return found(named)
        if len(named) > 1:
            return Resolution((), tuple(named), True)
    by_role = _by_role(entities, text)
    if len(by_role) == 1:
        return found(by_role)
    pool = by_role or entities
    pronouns = words & (_FEMALE_PRONOUNS | _MALE_PRONOUNS)
    candidates = (_by_pronoun(pool, words) if pronouns else pool) or pool
    referenced = bool(pronouns or by_role or (operation.entity or "").strip())
    if len(candidates) == 1:
        return found(candidates, referenced)
    return Resolution((), tuple(candidates), referenced)
