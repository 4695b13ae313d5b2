"""New entities for requests read by code: stated values, a short sketch, defaults.

"Add a villain named Morvane" already says the name and the role; the model only sketches
what is open (looks, history, a name when none was given) in one short grammar-bound
call. Whatever it gets wrong or leaves out is filled from the request and sensible
defaults - an unused name, the writer's own description - instead of failing the step:
the writer asked for a character and gets one, which they can then edit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.messages import HumanMessage
from langchain_core.messages import SystemMessage
from pydantic import BaseModel

from agent.command import Command
from agent.errors import AgentOutputError
from agent.examples import SCENARIO_SHOT
from agent.examples import SKETCH_SHOTS
from agent.examples import scenario_shots
from agent.examples import sketch_shots
from agent.lexicon import CHARACTER_KIND
from agent.lexicon import LOCATION_KIND
from agent.lexicon import PERSON_NOUNS
from agent.lexicon import PLACE_NOUNS
from agent.lexicon import ROLE_WORDS
from agent.lexicon import SCENE_KIND
from agent.lexicon import STOPWORDS
from agent.nodes.common import NodeRuntime
from agent.nodes.fields import SAMPLING
from agent.patches import PROTECTED
from agent.patches import new_entity
from agent.patches import new_id
from agent.phrases import name_markers
from agent.prompts import SMALL_CREATE
from agent.prompts import SMALL_CREATE_TASK
from agent.prompts import SMALL_SCENARIO
from agent.prompts import fill
from agent.quality import SHOT_CHARS
from agent.quality import copied
from agent.quality import junk
from agent.quality import keywords
from agent.quality import on_topic
from agent.quality import scenario_texts
from agent.quality import tidy
from agent.sketches import CharacterSketch
from agent.sketches import LocationSketch
from agent.sketches import NamedCharacterSketch
from agent.sketches import NamedLocationSketch
from agent.sketches import ScenarioSketch
from agent.sketches import SceneSketch
from agent.state import State
from agent.structured import ask_structured
from agent.targets import collection_key
from agent.targets import entities_of
from agent.targets import entity_label
from agent.targets import find_named
from agent.targets import plain
from agent.targets import words

__all__ = ["description_of", "invent_entity", "invent_scenario", "usable_name"]

_PEOPLE = (
    "Edda Wren", "Corin Ashby", "Talia Voss", "Jonah Pike", "Mara Quill", "Felix Dunmore",
    "Ines Calder", "Oren Blackwood", "Livia March", "Tomas Reyes", "Saffron Lee",
    "Hugo Brandt", "Yara Nolan", "Silas Fenwick", "Greta Lind", "Niko Sato",
    "Amara Okafor", "Declan Frost", "Priya Nair", "Elias Thorne",
)  # fmt: skip
_PLACES = (
    "Greywater Crossing", "The Copper Kettle", "Hollow Pines", "The Glass Market",
    "Saltmarsh Lighthouse", "The Old Observatory", "Briar Lane", "The Sunken Chapel",
    "Ravenhill Manor", "The Lantern Docks", "Ember Square", "Willowmere",
)  # fmt: skip
_KIND_WORDS = CHARACTER_KIND | LOCATION_KIND | SCENE_KIND | {"new", "location", "place"}
_SKETCH_TOKENS = 260


def _pick(pool: Iterable[str], taken: set[str], seed: str) -> str:
    names = [n for n in pool if n.casefold() not in taken]
    if not names:
        return f"{next(iter(pool))} {len(taken) + 1}"
    digest = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return names[digest % len(names)]


def usable_name(name: Any, taken: set[str]) -> str | None:
    """A name the model proposed, if it is one: not taken, not a role, not a sentence."""
    if not isinstance(name, str):
        return None
    name = " ".join(name.strip(" .\"'").split())
    if junk(name):
        return None
    said = words(name)
    if not 2 <= len(name) <= 40 or not said or len(said) > 4 or name.casefold() in taken:
        return None
    if not re.search(r"[A-Za-z]", name) or set(said) <= (
        PERSON_NOUNS | PLACE_NOUNS | set(ROLE_WORDS) | _KIND_WORDS | STOPWORDS
    ):
        return None
    return str(name[:1].upper() + name[1:])


def description_of(hint: str, name: str | None = None) -> str | None:
    """The writer's own description of a new thing, as a sentence, if they gave one.

    "a villain character: a jealous court wizard named Morvane" -> "A jealous court
    wizard."; "a new supporting character" -> None (nothing beyond the kind).

    Args:
        hint: The request's words about the new thing.
        name: Its name, when stated (left out of the description).
    """
    text = plain(hint)
    if name:
        pattern = r"(?:\bthe\s+)?" + r"\s+".join(re.escape(w) for w in name.split()) + r"\b"
        text = re.sub(pattern, "", text, flags=re.I)
    for marker in reversed(name_markers(text)):
        rest = text[marker.end() :]
        named = re.match(r"\s*(?:[\"'][^\"]+[\"']|(?:[A-Z][\w'-]*\s*)+)", rest)
        cut = marker.end() + (named.end() if named else 0)
        text = text[: marker.start()] + text[cut:]
    pieces = re.split(r"\s*(?::| - )\s*", text, maxsplit=1)
    text = pieces[-1] if len(pieces) > 1 and pieces[-1].strip() else text
    text = re.sub(
        r"^(?:an?|the)?\s*(?:new\s+)?(?:scene|character|location|place)s?\s*"
        r"(?:where|in which|when|that|about)?\s+",
        "",
        text.strip(),
        flags=re.I,
    )
    text = re.sub(r"^[\s,.?!;:-]+|[\s,;:-]+$", "", " ".join(text.split()))
    meaningful = [w for w in words(text) if w not in STOPWORDS and w not in _KIND_WORDS]
    if not meaningful or set(meaningful) <= set(ROLE_WORDS) | {"supporting", "minor"}:
        return None
    text = text.strip(" .,")
    return text[:1].upper() + text[1:] + "."


def _scene_links(scenario: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The existing characters and location a new scene's request names."""
    characters, _ = find_named(entities_of(scenario, "characters"), text)
    locations, _ = find_named(entities_of(scenario, "locations"), text)
    links: dict[str, Any] = {"characters": [entity_label(c) for c in characters]}
    if len(locations) == 1:
        links["location"] = entity_label(locations[0])
    orders = [s.get("order") for s in entities_of(scenario, "scenes")]
    numbers = [o for o in orders if isinstance(o, int | float) and not isinstance(o, bool)]
    links["order"] = int(max(numbers)) + 1 if numbers else len(orders) + 1
    return links


