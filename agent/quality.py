"""Check what a small model wrote before it goes into a writer's scenario.

A 135M model at temperature 0 often answers with text it was shown (the story's synopsis
instead of the field it was asked for), loops ("a man with a scarf, a man with a scarf"),
or writes something unrelated to the request ("make Walter older" -> "a young man").
These checks are cheap and need no model: ``tidy`` cuts loops, ``copied`` finds text
taken from elsewhere in the scenario, ``on_topic`` asks that the new text carries a word
of the request. When a text fails, ``writer_words`` turns the request itself into the
change ("Give Bram a scar across his face" -> "A scar across his face."): plain, but
what the writer asked for, and never a copy of something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from agent.lexicon import CHARACTER_FIELD_NOUNS
from agent.lexicon import CREATE_VERBS
from agent.lexicon import DELETE_VERBS
from agent.lexicon import EXPLAIN_VERBS
from agent.lexicon import FAULT_WORDS
from agent.lexicon import FILLERS
from agent.lexicon import LOCATION_FIELD_NOUNS
from agent.lexicon import MEANINGS
from agent.lexicon import MODIFY_VERBS
from agent.lexicon import ROLE_SYNONYMS
from agent.lexicon import ROLE_WORDS
from agent.lexicon import SCENE_FIELD_NOUNS
from agent.lexicon import STOPWORDS
from agent.lexicon import STYLE_NOUNS
from agent.lexicon import TEXT_FIELD_NOUNS
from agent.targets import words

__all__ = [
    "COPY_CHARS",
    "SHOT_CHARS",
    "copied",
    "junk",
    "keywords",
    "on_topic",
    "scenario_texts",
    "tidy",
    "writer_words",
]

COPY_CHARS = 32
"""Characters in common with another text that make a copy."""
SHOT_CHARS = 18
"""Characters in common with a worked example that make a copy of it."""
_WHOLE_CHARS = 16
"""A shorter text of the scenario found whole in a model's text is copied too."""

_FIELD_WORDS = {
    w
    for nouns in (
        CHARACTER_FIELD_NOUNS,
        LOCATION_FIELD_NOUNS,
        SCENE_FIELD_NOUNS,
        TEXT_FIELD_NOUNS,
        STYLE_NOUNS,
    )
    for phrase in nouns
    for w in phrase.split()
}
_VERB_WORDS = {
    w
    for verbs in (CREATE_VERBS, DELETE_VERBS, MODIFY_VERBS, EXPLAIN_VERBS)
    for v in verbs
    for w in v.split()
}
_META = frozenset(
    {
        "more", "less", "bit", "little", "much", "very", "really", "too", "instead", "now",
        "depth", "detail", "details", "interesting", "better", "complex", "nuance",
        "nuanced", "layer", "layers", "texture", "flesh", "lot", "few", "should", "have",
        "needs", "need", "want", "like", "feel", "feels", "seem", "seems", "character",
        "location", "scene", "please", "honestly", "actually", "kind", "rather", "quite",
        "pretty", "way", "enough", "make", "made", "get", "got", "has", "had", "been",
        "being", "does", "doesn't", "don't", "isn't", "not", "can", "could", "would",
        "will", "also", "just", "even", "still", "sure", "ending", "beginning",
    }
)  # fmt: skip
_FUNCTION = frozenset(
    {
        "his", "her", "hers", "him", "he", "she", "they", "them", "their", "its", "was",
        "were", "across", "after", "before", "about", "into", "over", "under", "with",
        "without", "from", "between", "through", "during", "whom", "whose", "these",
        "those", "here", "why", "how", "doesn't", "know", "knows", "said", "says", "any",
        "same", "other", "own", "off", "out", "down", "away", "back", "main", "yet", "than",
        "because", "while", "until", "since", "each", "every", "both", "either", "our",
    }
)  # fmt: skip
_ONLY_A_MODEL = frozenset(
    {"improve", "polish", "tighten", "shorten", "condense", "trim", "simplify", "streamline",
     "fix", "sharpen", "refine", "clean", "redo", "rework", "rephrase", "reword", "better"}
)  # fmt: skip
"""Requests with no content of their own: only a model can carry them out."""
_SUFFIXES = ("iest", "ier", "est", "ied", "ies", "ing", "ous", "ed", "er", "ly", "s")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ROLES = frozenset({*ROLE_WORDS, *ROLE_SYNONYMS, "villain", "hero", "heroine"})
_FIELDS_AT_START = (
    r"^(?:(?:"
    + "|".join(re.escape(w) for w in sorted(_FIELD_WORDS, key=len, reverse=True))
    + r")\b\s*)+(?:of\s+(?:the\s+)?(?:(?:"
    + "|".join(re.escape(w) for w in sorted(_FIELD_WORDS, key=len, reverse=True))
    + r")\b\s*)*)?[:,]?\s*"
)


