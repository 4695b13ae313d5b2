"""The rules that read one request (a clause) into ``Command`` operations.

Each verb has its rule (create, delete, rename, modify, give, write, explain...), and
statements have theirs ("Aria should have short hair", "Bram needs a backstory", "the
villain feels flat"). A rule answers None when it cannot read its clause, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.clauses import WANT
from agent.clauses import starts_command
from agent.clauses import strip_lead
from agent.clauses import verb_of
from agent.command import Command
from agent.lexicon import CHARACTER_KIND
from agent.lexicon import CHAT_OPENERS
from agent.lexicon import CREATE_VERBS
from agent.lexicon import DELETE_VERBS
from agent.lexicon import EXPLAIN_VERBS
from agent.lexicon import FAULT_WORDS
from agent.lexicon import GENRES
from agent.lexicon import LANGUAGES
from agent.lexicon import LOCATION_KIND
from agent.lexicon import MODIFY_VERBS
from agent.lexicon import PERSON_NOUNS
from agent.lexicon import PLACE_NOUNS
from agent.lexicon import QUESTION_WORDS
from agent.lexicon import ROLE_WORDS
from agent.lexicon import SCENARIO_NOUNS
from agent.lexicon import SCENE_KIND
from agent.lexicon import TIME_WORDS
from agent.lexicon import TONE_WORDS
from agent.llm_schemas import Action
from agent.phrases import as_name
from agent.phrases import as_text
from agent.phrases import clean_value
from agent.phrases import count_of
from agent.phrases import entity_field
from agent.phrases import find_phrase
from agent.phrases import head_of
from agent.phrases import kind_of
from agent.phrases import mentions
from agent.phrases import name_after_marker
from agent.phrases import name_markers
from agent.phrases import quoted
from agent.phrases import scenario_field
from agent.sketches import SHORT_FIELDS
from agent.targets import entities_of
from agent.targets import find_named
from agent.targets import proper_name
from agent.targets import words

__all__ = ["Reader", "Subject"]

_ADD_VERBS = CREATE_VERBS - {"make", "write"}
_KIND_WORDS = {
    **dict.fromkeys(CHARACTER_KIND, "character"),
    **dict.fromkeys(LOCATION_KIND, "location"),
    **dict.fromkeys(SCENE_KIND, "scene"),
}
_SHOULD = re.compile(
    r"^(?P<subject>.+?)\s+(?:should|must|needs? to|has to|have to|ought to|could|would|will)"
    r"(?:\s+(?:really|also|now|definitely))?\s+(?P<verb>be|have|look|sound|become|get|feel"
    r"|seem|wear|live|carry|own|speak|talk|act)\b\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_NEEDS = re.compile(
    r"^(?P<subject>.+?)\s+(?:needs|deserves|could use|lacks|is missing|should get|is now"
    r"|is actually|is really|is supposed to be|has become|now has|actually has)\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
_COMPLAINT = re.compile(
    r"^(?P<subject>.+?)\s+(?P<verb>feels?|seems?|is|are|sounds?|looks?|reads?|comes? across"
    r"(?:\s+as)?|is not|isn't|are not|aren't|doesn't feel|does not feel|doesn't seem|feel)\s+"
    r"(?P<rest>.+)$",
    re.IGNORECASE,
)
_DISLIKE = re.compile(
    r"^(?:i\s+(?:really\s+)?(?:don't|do not)\s+(?:like|love|buy|get)|i'm not (?:happy|sold|"
    r"sure) (?:with|on|about)|i hate|i dislike|i'm unhappy with)\s+(?P<subject>.+?)[.!]*$",
    re.IGNORECASE,
)
_FAILS = re.compile(
    r"^(?P<subject>.+?)\s+(?:doesn't work|does not work|isn't working|falls flat|drags|"
    r"needs work|needs improvement|could be better)\b",
    re.IGNORECASE,
)
_CALLED = re.compile(r"^(?:called|named|renamed)\s+(?:to\s+)?(?P<name>.+)$", re.IGNORECASE)
_VALUE = re.compile(r"^(?P<head>.+?)(?:\s+(?:to|into|as)\s+|\s*:\s*)(?P<value>.+)$", re.I)
_CUT = re.compile(
    r"\s+(?:so that|so|because|where|such that|since|as if|while|which|who|in which|until)\s+",
    re.IGNORECASE,
)
_INSTRUCTION = frozenset(
    {"make", "be", "include", "reflect", "show", "sound", "feel", "have", "add", "match",
     "fit", "mention", "focus", "explain", "say", "read", "give", "something", "more",
     "less", "better", "fix", "remove", "explore", "emphasize", "emphasise", "reveal"}
)  # fmt: skip
_STORY_REFS = re.compile(
    r"\b(?:my|the|this|our)\s+(?:own\s+)?(?:\w+\s+)?(?:story|scenario|plot|book|novel|"
    r"characters?|villain|hero|heroine|ending|world|setting|chapters?|scenes?|arc|backstory|"
    r"title|synopsis|tone|genre|conflict|protagonist|antagonist|cast|twists?|draft|pacing)\b",
    re.IGNORECASE,
)
_ABOUT = re.compile(
    r"^(?:who\s+is|who's|who\s+was|tell\s+me\s+(?:more\s+)?about|what\s+about|describe|"
    r"explain)\s+(?P<who>.+?)\s*[?.!]*$",
    re.IGNORECASE,
)
_EXTRA = re.compile(
    r"^(?:(?:a\s+(?:bit|little|touch|lot)\s+(?:of\s+|more\s+)?)|more|some|extra|further)\s+"
    r"(?P<what>[\w\s'-]{1,40}?)\s+(?:to|in|into|for|about|on)\s+(?P<ref>.+)$",
    re.IGNORECASE,
)
_NOTE = re.compile(
    r"^(?:a\s+|another\s+)?notes?\b\s*(?:saying|that says|that|:|-)?\s*(?P<text>.+)$"
    r"|^(?P<text2>.+?)\s+(?:to|in)\s+(?:the|my)\s+notes$",
    re.IGNORECASE,
)
_ATTACHED = re.compile(r"^(?P<what>.+?)\s+(?:to|for|in|into|on|at)\s+(?P<ref>[^,:;]+?)$", re.I)
_FROM_STORY = re.compile(
    r"\s+(?:from|out of|in)\s+(?:the|my|this)\s+(?:story|scenario|cast|book|list|novel)\b.*$",
    re.IGNORECASE,
)
_WRITE_IN = re.compile(
    r"^(?:it|this|the story|the whole story|everything|the whole thing)?\s*in\s+(?P<how>.+)$",
    re.IGNORECASE,
)
_STYLE_TAIL = re.compile(r"\b(?:person|tense|pov|point of view|perspective|voice)\b", re.I)
_TIME = re.compile(
    r"\b(?:at|in the|during|by|to|around|before|after)\s+(?P<time>(?:\w+\s+)?(?:"
    + "|".join(sorted(TIME_WORDS, key=len, reverse=True))
    + r"))\b",
    re.IGNORECASE,
)
_APPOSITION = re.compile(
    r"(?:^|\s|,)(?P<noun>[a-z][\w'-]*)\s*,?\s+(?P<name>[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)*)"
)
_GIVE = re.compile(
    r"^(?P<ref>.+?)\s+(?P<what>(?:a|an|the|some|more|another|new|his|her|their|its)\b.*)$", re.I
)


def _literal_value(field: str, value: str) -> str:
    """A stated value as the field holds it: a few words as typed, prose as a sentence."""
    return clean_value(value) if field in SHORT_FIELDS else as_text(value)


def _literal(value: str | None) -> bool:
    """Whether a value after "to" is the new value, not an instruction.

    "to red" is a value; "to make it darker" is an instruction for the model.
    """
    said = words(value)
    return bool(said) and said[0] not in _INSTRUCTION


@dataclass(frozen=True, slots=True)
class Subject:
    """What a change is about."""

    field: bool
    """A scenario field (else an entity)."""
    target: str
    """The entity kind, or the field's target (``writingStyle``, ``storyarc``...)."""
    detail: str
    """The phrase naming the entity, or the field's key."""