async def _sketch(
    runtime: NodeRuntime,
    model: type[BaseModel],
    prompt: list[BaseMessage],
    name: str,
) -> dict[str, Any]:
    """The model's sketch, or nothing when it could not give a valid one."""
    try:
        answer = await ask_structured(
            runtime.context,
            model,
            prompt,
            name=name,
            max_repairs=0,
            max_tokens=_SKETCH_TOKENS,
            guide=False,
            sampling=SAMPLING,
        )
    except AgentOutputError:
        return {}
    return answer.model_dump(exclude_none=True)


def _texts_that_fit(
    sketch: Mapping[str, Any], sources: list[str], shot: list[str]
) -> dict[str, str]:
    """The sketch's descriptive texts, tidied, without junk and copies."""
    kept = {}
    for key, value in sketch.items():
        if key in ("name", "title", "gender", "role") or not isinstance(value, str):
            continue
        text = tidy(value)
        fresh = not copied(text, sources) and not copied(text, shot, SHOT_CHARS)
        if text and not junk(text) and fresh:
            kept[key] = text
    return kept


_MAIN_FIELD = {"character": "backstory", "location": "visualDescription", "scene": "description"}


def _short_label(value: Any, taken: set[str]) -> str | None:
    """A role or a scene title the model gave, if it is one (a few words, not a name)."""
    if not isinstance(value, str):
        return None
    label = " ".join(value.strip(" .\"'").split())
    if not 2 < len(label) <= 50 or len(label.split()) > 8 or label.casefold() in taken:
        return None
    return None if junk(label) else label


