"""Worked classification examples, given to the model as earlier chat turns.

A 135M model follows demonstrations far better than rules, and far better as real
user/assistant turns than as examples quoted in the system prompt (measured against the
embedded SmolLM2: quoted examples were copied into answers). The names here are not the
writer's, so that the model does not mistake them for the current scenario.
"""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage
from langchain_core.messages import BaseMessage
from langchain_core.messages import HumanMessage

from agent.llm_schemas import Classification
from agent.llm_schemas import Operation
from agent.sketches import Intent

__all__ = [
    "EDIT_SHOTS",
    "SCENARIO_SHOT",
    "SKETCH_SHOTS",
    "classification_shots",
    "edit_shots",
    "intent_shots",
    "scenario_shots",
    "sketch_shots",
]


def _op(prompt: str, action: str, target: str, entity: str | None = None) -> Operation:
    return Operation.model_validate(
        {"prompt": prompt, "action": action, "target": target, "entity": entity}
    )


_SHOTS: tuple[tuple[str, tuple[Operation, ...]], ...] = (
    ("Who is the villain?", (_op("Who is the villain?", "details", "character", "villain"),)),
    (
        "Rename Tom to Max and add a harbour",
        (
            _op("Rename Tom to Max", "modification", "character", "Tom"),
            _op("add a harbour", "creation", "location"),
        ),
    ),
    (
        "Create a new supporting character",
        (_op("Create a new supporting character", "creation", "character"),),
    ),
    ("Make the tone darker", (_op("Make the tone darker", "modification", "writingStyle"),)),
    ("Rewrite the backstory", (_op("Rewrite the backstory", "modification", "backstory"),)),
    ("Delete the old mill", (_op("Delete the old mill", "deletion", "location", "the old mill"),)),
    (
        "Add a scene where they meet",
        (_op("Add a scene where they meet", "creation", "scene"),),
    ),
    (
        "Write me a whole new fantasy story",
        (_op("Write me a whole new fantasy story", "creation", "scenario"),),
    ),
    ("Hello! How are you?", (_op("Hello! How are you?", "general_conversation", "general"),)),
)


def classification_shots() -> list[BaseMessage]:
    """Return the examples as alternating user and assistant messages.

    The answers are serialised from the output model, so they always match its schema.
    """
    shots: list[BaseMessage] = []
    for message, operations in _SHOTS:
        answer = Classification(operations=list(operations)).model_dump_json()
        shots += [HumanMessage(message), AIMessage(answer)]
    return shots


_INTENTS: tuple[tuple[str, str, str], ...] = (
    ("Does the middle part work?", "explain", "story"),
    ("Ugh, the old king is way too nice", "change", "character"),
    ("I'd love a creepy old lighthouse", "add", "location"),
    ("Good morning!", "chat", "story"),
    ("More jokes in how they talk", "change", "style"),
)


def intent_shots() -> list[BaseMessage]:
    """Return short examples of the small model's intent step, as chat turns."""
    shots: list[BaseMessage] = []
    for message, action, target in _INTENTS:
        answer = Intent.model_validate({"action": action, "target": target})
        shots += [HumanMessage(message), AIMessage(answer.model_dump_json())]
    return shots


EDIT_SHOTS: dict[str, tuple[str, str]] = {
    "add": (
        "Appearance of the character Tom: Tall, with a red beard.\nRequest: make Tom fatter",
        "He has grown heavy-set, with a round belly.",
    ),
    "replace": (
        "Backstory of the character Tom: A farmer's son.\nRequest: rewrite his backstory: "
        "he was a soldier",
        "A farmer's son who went to war as a soldier and came home changed.",
    ),
    "short": (
        "Tone of the story: hopeful\nRequest: make the tone sadder",
        "melancholic and wistful",
    ),
}
"""One worked example per kind of small-model edit: (the task, the answer's text)."""


def edit_shots(mode: str) -> list[BaseMessage]:
    """The worked example of an edit as chat turns (a small model follows these, not rules)."""
    task, text = EDIT_SHOTS[mode]
    return [HumanMessage(task), AIMessage(json.dumps({"text": text}))]


_SHOT_STORY = "Story: The Keeper - a lighthouse keeper hides a smuggler from the coast guard."
SKETCH_SHOTS: dict[str, tuple[str, dict[str, str]]] = {
    "character": (
        f"{_SHOT_STORY}\nExisting characters: Anna Vik, Tor\nRequest: Add a nosy neighbour",
        {
            "name": "Greta Holm",
            "role": "neighbour",
            "gender": "female",
            "appearance": "Sharp grey eyes and a knitted shawl; always at her window.",
            "backstory": "A widow who knows every boat in the bay and suspects Anna.",
        },
    ),
    "location": (
        f"{_SHOT_STORY}\nExisting locations: The Lighthouse\nRequest: Add a place where "
        "smugglers meet",
        {
            "name": "The Drowned Bell",
            "visualDescription": "A sea cave lit by lanterns, its floor wet with the tide.",
            "background": "Smugglers have met here since the old bell tower fell into the sea.",
        },
    ),
    "scene": (
        f"{_SHOT_STORY}\nExisting scenes: The Storm\nRequest: Add a scene where Anna finds the "
        "smuggler",
        {
            "title": "The Stranger in the Lamp Room",
            "description": "Anna climbs to the lamp room at midnight and finds a soaked "
            "stranger hiding among the oil barrels.",
        },
    ),
}
"""One worked example per kind of new entity: (the task, the answer)."""

SCENARIO_SHOT: tuple[str, dict[str, object]] = (
    "Write a story about a lonely robot",
    {
        "title": "The Last Lamplighter",
        "synopsis": "In an empty city, a small robot still lights the street lamps every "
        "night, until a stray child follows the light home.",
        "genre": "science fiction",
        "tone": "gentle",
        "characters": [
            {"name": "Wick", "role": "protagonist"},
            {"name": "Juno Reyes", "role": "the child"},
        ],
        "place": "Lantern Row",
    },
)
"""The worked example of a new scenario."""


def sketch_shots(kind: str, known: tuple[str, ...] = ()) -> list[BaseMessage]:
    """The worked example of a new entity as chat turns, without the fields already known.

    Args:
        kind: ``character``, ``location`` or ``scene``.
        known: Fields the code already has (a stated name): the example leaves them out,
            as the request's schema does.
    """
    task, answer = SKETCH_SHOTS[kind]
    if known:
        stated = "".join(f"\n{k.title()}: {answer[k]}" for k in known if k in answer)
        task += stated
        answer = {k: v for k, v in answer.items() if k not in known}
    return [HumanMessage(task), AIMessage(json.dumps(answer))]


def scenario_shots() -> list[BaseMessage]:
    """The worked example of a new scenario as chat turns."""
    task, answer = SCENARIO_SHOT
    return [HumanMessage(task), AIMessage(json.dumps(answer))]