class Reader:
    """Parses the clauses of one message against one scenario."""

    def __init__(self, scenario: Mapping[str, Any]) -> None:
        self.scenario = scenario

    @staticmethod
    def op(action: Action, target: str, prompt: str, **details: Any) -> Command:
        """A ``Command``, validated (the target must be one the agent knows)."""
        return Command.model_validate(
            {"action": action, "target": target, "prompt": prompt, **details}
        )

    # -- references ----------------------------------------------------------------------

    def reference(self, text: str, kinds: tuple[str, ...] = ()) -> tuple[str, str] | None:
        """(kind, the phrase) of the existing entity ``text`` refers to, if any.

        Names first (of the kind a kind word names: "the warehouse scene"), then kind
        words, person and place nouns ("the tavern"), roles and pronouns, then a proper
        name that may not exist (resolution later says which, or asks).
        """
        said = set(words(text))
        explicit = find_phrase(text, _KIND_WORDS)
        if explicit and not kinds:
            kinds = (_KIND_WORDS[explicit],)
        found = mentions(self.scenario, text, tuple(k + "s" for k in kinds))
        if found is not None:
            return found.kind, text
        if explicit:
            return kinds[0], text
        typed = kind_of(text)
        if typed in ("character", "location") and (not kinds or typed in kinds):
            return typed, text
        for kind in kinds or ("character", "location", "scene"):
            stored = entities_of(self.scenario, kind + "s")
            if kind == "character" and said & {"she", "her", "he", "him", "his", "hers"}:
                return kind, text
            if kind == "character" and find_phrase(text, ("main character", "protagonist")):
                return kind, text
            if stored and any(
                isinstance(e.get("role"), str) and set(words(e["role"])) & said - {"the"}
                for e in stored
            ):
                return kind, text
        if proper_name(text) and not scenario_field(text):
            return (kinds[0] if kinds else "character"), text
        return None

    def subject(self, head: str) -> Subject | None:
        """What a change is about: an entity (kind, phrase) or a field (target, key).

        Only the part before "so", "because", "where"... counts ("the story arc so Bram
        dies" is about the story arc); a field noun first is the scenario's field unless
        "of"/"for" ties it to an entity ("the title of the arrival scene").
        """
        core = _CUT.split(head, maxsplit=1)[0]
        field = scenario_field(core)
        entity = self.reference(core)
        if field is not None and entity is not None:
            said = words(core)
            lead = said[1:] if said[:1] in (["the"], ["my"], ["this"], ["our"]) else said
            tied = re.search(r"\b(?:of|for)\s+(?:the\s+)?\w", core, re.I)
            if lead and scenario_field(lead[0]) is not None and not tied:
                entity = None
        if entity is not None:
            return Subject(False, entity[0], entity[1])
        if field is not None:
            return Subject(True, field[0], field[1])
        return None

    # -- creations -----------------------------------------------------------------------

    def _create(self, rest: str, prompt: str) -> list[Command] | None:
        if found := _EXTRA.match(rest):
            return self._extra(found.group("what"), found.group("ref"), prompt)
        if found := _NOTE.match(rest):
            return self._note(found.group("text") or found.group("text2") or "", prompt)
        markers = name_markers(rest)
        if not markers and (attached := _ATTACHED.match(rest)):
            what, ref = attached.group("what"), attached.group("ref")
            named = mentions(self.scenario, ref)
            what_kind = kind_of(what)
            if named is not None and (what_kind is None or named.kind == "location" == what_kind):
                return self.open_edit(ref, what, prompt)
        kind = kind_of(rest)
        if kind is None:
            field = scenario_field(head_of(rest))
            return self.field_edit(field, prompt) if field is not None else None
        if kind == "scenario":
            return [self.op("creation", "scenario", prompt, hint=rest)]
        if len(markers) > 1:
            commands = []
            start = 0
            for index in range(len(markers)):
                end = markers[index + 1].start() if index + 1 < len(markers) else len(rest)
                piece = rest[start:end]
                cut = re.search(r"(?:,|\band\b)(?![^,]*\band\b)[^,]*$", piece)
                if index + 1 < len(markers) and cut:
                    piece, start = piece[: cut.start()], start + cut.start()
                else:
                    start = end
                commands += self.new_entities(kind_of(piece) or kind, piece, prompt, 1)
            return commands
        return self.new_entities(kind, rest, prompt, count_of(rest))

    def _new_name(self, phrase: str, kind: str) -> str | None:
        """The name a creation states: "named X", "Location: X, ...", "brother Tam"."""
        markers = name_markers(phrase)
        if markers:
            return name_after_marker(markers[0])
        if ":" in phrase and kind != "scene":
            after = phrase.split(":", 1)[1].split(",")[0]
            if len(after.split()) <= 5 and proper_name(after):
                return after
        existing = entities_of(self.scenario, kind + "s") + entities_of(self.scenario, "characters")
        for found in _APPOSITION.finditer(phrase):
            name = found.group("name").removesuffix("'s")
            noun = found.group("noun").casefold()
            typed = noun in PERSON_NOUNS | PLACE_NOUNS | {"character", "location", "place"}
            if not typed and not phrase[: found.start("name")].rstrip().endswith(","):
                continue
            if find_named(existing, name)[0] or kind_of(name) or find_phrase(name, _KIND_WORDS):
                continue
            return name
        return None

    def new_entities(self, kind: str, phrase: str, prompt: str, count: int) -> list[Command]:
        """Creations of ``count`` entities of ``kind``, with the name and role stated."""
        values: dict[str, str] = {}
        if name := self._new_name(phrase, kind):
            values["title" if kind == "scene" else "name"] = as_name(name)
        if kind == "character" and (role := find_phrase(head_of(phrase), ROLE_WORDS)):
            values["role"] = role
        hint = phrase.strip(" .:")
        return [
            self.op("creation", kind, prompt, values=values, hint=hint)
            for _ in range(max(count, 1))
        ]

    # -- edits ---------------------------------------------------------------------------

    def _extra(self, what: str, ref: str, prompt: str) -> list[Command] | None:
        """Read "more depth to Mira", "some humour to the dialogue", "more tension to the arc"."""
        found = self.subject(ref)
        if found is None:
            return None
        if found.field:
            return self.field_edit((found.target, found.detail), prompt)
        return self.open_edit(ref, f"{what} {ref}", prompt)

    def _note(self, text: str, prompt: str) -> list[Command] | None:
        value = as_text(text)
        if not value:
            return None
        return [self.op("modification", "notes", prompt, values={"notes": value}, append=True)]

    def open_edit(self, ref: str, rest: str, prompt: str) -> list[Command] | None:
        """An edit of the entity ``ref`` names, whose new text a model writes.

        The field is chosen from the request's words; a scene's time is read literally.
        """
        found = self.reference(ref)
        if found is None:
            return None
        kind, phrase = found
        if kind == "scene" and (time := _TIME.search(rest)):
            values = {"time": time.group("time").casefold()}
            return [self.op("modification", kind, prompt, entity=phrase, values=values)]
        named, guess = entity_field(kind, rest)
        return [self.op("modification", kind, prompt, entity=phrase, focus=named or guess)]

    def field_edit(
        self, field: tuple[str, str], prompt: str, value: str | None = None
    ) -> list[Command]:
        """An edit of a scenario field: the stated value, or a text a model writes."""
        target, key = field
        if value is not None and _literal(value):
            literal = as_name(value) if key == "title" else _literal_value(key, value)
            return [self.op("modification", target, prompt, values={key: literal})]
        return [self.op("modification", target, prompt, focus=key)]

    def _set_name(self, ref: str, new: str, prompt: str) -> list[Command] | None:
        if not new:
            return None
        said = set(words(ref))
        if said & SCENARIO_NOUNS or said <= {"it", "this"}:
            return [self.op("modification", "title", prompt, values={"title": new})]
        found = self.reference(ref)
        if found is None:
            return None
        kind, phrase = found
        key = "title" if kind == "scene" else "name"
        return [self.op("modification", kind, prompt, entity=phrase, values={key: new})]

    def _set_field(self, ref: str, key: str, value: str, prompt: str) -> list[Command] | None:
        found = self.reference(ref)
        if found is None:
            return None
        kind, phrase = found
        return [self.op("modification", kind, prompt, entity=phrase, values={key: value})]

    def _rename(self, rest: str, prompt: str) -> list[Command] | None:
        names = quoted(rest)
        if len(names) == 2:
            return self._set_name(names[0], as_name(names[1]), prompt)
        pairs = [p for p in re.split(r",\s*(?:and\s+)?|\s+and\s+(?=[^,]+\s+to\s)", rest) if p]
        commands: list[Command] = []
        for pair in pairs if len(pairs) > 1 else [rest]:
            found = re.match(r"^(?P<ref>.+?)\s+(?:to|as|into)\s+(?P<new>.+)$", pair, re.I)
            if found is None:
                return None
            named = self._set_name(found.group("ref"), as_name(found.group("new")), prompt)
            if named is None:
                return None
            commands += named
        return commands

    def _call(self, rest: str, prompt: str) -> list[Command] | None:
        """Read "call the stable boy Tam instead" / "name the tavern The Gull's Rest"."""
        text = clean_value(rest)
        found = re.match(r"^(?P<ref>.+?)\s+(?P<new>(?:the\s+)?[\"']?[A-Z][^,]*)$", text)
        if found is None:
            return None
        return self._set_name(found.group("ref"), as_name(found.group("new")), prompt)

    def _modify(self, verb: str, rest: str, prompt: str) -> list[Command] | None:
        if verb == "rename":
            return self._rename(rest, prompt)
        if verb == "retitle":
            title = re.sub(r"^(?:the story|it|the book)\s+(?:to|as)?\s*", "", rest, flags=re.I)
            return self._set_name("the story", as_name(title), prompt)
        if verb in ("call", "name"):
            return self._call(rest, prompt)
        if verb == "write":
            return self._write(rest, prompt)
        if verb == "give":
            return self._give(rest, prompt)
        new_thing = re.match(r"^(?:(?:a|an|another|one more)\s+(?:new\s+)?|new\s+)", rest, re.I)
        if verb == "make" and new_thing and kind_of(rest):
            return self._create(rest, prompt)
        if verb in ("make", "turn") and (genre := self._genre_of(rest)):
            return [self.op("modification", "writingStyle", prompt, values={"genre": genre})]
        if found := _EXTRA.match(rest):
            return self._extra(found.group("what"), found.group("ref"), prompt)
        head, value = rest, None
        if found := re.match(r"^(?:to|into)\s+(?P<value>.+)$", rest, re.I):
            head = value = found.group("value")
        elif found := _VALUE.match(rest):
            head, value = found.group("head"), found.group("value")
        if value is not None and (renamed := self._name_change(head, value, prompt)):
            return renamed
        about = self.subject(head)
        if about is None:
            said = set(words(clean_value(rest)))
            if said & {"story", "scenario", "it", "everything", "book"} and said & TONE_WORDS:
                return [self.op("modification", "writingStyle", prompt, focus="tone")]
            return None
        if about.field:
            return self.field_edit((about.target, about.detail), prompt, value)
        kind, phrase = about.target, about.detail
        if kind == "scene" and value is not None and (literal := self._scene_value(value)):
            return [self.op("modification", kind, prompt, entity=phrase, values=literal)]
        named, _ = entity_field(kind, head if value is not None else rest)
        if value is not None and named and _literal(value):
            text = (
                as_name(value)
                if named in ("name", "alias", "title")
                else _literal_value(named, value)
            )
            return [self.op("modification", kind, prompt, entity=phrase, values={named: text})]
        if verb in ("make", "turn") and not named and (role := self._role_of(kind, rest)):
            return [self.op("modification", kind, prompt, entity=phrase, values={"role": role})]
        return self.open_edit(phrase, rest, prompt)

    def _name_change(self, head: str, value: str, prompt: str) -> list[Command] | None:
        if found := re.match(r"^(?P<ref>.+?)'s\s+(?:first\s+|full\s+)?name$", head, re.I):
            return self._set_name(found.group("ref"), as_name(value), prompt)
        if found := re.match(r"^the\s+name\s+of\s+(?P<ref>.+)$", head, re.I):
            return self._set_name(found.group("ref"), as_name(value), prompt)
        return None

    def _role_of(self, kind: str, rest: str) -> str | None:
        """Read a stated new role: "make Bram an ally", "make Mira the villain"."""
        text = clean_value(rest)
        if kind != "character" or len(words(text)) > 6:
            return None
        pattern = r"\s(?:into\s+)?(?:an?|the)\s+(?P<role>(?:\w+\s+){0,2}\w+)$"
        found = re.search(pattern, text, re.I)
        if found is None or mentions(self.scenario, found.group("role")):
            return None
        role = found.group("role")
        if find_phrase(role, ROLE_WORDS) or find_phrase(role, PERSON_NOUNS):
            return role.casefold()
        return None

    @staticmethod
    def _genre_of(rest: str) -> str | None:
        found = re.match(
            r"^(?:it|the story|this story|this|the whole thing)\s+(?:into\s+)?(?:a|an)?\s*"
            r"(?P<genre>.+?)[.!]*$",
            rest,
            re.I,
        )
        if found and find_phrase(found.group("genre"), GENRES):
            return clean_value(found.group("genre")).casefold()
        return None

    def _scene_value(self, value: str) -> dict[str, str] | None:
        said = set(words(value))
        located = mentions(self.scenario, value, ("locations",))
        if said & TIME_WORDS and located is None:
            return {"time": clean_value(value).casefold()}
        if located is not None and len(located.entities) == 1:
            return {"location": str(located.entities[0].get("name"))}
        return None

    def _write(self, rest: str, prompt: str) -> list[Command] | None:
        body = re.sub(r"^(?:me|us)\s+", "", rest, flags=re.I)
        if found := _WRITE_IN.match(body):
            how = found.group("how")
            if (language := find_phrase(how, LANGUAGES)) and len(words(how)) <= 3:
                values = {"language": language.title()}
                return [self.op("modification", "writingStyle", prompt, values=values)]
            if _STYLE_TAIL.search(how):
                values = {"style": clean_value(how).casefold()}
                return [self.op("modification", "writingStyle", prompt, values=values)]
            return None
        kind = kind_of(head_of(body))
        if kind in ("scenario", "scene"):
            return self._create(body, prompt)
        attached = re.search(r"\b(?:for|of)\s+(?P<ref>.+)$", body, re.I)
        named = mentions(self.scenario, attached.group("ref")) if attached else None
        if attached and named is not None:
            return self.open_edit(attached.group("ref"), body, prompt)
        field = scenario_field(head_of(body))
        if field is not None:
            return self.field_edit(field, prompt)
        if re.match(r"^(?:what happens|the description)\b", body, re.I):
            return self.open_edit(body, "description", prompt)
        return None

    def _give(self, rest: str, prompt: str) -> list[Command] | None:
        split = _GIVE.match(rest)
        if split is None:
            return None
        ref, what = split.group("ref"), split.group("what")
        if name_markers(what) and find_phrase(head_of(what), PERSON_NOUNS):
            return self._create(f"{what} (related to {ref})", prompt)
        alias = re.match(
            r"^(?:the|a)\s+(?:nickname|nick name|alias|codename|code name)\s*:?\s+(?P<v>.+)$",
            what,
            re.I,
        )
        if alias:
            return self._set_field(ref, "alias", as_name(alias.group("v")), prompt)
        if new := re.match(r"^(?:the|a)\s+(?:new\s+)?name\s*:?\s+(?P<v>.+)$", what, re.I):
            return self._set_name(ref, as_name(new.group("v")), prompt)
        return self.open_edit(ref, what, prompt)

    def _complaint(self, body: str, prompt: str) -> list[Command] | None:
        """Read a complaint as a change: "The villain feels flat", "I don't like the end"."""
        subject = rest = None
        if found := _DISLIKE.match(body):
            subject, rest = found.group("subject"), found.group("subject")
        elif found := _FAILS.match(body):
            subject, rest = found.group("subject"), body
        elif found := _COMPLAINT.match(body):
            said = set(words(found.group("rest")))
            negated = re.search(r"\bnot\b|n't\b", found.group("verb") + " " + found.group("rest"))
            faulty = said & FAULT_WORDS or "too" in said or (negated and "enough" in said)
            if faulty:
                subject, rest = found.group("subject"), found.group("rest")
        if subject is None or rest is None:
            return None
        subject = re.sub(
            r"^(?:honestly|frankly|tbh|to be honest|i think|i feel like)[, ]+",
            "",
            subject,
            flags=re.I,
        )
        about = self.subject(subject)
        if about is None:
            return None
        if about.field:
            return self.field_edit((about.target, about.detail), prompt)
        return self.open_edit(about.detail, rest, prompt)

    def _statement(self, body: str, prompt: str) -> list[Command] | None:
        """Read a wish: "Aria should have short hair", "Bram needs a backstory"."""
        found = _SHOULD.match(body)
        if found is not None:
            subject, verb = found.group("subject"), found.group("verb").casefold()
            rest = found.group("rest")
            if verb == "be" and (called := _CALLED.match(rest)):
                return self._set_name(subject, as_name(called.group("name")), prompt)
            written = re.match(r"^(?:written|told|narrated)\s+(?P<how>.+)$", rest, re.I)
            if verb == "be" and written:
                return self._write(written.group("how"), prompt)
            rest = f"{verb} {rest}"
        elif needs := _NEEDS.match(body):
            subject, rest = needs.group("subject"), needs.group("rest")
        else:
            return None
        about = self.subject(subject)
        if about is None:
            said = set(words(subject))
            if said & {"story", "it", "scenario", "book"} and set(words(rest)) & TONE_WORDS:
                return [self.op("modification", "writingStyle", prompt, focus="tone")]
            return None
        if about.field:
            return self.field_edit((about.target, about.detail), prompt)
        return self.open_edit(about.detail, rest, prompt)

    # -- answers in prose ----------------------------------------------------------------

    def _explain(self, rest: str, prompt: str, *, question: bool = False) -> list[Command]:
        about = _ABOUT.match(prompt.strip())
        text = about.group("who") if about else rest
        found = mentions(self.scenario, text)
        if found is not None:
            return [self.op("details", found.kind, prompt, entity=text)]
        if about:
            referred = self.reference(about.group("who"))
            if referred is not None and not scenario_field(about.group("who")):
                return [self.op("details", referred[0], prompt, entity=referred[1])]
        field = scenario_field(rest)
        if field is not None and field[0] != "writingStyle" and not question:
            return [self.op("details", field[0], prompt)]
        return [self.op("details", "scenario", prompt)]

    def _question(self, body: str, prompt: str) -> list[Command]:
        if re.match(r"^what\s+if\b", body, re.I):
            return [self.op("details", "scenario", prompt)]
        about_story = bool(_STORY_REFS.search(body)) or mentions(self.scenario, body) is not None
        if not about_story and not _ABOUT.match(body):
            return [self.op("general_conversation", "general", prompt)]
        commands = self._explain(body, prompt, question=True)
        if not about_story and commands[0].entity is None:
            return [self.op("general_conversation", "general", prompt)]
        return commands

    # -- one clause ----------------------------------------------------------------------

    def clause(self, text: str) -> list[Command] | None:
        """Read one request: its operations, or None when no rule reads it."""
        prompt = text.strip()
        body = strip_lead(text)
        first = words(prompt)[:1]
        greeting = bool(first) and first[0] in CHAT_OPENERS and not starts_command(body)
        if not body or (greeting and not body.rstrip().endswith("?")):
            return [self.op("general_conversation", "general", prompt)]
        verb, rest = verb_of(body)
        if verb in DELETE_VERBS and rest:
            return self._delete(rest, prompt)
        if verb in ("note", "remember") and rest:
            return self._note(re.sub(r"^(?:that|down|this)\s*:?\s*", "", rest, flags=re.I), prompt)
        if verb in _ADD_VERBS and rest:
            return self._create(rest, prompt)
        if verb in ("give me", "tell me", "walk me through", "help me", "think of", "point out"):
            return self._explain(rest, prompt)
        if verb in MODIFY_VERBS and rest:
            return self._modify(verb, rest, prompt)
        if verb in EXPLAIN_VERBS and rest:
            return self._explain(rest, prompt)
        if want := WANT.match(body):
            wanted = body[want.end() :]
            return self._create(wanted, prompt) if kind_of(head_of(wanted)) else None
        if (statement := self._statement(body, prompt)) is not None:
            return statement
        asked = verb in QUESTION_WORDS or body.rstrip().endswith("?")
        if not asked and (complaint := self._complaint(body, prompt)) is not None:
            return complaint
        if asked:
            return self._question(body, prompt)
        if verb in CHAT_OPENERS:
            return [self.op("general_conversation", "general", prompt)]
        return None

    def _delete(self, rest: str, prompt: str) -> list[Command] | None:
        rest = _FROM_STORY.sub("", rest).strip(" .!,")
        rest = re.split(r",\s+(?:we|i|it|they|he|she|since|because|as)\b", rest, maxsplit=1)[0]
        found = self.reference(rest)
        if found is None:
            return None
        return [self.op("deletion", found[0], prompt, entity=found[1])]