async def invent_entity(
    runtime: NodeRuntime, state: State, command: Command
) -> tuple[dict[str, Any], str]:
    """Add one character, location or scene; return the new working scenario and summary."""
    kind = command.target
    key = collection_key(kind)
    assert key is not None
    existing = entities_of(state.working, key)
    taken = {entity_label(e).casefold() for e in existing}
    title = state.working.get("title")
    if isinstance(title, str):
        taken.add(title.casefold())
    label_key = "title" if kind == "scene" else "name"
    stated = dict(command.values)
    known: tuple[str, ...] = ()
    model: type[BaseModel]
    if kind == "character":
        named = "name" in stated
        model = CharacterSketch if named else NamedCharacterSketch
        known = ("name", "role") if named else ()
    elif kind == "location":
        named = "name" in stated
        model = LocationSketch if named else NamedLocationSketch
        known = ("name",) if named else ()
    else:
        model = SceneSketch
    extra = "".join(f"\n{k.title()}: {v}" for k, v in stated.items() if k in known)
    task = fill(
        SMALL_CREATE_TASK,
        story=_story_line(state.working),
        plural=key,
        existing=", ".join(entity_label(e) for e in existing) or "none",
        request=command.prompt,
        known=extra,
    )
    prompt = [
        SystemMessage(fill(SMALL_CREATE, kind=kind)),
        *sketch_shots(kind, known),
        HumanMessage(task),
    ]
    sketch = await _sketch(runtime, model, prompt, f"new_{kind}")
    shot = [str(v) for v in SKETCH_SHOTS[kind][1].values()]
    draft: dict[str, Any] = _texts_that_fit(sketch, scenario_texts(state.working), shot)
    description = description_of(command.hint or command.prompt, stated.get(label_key))
    if description:  # the writer's own description comes first
        draft[_MAIN_FIELD[kind]] = description
    if kind == "character" and sketch.get("gender"):
        draft["gender"] = sketch["gender"]
    unusable = taken | {s.casefold() for s in shot}  # the example's names are no answer
    role = _short_label(sketch.get("role"), unusable)
    if kind == "character":
        draft["role"] = stated.get("role") or role or "supporting"
    if kind == "scene":
        name = stated.get("title") or _short_label(sketch.get("title"), unusable)
    else:
        name = stated.get("name") or usable_name(sketch.get("name"), unusable)
    if not name:
        seed = f"{command.prompt}|{len(existing)}"
        if kind == "scene":
            name = _title_from(description or "New scene")
        else:
            name = _pick(_PEOPLE if kind == "character" else _PLACES, taken, seed)
    draft[label_key] = name
    if kind == "scene":
        draft.update(_scene_links(state.working, command.hint or command.prompt))
    entity = new_entity(draft, protected=PROTECTED[kind])
    working = {**state.working, key: [*(state.working.get(key) or []), entity]}
    return working, f"Added a new {kind}: {name}."


def _title_from(description: str) -> str:
    """A scene title from its description's first words ("Aria confronts Bram")."""
    picked = description.rstrip(".").split()[:5]
    while len(picked) > 1 and picked[-1].casefold() in STOPWORDS:
        picked.pop()
    return " ".join(picked)


def _story_line(scenario: Mapping[str, Any]) -> str:
    parts = [scenario.get(k) for k in ("title", "synopsis")]
    line = " - ".join(" ".join(p.split()) for p in parts if isinstance(p, str) and p.strip())
    return line[:220] or "(a new story)"


def _about(request: str) -> str:
    """What a new story is about, from the request ("a dragon who runs a bakery")."""
    found = re.search(r"\babout\s+(?P<topic>.+?)[.!?]*$", request, re.I)
    return found.group("topic") if found else request.strip(" .!?")


async def invent_scenario(
    runtime: NodeRuntime, state: State, command: Command
) -> tuple[dict[str, Any], str]:
    """Replace the scenario's content with a new story sketched from the request."""
    prompt = [SystemMessage(SMALL_SCENARIO), *scenario_shots(), HumanMessage(command.prompt)]
    sketch = await _sketch(runtime, ScenarioSketch, prompt, "new_scenario")
    working = dict(state.working)
    if not isinstance(working.get("id"), str) or not working["id"]:
        working["id"] = new_id()
    shot = [str(v) for v in SCENARIO_SHOT[1].values() if isinstance(v, str)]
    title = _short_label(sketch.get("title"), {s.casefold() for s in shot}) or "Untitled story"
    if copied(title, shot, SHOT_CHARS):
        title = "Untitled story"
    synopsis = tidy(str(sketch.get("synopsis") or ""))
    if (
        not synopsis
        or junk(synopsis)
        or copied(synopsis, shot, SHOT_CHARS)
        or not on_topic(synopsis, keywords(command.prompt, ()))
    ):
        synopsis = f"A story about {_about(command.prompt)}."
    taken: set[str] = {"wick", "juno reyes"}
    characters = []
    for member in sketch.get("characters") or []:
        name = usable_name(member.get("name"), taken)
        if name:
            taken.add(name.casefold())
            role = _short_label(member.get("role"), taken) or "supporting"
            characters.append({"name": name, "role": role})
    if not characters:
        characters = [{"name": _pick(_PEOPLE, taken, command.prompt), "role": "protagonist"}]
    place = usable_name(sketch.get("place"), {"lantern row"})
    style = {k: sketch[k] for k in ("genre", "tone") if _short_label(sketch.get(k), set())}
    working.update(
        title=title,
        synopsis=synopsis,
        storyarc="",
        backstory="",
        notes="",
        writingStyle=style,
        characters=[new_entity(c, protected=PROTECTED["character"]) for c in characters],
        locations=[new_entity({"name": place}, protected=PROTECTED["location"])] if place else [],
        scenes=[],
    )
    return working, f"Created a new scenario: {title}."