def tidy(text: str) -> str:
    """One line of clean text: loops cut at their first repeat, ending with a full stop."""
    text = " ".join(str(text).split()).strip(" \"'")
    sentences = _SENTENCE_END.split(text)
    kept: list[str] = []
    for sentence in sentences:
        key = " ".join(words(sentence))
        if key and any(key == " ".join(words(k)) for k in kept):
            break
        kept.append(sentence)
    text = " ".join(kept)
    lowered = text.casefold()
    for size in range(60, 14, -1):  # a phrase that comes back ("a man with a scarf, ...")
        for start in range(0, max(len(text) - 2 * size, 0)):
            again = lowered.find(lowered[start : start + size], start + size)
            if again != -1:
                clause = max(text.rfind(mark, 0, again) for mark in ",;.")
                text = text[: clause if clause > start else again].rstrip(" ,;-")
                break
        else:
            continue
        break
    if text and text[-1] not in ".!?":
        text += "."
    return text[:1].upper() + text[1:]


def junk(text: str) -> bool:
    """Whether a model's text is markup or a placeholder rather than words."""
    return bool(re.search(r"[<>{}]|https?:|www\.|\[\w+\]", text)) or not re.search(
        r"[A-Za-z]{2}", text
    )


_LABEL_KEYS = frozenset(
    {"id", "name", "title", "alias", "role", "gender", "location", "characters", "userId"}
)


def _prose_key(key: Any) -> bool:
    """Keys holding prose: not names (mentioning an entity is no copy), ids or photos."""
    text = str(key)
    return text not in _LABEL_KEYS and not text.endswith(("Id", "Url", "data", "mime_type"))


def scenario_texts(value: Any) -> list[str]:
    """Every text of a scenario (or part of one) a model could copy."""
    if isinstance(value, str):
        return [value] if len(value) >= _WHOLE_CHARS else []
    if isinstance(value, Mapping):
        return [t for k, v in value.items() if _prose_key(k) for t in scenario_texts(v)]
    if isinstance(value, list):
        return [t for item in value for t in scenario_texts(item)]
    return []


def copied(text: str, sources: Iterable[str], chars: int = COPY_CHARS) -> bool:
    """Whether ``text`` repeats ``chars`` characters of one of ``sources``."""
    flat = " ".join(text.split()).casefold()
    windows = {flat[i : i + chars] for i in range(0, len(flat) - chars + 1, 3)}
    for source in sources:
        other = " ".join(source.split()).casefold()
        if len(other) >= _WHOLE_CHARS and other in flat:  # a short text taken whole
            return True
        if any(window in other for window in windows):
            return True
    return False


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def keywords(request: str, names: Iterable[str]) -> set[str]:
    """The words of a request that say what the new text is about ("older", "scar")."""
    named = {w for name in names for w in words(name)}
    skip = STOPWORDS | _FIELD_WORDS | _VERB_WORDS | _META | FAULT_WORDS | _FUNCTION | _ROLES | named
    return {_stem(w) for w in words(request) if w not in skip and len(w) > 2}


def on_topic(text: str, wanted: set[str]) -> bool:
    """Whether ``text`` carries one of the request's words or a word of the same meaning.

    "older" is carried by "grey" or "age"; any text is fine when the request has none.
    """
    if not wanted:
        return True
    stems = set(wanted)
    for stem in wanted:
        stems |= MEANINGS.get(stem, frozenset())
    said = words(text)
    return any(word.startswith(stem) for stem in stems for word in said)


def _name_variants(names: Iterable[str]) -> list[str]:
    """Names and their distinctive words ("Bram Holt" -> "Bram Holt", "Bram", "Holt")."""
    variants = set()
    for name in names:
        if not name:
            continue
        variants.add(name)
        variants.update(w for w in name.split() if len(w) > 2 and w.casefold() not in STOPWORDS)
    return sorted(variants, key=len, reverse=True)


def _strip_reference(text: str, names: Iterable[str]) -> str:
    """Drop the entity (and its field noun) a request starts with: "Bram a scar" -> "a scar"."""
    lead = r"^(?:(?:and|&|,)\s+)?(?:(?:the|his|her|their|its|this|my)\s+)?"
    for _ in range(4):
        before = text
        for name in _name_variants(names):
            pattern = lead + r"\s+".join(re.escape(w) for w in name.split()) + r"(?:'s)?\b"
            text = re.sub(pattern, "", text, flags=re.IGNORECASE).strip()
        text = re.sub(lead + _FIELDS_AT_START.removeprefix("^"), "", text, flags=re.I).strip()
        if text == before:
            break
    return text


def writer_words(request: str, names: Iterable[str]) -> str:
    """The request turned into a sentence of the text ("Give Bram a scar" -> "A scar.").

    Used when a model's text does not fit: the change is then exactly what was asked.
    Empty when the request says nothing concrete ("add more depth to Mira", "tighten the
    synopsis"): then only a model can do it.
    """
    text = " ".join(request.split())
    if set(words(text)) & _ONLY_A_MODEL:
        return ""
    text = re.sub(
        r"^(?:please|can you|could you|would you|i want you to|i'd like you to)\s+",
        "",
        text,
        flags=re.I,
    )
    if extra := re.match(
        r"^(?:add\s+)?(?:more|some|extra|a bit of|a touch of)\s+(?P<what>.+?)\s+"
        r"(?:to|in|for|into)\s+",
        text,
        re.I,
    ):
        what = extra.group("what")
        return "" if set(words(what)) <= _META | _FIELD_WORDS else f"More {what}."
    text = re.sub(
        r"^(?:make|give|rewrite|change|update|turn|add|set|put|let|describe|write|improve)\s+",
        "",
        text,
        flags=re.I,
    )
    text = re.sub(
        r"^.*?\b(?:should|must|needs? to|has to|ought to)\s+(?:be|have|become|get|look|feel|seem"
        r"|wear|carry|own|speak|talk|act|live)"
        r"\s+|^.*?\b(?:needs|deserves|could use|lacks)\s+|^.*?\b(?:feels?|seems?|is|are|sounds?"
        r"|looks?|reads?)\s+(?=(?:too|so|kind of|a bit|rather|really|very)?\s*\w)",
        "",
        text,
        count=1,
        flags=re.I,
    )
    text = _strip_reference(text, names)
    text = re.sub(r"^(?:so that|so|that)\s+", "", text, flags=re.I)
    for filler in FILLERS:
        text = re.sub(rf"\s+{re.escape(filler)}\s*[.!]*$", "", text, flags=re.I)
    text = text.strip(" ,.;:!")
    said = words(text)
    if said and said[0] in FAULT_WORDS | {"too", "so", "kind", "a"} and set(said) & FAULT_WORDS:
        faults = " and ".join(w for w in said if w in FAULT_WORDS)
        return f"No longer {faults}."
    if not said:
        return ""
    comparative = any(w in ("more", "less") or (w.endswith("er") and len(w) > 4) for w in said[:3])
    if comparative and len(said) <= 5:
        return f"Now {text}."
    return text[:1].upper() + text[1:] + "."
